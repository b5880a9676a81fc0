//! Bit rot: a flipped bit in a log record or in a snapshot is refused at
//! start with an error naming the file and the byte offset where the
//! damaged record (or part of the snapshot) starts, never skipped. The one
//! exception, a flip in the length field of the very last record that makes
//! it run past the end of the file, is what a torn append looks like; that
//! record is cut off with a warning.

use std::fs;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use crate::support::{IDENTITY, folder_with_snapshot, open, oracle, segments, simple_writes};
use distribkv_core::raft::{PersistedState, Write};
use distribkv_native::storage::{Corruption, RaftStorage, StorageError, StorageOptions};

/// Length of a file header; records start after it.
const HEADER: usize = 40;

/// The records of a segment's bytes, as `start..end` offsets.
fn records(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut start = HEADER;
    while start < bytes.len() {
        let length = u32::from_le_bytes(bytes[start + 4..start + 8].try_into().unwrap());
        let end = start + 9 + length as usize;
        found.push(start..end);
        start = end;
    }
    found
}

/// A folder of several sealed segments and an active one, and its writes.
fn multi_segment_folder() -> (tempfile::TempDir, Vec<Write>) {
    let dir = tempfile::tempdir().unwrap();
    // No zeros written ahead: the segments are exactly their records.
    let options = StorageOptions {
        segment_size: 400,
        preallocate: 0,
        ..StorageOptions::default()
    };
    let writes = simple_writes(30, 60);
    let (mut storage, _) = open(dir.path(), &options);
    for write in &writes {
        storage.append(write).unwrap();
        storage.sync().unwrap();
    }
    drop(storage);
    assert!(segments(dir.path()).len() >= 4);
    (dir, writes)
}

/// Flips `bit` of byte `at` in `path`, opens the folder, restores the file.
fn with_flip<T>(
    dir: &Path,
    path: &Path,
    at: usize,
    bit: u8,
    check: impl FnOnce(Result<(RaftStorage, PersistedState), StorageError>) -> T,
) -> T {
    // In place, one byte: rewriting whole files is slow on a busy disk.
    let original = fs::read(path).unwrap();
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_at(&[original[at] ^ (1 << bit)], at as u64)
        .unwrap();
    let outcome = check(RaftStorage::open(dir, IDENTITY, StorageOptions::default()));
    let left = file.metadata().unwrap().len() as usize;
    // Recovery may have cut a torn tail off: put it back too.
    let from = at.min(left);
    file.write_at(&original[from..], from as u64).unwrap();
    outcome
}

fn expect_refused_at(error: StorageError, file: &Path, at: usize, what: &str) {
    match &error {
        StorageError::CorruptSegment { path, offset, .. } => {
            assert_eq!(path, file, "{what}: {error}");
            assert_eq!(*offset, at as u64, "{what}: {error}");
        }
        other => panic!("{what}: unexpected error {other}"),
    }
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains(&format!("at byte {at}")), "{message}");
}

#[test]
fn a_flipped_bit_in_any_header_or_record_but_the_last_is_refused_with_file_and_offset() {
    let (dir, _) = multi_segment_folder();
    let files = segments(dir.path());
    let mut flips = 0;
    for (number, file) in files.iter().enumerate() {
        // Every bit of the first and last header, one bit a byte of the others.
        let whole_header = number == 0 || number + 1 == files.len();
        for at in 0..HEADER {
            let bits = if whole_header {
                0..8
            } else {
                (at % 8) as u8..(at % 8) as u8 + 1
            };
            for bit in bits {
                let what = format!("bit {bit} of byte {at} of {}", file.display());
                with_flip(dir.path(), file, at, bit, |outcome| match outcome {
                    Ok(_) => panic!("{what}: recovery accepted the folder"),
                    Err(error) => expect_refused_at(error, file, 0, &what),
                });
                flips += 1;
            }
        }
        let bytes = fs::read(file).unwrap();
        let mut records = records(&bytes);
        if number + 1 == files.len() {
            // The last record of the log is the torn-write case, below.
            records.pop();
        }
        for (position, record) in records.iter().enumerate() {
            // Every bit of the first and last record of each segment (the
            // last one of a sealed segment is its seal), one bit of
            // every byte elsewhere.
            let every_bit = position == 0 || position + 1 == records.len();
            for at in record.clone() {
                let bits = if every_bit {
                    0..8
                } else {
                    (at % 8) as u8..(at % 8) as u8 + 1
                };
                for bit in bits {
                    let what = format!("bit {bit} of byte {at} of {}", file.display());
                    with_flip(dir.path(), file, at, bit, |outcome| match outcome {
                        Ok(_) => panic!("{what}: recovery accepted the folder"),
                        Err(error) => expect_refused_at(error, file, record.start, &what),
                    });
                    flips += 1;
                }
            }
        }
    }
    assert!(flips > 2000, "{flips}");
    println!("{flips} flips in {} segments, all refused", files.len());
}

#[test]
fn a_flipped_bit_in_the_last_record_is_refused_unless_it_makes_the_record_run_past_the_end() {
    let (dir, writes) = multi_segment_folder();
    let last = segments(dir.path()).pop().unwrap();
    let bytes = fs::read(&last).unwrap();
    let record = records(&bytes).pop().unwrap();
    let mut cut_off = Vec::new();
    for at in record.clone() {
        for bit in 0..8 {
            let what = format!("bit {bit} of byte {at}");
            with_flip(dir.path(), &last, at, bit, |outcome| match outcome {
                Ok((_, recovered)) => {
                    assert_eq!(recovered, oracle(&writes[..writes.len() - 1]), "{what}");
                    cut_off.push((at - record.start, bit));
                }
                Err(error) => expect_refused_at(error, &last, record.start, &what),
            });
        }
    }
    // Only bits of the length field that make it larger: the record then
    // seems to continue past the end of the file, as a torn one does.
    assert!(!cut_off.is_empty());
    for (at, bit) in &cut_off {
        assert!(
            (4..8).contains(at),
            "byte {at} bit {bit} was taken for a torn write"
        );
    }
    assert!(cut_off.len() < 32, "{cut_off:?}");
    println!(
        "{} flips in the last record: {} taken for a torn write (length field), the others refused",
        record.len() * 8,
        cut_off.len()
    );
}

#[test]
fn a_flipped_bit_anywhere_in_a_snapshot_is_refused_with_file_and_offset() {
    let (dir, file) = folder_with_snapshot(150);
    let length = fs::metadata(&file).unwrap().len() as usize;
    for at in 0..length {
        // The header (its checksum covers it), the length field, then
        // the checksum and the content it covers.
        let part = match at {
            0..40 => 0,
            40..48 => 40,
            _ => 52,
        };
        for bit in 0..8 {
            let what = format!("bit {bit} of byte {at}");
            with_flip(dir.path(), &file, at, bit, |outcome| {
                let error = outcome.map(|_| ()).expect_err(&what);
                match &error {
                    StorageError::CorruptSnapshot {
                        path,
                        offset,
                        problem,
                    } => {
                        assert_eq!(path, &file, "{what}");
                        assert_eq!(*offset, part as u64, "{what}: {problem}");
                        if part == 52 {
                            assert!(
                                matches!(problem, Corruption::SnapshotChecksum),
                                "{what}: {problem}"
                            );
                        }
                    }
                    other => panic!("{what}: unexpected error {other}"),
                }
                let message = error.to_string();
                assert!(message.contains(&file.display().to_string()), "{message}");
                assert!(message.contains(&format!("at byte {part}")), "{message}");
            });
        }
    }
    println!("{} flips in a snapshot file, all refused", length * 8);
}
