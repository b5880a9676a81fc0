//! A node's QUIC endpoint: outgoing links to its peers, and everything that
//! arrives from peers and clients.
//!
//! # Outgoing
//!
//! [`PeerTransport::send`] never blocks and never fails loudly: it puts the
//! message in the peer's bounded queue, or drops it (and counts it) when the
//! queue is full, the peer is unreachable or unknown. Raft retransmits.
//!
//! One task per peer owns the queue. It dials the peer, opens one
//! unidirectional stream, writes a [`PeerHello`](super::PeerHello), then writes messages,
//! gathering everything already queued into one stream write. When the
//! connection is lost it reconnects with exponential back-off (capped,
//! jittered); while it waits, queued and new messages are dropped.
//!
//! # Incoming
//!
//! Every connection must present a certificate from the cluster CA. Its
//! [`Role`](crate::tls::Role) decides what it may do:
//! - a node may open unidirectional peer streams; after a valid hello their
//!   messages come out of [`Inbound::peer_messages`] as `(from, message)`;
//! - anyone may open bidirectional request streams; each request comes out of
//!   [`Inbound::client_requests`] with a [`ReplyHandle`] that sends the
//!   answer back on the same stream.

//!
//! # Files
//!
//! - this module: the [`PeerTransport`] handle, its configuration, counters
//!   and the channels of what arrives;
//! - `endpoint`: the QUIC endpoint (mutual TLS, stateless resets that survive
//!   a restart);
//! - `link`: one outgoing link per peer (dial, hello, batched writes,
//!   reconnect with back-off);
//! - `inbound`: accepted connections, their role, peer streams and hellos;
//! - `serving`: request streams, and the [`ReplyHandle`] that answers one
//!   request.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use distribkv_core::raft::NodeId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::frame::FrameCounters;
use super::{ServerAddress, TransportSettings, error_code};
use crate::tls::{CertError, CertSet, ClusterId, RoleVerifier};

mod endpoint;
mod inbound;
mod link;
mod serving;

use link::{Link, LinkState};
pub use serving::{ClientRequest, ReplyHandle};

/// A peer node: its id and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// The peer's node id.
    pub id: NodeId,
    /// Where it listens, and the name its certificate must carry.
    pub address: ServerAddress,
}

impl PeerAddress {
    /// Peer `id` at `addr`, its certificate checked against the IP address.
    pub fn new(id: NodeId, addr: SocketAddr) -> PeerAddress {
        PeerAddress {
            id,
            address: ServerAddress::new(addr),
        }
    }
}

/// How to start a node's transport.
#[derive(Debug, Clone)]
pub struct PeerTransportConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// The UDP address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The other members; more can be added later with
    /// [`PeerTransport::add_peer`]. An entry with this node's id is ignored.
    pub peers: Vec<PeerAddress>,
    /// Tunables.
    pub settings: TransportSettings,
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The certificates do not allow running a node.
    #[error(transparent)]
    Certificates(#[from] CertError),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What became of one message given to [`PeerTransport::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// In the peer's queue; it will be written unless the connection fails.
    Queued,
    /// Dropped: the peer's queue is full.
    DroppedQueueFull,
    /// Dropped: the peer is unreachable (its link is waiting to reconnect).
    DroppedUnreachable,
    /// Dropped: no peer has this id.
    DroppedUnknownPeer,
}

/// Messages and requests that arrived, as channels. Dropping a receiver stops
/// delivery of that kind (what arrives is then discarded).
#[derive(Debug)]
pub struct Inbound<M, Req, Resp> {
    /// Messages from peer nodes, with the sender's node id.
    pub peer_messages: mpsc::Receiver<(NodeId, M)>,
    /// Requests from clients (and from nodes acting as clients).
    pub client_requests: mpsc::Receiver<ClientRequest<Req, Resp>>,
}

/// Counters of a node's transport, as a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Peer messages written to a stream.
    pub messages_sent: u64,
    /// Stream writes of peer messages (each one a batch of messages).
    pub batches_written: u64,
    /// Peer messages received and delivered.
    pub messages_received: u64,
    /// Messages dropped because the peer's queue was full.
    pub dropped_queue_full: u64,
    /// Messages dropped because the peer was unreachable.
    pub dropped_unreachable: u64,
    /// Messages dropped because the peer id is unknown.
    pub dropped_unknown_peer: u64,
    /// Messages dropped because they could not be encoded (too large).
    pub dropped_unencodable: u64,
    /// Outgoing peer connections established (first ones and reconnects).
    pub connections_established: u64,
    /// Client requests delivered.
    pub client_requests: u64,
    /// Connections refused: no certificate from this CA, a client posing as
    /// a peer, or a refused hello.
    pub connections_refused: u64,
    /// Frames dropped because they did not decode.
    pub frames_undecodable: u64,
    /// Frames dropped because of an unknown format version.
    pub frames_wrong_version: u64,
    /// Streams closed because they carried something that is not a frame,
    /// or a frame over the size limit.
    pub streams_closed_bad_frame: u64,
}

/// What went to and came from one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    /// The peer.
    pub id: NodeId,
    /// Bytes of messages written to it.
    pub sent_bytes: u64,
    /// Bytes of its peer streams read.
    pub received_bytes: u64,
    /// The connection's latest round-trip estimate, if it has one.
    pub round_trip: Option<std::time::Duration>,
}

/// The live counters behind [`TransportStats`].
#[derive(Debug, Default)]
struct Counters {
    messages_sent: AtomicU64,
    batches_written: AtomicU64,
    messages_received: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_unreachable: AtomicU64,
    dropped_unknown_peer: AtomicU64,
    dropped_unencodable: AtomicU64,
    connections_established: AtomicU64,
    client_requests: AtomicU64,
    connections_refused: AtomicU64,
}

/// Adds one to a counter.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the tasks of one endpoint share.
struct Inner<M> {
    node_id: NodeId,
    cluster_id: ClusterId,
    incarnation: u64,
    settings: TransportSettings,
    endpoint: quinn::Endpoint,
    /// How the node dials its peers (replaced when certificates reload).
    dial_config: RwLock<quinn::ClientConfig>,
    roles: RoleVerifier,
    links: RwLock<HashMap<NodeId, Link<M>>>,
    /// Last incarnation seen in a hello, per peer (to log restarts).
    incarnations: std::sync::Mutex<HashMap<NodeId, u64>>,
    counters: Counters,
    frames: Arc<FrameCounters>,
    /// Bytes of peer streams read, per peer.
    received_bytes: std::sync::Mutex<HashMap<NodeId, Arc<AtomicU64>>>,
}

/// What [`PeerTransport::bind`] gives: the transport handle and the channels
/// of what arrives.
pub type Bound<M, Req, Resp> = (PeerTransport<M>, Inbound<M, Req, Resp>);

/// A node's transport: see the [module documentation](self).
///
/// Dropping it stops every task and closes the endpoint; prefer
/// [`PeerTransport::shutdown`] to also wait until the socket is released.
pub struct PeerTransport<M> {
    inner: Arc<Inner<M>>,
    accept_task: JoinHandle<()>,
}

impl<M> fmt::Debug for PeerTransport<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTransport")
            .field("node_id", &self.inner.node_id)
            .field("cluster_id", &self.inner.cluster_id)
            .field("local_addr", &self.inner.endpoint.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl<M> PeerTransport<M>
where
    M: Serialize + DeserializeOwned + Send + 'static,
{
    /// Binds the node's UDP address, starts dialing the configured peers and
    /// accepting connections. Needs the node identity in `certs`; must be
    /// called inside a tokio runtime (it spawns the transport's tasks).
    pub fn bind<Req, Resp>(
        config: PeerTransportConfig,
        certs: &CertSet,
    ) -> Result<Bound<M, Req, Resp>, TransportError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
    {
        let (endpoint, dial_config) = endpoint::bind(&config, certs)?;

        let (peer_sender, peer_messages) = mpsc::channel(config.settings.inbound_capacity);
        let (request_sender, client_requests) = mpsc::channel(config.settings.inbound_capacity);
        let inner = Arc::new(Inner {
            node_id: config.node_id,
            cluster_id: certs.cluster_id(),
            incarnation: super::random_u64(),
            settings: config.settings,
            endpoint: endpoint.clone(),
            dial_config: RwLock::new(dial_config),
            roles: certs.role_verifier(),
            links: RwLock::new(HashMap::new()),
            incarnations: std::sync::Mutex::new(HashMap::new()),
            counters: Counters::default(),
            frames: Arc::new(FrameCounters::default()),
            received_bytes: std::sync::Mutex::new(HashMap::new()),
        });
        let acceptor = inbound::Acceptor {
            inner: inner.clone(),
            peer_sender,
            request_sender,
        };
        let accept_task = tokio::spawn(acceptor.run());
        let transport = PeerTransport { inner, accept_task };
        for peer in config.peers {
            transport.add_peer(peer);
        }
        tracing::info!(
            node = transport.inner.node_id,
            cluster = %transport.inner.cluster_id,
            addr = ?endpoint.local_addr().ok(),
            "transport listening"
        );
        Ok((
            transport,
            Inbound {
                peer_messages,
                client_requests,
            },
        ))
    }

    /// Adds a peer (or changes its address) and starts dialing it.
    pub fn add_peer(&self, peer: PeerAddress) {
        if peer.id == self.inner.node_id {
            return;
        }
        let (queue, receiver) = mpsc::channel(self.inner.settings.peer_queue_capacity.max(1));
        let state = Arc::new(LinkState {
            address: peer.clone(),
            reachable: AtomicBool::new(true),
            connected: AtomicBool::new(false),
            sent_bytes: AtomicU64::new(0),
            rtt_micros: AtomicU64::new(0),
            peer_restarts: AtomicU64::new(0),
            peer_restarted: tokio::sync::Notify::new(),
        });
        let task = tokio::spawn(link::run_link(self.inner.clone(), state.clone(), receiver));
        let old = self
            .inner
            .links
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer.id, Link { queue, state, task });
        if let Some(old) = old {
            old.task.abort();
        }
    }

    /// Removes a peer: its link stops, and its connections are no longer
    /// accepted as a peer's.
    pub fn remove_peer(&self, id: NodeId) {
        let removed = self
            .inner
            .links
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(link) = removed {
            link.task.abort();
        }
    }

    /// Queues `message` for peer `to`, or drops it; never blocks.
    pub fn send(&self, to: NodeId, message: M) -> SendOutcome {
        let links = self
            .inner
            .links
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let counters = &self.inner.counters;
        let Some(link) = links.get(&to) else {
            bump(&counters.dropped_unknown_peer);
            return SendOutcome::DroppedUnknownPeer;
        };
        if !link.state.reachable.load(Ordering::Relaxed) {
            bump(&counters.dropped_unreachable);
            return SendOutcome::DroppedUnreachable;
        }
        match link.queue.try_send(message) {
            Ok(()) => SendOutcome::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&counters.dropped_queue_full);
                SendOutcome::DroppedQueueFull
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                bump(&counters.dropped_unreachable);
                SendOutcome::DroppedUnreachable
            }
        }
    }
}

impl<M> PeerTransport<M> {
    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The cluster id, from the CA certificate.
    pub fn cluster_id(&self) -> ClusterId {
        self.inner.cluster_id
    }

    /// The bound UDP address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner
            .endpoint
            .local_addr()
            // Invariant: the endpoint was bound in `bind` and is never rebound
            // to a socket without an address.
            .expect("a bound endpoint has a local address")
    }

    /// The known peers, by id.
    pub fn peers(&self) -> Vec<NodeId> {
        let links = self
            .inner
            .links
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<NodeId> = links.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Whether the outgoing link to `peer` is connected right now.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.inner
            .links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .is_some_and(|link| link.state.connected.load(Ordering::Relaxed))
    }

    /// Traffic with every known peer (and every peer heard from), by id.
    pub fn peer_traffic(&self) -> Vec<PeerTraffic> {
        let mut traffic: std::collections::BTreeMap<NodeId, PeerTraffic> =
            std::collections::BTreeMap::new();
        for (id, link) in self
            .inner
            .links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let rtt = link.state.rtt_micros.load(Ordering::Relaxed);
            traffic.insert(
                *id,
                PeerTraffic {
                    id: *id,
                    sent_bytes: link.state.sent_bytes.load(Ordering::Relaxed),
                    received_bytes: 0,
                    round_trip: (rtt > 0).then(|| std::time::Duration::from_micros(rtt)),
                },
            );
        }
        for (id, received) in self
            .inner
            .received_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let entry = traffic.entry(*id).or_insert(PeerTraffic {
                id: *id,
                ..PeerTraffic::default()
            });
            entry.received_bytes = received.load(Ordering::Relaxed);
        }
        traffic.into_values().collect()
    }

    /// Uses the node certificate and key of `certs` from now on: new
    /// connections, accepted or dialed, present them; open ones keep theirs.
    /// The CA must stay the same (another one is another cluster), and
    /// must have issued the node certificate.
    pub fn reload_certificates(&self, certs: &CertSet) -> Result<(), TransportError> {
        if certs.cluster_id() != self.inner.cluster_id {
            return Err(TransportError::Certificates(
                crate::tls::CertError::Invalid {
                    path: certs.dir().join(crate::tls::CA_CERT_FILE),
                    expected: "the same CA certificate",
                    reason: format!(
                        "the CA changed (cluster {} instead of {}): a node cannot move to another cluster",
                        certs.cluster_id(),
                        self.inner.cluster_id
                    ),
                },
            ));
        }
        certs.check_node_identity()?;
        let (server_config, dial_config) = endpoint::configs(&self.inner.settings, certs)?;
        self.inner.endpoint.set_server_config(Some(server_config));
        *self
            .inner
            .dial_config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = dial_config;
        Ok(())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TransportStats {
        let c = &self.inner.counters;
        let f = &self.inner.frames;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TransportStats {
            messages_sent: load(&c.messages_sent),
            batches_written: load(&c.batches_written),
            messages_received: load(&c.messages_received),
            dropped_queue_full: load(&c.dropped_queue_full),
            dropped_unreachable: load(&c.dropped_unreachable),
            dropped_unknown_peer: load(&c.dropped_unknown_peer),
            dropped_unencodable: load(&c.dropped_unencodable),
            connections_established: load(&c.connections_established),
            client_requests: load(&c.client_requests),
            connections_refused: load(&c.connections_refused),
            frames_undecodable: load(&f.undecodable),
            frames_wrong_version: load(&f.wrong_version),
            streams_closed_bad_frame: load(&f.streams_closed),
        }
    }

    /// The underlying quinn endpoint (for statistics and diagnostics).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.inner.endpoint
    }

    /// Stops every task, closes all connections and waits until the peers
    /// were told (or a short grace period passed), releasing the UDP port.
    pub async fn shutdown(self) {
        self.stop_tasks();
        let endpoint = self.inner.endpoint.clone();
        drop(self);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
    }

    fn stop_tasks(&self) {
        self.accept_task.abort();
        for link in self
            .inner
            .links
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, link)| link)
        {
            link.task.abort();
        }
        self.inner
            .endpoint
            .close(error_code::CLOSED, b"node shutting down");
    }
}

impl<M> Drop for PeerTransport<M> {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}
