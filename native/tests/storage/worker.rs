//! The storage worker: group commit (many writes, few fsyncs), and no
//! acknowledgement before the fsync that covers it.

use std::time::{Duration, Instant};

use crate::support::{open, oracle, segments, simple_writes, snapshot};
use distribkv_core::raft::Write;
use distribkv_native::storage::{
    FaultInjector, StorageError, StorageEvent, StorageOptions, StorageWorker,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Waits (up to 10 s) until `condition` holds.
async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Collects events until `seq` is durable; returns every durable seq seen.
async fn durable_until(events: &mut UnboundedReceiver<StorageEvent>, seq: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&seq) {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(StorageEvent::Durable { seq })) => seen.push(seq),
            other => panic!("expected a durable seq, got {other:?}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_during_an_fsync_share_the_next_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let options = StorageOptions {
        faults: faults.clone(),
        ..StorageOptions::default()
    };
    let (storage, _) = open(dir.path(), &options);
    let (worker, mut events) = StorageWorker::spawn(storage, 1024).unwrap();
    let stats = worker.stats();
    let writes = simple_writes(500, 256);

    faults.hold_syncs();
    worker.persist(writes[0].clone()).await.unwrap();
    eventually(|| faults.syncs_waiting() == 1).await;
    for write in &writes[1..] {
        worker.persist(write.clone()).await.unwrap();
    }
    // The first fsync has not finished: nothing may be acknowledged.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(events.try_recv().is_err(), "acknowledged before fsync");

    faults.release_syncs();
    let durable = durable_until(&mut events, 500).await;
    assert_eq!(
        durable,
        [1, 500],
        "one batch while the fsync ran, one after"
    );
    assert_eq!(stats.syncs(), 2, "500 writes, 2 fsyncs");
    assert_eq!(stats.writes(), 500);

    let storage = tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
    assert_eq!(storage.durable_seq(), Some(500));
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_seqs_only_grow_and_every_write_is_covered() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(dir.path(), &StorageOptions::default());
    let (worker, mut events) = StorageWorker::spawn(storage, 64).unwrap();
    let stats = worker.stats();
    let writes = simple_writes(300, 64);
    let feeder = {
        let writes = writes.clone();
        tokio::spawn(async move {
            for write in writes {
                worker.persist(write).await.unwrap();
            }
            worker
        })
    };
    let durable = durable_until(&mut events, 300).await;
    assert!(
        durable.windows(2).all(|pair| pair[0] < pair[1]),
        "{durable:?}"
    );
    assert_eq!(stats.syncs(), durable.len() as u64, "one fsync per report");
    let worker = feeder.await.unwrap();
    tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fsync_is_reported_and_never_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let options = StorageOptions {
        faults: faults.clone(),
        ..StorageOptions::default()
    };
    let (storage, _) = open(dir.path(), &options);
    let (worker, mut events) = StorageWorker::spawn(storage, 16).unwrap();
    let writes = simple_writes(3, 32);

    worker.persist(writes[0].clone()).await.unwrap();
    assert_eq!(durable_until(&mut events, 1).await, [1]);

    faults.fail_syncs();
    worker.persist(writes[1].clone()).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
        Ok(Some(StorageEvent::Failed {
            error: StorageError::Io { action, .. },
        })) => assert_eq!(action, "fsync"),
        other => panic!("expected the fsync failure, got {other:?}"),
    }
    // The worker stopped: no acknowledgement ever follows, and new writes bounce.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .is_none()
    );
    assert!(worker.persist(writes[2].clone()).await.is_err());
    let storage = tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
    assert!(storage.is_halted());
    assert_eq!(storage.durable_seq(), Some(1));
}

#[test]
fn shutdown_commits_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(dir.path(), &StorageOptions::default());
    let (worker, mut events) = StorageWorker::spawn(storage, 8).unwrap();
    let writes = simple_writes(20, 10);
    for write in &writes {
        worker.blocking_persist(write.clone()).unwrap();
    }
    let storage = worker.shutdown();
    assert_eq!(storage.durable_seq(), Some(20));
    let mut last = None;
    while let Ok(event) = events.try_recv() {
        if let StorageEvent::Durable { seq } = event {
            last = Some(seq);
        }
    }
    assert_eq!(last, Some(20));
}

#[test]
fn the_worker_compacts_after_a_durable_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        segment_size: 600,
        ..StorageOptions::default()
    };
    let (storage, _) = open(dir.path(), &options);
    let (worker, _events) = StorageWorker::spawn(storage, 8).unwrap();
    let mut writes = simple_writes(50, 100);
    for write in &writes {
        worker.blocking_persist(write.clone()).unwrap();
    }
    let snapshot_write = Write {
        seq: 51,
        snapshot: Some(Box::new(snapshot(48, 1, 200))),
        ..Write::default()
    };
    worker.blocking_persist(snapshot_write.clone()).unwrap();
    writes.push(snapshot_write);
    drop(worker.shutdown());
    assert!(
        segments(dir.path()).len() <= 2,
        "{:?}",
        segments(dir.path())
    );
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered, oracle(&writes));
}

/// `commit_interval`: group commits start at least that far apart, so a
/// steady trickle of writes shares fsyncs; a write after a quiet spell is
/// committed at once; every write is still acknowledged only once durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commits_start_at_least_the_commit_interval_apart() {
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_millis(150);
    let options = StorageOptions {
        commit_interval: interval,
        ..StorageOptions::default()
    };
    let (storage, _) = open(dir.path(), &options);
    assert_eq!(storage.commit_interval(), interval);
    let (worker, mut events) = StorageWorker::spawn(storage, 1024).unwrap();
    let stats = worker.stats();
    let writes = simple_writes(52, 64);

    worker.persist(writes[0].clone()).await.unwrap();
    durable_until(&mut events, 1).await;
    // One write every 2 ms: alone, each would get an fsync of its own.
    let before = stats.syncs();
    let started = Instant::now();
    for write in &writes[1..51] {
        worker.persist(write.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let durable = durable_until(&mut events, 51).await;
    let elapsed = started.elapsed();
    let syncs = stats.syncs() - before;
    let most = elapsed.as_millis() as u64 / interval.as_millis() as u64 + 2;
    assert!(
        syncs <= most,
        "{syncs} group commits in {elapsed:?}, at most {most} expected ({durable:?})"
    );
    assert!(durable.windows(2).all(|w| w[0] < w[1]), "{durable:?}");

    // After a quiet spell longer than the interval, a lone write waits for
    // no timer.
    tokio::time::sleep(interval * 3).await;
    let sent = Instant::now();
    worker.persist(writes[51].clone()).await.unwrap();
    assert_eq!(durable_until(&mut events, 52).await, [52]);
    assert!(
        sent.elapsed() < interval,
        "a lone write after a quiet spell took {:?}",
        sent.elapsed()
    );

    let storage = tokio::task::spawn_blocking(move || worker.shutdown())
        .await
        .unwrap();
    assert_eq!(storage.durable_seq(), Some(52));
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
}
