//! What a start of the multi-group log reads stays bounded: a purge runs
//! once the whole log (the active segment included, sealed first) holds
//! `purge_after` bytes, so a quiet group's small tail is copied forward and
//! the log stays about `purge_after` whatever the segment size and however
//! long the other groups write, with every acknowledged write kept.

use std::fs;
use std::path::Path;

use distribkv_core::raft::Write;
use distribkv_native::storage::StorageOptions;
use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};

use crate::multi_support::write_of;
use crate::support::{IDENTITY, entry, files_named, snapshot};

const PURGE_AFTER: u64 = 128 << 10;

fn options() -> MultiStorageOptions {
    MultiStorageOptions {
        storage: StorageOptions {
            // Far above what the workload writes: before purges sealed the
            // active segment, nothing was ever deleted.
            segment_size: 4 << 20,
            write_buffer_size: 0,
            // The log's size is read from its files: no zeros ahead.
            preallocate: 0,
            ..StorageOptions::default()
        },
        purge_after: PURGE_AFTER,
        ..MultiStorageOptions::default()
    }
}

fn log_bytes(dir: &Path) -> u64 {
    files_named(dir, "mwal-", ".log")
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

/// Group 1 writes 20 entries and goes quiet (no snapshot ever); group 2
/// writes 3,000 entries (about 650 KB of log) with a snapshot every 100.
/// After every commit and compaction the log holds at most twice
/// `purge_after`; a restart midway and at the end finds every acknowledged
/// entry of both groups.
#[test]
fn a_quiet_group_does_not_keep_the_log_growing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = MultiStorage::open(dir.path(), IDENTITY, options()).unwrap();
    let mut seq = 1;
    let quiet = Write {
        seq,
        entries: (1..=20).map(|i| entry(i, 1, 200)).collect(),
        ..Write::default()
    };
    storage.append(&write_of(1, seq, quiet)).unwrap();
    storage.sync().unwrap();
    let (mut most, mut removed, mut rewritten) = (0, 0, 0);
    let mut snapshot_at = 0;
    for first in (1..=3000u64).step_by(10) {
        seq += 1;
        let mut busy = Write {
            seq,
            entries: (first..first + 10).map(|i| entry(i, 1, 200)).collect(),
            ..Write::default()
        };
        if first > 100 && (first - 1) % 100 == 0 {
            snapshot_at = first - 11;
            busy.snapshot = Some(Box::new(snapshot(snapshot_at, 1, 64)));
        }
        storage.append(&write_of(2, seq, busy)).unwrap();
        assert_eq!(storage.sync().unwrap(), Some(seq));
        let purge = storage.maybe_compact().unwrap();
        assert_eq!(purge.pinned_by, None);
        removed += purge.segments_removed;
        rewritten += purge.entries_rewritten;
        most = most.max(log_bytes(dir.path()));
        if first == 1501 {
            drop(storage);
            storage = MultiStorage::open(dir.path(), IDENTITY, options())
                .unwrap()
                .0;
            seq = 0;
        }
    }
    println!("at most {most} bytes of log, {removed} segments removed, {rewritten} entries copied");
    assert!(most <= 2 * PURGE_AFTER, "the log reached {most} bytes");
    assert!(
        removed >= 3 && rewritten >= 20,
        "{removed} removed, {rewritten} copied"
    );
    drop(storage);
    check_reopened(dir.path(), options(), snapshot_at, 3000);
}

/// Reopens the log in `dir`: group 1 holds its 20 quiet entries, group 2
/// its snapshot at `snapshot_at` and every entry after it up to `last`.
fn check_reopened(dir: &Path, options: MultiStorageOptions, snapshot_at: u64, last: u64) {
    let (_, states) = MultiStorage::open(dir, IDENTITY, options).unwrap();
    let expected: Vec<_> = (1..=20).map(|i| entry(i, 1, 200)).collect();
    assert_eq!(states[&1].entries, expected, "the quiet group's entries");
    let busy = &states[&2];
    assert_eq!(busy.snapshot.as_ref().unwrap().meta.index, snapshot_at);
    let expected: Vec<_> = (snapshot_at + 1..=last).map(|i| entry(i, 1, 200)).collect();
    assert_eq!(busy.entries, expected, "the busy group's entries");
}

/// With the default rewrite limit (64 KiB), a busy group's tail is not
/// copied into checkpoints: group 2 writes 6,000 entries of 200 bytes
/// (about 1.3 MB of log) with a snapshot every 1,000 (tails of up to
/// about 220 KB), beside group 1's 20 quiet entries (4.5 KB, copied). The
/// purges delete the segments behind the busy group's snapshots without
/// copying its entries (its tail pins them until its next snapshot; with
/// a limit of 8 MiB it was copied), the log stays within `purge_after`
/// and a tail, and no
/// snapshot is asked for while the log is under four times `purge_after`;
/// a restart finds every acknowledged entry.
#[test]
fn a_busy_groups_tail_is_left_to_its_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let options = options();
    assert_eq!(options.rewrite_limit, 64 << 10, "the default");
    let (mut storage, _) = MultiStorage::open(dir.path(), IDENTITY, options.clone()).unwrap();
    let quiet = Write {
        seq: 1,
        entries: (1..=20).map(|i| entry(i, 1, 200)).collect(),
        ..Write::default()
    };
    storage.append(&write_of(1, 1, quiet)).unwrap();
    storage.sync().unwrap();
    let (mut most, mut removed, mut rewritten, mut pinned) = (0, 0, 0, 0);
    let mut snapshot_at = 0;
    for (seq, first) in (1..=6000u64).step_by(10).enumerate() {
        let mut busy = Write {
            seq: seq as u64 + 2,
            entries: (first..first + 10).map(|i| entry(i, 1, 200)).collect(),
            ..Write::default()
        };
        if first > 1000 && (first - 1) % 1000 == 0 {
            snapshot_at = first - 1;
            busy.snapshot = Some(Box::new(snapshot(snapshot_at, 1, 64)));
        }
        storage.append(&write_of(2, seq as u64 + 2, busy)).unwrap();
        storage.sync().unwrap();
        let purge = storage.maybe_compact().unwrap();
        removed += purge.segments_removed;
        rewritten += purge.entries_rewritten;
        if purge.pinned_by == Some(2) {
            pinned += 1;
        }
        assert_eq!(storage.stats().snapshot_wanted(), None, "{purge:?}");
        most = most.max(log_bytes(dir.path()));
    }
    println!(
        "at most {most} bytes of log, {removed} segments removed, {rewritten} entries copied, \
         group 2 pinned {pinned} purges"
    );
    assert!(removed >= 5, "{removed} segments removed");
    assert!(pinned > 0, "the busy group's tail pinned segments");
    assert!(
        rewritten <= 20 * removed,
        "only the quiet group's 20 entries are copied, {rewritten} were"
    );
    assert!(
        most <= PURGE_AFTER + 1000 * 230 + (4 << 10),
        "the log reached {most} bytes"
    );
    drop(storage);
    check_reopened(dir.path(), options, snapshot_at, 6000);
}
