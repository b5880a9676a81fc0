//! One write-ahead log for every Raft group of a host (the model of TiKV's
//! raft-engine): a server holding replicas of many groups appends all
//! their writes to one segmented log and makes them durable with one fsync,
//! instead of one log (and one fsync) per group.
//!
//! The sharded core's [`Host`](distribkv_core::shard::host::Host) emits one
//! [`HostWrite`](distribkv_core::shard::host::HostWrite) per step, holding
//! the [`Write`](distribkv_core::raft::Write)s of every group that step
//! touched; [`MultiStorage::append`] stores it as **one record** (so a
//! power cut keeps a prefix of whole steps), [`MultiStorage::sync`] makes
//! every appended step durable with **one fsync**, and the host is told
//! with `HostInput::Persisted(seq)`. [`MultiStorageWorker`] does this on
//! its own thread, batching the steps queued meanwhile into the same fsync.
//!
//! ```no_run
//! # fn example(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! use distribkv_native::storage::Identity;
//! use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};
//!
//! let identity = Identity { node_id: 1, cluster_id: 0x5eed };
//! let (mut storage, groups) = MultiStorage::open(dir, identity, MultiStorageOptions::default())?;
//! // ... Host::restart(config, seed, now, groups) ...
//! # let step = distribkv_core::shard::host::HostWrite { seq: 1, writes: Vec::new() };
//! storage.append(&step)?;          // for every HostOutput::Persist(step), in order
//! let durable = storage.sync()?;   // one fsync: feed HostInput::Persisted(seq)
//! storage.maybe_compact()?;        // snapshot files and old segments
//! # let _ = (groups, durable); Ok(()) }
//! ```
//!
//! # Files in the data folder
//!
//! ```text
//! identity                           node id + cluster id (magic "dkvmnode": a
//!                                    single-group storage refuses this folder)
//! mwal-00000000000000000007.log      log segments, numbered from 1 (magic "dkvmwal\n")
//! gsnap-<group>-<index>-<term>.snap  a group's snapshot (same format as the single-group one)
//! *.tmp                              an atomic write in progress; removed at recovery
//! ```
//!
//! Frames, headers, seals, snapshot files and their rules (atomic creation,
//! the seal fsynced before the next segment exists) are those of the
//! single-group log ([`super`]); the segments' format version is 3 (2 is
//! still read; 3 marks that they may hold retire records, so that a build
//! that does not know them refuses the folder as written by a newer
//! version). The records:
//!
//! - **group batch**: one step, as a list of `(group, item)`: a group's
//!   write (snapshot marker with the keep-or-drop-the-log rule resolved,
//!   hard state (term and vote), entries, membership changes being
//!   entries), or the creation or removal of a group. Compaction points
//!   are the snapshot markers: a snapshot drops the group's entries it covers.
//! - **group checkpoint**: every group's state (snapshot point, hard
//!   state) and the live entries of the segments about to be deleted,
//!   written and fsynced before they are deleted; it names the first
//!   segment kept.
//! - **seal**: closes a full segment.
//!
//! # The index
//!
//! Each group has an in-memory index (raft-engine's memtable): its
//! snapshot point, hard state, and for each live entry its term, size and
//! the record holding its latest copy (segment, offset, length).
//! [`MultiStorage::entries`] reads a range with one positioned read per
//! record; a write's contract is checked against the index. Recovery
//! returns every group's whole [`PersistedState`](distribkv_core::raft::PersistedState)
//! (the core keeps its log in memory).
//!
//! # Groups come and go
//!
//! A group is created by its first write (or [`MultiStorage::create_group`])
//! and removed by [`MultiStorage::remove_group`] when its replica leaves the
//! host: a removal record drops its state; its snapshot files go once the
//! removal is durable and its entries stop holding segments back.
//!
//! # Purge: deleting old segments while groups go at their own pace
//!
//! A segment can be deleted only when no group still needs an entry in it.
//! Groups snapshot at their own pace, so one quiet group would keep every
//! segment written since its last snapshot. As raft-engine does, a purge
//! (once the segments hold [`MultiStorageOptions::purge_after`] bytes,
//! 16 MiB by default) first seals the active segment if it holds a quarter
//! of that or more, copies the live entries the sealed segments still hold
//! into a checkpoint record in the new active segment, fsyncs it, then
//! deletes them oldest first (each deletion durable before the next). A
//! purge that deletes nothing is tried again once the log has grown by a
//! quarter of `purge_after`. A group whose
//! live entries there exceed [`MultiStorageOptions::rewrite_limit`] bytes
//! (64 KiB by default; or the biggest ones when all of them exceed
//! [`MultiStorageOptions::rewrite_total_limit`]) is not copied and pins
//! its oldest segment and every later one ([`Purge::pinned_by`], also kept
//! in [`MultiStorageStats::pinned_by`]) until its next snapshot: the disk
//! used is then bounded by the log written since the oldest snapshot among
//! such groups. Copying is for short tails, those of quiet groups: as
//! raft-engine rewrites only regions with few entries and asks its users to
//! compact the others, a busy group's tail is left to its own next
//! snapshot (the core snapshots a group every `snapshot_every` applied
//! entries), since copying it would write most of its entries twice (with
//! 16 MiB and 8 MiB, a host of 12 busy groups copied 63 % of the entries it
//! wrote into checkpoints). Once the segments hold
//! [`FORCE_SNAPSHOT_FACTOR`] times `purge_after` and a group still pins
//! them, [`MultiStorageStats::snapshot_wanted`] names it, and the sharded
//! server's driver has the host snapshot it (`Host::snapshot_group`), so
//! that a group that went quiet with a long tail does not pin for good and
//! many busy groups do not keep the log growing. A purge also waits
//! ([`Purge::deferred`]) while the entries to copy are more than half of
//! what it would free, so that purges never chase their own checkpoints.
//!
//! # Recovery rules
//!
//! As for the single-group log: a torn tail of the last segment (cut
//! short, or with sectors reading as zeros, and nothing valid after it) is
//! cut off with a warning naming the file and offset; every other damage
//! is refused with [`StorageError`](super::StorageError) naming the file
//! and byte offset; missing segments between two present ones, a first
//! segment past 1 that no checkpoint covers, a group whose entries do not
//! follow its snapshot ([`StorageError::GroupLogGap`](super::StorageError::GroupLogGap)),
//! and a missing or damaged snapshot are refused too.

mod format;
mod index;
mod log;
mod options;
mod purge;
mod read;
mod recovery;
mod worker;

pub(crate) use format::is_log_file as is_multi_group_log_file;
pub use log::MultiStorage;
pub use options::{FORCE_SNAPSHOT_FACTOR, MultiStorageOptions, MultiStorageStats, Purge};
pub use worker::{MultiJob, MultiStorageWorker, MultiWorkerStopped};
