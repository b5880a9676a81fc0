//! Bit rot in a multi-group data folder, the counterpart of `bit_rot` for
//! the multi-group log: a flipped bit in any of its files (segments with
//! group batches, checkpoints holding copied entries and retire records;
//! the groups' snapshots; the identity file) is refused at start with an
//! error naming the file (and, in a segment, the offset of the damaged
//! record), never skipped. The one exception, as in the single-group log, is
//! a flip in the length field of the very last record that makes it run
//! past the end of the file: that record is cut off as a torn append, and
//! everything before it comes back, read through the index too.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use distribkv_core::raft::PersistedState;
use distribkv_core::rng::Rng;
use distribkv_core::shard::GroupId;
use distribkv_native::storage::StorageError;
use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};

use crate::multi_support::{Groups, small_segments};
use crate::support::{IDENTITY, copy_dir};

/// Length of a file header; records start after it.
const HEADER: usize = 40;

/// Small segments without zeros written ahead (each file is exactly its
/// records), purged often, every live entry copied into the checkpoints.
fn options() -> MultiStorageOptions {
    let mut options = MultiStorageOptions {
        purge_after: 4096,
        rewrite_limit: 1 << 20,
        ..small_segments()
    };
    options.storage.preallocate = 0;
    options
}

/// What a folder must recover: everything, or (the torn-write case)
/// everything but the last step.
struct Expected {
    all: BTreeMap<GroupId, PersistedState>,
    before_last_step: BTreeMap<GroupId, PersistedState>,
}

/// A folder written by random steps of four groups, each step synced and
/// followed by a purge (checkpoints, deleted segments, snapshot files), one
/// group retired on the way, and a last step appended after the last purge.
fn folder() -> (tempfile::TempDir, Expected) {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = MultiStorage::open(dir.path(), IDENTITY, options()).unwrap();
    let mut rng = Rng::new(7);
    let mut groups = Groups::default();
    for step in 0..60 {
        let universe = if step < 40 { 4 } else { 3 };
        storage.append(&groups.step(&mut rng, universe, 2)).unwrap();
        storage.sync().unwrap();
        storage.maybe_compact().unwrap();
        if step == 40 {
            storage.retire_group(4).unwrap();
            groups.remove(4);
            storage.sync().unwrap();
        }
    }
    let before_last_step = groups.states();
    storage.append(&groups.step(&mut rng, 3, 2)).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let expected = Expected {
        all: groups.states(),
        before_last_step,
    };
    (dir, expected)
}

/// The files of `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Where the record holding byte `at` of a segment's bytes starts (0 in
/// the header), and whether it is the segment's last record.
fn record_at(bytes: &[u8], at: usize) -> (usize, bool) {
    if at < HEADER {
        return (0, false);
    }
    let mut start = HEADER;
    loop {
        let length = u32::from_le_bytes(bytes[start + 4..start + 8].try_into().unwrap());
        let end = start + 9 + length as usize;
        if at < end {
            return (start, end == bytes.len());
        }
        start = end;
    }
}

/// The recovered states, each group's entries read back through the index.
fn read_back(storage: &mut MultiStorage, states: &BTreeMap<GroupId, PersistedState>) {
    for (&group, state) in states {
        if let Some(first) = state.entries.first() {
            let read = storage
                .entries(group, first.index, state.last_index() + 1)
                .unwrap();
            assert_eq!(read, state.entries, "group {group} read back");
        }
    }
}

#[test]
fn a_flipped_bit_in_any_file_is_refused_naming_it_but_a_torn_looking_last_record() {
    let (pristine, expected) = folder();
    let names: Vec<_> = files(pristine.path())
        .iter()
        .map(|path| path.file_name().unwrap().to_owned())
        .collect();
    let is = |prefix: &str| {
        names
            .iter()
            .any(|n| n.to_string_lossy().starts_with(prefix))
    };
    assert!(is("gsnap-") && is("identity"), "{names:?}");
    let segments: Vec<_> = names
        .iter()
        .filter(|n| n.to_string_lossy().starts_with("mwal-"))
        .collect();
    // Several segments, the first ones purged (so a checkpoint is there).
    assert!(segments.len() >= 2, "{names:?}");
    assert_ne!(segments[0], "mwal-00000000000000000001.log", "{names:?}");
    let last_segment = (*segments.last().unwrap()).clone();

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("data");
    copy_dir(pristine.path(), &dir);
    let (mut flips, mut cut_off) = (0, 0);
    for name in &names {
        let path = dir.join(name);
        let original = fs::read(&path).unwrap();
        let text = name.to_string_lossy();
        let is_last_segment = *name == last_segment;
        for at in 0..original.len() {
            // Every byte of the headers and of the log's last record, every
            // fourth byte elsewhere; one bit a byte, a different one from
            // byte to byte.
            let whole = at < HEADER || (is_last_segment && record_at(&original, at).1);
            if !whole && at % 4 != 0 {
                continue;
            }
            let bit = at % 8;
            let what = format!("bit {bit} of byte {at} of {text}");
            let mut damaged = original.clone();
            damaged[at] ^= 1 << bit;
            fs::write(&path, &damaged).unwrap();
            flips += 1;
            match MultiStorage::open(&dir, IDENTITY, options()) {
                Ok((mut storage, states)) => {
                    // Only the length field of the log's last record.
                    let (start, last_record) = record_at(&original, at);
                    assert!(
                        is_last_segment && last_record && (start + 4..start + 8).contains(&at),
                        "{what}: recovery accepted the folder"
                    );
                    assert!(states == expected.before_last_step, "{what}");
                    read_back(&mut storage, &states);
                    drop(storage);
                    cut_off += 1;
                    // Recovery cut the record off: start again from the
                    // folder as written.
                    fs::remove_dir_all(&dir).unwrap();
                    copy_dir(pristine.path(), &dir);
                    continue;
                }
                Err(error) => {
                    let message = error.to_string();
                    assert!(message.contains(&*text), "{what}: {message}");
                    match error {
                        StorageError::CorruptSegment { offset, .. } => {
                            let (start, _) = record_at(&original, at);
                            assert_eq!(offset, start as u64, "{what}: {message}");
                        }
                        StorageError::CorruptSnapshot { .. } if text.starts_with("gsnap-") => {}
                        StorageError::CorruptIdentity { .. } if text == "identity" => {}
                        _ => panic!("{what}: unexpected error {message}"),
                    }
                }
            }
            fs::write(&path, &original).unwrap();
        }
    }
    assert!(
        cut_off > 0 && cut_off <= 4,
        "{cut_off} flips were taken for a torn write"
    );
    println!(
        "{flips} flips in {} files of a multi-group folder: {cut_off} taken for a torn last record, the others refused",
        names.len()
    );

    // And the folder as written recovers whole.
    let (mut storage, states) = MultiStorage::open(&dir, IDENTITY, options()).unwrap();
    assert!(states == expected.all);
    read_back(&mut storage, &states);
}
