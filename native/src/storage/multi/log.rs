//! [`MultiStorage`]: one write-ahead log for every Raft group of a host.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use distribkv_core::raft::{LogIndex, PersistedState, Write};
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostWrite;

use super::super::error::{InvalidWrite, StorageError};
use super::super::file::Disk;
use super::super::format::{
    MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, RecordKind, SnapshotMarker, encode_record,
};
use super::super::identity::Identity;
use super::super::segment::{ActiveSegment, Halt, SegmentLayout};
use super::super::shape::snapshot_marker;
use super::super::snapshot_file::{encode_snapshot, write_snapshot_file};
use super::format::{
    BatchRef, GroupRetire, ItemRef, MULTI_SEGMENT_MAGIC, MULTI_SEGMENT_VERSION, segment_path,
    segment_temporary, snapshot_path, snapshot_temporary,
};
use super::index::{GroupIndex, Location};
use super::options::{MultiStorageOptions, MultiStorageStats};
use super::recovery::recover;

/// A sealed segment on disk.
#[derive(Clone, Copy, Debug)]
pub(super) struct SegmentInfo {
    pub(super) number: u64,
    pub(super) length: u64,
}

/// One write-ahead log for many Raft groups (the raft-engine model): every
/// record is tagged by group, a host's step (all its groups' writes) is one
/// record, and one fsync commits every group's writes.
///
/// Call [`append`](Self::append) for each [`HostWrite`] in `seq` order,
/// [`sync`](Self::sync) for one fsync covering all of them, then
/// [`maybe_compact`](Self::maybe_compact). Usually a
/// [`MultiStorageWorker`](super::MultiStorageWorker) does this on its own
/// thread. After a failed write or fsync the storage is halted, as the
/// single-group [`RaftStorage`](super::super::RaftStorage) is.
#[derive(Debug)]
pub struct MultiStorage {
    pub(super) dir: PathBuf,
    pub(super) identity: Identity,
    pub(super) options: MultiStorageOptions,
    pub(super) disk: Disk,
    /// Every group's index (raft-engine's memtable).
    pub(super) groups: BTreeMap<GroupId, GroupIndex>,
    /// Groups retired for good (tombstones): never in `groups` again.
    pub(super) retired: BTreeSet<GroupId>,
    /// The sealed segments on disk, oldest first.
    pub(super) sealed: VecDeque<SegmentInfo>,
    /// The segment writes go to, after every sealed one.
    pub(super) active: ActiveSegment,
    pub(super) scratch: Vec<u8>,
    pub(super) appended_seq: Option<u64>,
    pub(super) durable_seq: Option<u64>,
    /// Log bytes (every segment) below which no purge is tried again,
    /// after one that deleted nothing; reset by a snapshot, a removal or a
    /// retirement, which may unpin segments.
    pub(super) purge_retry_at: u64,
    /// Set when snapshot files may have become superseded.
    pub(super) snapshot_cleanup_due: bool,
    pub(super) halt: Halt,
    pub(super) stats: MultiStorageStats,
}

impl MultiStorage {
    /// Opens the data folder `dir` for `identity` (creating and
    /// initialising it if new or empty) and returns the storage with every
    /// group's durable state. A torn tail of the last segment is cut off;
    /// every other damage is refused with the file and the byte offset.
    pub fn open(
        dir: impl AsRef<Path>,
        identity: Identity,
        options: MultiStorageOptions,
    ) -> Result<(MultiStorage, BTreeMap<GroupId, PersistedState>), StorageError> {
        let dir = dir.as_ref().to_owned();
        let disk = Disk::new(
            options.storage.file_system.clone(),
            options.storage.faults.clone(),
        );
        let recovered = recover(&dir, identity, &disk)?;
        let mut sealed: VecDeque<SegmentInfo> = recovered
            .segments
            .iter()
            .map(|&(number, length)| SegmentInfo { number, length })
            .collect();
        let layout = SegmentLayout {
            dir: dir.clone(),
            identity,
            magic: MULTI_SEGMENT_MAGIC,
            version: MULTI_SEGMENT_VERSION,
            path: segment_path,
            temporary: segment_temporary,
        };
        let sizes = options.storage.segment_sizes();
        // A segment of an older version that was still being appended to
        // is sealed below and writing goes on in a new one: no segment
        // mixes versions.
        let seal_old_tail = recovered
            .tail
            .is_some_and(|tail| !tail.sealed && tail.version < MULTI_SEGMENT_VERSION);
        let active = match recovered.tail {
            Some(tail) if !tail.sealed => {
                sealed.pop_back();
                let (number, length) = (tail.number, tail.length);
                ActiveSegment::reopen(layout, disk.clone(), number, length, sizes)?
            }
            other => {
                let number = other.map_or(1, |tail| tail.number + 1);
                ActiveSegment::create(layout, disk.clone(), number, sizes)?
            }
        };
        let stats = MultiStorageStats::new(&options);
        let mut storage = MultiStorage {
            dir,
            identity,
            options,
            disk,
            groups: recovered.index,
            retired: recovered.retired,
            sealed,
            active,
            scratch: Vec::new(),
            appended_seq: None,
            durable_seq: None,
            purge_retry_at: 0,
            snapshot_cleanup_due: false,
            halt: Halt::default(),
            stats,
        };
        if seal_old_tail {
            storage.seal_active()?;
            tracing::info!(
                dir = %storage.dir.display(),
                version = MULTI_SEGMENT_VERSION,
                "sealed the log segment of the older format; new records go to a new segment"
            );
        }
        tracing::info!(
            dir = %storage.dir.display(),
            identity = %storage.identity,
            groups = storage.groups.len(),
            retired = storage.retired.len(),
            segments = storage.sealed.len() + 1,
            "recovered the multi-group log"
        );
        Ok((storage, recovered.states))
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The counters, shareable with other threads.
    pub fn stats(&self) -> MultiStorageStats {
        self.stats.clone()
    }

    /// The groups the log holds, in order.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.keys().copied()
    }

    /// The groups retired from the log ([`retire_group`](Self::retire_group)), in order.
    pub fn retired(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.retired.iter().copied()
    }

    /// `(first, last)` index of `group`'s stored entries (`first > last`
    /// when it holds none), or `None` for an unknown group.
    pub fn entry_range(&self, group: GroupId) -> Option<(LogIndex, LogIndex)> {
        self.groups
            .get(&group)
            .map(|index| (index.base() + 1, index.last_index()))
    }

    /// The segment numbers on disk, oldest first (the last is active).
    pub fn segment_numbers(&self) -> Vec<u64> {
        let sealed = self.sealed.iter().map(|s| s.number);
        sealed.chain([self.active.number()]).collect()
    }

    /// `seq` of the last step made durable by [`sync`](Self::sync) in this process.
    pub fn durable_seq(&self) -> Option<u64> {
        self.durable_seq
    }

    /// Whether an earlier failure halted the storage.
    pub fn is_halted(&self) -> bool {
        self.halt.is_halted()
    }

    /// Appends one step's writes of every group as one record, without
    /// fsync (durable after the next [`sync`](Self::sync)). Steps come in
    /// increasing `seq` order; within a step each group's writes follow
    /// the contract on [`Write`] against that group's log. A group the log
    /// does not hold yet is created by its first write.
    ///
    /// A snapshot's file is written (and fsynced) here, before the record
    /// that refers to it, as in the single-group log. A step that breaks
    /// the contract is refused whole ([`StorageError::InvalidGroupWrite`])
    /// before anything is stored.
    pub fn append(&mut self, step: &HostWrite) -> Result<(), StorageError> {
        self.halt.ensure_running()?;
        if let Some(previous) = self.appended_seq
            && step.seq <= previous
        {
            return Err(StorageError::InvalidWrite {
                seq: step.seq,
                problem: InvalidWrite::SeqNotIncreasing { previous },
            });
        }
        let markers = self.check_step(step)?;
        let invalid = |group: GroupId, write: &Write, problem| StorageError::InvalidGroupWrite {
            seq: step.seq,
            group,
            group_seq: write.seq,
            problem,
        };
        let items: Vec<(GroupId, ItemRef<'_>)> = step
            .writes
            .iter()
            .zip(&markers)
            .filter(|((_, write), _)| !write.is_empty())
            .map(|((group, write), marker)| {
                (
                    *group,
                    ItemRef::Write {
                        snapshot: *marker,
                        hard_state: write.hard_state,
                        entries: &write.entries,
                    },
                )
            })
            .collect();
        if !items.is_empty() {
            encode_record(
                RecordKind::GroupBatch,
                &BatchRef { items },
                &mut self.scratch,
            )
            .map_err(|e| StorageError::InvalidWrite {
                seq: step.seq,
                problem: InvalidWrite::Unencodable(e),
            })?;
            let payload_length = self.scratch.len() - RECORD_HEADER_LEN;
            if payload_length > MAX_RECORD_PAYLOAD {
                return Err(StorageError::InvalidWrite {
                    seq: step.seq,
                    problem: InvalidWrite::TooLarge {
                        bytes: payload_length as u64,
                        maximum: MAX_RECORD_PAYLOAD as u64,
                    },
                });
            }
            for ((group, write), marker) in step.writes.iter().zip(&markers) {
                if let (Some(snapshot), Some(marker)) = (&write.snapshot, marker) {
                    let payload = encode_snapshot(snapshot)
                        .map_err(|e| invalid(*group, write, InvalidWrite::Unencodable(e)))?;
                    let path = snapshot_path(&self.dir, *group, marker.point);
                    let written = write_snapshot_file(
                        &path,
                        &snapshot_temporary(&self.dir),
                        self.identity,
                        marker.point,
                        &payload,
                        &self.disk,
                    );
                    self.halt.on_error(written)?;
                }
            }
            let pushed = self.push_scratch();
            let location = self.halt.on_error(pushed)?;
            for ((group, write), marker) in step.writes.iter().zip(&markers) {
                if write.is_empty() {
                    continue;
                }
                let index = self.groups.entry(*group).or_default();
                if let Some(marker) = marker {
                    index.apply_snapshot(*marker);
                    self.snapshot_cleanup_due = true;
                    self.purge_retry_at = 0;
                }
                if let Some(hard_state) = write.hard_state {
                    index.hard_state = hard_state;
                }
                index.apply_entries(&write.entries, location);
                let counters = &self.stats.counters;
                counters.group_writes.fetch_add(1, Ordering::Relaxed);
                counters
                    .entries
                    .fetch_add(write.entries.len() as u64, Ordering::Relaxed);
            }
        }
        self.appended_seq = Some(step.seq);
        self.stats.counters.steps.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Checks every group's writes of `step` in order (a group may have
    /// several) and resolves each snapshot's keep-or-drop rule.
    fn check_step(&self, step: &HostWrite) -> Result<Vec<Option<SnapshotMarker>>, StorageError> {
        let mut repeated: BTreeMap<GroupId, usize> = BTreeMap::new();
        for (group, _) in &step.writes {
            *repeated.entry(*group).or_default() += 1;
        }
        // Groups with several writes in the step are checked on a copy.
        let mut overlay: BTreeMap<GroupId, GroupIndex> = BTreeMap::new();
        let empty = GroupIndex::default();
        let mut markers = Vec::with_capacity(step.writes.len());
        for (group, write) in &step.writes {
            if self.retired.contains(group) && !write.is_empty() {
                return Err(StorageError::InvalidGroupWrite {
                    seq: step.seq,
                    group: *group,
                    group_seq: write.seq,
                    problem: InvalidWrite::GroupRetired,
                });
            }
            let current = overlay
                .get(group)
                .or_else(|| self.groups.get(group))
                .unwrap_or(&empty);
            current
                .check(write)
                .map_err(|problem| StorageError::InvalidGroupWrite {
                    seq: step.seq,
                    group: *group,
                    group_seq: write.seq,
                    problem,
                })?;
            let marker = snapshot_marker(write, |point| current.keeps_log_at(point));
            if repeated[group] > 1 {
                let mut next = current.clone();
                if let Some(marker) = marker {
                    next.apply_snapshot(marker);
                }
                next.apply_entries(
                    &write.entries,
                    Location {
                        segment: 0,
                        offset: 0,
                        length: 0,
                    },
                );
                overlay.insert(*group, next);
            }
            markers.push(marker);
        }
        Ok(markers)
    }

    /// Records that `group` exists (empty if new); durable after the next
    /// [`sync`](Self::sync). Does nothing for a group the log holds.
    pub fn create_group(&mut self, group: GroupId) -> Result<(), StorageError> {
        self.halt.ensure_running()?;
        if self.retired.contains(&group) {
            return Err(StorageError::InvalidGroupWrite {
                seq: self.appended_seq.unwrap_or(0),
                group,
                group_seq: 0,
                problem: InvalidWrite::GroupRetired,
            });
        }
        if self.groups.contains_key(&group) {
            return Ok(());
        }
        self.append_lifecycle(group, ItemRef::Create)?;
        self.groups.insert(group, GroupIndex::default());
        Ok(())
    }

    /// Removes `group` (its replica left this host): its state is dropped,
    /// its entries stop pinning segments, and its snapshot files are
    /// deleted once the removal is durable (after the next
    /// [`sync`](Self::sync)). Does nothing for a group the log does not hold.
    pub fn remove_group(&mut self, group: GroupId) -> Result<(), StorageError> {
        self.halt.ensure_running()?;
        if !self.groups.contains_key(&group) {
            return Ok(());
        }
        self.append_lifecycle(group, ItemRef::Remove)?;
        self.groups.remove(&group);
        self.snapshot_cleanup_due = true;
        self.purge_retry_at = 0;
        Ok(())
    }

    /// Retires `group` for good (its group left the service and its
    /// replica here was dropped): a retire record drops its state and
    /// stores a tombstone, so that no restart or purge brings it back and
    /// any later write to it is refused
    /// ([`InvalidWrite::GroupRetired`]). Its entries stop pinning segments
    /// and its snapshot files are deleted once the record is durable
    /// (after the next [`sync`](Self::sync)). Does nothing for a group
    /// already retired.
    pub fn retire_group(&mut self, group: GroupId) -> Result<(), StorageError> {
        self.halt.ensure_running()?;
        if self.retired.contains(&group) {
            return Ok(());
        }
        encode_record(
            RecordKind::GroupRetire,
            &GroupRetire {
                groups: vec![group],
            },
            &mut self.scratch,
        )
        .expect("a retire record always encodes");
        let pushed = self.push_scratch();
        self.halt.on_error(pushed)?;
        self.groups.remove(&group);
        self.retired.insert(group);
        self.snapshot_cleanup_due = true;
        self.purge_retry_at = 0;
        Ok(())
    }

    fn append_lifecycle(&mut self, group: GroupId, item: ItemRef<'_>) -> Result<(), StorageError> {
        encode_record(
            RecordKind::GroupBatch,
            &BatchRef {
                items: vec![(group, item)],
            },
            &mut self.scratch,
        )
        .expect("a lifecycle record always encodes");
        let pushed = self.push_scratch();
        self.halt.on_error(pushed).map(drop)
    }

    /// Makes everything appended durable with one fsync (none if nothing
    /// was appended since the last) and returns the `seq` of the last
    /// durable step, which acknowledges every earlier one.
    pub fn sync(&mut self) -> Result<Option<u64>, StorageError> {
        self.halt.ensure_running()?;
        let synced = self.flush_and_sync(true);
        self.halt.on_error(synced)?;
        self.durable_seq = self.appended_seq;
        Ok(self.durable_seq)
    }

    /// Seals the active segment and goes on in a new one.
    pub(super) fn seal_active(&mut self) -> Result<(), StorageError> {
        let number = self.active.number();
        let length = self.active.roll()?;
        self.sealed.push_back(SegmentInfo { number, length });
        Ok(())
    }

    /// Moves the record in `scratch` into the active segment (rolling to a
    /// new segment first if it would overflow the active one); returns
    /// where it lies.
    pub(super) fn push_scratch(&mut self) -> Result<Location, StorageError> {
        let frame_length = self.scratch.len() as u64;
        if self.active.is_full_for(frame_length) {
            self.seal_active()?;
        }
        let offset = self.active.push(&self.scratch)?;
        self.stats
            .counters
            .bytes
            .fetch_add(frame_length, Ordering::Relaxed);
        Ok(Location {
            segment: self.active.number(),
            offset,
            length: frame_length as u32,
        })
    }

    pub(super) fn flush_and_sync(&mut self, count_as_commit: bool) -> Result<(), StorageError> {
        if self.active.sync()? && count_as_commit {
            self.stats.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
