//! Durable storage of a host's groups, behind [`HostStore`], and the
//! worker thread that commits [`HostWrite`]s in groups.
//!
//! The host emits one [`HostWrite`] per step holding every group's
//! [`Write`](distribkv_core::raft::Write); the worker appends them all,
//! makes them durable and reports the last host `seq`, which the driver
//! feeds back as `HostInput::Persisted(seq)`.
//!
//! # The interim layout: one write-ahead log per group
//!
//! [`GroupDirs`] keeps one [`RaftStorage`] (the single-group log, segments
//! and snapshots) per group, in a subfolder of the data folder:
//!
//! ```text
//! DATA_DIR/sharded                 marks the folder as a sharded host's (its content: the host id)
//! DATA_DIR/groups/controller/      the controller group's log and snapshots
//! DATA_DIR/groups/group-7/         shard group 7's log and snapshots
//! ```
//!
//! It costs one fsync per group touched by a batch (run side by side),
//! where a multi-group
//! write-ahead log (one log holding every group's records, tagged by group)
//! costs one for all of them. That log replaces [`GroupDirs`] behind the
//! same trait; nothing else in the driver changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};

use distribkv_core::raft::PersistedState;
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::{CONTROLLER, HostWrite};
use tokio::sync::mpsc;

use crate::storage::{
    Identity, RaftStorage, StorageError, StorageEvent, StorageObserver, StorageOptions,
};

/// The durable storage of every group a host holds.
///
/// Contract: [`append`](HostStore::append) is called with host writes in
/// `seq` order; after [`sync`](HostStore::sync) returns `Ok`, every write
/// appended before it survives a crash. A failure is final: the host stops.
pub trait HostStore: Send + 'static {
    /// Queues one host write (every group's part of it).
    fn append(&mut self, write: &HostWrite) -> Result<(), StorageError>;
    /// Makes everything appended durable.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// Deletes what durable snapshots supersede (after a sync; may fsync).
    fn compact(&mut self) -> Result<(), StorageError>;
}

/// The interim [`HostStore`]: one [`RaftStorage`] per group, in
/// `groups/<name>` subfolders of the data folder (see the module docs).
pub struct GroupDirs {
    groups: BTreeMap<GroupId, RaftStorage>,
    /// Groups appended to since the last sync.
    dirty: Vec<GroupId>,
    /// Groups whose last write carried a snapshot (compaction due).
    snapshotted: Vec<GroupId>,
}

impl std::fmt::Debug for GroupDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupDirs")
            .field("groups", &self.groups.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The folder of `group` in the data folder `data_dir`.
pub fn group_dir(data_dir: &Path, group: GroupId) -> PathBuf {
    let name = if group == CONTROLLER {
        "controller".to_string()
    } else {
        format!("group-{group}")
    };
    data_dir.join("groups").join(name)
}

/// The file marking a data folder as a sharded host's.
pub const SHARDED_MARKER: &str = "sharded";

impl GroupDirs {
    /// Opens (or creates) the storage of every group in `groups` and
    /// recovers what each holds.
    pub fn open(
        data_dir: &Path,
        identity: Identity,
        options: &StorageOptions,
        groups: impl IntoIterator<Item = GroupId>,
    ) -> Result<(GroupDirs, BTreeMap<GroupId, PersistedState>), StorageError> {
        let mut opened = BTreeMap::new();
        let mut persisted = BTreeMap::new();
        for group in groups {
            let dir = group_dir(data_dir, group);
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
            let (storage, state) = RaftStorage::open(&dir, identity, options.clone())?;
            opened.insert(group, storage);
            persisted.insert(group, state);
        }
        Ok((
            GroupDirs {
                groups: opened,
                dirty: Vec::new(),
                snapshotted: Vec::new(),
            },
            persisted,
        ))
    }
}

impl HostStore for GroupDirs {
    fn append(&mut self, write: &HostWrite) -> Result<(), StorageError> {
        for (group, group_write) in &write.writes {
            // Invariant: a host only writes for the groups it was built
            // with, which are the groups opened here.
            let storage = self
                .groups
                .get_mut(group)
                .expect("a host writes only for the groups it holds");
            storage.append(group_write)?;
            if !self.dirty.contains(group) {
                self.dirty.push(*group);
            }
            if group_write.snapshot.is_some() && !self.snapshotted.contains(group) {
                self.snapshotted.push(*group);
            }
        }
        Ok(())
    }

    /// One fsync per group appended to, run side by side (one thread each
    /// when there are several), so a step touching many groups waits about
    /// as long as for one.
    fn sync(&mut self) -> Result<(), StorageError> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut storages: Vec<&mut RaftStorage> = self
            .groups
            .iter_mut()
            .filter(|(group, _)| dirty.contains(group))
            .map(|(_, storage)| storage)
            .collect();
        if storages.len() <= 1 {
            for storage in storages {
                storage.sync()?;
            }
            return Ok(());
        }
        thread::scope(|scope| {
            let syncs: Vec<_> = storages
                .iter_mut()
                .map(|storage| scope.spawn(move || storage.sync()))
                .collect();
            let mut outcome = Ok(());
            for sync in syncs {
                // A panicking sync thread is a broken invariant of the storage.
                let result = sync.join().expect("a storage sync thread panicked");
                if let (Ok(()), Err(error)) = (&outcome, result) {
                    outcome = Err(error);
                }
            }
            outcome
        })
    }

    fn compact(&mut self) -> Result<(), StorageError> {
        for group in self.snapshotted.drain(..) {
            if let Some(storage) = self.groups.get_mut(&group) {
                storage.maybe_compact()?;
            }
        }
        Ok(())
    }
}

/// Runs a [`HostStore`] on its own OS thread and commits the host writes
/// queued during one sync with the next one (group commit across steps,
/// on top of the host's across groups). Events as for
/// [`StorageWorker`](crate::storage::StorageWorker).
#[derive(Debug)]
pub struct HostStoreWorker {
    writes: mpsc::Sender<HostWrite>,
    thread: JoinHandle<()>,
}

impl HostStoreWorker {
    /// Starts the worker thread with room for `capacity` queued writes.
    pub fn spawn(
        mut store: impl HostStore,
        capacity: usize,
        observer: Option<Box<dyn StorageObserver>>,
    ) -> std::io::Result<(HostStoreWorker, mpsc::UnboundedReceiver<StorageEvent>)> {
        let (writes, mut queue) = mpsc::channel::<HostWrite>(capacity.max(1));
        let (events, receiver) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("distribkv-host-storage".into())
            .spawn(move || {
                while let Some(first) = queue.blocking_recv() {
                    let mut last = first.seq;
                    let mut outcome = store.append(&first);
                    while outcome.is_ok() {
                        match queue.try_recv() {
                            Ok(next) => {
                                last = next.seq;
                                outcome = store.append(&next);
                            }
                            Err(_) => break,
                        }
                    }
                    let started = std::time::Instant::now();
                    let outcome = outcome.and_then(|()| store.sync());
                    if let Some(observer) = &observer {
                        observer.fsync(started.elapsed());
                    }
                    let outcome = outcome.and_then(|()| {
                        let _ = events.send(StorageEvent::Durable { seq: last });
                        store.compact()
                    });
                    if let Err(error) = outcome {
                        let _ = events.send(StorageEvent::Failed { error });
                        return;
                    }
                }
            })?;
        Ok((HostStoreWorker { writes, thread }, receiver))
    }

    /// Queues one write (waits while the queue is full); `Err` once the
    /// worker has stopped (after a failure it reported).
    pub async fn persist(&self, write: HostWrite) -> Result<(), HostWrite> {
        self.writes.send(write).await.map_err(|error| error.0)
    }

    /// Lets the worker commit what is queued, then stops it.
    pub fn shutdown(self) {
        drop(self.writes);
        let _ = self.thread.join();
    }
}
