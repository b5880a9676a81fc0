//! [`MultiStorage::maybe_compact`]: superseded snapshot files, and the
//! purge of old segments (live entries copied into a checkpoint first, or a
//! group pinning them; see the [module docs](super#purge-deleting-old-segments-while-groups-go-at-their-own-pace)).

use std::sync::atomic::Ordering;

use distribkv_core::raft::LogIndex;
use distribkv_core::shard::GroupId;

use super::super::error::StorageError;
use super::super::format::{FILE_HEADER_LEN, RecordKind, encode_record};
use super::format::{
    GroupCheckpoint, GroupRetire, GroupState, MultiFileName, parse_file_name, segment_path,
    snapshot_path,
};
use super::index::Location;
use super::log::MultiStorage;
use super::options::Purge;

impl MultiStorage {
    /// Once everything appended is durable: deletes superseded snapshot
    /// files (and those of removed groups), and, when the segments hold
    /// [`purge_after`](super::MultiStorageOptions::purge_after) bytes or
    /// more, purges: seals the active segment (if it holds a quarter of
    /// that or more), copies the live entries the sealed segments still
    /// hold into a checkpoint record (unless a group's are too many, which
    /// then pins them), makes it durable, and deletes them oldest first. A
    /// purge that deletes nothing is tried again once the log has grown by
    /// a quarter of `purge_after`. Call it after [`sync`](Self::sync); it
    /// may fsync.
    pub fn maybe_compact(&mut self) -> Result<Purge, StorageError> {
        if self.active.is_unsynced() || self.durable_seq != self.appended_seq {
            return Ok(Purge::default());
        }
        self.halt.ensure_running()?;
        let mut purge = Purge::default();
        if self.snapshot_cleanup_due {
            let cleaned = self.remove_stale_snapshots();
            purge.snapshots_removed = self.halt.on_error(cleaned)?;
            self.snapshot_cleanup_due = false;
        }
        let total = self.log_length();
        if total >= self.options.purge_after.max(self.purge_retry_at) {
            // The active segment is sealed too when it holds a good part
            // of the log, so that this purge can delete it: otherwise a
            // start would read up to a whole segment written since.
            if self.active.length() >= self.options.purge_after / 4 + FILE_HEADER_LEN as u64 {
                let sealed = self.seal_active();
                self.halt.on_error(sealed)?;
            }
            if !self.sealed.is_empty() {
                let purged = self.purge(&mut purge);
                self.halt.on_error(purged)?;
            }
            let counters = &self.stats.counters;
            counters
                .log_bytes
                .store(self.log_length(), Ordering::Relaxed);
            *counters.pinned_by.lock().unwrap_or_else(|e| e.into_inner()) = purge.pinned_by;
            // A purge that freed nothing (pinned or put off) is tried
            // again once the log has grown by a quarter of `purge_after`,
            // not after every commit.
            self.purge_retry_at = if purge.segments_removed == 0 {
                total + self.options.purge_after / 4 + 1
            } else {
                0
            };
        }
        Ok(purge)
    }

    /// Bytes in the segments, the active one included.
    fn log_length(&self) -> u64 {
        self.sealed.iter().map(|s| s.length).sum::<u64>() + self.active.length()
    }

    fn remove_stale_snapshots(&mut self) -> Result<usize, StorageError> {
        let mut removed = 0;
        for name in self.disk.list(&self.dir)? {
            if let Some(MultiFileName::Snapshot((group, point))) =
                name.to_str().map(parse_file_name)
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
        let mut cutoff = self.active.number();
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
        let first = self
            .sealed
            .front()
            .map_or(self.active.number(), |s| s.number);
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
            .sealed
            .iter()
            .take_while(|s| s.number < cutoff)
            .map(|s| s.length)
            .sum();
        if copied * 2 > freed {
            purge.deferred = true;
            return Ok(());
        }
        self.active.flush()?;
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
        // The tombstones first: the segments about to go may hold the
        // records that retired those groups.
        if !self.retired.is_empty() {
            let tombstones = GroupRetire {
                groups: self.retired.iter().copied().collect(),
            };
            encode_record(RecordKind::GroupRetire, &tombstones, &mut self.scratch)
                .expect("a retire record always encodes");
            self.push_scratch()?;
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
        while let Some(oldest) = self.sealed.front().copied()
            && oldest.number < cutoff
        {
            self.disk.remove(&segment_path(&self.dir, oldest.number))?;
            self.disk.sync_dir(&self.dir)?;
            self.sealed.pop_front();
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
}
