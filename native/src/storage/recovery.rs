//! Reading a data folder back: identity, segments, torn tail, snapshot.
//!
//! The rules are documented on the [module](super#recovery-rules).

use std::path::Path;

use distribkv_core::raft::{Entry, HardState, PersistedState};

use super::error::{Corruption, StorageError};
use super::file::Disk;
use super::format::{
    Checkpoint, FileHeader, IDENTITY_MAGIC, Record, SEGMENT_MAGIC, SEGMENT_VERSION, SnapshotPoint,
    WriteRecord, decode_record, parse_file_name, segment_path, snapshot_path,
};
use super::identity::Identity;
use super::listing::{FolderKind, open_folder, remove_stale_snapshots};
use super::segment::{Applied, Expected, scan_segment};
use super::shape::Segments;
use super::snapshot_file::read_snapshot;

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The durable state.
    pub state: PersistedState,
    /// The segments on disk, with what they still hold.
    pub segments: Segments,
    /// The last segment, if any.
    pub tail: Option<SegmentTail>,
}

/// Where the last segment ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentTail {
    /// Its number.
    pub number: u64,
    /// Length of its valid content (after a torn tail was cut off).
    pub length: u64,
    /// Whether it ends with a seal, so that writing continues in a new segment.
    pub sealed: bool,
    /// The format version it is written in.
    pub version: u32,
}

/// The single-group log's data folder.
const FOLDER: FolderKind<SnapshotPoint> = FolderKind {
    parse: parse_file_name,
    identity_magic: IDENTITY_MAGIC,
    label: "data folder",
    foreign: super::multi::is_multi_group_log_file,
};

/// Recovers the folder `dir` (creating and initialising it when new) for `identity`.
pub(crate) fn recover(
    dir: &Path,
    identity: Identity,
    disk: &Disk,
) -> Result<Recovered, StorageError> {
    let (listing, changed_folder) = open_folder(
        dir,
        identity,
        &FOLDER,
        |point| (point.index, point.term),
        disk,
    )?;

    let mut replay = Replay::default();
    let mut segments = Segments::default();
    let mut tail = None;
    for (position, &number) in listing.segments.iter().enumerate() {
        if position > 0 && number != listing.segments[position - 1] + 1 {
            return Err(StorageError::MissingSegment {
                path: segment_path(dir, listing.segments[position - 1] + 1),
            });
        }
        segments.push(number);
        let is_last = position + 1 == listing.segments.len();
        let end = replay_segment(
            dir,
            number,
            is_last,
            identity,
            &mut replay,
            &mut segments,
            disk,
        )?;
        tail = Some(end);
    }
    // Segments below the first on disk were deleted by a compaction only if
    // a checkpoint says so: none seen, or one naming an older segment as
    // the first it kept, means they were lost (with what they held).
    if let Some(&first) = listing.segments.first()
        && first > 1
        && (!replay.saw_checkpoint || replay.first_kept.is_some_and(|kept| first > kept))
    {
        return Err(StorageError::MissingLogPrefix {
            path: segment_path(dir, first),
        });
    }

    let base = replay.snapshot.map_or(0, |s| s.index);
    for (expected, entry) in (base + 1..).zip(&replay.entries) {
        if entry.index != expected {
            return Err(StorageError::LogGap {
                dir: dir.to_owned(),
                expected,
                found: entry.index,
            });
        }
    }

    let snapshot = match replay.snapshot {
        Some(point) => Some(read_snapshot(dir, identity, point, disk)?),
        None => None,
    };
    remove_stale_snapshots(
        dir,
        &listing,
        |point| Some(*point) == replay.snapshot,
        |point| snapshot_path(dir, *point),
        changed_folder,
        disk,
    )?;

    Ok(Recovered {
        state: PersistedState {
            hard_state: replay.hard_state,
            snapshot,
            entries: replay.entries,
        },
        segments,
        tail,
    })
}

/// Replays one segment into `replay`; cuts a torn tail off the last one.
fn replay_segment(
    dir: &Path,
    number: u64,
    is_last: bool,
    identity: Identity,
    replay: &mut Replay,
    segments: &mut Segments,
    disk: &Disk,
) -> Result<SegmentTail, StorageError> {
    let path = segment_path(dir, number);
    let data = disk.read(&path)?;
    let (header, version) = FileHeader::decode_up_to(&data, SEGMENT_MAGIC, SEGMENT_VERSION)
        .map_err(|problem| refuse_header(&path, problem))?;
    let scanned = scan_segment(
        &path,
        &data,
        &header,
        Expected {
            number,
            identity,
            is_last,
        },
        disk,
        |record| {
            Ok(match decode_record(record.kind, record.payload, version)? {
                Record::Write(write) => {
                    replay.apply_write(write, segments);
                    Applied::Record
                }
                Record::Checkpoint(checkpoint) => {
                    replay.apply_checkpoint(checkpoint);
                    Applied::Record
                }
                Record::Seal(seal) => Applied::Seal(seal.next_segment),
            })
        },
    )?;
    Ok(SegmentTail {
        number,
        length: scanned.length,
        sealed: scanned.sealed,
        version,
    })
}

/// The error for a segment or snapshot header that cannot be read: a
/// newer format is named as such, anything else is damage.
pub(crate) fn refuse_header(path: &Path, problem: Corruption) -> StorageError {
    match problem {
        Corruption::UnsupportedVersion { found, supported } if found > supported => {
            StorageError::NewerFormat {
                path: path.to_owned(),
                found,
                supported,
            }
        }
        problem => StorageError::CorruptSegment {
            path: path.to_owned(),
            offset: 0,
            problem,
        },
    }
}

/// The state rebuilt record by record.
///
/// The first segment on disk may not be the first ever written: a snapshot
/// lets older segments be deleted once a [`Checkpoint`] restating the
/// snapshot and hard state is durable in a later one. Replay then starts
/// from an empty state, in which some entries may be missing below the
/// snapshot; every operation below is a per-index filter or overwrite, so the
/// entries above the final snapshot come out the same as a replay from the
/// very first segment, and the checkpoint drops whatever lies below it.
#[derive(Debug, Default)]
struct Replay {
    hard_state: HardState,
    snapshot: Option<SnapshotPoint>,
    /// Sorted by index (not necessarily consecutive until replay ends).
    entries: Vec<Entry>,
    saw_checkpoint: bool,
    /// The highest first segment kept that a checkpoint names (those of
    /// segments before version 3 name none).
    first_kept: Option<u64>,
}

impl Replay {
    fn apply_write(&mut self, record: WriteRecord, segments: &mut Segments) {
        if let Some(marker) = record.snapshot {
            if marker.keeps_log {
                self.drop_through(marker.point.index);
            } else {
                self.entries.clear();
                segments.drop_all_entries();
            }
            self.snapshot = Some(marker.point);
        }
        if let Some(hard_state) = record.hard_state {
            self.hard_state = hard_state;
        }
        if let (Some(first), Some(last)) = (record.entries.first(), record.entries.last()) {
            let (first, last) = (first.index, last.index);
            segments.record_entries(first, last);
            let base = self.snapshot.map_or(0, |s| s.index);
            if first <= base {
                self.entries.clear();
                self.entries
                    .extend(record.entries.into_iter().filter(|e| e.index > base));
            } else {
                let keep = self.entries.partition_point(|e| e.index < first);
                self.entries.truncate(keep);
                self.entries.extend(record.entries);
            }
        }
    }

    fn apply_checkpoint(&mut self, checkpoint: Checkpoint) {
        self.hard_state = checkpoint.hard_state;
        self.snapshot = checkpoint.snapshot;
        if let Some(point) = checkpoint.snapshot {
            self.drop_through(point.index);
        }
        self.saw_checkpoint = true;
        if checkpoint.first_kept > 0 {
            self.first_kept = self.first_kept.max(Some(checkpoint.first_kept));
        }
    }

    /// Drops the entries at or below `index`.
    fn drop_through(&mut self, index: u64) {
        let covered = self.entries.partition_point(|e| e.index <= index);
        self.entries.drain(..covered);
    }
}
