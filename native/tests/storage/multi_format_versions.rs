//! Format versions of the multi-group log: its segments are written in
//! version 3 since the retire record came (a build that does not know that
//! record refuses such a segment as written by a newer version, not as
//! damaged); folders written in version 2 still open, and a segment of a
//! version above 3 is refused, naming the file and its version.
//!
//! The version-2 folder is built here byte for byte: builds before the
//! step wrote exactly the records the current one does (the retire record
//! included), only with 2 in each segment header, so the folder is written
//! by the current storage and its segment headers are set back to 2 (with
//! their checksums).

use std::path::{Path, PathBuf};

use distribkv_core::raft::Write;
use distribkv_core::shard::host::HostWrite;
use distribkv_native::storage::StorageError;
use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};

use crate::multi_support::small_segments;
use crate::support::{IDENTITY, entry, files_named, set_version, snapshot, version_of};

fn options() -> MultiStorageOptions {
    small_segments()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "mwal-", ".log")
}

fn write(seq: u64, first: u64, count: u64) -> Write {
    Write {
        seq,
        entries: (first..first + count).map(|i| entry(i, 1, 120)).collect(),
        ..Write::default()
    }
}

/// A folder as a build of format version 2 leaves it: group 1 with a
/// snapshot and a tail over several segments, group 2 retired, group 3
/// created empty; the last segment unsealed.
fn version_2_folder(dir: &Path) {
    let (mut storage, _) = MultiStorage::open(dir, IDENTITY, options()).unwrap();
    for seq in 1..=12 {
        let mut one = write(seq, 2 * seq - 1, 2);
        if seq == 6 {
            one.snapshot = Some(Box::new(snapshot(8, 1, 30)));
        }
        let writes = vec![(1, one), (2, write(seq, seq, 1))];
        storage.append(&HostWrite { seq, writes }).unwrap();
    }
    storage.retire_group(2).unwrap();
    storage.create_group(3).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let files = segments(dir);
    assert!(files.len() > 1, "{files:?}");
    for file in &files {
        assert_eq!(version_of(file), 3);
        set_version(file, 2);
    }
}

#[test]
fn a_version_2_folder_opens_and_goes_on_in_version_3() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    version_2_folder(dir);
    let old = segments(dir);

    let (mut storage, states) = MultiStorage::open(dir, IDENTITY, options()).unwrap();
    assert_eq!(states.keys().copied().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(storage.retired().collect::<Vec<_>>(), [2]);
    let group = &states[&1];
    assert_eq!(group.snapshot.as_ref().unwrap().meta.index, 8);
    let expected: Vec<_> = (9..=24).map(|i| entry(i, 1, 120)).collect();
    assert_eq!(group.entries, expected);
    assert!(states[&3].entries.is_empty());

    // The version-2 tail was sealed at open; new records go to a segment
    // of version 3.
    let mut files = segments(dir);
    assert_eq!(files.len(), old.len() + 1, "{files:?}");
    assert_eq!(version_of(files.last().unwrap()), 3);
    storage
        .append(&HostWrite {
            seq: 1,
            writes: vec![(1, write(1, 25, 1)), (3, write(1, 1, 1))],
        })
        .unwrap();
    storage.sync().unwrap();
    drop(storage);
    files = segments(dir);
    let versions: Vec<u32> = files.iter().map(|f| version_of(f)).collect();
    let mut expected_versions = vec![2; old.len()];
    expected_versions.push(3);
    assert_eq!(versions, expected_versions);

    let (storage, again) = MultiStorage::open(dir, IDENTITY, options()).unwrap();
    let mut expected = expected;
    expected.push(entry(25, 1, 120));
    assert_eq!(again[&1].entries, expected);
    assert_eq!(again[&3].entries, [entry(1, 1, 120)]);
    assert_eq!(storage.retired().collect::<Vec<_>>(), [2]);
}

#[test]
fn a_segment_of_a_newer_version_is_refused_naming_the_file() {
    for pick in [0, usize::MAX] {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        version_2_folder(dir);
        let files = segments(dir);
        let path = files[pick.min(files.len() - 1)].clone();
        set_version(&path, 4);
        let error = MultiStorage::open(dir, IDENTITY, options())
            .map(drop)
            .expect_err("a newer version is refused");
        assert!(
            matches!(&error, StorageError::NewerFormat { path: p, found: 4, supported: 3 } if *p == path),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{} is in data format version 4, written by a newer distribKV; this build reads versions 1 to 3: run the newer version on this folder, or rebuild the node (member remove, then add it again under a new id)",
                path.display()
            )
        );
    }
}
