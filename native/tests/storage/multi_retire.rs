//! Retired groups in the multi-group log: the retire record is a durable
//! tombstone that restarts and purges agree on (the group's state and
//! snapshot files go, the segments it held are freed, it never comes back
//! and takes no write), and a damaged retire record is refused naming the
//! file and the byte offset, as any other record.

use std::fs;
use std::path::{Path, PathBuf};

use distribkv_core::raft::Write;
use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};
use distribkv_native::storage::{Corruption, InvalidWrite, StorageError};

use crate::multi_support::{small_segments, write_of};
use crate::support::{IDENTITY, entry, snapshot};

fn options() -> MultiStorageOptions {
    MultiStorageOptions {
        purge_after: 4096,
        ..small_segments()
    }
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// Group 1 writes a snapshot and a tail, then is retired while group 2
/// keeps writing: its snapshot file goes at once, the purges free every
/// segment that held its entries, and neither a restart nor a purge brings
/// it back; a write or a creation of it is refused afterwards.
#[test]
fn a_retired_group_stays_gone_through_restarts_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = MultiStorage::open(dir.path(), IDENTITY, options()).unwrap();
    let mut seq = 0;
    for index in 1..=10 {
        let mut write = Write {
            seq: index,
            entries: vec![entry(index, 1, 150)],
            ..Write::default()
        };
        if index == 5 {
            write.snapshot = Some(Box::new(snapshot(4, 1, 20)));
        }
        seq += 1;
        storage.append(&write_of(1, seq, write)).unwrap();
    }
    storage.sync().unwrap();
    storage.maybe_compact().unwrap();
    assert_eq!(files(dir.path(), "gsnap-").len(), 1);
    let held_by_1 = storage.segment_numbers();
    storage.retire_group(1).unwrap();
    storage.sync().unwrap();
    assert_eq!(storage.maybe_compact().unwrap().snapshots_removed, 1);
    assert!(files(dir.path(), "gsnap-").is_empty());
    assert_eq!(storage.groups().count(), 0);
    assert_eq!(storage.retired().collect::<Vec<_>>(), [1]);

    // Restarted: still retired, no state.
    drop(storage);
    let (mut storage, recovered) = MultiStorage::open(dir.path(), IDENTITY, options()).unwrap();
    assert!(recovered.is_empty(), "{:?}", recovered.keys());
    assert_eq!(storage.retired().collect::<Vec<_>>(), [1]);

    // Group 2 writes until purges have deleted every segment group 1 used.
    let mut purged = 0;
    for index in 1..=200 {
        let mut write = Write {
            seq: index,
            entries: vec![entry(index, 1, 100)],
            ..Write::default()
        };
        if index % 10 == 0 {
            write.snapshot = Some(Box::new(snapshot(index - 1, 1, 10)));
        }
        seq += 1;
        storage.append(&write_of(2, seq, write)).unwrap();
        storage.sync().unwrap();
        purged += storage.maybe_compact().unwrap().segments_removed;
    }
    let first = storage.segment_numbers()[0];
    assert!(purged > 0 && held_by_1.iter().all(|s| *s < first));

    // The tombstone outlived the segments of the retire record.
    drop(storage);
    let (mut storage, recovered) = MultiStorage::open(dir.path(), IDENTITY, options()).unwrap();
    assert_eq!(recovered.keys().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(recovered[&2].last_index(), 200);
    assert_eq!(storage.retired().collect::<Vec<_>>(), [1]);
    let write = Write {
        seq: 11,
        entries: vec![entry(1, 1, 10)],
        ..Write::default()
    };
    match storage.append(&write_of(1, seq + 1, write)) {
        Err(StorageError::InvalidGroupWrite {
            group: 1,
            problem: InvalidWrite::GroupRetired,
            ..
        }) => {}
        other => panic!("a write to a retired group: {other:?}"),
    }
    assert!(storage.create_group(1).is_err());
    // The refusal left the storage usable.
    storage.create_group(3).unwrap();
    storage.sync().unwrap();
}

/// A flipped byte inside a retire record (not the log's last record, which
/// would read as a torn tail) is refused naming the segment and the
/// record's offset.
#[test]
fn a_damaged_retire_record_is_refused_with_the_file_and_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    // The record's offset is read from the segment's length: no zeros ahead.
    let mut options = options();
    options.storage.preallocate = 0;
    let (mut storage, _) = MultiStorage::open(dir.path(), IDENTITY, options).unwrap();
    let write = |index| Write {
        seq: index,
        entries: vec![entry(index, 1, 50)],
        ..Write::default()
    };
    storage.append(&write_of(1, 1, write(1))).unwrap();
    storage.append(&write_of(2, 2, write(1))).unwrap();
    storage.sync().unwrap();
    let segment = files(dir.path(), "mwal-").pop().unwrap();
    let offset = fs::metadata(&segment).unwrap().len();
    storage.retire_group(1).unwrap();
    storage.append(&write_of(2, 3, write(2))).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let mut bytes = fs::read(&segment).unwrap();
    // The frame is 9 bytes of header, then the payload (two bytes here).
    bytes[offset as usize + 10] ^= 0x40;
    fs::write(&segment, bytes).unwrap();
    let error = MultiStorage::open(dir.path(), IDENTITY, MultiStorageOptions::default())
        .expect_err("the damaged record is refused");
    match &error {
        StorageError::CorruptSegment {
            path,
            offset: at,
            problem: Corruption::RecordChecksum,
        } => assert_eq!((path, *at), (&segment, offset)),
        other => panic!("expected a checksum error, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&segment.display().to_string())
            && message.contains(&format!("at byte {offset}")),
        "{message}"
    );
}
