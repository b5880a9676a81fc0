//! What both step loops (the replica's and the sharded host's) do alike
//! around their core: the inputs they wait on, gathering what is already
//! waiting into one step, and what a storage event means.

use std::time::Duration;

use distribkv_core::raft::NodeId;
use tokio::sync::mpsc;

use super::MAX_INPUTS_PER_STEP;
use super::metrics::Metrics;
use super::waiting::storage_failure;
use crate::clock::sleep_until;
use crate::storage::{StorageError, StorageEvent};
use crate::transport::PeerTransport;

/// How often the transport's per-peer traffic is folded into the metrics.
const PEER_SAMPLE: Duration = Duration::from_secs(1);

/// One input from the world: `M` a peer's message, `Q` a client request.
pub(crate) enum Event<M, Q> {
    Storage(Option<StorageEvent>),
    Peer((NodeId, M)),
    Client(Q),
    Timeout,
}

/// Why a step loop stops on storage: the worker failed, or stopped
/// without saying why.
pub(crate) enum StorageHalt {
    Failed(StorageError),
    Stopped,
}

/// The sequence number a storage event makes durable, or why the loop
/// must stop.
pub(crate) fn durable(event: Option<StorageEvent>) -> Result<u64, StorageHalt> {
    match event {
        Some(StorageEvent::Durable { seq }) => Ok(seq),
        Some(StorageEvent::Failed { error }) => Err(StorageHalt::Failed(error)),
        None => Err(StorageHalt::Stopped),
    }
}

/// Why the storage worker refused a write (see [`storage_failure`]).
pub(crate) async fn refused_write(
    events: &mut mpsc::UnboundedReceiver<StorageEvent>,
) -> StorageHalt {
    match storage_failure(events).await {
        Some(error) => StorageHalt::Failed(error),
        None => StorageHalt::Stopped,
    }
}

/// The channels a step loop reads.
pub(crate) struct Inputs<M, Q> {
    pub(crate) storage: mpsc::UnboundedReceiver<StorageEvent>,
    pub(crate) peers: mpsc::Receiver<(NodeId, M)>,
    pub(crate) clients: mpsc::Receiver<Q>,
}

impl<M, Q> Inputs<M, Q> {
    /// The next input: a storage event, then a peer's message, then a
    /// client request, whichever is ready first in that order, or
    /// [`Event::Timeout`] at `deadline` (`None`: never).
    pub(crate) async fn next(&mut self, deadline: Option<tokio::time::Instant>) -> Event<M, Q> {
        tokio::select! {
            biased;
            event = self.storage.recv() => Event::Storage(event),
            Some(message) = self.peers.recv() => Event::Peer(message),
            Some(request) = self.clients.recv() => Event::Client(request),
            () = sleep_until(deadline) => Event::Timeout,
        }
    }

    /// Hands `handle` everything already waiting (storage first, then
    /// peers, then clients), up to [`MAX_INPUTS_PER_STEP`] inputs, so that
    /// it joins the current step.
    pub(crate) fn drain_ready<E>(
        &mut self,
        mut handle: impl FnMut(Event<M, Q>) -> Result<(), E>,
    ) -> Result<(), E> {
        for _ in 0..MAX_INPUTS_PER_STEP {
            let event = if let Ok(event) = self.storage.try_recv() {
                Event::Storage(Some(event))
            } else if let Ok(message) = self.peers.try_recv() {
                Event::Peer(message)
            } else if let Ok(request) = self.clients.try_recv() {
                Event::Client(request)
            } else {
                break;
            };
            handle(event)?;
        }
        Ok(())
    }
}

/// Folds the transport's per-peer traffic into `metrics` if it was last
/// sampled (at `sampled`) [`PEER_SAMPLE`] ago or more.
pub(crate) fn sample_peers<M>(
    metrics: &Metrics,
    transport: &PeerTransport<M>,
    sampled: &mut tokio::time::Instant,
) {
    if sampled.elapsed() >= PEER_SAMPLE {
        *sampled = tokio::time::Instant::now();
        metrics.observe_peers(&transport.peer_traffic());
    }
}
