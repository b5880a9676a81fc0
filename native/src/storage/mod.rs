//! Durable storage of a Raft node: a segmented write-ahead log written by
//! hand, snapshot files, recovery, and a group-commit worker thread.
//!
//! The node emits [`Write`](distribkv_core::raft::Write)s; a
//! [`StorageWorker`] applies them in order to a [`RaftStorage`], fsyncs once
//! per batch and reports the highest durable `seq`
//! ([`StorageEvent::Durable`]), which the driver feeds back as
//! `Input::Persisted(seq)`. At restart, [`RaftStorage::open`] returns the
//! [`PersistedState`](distribkv_core::raft::PersistedState) to start the
//! node from.
//!
//! ```no_run
//! # async fn example(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! use distribkv_native::storage::{Identity, RaftStorage, StorageEvent, StorageOptions, StorageWorker};
//!
//! let identity = Identity { node_id: 1, cluster_id: 0x5eed };
//! let (storage, recovered) = RaftStorage::open(dir, identity, StorageOptions::default())?;
//! // ... create the node from `recovered` ...
//! let (worker, mut events) = StorageWorker::spawn(storage, 4096)?;
//! # let write = distribkv_core::raft::Write::default();
//! worker.persist(write).await?; // for every Output::Persist(write), in order
//! while let Some(event) = events.recv().await {
//!     match event {
//!         StorageEvent::Durable { seq } => { /* node.handle(now, Input::Persisted(seq)) */ }
//!         StorageEvent::Failed { error } => return Err(error.into()), // stop the node
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Files in the data folder
//!
//! ```text
//! identity                                     node id + cluster id (40-byte header)
//! wal-00000000000000000007.log                 log segments, numbered from 1, in order
//! wal-00000000000000000008.log                   (the highest number is the active one)
//! snap-00000000000000001200-00000000000000000003.snap   snapshot at index 1200, term 3
//! *.tmp                                        an atomic write in progress; removed at recovery
//! ```
//!
//! Every file starts with the same 40-byte header: magic bytes (which kind
//! of file), format version, node id, cluster id, a number (segment number
//! or snapshot index) and a CRC32C of the header. A segment then holds
//! records, each framed as `crc32c u32 | length u32 | kind u8 | payload`
//! (postcard), the checksum covering length, kind and payload:
//!
//! - **write**: one `Write` — the snapshot's point (its data lives in the
//!   snapshot file) with the outcome of the keep-or-drop-the-log rule
//!   resolved at append time, the hard state, the entries. One write is one
//!   record, so a crash keeps a prefix of whole writes.
//! - **checkpoint**: the current snapshot point and hard state, written (and
//!   fsynced) before segments are deleted, so deleting them never loses
//!   either.
//! - **seal**: ends a full segment and names the next one. A segment grows
//!   until the next record would pass
//!   [`segment_size`](StorageOptions::segment_size), then is sealed and
//!   fsynced (always, even when the seal is the only record not yet
//!   fsynced), and only then is the next one created atomically (header written to a
//!   temporary file, fsync, rename, folder fsync).
//!
//! Snapshots are written atomically (temporary file, fsync, rename, folder
//! fsync) with a CRC32C of their content, before the write record that
//! refers to them. Once that record is durable, the storage deletes the
//! oldest segments that hold no entry after the snapshot (never the active
//! one) and every other snapshot file. Recovery reads every segment on
//! disk, so before deleting, compaction seals the active segment (the
//! ordinary roll above) once it holds more than a quarter of the segment
//! size, at most 1 MiB: the next compaction can then delete it, and start-up
//! reads about one snapshot interval of log rather than a segment that
//! grows towards the segment size.
//!
//! The in-memory index is small: the snapshot point, the hard state, the
//! last index, the log's terms as runs (one per term), and per segment the
//! highest index still live in it. Entries are read back only at recovery.
//!
//! # Recovery rules
//!
//! - A fresh or empty folder is initialised with an identity file. Every
//!   folder recovery creates (the data folder and any missing folder above
//!   it) is made durable in its parent before anything is written in it. A folder
//!   whose identity file (or any segment or snapshot header) names another
//!   node or cluster is refused with [`StorageError::IdentityMismatch`],
//!   naming the file and both identities; log files without an identity
//!   file are refused too, the multi-group log's ([`multi`]) as well, so
//!   that neither kind of storage starts an empty log over the other's.
//! - Segments are replayed in number order; a missing number between two
//!   present ones is an error, and so is a first segment past number 1 if no
//!   checkpoint replaces the deleted ones, or if one names an older segment
//!   as the first it kept (a compaction deletes only segments below it:
//!   the ones missing were lost, with entries no later segment holds;
//!   checkpoints of segments before version 3 name none), and snapshot files without any
//!   segment ([`StorageError::MissingLog`]: the active segment is never
//!   deleted, so the log was lost).
//! - **Torn tail**: when the last record of the *last* segment runs past
//!   the end of the file, or fails its checksum with one of its 512-byte
//!   sectors reading as zeros (to the end of that sector: a sector is
//!   written whole or not at all), and no valid record follows it anywhere, it
//!   is what a power cut in the middle of an append leaves: it is cut off
//!   (the file is truncated and fsynced) and a warning names the file and
//!   the offset. Those bytes were never acknowledged. A last record that is
//!   all there, no sector of it zero, yet fails its checksum was damaged
//!   after it was written (bit rot) and is refused like any other damage;
//!   only a flip in its length field that makes it seem to run past the end
//!   of the file passes for a torn write.
//! - **Everything else is corruption and is refused** with an error naming
//!   the file and byte offset, never skipped: a damaged record followed by a
//!   valid one, a damaged last record that is not torn, any damage in a segment that is not the last, a non-last
//!   segment without a seal record (it lost its end), a bad segment header,
//!   a record with a valid checksum but an unknown kind or content.
//! - The recovered entries must follow the snapshot without a gap
//!   ([`StorageError::LogGap`]). The snapshot the log refers to must exist
//!   and be intact ([`StorageError::CorruptSnapshot`] names the file and the
//!   offset of the damaged part: header, length or checksummed content); other
//!   snapshot files (superseded, or written for a write that never became
//!   durable) and temporary files are removed.
//!
//! # Failures
//!
//! Every failure is a typed [`StorageError`]. After a failed write or fsync
//! the storage is halted ([`StorageError::Halted`]): on Linux a failed fsync
//! may have dropped the dirty pages, so retrying could report durable what
//! is not. A `seq` is reported durable only after the fsync covering it
//! succeeded. [`FaultInjector`] lets tests fail fsyncs, fill the disk, or
//! hold fsyncs back.
//!
//! # The file system, and power cuts
//!
//! Every file and folder operation goes through the [`FileSystem`] in
//! [`StorageOptions::file_system`]: [`StdFileSystem`] by default.
//! `FaultFileSystem` (only with the test-only cargo feature
//! `fault-injection`, never in a release build) is a model of a disk that
//! loses power, for tests: it
//! keeps what was fsynced apart from what was only written, and a power cut
//! drops the rest, tears the last unsynced page of a file at a sector
//! boundary, or keeps unsynced writes and folder changes in part and out of
//! order. Forks taken before each operation let a test cut the power at
//! every point of a workload.
//!
//! What has to be durable, and in which order, so that every cut recovers
//! everything acknowledged:
//!
//! - a write is reported durable only after the fsync of the segment that
//!   holds it (and of every earlier segment) returned;
//! - a full segment's seal is fsynced before the next segment is created;
//! - a new segment or snapshot is complete and fsynced under a temporary
//!   name, renamed, and its folder fsynced, before anything refers to it;
//! - every folder recovery creates is fsynced into its parent;
//! - before segments are deleted, a checkpoint restating the snapshot and
//!   hard state is fsynced, and each deletion is made durable (folder
//!   fsync) before the next, oldest first, so that the segments left are
//!   always consecutive.

mod error;
mod fault;
#[cfg(feature = "fault-injection")]
mod fault_fs;
mod file;
mod format;
mod fs;
mod identity;
mod legacy;
mod listing;
pub mod multi;
mod raft_storage;
mod recovery;
mod segment;
mod shape;
mod snapshot_file;
mod worker;

pub use error::{Corruption, InvalidWrite, StorageError};
pub use fault::FaultInjector;
#[cfg(feature = "fault-injection")]
pub use fault_fs::{FaultFileSystem, FileSystemOperation, Fork, PowerCut};
pub(crate) use file::Disk;
pub use fs::{FileSystem, StdFileSystem, WritableFile};
pub use identity::Identity;
pub use raft_storage::{Compaction, RaftStorage, StorageOptions, StorageStats};
pub use worker::{StorageEvent, StorageObserver, StorageWorker, WorkerStopped};
