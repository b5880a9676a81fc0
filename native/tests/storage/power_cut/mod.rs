//! Power cuts on the fault-injecting file system, at every operation of
//! random workloads (appends, segment rolls, snapshots taken and installed,
//! compaction, restarts and earlier cuts), of a segment roll, and of the
//! storage worker's group commits. After every cut the storage must recover
//! (a refusal fails the test: a power cut is no corruption), hold a state
//! that some prefix of the writes produces, keep every write it had
//! acknowledged durable, and never go back to an older term.
//!
//! `DISTRIBKV_POWER_CUT_RUNS=N` sets the number of random workloads (default
//! 16); `DISTRIBKV_POWER_CUT_SEED=S` replays the workload of one seed, as
//! printed on failure.
//!
//! - [`cut`]: one cut, its recovery and what must come back;
//! - [`workload`]: the random workloads with a cut before every operation;
//! - the tests, below.

mod cut;
mod workload;

use std::time::{Duration, Instant};

use distribkv_core::raft::Write;
use distribkv_core::rng::Rng;
use distribkv_native::storage::{
    FaultFileSystem, FileSystemOperation, Fork, PowerCut, RaftStorage, StorageEvent,
    StorageOptions, StorageWorker,
};

use self::cut::{
    Allowed, CutPoint, ROOT, check_it_writes_again, cut_and_recover, data_dir, options_on, segment,
    with_file_system,
};
use self::workload::{Tally, Workload, steps_for};
use crate::power_cut_support::workload_seeds;
use crate::support::{IDENTITY, Model, oracle, simple_writes};

#[test]
fn random_cut_points_lose_no_acknowledged_write() {
    let started = Instant::now();
    let (seeds, default) = workload_seeds(16, 7_000);
    let mut total = Tally::default();
    for &seed in &seeds {
        let tally = Workload::new(seed).run(&steps_for(seed, 200));
        total.cut_points += tally.cut_points;
        total.operations += tally.operations;
        total.writes += tally.writes;
        total.restarts_checked += tally.restarts_checked;
    }
    println!(
        "power cuts: {} cut points over {} workloads ({} file-system operations, {} writes), \
             0 acknowledged writes lost, {} recovered storages written to and restarted, in {:.1} s",
        total.cut_points,
        seeds.len(),
        total.operations,
        total.writes,
        total.restarts_checked,
        started.elapsed().as_secs_f64()
    );
    if default {
        assert!(
            total.cut_points >= 10_000,
            "{} cut points",
            total.cut_points
        );
    }
}

/// Issue 15: cuts at every point of a segment roll that comes right after
/// a group commit (before, during and after the seal's fsync, around the
/// creation of the next segment and its folder's fsync) restart cleanly.
#[test]
fn every_cut_point_of_a_segment_roll_restarts_cleanly() {
    let (roll, frame) = cut_at_every_point_of_a_roll(0);
    let temporary = data_dir().join("wal-00000000000000000002.log.tmp");
    assert_eq!(
        roll[..9],
        [
            FileSystemOperation::Write {
                path: segment(1),
                bytes: 10
            },
            FileSystemOperation::SyncFile(segment(1)),
            FileSystemOperation::CreateFile(temporary.clone()),
            FileSystemOperation::Write {
                path: temporary.clone(),
                bytes: 40
            },
            FileSystemOperation::SyncFile(temporary.clone()),
            FileSystemOperation::Rename {
                from: temporary,
                to: segment(2)
            },
            FileSystemOperation::SyncFolder(data_dir()),
            FileSystemOperation::Write {
                path: segment(2),
                bytes: frame as usize
            },
            FileSystemOperation::SyncFile(segment(2)),
        ],
        "the seal is written and fsynced before the next segment is created"
    );
}

/// The same roll with zeros written ahead of the records: the seal is
/// fsynced, the zeros after it are cut off and that is fsynced, all before
/// the next segment is created; every cut point restarts cleanly.
#[test]
fn every_cut_point_of_a_roll_with_zeros_written_ahead_restarts_cleanly() {
    let (roll, _) = cut_at_every_point_of_a_roll(100);
    let position = |wanted: &dyn Fn(&FileSystemOperation) -> bool| {
        roll.iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("missing from the roll: {roll:#?}"))
    };
    let seal_synced = position(&|o| *o == FileSystemOperation::SyncFile(segment(1)));
    let cut = position(
        &|o| matches!(o, FileSystemOperation::SetLength { path, .. } if *path == segment(1)),
    );
    let cut_synced = seal_synced
        + 1
        + roll[seal_synced + 1..]
            .iter()
            .position(|o| *o == FileSystemOperation::SyncFile(segment(1)))
            .expect("the cut is fsynced");
    let created = position(&|o| matches!(o, FileSystemOperation::CreateFile(_)));
    assert!(
        seal_synced < cut && cut < cut_synced && cut_synced < created,
        "seal fsynced, zeros cut off, that fsynced, then the next segment: {roll:#?}"
    );
}

/// Group commits of one write each until the next cannot fit in segment
/// 1, then two more (the first rolls to segment 2), with a fork before
/// every operation; cuts each fork in every mode and checks the restart.
/// Returns the operations from the roll on, and the last frame's length.
fn cut_at_every_point_of_a_roll(preallocate: u64) -> (Vec<FileSystemOperation>, u64) {
    let fs = FaultFileSystem::in_memory(ROOT);
    let options = StorageOptions {
        preallocate,
        ..options_on(&fs, 400, 0)
    };
    let (mut storage, _) = RaftStorage::open(data_dir(), IDENTITY, options.clone()).unwrap();
    let writes = simple_writes(20, 30);
    let states: Vec<_> = (0..=writes.len()).map(|n| oracle(&writes[..n])).collect();
    // Segment 1's records (after its 40-byte header), whatever follows them.
    let length = |storage: &RaftStorage| 40 + storage.stats().bytes();
    let mut next = 0;
    let mut frame = 0;
    while next < 2 || length(&storage) + frame <= options.segment_size {
        let before = length(&storage);
        storage.append(&writes[next]).unwrap();
        storage.sync().unwrap();
        frame = length(&storage) - before;
        next += 1;
    }
    let mut acks = vec![(fs.operations(), next)];
    fs.fork_before(|_, _| true);
    for write in &writes[next..next + 2] {
        storage.append(write).unwrap();
        storage.sync().unwrap();
        acks.push((fs.operations(), acks.last().unwrap().1 + 1));
    }
    let mut forks = fs.take_forks();
    let end = fs.operations();
    forks.push(Fork {
        operation: end,
        next: FileSystemOperation::SyncFolder(data_dir()),
        file_system: fs.fork(),
    });
    let roll: Vec<FileSystemOperation> = forks[..forks.len() - 1]
        .iter()
        .map(|f| f.next.clone())
        .collect();

    let mut rng = Rng::new(15);
    let mut cut_points = 0;
    for (position, fork) in forks.iter().enumerate() {
        let is_end = position + 1 == forks.len();
        let allowed = Allowed {
            states: &states,
            acked: acks
                .iter()
                .filter(|(returned, _)| *returned <= fork.operation)
                .map(|(_, n)| *n)
                .max()
                .unwrap(),
            appended: next + 2,
        };
        for (mode, repeats) in [
            (PowerCut::DropUnsynced, 1),
            (PowerCut::TornPage, 8),
            (PowerCut::Reorder, 16),
        ] {
            for _ in 0..repeats {
                let point = CutPoint {
                    operation: fork.operation,
                    next: (!is_end).then_some(&fork.next),
                    mode,
                    seed: rng.next_u64(),
                };
                let copy = fork.file_system.fork();
                let (storage, recovered, _, after) =
                    cut_and_recover(&copy, &point, &options, &allowed)
                        .unwrap_or_else(|message| panic!("{message}"));
                check_it_writes_again(storage, recovered, &after, &options, &point)
                    .unwrap_or_else(|message| panic!("{message}"));
                cut_points += 1;
            }
        }
    }
    println!(
        "segment roll (zeros ahead: {preallocate}): {cut_points} cut points over {} operations, all restarted cleanly",
        forks.len()
    );
    (roll, frame)
}

#[test]
fn acknowledged_writes_in_new_nested_folders_survive_a_power_cut() {
    let fs = FaultFileSystem::in_memory(ROOT);
    let options = options_on(&fs, 64 << 20, 1 << 20);
    let (mut storage, _) = RaftStorage::open(data_dir(), IDENTITY, options.clone()).unwrap();
    let writes = simple_writes(3, 20);
    for write in &writes {
        storage.append(write).unwrap();
    }
    assert_eq!(storage.sync().unwrap(), Some(3));
    let after = fs.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    let (_, recovered) =
        RaftStorage::open(data_dir(), IDENTITY, with_file_system(&options, &after)).unwrap();
    assert_eq!(recovered, oracle(&writes));
}

/// On a fault file system backed by a real folder, the folder holds only
/// what was fsynced: a process that stops without any cut (as after
/// `kill -9`) leaves what a power cut keeps, and the next process, on
/// the real file system, recovers exactly the acknowledged writes.
#[test]
fn a_backed_fault_file_system_leaves_the_next_process_what_a_power_cut_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node-2").join("data");
    let writes = {
        let mut model = Model::default();
        steps_for(99, 300)
            .iter()
            .filter_map(|step| model.write_for(step))
            .take(64)
            .collect::<Vec<_>>()
    };
    let machine = FaultFileSystem::backed_by(dir.path()).unwrap();
    let options = StorageOptions {
        segment_size: 600,
        // Every record reaches the file system at once.
        write_buffer_size: 0,
        file_system: std::sync::Arc::new(machine.clone()),
        ..StorageOptions::default()
    };
    let (mut storage, _) = RaftStorage::open(&data, IDENTITY, options).unwrap();
    let mut acked = 0;
    for (position, write) in writes.iter().enumerate() {
        storage.append(write).unwrap();
        if position % 7 == 3 {
            storage.sync().unwrap();
            storage.maybe_compact().unwrap();
            acked = position + 1;
        }
    }
    assert!(acked < writes.len() && machine.unsynced_bytes() > 0);
    // What the model says a power cut keeps now.
    let cut = machine.fork().power_cut(PowerCut::DropUnsynced, 1).unwrap();
    let cut_options = StorageOptions {
        file_system: std::sync::Arc::new(cut),
        ..StorageOptions::default()
    };
    let (_, expected) = RaftStorage::open(&data, IDENTITY, cut_options).unwrap();
    // The process dies: its memory (the page cache of the model) is gone.
    drop(storage);
    drop(machine);
    let (_, recovered) = RaftStorage::open(&data, IDENTITY, StorageOptions::default()).unwrap();
    assert_eq!(recovered, expected);
    // Segment rolls fsync records appended after the last sync too.
    let kept = (acked..=writes.len())
        .find(|&n| oracle(&writes[..n]) == recovered)
        .expect("a prefix of the writes");
    println!(
        "{acked} writes acknowledged, {kept} kept, {} appended",
        writes.len()
    );
}

/// The worker reports a write durable only once an fsync covering it has
/// returned: every fsync is held, and while it is, the power is cut with
/// every mode; everything reported durable before must survive.
#[test]
fn the_worker_reports_a_write_durable_only_after_its_fsync() {
    let fs = FaultFileSystem::in_memory(ROOT);
    let options = options_on(&fs, 700, 1 << 20);
    let faults = options.faults.clone();
    let (storage, _) = RaftStorage::open(data_dir(), IDENTITY, options.clone()).unwrap();
    let mut model = Model::default();
    let steps = steps_for(15, 400);
    let writes: Vec<Write> = steps
        .iter()
        .filter_map(|step| model.write_for(step))
        .take(120)
        .collect();
    let states: Vec<_> = (0..=writes.len()).map(|n| oracle(&writes[..n])).collect();
    assert_eq!(writes.last().unwrap().seq, writes.len() as u64);

    faults.hold_syncs();
    let (worker, mut events) = StorageWorker::spawn(storage, 8).unwrap();
    let feeder = {
        let writes = writes.clone();
        std::thread::spawn(move || {
            for write in writes {
                worker.blocking_persist(write).unwrap();
            }
            worker
        })
    };
    let mut acked = 0usize;
    let mut held = 0;
    let mut cut_points = 0;
    let mut rng = Rng::new(16);
    let deadline = Instant::now() + Duration::from_secs(300);
    while acked < writes.len() {
        assert!(
            Instant::now() < deadline,
            "the worker is stuck at {acked} of {} writes",
            writes.len()
        );
        let is_held = faults.wait_for_held_sync(Duration::from_millis(20));
        while let Ok(event) = events.try_recv() {
            match event {
                StorageEvent::Durable { seq } => acked = acked.max(seq as usize),
                StorageEvent::Failed { error } => panic!("the worker failed: {error}"),
            }
        }
        if !is_held {
            continue;
        }
        held += 1;
        // The worker waits before an fsync: cut the power now.
        let now = fs.fork();
        let allowed = Allowed {
            states: &states,
            acked,
            appended: writes.len(),
        };
        for mode in PowerCut::ALL {
            let point = CutPoint {
                operation: now.operations(),
                next: None,
                mode,
                seed: rng.next_u64(),
            };
            let copy = now.fork();
            if let Err(message) = cut_and_recover(&copy, &point, &options, &allowed) {
                panic!("while fsync {held} was held, {message}");
            }
            cut_points += 1;
        }
        faults.release_one_sync();
    }
    faults.release_syncs();
    let worker = feeder.join().unwrap();
    drop(worker.shutdown());
    assert!(held > 50, "{held} fsyncs held");
    println!("worker: {cut_points} cut points at {held} held fsyncs, 0 acknowledged writes lost");
}
