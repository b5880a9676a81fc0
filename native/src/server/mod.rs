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
//! # Files
//!
//! - this module: [`run`], the steps from a [`ValidConfig`] to a serving
//!   node and back;
//! - [`config`]: [`ServerConfig`], the core's
//!   [`ReplicaConfig`](distribkv_core::kv::ReplicaConfig) inside it;
//! - `driver`: the step loop;
//! - `waiting`: the client requests waiting for an answer, and what a
//!   refused storage write means (shared with the sharded host's loop).
//!
//! # Stopping
//!
//! On SIGINT or SIGTERM ([`run`]'s `shutdown` future) the server stops
//! accepting connections, lets the storage worker commit what is queued,
//! and returns `Ok`. A storage failure (I/O error, disk full) stops it with
//! [`ServerError::Storage`]: nothing after the last durable write was
//! acknowledged to anyone, so nothing acknowledged is lost.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use distribkv_core::kv::{
    ClientRequest as KvRequest, ClientResponse as KvResponse, Replica, ReplicaError,
};
use distribkv_core::raft::{Membership, Message, NodeId, PersistedState};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::clock::Clock;
use crate::storage::{Identity, RaftStorage, StorageError, StorageEvent, StorageWorker};
use crate::tls::{CertError, CertSet};
use crate::transport::{
    Bound, PeerTransport, PeerTransportConfig, ServerAddress, TransportError, TransportSettings,
};

pub mod config;
mod driver;
pub mod members;
pub mod metrics;
pub(crate) mod step;
pub(crate) mod waiting;

pub use config::{
    DEFAULT_ELECTION_MAX_MS, DEFAULT_ELECTION_MIN_MS, DEFAULT_HEARTBEAT_MS, ServerConfig,
    ValidConfig,
};
use driver::Driver;

/// Inputs fed to the replica in one step before its outputs are drained.
pub const MAX_INPUTS_PER_STEP: usize = 4096;

/// Writes queued for the storage worker before the step loop waits.
const STORAGE_QUEUE: usize = 4096;

/// Why a server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
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
    /// Another running server holds the data folder.
    #[error(
        "data folder {dir} is in use by another running server (two servers on one folder would corrupt its log)"
    )]
    DataDirInUse {
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
    /// This node id was removed from the cluster: it never serves again.
    #[error(
        "node {id} was removed from the cluster and cannot serve again (ids are never reused: start a new machine with a new id and --join)"
    )]
    Removed {
        /// The node's id.
        id: NodeId,
    },
    /// The data folder is new and nothing says who the members are.
    #[error(
        "{dir} holds no cluster yet: give --peers (the members of a new cluster) or --join (members of the cluster to join)"
    )]
    NoMembers {
        /// The data folder.
        dir: PathBuf,
    },
    /// The members file of the data folder cannot be read or written.
    #[error("{path}: {reason}")]
    MembersFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Joining the cluster failed.
    #[error("cannot join the cluster: {0}")]
    Join(String),
    /// The node does not know which address to listen on.
    #[error("node {id} has no address in the configuration: give --listen")]
    NoAddress {
        /// The node's id.
        id: NodeId,
    },
    /// An address in the configuration or on the command line is bad.
    #[error("{0}")]
    Address(#[from] crate::addr::AddressError),
    /// The snapshot left by `snapshot restore` cannot be installed.
    #[error("{path}: {reason}")]
    Restore {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The metrics address cannot be bound.
    #[error("--metrics-addr {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl ServerError {
    /// Whether the server refused to start on what it was given (a removed
    /// id, a folder without a cluster), as opposed to failing while
    /// running: the command then exits 2.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ServerError::Removed { .. }
                | ServerError::DataDirInUse { .. }
                | ServerError::NoMembers { .. }
                | ServerError::NoAddress { .. }
        )
    }
}

/// Runs a server until `shutdown` completes (clean stop, `Ok`) or storage
/// fails (`Err`). `ready` is called with the bound address once the node
/// serves.
pub async fn run(
    config: ValidConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let id = config.id();
    tokio::pin!(shutdown);
    let certs = load_certificates(&config)?;
    // Held until the server stops.
    let _folder_lock = lock_data_folder(&config.data_dir)?;
    let (storage, persisted) = open_storage(&config, &certs)?;
    let initial = tokio::select! {
        membership = members::settle(&config, &certs) => membership?,
        () = &mut shutdown => return Ok(()),
    };
    let (storage, persisted) = install_restored(&config, &certs, storage, persisted, &initial)?;
    let clock = Clock::start();
    let replica = start_replica(&config, &initial, &clock, persisted)?;
    let own = own_address(&config, &replica, &initial)?;
    let metrics = match config.metrics_addr {
        Some(addr) => Some(serve_metrics(id, addr).await?),
        None => None,
    };
    let (worker, storage_events) = spawn_storage(
        &config,
        storage,
        metrics.as_ref().map(|(metrics, _)| metrics),
    )?;
    let (transport, inbound) = match bind_transport(&config, &own, &certs) {
        Ok(bound) => bound,
        Err(error) => {
            let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
            return Err(error.into());
        }
    };
    ready(transport.local_addr());
    tracing::info!(node = id, addr = %transport.local_addr(), members = ?replica.node().membership().voters, learners = ?replica.node().membership().learners, "serving");

    let (metrics, metrics_task) = metrics.unzip();
    let mut driver = Driver::new(
        id,
        clock,
        replica,
        transport,
        worker,
        metrics,
        config.certs_dir.clone(),
    );
    let outcome = driver
        .run(
            step::Inputs {
                storage: storage_events,
                peers: inbound.peer_messages,
                clients: inbound.client_requests,
            },
            shutdown,
        )
        .await;
    stop(driver, &config, metrics_task, outcome).await
}

/// Stops the driver (and its storage worker and transport) and the
/// metrics endpoint, leaves the removal mark if the node was removed, and
/// logs how the node stopped.
async fn stop(
    driver: Driver,
    config: &ValidConfig,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    outcome: Result<(), ServerError>,
) -> Result<(), ServerError> {
    let id = config.id();
    let removed = driver.is_removed();
    driver.stop().await;
    if removed {
        leave_removal_mark(config, id);
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    match &outcome {
        Ok(()) => tracing::info!(node = id, "stopped"),
        Err(error) => tracing::error!(node = id, "{error}"),
    }
    outcome
}

/// The file a node leaves in its data folder when it stops on its
/// committed removal: it then refuses to start on that folder again.
pub const REMOVED_FILE: &str = "removed";

/// The address this node listens on: `--listen`, else its own in the
/// membership it recovered, else the one the cluster it joined gave it.
fn own_address(
    config: &ValidConfig,
    replica: &Replica,
    initial: &Membership,
) -> Result<ServerAddress, ServerError> {
    let id = config.id();
    if let Some(listen) = &config.listen {
        return Ok(listen.clone());
    }
    // Not `--peers` first: once the data folder holds the members, they
    // are ignored, and a node listening where they say, not where its
    // peers send, would be cut off.
    let known = replica
        .node()
        .membership()
        .address(id)
        .or_else(|| initial.address(id));
    match known {
        Some(text) => Ok(crate::addr::parse_address(text)?),
        None => config
            .own_address()
            .cloned()
            .ok_or(ServerError::NoAddress { id }),
    }
}

/// Binds `addr` and serves the metrics and health checks there from a task
/// of their own; returns the metrics the step loop updates, and that task.
async fn serve_metrics(
    id: NodeId,
    addr: SocketAddr,
) -> Result<(Arc<metrics::Metrics>, tokio::task::JoinHandle<()>), ServerError> {
    let (metrics, task, bound) = metrics::start(addr)
        .await
        .map_err(|source| ServerError::Metrics { addr, source })?;
    tracing::info!(node = id, addr = %bound, "serving /metrics, /livez and /readyz");
    Ok((metrics, task))
}

/// Leaves [`REMOVED_FILE`] in the data folder of a node that stopped on its
/// committed removal (a warning if it cannot).
fn leave_removal_mark(config: &ServerConfig, id: NodeId) {
    let mark = config.data_dir.join(REMOVED_FILE);
    let text = format!("node {id} was removed from the cluster; it never serves again\n");
    if let Err(error) = crate::fsutil::write_atomically(&mark, text.as_bytes()) {
        tracing::warn!(node = id, path = %mark.display(), "cannot leave the removal mark: {error}");
    }
}

/// Loads the certificate folder, which must hold a node certificate.
fn load_certificates(config: &ServerConfig) -> Result<CertSet, ServerError> {
    let certs = CertSet::load_for_server(&config.certs_dir).map_err(|source| {
        ServerError::Certificates {
            dir: config.certs_dir.clone(),
            source,
        }
    })?;
    if !certs.has_node_identity() {
        return Err(ServerError::NoNodeCertificate {
            dir: config.certs_dir.clone(),
        });
    }
    Ok(certs)
}

/// Creates the data folder if missing and locks it for this process.
fn lock_data_folder(dir: &std::path::Path) -> Result<std::fs::File, ServerError> {
    crate::fsutil::lock_folder(dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::WouldBlock {
            ServerError::DataDirInUse {
                dir: dir.to_owned(),
            }
        } else {
            ServerError::Storage {
                dir: dir.to_owned(),
                source: StorageError::io("lock", dir, source),
            }
        }
    })
}

/// Opens (or creates) the data folder as this node of this cluster and
/// recovers what it holds.
fn open_storage(
    config: &ServerConfig,
    certs: &CertSet,
) -> Result<(RaftStorage, PersistedState), ServerError> {
    let identity = Identity {
        node_id: config.id(),
        cluster_id: certs.cluster_id().0,
    };
    let (storage, persisted) =
        RaftStorage::open(&config.data_dir, identity, config.storage.clone()).map_err(
            |source| ServerError::Storage {
                dir: config.data_dir.clone(),
                source,
            },
        )?;
    tracing::info!(
        node = config.id(),
        dir = %config.data_dir.display(),
        term = persisted.hard_state.term,
        voted_for = ?persisted.hard_state.voted_for,
        snapshot = persisted.snapshot.as_ref().map_or(0, |s| s.meta.index),
        last_index = persisted.last_index(),
        "recovered from storage"
    );
    Ok((storage, persisted))
}

/// A data folder made by `snapshot restore` holds the snapshot to start
/// from: at the first start it becomes the node's stored snapshot (with
/// the configuration of `--peers`), then the file goes.
fn install_restored(
    config: &ServerConfig,
    certs: &CertSet,
    mut storage: RaftStorage,
    persisted: PersistedState,
    membership: &distribkv_core::raft::Membership,
) -> Result<(RaftStorage, PersistedState), ServerError> {
    let path = config.data_dir.join(crate::backup::RESTORE_FILE);
    if !path.exists() {
        return Ok((storage, persisted));
    }
    let restore_error = |reason: String| ServerError::Restore {
        path: path.clone(),
        reason,
    };
    let fresh = persisted.snapshot.is_none()
        && persisted.entries.is_empty()
        && persisted.hard_state.term == 0;
    if fresh {
        let backup =
            crate::backup::Backup::load(&path).map_err(|e| restore_error(e.to_string()))?;
        let write = distribkv_core::raft::Write {
            seq: 1,
            snapshot: Some(Box::new(distribkv_core::raft::Snapshot {
                meta: distribkv_core::raft::SnapshotMeta {
                    index: backup.index,
                    term: backup.term,
                    membership: membership.clone(),
                },
                data: backup.data,
            })),
            hard_state: Some(distribkv_core::raft::HardState {
                term: backup.term,
                voted_for: None,
            }),
            entries: Vec::new(),
        };
        storage
            .append(&write)
            .and_then(|()| storage.sync())
            .map_err(|e| restore_error(e.to_string()))?;
        tracing::info!(
            node = config.id(),
            index = backup.index,
            term = backup.term,
            "installed the restored snapshot"
        );
    }
    drop(storage);
    std::fs::remove_file(&path).map_err(|e| restore_error(e.to_string()))?;
    open_storage(config, certs)
}

/// The replica, restarted from what storage recovered, with the membership
/// settled at start-up; a node removed for good is refused.
fn start_replica(
    config: &ValidConfig,
    initial: &Membership,
    clock: &Clock,
    persisted: PersistedState,
) -> Result<Replica, ServerError> {
    let mut replica_config = config.replica.clone();
    replica_config.raft.voters = initial.voters.clone();
    replica_config.raft.learners = initial.learners.clone();
    replica_config.raft.addresses = initial.addresses.clone();
    let seed = crate::transport::random_u64();
    let replica = Replica::restart(replica_config, seed, clock.now(), persisted)?;
    // Removed for good: the node stopped on its committed removal (and
    // left the mark), or its snapshot, committed, says so. A removal that
    // is only in its log may have been truncated away since: the node
    // starts and learns from the leader.
    if config.data_dir.join(REMOVED_FILE).exists() || replica.node().is_removed() {
        return Err(ServerError::Removed { id: config.id() });
    }
    Ok(replica)
}

/// Starts the storage worker, its fsync and snapshot times observed by the
/// metrics if they are served.
fn spawn_storage(
    config: &ServerConfig,
    storage: RaftStorage,
    metrics: Option<&Arc<metrics::Metrics>>,
) -> Result<(StorageWorker, UnboundedReceiver<StorageEvent>), ServerError> {
    let observer = metrics::StorageTimes::observer(metrics);
    StorageWorker::spawn_observed(storage, STORAGE_QUEUE, observer).map_err(|source| {
        ServerError::Storage {
            dir: config.data_dir.clone(),
            source,
        }
    })
}

/// Binds the node's own address and starts dialing its peers. An address
/// this machine does not have (the name resolves to a NAT or load balancer
/// address) falls back to every interface, same port.
fn bind_transport(
    config: &ValidConfig,
    own: &ServerAddress,
    certs: &CertSet,
) -> Result<Bound<Message, KvRequest, KvResponse>, TransportError> {
    // The driver adds the peers from the configuration once it runs.
    let peers = Vec::new();
    let transport_config = PeerTransportConfig {
        node_id: config.id(),
        listen: own.addr,
        peers,
        settings: TransportSettings::for_check_quorum(std::time::Duration::from_millis(
            config.replica.raft.check_quorum_timeout(),
        )),
    };
    let bound = PeerTransport::bind(transport_config.clone(), certs);
    let Err(TransportError::Bind { source, .. }) = &bound else {
        return bound;
    };
    if source.kind() != std::io::ErrorKind::AddrNotAvailable {
        return bound;
    }
    let any: std::net::IpAddr = if own.addr.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    tracing::warn!(addr = %own.addr, "not a local address; listening on {any}");
    PeerTransport::bind(
        PeerTransportConfig {
            listen: SocketAddr::new(any, own.addr.port()),
            ..transport_config
        },
        certs,
    )
}
