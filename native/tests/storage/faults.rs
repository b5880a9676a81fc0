//! Failing fsyncs and a full disk: typed errors, a halted storage, and no
//! loss of anything acknowledged.

use std::io;

use crate::support::{logs_of, open, oracle, simple_writes, snapshot};
use distribkv_core::raft::Write;
use distribkv_native::storage::{FaultInjector, StorageError, StorageOptions};

fn options_with(faults: &FaultInjector) -> StorageOptions {
    StorageOptions {
        faults: faults.clone(),
        write_buffer_size: 0,
        ..StorageOptions::default()
    }
}

#[test]
fn a_failed_fsync_acknowledges_nothing_and_halts_the_storage() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let (mut storage, _) = open(dir.path(), &options_with(&faults));
    let writes = simple_writes(3, 50);
    storage.append(&writes[0]).unwrap();
    assert_eq!(storage.sync().unwrap(), Some(1));

    faults.fail_syncs();
    storage.append(&writes[1]).unwrap();
    let error = storage.sync().unwrap_err();
    match &error {
        StorageError::Io { action, source, .. } => {
            assert_eq!(*action, "fsync");
            assert_eq!(source.raw_os_error(), Some(5));
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        storage.durable_seq(),
        Some(1),
        "seq 2 is never acknowledged"
    );
    assert!(storage.is_halted());

    // Healing the disk does not revive the storage: fsync errors are not retryable.
    faults.heal();
    assert!(matches!(
        storage.append(&writes[2]),
        Err(StorageError::Halted { .. })
    ));
    assert!(matches!(storage.sync(), Err(StorageError::Halted { .. })));
    assert_eq!(storage.durable_seq(), Some(1));
    drop(storage);

    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert!(
        recovered == oracle(&writes[..1]) || recovered == oracle(&writes[..2]),
        "what was acknowledged survives: {recovered:?}"
    );
}

/// Records appended to the end of the segment: the full disk cuts one
/// short, a torn tail at the restart.
#[test]
fn a_full_disk_is_a_typed_error_and_loses_nothing_acknowledged() {
    full_disk(0, 450);
}

/// Zeros written ahead 256 bytes at a time: the full disk fails a write of
/// zeros (records only overwrite them), zeros end the log at the restart;
/// for room left anywhere in a record or in the zeros.
#[test]
fn a_full_disk_fails_the_zeros_written_ahead_and_loses_nothing_acknowledged() {
    for room in (300..=900).step_by(25) {
        full_disk(256, room);
    }
}

/// Fills the disk after `room` bytes once 10 writes are acknowledged.
fn full_disk(preallocate: u64, room: u64) {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let options = StorageOptions {
        preallocate,
        ..options_with(&faults)
    };
    let (mut storage, _) = open(dir.path(), &options);
    let writes = simple_writes(40, 100);
    for write in &writes[..10] {
        storage.append(write).unwrap();
    }
    assert_eq!(storage.sync().unwrap(), Some(10));

    faults.fill_disk_after(room);
    let mut appended = 10;
    let error = loop {
        match storage.append(&writes[appended]) {
            Ok(()) => appended += 1,
            Err(error) => break error,
        }
    };
    assert!(appended < 40);
    match &error {
        StorageError::Io { source, .. } => {
            assert_eq!(source.kind(), io::ErrorKind::StorageFull)
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(
        error.to_string().contains("wal-00000000000000000001.log"),
        "{error}"
    );
    assert!(matches!(storage.sync(), Err(StorageError::Halted { .. })));
    assert_eq!(storage.durable_seq(), Some(10));
    drop(storage);

    // After a restart with space again: at least everything acknowledged,
    // at most what was handed to the kernel; a partial record is a torn
    // tail, partial zeros the end.
    let ((_, recovered), logs) = logs_of(|| open(dir.path(), &StorageOptions::default()));
    if preallocate > 0 {
        assert!(
            !logs.contains("torn tail"),
            "no record is cut short when records only overwrite zeros: {logs}"
        );
    }
    let prefixes: Vec<_> = (10..=appended).map(|n| oracle(&writes[..n])).collect();
    assert!(prefixes.contains(&recovered), "{recovered:?}");
}

/// Issue 15: when a roll comes right after a group commit, the seal is
/// the only unsynced record; it must still be fsynced, and before the
/// next segment is created, or a power cut can keep the new segment and
/// drop the old one's seal, which recovery refuses.
#[test]
fn a_roll_right_after_a_group_commit_fsyncs_the_seal_before_the_next_segment_exists() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    // No zeros written ahead: frame lengths are read from the file's.
    let options = StorageOptions {
        segment_size: 400,
        preallocate: 0,
        ..options_with(&faults)
    };
    let (mut storage, _) = open(dir.path(), &options);
    let writes = simple_writes(20, 30);
    let first_segment = dir.path().join("wal-00000000000000000001.log");
    let length = || first_segment.metadata().unwrap().len();
    let mut lengths = vec![length()];
    let mut next = 0;
    // Group commits of one write each, until the next one cannot fit.
    loop {
        let frame = match lengths.as_slice() {
            [.., before, after] if next > 1 => after - before,
            _ => 0,
        };
        if frame > 0 && length() + frame > options.segment_size {
            break;
        }
        storage.append(&writes[next]).unwrap();
        assert_eq!(storage.sync().unwrap(), Some(writes[next].seq));
        next += 1;
        lengths.push(length());
    }
    let sealed_length = length() + 10; // a seal is a 9-byte frame header and 1 byte

    faults.hold_syncs();
    let write = writes[next].clone();
    let roller = std::thread::spawn(move || {
        storage.append(&write).unwrap();
        storage.sync().map(|_| storage)
    });
    while faults.syncs_waiting() == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("wal-00000000000000000002")),
        "the first fsync of the roll must be the seal's, before the next segment exists: {names:?}"
    );
    assert_eq!(
        length(),
        sealed_length,
        "the seal is written, being fsynced"
    );
    faults.release_syncs();
    let storage = roller.join().unwrap().unwrap();
    assert_eq!(storage.durable_seq(), Some(writes[next].seq));
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes[..=next]));
}

#[test]
fn a_failed_snapshot_write_halts_the_storage() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let (mut storage, _) = open(dir.path(), &options_with(&faults));
    let writes = simple_writes(3, 10);
    for write in &writes {
        storage.append(write).unwrap();
    }
    storage.sync().unwrap();
    faults.fail_syncs();
    let error = storage
        .append(&Write {
            seq: 4,
            snapshot: Some(Box::new(snapshot(2, 1, 1000))),
            ..Write::default()
        })
        .unwrap_err();
    assert!(matches!(error, StorageError::Io { .. }), "{error}");
    assert!(storage.is_halted());
    faults.heal();
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
}
