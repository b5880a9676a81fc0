//! [`MultiStorageWorker`]: group commit of every group's writes on one thread.

use std::thread::JoinHandle;

use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostWrite;
use tokio::sync::mpsc;

use super::super::error::StorageError;
use super::super::worker::{GroupCommit, StorageEvent, StorageObserver, join, spawn_group_commit};
use super::log::MultiStorage;
use super::options::MultiStorageStats;

/// One job for the worker, in the order queued.
#[derive(Debug)]
pub enum MultiJob {
    /// A host step's writes.
    Write(HostWrite),
    /// [`MultiStorage::create_group`].
    CreateGroup(GroupId),
    /// [`MultiStorage::remove_group`].
    RemoveGroup(GroupId),
    /// [`MultiStorage::retire_group`].
    RetireGroup(GroupId),
}

/// The worker has stopped; the job, given back, was not taken.
#[derive(Debug, thiserror::Error)]
#[error("the multi-group storage worker has stopped")]
pub struct MultiWorkerStopped(pub Box<MultiJob>);

/// Runs a [`MultiStorage`] on its own OS thread and commits in groups, as
/// [`StorageWorker`](super::super::StorageWorker) does for one group: it
/// takes the first queued job and every job already queued behind it,
/// appends them all, does **one** fsync for all of them (whatever the
/// number of groups they touch), and reports the last step's `seq` as
/// [`StorageEvent::Durable`], to be fed to the host as
/// `HostInput::Persisted(seq)`. Then it runs
/// [`MultiStorage::maybe_compact`].
#[derive(Debug)]
pub struct MultiStorageWorker {
    jobs: mpsc::Sender<MultiJob>,
    thread: JoinHandle<MultiStorage>,
    stats: MultiStorageStats,
}

impl MultiStorageWorker {
    /// Starts the worker for `storage` with room for `queue_capacity` (at
    /// least 1) queued jobs; returns it with its event receiver.
    pub fn spawn(
        storage: MultiStorage,
        queue_capacity: usize,
        observer: Option<Box<dyn StorageObserver>>,
    ) -> Result<(MultiStorageWorker, mpsc::UnboundedReceiver<StorageEvent>), StorageError> {
        let stats = storage.stats();
        let (jobs, thread, event_receiver) =
            spawn_group_commit(storage, "distribkv-multi-storage", queue_capacity, observer)?;
        Ok((
            MultiStorageWorker {
                jobs,
                thread,
                stats,
            },
            event_receiver,
        ))
    }

    /// Queues a job, waiting for room.
    pub async fn submit(&self, job: MultiJob) -> Result<(), MultiWorkerStopped> {
        self.jobs
            .send(job)
            .await
            .map_err(|rejected| MultiWorkerStopped(Box::new(rejected.0)))
    }

    /// Queues a host step's writes, waiting for room.
    pub async fn persist(&self, write: HostWrite) -> Result<(), MultiWorkerStopped> {
        self.submit(MultiJob::Write(write)).await
    }

    /// Queues a job from outside the async runtime, blocking while the
    /// queue is full. Panics if called from within an async task.
    pub fn blocking_submit(&self, job: MultiJob) -> Result<(), MultiWorkerStopped> {
        self.jobs
            .blocking_send(job)
            .map_err(|rejected| MultiWorkerStopped(Box::new(rejected.0)))
    }

    /// The storage's counters.
    pub fn stats(&self) -> MultiStorageStats {
        self.stats.clone()
    }

    /// Stops taking jobs, commits what is queued, and returns the storage.
    /// Blocks until the thread ends.
    pub fn shutdown(self) -> MultiStorage {
        drop(self.jobs);
        join(self.thread)
    }
}

impl GroupCommit for MultiStorage {
    type Job = MultiJob;

    fn apply(&mut self, job: &MultiJob) -> Result<(), StorageError> {
        match job {
            MultiJob::Write(write) => self.append(write),
            MultiJob::CreateGroup(group) => self.create_group(*group),
            MultiJob::RemoveGroup(group) => self.remove_group(*group),
            MultiJob::RetireGroup(group) => self.retire_group(*group),
        }
    }

    fn writes_snapshot(job: &MultiJob) -> bool {
        matches!(job, MultiJob::Write(step) if step.writes.iter().any(|(_, w)| w.snapshot.is_some()))
    }

    fn sync(&mut self) -> Result<Option<u64>, StorageError> {
        MultiStorage::sync(self)
    }

    fn compact(&mut self) -> Result<(), StorageError> {
        self.maybe_compact().map(drop)
    }

    fn commit_interval(&self) -> std::time::Duration {
        self.options.storage.commit_interval
    }
}
