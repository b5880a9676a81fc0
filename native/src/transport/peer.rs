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
//! unidirectional stream, writes a [`PeerHello`], then writes messages,
//! gathering everything already queued into one stream write. When the
//! connection is lost it reconnects with exponential back-off (capped,
//! jittered); while it waits, queued and new messages are dropped.
//!
//! # Incoming
//!
//! Every connection must present a certificate from the cluster CA. Its
//! [`Role`] decides what it may do:
//! - a node may open unidirectional peer streams; after a valid hello their
//!   messages come out of [`Inbound::peer_messages`] as `(from, message)`;
//! - anyone may open bidirectional request streams; each request comes out of
//!   [`Inbound::client_requests`] with a [`ReplyHandle`] that sends the
//!   answer back on the same stream.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::BytesMut;
use distribkv_core::raft::NodeId;
use quinn::{Connection, RecvStream, SendStream};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::frame::{self, FrameCounters, FrameError, FrameReader};
use super::{Answer, Backoff, PeerHello, ServerAddress, TransportSettings, error_code};
use crate::tls::{CertError, CertSet, ClusterId, Role, RoleVerifier};

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

/// One client request and the handle to answer it.
#[derive(Debug)]
pub struct ClientRequest<Req, Resp> {
    /// The request.
    pub request: Req,
    /// Sends the answer back on the stream the request came from.
    pub reply: ReplyHandle<Resp>,
}

/// Answers one client request, on the stream it arrived on. Dropping the
/// handle without answering tells the client [`Answer::NotAnswered`].
pub struct ReplyHandle<Resp> {
    request_id: u64,
    role: Role,
    remote: SocketAddr,
    answers: Option<mpsc::UnboundedSender<(u64, Answer<Resp>)>>,
    /// Released when answered: bounds the requests in flight per stream.
    _in_flight: OwnedSemaphorePermit,
}

impl<Resp> fmt::Debug for ReplyHandle<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyHandle")
            .field("request_id", &self.request_id)
            .field("role", &self.role)
            .field("remote", &self.remote)
            .finish()
    }
}

impl<Resp> ReplyHandle<Resp> {
    /// Sends `response`. Returns false when the client is gone.
    pub fn send(mut self, response: Resp) -> bool {
        match self.answers.take() {
            Some(answers) => answers
                .send((self.request_id, Answer::Response(response)))
                .is_ok(),
            None => false,
        }
    }

    /// The request id chosen by the client (unique per stream).
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// Whether the request came from a client or from a node.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The UDP address the request came from.
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }
}

impl<Resp> Drop for ReplyHandle<Resp> {
    fn drop(&mut self) {
        if let Some(answers) = self.answers.take() {
            let _ = answers.send((self.request_id, Answer::NotAnswered));
        }
    }
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

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The state of the link to one peer, shared by its task and the senders.
#[derive(Debug)]
struct LinkState {
    address: PeerAddress,
    /// False while the link waits to reconnect after a failure: sends are
    /// dropped at once instead of queued.
    reachable: AtomicBool,
    /// True while a connection with a stream is up.
    connected: AtomicBool,
}

struct Link<M> {
    queue: mpsc::Sender<M>,
    state: Arc<LinkState>,
    task: JoinHandle<()>,
}

/// What the tasks of one endpoint share.
struct Inner<M> {
    node_id: NodeId,
    cluster_id: ClusterId,
    incarnation: u64,
    settings: TransportSettings,
    endpoint: quinn::Endpoint,
    dial_config: quinn::ClientConfig,
    roles: RoleVerifier,
    links: RwLock<HashMap<NodeId, Link<M>>>,
    /// Last incarnation seen in a hello, per peer (to log restarts).
    incarnations: std::sync::Mutex<HashMap<NodeId, u64>>,
    counters: Counters,
    frames: Arc<FrameCounters>,
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
        let transport = config.settings.quic_transport_config();
        let mut server_config = certs.server_config()?;
        server_config.transport_config(transport.clone());
        let mut dial_config = certs.node_client_config()?;
        dial_config.transport_config(transport);

        let bind_error = |source| TransportError::Bind {
            addr: config.listen,
            source,
        };
        let socket = std::net::UdpSocket::bind(config.listen).map_err(bind_error)?;
        // The key depends on the address really bound (not on a port 0 asked
        // for), so a restart on the same address derives the same key.
        let bound = socket.local_addr().map_err(bind_error)?;
        let reset_key = certs.stateless_reset_key(bound.to_string().as_bytes())?;
        let mut endpoint_config = quinn::EndpointConfig::new(reset_key);
        endpoint_config.cid_generator(|| Box::new(RandomConnectionIds));
        let endpoint = quinn::Endpoint::new(
            endpoint_config,
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;

        let (peer_sender, peer_messages) = mpsc::channel(config.settings.inbound_capacity);
        let (request_sender, client_requests) = mpsc::channel(config.settings.inbound_capacity);
        let inner = Arc::new(Inner {
            node_id: config.node_id,
            cluster_id: certs.cluster_id(),
            incarnation: super::random_u64(),
            settings: config.settings,
            endpoint: endpoint.clone(),
            dial_config,
            roles: certs.role_verifier(),
            links: RwLock::new(HashMap::new()),
            incarnations: std::sync::Mutex::new(HashMap::new()),
            counters: Counters::default(),
            frames: Arc::new(FrameCounters::default()),
        });
        let accept_task = tokio::spawn(accept_connections(
            inner.clone(),
            peer_sender,
            request_sender,
        ));
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
        });
        let task = tokio::spawn(run_link(self.inner.clone(), state.clone(), receiver));
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

/// Connection ids of 8 random bytes, accepted as "possibly ours" without
/// a check. Quinn's default generator tags its ids with a per-process random
/// key and silently drops packets whose id lacks the tag; a restarted node
/// would then drop the packets of its previous incarnation's connections
/// instead of answering them with a stateless reset. (Packets of unknown ids
/// draw at most one reset per 20 ms, each smaller than the packet that
/// caused it, so this cannot amplify traffic.)
struct RandomConnectionIds;

/// Length of the connection ids this node issues.
const CONNECTION_ID_LENGTH: usize = 8;

impl quinn::ConnectionIdGenerator for RandomConnectionIds {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&super::random_u64().to_le_bytes())
    }

    fn cid_len(&self) -> usize {
        CONNECTION_ID_LENGTH
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Why a link's connection ended.
enum LinkEnd {
    /// The peer was removed (its queue closed).
    Removed,
    /// The connection or stream failed.
    Lost(String),
}

/// The task of one outgoing link: connect, pump, reconnect with back-off.
async fn run_link<M: Serialize>(
    inner: Arc<Inner<M>>,
    state: Arc<LinkState>,
    mut queue: mpsc::Receiver<M>,
) {
    let settings = &inner.settings;
    let peer = state.address.id;
    let mut backoff = Backoff::new(
        settings.reconnect_min,
        settings.reconnect_max,
        super::random_u64(),
    );
    let mut failures_logged = false;
    loop {
        match dial(&inner, &state.address).await {
            Ok((connection, stream)) => {
                bump(&inner.counters.connections_established);
                state.reachable.store(true, Ordering::Relaxed);
                state.connected.store(true, Ordering::Relaxed);
                backoff.reset();
                tracing::info!(node = inner.node_id, peer, "connected to peer");
                failures_logged = false;
                let end = pump(&inner, &connection, stream, &mut queue).await;
                state.connected.store(false, Ordering::Relaxed);
                match end {
                    LinkEnd::Removed => {
                        connection.close(error_code::CLOSED, b"peer removed");
                        return;
                    }
                    LinkEnd::Lost(reason) => {
                        tracing::info!(node = inner.node_id, peer, %reason, "link to peer lost");
                        connection.close(error_code::CLOSED, b"reconnecting");
                    }
                }
            }
            Err(reason) => {
                if failures_logged {
                    tracing::debug!(node = inner.node_id, peer, %reason, "peer still unreachable");
                } else {
                    tracing::warn!(node = inner.node_id, peer, %reason, "cannot reach peer");
                    failures_logged = true;
                }
            }
        }
        state.reachable.store(false, Ordering::Relaxed);
        let delay = backoff.next_delay();
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        // While waiting, what is queued cannot be delivered: drop it.
        loop {
            tokio::select! {
                () = &mut wait => break,
                message = queue.recv() => match message {
                    Some(_) => bump(&inner.counters.dropped_unreachable),
                    None => return,
                },
            }
        }
        state.reachable.store(true, Ordering::Relaxed);
    }
}

/// Connects to a peer, opens the message stream and sends the hello.
async fn dial<M>(inner: &Inner<M>, peer: &PeerAddress) -> Result<(Connection, SendStream), String> {
    let connecting = inner
        .endpoint
        .connect_with(
            inner.dial_config.clone(),
            peer.address.addr,
            &peer.address.server_name,
        )
        .map_err(|error| error.to_string())?;
    let connection = tokio::time::timeout(inner.settings.connect_timeout, connecting)
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|error| error.to_string())?;
    let mut stream = connection
        .open_uni()
        .await
        .map_err(|error| error.to_string())?;
    let hello = PeerHello {
        cluster_id: inner.cluster_id.0,
        node_id: inner.node_id,
        incarnation: inner.incarnation,
    };
    let hello = frame::encode_to_bytes(&hello, inner.settings.max_frame_size)
        .map_err(|error| error.to_string())?;
    stream
        .write_chunk(hello)
        .await
        .map_err(|error| error.to_string())?;
    Ok((connection, stream))
}

/// Writes queued messages to the stream, many per write, until the
/// connection fails or the peer is removed.
async fn pump<M: Serialize>(
    inner: &Inner<M>,
    connection: &Connection,
    mut stream: SendStream,
    queue: &mut mpsc::Receiver<M>,
) -> LinkEnd {
    let settings = &inner.settings;
    let counters = &inner.counters;
    let mut buffer = BytesMut::with_capacity(settings.max_batch_bytes);
    loop {
        let first = tokio::select! {
            biased;
            message = queue.recv() => match message {
                Some(message) => message,
                None => return LinkEnd::Removed,
            },
            error = connection.closed() => return LinkEnd::Lost(error.to_string()),
        };
        let mut batched = 0u64;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match frame::encode(&message, &mut buffer, settings.max_frame_size) {
                Ok(()) => batched += 1,
                Err(error) => {
                    bump(&counters.dropped_unencodable);
                    tracing::error!(node = inner.node_id, %error, "dropped an outgoing message");
                }
            }
            if buffer.len() < settings.max_batch_bytes {
                next = queue.try_recv().ok();
            }
        }
        if buffer.is_empty() {
            continue;
        }
        if let Err(error) = stream.write_chunk(buffer.split().freeze()).await {
            return LinkEnd::Lost(error.to_string());
        }
        counters.messages_sent.fetch_add(batched, Ordering::Relaxed);
        bump(&counters.batches_written);
    }
}

/// Accepts every incoming connection and serves it in its own task.
async fn accept_connections<M, Req, Resp>(
    inner: Arc<Inner<M>>,
    peer_sender: mpsc::Sender<(NodeId, M)>,
    request_sender: mpsc::Sender<ClientRequest<Req, Resp>>,
) where
    M: DeserializeOwned + Send + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    while let Some(incoming) = inner.endpoint.accept().await {
        tokio::spawn(serve_connection(
            inner.clone(),
            incoming,
            peer_sender.clone(),
            request_sender.clone(),
        ));
    }
}

/// Completes the handshake, tells the role, and serves the streams the other
/// side opens.
async fn serve_connection<M, Req, Resp>(
    inner: Arc<Inner<M>>,
    incoming: quinn::Incoming,
    peer_sender: mpsc::Sender<(NodeId, M)>,
    request_sender: mpsc::Sender<ClientRequest<Req, Resp>>,
) where
    M: DeserializeOwned + Send + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            bump(&inner.counters.connections_refused);
            tracing::warn!(node = inner.node_id, %remote, %error, "refused a connection during the handshake");
            return;
        }
    };
    let role = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| inner.roles.role_of(&chain));
    let Some(role) = role else {
        // Unreachable with the mutual-TLS server config, kept as a second lock.
        bump(&inner.counters.connections_refused);
        tracing::warn!(node = inner.node_id, %remote, "refused a connection without a cluster certificate");
        connection.close(
            error_code::NOT_AUTHORIZED,
            b"certificate not from this cluster",
        );
        return;
    };
    tracing::debug!(node = inner.node_id, %remote, ?role, "accepted a connection");
    loop {
        tokio::select! {
            stream = connection.accept_uni() => {
                let Ok(stream) = stream else { return };
                if role != Role::Node {
                    bump(&inner.counters.connections_refused);
                    tracing::warn!(node = inner.node_id, %remote, "refused a client certificate posing as a peer node");
                    connection.close(error_code::NOT_A_PEER, b"a client certificate cannot act as a peer node");
                    return;
                }
                tokio::spawn(read_peer_stream(inner.clone(), connection.clone(), stream, peer_sender.clone()));
            }
            stream = connection.accept_bi() => {
                let Ok((send, receive)) = stream else { return };
                tokio::spawn(serve_request_stream(
                    inner.clone(),
                    role,
                    remote,
                    send,
                    receive,
                    request_sender.clone(),
                ));
            }
        }
    }
}

/// Reads a peer stream: the hello, then messages delivered as
/// `(from, message)`.
async fn read_peer_stream<M: DeserializeOwned>(
    inner: Arc<Inner<M>>,
    connection: Connection,
    stream: RecvStream,
    peer_sender: mpsc::Sender<(NodeId, M)>,
) {
    let remote = connection.remote_address();
    let mut reader = FrameReader::new(
        stream,
        inner.settings.max_frame_size,
        inner.frames.clone(),
        format!("peer at {remote}"),
    );
    let hello: PeerHello = match reader.next_message().await {
        Ok(Some(hello)) => hello,
        Ok(None) => return,
        Err(error) => {
            close_bad_stream(&mut reader, &error);
            return;
        }
    };
    if let Err(reason) = check_hello(&inner, &hello) {
        bump(&inner.counters.connections_refused);
        tracing::warn!(node = inner.node_id, %remote, %reason, "refused a peer hello");
        connection.close(error_code::HELLO_REFUSED, reason.as_bytes());
        return;
    }
    let from = hello.node_id;
    let previous = inner
        .incarnations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(from, hello.incarnation);
    match previous {
        Some(previous) if previous != hello.incarnation => {
            tracing::info!(node = inner.node_id, peer = from, %remote, "peer restarted and reconnected");
        }
        _ => tracing::debug!(node = inner.node_id, peer = from, %remote, "peer stream open"),
    }
    loop {
        match reader.next_message::<M>().await {
            Ok(Some(message)) => {
                bump(&inner.counters.messages_received);
                if peer_sender.send((from, message)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                close_bad_stream(&mut reader, &error);
                return;
            }
        }
    }
}

/// Why a hello is refused, if it is.
fn check_hello<M>(inner: &Inner<M>, hello: &PeerHello) -> Result<(), String> {
    if hello.cluster_id != inner.cluster_id.0 {
        return Err(format!(
            "cluster id {:016x} is not this cluster's ({})",
            hello.cluster_id, inner.cluster_id
        ));
    }
    if hello.node_id == inner.node_id {
        return Err(format!("node id {} is this node's own id", hello.node_id));
    }
    let known = inner
        .links
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(&hello.node_id);
    if !known {
        return Err(format!("node id {} is not a known peer", hello.node_id));
    }
    Ok(())
}

/// Stops reading a stream after a fatal framing error (a read error means the
/// stream or connection is already gone).
fn close_bad_stream(reader: &mut FrameReader<RecvStream>, error: &FrameError) {
    if !matches!(error, FrameError::Read(_)) {
        let _ = reader.stream_mut().stop(error_code::BAD_FRAME);
    }
}

/// Serves one request stream: requests in, answers out (in the order they
/// are given, not necessarily the order of the requests).
async fn serve_request_stream<M, Req, Resp>(
    inner: Arc<Inner<M>>,
    role: Role,
    remote: SocketAddr,
    send: SendStream,
    receive: RecvStream,
    request_sender: mpsc::Sender<ClientRequest<Req, Resp>>,
) where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let settings = &inner.settings;
    let (answers, answer_queue) = mpsc::unbounded_channel();
    let reset = Arc::new(Notify::new());
    let writer = tokio::spawn(write_answers(
        send,
        answer_queue,
        reset.clone(),
        settings.max_frame_size,
        settings.max_batch_bytes,
    ));
    let in_flight = Arc::new(Semaphore::new(settings.client_in_flight_limit.max(1)));
    let mut reader = FrameReader::new(
        receive,
        settings.max_frame_size,
        inner.frames.clone(),
        format!("request stream from {remote}"),
    );
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let payload = match reader.next_payload().await {
            Ok(Some(payload)) => payload,
            Ok(None) => break,
            Err(error) => {
                close_bad_stream(&mut reader, &error);
                reset.notify_one();
                break;
            }
        };
        let Ok((request_id, body)) = postcard::take_from_bytes::<u64>(&payload) else {
            reader.count_undecodable(&FrameError::Undecodable(
                postcard::Error::DeserializeUnexpectedEnd,
            ));
            continue;
        };
        match postcard::from_bytes::<Req>(body) {
            Ok(request) => {
                reader.count_decoded();
                bump(&inner.counters.client_requests);
                let reply = ReplyHandle {
                    request_id,
                    role,
                    remote,
                    answers: Some(answers.clone()),
                    _in_flight: permit,
                };
                if request_sender
                    .send(ClientRequest { request, reply })
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Err(error) => {
                reader.count_undecodable(&FrameError::Undecodable(error));
                let _ = answers.send((request_id, Answer::UndecodableRequest));
            }
        }
    }
    // The writer ends once every outstanding reply handle is gone.
    drop(answers);
    let _ = writer.await;
}

/// Writes answers to a request stream, many per write; finishes the stream
/// when no answer can come any more, resets it when told to.
async fn write_answers<Resp: Serialize>(
    mut send: SendStream,
    mut answer_queue: mpsc::UnboundedReceiver<(u64, Answer<Resp>)>,
    reset: Arc<Notify>,
    max_frame_size: usize,
    max_batch_bytes: usize,
) {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            () = reset.notified() => {
                let _ = send.reset(error_code::BAD_FRAME);
                return;
            }
            answer = answer_queue.recv() => answer,
        };
        let Some(first) = first else { break };
        let mut next = Some(first);
        while let Some((request_id, answer)) = next.take() {
            if frame::encode(&(request_id, &answer), &mut buffer, max_frame_size).is_err() {
                tracing::error!(request_id, "response too large to encode");
                let fallback = (request_id, Answer::<Resp>::UnencodableResponse);
                // Invariant: a fieldless answer always fits in a frame.
                frame::encode(&fallback, &mut buffer, max_frame_size)
                    .expect("a fieldless answer encodes");
            }
            if buffer.len() < max_batch_bytes {
                next = answer_queue.try_recv().ok();
            }
        }
        if send.write_chunk(buffer.split().freeze()).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}
