//! Measurement, not a timed test: durable writes per second through the
//! storage worker with one writer versus many concurrent writers (group
//! commit), 256-byte entries. Ignored by default; run it with
//!
//! ```text
//! cargo test -p distribkv-native --release --test storage_throughput -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Set `DISTRIBKV_STORAGE_BENCH_SECS` to change the time per configuration
//! (default 3) and `DISTRIBKV_STORAGE_BENCH_DIR` to measure on another disk
//! (default: the system's temporary folder).

mod storage_support;

/// Named `storage` so that `cargo test storage` selects these tests.
mod storage {
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    use crate::storage_support::{entry, open};
    use distribkv_core::raft::Write;
    use distribkv_native::storage::{StorageEvent, StorageOptions, StorageWorker};
    use tokio::sync::{mpsc, oneshot};

    /// Bytes of payload per entry.
    const ENTRY_SIZE: usize = 256;

    struct Measurement {
        writes: u64,
        seconds: f64,
        syncs: u64,
    }

    /// One client proposal: the driver answers once its write is durable.
    type Proposal = oneshot::Sender<()>;

    /// `writers` clients each propose, wait until their write is durable, and
    /// propose again, for `duration`. Like a node's driver loop, one task turns
    /// proposals into writes (one write each, in `seq` order), queues them on
    /// the worker, and answers the clients as durable seqs come back.
    async fn measure(writers: usize, duration: Duration) -> Measurement {
        let dir = match std::env::var_os("DISTRIBKV_STORAGE_BENCH_DIR") {
            Some(base) => tempfile::tempdir_in(base).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let (storage, _) = open(dir.path(), &StorageOptions::default());
        let (worker, mut events) = StorageWorker::spawn(storage, 4096).unwrap();
        let stats = worker.stats();
        let (propose, mut proposals) = mpsc::channel::<Proposal>(4096);

        let driver = tokio::spawn(async move {
            let mut seq = 0u64;
            let mut waiting: VecDeque<(u64, Proposal)> = VecDeque::new();
            let mut arrived = Vec::new();
            loop {
                tokio::select! {
                    count = proposals.recv_many(&mut arrived, 4096) => {
                        if count == 0 {
                            break;
                        }
                        for reply in arrived.drain(..) {
                            seq += 1;
                            let write = Write {
                                seq,
                                entries: vec![entry(seq, 1, ENTRY_SIZE)],
                                ..Write::default()
                            };
                            worker.persist(write).await.unwrap();
                            waiting.push_back((seq, reply));
                        }
                    }
                    Some(event) = events.recv() => match event {
                        StorageEvent::Durable { seq: durable } => {
                            while waiting.front().is_some_and(|(seq, _)| *seq <= durable) {
                                let (_, reply) = waiting.pop_front().unwrap();
                                let _ = reply.send(());
                            }
                        }
                        StorageEvent::Failed { error } => panic!("storage failed: {error}"),
                    },
                }
            }
            worker
        });

        let start = Instant::now();
        let deadline = start + duration;
        let clients: Vec<_> = (0..writers)
            .map(|_| {
                let propose = propose.clone();
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let (reply, durable) = oneshot::channel();
                        propose.send(reply).await.unwrap();
                        durable.await.unwrap();
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        drop(propose);
        let mut writes = 0;
        for client in clients {
            writes += client.await.unwrap();
        }
        let seconds = start.elapsed().as_secs_f64();
        let worker = driver.await.unwrap();
        tokio::task::spawn_blocking(move || worker.shutdown())
            .await
            .unwrap();
        Measurement {
            writes,
            seconds,
            syncs: stats.syncs(),
        }
    }

    #[test]
    #[ignore = "a measurement, run by hand (see the file's documentation)"]
    fn durable_writes_per_second() {
        let seconds = std::env::var("DISTRIBKV_STORAGE_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        println!(
            "writers  durable writes/s  fsyncs/s  writes per fsync  ({ENTRY_SIZE}-byte entries)"
        );
        for writers in [1, 4, 16, 64, 256] {
            let m = runtime.block_on(measure(writers, Duration::from_secs_f64(seconds)));
            println!(
                "{writers:>7}  {:>16.0}  {:>8.0}  {:>16.1}",
                m.writes as f64 / m.seconds,
                m.syncs as f64 / m.seconds,
                m.writes as f64 / m.syncs.max(1) as f64,
            );
        }
    }

    /// The same without the worker and its channels: `RaftStorage` alone,
    /// appending batches of a fixed size with one fsync each. Shows the cost of
    /// an fsync as the batch grows, the ceiling the worker can reach.
    #[test]
    #[ignore = "a measurement, run by hand (see the file's documentation)"]
    fn fsync_cost_by_batch_size() {
        println!("batch  ms per fsync  durable writes/s  ({ENTRY_SIZE}-byte entries)");
        for batch in [1u64, 4, 16, 64, 256] {
            let dir = tempfile::tempdir().unwrap();
            let (mut storage, _) = open(dir.path(), &StorageOptions::default());
            let rounds = 500;
            let mut seq = 0;
            let start = Instant::now();
            for _ in 0..rounds {
                for _ in 0..batch {
                    seq += 1;
                    let write = Write {
                        seq,
                        entries: vec![entry(seq, 1, ENTRY_SIZE)],
                        ..Write::default()
                    };
                    storage.append(&write).unwrap();
                }
                storage.sync().unwrap();
            }
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "{batch:>5}  {:>12.3}  {:>16.0}",
                seconds * 1000.0 / rounds as f64,
                seq as f64 / seconds
            );
        }
    }
}
