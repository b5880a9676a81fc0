//! The multi-group write-ahead log: many groups round-trip through
//! restarts and purges, a slow group pins segments until its snapshot,
//! removed groups vanish, one fsync commits every group's writes, and
//! damage is refused with the file and the byte offset.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use distribkv_core::raft::{HardState, PersistedState, Write};
use distribkv_core::rng::Rng;
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostWrite;
use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};
use distribkv_native::storage::{Corruption, RaftStorage, StorageError, StorageOptions};

use crate::multi_support::{Groups, write_of};
use crate::support::{IDENTITY, entry, snapshot};

fn options(segment_size: u64, purge_after: u64, rewrite_limit: u64) -> MultiStorageOptions {
    MultiStorageOptions {
        // No zeros written ahead: these tests damage and cut segments at
        // offsets read from their lengths.
        storage: StorageOptions {
            segment_size,
            write_buffer_size: 0,
            preallocate: 0,
            ..StorageOptions::default()
        },
        purge_after,
        rewrite_limit,
        ..MultiStorageOptions::default()
    }
}

fn open(
    dir: &Path,
    options: &MultiStorageOptions,
) -> (MultiStorage, BTreeMap<GroupId, PersistedState>) {
    MultiStorage::open(dir, IDENTITY, options.clone()).expect("open the multi-group log")
}

fn open_error(dir: &Path) -> StorageError {
    MultiStorage::open(dir, IDENTITY, MultiStorageOptions::default())
        .expect_err("recovery refuses the folder")
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("mwal-") && name.ends_with(".log")
        })
        .collect();
    found.sort();
    found
}

fn group_snapshots(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("gsnap-"))
        .collect();
    found.sort();
    found
}

/// Checks that `entries()` reads back every group's log as the oracle has it.
fn check_reads(storage: &mut MultiStorage, expected: &BTreeMap<GroupId, PersistedState>) {
    for (group, state) in expected {
        let (first, last) = storage.entry_range(*group).expect("a known group");
        assert_eq!(last, state.last_index(), "group {group}'s last index");
        let read = storage.entries(*group, first, last + 1).unwrap();
        assert_eq!(read, state.entries, "group {group}'s entries read back");
    }
}

#[test]
fn many_groups_round_trip_through_restarts_purges_and_removals() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(4096, 8192, 64 << 10);
    let (mut storage, recovered) = open(dir.path(), &options);
    assert!(recovered.is_empty());
    let mut groups = Groups::default();
    let mut rng = Rng::new(14);
    let mut removed = 0;
    let mut purges = 0;
    let mut segments_removed = 0;
    let mut entries_rewritten = 0;
    for round in 0..800 {
        let count = 1 + rng.index(6);
        let step = groups.step(&mut rng, 64, count);
        storage.append(&step).unwrap();
        if rng.chance(0.01)
            && let Some(&group) = groups.existing().first()
        {
            storage.remove_group(group).unwrap();
            groups.remove(group);
            removed += 1;
        }
        if rng.chance(0.3) {
            assert_eq!(storage.sync().unwrap(), Some(step.seq));
            let purge = storage.maybe_compact().unwrap();
            purges += usize::from(purge.segments_removed > 0);
            segments_removed += purge.segments_removed;
            entries_rewritten += purge.entries_rewritten;
        }
        if round % 200 == 199 {
            storage.sync().unwrap();
            check_reads(&mut storage, &groups.states());
            drop(storage);
            let (reopened, recovered) = open(dir.path(), &options);
            assert_eq!(recovered, groups.states(), "after {round} steps");
            storage = reopened;
        }
    }
    assert!(removed > 3, "{removed} groups removed");
    assert!(
        purges > 3 && segments_removed > 10,
        "{purges} purges removed {segments_removed} segments"
    );
    assert!(entries_rewritten > 0, "live entries were copied");
    // Without pinning, the log stays within about twice the live
    // entries (or `purge_after`) and a segment or two.
    let live: u64 = groups
        .states()
        .values()
        .flat_map(|s| &s.entries)
        .map(|e| e.size() as u64)
        .sum();
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    println!("{live} bytes of live entries, {on_disk} bytes of segments");
    assert!(
        on_disk <= (2 * live).max(8192) + 3 * 4096 + live,
        "old segments are deleted: {on_disk} bytes left for {live} live"
    );
    // Only each live group's current snapshot is kept.
    storage.sync().unwrap();
    storage.maybe_compact().unwrap();
    let expected: Vec<String> = groups
        .states()
        .iter()
        .filter_map(|(group, state)| {
            state.snapshot.as_ref().map(|s| {
                format!(
                    "gsnap-{group:020}-{:020}-{:020}.snap",
                    s.meta.index, s.meta.term
                )
            })
        })
        .collect();
    assert_eq!(group_snapshots(dir.path()), expected);
}

/// One step's writes of 16 groups are one record and one fsync.
#[test]
fn one_fsync_commits_every_group_of_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &MultiStorageOptions::default());
    for seq in 1..=10u64 {
        let writes = (1..=16)
            .map(|group| {
                (
                    group,
                    Write {
                        seq,
                        hard_state: (seq == 1).then_some(HardState {
                            term: 1,
                            voted_for: Some(2),
                        }),
                        entries: vec![entry(seq, 1, 100)],
                        snapshot: None,
                    },
                )
            })
            .collect();
        storage.append(&HostWrite { seq, writes }).unwrap();
        assert_eq!(storage.sync().unwrap(), Some(seq));
    }
    let stats = storage.stats();
    assert_eq!(
        (stats.syncs(), stats.steps(), stats.group_writes()),
        (10, 10, 160)
    );
    drop(storage);
    let (_, recovered) = open(dir.path(), &MultiStorageOptions::default());
    assert_eq!(recovered.len(), 16);
    assert!(recovered.values().all(|s| s.last_index() == 10));
}

/// A group with a big live tail is not rewritten: it pins the old
/// segments (reported in the stats, for the driver to have the host
/// snapshot it) until a snapshot covers its tail, then they go.
#[test]
fn a_slow_group_pins_segments_until_its_snapshot_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(2048, 4096, 1000);
    let (mut storage, _) = open(dir.path(), &options);
    let mut seq = 0;
    let mut next = |storage: &mut MultiStorage, group, write: Write| {
        seq += 1;
        storage.append(&write_of(group, seq, write)).unwrap();
        storage.sync().unwrap();
        storage.maybe_compact().unwrap()
    };
    // Group 1: 20 entries of 200 bytes (about 4.5 KB live), then quiet.
    for index in 1..=20 {
        let write = Write {
            seq: index,
            entries: vec![entry(index, 1, 200)],
            ..Write::default()
        };
        next(&mut storage, 1, write);
    }
    // Group 2 writes a lot and snapshots often.
    let mut pinned = 0;
    for index in 1..=200u64 {
        let mut write = Write {
            seq: index,
            entries: vec![entry(index, 1, 100)],
            ..Write::default()
        };
        if index % 10 == 0 {
            write.snapshot = Some(Box::new(snapshot(index - 1, 1, 10)));
        }
        let purge = next(&mut storage, 2, write);
        if purge.pinned_by == Some(1) {
            pinned += 1;
        }
    }
    assert!(pinned > 0, "group 1 pinned the old segments");
    assert_eq!(storage.stats().pinned_by(), Some(1), "reported");
    assert!(
        storage.stats().log_bytes() >= 4 * 4096,
        "{} bytes of log",
        storage.stats().log_bytes()
    );
    assert_eq!(
        storage.stats().snapshot_wanted(),
        Some(1),
        "asked of the driver: the log holds four times purge_after"
    );
    assert_eq!(
        storage.segment_numbers()[0],
        1,
        "the first segment holds group 1's tail"
    );
    // Group 1 snapshots its whole log: its tail no longer pins anything.
    let before = storage.segment_numbers().len();
    let purge = next(
        &mut storage,
        1,
        Write {
            seq: 21,
            snapshot: Some(Box::new(snapshot(20, 1, 10))),
            ..Write::default()
        },
    );
    assert!(
        purge.segments_removed > 0 && purge.pinned_by.is_none(),
        "{purge:?} with segments {:?}",
        storage.segment_numbers()
    );
    assert!(storage.segment_numbers().len() < before);
    assert_eq!(storage.stats().pinned_by(), None);
    assert_eq!(storage.stats().snapshot_wanted(), None);
    drop(storage);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered[&1].snapshot.as_ref().unwrap().meta.index, 20);
    assert!(recovered[&1].entries.is_empty());
    assert_eq!(recovered[&2].last_index(), 200);
}

#[test]
fn a_removed_group_is_gone_after_a_restart_with_its_snapshot_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = MultiStorageOptions::default();
    let (mut storage, _) = open(dir.path(), &options);
    for group in [7, 8] {
        let write = Write {
            seq: 1,
            snapshot: Some(Box::new(snapshot(5, 1, 10))),
            entries: vec![entry(6, 1, 10)],
            ..Write::default()
        };
        storage.append(&write_of(group, group, write)).unwrap();
    }
    storage.create_group(9).unwrap();
    storage.sync().unwrap();
    storage.maybe_compact().unwrap();
    assert_eq!(group_snapshots(dir.path()).len(), 2);
    storage.remove_group(7).unwrap();
    storage.sync().unwrap();
    assert_eq!(storage.maybe_compact().unwrap().snapshots_removed, 1);
    assert_eq!(storage.groups().collect::<Vec<_>>(), [8, 9]);
    drop(storage);
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered.keys().copied().collect::<Vec<_>>(), [8, 9]);
    assert_eq!(recovered[&9], PersistedState::default());
    assert_eq!(recovered[&8].last_index(), 6);
}

#[test]
fn a_step_that_breaks_the_contract_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &MultiStorageOptions::default());
    let good = Write {
        seq: 1,
        entries: vec![entry(1, 1, 10)],
        ..Write::default()
    };
    let gap = Write {
        seq: 1,
        entries: vec![entry(5, 1, 10)],
        ..Write::default()
    };
    let step = HostWrite {
        seq: 1,
        writes: vec![(1, good.clone()), (2, gap)],
    };
    let error = storage.append(&step).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::InvalidGroupWrite {
                seq: 1,
                group: 2,
                ..
            }
        ),
        "{error}"
    );
    // A group's second write in the same step is checked after its first.
    let second = Write {
        seq: 2,
        entries: vec![entry(2, 1, 10)],
        ..Write::default()
    };
    storage
        .append(&HostWrite {
            seq: 2,
            writes: vec![(1, good), (1, second)],
        })
        .unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (_, recovered) = open(dir.path(), &MultiStorageOptions::default());
    assert_eq!(recovered.keys().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(recovered[&1].last_index(), 2);
}

/// Steps of one entry each for group 1, synced one by one; returns the
/// folder and the record boundaries of the first segment.
fn folder_with_segments(count: u64) -> (tempfile::TempDir, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let options = options(1024, u64::MAX, 0);
    let (mut storage, _) = open(dir.path(), &options);
    let mut boundaries = vec![40];
    for seq in 1..=count {
        let write = Write {
            seq,
            entries: vec![entry(seq, 1, 100)],
            ..Write::default()
        };
        storage.append(&write_of(1, seq, write)).unwrap();
        storage.sync().unwrap();
        let first = fs::metadata(&segments(dir.path())[0]).unwrap().len();
        if first > *boundaries.last().unwrap() {
            boundaries.push(first);
        }
    }
    (dir, boundaries)
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn damage_is_refused_naming_the_file_and_the_offset() {
    let (dir, boundaries) = folder_with_segments(30);
    let files = segments(dir.path());
    assert!(files.len() >= 3);
    // A flipped byte inside the third record of the first segment.
    let record = boundaries[2];
    flip_byte(&files[0], record + 20);
    let error = open_error(dir.path());
    match &error {
        StorageError::CorruptSegment {
            path,
            offset,
            problem: Corruption::RecordChecksum,
        } => {
            assert_eq!((path, *offset), (&files[0], record));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&files[0].display().to_string())
            && message.contains(&format!("at byte {record}")),
        "{message}"
    );
}

#[test]
fn a_truncated_middle_segment_or_header_is_refused() {
    let (dir, _) = folder_with_segments(30);
    let files = segments(dir.path());
    let length = fs::metadata(&files[1]).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap()
        .set_len(length - 5)
        .unwrap();
    let error = open_error(dir.path());
    assert!(
        matches!(&error, StorageError::CorruptSegment { path, .. } if *path == files[1]),
        "{error}"
    );

    let (dir, _) = folder_with_segments(30);
    let files = segments(dir.path());
    let last = files.last().unwrap();
    flip_byte(last, 3);
    let error = open_error(dir.path());
    assert!(
        matches!(&error, StorageError::CorruptSegment { path, offset: 0, problem: Corruption::BadMagic { .. } } if path == last),
        "{error}"
    );
}

#[test]
fn a_torn_tail_is_cut_off_and_writing_goes_on() {
    let (dir, _) = folder_with_segments(30);
    let files = segments(dir.path());
    let last = files.last().unwrap();
    let length = fs::metadata(last).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(last).unwrap();
    file.write_all(&[7, 0, 0, 0, 200, 0, 0, 0, 4, 1, 2])
        .unwrap();
    drop(file);
    let options = options(1024, u64::MAX, 0);
    let (mut storage, recovered) = open(dir.path(), &options);
    assert_eq!(recovered[&1].last_index(), 30);
    assert_eq!(fs::metadata(last).unwrap().len(), length);
    let write = Write {
        seq: 31,
        entries: vec![entry(31, 1, 10)],
        ..Write::default()
    };
    storage.append(&write_of(1, 1, write)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    assert_eq!(open(dir.path(), &options).1[&1].last_index(), 31);
}

#[test]
fn single_and_multi_group_folders_refuse_each_other() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &MultiStorageOptions::default()));
    let error = RaftStorage::open(dir.path(), IDENTITY, StorageOptions::default()).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::CorruptIdentity {
                problem: Corruption::BadMagic { .. },
                ..
            }
        ),
        "{error}"
    );
    let single = tempfile::tempdir().unwrap();
    drop(RaftStorage::open(single.path(), IDENTITY, StorageOptions::default()).unwrap());
    let error = open_error(single.path());
    assert!(
        matches!(
            error,
            StorageError::CorruptIdentity {
                problem: Corruption::BadMagic { .. },
                ..
            }
        ),
        "{error}"
    );
}

/// A folder of either kind that lost its identity file is refused by both
/// kinds of storage, as log files without an identity file are: the other
/// kind never initialises it as a new, empty folder over the log it holds.
#[test]
fn a_folder_without_its_identity_file_is_refused_by_either_kind() {
    let write = Write {
        seq: 1,
        entries: vec![entry(1, 1, 10)],
        ..Write::default()
    };
    let multi = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(multi.path(), &MultiStorageOptions::default());
    storage.append(&write_of(1, 1, write.clone())).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let single = tempfile::tempdir().unwrap();
    let (mut storage, _) =
        RaftStorage::open(single.path(), IDENTITY, StorageOptions::default()).unwrap();
    storage.append(&write).unwrap();
    storage.sync().unwrap();
    drop(storage);
    for dir in [multi.path(), single.path()] {
        let identity = dir.join("identity");
        fs::remove_file(&identity).unwrap();
        let errors = [
            open_error(dir),
            RaftStorage::open(dir, IDENTITY, StorageOptions::default()).unwrap_err(),
        ];
        for error in errors {
            assert!(
                matches!(&error, StorageError::MissingIdentity { path, .. } if *path == identity),
                "{error}"
            );
        }
        assert!(!identity.exists(), "nothing was initialised");
    }
}

/// Every segment gone, a group's snapshot file left: refused as a lost
/// log, not started empty with the snapshot removed as stale.
#[test]
fn a_group_snapshot_without_any_segment_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &MultiStorageOptions::default());
    let write = Write {
        seq: 1,
        entries: vec![entry(1, 1, 10), entry(2, 1, 10)],
        snapshot: Some(Box::new(snapshot(1, 1, 20))),
        ..Write::default()
    };
    storage.append(&write_of(1, 1, write)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let snapshots = group_snapshots(dir.path());
    assert_eq!(snapshots.len(), 1);
    for segment in segments(dir.path()) {
        fs::remove_file(segment).unwrap();
    }
    match open_error(dir.path()) {
        StorageError::MissingLog { path, .. } => {
            assert!(path.ends_with(&snapshots[0]), "{}", path.display());
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        group_snapshots(dir.path()),
        snapshots,
        "the snapshot is kept"
    );
    assert!(segments(dir.path()).is_empty(), "no log was started");
}
