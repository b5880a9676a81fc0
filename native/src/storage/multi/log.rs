//! [`MultiStorage`]: one write-ahead log for every Raft group of a host.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use distribkv_core::raft::{Entry, LogIndex, PersistedState, Write};
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostWrite;

use super::super::error::{Corruption, InvalidWrite, StorageError};
use super::super::file::{DataFile, Disk};
use super::super::format::{
    FILE_HEADER_LEN, FileHeader, Frame, MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, RecordKind, Seal,
    SnapshotMarker, SnapshotPoint, decode_all, encode_record, read_frame,
};
use super::super::identity::Identity;
use super::super::raft_storage::StorageOptions;
use super::super::snapshot_file::{encode_snapshot, write_snapshot_file};
use super::format::{
    Batch, BatchRef, GroupCheckpoint, GroupState, Item, ItemRef, MULTI_SEGMENT_MAGIC,
    MultiFileName, parse_file_name, segment_path, segment_temporary, snapshot_path,
    snapshot_temporary,
};
use super::index::{GroupIndex, Location};
use super::recovery::recover;

/// Tuning of a [`MultiStorage`].
#[derive(Clone, Debug)]
pub struct MultiStorageOptions {
    /// Segment size, write buffer, fault switches and file system, as for
    /// the single-group log.
    pub storage: StorageOptions,
    /// A purge runs once the sealed segments (all but the active one) hold
    /// at least this many bytes (default 256 MiB, four segments).
    pub purge_after: u64,
    /// A group whose live entries in the segments a purge would delete
    /// take more than this many bytes is not rewritten: it keeps those
    /// segments (and every later one) until its next snapshot covers them
    /// (default 8 MiB).
    pub rewrite_limit: u64,
    /// Most bytes of entries one purge rewrites over all groups (default
    /// 64 MiB); beyond, the groups with the most are left pinning.
    pub rewrite_total_limit: u64,
}

impl Default for MultiStorageOptions {
    fn default() -> Self {
        MultiStorageOptions {
            storage: StorageOptions::default(),
            purge_after: 256 << 20,
            rewrite_limit: 8 << 20,
            rewrite_total_limit: 64 << 20,
        }
    }
}

/// Counters of a [`MultiStorage`], readable from any thread. Clones share them.
#[derive(Clone, Debug, Default)]
pub struct MultiStorageStats {
    counters: Arc<MultiCounters>,
}

#[derive(Debug, Default)]
struct MultiCounters {
    syncs: AtomicU64,
    steps: AtomicU64,
    group_writes: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    segments_removed: AtomicU64,
    entries_rewritten: AtomicU64,
}

impl MultiStorageStats {
    /// Group commits so far: fsyncs made by [`MultiStorage::sync`].
    pub fn syncs(&self) -> u64 {
        self.counters.syncs.load(Ordering::Relaxed)
    }
    /// Host steps ([`HostWrite`]s) appended.
    pub fn steps(&self) -> u64 {
        self.counters.steps.load(Ordering::Relaxed)
    }
    /// Group writes appended, over all steps.
    pub fn group_writes(&self) -> u64 {
        self.counters.group_writes.load(Ordering::Relaxed)
    }
    /// Entries appended.
    pub fn entries(&self) -> u64 {
        self.counters.entries.load(Ordering::Relaxed)
    }
    /// Bytes of records appended (checkpoints included).
    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }
    /// Segments deleted by purges.
    pub fn segments_removed(&self) -> u64 {
        self.counters.segments_removed.load(Ordering::Relaxed)
    }
    /// Entries copied into checkpoints by purges.
    pub fn entries_rewritten(&self) -> u64 {
        self.counters.entries_rewritten.load(Ordering::Relaxed)
    }
}

/// What one [`MultiStorage::maybe_compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purge {
    /// Segments deleted.
    pub segments_removed: usize,
    /// Live entries copied into the checkpoint so that their segments could go.
    pub entries_rewritten: usize,
    /// Snapshot files deleted (superseded, or of removed groups).
    pub snapshots_removed: usize,
    /// The group whose live tail was too big to rewrite and kept segments
    /// that could otherwise have been deleted, if any.
    pub pinned_by: Option<GroupId>,
    /// Whether the purge was put off because the live entries to copy
    /// were more than half of what deleting their segments would free.
    pub deferred: bool,
}

/// One segment on disk.
#[derive(Clone, Copy, Debug)]
struct SegmentInfo {
    number: u64,
    length: u64,
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
    dir: PathBuf,
    identity: Identity,
    options: MultiStorageOptions,
    disk: Disk,
    /// Every group's index (raft-engine's memtable).
    groups: BTreeMap<GroupId, GroupIndex>,
    /// Segments on disk, oldest first; the last is `active`.
    segments: VecDeque<SegmentInfo>,
    active: DataFile,
    /// Frames appended but not yet handed to the kernel.
    pending: Vec<u8>,
    /// Whether bytes were appended since the last fsync.
    unsynced: bool,
    scratch: Vec<u8>,
    appended_seq: Option<u64>,
    durable_seq: Option<u64>,
    /// Set when snapshot files may have become superseded.
    snapshot_cleanup_due: bool,
    failure: Option<String>,
    stats: MultiStorageStats,
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
        let mut segments: VecDeque<SegmentInfo> = recovered
            .segments
            .iter()
            .map(|&(number, length)| SegmentInfo { number, length })
            .collect();
        let active = match recovered.tail {
            Some((number, _, false)) => disk.open_append(&segment_path(&dir, number))?,
            other => {
                let number = other.map_or(1, |(number, _, _)| number + 1);
                let file = create_segment(&dir, identity, number, &disk)?;
                segments.push_back(SegmentInfo {
                    number,
                    length: FILE_HEADER_LEN as u64,
                });
                file
            }
        };
        let storage = MultiStorage {
            dir,
            identity,
            options,
            disk,
            groups: recovered.index,
            segments,
            active,
            pending: Vec::new(),
            unsynced: false,
            scratch: Vec::new(),
            appended_seq: None,
            durable_seq: None,
            snapshot_cleanup_due: false,
            failure: None,
            stats: MultiStorageStats::default(),
        };
        tracing::info!(
            dir = %storage.dir.display(),
            identity = %storage.identity,
            groups = storage.groups.len(),
            segments = storage.segments.len(),
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

    /// `(first, last)` index of `group`'s stored entries (`first > last`
    /// when it holds none), or `None` for an unknown group.
    pub fn entry_range(&self, group: GroupId) -> Option<(LogIndex, LogIndex)> {
        self.groups
            .get(&group)
            .map(|index| (index.base() + 1, index.last_index()))
    }

    /// The segment numbers on disk, oldest first (the last is active).
    pub fn segment_numbers(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.number).collect()
    }

    /// `seq` of the last step made durable by [`sync`](Self::sync) in this process.
    pub fn durable_seq(&self) -> Option<u64> {
        self.durable_seq
    }

    /// Whether an earlier failure halted the storage.
    pub fn is_halted(&self) -> bool {
        self.failure.is_some()
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
        self.ensure_running()?;
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
                    self.halt_on_error(written)?;
                }
            }
            let pushed = self.push_scratch();
            let location = self.halt_on_error(pushed)?;
            for ((group, write), marker) in step.writes.iter().zip(&markers) {
                if write.is_empty() {
                    continue;
                }
                let index = self.groups.entry(*group).or_default();
                if let Some(marker) = marker {
                    index.apply_snapshot(*marker);
                    self.snapshot_cleanup_due = true;
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
            let marker = write.snapshot.as_ref().map(|snapshot| {
                let point = SnapshotPoint {
                    index: snapshot.meta.index,
                    term: snapshot.meta.term,
                };
                SnapshotMarker {
                    point,
                    keeps_log: current.keeps_log_at(point),
                }
            });
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
        self.ensure_running()?;
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
        self.ensure_running()?;
        if !self.groups.contains_key(&group) {
            return Ok(());
        }
        self.append_lifecycle(group, ItemRef::Remove)?;
        self.groups.remove(&group);
        self.snapshot_cleanup_due = true;
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
        self.halt_on_error(pushed).map(drop)
    }

    /// Makes everything appended durable with one fsync (none if nothing
    /// was appended since the last) and returns the `seq` of the last
    /// durable step, which acknowledges every earlier one.
    pub fn sync(&mut self) -> Result<Option<u64>, StorageError> {
        self.ensure_running()?;
        let synced = self.flush_and_sync(true);
        self.halt_on_error(synced)?;
        self.durable_seq = self.appended_seq;
        Ok(self.durable_seq)
    }

    /// Entries `low..high` of `group`, read back from the log through the
    /// index: one positioned read per record holding some of them.
    pub fn entries(
        &mut self,
        group: GroupId,
        low: LogIndex,
        high: LogIndex,
    ) -> Result<Vec<Entry>, StorageError> {
        let index = self
            .groups
            .get(&group)
            .ok_or(StorageError::UnknownGroup { group })?;
        let (first, last) = (index.base() + 1, index.last_index());
        if low > high || low < first || high > last + 1 {
            return Err(StorageError::EntriesUnavailable {
                group,
                first,
                last,
                low,
                high,
            });
        }
        let wanted: Vec<(LogIndex, Location)> = (low..high)
            .map(|i| (i, index.entry(i).expect("in range").location))
            .collect();
        if !self.pending.is_empty() {
            let flushed = self.flush();
            self.halt_on_error(flushed)?;
        }
        self.read_entries(group, &wanted)
    }

    /// Reads the entries at `wanted` (index, location) of `group`.
    fn read_entries(
        &self,
        group: GroupId,
        wanted: &[(LogIndex, Location)],
    ) -> Result<Vec<Entry>, StorageError> {
        let mut entries = Vec::with_capacity(wanted.len());
        let mut position = 0;
        while position < wanted.len() {
            let location = wanted[position].1;
            let run = wanted[position..]
                .iter()
                .take_while(|(_, l)| *l == location)
                .count();
            let found = self.read_group_entries(group, location)?;
            for &(index, _) in &wanted[position..position + run] {
                let entry =
                    found
                        .get(&index)
                        .cloned()
                        .ok_or_else(|| StorageError::CorruptSegment {
                            path: segment_path(&self.dir, location.segment),
                            offset: location.offset,
                            problem: Corruption::EntryNotInRecord { group, index },
                        })?;
                entries.push(entry);
            }
            position += run;
        }
        Ok(entries)
    }

    /// Every entry of `group` in the record at `location`, the last copy of
    /// each index winning.
    fn read_group_entries(
        &self,
        group: GroupId,
        location: Location,
    ) -> Result<BTreeMap<LogIndex, Entry>, StorageError> {
        let path = segment_path(&self.dir, location.segment);
        let bytes = self
            .disk
            .read_at(&path, location.offset, location.length as usize)?;
        let corrupt = |problem| StorageError::CorruptSegment {
            path: path.clone(),
            offset: location.offset,
            problem,
        };
        let (kind, payload) = match read_frame(&bytes, 0) {
            Frame::Record { kind, payload, .. } => (kind, payload),
            Frame::Damaged(problem) => return Err(corrupt(problem)),
            Frame::End => {
                return Err(corrupt(Corruption::TruncatedRecord {
                    needed: location.length as u64,
                    available: 0,
                }));
            }
        };
        let mut found = BTreeMap::new();
        match kind {
            RecordKind::GroupBatch => {
                let batch: Batch = decode_all(payload).map_err(corrupt)?;
                for (item_group, item) in batch.items {
                    if let (true, Item::Write { entries, .. }) = (item_group == group, item) {
                        found.extend(entries.into_iter().map(|e| (e.index, e)));
                    }
                }
            }
            RecordKind::GroupCheckpoint => {
                let checkpoint: GroupCheckpoint = decode_all(payload).map_err(corrupt)?;
                if let Some(state) = checkpoint.groups.into_iter().find(|s| s.group == group) {
                    found.extend(state.rewritten.into_iter().map(|e| (e.index, e)));
                }
            }
            other => return Err(corrupt(Corruption::ForeignRecordKind(other as u8))),
        }
        Ok(found)
    }

    /// Once everything appended is durable: deletes superseded snapshot
    /// files (and those of removed groups), and, when the sealed segments
    /// hold [`purge_after`](MultiStorageOptions::purge_after) bytes or
    /// more, purges: copies the live entries they still hold into a
    /// checkpoint record (unless a group's are too many, which then pins
    /// them), makes it durable, and deletes them oldest first. Call it
    /// after [`sync`](Self::sync); it may fsync.
    pub fn maybe_compact(&mut self) -> Result<Purge, StorageError> {
        if self.unsynced || self.durable_seq != self.appended_seq {
            return Ok(Purge::default());
        }
        self.ensure_running()?;
        let mut purge = Purge::default();
        if self.snapshot_cleanup_due {
            let cleaned = self.remove_stale_snapshots();
            purge.snapshots_removed = self.halt_on_error(cleaned)?;
            self.snapshot_cleanup_due = false;
        }
        let sealed: u64 = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .map(|s| s.length)
            .sum();
        if sealed > 0 && sealed >= self.options.purge_after {
            let purged = self.purge(&mut purge);
            self.halt_on_error(purged)?;
        }
        Ok(purge)
    }

    fn remove_stale_snapshots(&mut self) -> Result<usize, StorageError> {
        let mut removed = 0;
        for name in self.disk.list(&self.dir)? {
            if let Some(MultiFileName::Snapshot(group, point)) = name.to_str().map(parse_file_name)
                && self.groups.get(&group).and_then(|g| g.snapshot) != Some(point)
            {
                self.disk.remove(&snapshot_path(&self.dir, group, point))?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.disk.sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Chooses the oldest segment to keep: every sealed one goes, unless a
    /// group's live entries in them are too many to copy.
    fn purge_cutoff(&self, purge: &mut Purge) -> u64 {
        let active = self.segments.back().expect("an active segment").number;
        let mut cutoff = active;
        loop {
            let mut total = 0u64;
            let mut worst: Option<(u64, u64, GroupId)> = None; // (bytes, oldest, group)
            let mut lowered = None;
            for (&group, index) in &self.groups {
                let (mut bytes, mut oldest) = (0u64, u64::MAX);
                for meta in index.entries.iter().filter(|m| m.location.segment < cutoff) {
                    bytes += u64::from(meta.size);
                    oldest = oldest.min(meta.location.segment);
                }
                if bytes == 0 {
                    continue;
                }
                total += bytes;
                if bytes > self.options.rewrite_limit {
                    lowered = Some((oldest, group));
                    break;
                }
                if worst.is_none_or(|(b, _, _)| bytes > b) {
                    worst = Some((bytes, oldest, group));
                }
            }
            if lowered.is_none()
                && total > self.options.rewrite_total_limit
                && let Some((_, oldest, group)) = worst
            {
                lowered = Some((oldest, group));
            }
            match lowered {
                Some((oldest, group)) => {
                    cutoff = oldest;
                    purge.pinned_by = Some(group);
                }
                None => return cutoff,
            }
        }
    }

    fn purge(&mut self, purge: &mut Purge) -> Result<(), StorageError> {
        let first = self.segments.front().expect("an active segment").number;
        let cutoff = self.purge_cutoff(purge);
        if cutoff <= first {
            if let Some(group) = purge.pinned_by {
                tracing::debug!(group, "a group's live log pins every old segment");
            }
            return Ok(());
        }
        // Copy at most half of what is freed, so that purges never chase
        // their own checkpoints: the log stays within about twice the live
        // data (or `purge_after`).
        let copied: u64 = self
            .groups
            .values()
            .flat_map(|index| index.entries.iter())
            .filter(|meta| meta.location.segment < cutoff)
            .map(|meta| u64::from(meta.size))
            .sum();
        let freed: u64 = self
            .segments
            .iter()
            .take_while(|s| s.number < cutoff)
            .map(|s| s.length)
            .sum();
        if copied * 2 > freed {
            purge.deferred = true;
            return Ok(());
        }
        self.flush()?;
        let mut restated = Vec::with_capacity(self.groups.len());
        let mut rewritten_indexes: Vec<(GroupId, Vec<LogIndex>)> = Vec::new();
        for (&group, index) in &self.groups {
            let wanted: Vec<(LogIndex, Location)> = index
                .entries
                .iter()
                .enumerate()
                .filter(|(_, m)| m.location.segment < cutoff)
                .map(|(i, m)| (index.base() + 1 + i as u64, m.location))
                .collect();
            let rewritten = self.read_entries(group, &wanted)?;
            if !rewritten.is_empty() {
                rewritten_indexes.push((group, wanted.iter().map(|(i, _)| *i).collect()));
            }
            restated.push(GroupState {
                group,
                snapshot: index.snapshot,
                hard_state: index.hard_state,
                rewritten,
            });
        }
        let checkpoint = GroupCheckpoint {
            first_kept: cutoff,
            groups: restated,
        };
        encode_record(RecordKind::GroupCheckpoint, &checkpoint, &mut self.scratch)
            .expect("a checkpoint always encodes");
        let location = self.push_scratch()?;
        self.flush_and_sync(false)?;
        for (group, indexes) in rewritten_indexes {
            let index = self.groups.get_mut(&group).expect("listed above");
            let base = index.base();
            for i in indexes {
                index.entries[(i - base - 1) as usize].location = location;
                purge.entries_rewritten += 1;
            }
        }
        // Oldest first, each removal durable before the next, so that a
        // power cut leaves consecutive segments.
        while let Some(oldest) = self.segments.front().copied()
            && oldest.number < cutoff
        {
            self.disk.remove(&segment_path(&self.dir, oldest.number))?;
            self.disk.sync_dir(&self.dir)?;
            self.segments.pop_front();
            purge.segments_removed += 1;
        }
        let counters = &self.stats.counters;
        counters
            .segments_removed
            .fetch_add(purge.segments_removed as u64, Ordering::Relaxed);
        counters
            .entries_rewritten
            .fetch_add(purge.entries_rewritten as u64, Ordering::Relaxed);
        tracing::debug!(
            segments_removed = purge.segments_removed,
            entries_rewritten = purge.entries_rewritten,
            first_kept = cutoff,
            "purged the multi-group log"
        );
        Ok(())
    }

    /// Moves the record in `scratch` into the pending bytes (rolling to a
    /// new segment first if it would overflow the active one); returns
    /// where it lies.
    fn push_scratch(&mut self) -> Result<Location, StorageError> {
        let frame_length = self.scratch.len() as u64;
        let active = *self.segments.back().expect("an active segment");
        if active.length > FILE_HEADER_LEN as u64
            && active.length + frame_length > self.options.storage.segment_size
        {
            self.roll()?;
        }
        let active = self.segments.back_mut().expect("an active segment");
        let location = Location {
            segment: active.number,
            offset: active.length,
            length: frame_length as u32,
        };
        active.length += frame_length;
        self.pending.extend_from_slice(&self.scratch);
        self.unsynced = true;
        self.stats
            .counters
            .bytes
            .fetch_add(frame_length, Ordering::Relaxed);
        if self.pending.len() >= self.options.storage.write_buffer_size {
            self.flush()?;
        }
        Ok(location)
    }

    /// Seals the active segment durably, then starts the next one.
    fn roll(&mut self) -> Result<(), StorageError> {
        let current = self.segments.back().expect("an active segment").number;
        let next = current + 1;
        let mut seal = Vec::new();
        encode_record(RecordKind::Seal, &Seal { next_segment: next }, &mut seal)
            .expect("a seal always encodes");
        self.pending.extend_from_slice(&seal);
        if let Some(active) = self.segments.back_mut() {
            active.length += seal.len() as u64;
        }
        self.unsynced = true;
        self.flush_and_sync(false)?;
        self.active = create_segment(&self.dir, self.identity, next, &self.disk)?;
        self.segments.push_back(SegmentInfo {
            number: next,
            length: FILE_HEADER_LEN as u64,
        });
        tracing::debug!(
            segment = next,
            "started a new segment of the multi-group log"
        );
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        if !self.pending.is_empty() {
            self.active.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    fn flush_and_sync(&mut self, count_as_commit: bool) -> Result<(), StorageError> {
        self.flush()?;
        if self.unsynced {
            self.active.sync_data()?;
            self.unsynced = false;
            if count_as_commit {
                self.stats.counters.syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn ensure_running(&self) -> Result<(), StorageError> {
        match &self.failure {
            Some(cause) => Err(StorageError::Halted {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn halt_on_error<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(error) = &result {
            tracing::error!(%error, "multi-group storage failed; refusing further writes");
            self.failure = Some(error.to_string());
        }
        result
    }
}

/// Creates segment `number` atomically with its header, opened for appending.
fn create_segment(
    dir: &Path,
    identity: Identity,
    number: u64,
    disk: &Disk,
) -> Result<DataFile, StorageError> {
    let path = segment_path(dir, number);
    let header = FileHeader {
        magic: MULTI_SEGMENT_MAGIC,
        identity,
        number,
    }
    .encode();
    disk.write_atomically(&path, &segment_temporary(dir, number), &[&header])?;
    disk.open_append(&path)
}
