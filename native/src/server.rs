//! The server: one replica of the cluster, driven over QUIC with durable
//! storage.
//!
//! # The step loop
//!
//! One task owns the [`Replica`] and does nothing but translate between it
//! and the world; every decision is the core's:
//!
//! 1. wait for the first of: a storage acknowledgement, a peer message, a
//!    client request, the replica's next deadline
//!    ([`Replica::poll_timeout`]), or shutdown;
//! 2. feed it, then feed every other input that is already waiting (up to
//!    [`MAX_INPUTS_PER_STEP`]) without waiting: many client writes proposed
//!    in one step become one [`Write`](distribkv_core::raft::Write), and the
//!    storage worker gathers the writes queued during one fsync into the
//!    next (group commit at two levels);
//! 3. drain [`Replica::poll_output`] until `None`, in order: a `Persist`
//!    goes to the [`StorageWorker`] (its acknowledgement comes back as
//!    `ReplicaInput::Persisted`), a `Send` goes to the peer transport at
//!    once (the core holds back what depends on durability), a `Reply` goes
//!    back on the client's stream.
//!
//! # Data folder
//!
//! The folder belongs to one node of one cluster: node id `--id` and the
//! cluster id derived from the CA certificate. Opening it with another
//! identity is refused before anything is written.
//!
//! # Stopping
//!
//! On SIGINT or SIGTERM ([`run`]'s `shutdown` future) the server stops
//! accepting connections, lets the storage worker commit what is queued,
//! and returns `Ok`. A storage failure (I/O error, disk full) stops it with
//! [`ServerError::Storage`]: nothing after the last durable write was
//! acknowledged to anyone, so nothing acknowledged is lost.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use distribkv_core::kv::{
    ClientRequest as KvRequest, ClientResponse as KvResponse, Replica, ReplicaConfig, ReplicaError,
    ReplicaInput, ReplicaOutput,
};
use distribkv_core::raft::{Envelope, Message, NodeId};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::storage::{
    Identity, RaftStorage, StorageError, StorageEvent, StorageOptions, StorageWorker,
};
use crate::tls::{CertError, CertSet};
use crate::transport::{
    ClientRequest as Incoming, PeerAddress, PeerTransport, PeerTransportConfig, ReplyHandle,
    ServerAddress, TransportError, TransportSettings,
};

/// Inputs fed to the replica in one step before its outputs are drained.
pub const MAX_INPUTS_PER_STEP: usize = 4096;

/// Writes queued for the storage worker before the step loop waits.
const STORAGE_QUEUE: usize = 4096;

/// Client requests the replica has not answered after this long are
/// forgotten (their clients have long given up).
const REPLY_EXPIRY: Duration = Duration::from_secs(120);

/// Raft timing on a real network.
///
/// The defaults suit a LAN or one machine: heartbeats every 100 ms and an
/// election timeout drawn from 500–1000 ms. The minimum is five heartbeats,
/// so a follower campaigns only after missing several in a row (a loaded
/// 2-core machine or a slow fsync can delay one by tens of milliseconds),
/// and a crashed leader is replaced within about one second. With
/// CheckQuorum a leader that hears from no majority for 500 ms steps down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Interval between leader heartbeats, ms.
    pub heartbeat_ms: u64,
    /// Lower bound of the election timeout, ms.
    pub election_min_ms: u64,
    /// Upper bound (exclusive) of the election timeout, ms.
    pub election_max_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 1000,
        }
    }
}

/// How to run one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This node's id: its 1-based position in `peers`.
    pub id: NodeId,
    /// Every member's address, in id order (this node's included).
    pub peers: Vec<ServerAddress>,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The certificate folder (needs the CA and the node certificate).
    pub certs_dir: PathBuf,
    /// Take a snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Serve reads from a leader lease (see `Config::lease_reads` in the
    /// core) instead of a ReadIndex round.
    pub lease_reads: bool,
    /// Raft timing.
    pub timing: Timing,
    /// Storage tuning.
    pub storage: StorageOptions,
}

/// Why a server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `--id` is not a position in `--peers`.
    #[error("--id {id} is not a position in --peers (1 to {count})")]
    BadId {
        /// The id given.
        id: NodeId,
        /// How many peers were listed.
        count: usize,
    },
    /// The certificate folder cannot be used by a node.
    #[error("certificates in {dir}: {source}")]
    Certificates {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: CertError,
    },
    /// The certificate folder has no node certificate.
    #[error(
        "{dir} has no node certificate (node-cert.pem, node-key.pem); a server needs the files written by `distribkv-native certs`"
    )]
    NoNodeCertificate {
        /// The folder.
        dir: PathBuf,
    },
    /// The data folder could not be opened or recovered.
    #[error("data folder {dir}: {source}")]
    Storage {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: StorageError,
    },
    /// The recovered state does not make a valid replica.
    #[error("cannot start the replica: {0}")]
    Replica(#[from] ReplicaError),
    /// The transport could not start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Storage failed while running; the node stopped.
    #[error("storage failed, node stopped (nothing acknowledged was lost): {0}")]
    StorageFailed(StorageError),
    /// The storage worker stopped without saying why.
    #[error("the storage worker stopped unexpectedly")]
    StorageStopped,
}

/// Runs a server until `shutdown` completes (clean stop, `Ok`) or storage
/// fails (`Err`). `ready` is called with the bound address once the node
/// serves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let count = config.peers.len();
    if config.id == 0 || config.id as usize > count {
        return Err(ServerError::BadId {
            id: config.id,
            count,
        });
    }
    let certs_error = |source| ServerError::Certificates {
        dir: config.certs_dir.clone(),
        source,
    };
    let certs = CertSet::load(&config.certs_dir).map_err(certs_error)?;
    if !certs.has_node_identity() {
        return Err(ServerError::NoNodeCertificate {
            dir: config.certs_dir.clone(),
        });
    }
    let identity = Identity {
        node_id: config.id,
        cluster_id: certs.cluster_id().0,
    };
    let storage_error = |source| ServerError::Storage {
        dir: config.data_dir.clone(),
        source,
    };
    let (storage, persisted) =
        RaftStorage::open(&config.data_dir, identity, config.storage.clone())
            .map_err(storage_error)?;
    tracing::info!(
        node = config.id,
        dir = %config.data_dir.display(),
        term = persisted.hard_state.term,
        voted_for = ?persisted.hard_state.voted_for,
        snapshot = persisted.snapshot.as_ref().map_or(0, |s| s.meta.index),
        last_index = persisted.last_index(),
        "recovered from storage"
    );

    let clock = Clock::start();
    let mut replica_config = ReplicaConfig::new(config.id, 1..=count as NodeId);
    replica_config.raft.heartbeat_interval = config.timing.heartbeat_ms;
    replica_config.raft.election_timeout_min = config.timing.election_min_ms;
    replica_config.raft.election_timeout_max = config.timing.election_max_ms;
    replica_config.raft.lease_reads = config.lease_reads;
    replica_config.snapshot_every = config.snapshot_every;
    let seed = crate::transport::random_u64();
    let replica = Replica::restart(replica_config, seed, clock.now(), persisted)?;

    let (worker, storage_events) =
        StorageWorker::spawn(storage, STORAGE_QUEUE).map_err(storage_error)?;

    let own = &config.peers[config.id as usize - 1];
    let peers = config
        .peers
        .iter()
        .enumerate()
        .map(|(index, address)| PeerAddress {
            id: index as NodeId + 1,
            address: address.clone(),
        })
        .collect();
    let transport_config = PeerTransportConfig {
        node_id: config.id,
        listen: own.addr,
        peers,
        settings: TransportSettings::default(),
    };
    let mut bound =
        PeerTransport::<Message>::bind::<KvRequest, KvResponse>(transport_config.clone(), &certs);
    if let Err(TransportError::Bind { source, .. }) = &bound
        && source.kind() == std::io::ErrorKind::AddrNotAvailable
    {
        // The name resolves to an address this machine does not have (NAT,
        // a load balancer): listen on every interface, same port.
        let any: std::net::IpAddr = if own.addr.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        tracing::warn!(addr = %own.addr, "not a local address; listening on {any}");
        bound = PeerTransport::<Message>::bind::<KvRequest, KvResponse>(
            PeerTransportConfig {
                listen: SocketAddr::new(any, own.addr.port()),
                ..transport_config
            },
            &certs,
        );
    }
    let (transport, inbound) = match bound {
        Ok(bound) => bound,
        Err(error) => {
            let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
            return Err(error.into());
        }
    };
    ready(transport.local_addr());
    tracing::info!(node = config.id, addr = %transport.local_addr(), peers = count, "serving");

    let mut driver = Driver {
        id: config.id,
        clock,
        replica,
        transport,
        worker,
        replies: HashMap::new(),
        next_token: 1,
    };
    let outcome = driver
        .run(
            storage_events,
            inbound.peer_messages,
            inbound.client_requests,
            shutdown,
        )
        .await;
    let Driver {
        transport, worker, ..
    } = driver;
    transport.shutdown().await;
    // Commits everything already queued before returning.
    let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
    match &outcome {
        Ok(()) => tracing::info!(node = config.id, "stopped"),
        Err(error) => tracing::error!(node = config.id, "{error}"),
    }
    outcome
}

/// A client request waiting for the replica's answer.
struct Waiting {
    reply: ReplyHandle<KvResponse>,
    since: tokio::time::Instant,
}

/// The step loop's state.
struct Driver {
    id: NodeId,
    clock: Clock,
    replica: Replica,
    transport: PeerTransport<Message>,
    worker: StorageWorker,
    replies: HashMap<u64, Waiting>,
    next_token: u64,
}

/// One input from the world.
enum Event {
    Storage(Option<StorageEvent>),
    Peer((NodeId, Message)),
    Client(Incoming<KvRequest, KvResponse>),
    Timeout,
    Shutdown,
}

impl Driver {
    async fn run(
        &mut self,
        mut storage_events: mpsc::UnboundedReceiver<StorageEvent>,
        mut peer_messages: mpsc::Receiver<(NodeId, Message)>,
        mut client_requests: mpsc::Receiver<Incoming<KvRequest, KvResponse>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        tokio::pin!(shutdown);
        let mut expiry = tokio::time::interval(REPLY_EXPIRY / 4);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.clock.deadline(self.replica.poll_timeout());
            let event = tokio::select! {
                biased;
                () = &mut shutdown => Event::Shutdown,
                event = storage_events.recv() => Event::Storage(event),
                Some(message) = peer_messages.recv() => Event::Peer(message),
                Some(request) = client_requests.recv() => Event::Client(request),
                () = sleep_until(deadline) => Event::Timeout,
                _ = expiry.tick() => {
                    self.expire_replies();
                    continue;
                }
            };
            match event {
                Event::Shutdown => {
                    tracing::info!(node = self.id, "shutting down");
                    return Ok(());
                }
                event => self.handle(event)?,
            }
            // Everything else already waiting joins this step.
            let mut budget = MAX_INPUTS_PER_STEP;
            while budget > 0 {
                let event = if let Ok(event) = storage_events.try_recv() {
                    Event::Storage(Some(event))
                } else if let Ok(message) = peer_messages.try_recv() {
                    Event::Peer(message)
                } else if let Ok(request) = client_requests.try_recv() {
                    Event::Client(request)
                } else {
                    break;
                };
                self.handle(event)?;
                budget -= 1;
            }
            self.drain_outputs(&mut storage_events).await?;
        }
    }

    /// Feeds one event to the replica.
    fn handle(&mut self, event: Event) -> Result<(), ServerError> {
        let now = self.clock.now();
        let input = match event {
            Event::Storage(Some(StorageEvent::Durable { seq })) => ReplicaInput::Persisted(seq),
            Event::Storage(Some(StorageEvent::Failed { error })) => {
                return Err(ServerError::StorageFailed(error));
            }
            Event::Storage(None) => return Err(ServerError::StorageStopped),
            Event::Peer((from, message)) => ReplicaInput::Peer(Envelope {
                from,
                to: self.id,
                message,
            }),
            Event::Client(Incoming { request, reply }) => {
                let token = self.next_token;
                self.next_token += 1;
                self.replies.insert(
                    token,
                    Waiting {
                        reply,
                        since: tokio::time::Instant::now(),
                    },
                );
                ReplicaInput::Client {
                    from: token,
                    request,
                }
            }
            Event::Timeout => ReplicaInput::Timeout,
            Event::Shutdown => return Ok(()),
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
                        // The worker refuses writes only after a failure,
                        // which it reports on the event channel.
                        while let Some(event) = storage_events.recv().await {
                            if let StorageEvent::Failed { error } = event {
                                return Err(ServerError::StorageFailed(error));
                            }
                        }
                        return Err(ServerError::StorageStopped);
                    }
                }
                ReplicaOutput::Send(envelope) => {
                    let outcome = self.transport.send(envelope.to, envelope.message);
                    tracing::trace!(to = envelope.to, ?outcome, "message");
                }
                ReplicaOutput::Reply { to, response } => {
                    if let Some(waiting) = self.replies.remove(&to) {
                        waiting.reply.send(response);
                    }
                }
            }
        }
        Ok(())
    }

    /// Forgets requests the replica never answered (their clients gave up).
    fn expire_replies(&mut self) {
        let now = tokio::time::Instant::now();
        self.replies
            .retain(|_, waiting| now.duration_since(waiting.since) < REPLY_EXPIRY);
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
