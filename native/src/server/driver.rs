//! The step loop: one task owns the replica and translates between it and
//! the world (see the [module documentation](super)).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use distribkv_core::kv::{
    ClientRequest as KvRequest, ClientResponse as KvResponse, Replica, ReplicaInput, ReplicaOutput,
    ServiceError,
};
use distribkv_core::raft::{Envelope, LogIndex, Message, NodeId};
use tokio::sync::mpsc;

use super::ServerError;
use super::metrics::Metrics;
use super::step::{self, Inputs, StorageHalt};
use super::waiting::{WaitingReplies, expiry_timer};
use crate::clock::Clock;
use crate::storage::{StorageEvent, StorageWorker};
use crate::transport::{ClientRequest as Incoming, PeerAddress, PeerTransport};

/// The next SIGHUP, or never without a handler.
async fn next_hangup(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// What a request asks, for the metrics, and whether it writes.
fn request_kind(request: &KvRequest) -> (&'static str, bool) {
    use distribkv_core::kv::RequestBody;
    match &request.body {
        RequestBody::Open { operation, .. } | RequestBody::Operation { operation, .. } => {
            (operation.name(), operation.is_write())
        }
        RequestBody::Status => ("status", false),
        RequestBody::Members { .. } => ("member_list", false),
        RequestBody::ChangeMembers(_) => ("member_change", false),
        RequestBody::Backup { .. } => ("snapshot", false),
        RequestBody::FollowerRead { .. } => ("get", false),
    }
}

/// The step loop's state.
pub(super) struct Driver {
    id: NodeId,
    clock: Clock,
    replica: Replica,
    transport: PeerTransport<Message>,
    worker: StorageWorker,
    replies: WaitingReplies<KvResponse>,
    /// The peers the transport dials, with the address they were added at.
    peers: BTreeMap<NodeId, String>,
    /// The certificate folder, read again on SIGHUP.
    certs_dir: std::path::PathBuf,
    /// The metrics, when `--metrics-addr` serves them.
    metrics: Option<Arc<Metrics>>,
    /// When the per-peer traffic was last sampled.
    peers_sampled: tokio::time::Instant,
    /// What [`Driver::sync_peers`] last looked at: the latest membership
    /// entry, the snapshot, and whether that entry was committed.
    peers_seen: Option<(Option<LogIndex>, LogIndex, bool)>,
    /// Peers no longer in the configuration, dropped from the transport
    /// after [`PEER_GRACE`], and not before the core stops replicating to
    /// them (a leader tells a removed node that its removal is committed).
    retiring: BTreeMap<NodeId, tokio::time::Instant>,
    /// The term and leader last logged (a restart's recovery is read from
    /// these lines: elected, then the first commit).
    leader_seen: (u64, Option<NodeId>),
    /// The commit index recovered at start, until the first commit after
    /// it has been logged (`None` from then on).
    commit_at_start: Option<LogIndex>,
}

/// How long a peer that left the configuration stays reachable.
const PEER_GRACE: Duration = Duration::from_secs(3);

/// One input from the world.
type Event = step::Event<Message, Incoming<KvRequest, KvResponse>>;

impl From<StorageHalt> for ServerError {
    fn from(halt: StorageHalt) -> ServerError {
        match halt {
            StorageHalt::Failed(error) => ServerError::StorageFailed(error),
            StorageHalt::Stopped => ServerError::StorageStopped,
        }
    }
}

impl Driver {
    /// A driver of `replica` between `transport` and the storage `worker`.
    pub(super) fn new(
        id: NodeId,
        clock: Clock,
        replica: Replica,
        transport: PeerTransport<Message>,
        worker: StorageWorker,
        metrics: Option<Arc<Metrics>>,
        certs_dir: std::path::PathBuf,
    ) -> Driver {
        let commit_at_start = Some(replica.node().log().commit());
        Driver {
            leader_seen: (0, None),
            commit_at_start,
            id,
            clock,
            replica,
            transport,
            worker,
            replies: WaitingReplies::new(),
            peers: BTreeMap::new(),
            peers_seen: None,
            retiring: BTreeMap::new(),
            metrics,
            peers_sampled: tokio::time::Instant::now(),
            certs_dir,
        }
    }

    /// SIGHUP: the node certificate and key are read again; new
    /// connections use them. A folder that does not load, holds another
    /// CA, or a node certificate its CA did not issue, is refused and the
    /// node keeps its certificates.
    fn reload_certificates(&self) {
        let loaded = crate::tls::CertSet::load(&self.certs_dir)
            .map_err(crate::transport::TransportError::from)
            .and_then(|certs| self.transport.reload_certificates(&certs));
        match loaded {
            Ok(()) => tracing::info!(
                node = self.id,
                dir = %self.certs_dir.display(),
                "SIGHUP: reloaded the certificates; new connections use them"
            ),
            Err(error) => tracing::error!(
                node = self.id,
                dir = %self.certs_dir.display(),
                "SIGHUP: kept the current certificates: {error}"
            ),
        }
    }

    /// Updates the metrics after a step.
    fn observe(&mut self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        metrics.observe_step(&self.replica);
        step::sample_peers(metrics, &self.transport, &mut self.peers_sampled);
    }

    /// Logs a new term or leader, and the first entry committed after the
    /// start: the milestones of a restart, read with the storage's
    /// "recovered" and the transport's "connected to peer" lines.
    fn log_progress(&mut self) {
        let node = self.replica.node();
        let seen = (node.term(), node.leader());
        if seen != self.leader_seen {
            self.leader_seen = seen;
            match seen.1 {
                Some(leader) => {
                    tracing::info!(node = self.id, term = seen.0, leader, "leader known")
                }
                None => tracing::info!(node = self.id, term = seen.0, "new term, no leader yet"),
            }
        }
        let commit = node.log().commit();
        if self.commit_at_start.is_some_and(|start| commit > start) {
            self.commit_at_start = None;
            tracing::info!(node = self.id, commit, "first commit since start");
        }
    }

    /// Makes the transport's peers those of the configuration: the latest
    /// one's members and, until it commits, the previous one's (a removed
    /// node still receives the entry that removes it).
    fn sync_peers(&mut self) {
        let now = tokio::time::Instant::now();
        let transport = &self.transport;
        let id = self.id;
        // The leader's core may still be telling a removed node that its
        // removal is committed (it replicates to it until it can): the
        // node stays reachable while the core has progress for it.
        let progress = self.replica.node().progress();
        self.retiring.retain(|peer, until| {
            if now < *until || progress.is_some_and(|p| p.contains_key(peer)) {
                return true;
            }
            tracing::info!(node = id, peer, "peer removed");
            transport.remove_peer(*peer);
            false
        });
        let node = self.replica.node();
        let log = node.log();
        let last_change = log.last_membership_index();
        let seen = (
            last_change,
            log.snapshot().index,
            last_change.is_none_or(|at| at <= log.commit()),
        );
        if self.peers_seen == Some(seen) {
            return;
        }
        self.peers_seen = Some(seen);
        let committed = log.membership_at(log.commit());
        let mut wanted: BTreeMap<NodeId, String> = BTreeMap::new();
        for membership in [node.membership(), &committed] {
            for id in membership.members().filter(|&m| m != self.id) {
                if let Some(address) = membership.address(id) {
                    wanted.entry(id).or_insert_with(|| address.to_string());
                }
            }
        }
        for (id, address) in &wanted {
            if self.peers.get(id) == Some(address) {
                continue;
            }
            self.retiring.remove(id);
            match crate::addr::parse_address(address) {
                Ok(parsed) => {
                    tracing::info!(node = self.id, peer = id, %address, "peer added");
                    self.transport.add_peer(PeerAddress {
                        id: *id,
                        address: parsed,
                    });
                }
                Err(error) => {
                    tracing::warn!(node = self.id, peer = id, "cannot reach the peer: {error}")
                }
            }
        }
        for id in self.peers.keys() {
            if !wanted.contains_key(id) {
                self.retiring.insert(*id, now + PEER_GRACE);
            }
        }
        self.peers = wanted;
    }

    /// Whether this node was removed: its committed configuration says so
    /// (the core's rule, [`Node::is_removed`](distribkv_core::raft::Node::is_removed)).
    pub(super) fn is_removed(&self) -> bool {
        self.replica.node().is_removed()
    }

    /// Stops the transport, then lets the storage worker commit everything
    /// already queued.
    pub(super) async fn stop(self) {
        self.transport.shutdown().await;
        let worker = self.worker;
        let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
    }

    /// Steps until `shutdown` completes (`Ok`) or storage fails.
    pub(super) async fn run(
        &mut self,
        mut inputs: Inputs<Message, Incoming<KvRequest, KvResponse>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        tokio::pin!(shutdown);
        self.sync_peers();
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut expiry = expiry_timer();
        loop {
            let deadline = self.clock.deadline(self.replica.poll_timeout());
            let event = tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!(node = self.id, "shutting down");
                    return Ok(());
                }
                event = inputs.next(deadline) => event,
                _ = expiry.tick() => {
                    self.replies.expire();
                    continue;
                }
                Some(()) = next_hangup(&mut hangup) => {
                    self.reload_certificates();
                    continue;
                }
            };
            self.handle(event)?;
            // Everything else already waiting joins this step.
            inputs.drain_ready(|event| self.handle(event))?;
            self.drain_outputs(&mut inputs.storage).await?;
            self.sync_peers();
            self.observe();
            self.log_progress();
            if self.is_removed() {
                tracing::warn!(
                    node = self.id,
                    "this node's removal from the cluster is committed; it stops serving for good"
                );
                return Ok(());
            }
        }
    }

    /// Feeds one event to the replica.
    fn handle(&mut self, event: Event) -> Result<(), ServerError> {
        let now = self.clock.now();
        let input = match event {
            Event::Storage(event) => ReplicaInput::Persisted(step::durable(event)?),
            Event::Peer((from, message)) => ReplicaInput::Peer(Envelope {
                from,
                to: self.id,
                message,
            }),
            Event::Client(Incoming { request, reply }) => {
                let (op, is_write) = request_kind(&request);
                let token = self.replies.insert(reply, op, is_write);
                ReplicaInput::Client {
                    from: token,
                    request,
                }
            }
            Event::Timeout => ReplicaInput::Timeout,
        };
        if let Err(rejected) = self.replica.handle(now, input) {
            // Only driver misuse gets here (an acknowledgement of a write
            // never emitted); the replica is unchanged.
            tracing::warn!(node = self.id, "replica refused an input: {rejected}");
        }
        Ok(())
    }

    /// Executes every output of the replica, in order.
    async fn drain_outputs(
        &mut self,
        storage_events: &mut mpsc::UnboundedReceiver<StorageEvent>,
    ) -> Result<(), ServerError> {
        while let Some(output) = self.replica.poll_output() {
            match output {
                ReplicaOutput::Persist(write) => {
                    if self.worker.persist(write).await.is_err() {
                        return Err(step::refused_write(storage_events).await.into());
                    }
                }
                ReplicaOutput::Send(envelope) => {
                    let outcome = self.transport.send(envelope.to, envelope.message);
                    tracing::trace!(to = envelope.to, ?outcome, "message");
                }
                ReplicaOutput::Reply { to, response } => {
                    if let Some(waiting) = self.replies.take(to) {
                        if let Some(metrics) = &self.metrics {
                            let outcome = match &response.result {
                                Ok(_) => "ok",
                                Err(ServiceError::NotLeader { .. }) => "not_leader",
                                Err(ServiceError::Busy) => "busy",
                                Err(_) => "error",
                            };
                            metrics.observe_request(waiting.op, outcome, waiting.is_write);
                        }
                        waiting.reply.send(response);
                    }
                }
            }
        }
        Ok(())
    }
}
