//! Random write sequences through `RaftStorage`, checked against
//! `PersistedState::apply` at every sync, reopen and crash.

use crate::support::{Model, Step, entry, open, segments, snapshot, snapshots, step};
use distribkv_core::raft::{HardState, PersistedState, Write};
use distribkv_native::storage::{StorageError, StorageOptions};
use proptest::prelude::*;

/// Runs `steps` against a fresh folder and checks recovery against the oracle.
fn check_scenario(steps: &[Step], options: &StorageOptions) {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, recovered) = open(dir.path(), options);
    assert_eq!(recovered, PersistedState::default());
    let mut model = Model::default();
    // States the folder may recover to after a crash: the last synced one,
    // then one per write appended since.
    let mut since_sync = vec![model.state.clone()];
    // `seq` of the last write appended since the folder was (re)opened.
    let mut appended = None;
    for (position, step) in steps.iter().enumerate() {
        if let Some(write) = model.write_for(step) {
            storage.append(&write).unwrap();
            appended = Some(write.seq);
            since_sync.push(model.state.clone());
            continue;
        }
        match step {
            Step::Sync => {
                assert_eq!(storage.sync().unwrap(), appended);
                storage.maybe_compact().unwrap();
                since_sync = vec![model.state.clone()];
            }
            Step::Reopen => {
                storage.sync().unwrap();
                storage.maybe_compact().unwrap();
                drop(storage);
                let (reopened, recovered) = open(dir.path(), options);
                storage = reopened;
                appended = None;
                assert_eq!(recovered, model.state, "reopen at step {position}");
                since_sync = vec![model.state.clone()];
            }
            Step::Crash => {
                drop(storage);
                let (reopened, recovered) = open(dir.path(), options);
                storage = reopened;
                appended = None;
                assert!(
                    since_sync.contains(&recovered),
                    "crash at step {position} recovered a state that is no prefix of the writes:\n{recovered:#?}"
                );
                model.state = recovered;
                since_sync = vec![model.state.clone()];
            }
            _ => unreachable!("write steps are handled above"),
        }
    }
    storage.sync().unwrap();
    storage.maybe_compact().unwrap();
    drop(storage);
    let (_, recovered) = open(dir.path(), options);
    assert_eq!(recovered, model.state);
}

fn options(segment_size: u64, write_buffer_size: usize) -> StorageOptions {
    StorageOptions {
        segment_size,
        write_buffer_size,
        ..StorageOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn storage_matches_the_oracle(
        steps in proptest::collection::vec(step(), 1..60),
        segment_size in prop_oneof![Just(200u64), Just(1500), Just(64 << 20)],
        write_buffer_size in prop_oneof![Just(0usize), Just(700), Just(1 << 20)],
    ) {
        check_scenario(&steps, &options(segment_size, write_buffer_size));
    }
}

#[test]
fn a_fresh_folder_recovers_empty_and_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node-2");
    let (_, recovered) = open(&data, &StorageOptions::default());
    assert_eq!(recovered, PersistedState::default());
    assert!(data.join("identity").exists());
    assert_eq!(segments(&data).len(), 1);
    let (_, again) = open(&data, &StorageOptions::default());
    assert_eq!(again, PersistedState::default());
}

#[test]
fn segments_covered_by_a_snapshot_are_deleted_and_the_hard_state_survives() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(1024, 1 << 20);
    let (mut storage, _) = open(dir.path(), &options);
    let mut model = Model::default();
    let vote = Write {
        seq: model.next_seq(),
        hard_state: Some(HardState {
            term: 1,
            voted_for: Some(3),
        }),
        ..Write::default()
    };
    storage.append(&vote).unwrap();
    model.state.apply(&vote);
    for index in 1..=100 {
        let write = Write {
            seq: model.next_seq(),
            entries: vec![entry(index, 1, 100)],
            ..Write::default()
        };
        storage.append(&write).unwrap();
        model.state.apply(&write);
    }
    storage.sync().unwrap();
    let before = segments(dir.path());
    assert!(before.len() > 10, "small segments roll: {}", before.len());

    let first_snapshot = Write {
        seq: model.next_seq(),
        snapshot: Some(Box::new(snapshot(40, 1, 500))),
        ..Write::default()
    };
    storage.append(&first_snapshot).unwrap();
    model.state.apply(&first_snapshot);
    storage.sync().unwrap();
    let compaction = storage.maybe_compact().unwrap();
    assert!(compaction.segments_removed > 0);
    assert_eq!(compaction.snapshots_removed, 0);

    let second_snapshot = Write {
        seq: model.next_seq(),
        snapshot: Some(Box::new(snapshot(95, 1, 500))),
        ..Write::default()
    };
    storage.append(&second_snapshot).unwrap();
    model.state.apply(&second_snapshot);
    assert_eq!(
        storage.maybe_compact().unwrap(),
        Default::default(),
        "nothing is deleted before the snapshot's write is durable"
    );
    assert_eq!(snapshots(dir.path()).len(), 2);
    storage.sync().unwrap();
    let compaction = storage.maybe_compact().unwrap();
    assert_eq!(compaction.snapshots_removed, 1);
    assert_eq!(snapshots(dir.path()).len(), 1);

    let after = segments(dir.path());
    assert!(
        after.len() <= 3,
        "only segments with entries after 95 and the active one remain: {after:?}"
    );
    assert!(after.first() > before.first());
    drop(storage);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered, model.state);
    assert_eq!(recovered.hard_state.voted_for, Some(3));
    assert_eq!(recovered.entries.first().map(|e| e.index), Some(96));
}

#[test]
fn invalid_writes_are_refused_and_leave_storage_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    let first = Write {
        seq: 5,
        entries: vec![entry(1, 1, 8)],
        ..Write::default()
    };
    storage.append(&first).unwrap();
    let stale = Write {
        seq: 5,
        entries: vec![entry(2, 1, 8)],
        ..Write::default()
    };
    assert!(matches!(
        storage.append(&stale),
        Err(StorageError::InvalidWrite { seq: 5, .. })
    ));
    let gap = Write {
        seq: 6,
        entries: vec![entry(3, 1, 8)],
        ..Write::default()
    };
    let error = storage.append(&gap).unwrap_err();
    assert!(error.to_string().contains("gap"), "{error}");
    assert!(!storage.is_halted());
    assert_eq!(storage.sync().unwrap(), Some(5));
}

#[test]
fn large_writes_fill_segments_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(4096, 1 << 20);
    let (mut storage, _) = open(dir.path(), &options);
    let mut model = Model::default();
    for round in 0..3u64 {
        let write = Write {
            seq: model.next_seq(),
            entries: (1..=4).map(|i| entry(round * 4 + i, 1, 3000)).collect(),
            ..Write::default()
        };
        storage.append(&write).unwrap();
        model.state.apply(&write);
    }
    storage.sync().unwrap();
    drop(storage);
    assert!(segments(dir.path()).len() >= 3);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered, model.state);
}

/// Recovery reads every segment on disk, and only sealed segments can be
/// deleted: compaction seals an active segment that holds more than a
/// quarter of the segment size, so that with segments much larger than
/// what a snapshot interval writes, the folder (and the start-up time)
/// stays about one snapshot interval long instead of growing to the
/// segment size; and the state reopens unchanged.
#[test]
fn compaction_seals_a_long_active_segment_so_the_next_one_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    // The bytes on disk are the records: no zeros written ahead.
    let options = StorageOptions {
        preallocate: 0,
        ..options(64 << 10, 1 << 20)
    };
    let (mut storage, _) = open(dir.path(), &options);
    let mut model = Model::default();
    let mut index = 0;
    let mut lengths = Vec::new();
    for round in 1..=20u64 {
        // 100 entries of 200 bytes (about 21 KiB, a third of the segment
        // size), then a snapshot a little behind the last entry.
        for _ in 0..100 {
            index += 1;
            let write = Write {
                seq: model.next_seq(),
                hard_state: (index == 1).then_some(HardState {
                    term: 1,
                    voted_for: Some(1),
                }),
                entries: vec![entry(index, 1, 200)],
                ..Write::default()
            };
            storage.append(&write).unwrap();
            model.state.apply(&write);
        }
        let write = Write {
            seq: model.next_seq(),
            snapshot: Some(Box::new(snapshot(index - 10, 1, 100))),
            ..Write::default()
        };
        storage.append(&write).unwrap();
        model.state.apply(&write);
        storage.sync().unwrap();
        let compaction = storage.maybe_compact().unwrap();
        if round > 2 {
            assert!(compaction.segments_removed > 0, "round {round}");
        }
        let on_disk: u64 = segments(dir.path())
            .iter()
            .map(|file| file.metadata().unwrap().len())
            .sum();
        lengths.push(on_disk);
    }
    // Without the seal, one segment would have grown past 64 KiB (20
    // rounds write about 420 KiB) before any deletion.
    let longest = lengths.iter().max().unwrap();
    assert!(
        *longest < 2 * 22 * 1024 + 1024,
        "segment bytes per round: {lengths:?}"
    );
    drop(storage);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered, model.state);
}
