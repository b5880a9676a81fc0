//! Tuning and counters of a [`MultiStorage`](super::MultiStorage), and
//! what one purge did.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use distribkv_core::shard::GroupId;

use super::super::raft_storage::StorageOptions;

/// Tuning of a [`MultiStorage`](super::MultiStorage).
#[derive(Clone, Debug)]
pub struct MultiStorageOptions {
    /// Segment size, write buffer, fault switches and file system, as for
    /// the single-group log.
    pub storage: StorageOptions,
    /// A purge runs once the segments (the active one included, which is
    /// sealed first when it holds a quarter of this or more) hold at least
    /// this many bytes (default 16 MiB): what a start reads stays about
    /// this, or about three times the live entries if that is more, plus
    /// what pinning groups hold (see
    /// [`rewrite_limit`](Self::rewrite_limit)).
    pub purge_after: u64,
    /// A group whose live entries in the segments a purge would delete
    /// take more than this many bytes is not rewritten: it keeps those
    /// segments (and every later one) until its next snapshot covers them
    /// (default 64 KiB). Copying is for the short tails of quiet groups, as
    /// raft-engine rewrites only regions with few entries: a busy group's
    /// tail is gone at its next snapshot anyway, and copying it on every
    /// purge would write most entries twice. A group that pins while the
    /// log holds [`FORCE_SNAPSHOT_FACTOR`] times
    /// [`purge_after`](Self::purge_after) or more is named by
    /// [`MultiStorageStats::snapshot_wanted`], for the driver to snapshot.
    pub rewrite_limit: u64,
    /// Most bytes of entries one purge rewrites over all groups (default
    /// 64 MiB); beyond, the groups with the most are left pinning.
    pub rewrite_total_limit: u64,
}

impl Default for MultiStorageOptions {
    fn default() -> Self {
        MultiStorageOptions {
            storage: StorageOptions::default(),
            purge_after: 16 << 20,
            rewrite_limit: 64 << 10,
            rewrite_total_limit: 64 << 20,
        }
    }
}

/// Once the segments hold this many times
/// [`MultiStorageOptions::purge_after`] and a group's tail pins them, the
/// group is named by [`MultiStorageStats::snapshot_wanted`]: below that, busy
/// groups pinning the log free it with their own next snapshots.
pub const FORCE_SNAPSHOT_FACTOR: u64 = 4;

/// Counters of a [`MultiStorage`](super::MultiStorage), readable from any thread. Clones share them.
#[derive(Clone, Debug, Default)]
pub struct MultiStorageStats {
    pub(super) counters: Arc<MultiCounters>,
}

#[derive(Debug, Default)]
pub(super) struct MultiCounters {
    pub(super) syncs: AtomicU64,
    pub(super) steps: AtomicU64,
    pub(super) group_writes: AtomicU64,
    pub(super) entries: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) segments_removed: AtomicU64,
    pub(super) entries_rewritten: AtomicU64,
    pub(super) pinned_by: Mutex<Option<GroupId>>,
    pub(super) log_bytes: AtomicU64,
    /// [`FORCE_SNAPSHOT_FACTOR`] times `purge_after`.
    pub(super) force_snapshot_at: u64,
}

impl MultiStorageStats {
    pub(super) fn new(options: &MultiStorageOptions) -> MultiStorageStats {
        MultiStorageStats {
            counters: Arc::new(MultiCounters {
                force_snapshot_at: options.purge_after.saturating_mul(FORCE_SNAPSHOT_FACTOR),
                ..MultiCounters::default()
            }),
        }
    }
    /// Group commits so far: fsyncs made by [`MultiStorage::sync`](super::MultiStorage::sync).
    pub fn syncs(&self) -> u64 {
        self.counters.syncs.load(Ordering::Relaxed)
    }
    /// Host steps ([`HostWrite`](distribkv_core::shard::host::HostWrite)s) appended.
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
    /// The group whose live tail kept the last purge from deleting
    /// segments ([`Purge::pinned_by`] of the last purge tried), if any.
    pub fn pinned_by(&self) -> Option<GroupId> {
        *self
            .counters
            .pinned_by
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
    /// [`pinned_by`](Self::pinned_by) once the segments hold
    /// [`FORCE_SNAPSHOT_FACTOR`] times `purge_after` or more: the driver
    /// should have the host snapshot that group, as raft-engine's users
    /// force the compaction of the regions its purge names. `None` while
    /// the log is smaller, even if a group pins it.
    pub fn snapshot_wanted(&self) -> Option<GroupId> {
        // Both are set by the same purge; a read between the two stores
        // asks one purge early or late.
        self.pinned_by()
            .filter(|_| self.log_bytes() >= self.counters.force_snapshot_at)
    }
    /// Bytes in the log's segments when the last purge was considered.
    pub fn log_bytes(&self) -> u64 {
        self.counters.log_bytes.load(Ordering::Relaxed)
    }
}

/// What one [`MultiStorage::maybe_compact`](super::MultiStorage::maybe_compact) did.
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
