//! Data folders of older format versions still open; newer ones are refused.
//!
//! `tests/fixtures/format-v1/` is a data folder written by the storage of
//! format version 1, as of commit a2a29e0 (its `Membership` was voters and
//! learners only), with a program that wrote these entries with that
//! commit's `RaftStorage`: a no-op, commands, a membership entry with a
//! learner, a snapshot at index 3 whose membership has that learner, and a
//! later membership entry. Its one log segment is unsealed, as a node
//! leaves it when it stops.
//!
//! `tests/fixtures/format-v2/` is a data folder of format version 2 (before
//! a checkpoint named the first segment kept), written by the program in
//! `tests/fixtures/format-v2.md` at commit b10e15b: 60 entries over 4 KiB
//! segments, a snapshot at 40 whose compaction deleted segments 1 and 2,
//! then 3 more entries in the unsealed segment 5.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use distribkv_core::raft::{Entry, HardState, Membership, Payload, Snapshot, SnapshotMeta, Write};
use distribkv_native::storage::{RaftStorage, StorageError, StorageOptions};

use crate::support::{IDENTITY, copy_dir, segments, set_version, version_of};

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    copy_dir(&source, &dir);
    (temp, dir)
}

fn command(text: &'static str) -> Payload {
    Payload::Command(Bytes::from_static(text.as_bytes()))
}

#[test]
fn a_version_1_folder_opens_and_goes_on_in_the_current_version() {
    let (_temp, dir) = fixture();
    let old_segment = segments(&dir)[0].clone();
    assert_eq!(version_of(&old_segment), 1);

    let (mut storage, state) =
        RaftStorage::open(&dir, IDENTITY, StorageOptions::default()).unwrap();
    let mut with_learner = Membership::with_voters([1, 2, 3]);
    with_learner.learners = vec![4];
    assert_eq!(
        state.hard_state,
        HardState {
            term: 2,
            voted_for: Some(2)
        }
    );
    let snapshot = state.snapshot.as_ref().expect("the snapshot at 3");
    assert_eq!((snapshot.meta.index, snapshot.meta.term), (3, 1));
    assert_eq!(snapshot.meta.membership, with_learner);
    assert_eq!(&snapshot.data[..], b"state at 3");
    let entry = |index, term, payload| Entry {
        index,
        term,
        payload,
    };
    let expected = vec![
        entry(4, 1, command("two")),
        entry(5, 2, Payload::Noop),
        entry(
            6,
            2,
            Payload::Membership(Box::new(Membership::with_voters([1, 2, 3, 4]))),
        ),
        entry(7, 2, command("three")),
    ];
    assert_eq!(state.entries, expected);

    // The version-1 segment was sealed; new records go to a segment of
    // the current version, and the folder opens again.
    let mut promoting = Membership::with_voters([1, 2, 3, 4]);
    promoting = promoting.add_member(5, "h5:1".into(), true).unwrap();
    let written = entry(8, 2, Payload::Membership(Box::new(promoting)));
    storage
        .append(&Write {
            seq: 1,
            snapshot: None,
            hard_state: None,
            entries: vec![written.clone()],
        })
        .unwrap();
    storage.sync().unwrap();
    drop(storage);
    let files = segments(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!((version_of(&files[0]), version_of(&files[1])), (1, 3));
    let (_, again) = RaftStorage::open(&dir, IDENTITY, StorageOptions::default()).unwrap();
    let mut expected = expected;
    expected.push(written);
    assert_eq!(again.entries, expected);
    assert_eq!(again.snapshot, state.snapshot);
}

#[test]
fn a_compacted_version_2_folder_opens_and_goes_on_in_version_3() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v2");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    copy_dir(&source, &dir);
    let old = segments(&dir);
    assert_eq!(old.len(), 3, "{old:?}");
    assert!(old.iter().all(|segment| version_of(segment) == 2));

    let entry = |index: u64| Entry {
        index,
        term: 1,
        payload: Payload::Command(Bytes::from(format!(
            "command {index:03} {}",
            "x".repeat(200)
        ))),
    };
    let (mut storage, state) =
        RaftStorage::open(&dir, IDENTITY, StorageOptions::default()).unwrap();
    let snapshot = state.snapshot.as_ref().expect("the snapshot at 40");
    assert_eq!(
        (snapshot.meta.index, &snapshot.data[..]),
        (40, &b"state at 40"[..])
    );
    assert_eq!(state.entries, (41..=63).map(entry).collect::<Vec<_>>());

    // The version-2 segment was sealed; a compaction now writes a
    // checkpoint that names the first segment kept, so losing that segment
    // is refused.
    storage
        .append(&Write {
            seq: 1,
            snapshot: Some(Box::new(Snapshot {
                meta: SnapshotMeta {
                    index: 62,
                    term: 1,
                    membership: Membership::with_voters([1, 2, 3]),
                },
                data: Bytes::from_static(b"state at 62"),
            })),
            hard_state: None,
            entries: vec![],
        })
        .unwrap();
    storage.sync().unwrap();
    assert!(storage.maybe_compact().unwrap().segments_removed > 0);
    drop(storage);
    let files = segments(&dir);
    assert_eq!(
        files.iter().map(|f| version_of(f)).collect::<Vec<_>>(),
        [2, 3],
        "the old segment of entry 63, then the new one: {files:?}"
    );
    let (_, again) = RaftStorage::open(&dir, IDENTITY, StorageOptions::default()).unwrap();
    assert_eq!(again.entries, vec![entry(63)]);
    std::fs::remove_file(&files[0]).unwrap();
    let error = RaftStorage::open(&dir, IDENTITY, StorageOptions::default())
        .map(drop)
        .expect_err("the lost segment is noticed");
    assert!(
        matches!(&error, StorageError::MissingLogPrefix { path } if *path == files[1]),
        "{error:?}"
    );
}

#[test]
fn a_folder_of_a_newer_version_is_refused_naming_the_file() {
    // Segments are written in version 3, snapshots in version 2.
    for (file, newer) in [("wal-", 4), ("snap-", 3)] {
        let (_temp, dir) = fixture();
        let path = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(file))
            .unwrap();
        set_version(&path, newer);
        let error = RaftStorage::open(&dir, IDENTITY, StorageOptions::default())
            .map(drop)
            .expect_err("a newer version is refused");
        assert!(
            matches!(&error, StorageError::NewerFormat { path: p, found, .. } if *p == path && *found == newer),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string())
                && message.contains(&format!("version {newer}"))
                && message.contains("newer distribKV"),
            "{message}"
        );
    }
}
