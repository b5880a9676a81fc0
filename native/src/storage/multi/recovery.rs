//! Reading a multi-group data folder back: identity, segments (torn tail
//! cut off, everything else refused with the file and offset), every
//! group's state, snapshots.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use distribkv_core::raft::{Entry, HardState, LogIndex, PersistedState};
use distribkv_core::shard::GroupId;

use super::super::error::{Corruption, StorageError};
use super::super::file::Disk;
use super::super::format::{FileHeader, RecordKind, Seal, SnapshotPoint, decode_all};
use super::super::identity::Identity;
use super::super::listing::{FolderKind, open_folder, remove_stale_snapshots};
use super::super::recovery::refuse_header;
use super::super::segment::{Applied, Expected, scan_segment};
use super::super::snapshot_file::read_snapshot_file;
use super::format::{
    Batch, GroupCheckpoint, GroupRetire, Item, MULTI_IDENTITY_MAGIC, MULTI_SEGMENT_MAGIC,
    MULTI_SEGMENT_VERSION, parse_file_name, segment_path, snapshot_path,
};
use super::index::{EntryMeta, GroupIndex, Location};

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Every group's durable state.
    pub states: BTreeMap<GroupId, PersistedState>,
    /// Every group's index.
    pub index: BTreeMap<GroupId, GroupIndex>,
    /// The retired groups (tombstones).
    pub retired: BTreeSet<GroupId>,
    /// The segments on disk, oldest first, with their valid lengths.
    pub segments: Vec<(u64, u64)>,
    /// Where the last segment ends.
    pub tail: Option<Tail>,
}

/// The last segment on disk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tail {
    /// Its number.
    pub number: u64,
    /// Its valid length.
    pub length: u64,
    /// Whether it ends with a seal.
    pub sealed: bool,
    /// The format version it is written in.
    pub version: u32,
}

/// The multi-group log's data folder.
const FOLDER: FolderKind<(GroupId, SnapshotPoint)> = FolderKind {
    parse: parse_file_name,
    identity_magic: MULTI_IDENTITY_MAGIC,
    label: "multi-group data folder",
    foreign: super::super::format::is_log_file,
};

/// Recovers `dir` (creating and initialising it when new) for `identity`.
pub(crate) fn recover(
    dir: &Path,
    identity: Identity,
    disk: &Disk,
) -> Result<Recovered, StorageError> {
    let (listing, changed_folder) = open_folder(
        dir,
        identity,
        &FOLDER,
        |(group, point)| (*group, point.index, point.term),
        disk,
    )?;

    let mut replay = Replay::default();
    let mut tail = None;
    let mut segments = Vec::with_capacity(listing.segments.len());
    for (position, &number) in listing.segments.iter().enumerate() {
        if position > 0 && number != listing.segments[position - 1] + 1 {
            return Err(StorageError::MissingSegment {
                path: segment_path(dir, listing.segments[position - 1] + 1),
            });
        }
        let is_last = position + 1 == listing.segments.len();
        let end = replay_segment(dir, number, is_last, identity, &mut replay, disk)?;
        segments.push((number, end.length));
        tail = Some(end);
    }
    if let Some(&first) = listing.segments.first()
        && first > 1
        && replay.first_kept < first
    {
        return Err(StorageError::MissingLogPrefix {
            path: segment_path(dir, first),
        });
    }

    let mut states = BTreeMap::new();
    let mut index = BTreeMap::new();
    for (group, replayed) in replay.groups {
        let base = replayed.snapshot.map_or(0, |s| s.index);
        let mut entries = Vec::with_capacity(replayed.entries.len());
        let mut metas = VecDeque::with_capacity(replayed.entries.len());
        for (expected, (found, (entry, location))) in (base + 1..).zip(replayed.entries) {
            if found != expected {
                return Err(StorageError::GroupLogGap {
                    dir: dir.to_owned(),
                    group,
                    expected,
                    found,
                });
            }
            metas.push_back(EntryMeta {
                term: entry.term,
                size: entry.size() as u32,
                location,
            });
            entries.push(entry);
        }
        let snapshot = match replayed.snapshot {
            Some(point) => Some(read_snapshot_file(
                &snapshot_path(dir, group, point),
                identity,
                point,
                disk,
            )?),
            None => None,
        };
        states.insert(
            group,
            PersistedState {
                hard_state: replayed.hard_state,
                snapshot,
                entries,
            },
        );
        index.insert(
            group,
            GroupIndex {
                snapshot: replayed.snapshot,
                hard_state: replayed.hard_state,
                entries: metas,
            },
        );
    }
    remove_stale_snapshots(
        dir,
        &listing,
        |&(group, point)| index.get(&group).and_then(|g| g.snapshot) == Some(point),
        |&(group, point)| snapshot_path(dir, group, point),
        changed_folder,
        disk,
    )?;
    Ok(Recovered {
        states,
        index,
        retired: replay.retired,
        segments,
        tail,
    })
}

/// Replays one segment; cuts a torn tail off the last one. Returns its
/// number, valid length, whether it is sealed, and its version.
fn replay_segment(
    dir: &Path,
    number: u64,
    is_last: bool,
    identity: Identity,
    replay: &mut Replay,
    disk: &Disk,
) -> Result<Tail, StorageError> {
    let path = segment_path(dir, number);
    let data = disk.read(&path)?;
    let (header, version) =
        FileHeader::decode_up_to(&data, MULTI_SEGMENT_MAGIC, MULTI_SEGMENT_VERSION)
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
            let location = Location {
                segment: number,
                offset: record.offset as u64,
                length: record.length as u32,
            };
            match record.kind {
                RecordKind::GroupBatch => {
                    replay.apply_batch(decode_all(record.payload)?, location)?
                }
                RecordKind::GroupCheckpoint => {
                    replay.apply_checkpoint(decode_all(record.payload)?, location)?
                }
                RecordKind::GroupRetire => replay.apply_retire(decode_all(record.payload)?),
                RecordKind::Seal => {
                    let seal: Seal = decode_all(record.payload)?;
                    return Ok(Applied::Seal(seal.next_segment));
                }
                RecordKind::Write | RecordKind::Checkpoint => {
                    return Err(Corruption::ForeignRecordKind(record.kind as u8));
                }
            }
            Ok(Applied::Record)
        },
    )?;
    Ok(Tail {
        number,
        length: scanned.length,
        sealed: scanned.sealed,
        version,
    })
}

/// One group rebuilt record by record. The entries may have holes while
/// replay runs: the first segment on disk need not be the first written
/// (see [`Replay`]).
#[derive(Debug, Default)]
struct GroupReplay {
    snapshot: Option<SnapshotPoint>,
    hard_state: HardState,
    entries: BTreeMap<LogIndex, (Entry, Location)>,
}

impl GroupReplay {
    fn base(&self) -> LogIndex {
        self.snapshot.map_or(0, |s| s.index)
    }

    fn drop_through(&mut self, index: LogIndex) {
        self.entries = self.entries.split_off(&(index + 1));
    }
}

/// Every group rebuilt record by record.
///
/// Segments older than the first on disk were deleted after a checkpoint
/// restating every group (and copying the live entries they held) became
/// durable in a later one. Replay then starts from nothing; every operation
/// is a per-index overwrite, a truncation from an index on, or a drop up to
/// the snapshot, so the entries above each group's final snapshot come out
/// as from a replay of every segment ever written, and the checkpoint sets
/// the rest. (A later write never overwrites an entry that a checkpoint
/// copies: the copied ones are exactly those still live when it was written.)
#[derive(Debug, Default)]
struct Replay {
    groups: BTreeMap<GroupId, GroupReplay>,
    /// The highest `first_kept` of the checkpoints seen.
    first_kept: u64,
    /// Groups retired by the records seen (tombstones).
    retired: BTreeSet<GroupId>,
}

impl Replay {
    fn apply_batch(&mut self, batch: Batch, location: Location) -> Result<(), Corruption> {
        for (group, item) in batch.items {
            if self.retired.contains(&group) && !matches!(item, Item::Remove) {
                return Err(Corruption::RetiredGroupWrite(group));
            }
            match item {
                Item::Create => {
                    self.groups.entry(group).or_default();
                }
                Item::Remove => {
                    self.groups.remove(&group);
                }
                Item::Write {
                    snapshot,
                    hard_state,
                    entries,
                } => {
                    let state = self.groups.entry(group).or_default();
                    if let Some(marker) = snapshot {
                        if marker.keeps_log {
                            state.drop_through(marker.point.index);
                        } else {
                            state.entries.clear();
                        }
                        state.snapshot = Some(marker.point);
                    }
                    if let Some(hard_state) = hard_state {
                        state.hard_state = hard_state;
                    }
                    if let Some(first) = entries.first().map(|e| e.index) {
                        let base = state.base();
                        if first <= base {
                            state.entries.clear();
                        } else {
                            state.entries.split_off(&first);
                        }
                        for entry in entries.into_iter().filter(|e| e.index > base) {
                            state.entries.insert(entry.index, (entry, location));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_retire(&mut self, retire: GroupRetire) {
        for group in retire.groups {
            self.groups.remove(&group);
            self.retired.insert(group);
        }
    }

    fn apply_checkpoint(
        &mut self,
        checkpoint: GroupCheckpoint,
        location: Location,
    ) -> Result<(), Corruption> {
        let mut groups = BTreeMap::new();
        for restated in checkpoint.groups {
            if self.retired.contains(&restated.group) {
                return Err(Corruption::RetiredGroupWrite(restated.group));
            }
            let mut state = self.groups.remove(&restated.group).unwrap_or_default();
            state.snapshot = restated.snapshot;
            state.hard_state = restated.hard_state;
            let base = state.base();
            state.drop_through(base);
            for entry in restated.rewritten.into_iter().filter(|e| e.index > base) {
                state.entries.insert(entry.index, (entry, location));
            }
            groups.insert(restated.group, state);
        }
        self.groups = groups;
        self.first_kept = self.first_kept.max(checkpoint.first_kept);
        Ok(())
    }
}
