//! [`StorageWorker`]: group commit on a dedicated OS thread.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use distribkv_core::raft::Write;
use tokio::sync::mpsc;

use super::error::StorageError;
use super::raft_storage::{RaftStorage, StorageStats};

/// What the worker reports on its event channel.
#[derive(Debug)]
pub enum StorageEvent {
    /// Every write up to and including `seq` is durable: feed
    /// `Input::Persisted(seq)` to the node. Reported once per batch, `seq`
    /// increasing.
    Durable {
        /// The last durable write's `seq`.
        seq: u64,
    },
    /// Storage failed. Nothing after the last [`Durable`](Self::Durable) is
    /// acknowledged, the worker has stopped, and the node should stop too.
    Failed {
        /// Why.
        error: StorageError,
    },
}

/// The worker has stopped (after a failure or [`shutdown`](StorageWorker::shutdown));
/// the write, given back, was not taken.
#[derive(Debug, thiserror::Error)]
#[error("the storage worker has stopped")]
pub struct WorkerStopped(pub Box<Write>);

/// Runs a [`RaftStorage`] on its own OS thread, so that fsync never blocks
/// the async runtime, and commits writes in groups.
///
/// # Channel protocol
///
/// - In: [`persist`](Self::persist) queues one [`Write`] on a bounded channel
///   (waiting for room when `queue_capacity` writes are already queued).
///   Writes must be queued in `seq` order, from one task (the node's driver).
/// - Out: the receiver returned by [`spawn`](Self::spawn) yields
///   [`StorageEvent::Durable { seq }`](StorageEvent::Durable) after each
///   group commit and at most one [`StorageEvent::Failed`], after which it
///   closes. It also closes after [`shutdown`](Self::shutdown).
///
/// # Batching
///
/// The worker takes the first queued write, then every write already queued
/// behind it (up to `queue_capacity`), appends them all, does **one** fsync,
/// and reports the last one's `seq`. While that fsync runs, new writes queue
/// up and form the next batch. So a lone writer that waits for each
/// acknowledgement gets one fsync per write, while with `n` writes always in
/// flight (a leader with many concurrent client proposals) each fsync covers
/// about `n` writes: throughput grows with concurrency until the disk's
/// bandwidth, not its fsync latency, is the limit. By default no write ever
/// waits for a timer: an idle worker commits a single write at once.
///
/// With [`StorageOptions::commit_interval`](super::StorageOptions::commit_interval)
/// `t`, group commits start at least `t` apart: a batch whose first write
/// arrives sooner after the last commit began waits out the rest of `t`
/// (writes queue behind it and join it). Under a steady load below the
/// disk's limit each fsync then covers more writes, for at most `t` more
/// latency; a write that comes after a quiet spell of `t` or more is
/// committed at once.
///
/// After a snapshot's write is durable, the worker also deletes the files the
/// snapshot supersedes ([`RaftStorage::maybe_compact`]), after reporting.
#[derive(Debug)]
pub struct StorageWorker {
    writes: mpsc::Sender<Write>,
    thread: JoinHandle<RaftStorage>,
    stats: StorageStats,
}

impl StorageWorker {
    /// Starts the worker thread for `storage`, with room for
    /// `queue_capacity` (at least 1) queued writes; returns the worker and
    /// its event receiver.
    pub fn spawn(
        storage: RaftStorage,
        queue_capacity: usize,
    ) -> Result<(StorageWorker, mpsc::UnboundedReceiver<StorageEvent>), StorageError> {
        Self::spawn_observed(storage, queue_capacity, None)
    }

    /// [`StorageWorker::spawn`], telling `observer` how long each group
    /// commit's fsync and each snapshot's write took.
    pub fn spawn_observed(
        storage: RaftStorage,
        queue_capacity: usize,
        observer: Option<Box<dyn StorageObserver>>,
    ) -> Result<(StorageWorker, mpsc::UnboundedReceiver<StorageEvent>), StorageError> {
        let stats = storage.stats();
        let (writes, thread, event_receiver) =
            spawn_group_commit(storage, "distribkv-storage", queue_capacity, observer)?;
        Ok((
            StorageWorker {
                writes,
                thread,
                stats,
            },
            event_receiver,
        ))
    }

    /// Queues `write`, waiting for room in the queue.
    pub async fn persist(&self, write: Write) -> Result<(), WorkerStopped> {
        self.writes
            .send(write)
            .await
            .map_err(|rejected| WorkerStopped(Box::new(rejected.0)))
    }

    /// Queues `write` from a thread outside the async runtime, blocking while
    /// the queue is full. Panics if called from within an async task.
    pub fn blocking_persist(&self, write: Write) -> Result<(), WorkerStopped> {
        self.writes
            .blocking_send(write)
            .map_err(|rejected| WorkerStopped(Box::new(rejected.0)))
    }

    /// The storage's counters.
    pub fn stats(&self) -> StorageStats {
        self.stats.clone()
    }

    /// Stops taking writes, lets the worker commit everything already queued,
    /// and returns the storage. Blocks until the thread ends, so call it from
    /// a blocking context.
    pub fn shutdown(self) -> RaftStorage {
        drop(self.writes);
        join(self.thread)
    }
}

/// Told how long the worker's operations took (for metrics), on the
/// worker's thread: keep it quick.
pub trait StorageObserver: Send + 'static {
    /// One group commit's fsync took `took`.
    fn fsync(&self, took: std::time::Duration);
    /// Writing one snapshot took `took`.
    fn snapshot_saved(&self, took: std::time::Duration);
}

/// A log that a worker thread drives ([`StorageWorker`] for one group,
/// [`MultiStorageWorker`](super::multi::MultiStorageWorker) for many):
/// jobs applied in order, one sync per batch, then compaction.
pub(crate) trait GroupCommit: Send + 'static {
    /// What the driver queues.
    type Job: Send + 'static;
    /// Applies one job, without fsync.
    fn apply(&mut self, job: &Self::Job) -> Result<(), StorageError>;
    /// Whether the job writes a snapshot file (its time is observed).
    fn writes_snapshot(job: &Self::Job) -> bool;
    /// Makes every applied job durable; the last durable `seq`.
    fn sync(&mut self) -> Result<Option<u64>, StorageError>;
    /// Deletes what is superseded, once durable (may fsync).
    fn compact(&mut self) -> Result<(), StorageError>;
    /// The least time between the starts of two group commits.
    fn commit_interval(&self) -> Duration;
}

impl GroupCommit for RaftStorage {
    type Job = Write;

    fn apply(&mut self, write: &Write) -> Result<(), StorageError> {
        self.append(write)
    }

    fn writes_snapshot(write: &Write) -> bool {
        write.snapshot.is_some()
    }

    fn sync(&mut self) -> Result<Option<u64>, StorageError> {
        RaftStorage::sync(self)
    }

    fn compact(&mut self) -> Result<(), StorageError> {
        self.maybe_compact().map(drop)
    }

    fn commit_interval(&self) -> Duration {
        RaftStorage::commit_interval(self)
    }
}

/// The queue of jobs, the worker thread, and its events.
pub(crate) type Spawned<S> = (
    mpsc::Sender<<S as GroupCommit>::Job>,
    JoinHandle<S>,
    mpsc::UnboundedReceiver<StorageEvent>,
);

/// Starts the worker thread `name` for `storage`, with room for
/// `queue_capacity` (at least 1) queued jobs.
pub(crate) fn spawn_group_commit<S: GroupCommit>(
    storage: S,
    name: &str,
    queue_capacity: usize,
    observer: Option<Box<dyn StorageObserver>>,
) -> Result<Spawned<S>, StorageError> {
    let queue_capacity = queue_capacity.max(1);
    let (jobs, queued) = mpsc::channel(queue_capacity);
    let (events, event_receiver) = mpsc::unbounded_channel();
    let thread = thread::Builder::new()
        .name(name.into())
        .spawn(move || run(storage, queued, events, queue_capacity, observer))
        .map_err(StorageError::SpawnWorker)?;
    Ok((jobs, thread, event_receiver))
}

/// Waits for the worker thread (after its queue was closed) and returns
/// its storage; a panic on the thread is resumed here.
pub(crate) fn join<S>(thread: JoinHandle<S>) -> S {
    match thread.join() {
        Ok(storage) => storage,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The group-commit loop: the first queued job and every job already queued
/// behind it (up to `max_batch`), one sync, the event, then compaction; a
/// batch starts no sooner than the storage's commit interval after the last.
fn run<S: GroupCommit>(
    mut storage: S,
    mut queued: mpsc::Receiver<S::Job>,
    events: mpsc::UnboundedSender<StorageEvent>,
    max_batch: usize,
    observer: Option<Box<dyn StorageObserver>>,
) -> S {
    let apply = |storage: &mut S, job: &S::Job| {
        let Some(observer) = observer.as_ref().filter(|_| S::writes_snapshot(job)) else {
            return storage.apply(job);
        };
        let started = std::time::Instant::now();
        let outcome = storage.apply(job);
        observer.snapshot_saved(started.elapsed());
        outcome
    };
    let interval = storage.commit_interval();
    let mut last_start: Option<Instant> = None;
    while let Some(first) = queued.blocking_recv() {
        if let Some(wait) = last_start.and_then(|at| interval.checked_sub(at.elapsed()))
            && !wait.is_zero()
        {
            // Writes queued meanwhile join this batch.
            thread::sleep(wait);
        }
        if !interval.is_zero() {
            last_start = Some(Instant::now());
        }
        let mut batch = 1;
        let mut outcome = apply(&mut storage, &first);
        while outcome.is_ok() && batch < max_batch {
            let Ok(job) = queued.try_recv() else {
                break;
            };
            outcome = apply(&mut storage, &job);
            batch += 1;
        }
        let synced = outcome.and_then(|()| {
            let started = std::time::Instant::now();
            let synced = storage.sync();
            if let Some(observer) = &observer {
                observer.fsync(started.elapsed());
            }
            synced
        });
        let outcome = synced.and_then(|durable| {
            if let Some(seq) = durable {
                tracing::trace!(seq, batch, "group commit");
                // The receiver may be gone during shutdown; nothing to tell then.
                let _ = events.send(StorageEvent::Durable { seq });
            }
            storage.compact()
        });
        if let Err(error) = outcome {
            // Refuse new jobs before reporting, so that a driver that saw
            // the failure can never get a job accepted afterwards.
            queued.close();
            let _ = events.send(StorageEvent::Failed { error });
            break;
        }
    }
    // Same order at the end: the queue closes before the event channel does.
    drop(queued);
    drop(events);
    storage
}
