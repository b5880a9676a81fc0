//! [`RaftStorage`]: Raft's persistence contract on top of the segmented log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use distribkv_core::raft::{PersistedState, Write};

use super::error::{InvalidWrite, StorageError};
use super::fault::FaultInjector;
use super::file::Disk;
use super::format::{
    Checkpoint, FileName, MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, RecordKind, SEGMENT_MAGIC,
    SEGMENT_VERSION, TEMPORARY_SUFFIX, WriteRecordRef, encode_record, parse_file_name,
    segment_path, snapshot_path,
};
use super::fs::{FileSystem, StdFileSystem};
use super::identity::Identity;
use super::recovery::recover;
use super::segment::{ActiveSegment, Halt, SegmentLayout, SegmentSizes};
use super::shape::{LogShape, Segments, snapshot_marker};
use super::snapshot_file::{encode_snapshot, write_snapshot};

/// Tuning of a [`RaftStorage`].
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Size a segment may reach before writing moves on to a new one, in
    /// bytes (default 64 MiB). A single record larger than this still fits
    /// in one segment of its own.
    pub segment_size: u64,
    /// Appended records are gathered in memory and handed to the kernel once
    /// this many bytes are pending, or at [`RaftStorage::sync`] (default 1 MiB).
    pub write_buffer_size: usize,
    /// Bytes of zeros the active segment keeps written ahead of its last
    /// record, up to the segment size (default 1 MiB; 0: none). Group
    /// commits then overwrite blocks the file has instead of growing it,
    /// and most fsyncs write no file-system metadata: on the machine in
    /// docs/BENCHMARKS.md they take about 40 % less time and CPU.
    pub preallocate: u64,
    /// The least time between the starts of two group commits of the
    /// storage worker (default zero: a group commit starts as soon as the
    /// previous one ends). Writes queued meanwhile join the next one, so
    /// under a steady load below the disk's limit fewer fsyncs carry more
    /// writes each, for at most this much more latency; an idle worker
    /// still commits a lone write at once. See
    /// [`StorageWorker`](super::StorageWorker).
    pub commit_interval: Duration,
    /// Fault switches for tests; the default one never fires.
    pub faults: FaultInjector,
    /// The file system every file and folder operation goes through: the
    /// real one by default, a model of a disk that loses power in tests
    /// (`FaultFileSystem`, with the `fault-injection` feature).
    pub file_system: Arc<dyn FileSystem>,
}

impl StorageOptions {
    /// The sizes the active segment works with.
    pub(crate) fn segment_sizes(&self) -> SegmentSizes {
        SegmentSizes {
            segment_size: self.segment_size,
            write_buffer_size: self.write_buffer_size,
            preallocate: self.preallocate,
        }
    }
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_size: 64 << 20,
            write_buffer_size: 1 << 20,
            preallocate: 1 << 20,
            commit_interval: Duration::ZERO,
            faults: FaultInjector::default(),
            file_system: Arc::new(StdFileSystem),
        }
    }
}

/// Counters of a [`RaftStorage`], readable from any thread while a
/// [`StorageWorker`](super::StorageWorker) owns the storage. Clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct StorageStats {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    syncs: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
}

impl StorageStats {
    /// Group commits so far: fsyncs of the log made by [`RaftStorage::sync`]
    /// (fsyncs for segment rolls, snapshots and compaction are not counted).
    pub fn syncs(&self) -> u64 {
        self.counters.syncs.load(Ordering::Relaxed)
    }

    /// Writes appended so far (empty ones included).
    pub fn writes(&self) -> u64 {
        self.counters.writes.load(Ordering::Relaxed)
    }

    /// Bytes of log records appended so far.
    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }
}

/// What one [`RaftStorage::maybe_compact`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Log segments deleted because the snapshot covers them.
    pub segments_removed: usize,
    /// Snapshot files deleted because a newer one is durable.
    pub snapshots_removed: usize,
}

/// Durable storage of one Raft node: applies [`Write`]s to a segmented
/// write-ahead log and snapshot files, and reads them back at restart.
///
/// Call [`append`](Self::append) for each write in `seq` order, then
/// [`sync`](Self::sync) for one fsync covering all of them, then
/// [`maybe_compact`](Self::maybe_compact). Usually a
/// [`StorageWorker`](super::StorageWorker) does this on its own thread.
///
/// After any failed write or fsync the storage is halted: every later call
/// fails with [`StorageError::Halted`], and nothing appended since the last
/// successful `sync` is ever reported durable.
#[derive(Debug)]
pub struct RaftStorage {
    dir: PathBuf,
    identity: Identity,
    /// The file system, through the fault switches.
    disk: Disk,
    /// The log's shape after every appended write.
    shape: LogShape,
    /// Segments on disk, oldest first; the last is `active`.
    segments: Segments,
    /// The segment writes go to (the last of `segments`).
    active: ActiveSegment,
    /// Reused buffer for encoding one record.
    scratch: Vec<u8>,
    /// `seq` of the last appended write.
    appended_seq: Option<u64>,
    /// `seq` of the last write known durable.
    durable_seq: Option<u64>,
    /// Set when a snapshot was stored and old files may be deleted.
    compaction_due: bool,
    /// `seq` of the write that stored the latest snapshot, until it is durable.
    snapshot_seq: Option<u64>,
    /// The failure that halted the storage, if any.
    halt: Halt,
    /// [`StorageOptions::commit_interval`].
    commit_interval: Duration,
    stats: StorageStats,
}

impl RaftStorage {
    /// Opens the data folder `dir` for `identity`, creating and initialising
    /// it if it does not exist or is empty, and returns the storage ready to
    /// append together with the durable state to restart the node from.
    ///
    /// Recovery cuts off a torn tail of the last segment (logged as a
    /// warning) and refuses every other damage; see the
    /// [module documentation](super#recovery-rules).
    pub fn open(
        dir: impl AsRef<Path>,
        identity: Identity,
        options: StorageOptions,
    ) -> Result<(RaftStorage, PersistedState), StorageError> {
        let dir = dir.as_ref().to_owned();
        let disk = Disk::new(options.file_system.clone(), options.faults.clone());
        let recovered = recover(&dir, identity, &disk)?;
        let mut segments = recovered.segments;
        // A segment of an older format that was still being appended to is
        // sealed below and writing goes on in a new one: no file mixes
        // format versions.
        let seal_old_tail = recovered
            .tail
            .is_some_and(|tail| !tail.sealed && tail.version < SEGMENT_VERSION);
        let layout = SegmentLayout {
            dir: dir.clone(),
            identity,
            magic: SEGMENT_MAGIC,
            version: SEGMENT_VERSION,
            path: segment_path,
            temporary: segment_temporary,
        };
        let sizes = options.segment_sizes();
        let active = match recovered.tail {
            Some(tail) if !tail.sealed => {
                ActiveSegment::reopen(layout, disk.clone(), tail.number, tail.length, sizes)?
            }
            other => {
                let number = other.map_or(1, |tail| tail.number + 1);
                segments.push(number);
                ActiveSegment::create(layout, disk.clone(), number, sizes)?
            }
        };
        let shape = LogShape::of(&recovered.state);
        let mut storage = RaftStorage {
            compaction_due: shape.snapshot.is_some(),
            dir,
            identity,
            disk,
            shape,
            segments,
            active,
            scratch: Vec::new(),
            appended_seq: None,
            durable_seq: None,
            snapshot_seq: None,
            halt: Halt::default(),
            commit_interval: options.commit_interval,
            stats: StorageStats::default(),
        };
        if seal_old_tail {
            storage.roll()?;
            tracing::info!(
                dir = %storage.dir.display(),
                version = SEGMENT_VERSION,
                "sealed the log segment of the older format; new records go to a new segment"
            );
        }
        tracing::info!(
            dir = %storage.dir.display(),
            identity = %storage.identity,
            entries = recovered.state.entries.len(),
            snapshot_index = storage.shape.base(),
            "recovered durable state"
        );
        Ok((storage, recovered.state))
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whose data this is.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// [`StorageOptions::commit_interval`], as opened.
    pub fn commit_interval(&self) -> Duration {
        self.commit_interval
    }

    /// The counters, shareable with other threads.
    pub fn stats(&self) -> StorageStats {
        self.stats.clone()
    }

    /// `seq` of the last write made durable by [`sync`](Self::sync) in this
    /// process, if any.
    pub fn durable_seq(&self) -> Option<u64> {
        self.durable_seq
    }

    /// Whether an earlier failure halted the storage.
    pub fn is_halted(&self) -> bool {
        self.halt.is_halted()
    }

    /// Appends `write` to the log, without fsync: it is durable only after the
    /// next [`sync`](Self::sync). Writes must come in increasing `seq` order.
    ///
    /// A write carrying a snapshot is the exception: the snapshot's file is
    /// written and fsynced here (snapshots are rare and large), before the
    /// log record that refers to it; until that record is durable, recovery
    /// keeps using the previous snapshot.
    ///
    /// A write that breaks the contract is refused with
    /// [`StorageError::InvalidWrite`] before anything is stored; an I/O
    /// failure halts the storage.
    pub fn append(&mut self, write: &Write) -> Result<(), StorageError> {
        self.halt.ensure_running()?;
        let invalid = |problem| StorageError::InvalidWrite {
            seq: write.seq,
            problem,
        };
        if let Some(previous) = self.appended_seq
            && write.seq <= previous
        {
            return Err(invalid(InvalidWrite::SeqNotIncreasing { previous }));
        }
        self.shape.check(write).map_err(invalid)?;

        if !write.is_empty() {
            let marker = snapshot_marker(write, |point| self.shape.keeps_log_at(point));
            let record = WriteRecordRef {
                snapshot: marker,
                hard_state: write.hard_state,
                entries: &write.entries,
            };
            encode_record(RecordKind::Write, &record, &mut self.scratch)
                .map_err(|e| invalid(InvalidWrite::Unencodable(e)))?;
            let payload_length = self.scratch.len() - RECORD_HEADER_LEN;
            if payload_length > MAX_RECORD_PAYLOAD {
                return Err(invalid(InvalidWrite::TooLarge {
                    bytes: payload_length as u64,
                    maximum: MAX_RECORD_PAYLOAD as u64,
                }));
            }
            if let (Some(snapshot), Some(marker)) = (&write.snapshot, marker) {
                let payload =
                    encode_snapshot(snapshot).map_err(|e| invalid(InvalidWrite::Unencodable(e)))?;
                let written =
                    write_snapshot(&self.dir, self.identity, marker.point, &payload, &self.disk);
                self.halt.on_error(written)?;
            }
            let pushed = self.push_scratch();
            self.halt.on_error(pushed)?;

            // The record is in the active segment (a roll happened before it
            // if needed): now update the index to match.
            if let Some(marker) = marker {
                if !marker.keeps_log {
                    self.segments.drop_all_entries();
                }
                self.shape.apply_snapshot(marker);
                self.compaction_due = true;
                self.snapshot_seq = Some(write.seq);
            }
            if let Some(hard_state) = write.hard_state {
                self.shape.hard_state = hard_state;
            }
            if let (Some(first), Some(last)) = (write.entries.first(), write.entries.last()) {
                self.segments.record_entries(first.index, last.index);
                self.shape.apply_entries(&write.entries);
            }
        }
        self.appended_seq = Some(write.seq);
        self.stats.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes every appended write durable with one fsync (none if nothing
    /// was appended since the last one) and returns the `seq` of the last
    /// durable write, which acknowledges all earlier ones too.
    pub fn sync(&mut self) -> Result<Option<u64>, StorageError> {
        self.halt.ensure_running()?;
        let synced = self.flush_and_sync(true);
        self.halt.on_error(synced)?;
        self.durable_seq = self.appended_seq;
        Ok(self.durable_seq)
    }

    /// Once the latest snapshot's write is durable, deletes what it
    /// supersedes: the oldest segments holding no entry after the snapshot
    /// (after making a checkpoint of the snapshot point and the hard state
    /// durable in the active segment, so deleting never loses them), and
    /// every other snapshot file. Does nothing otherwise. Call it after
    /// [`sync`](Self::sync); it may fsync, so it comes after acknowledging.
    pub fn maybe_compact(&mut self) -> Result<Compaction, StorageError> {
        let snapshot_durable = match self.snapshot_seq {
            None => true,
            Some(seq) => self.durable_seq.is_some_and(|durable| durable >= seq),
        };
        if !self.compaction_due || !snapshot_durable {
            return Ok(Compaction::default());
        }
        self.halt.ensure_running()?;
        let compacted = self.compact();
        let compaction = self.halt.on_error(compacted)?;
        self.compaction_due = false;
        self.snapshot_seq = None;
        if compaction != Compaction::default() {
            tracing::debug!(
                segments_removed = compaction.segments_removed,
                snapshots_removed = compaction.snapshots_removed,
                snapshot_index = self.shape.base(),
                "compacted the log after a snapshot"
            );
        }
        Ok(compaction)
    }

    fn compact(&mut self) -> Result<Compaction, StorageError> {
        let mut compaction = Compaction::default();
        // Recovery reads every segment still on disk, and only whole sealed
        // segments can be deleted: an active segment left to grow to the
        // segment size would be read whole at every start however much of
        // it the snapshot covers. Sealing it here once it holds more than
        // a little lets this compaction, or the next one, delete it.
        if self.active.length() > roll_at_compaction(self.active.segment_size()) {
            self.roll()?;
        }
        let deletable = self.segments.deletable_prefix(self.shape.base());
        if deletable > 0 {
            let checkpoint = Checkpoint {
                snapshot: self.shape.snapshot,
                hard_state: self.shape.hard_state,
                // Invariant: the newest segment is never deletable.
                first_kept: self
                    .segments
                    .iter()
                    .nth(deletable)
                    .expect("the newest segment is kept")
                    .number,
            };
            encode_record(RecordKind::Checkpoint, &checkpoint, &mut self.scratch)
                .expect("a checkpoint always encodes");
            self.push_scratch()?;
            self.flush_and_sync(false)?;
            let numbers: Vec<u64> = self
                .segments
                .iter()
                .take(deletable)
                .map(|s| s.number)
                .collect();
            // Oldest first, each removal durable before the next, so that a
            // power cut leaves a contiguous suffix: removals in one folder may
            // reach the disk in any order until the folder is fsynced.
            for number in numbers {
                self.disk.remove(&segment_path(&self.dir, number))?;
                self.disk.sync_dir(&self.dir)?;
                self.segments.remove_prefix(1);
                compaction.segments_removed += 1;
            }
        }
        for name in self.disk.list(&self.dir)? {
            if let Some(FileName::Snapshot(point)) = name.to_str().map(parse_file_name)
                && Some(point) != self.shape.snapshot
            {
                self.disk.remove(&snapshot_path(&self.dir, point))?;
                compaction.snapshots_removed += 1;
            }
        }
        if compaction.snapshots_removed > 0 {
            self.disk.sync_dir(&self.dir)?;
        }
        Ok(compaction)
    }

    /// Moves the encoded record in `scratch` into the active segment, first
    /// moving on to a new segment if it would overflow the active one.
    fn push_scratch(&mut self) -> Result<(), StorageError> {
        let frame_length = self.scratch.len() as u64;
        if self.active.is_full_for(frame_length) {
            self.roll()?;
        }
        self.active.push(&self.scratch)?;
        self.stats
            .counters
            .bytes
            .fetch_add(frame_length, Ordering::Relaxed);
        Ok(())
    }

    /// Seals the active segment (durably) and starts the next one.
    fn roll(&mut self) -> Result<(), StorageError> {
        self.active.roll()?;
        self.segments.push(self.active.number());
        Ok(())
    }

    fn flush_and_sync(&mut self, count_as_commit: bool) -> Result<(), StorageError> {
        if self.active.sync()? && count_as_commit {
            self.stats.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The length beyond which compaction seals the active segment: a quarter
/// of the segment size, at most 1 MiB. Recovery then reads about the bytes
/// written since the snapshot before last plus this much, not the whole
/// segment size.
fn roll_at_compaction(segment_size: u64) -> u64 {
    (segment_size / 4).min(ROLL_AT_COMPACTION_MAX)
}

/// The largest [`roll_at_compaction`] threshold.
const ROLL_AT_COMPACTION_MAX: u64 = 1 << 20;

/// Segment `number`'s temporary name while it is created.
fn segment_temporary(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:020}.log{TEMPORARY_SUFFIX}"))
}
