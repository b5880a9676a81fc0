//! Recovery after crashes and damage: torn tails are cut off, everything else
//! is refused with an error naming the file and the byte offset.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::support::{
    IDENTITY, copy_dir, entry, folder_with_snapshot, logs_of, open, oracle, segments,
    simple_writes, snapshot, snapshots,
};
use distribkv_core::raft::Write;
use distribkv_native::storage::{Corruption, Identity, RaftStorage, StorageError, StorageOptions};

/// Writes `writes` one by one, syncing after each, and returns the active
/// segment's length after each one (the record boundaries), starting with
/// its length before the first.
fn write_and_measure(dir: &Path, writes: &[Write], options: &StorageOptions) -> Vec<u64> {
    let (mut storage, _) = open(dir, options);
    let last_segment = || segments(dir).last().unwrap().metadata().unwrap().len();
    let mut boundaries = vec![last_segment()];
    for write in writes {
        storage.append(write).unwrap();
        storage.sync().unwrap();
        boundaries.push(last_segment());
    }
    boundaries
}

/// Options whose segments are exactly their records, no zeros written
/// ahead: these tests find record boundaries from file lengths.
fn exact() -> StorageOptions {
    StorageOptions {
        preallocate: 0,
        ..StorageOptions::default()
    }
}

fn set_len(path: &Path, length: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(length)
        .unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn open_error(dir: &Path) -> StorageError {
    RaftStorage::open(dir, IDENTITY, StorageOptions::default())
        .map(|_| ())
        .expect_err("recovery must refuse this folder")
}

#[test]
fn a_cut_at_every_offset_recovers_exactly_the_whole_records_before_it() {
    let source = tempfile::tempdir().unwrap();
    let writes = simple_writes(5, 20);
    let boundaries = write_and_measure(source.path(), &writes, &exact());
    let segment_name = segments(source.path())[0].file_name().unwrap().to_owned();
    let end = *boundaries.last().unwrap();
    for cut in boundaries[0]..=end {
        let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        let dir = tempfile::tempdir().unwrap();
        copy_dir(source.path(), dir.path());
        let segment = dir.path().join(&segment_name);
        set_len(&segment, cut);
        let ((_, recovered), logs) = logs_of(|| open(dir.path(), &StorageOptions::default()));
        assert_eq!(recovered, oracle(&writes[..whole]), "cut at byte {cut}");
        assert_eq!(
            segment.metadata().unwrap().len(),
            boundaries[whole],
            "the torn tail is cut off at the last whole record"
        );
        if boundaries.contains(&cut) {
            assert!(
                !logs.contains("torn tail"),
                "no warning at a boundary: {logs}"
            );
        } else {
            assert!(logs.contains("WARN"), "{logs}");
            assert!(logs.contains(&segment.display().to_string()), "{logs}");
            assert!(
                logs.contains(&format!("offset={}", boundaries[whole])),
                "{logs}"
            );
        }
    }
}

#[test]
fn a_last_record_with_zeroed_sectors_is_a_torn_tail_but_a_garbled_one_is_refused() {
    let source = tempfile::tempdir().unwrap();
    let writes = simple_writes(8, 100);
    let boundaries = write_and_measure(source.path(), &writes, &exact());
    // The record that crosses the first sector boundary, made the last one.
    let crossing = (0..writes.len())
        .find(|&i| boundaries[i] < 512 && boundaries[i + 1] > 512)
        .unwrap();
    let segment_name = segments(source.path())[0].file_name().unwrap().to_owned();
    let prepare = |fill: u8, from: u64| {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(source.path(), dir.path());
        let segment = dir.path().join(&segment_name);
        let mut bytes = fs::read(&segment).unwrap();
        bytes.truncate(boundaries[crossing + 1] as usize);
        bytes[from as usize..].fill(fill);
        fs::write(&segment, bytes).unwrap();
        (dir, segment)
    };

    // A power cut let the file's length reach the disk, but not the
    // data of the record's second sector: torn, cut off.
    let (dir, segment) = prepare(0, 512);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes[..crossing]));
    assert_eq!(segment.metadata().unwrap().len(), boundaries[crossing]);

    // Every byte there but wrong, no sector zero: damaged after it was
    // written, refused with the file and the record's offset.
    let (dir, segment) = prepare(0xA5, boundaries[crossing] + 30);
    match open_error(dir.path()) {
        StorageError::CorruptSegment {
            path,
            offset,
            problem,
        } => {
            assert_eq!(path, segment);
            assert_eq!(offset, boundaries[crossing]);
            assert!(matches!(problem, Corruption::RecordChecksum), "{problem}");
        }
        other => panic!("unexpected error {other}"),
    }
}

/// Zeros over the start of the last record, its payload still there after
/// them in the same sector: a sector is written whole or not at all, so no
/// power cut leaves that. It was damage done after the write, and the
/// acknowledged record is refused, not cut off as a torn tail (a zeroed
/// length field made the record seem nine zero bytes long, which passed for
/// torn), with or without zeros written ahead after it.
#[test]
fn a_last_record_zeroed_in_part_of_a_sector_is_refused() {
    let source = tempfile::tempdir().unwrap();
    let writes = simple_writes(3, 100);
    let boundaries = write_and_measure(source.path(), &writes, &exact());
    let last = boundaries[2];
    assert!(
        boundaries[3] <= 512,
        "the last record lies in the first sector"
    );
    let segment_name = segments(source.path())[0].file_name().unwrap().to_owned();
    for (zeroed, file_length) in [(9, boundaries[3]), (40, boundaries[3]), (9, 4096)] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(source.path(), dir.path());
        let segment = dir.path().join(&segment_name);
        let mut bytes = fs::read(&segment).unwrap();
        bytes[last as usize..(last + zeroed) as usize].fill(0);
        bytes.resize(file_length as usize, 0);
        fs::write(&segment, bytes).unwrap();
        match open_error(dir.path()) {
            StorageError::CorruptSegment { path, offset, .. } => {
                assert_eq!((path, offset), (segment, last), "{zeroed} bytes zeroed");
            }
            other => panic!("{zeroed} bytes zeroed: unexpected error {other}"),
        }
    }
}

#[test]
fn recovery_continues_appending_after_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let writes = simple_writes(4, 30);
    let boundaries = write_and_measure(dir.path(), &writes, &exact());
    set_len(&segments(dir.path())[0], boundaries[4] - 3);
    let (mut storage, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes[..3]));
    let again = Write {
        seq: 1,
        entries: vec![entry(4, 2, 30)],
        ..Write::default()
    };
    storage.append(&again).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    let mut expected = oracle(&writes[..3]);
    expected.apply(&again);
    assert_eq!(recovered, expected);
}

#[test]
fn a_damaged_record_followed_by_valid_ones_is_refused_with_file_and_offset() {
    let source = tempfile::tempdir().unwrap();
    let writes = simple_writes(5, 20);
    let boundaries = write_and_measure(source.path(), &writes, &exact());
    let segment_name = segments(source.path())[0].file_name().unwrap().to_owned();
    // Every byte of the third record, flipped in turn.
    for offset in boundaries[2]..boundaries[3] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(source.path(), dir.path());
        let segment = dir.path().join(&segment_name);
        flip_byte(&segment, offset);
        match open_error(dir.path()) {
            StorageError::CorruptSegment {
                path,
                offset: at,
                problem,
            } => {
                assert_eq!(path, segment);
                assert_eq!(at, boundaries[2], "flip at {offset}: {problem}");
            }
            other => panic!("flip at {offset}: unexpected error {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(source.path(), dir.path());
    let segment = dir.path().join(&segment_name);
    flip_byte(&segment, boundaries[2] + 12);
    let message = open_error(dir.path()).to_string();
    assert!(
        message.contains(&segment.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&format!("at byte {}", boundaries[2])),
        "{message}"
    );
}

/// A folder with at least three sealed segments and an active one.
fn multi_segment_folder() -> (tempfile::TempDir, Vec<PathBuf>, Vec<Write>) {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        segment_size: 400,
        ..exact()
    };
    let writes = simple_writes(30, 60);
    let (mut storage, _) = open(dir.path(), &options);
    for write in &writes {
        storage.append(write).unwrap();
    }
    storage.sync().unwrap();
    drop(storage);
    let segments = segments(dir.path());
    assert!(segments.len() >= 4, "{segments:?}");
    (dir, segments, writes)
}

#[test]
fn many_segments_recover_in_order() {
    let (dir, _, writes) = multi_segment_folder();
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_is_refused() {
    let (dir, segments, _) = multi_segment_folder();
    let first = &segments[0];
    let length = first.metadata().unwrap().len();
    // Flip a byte of the last record (the seal): in the last segment this
    // would be a torn tail, here it is corruption.
    flip_byte(first, length - 2);
    match open_error(dir.path()) {
        StorageError::CorruptSegment { path, offset, .. } => {
            assert_eq!(&path, first);
            assert!(offset < length);
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_short_middle_segment_is_refused() {
    let (dir, segments, _) = multi_segment_folder();
    let middle = &segments[1];
    let length = middle.metadata().unwrap().len();
    // Cut inside the last record.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let copied = copy.path().join(middle.file_name().unwrap());
    set_len(&copied, length - 1);
    match open_error(copy.path()) {
        StorageError::CorruptSegment { path, problem, .. } => {
            assert_eq!(path, copied);
            assert!(
                matches!(problem, Corruption::TruncatedRecord { .. }),
                "{problem}"
            );
        }
        other => panic!("unexpected error {other}"),
    }
    // Cut exactly before the seal: records are whole, but the end is lost.
    let seal_length = 9 + 1;
    set_len(middle, length - seal_length);
    match open_error(dir.path()) {
        StorageError::CorruptSegment {
            path,
            offset,
            problem,
        } => {
            assert_eq!(&path, middle);
            assert_eq!(offset, length - seal_length);
            assert!(matches!(problem, Corruption::UnsealedSegment), "{problem}");
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_missing_segment_is_refused() {
    let (dir, segments, _) = multi_segment_folder();
    fs::remove_file(&segments[1]).unwrap();
    match open_error(dir.path()) {
        StorageError::MissingSegment { path } => assert_eq!(path, segments[1]),
        other => panic!("unexpected error {other}"),
    }
    fs::remove_file(&segments[0]).unwrap();
    match open_error(dir.path()) {
        StorageError::MissingLogPrefix { path } => assert_eq!(path, segments[2]),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_lost_first_segment_after_a_compaction_is_refused() {
    // A compaction deletes the oldest segments and keeps the first one
    // holding an entry above the snapshot. Lose that one when it held the
    // newest entries, and the segments after it (a checkpoint alone) show
    // no gap: only the checkpoint's first segment kept tells.
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        segment_size: 400,
        ..exact()
    };
    let writes = simple_writes(30, 60);
    let (mut storage, _) = open(dir.path(), &options);
    for write in &writes {
        storage.append(write).unwrap();
    }
    storage
        .append(&Write {
            seq: 31,
            snapshot: Some(Box::new(snapshot(29, 1, 10))),
            ..Write::default()
        })
        .unwrap();
    storage.sync().unwrap();
    assert!(storage.maybe_compact().unwrap().segments_removed > 0);
    drop(storage);
    let kept = segments(dir.path());
    assert_eq!(
        kept.len(),
        2,
        "the segment of entry 30, then the checkpoint's: {kept:?}"
    );
    let mut with_snapshot = oracle(&writes);
    with_snapshot.apply(&Write {
        seq: 31,
        snapshot: Some(Box::new(snapshot(29, 1, 10))),
        ..Write::default()
    });
    let (_, recovered) = open(dir.path(), &options);
    assert_eq!(recovered, with_snapshot, "entry 30 is above the snapshot");

    fs::remove_file(&kept[0]).unwrap();
    match open_error(dir.path()) {
        StorageError::MissingLogPrefix { path } => assert_eq!(path, kept[1]),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn a_bad_segment_header_is_refused_even_in_the_last_segment() {
    let (dir, segments, _) = multi_segment_folder();
    let last = segments.last().unwrap();
    flip_byte(last, 14);
    match open_error(dir.path()) {
        StorageError::CorruptSegment {
            path,
            offset,
            problem,
        } => {
            assert_eq!(&path, last);
            assert_eq!(offset, 0);
            assert!(matches!(problem, Corruption::HeaderChecksum), "{problem}");
        }
        other => panic!("unexpected error {other}"),
    }
    fs::write(last, b"not a segment at all, but long enough for a header").unwrap();
    assert!(matches!(
        open_error(dir.path()),
        StorageError::CorruptSegment {
            problem: Corruption::BadMagic { .. },
            ..
        }
    ));
}

#[test]
fn a_corrupt_or_missing_snapshot_is_refused_naming_the_file() {
    let (dir, snapshot_file) = folder_with_snapshot(300);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered.snapshot, Some(snapshot(2, 1, 300)));
    assert_eq!(recovered.entries, vec![entry(3, 1, 10)]);

    let length = snapshot_file.metadata().unwrap().len();
    flip_byte(&snapshot_file, length - 5);
    let error = open_error(dir.path());
    assert!(
        matches!(&error, StorageError::CorruptSnapshot { path, .. } if *path == snapshot_file),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&snapshot_file.display().to_string())
    );

    fs::remove_file(&snapshot_file).unwrap();
    assert!(matches!(
        open_error(dir.path()),
        StorageError::MissingSnapshot { path } if path == snapshot_file
    ));
}

/// Every segment gone, the snapshot file left: the log that refers to it
/// was lost (the active segment is never deleted). Refused, not started as
/// an empty log with the snapshot removed as stale.
#[test]
fn a_snapshot_without_any_segment_is_refused_and_kept() {
    let (dir, file) = folder_with_snapshot(150);
    for segment in segments(dir.path()) {
        fs::remove_file(segment).unwrap();
    }
    match open_error(dir.path()) {
        StorageError::MissingLog { path, .. } => assert_eq!(path, file),
        other => panic!("unexpected error {other}"),
    }
    assert!(file.exists(), "the snapshot is kept");
    assert!(segments(dir.path()).is_empty(), "no log was started");
}

#[test]
fn a_snapshot_whose_write_never_became_durable_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let writes = simple_writes(3, 10);
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    for write in &writes {
        storage.append(write).unwrap();
    }
    storage.sync().unwrap();
    storage
        .append(&Write {
            seq: 4,
            snapshot: Some(Box::new(snapshot(3, 1, 100))),
            ..Write::default()
        })
        .unwrap();
    assert_eq!(
        snapshots(dir.path()).len(),
        1,
        "the file is written at once"
    );
    // Crash: the record is still in the storage's buffer.
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
    assert!(snapshots(dir.path()).is_empty());
}

#[test]
fn leftover_temporary_files_are_removed() {
    let (dir, _) = folder_with_snapshot(300);
    fs::write(dir.path().join("snap.tmp"), b"half a snapshot").unwrap();
    fs::write(
        dir.path().join("wal-00000000000000000002.log.tmp"),
        b"half a header",
    )
    .unwrap();
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered.entries.len(), 1);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_folder_of_another_node_or_cluster_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    storage.append(&simple_writes(1, 10)[0]).unwrap();
    storage.sync().unwrap();
    drop(storage);

    let other_node = Identity {
        node_id: 3,
        ..IDENTITY
    };
    let error = RaftStorage::open(dir.path(), other_node, StorageOptions::default())
        .map(|_| ())
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, StorageError::IdentityMismatch { expected, found, .. }
            if expected == other_node && found == IDENTITY)
    );
    assert!(
        message.contains("node 3 of cluster 0x00c0ffeed15c0b01"),
        "{message}"
    );
    assert!(
        message.contains("node 2 of cluster 0x00c0ffeed15c0b01"),
        "{message}"
    );
    assert!(message.contains("identity"), "{message}");

    let other_cluster = Identity {
        cluster_id: 7,
        ..IDENTITY
    };
    let message = RaftStorage::open(dir.path(), other_cluster, StorageOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(message.contains("cluster 0x0000000000000007"), "{message}");
}

#[test]
fn a_segment_copied_from_another_node_is_refused() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    drop(open(ours.path(), &StorageOptions::default()));
    let other = Identity {
        node_id: 9,
        ..IDENTITY
    };
    drop(RaftStorage::open(theirs.path(), other, StorageOptions::default()).unwrap());
    let segment = segments(ours.path())[0].clone();
    fs::copy(&segments(theirs.path())[0], &segment).unwrap();
    match open_error(ours.path()) {
        StorageError::IdentityMismatch {
            path,
            expected,
            found,
        } => {
            assert_eq!(path, segment);
            assert_eq!((expected, found), (IDENTITY, other));
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn log_files_without_an_identity_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &StorageOptions::default()));
    fs::remove_file(dir.path().join("identity")).unwrap();
    assert!(matches!(
        open_error(dir.path()),
        StorageError::MissingIdentity { .. }
    ));
    let mut identity = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.path().join("identity"))
        .unwrap();
    identity.write_all(b"garbage").unwrap();
    assert!(matches!(
        open_error(dir.path()),
        StorageError::CorruptIdentity { .. }
    ));
}

#[test]
fn an_identity_file_with_bytes_after_its_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), &StorageOptions::default()));
    let path = dir.path().join("identity");
    let mut identity = OpenOptions::new().append(true).open(&path).unwrap();
    identity.write_all(b"\0").unwrap();
    drop(identity);
    match open_error(dir.path()) {
        StorageError::CorruptIdentity {
            path: named,
            problem: Corruption::TrailingBytes { length, expected },
        } => {
            assert_eq!(named, path);
            assert_eq!((length, expected), (41, 40));
        }
        other => panic!("unexpected error {other}"),
    }
    // Cut back to its header, the folder opens again.
    set_len(&path, 40);
    drop(open(dir.path(), &StorageOptions::default()));
}

#[test]
fn a_torn_tail_after_earlier_segments_recovers_the_prefix() {
    let (dir, segments, writes) = multi_segment_folder();
    let last = segments.last().unwrap();
    let length = last.metadata().unwrap().len();
    assert!(length > 40, "the last segment holds records");
    set_len(last, length - 1);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes[..writes.len() - 1]));
}

#[test]
fn a_sealed_last_segment_continues_in_a_new_one() {
    // As after a crash between sealing a segment and creating the next.
    let (dir, segments, writes) = multi_segment_folder();
    let (last, sealed) = (segments.last().unwrap(), &segments[segments.len() - 2]);
    fs::remove_file(last).unwrap();
    let (mut storage, recovered) = open(dir.path(), &StorageOptions::default());
    let whole = (0..=writes.len())
        .find(|&n| oracle(&writes[..n]) == recovered)
        .expect("recovery gives a prefix of the writes");
    assert!(whole > 0);
    assert_eq!(
        crate::support::segments(dir.path()).last(),
        Some(last),
        "recreated"
    );
    let next = Write {
        seq: 1,
        entries: vec![entry(whole as u64 + 1, 1, 60)],
        ..Write::default()
    };
    storage.append(&next).unwrap();
    storage.sync().unwrap();
    drop(storage);
    let (_, reopened) = open(dir.path(), &StorageOptions::default());
    let mut expected = recovered;
    expected.apply(&next);
    assert_eq!(reopened, expected);
    assert!(sealed.exists());
}

/// The active segment keeps zeros written ahead of its records (1 MiB by
/// default); a restart reads them as the end of the log, not as a torn
/// tail, leaves them in place and writes over them.
#[test]
fn zeros_written_ahead_end_the_log_and_are_written_over_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let writes = simple_writes(8, 50);
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    let mut ends = Vec::new();
    for write in &writes[..5] {
        storage.append(write).unwrap();
        storage.sync().unwrap();
        ends.push(40 + storage.stats().bytes());
    }
    let end = *ends.last().unwrap();
    drop(storage);
    let segment = segments(dir.path()).pop().unwrap();
    let bytes = fs::read(&segment).unwrap();
    assert_eq!(
        bytes.len() as u64,
        ends[0] + (1 << 20),
        "1 MiB of zeros written after the first record, the next ones over them"
    );
    assert!(bytes[end as usize..].iter().all(|&byte| byte == 0));

    let ((mut storage, recovered), logs) = logs_of(|| open(dir.path(), &StorageOptions::default()));
    assert_eq!(recovered, oracle(&writes[..5]));
    assert!(
        !logs.contains("WARN"),
        "zeros ahead are no torn tail: {logs}"
    );
    assert_eq!(segment.metadata().unwrap().len(), bytes.len() as u64);
    for write in &writes[5..] {
        storage.append(write).unwrap();
        storage.sync().unwrap();
    }
    drop(storage);
    let (_, recovered) = open(dir.path(), &StorageOptions::default());
    assert_eq!(recovered, oracle(&writes));
    assert_eq!(segments(dir.path()), [segment], "written over, in place");
}

/// Zeros are never written past the segment size, a sealed segment is cut
/// to its seal, and zeros after a seal (a power cut before that cut) are
/// read as its end; anything else after a seal is refused.
#[test]
fn zeros_stop_at_the_segment_size_and_a_sealed_segment_ends_at_its_seal() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        segment_size: 400,
        ..StorageOptions::default()
    };
    let writes = simple_writes(30, 60);
    let (mut storage, _) = open(dir.path(), &options);
    for write in &writes {
        storage.append(write).unwrap();
        storage.sync().unwrap();
    }
    drop(storage);
    let files = segments(dir.path());
    assert!(files.len() >= 4, "{files:?}");
    let last = fs::read(files.last().unwrap()).unwrap();
    assert_eq!(last.len(), 400, "zeros up to the segment size, not 1 MiB");
    for sealed in &files[..files.len() - 1] {
        let bytes = fs::read(sealed).unwrap();
        assert!(
            bytes.len() < 400,
            "{}: {} bytes",
            sealed.display(),
            bytes.len()
        );
        assert_ne!(
            bytes.last(),
            Some(&0),
            "cut to its seal: {}",
            sealed.display()
        );
    }

    let with_after_seal = |tail: &[u8]| {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let first = copy.path().join(files[0].file_name().unwrap());
        let mut file = OpenOptions::new().append(true).open(&first).unwrap();
        file.write_all(tail).unwrap();
        (copy, first)
    };
    let (copy, _) = with_after_seal(&[0; 700]);
    let (_, recovered) = open(copy.path(), &options);
    assert_eq!(recovered, oracle(&writes));

    let mut garbage = vec![0; 700];
    garbage[650] = 1;
    let (copy, first) = with_after_seal(&garbage);
    match RaftStorage::open(copy.path(), IDENTITY, options.clone()).map(|_| ()) {
        Err(StorageError::CorruptSegment { path, problem, .. }) => {
            assert_eq!(path, first);
            assert!(matches!(problem, Corruption::DataAfterSeal), "{problem}");
        }
        other => panic!("a byte after a seal must be refused, got {other:?}"),
    }
}
