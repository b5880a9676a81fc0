//! Failing fsyncs and a full disk: typed errors, a halted storage, and no
//! loss of anything acknowledged.

mod storage_support;

/// Named `storage` so that `cargo test storage` selects these tests.
mod storage {
    use std::io;

    use crate::storage_support::{open, oracle, simple_writes, snapshot};
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

    #[test]
    fn a_full_disk_is_a_typed_error_and_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let faults = FaultInjector::new();
        let (mut storage, _) = open(dir.path(), &options_with(&faults));
        let writes = simple_writes(40, 100);
        for write in &writes[..10] {
            storage.append(write).unwrap();
        }
        assert_eq!(storage.sync().unwrap(), Some(10));

        // Room for a few records and a half.
        faults.fill_disk_after(450);
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
        // at most what was handed to the kernel; the partial record is a torn tail.
        let (_, recovered) = open(dir.path(), &StorageOptions::default());
        let prefixes: Vec<_> = (10..=appended).map(|n| oracle(&writes[..n])).collect();
        assert!(prefixes.contains(&recovered), "{recovered:?}");
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
}
