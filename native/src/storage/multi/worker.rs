//! [`MultiStorageWorker`]: group commit of every group's writes on one thread.

use std::thread::{self, JoinHandle};

use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostWrite;
use tokio::sync::mpsc;

use super::super::error::StorageError;
use super::super::worker::{StorageEvent, StorageObserver};
use super::log::{MultiStorage, MultiStorageStats};

/// One job for the worker, in the order queued.
#[derive(Debug)]
pub enum MultiJob {
    /// A host step's writes.
    Write(HostWrite),
    /// [`MultiStorage::create_group`].
    CreateGroup(GroupId),
    /// [`MultiStorage::remove_group`].
    RemoveGroup(GroupId),
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
        let queue_capacity = queue_capacity.max(1);
        let (jobs, queued) = mpsc::channel(queue_capacity);
        let (events, event_receiver) = mpsc::unbounded_channel();
        let stats = storage.stats();
        let thread = thread::Builder::new()
            .name("distribkv-multi-storage".into())
            .spawn(move || run(storage, queued, events, queue_capacity, observer))
            .map_err(StorageError::SpawnWorker)?;
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
        match self.thread.join() {
            Ok(storage) => storage,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

fn run(
    mut storage: MultiStorage,
    mut queued: mpsc::Receiver<MultiJob>,
    events: mpsc::UnboundedSender<StorageEvent>,
    max_batch: usize,
    observer: Option<Box<dyn StorageObserver>>,
) -> MultiStorage {
    let apply = |storage: &mut MultiStorage, job: &MultiJob| match job {
        MultiJob::Write(write) => storage.append(write),
        MultiJob::CreateGroup(group) => storage.create_group(*group),
        MultiJob::RemoveGroup(group) => storage.remove_group(*group),
    };
    while let Some(first) = queued.blocking_recv() {
        let mut batch = 1;
        let mut outcome = apply(&mut storage, &first);
        while outcome.is_ok() && batch < max_batch {
            let Ok(job) = queued.try_recv() else {
                break;
            };
            outcome = apply(&mut storage, &job);
            batch += 1;
        }
        let outcome = outcome
            .and_then(|()| {
                let started = std::time::Instant::now();
                let synced = storage.sync();
                if let Some(observer) = &observer {
                    observer.fsync(started.elapsed());
                }
                synced
            })
            .and_then(|durable| {
                if let Some(seq) = durable {
                    tracing::trace!(seq, batch, "multi-group commit");
                    let _ = events.send(StorageEvent::Durable { seq });
                }
                storage.maybe_compact()
            });
        if let Err(error) = outcome {
            queued.close();
            let _ = events.send(StorageEvent::Failed { error });
            break;
        }
    }
    drop(queued);
    drop(events);
    storage
}
