//! Sharded distribKV on real hosts: one process holds replicas of many Raft
//! groups (the shard controller's and shard groups') behind the core's
//! multi-group [`Host`], and clients route each key to its group.
//!
//! # A sharded server
//!
//! `distribkv-native server` is sharded when it is given a number of
//! shards (`--shards N`, or `shards = N` in `--config`). Then:
//!
//! - `--peers` lists every host's address in id order, as for a single
//!   group; `--id` is this host's position. Hosts are fixed: sharded
//!   clusters do not change their hosts (`member` is single-group only).
//! - `--controller ID,...` names the hosts holding the controller group
//!   (default: every host), and each `--group GID=ID,...` (repeatable) a
//!   shard group and its hosts, in the group's Raft id order. Every host is
//!   given the same list; each holds the groups that name it. A group
//!   declared here is replicated at once but owns no shard until it is
//!   joined (`shard join`).
//!
//! # The step loop
//!
//! As for a single group (see [`crate::server`]), with the [`Host`] in
//! place of the replica: one task feeds it storage acknowledgements, peer
//! frames, client requests and timeouts, and drains its outputs in order:
//! a [`HostWrite`](distribkv_core::shard::host::HostWrite) (every group's
//! writes of one step) goes to the [`MultiStorageWorker`] (one record per
//! step, one fsync for every step queued meanwhile), a batch (every
//! group's messages for one host) goes to that host as one
//! [`PeerFrame`] on the one connection between the two
//! processes, a reply goes back on its client's stream.
//!
//! # Files
//!
//! - this module: [`ShardedServerConfig`], [`run`];
//! - [`wire`]: peer frames (checked by [`wire::check_frame`]) and the
//!   client protocol;
//! - [`store`]: the host's multi-group write-ahead log (`DATA_DIR/wal/`)
//!   and the conversion of folders written with one log per group;
//! - [`client`]: the routing clerk over QUIC, for the client commands;
//! - `driver`: the step loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use distribkv_core::raft::{NodeId, PersistedState};
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::{CONTROLLER, Host, HostConfig, HostError};

use crate::clock::Clock;
use crate::server::metrics::Metrics;
use crate::storage::multi::{MultiStorage, MultiStorageOptions, MultiStorageWorker};
use crate::storage::{Identity, StorageError, StorageOptions};
use crate::tls::{CertError, CertSet};
use crate::transport::{
    Bound, PeerAddress, PeerTransport, PeerTransportConfig, ServerAddress, TransportError,
    TransportSettings,
};
use wire::{PeerFrame, ShardedReply, ShardedRequest};

pub mod client;
mod driver;
pub mod store;
pub mod wire;

pub use driver::group_statuses;
use store::{HostStoreError, SHARDED_MARKER};

/// Host writes queued for the storage worker before the step loop waits.
const STORAGE_QUEUE: usize = 4096;

/// A sharded server's configuration (checked: see [`ShardedServerConfig::validate`]).
#[derive(Debug, Clone)]
pub struct ShardedServerConfig {
    /// Every host's address, in id order (host `n` at index `n - 1`).
    pub peers: Vec<ServerAddress>,
    /// Every shard group of the cluster with its hosts (not only this host's).
    pub groups: BTreeMap<GroupId, Vec<NodeId>>,
    /// Data folder.
    pub data_dir: PathBuf,
    /// Certificate folder.
    pub certs_dir: PathBuf,
    /// `--metrics-addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// The core's host configuration; its `groups` are filled by
    /// [`ShardedServerConfig::validate`] with the groups naming this host.
    pub host: HostConfig,
    /// Storage options of every group's log.
    pub storage: StorageOptions,
    /// When the multi-group log purges, and which groups it copies.
    pub log_purge: LogPurge,
}

/// The purge limits of a sharded host's multi-group log
/// (`--log-purge-after`, `--log-rewrite-limit`; see
/// [`MultiStorageOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPurge {
    /// [`MultiStorageOptions::purge_after`].
    pub purge_after: u64,
    /// [`MultiStorageOptions::rewrite_limit`].
    pub rewrite_limit: u64,
}

impl Default for LogPurge {
    fn default() -> Self {
        let options = MultiStorageOptions::default();
        LogPurge {
            purge_after: options.purge_after,
            rewrite_limit: options.rewrite_limit,
        }
    }
}

/// The least `--log-purge-after` and `--log-rewrite-limit` taken, bytes.
pub const MIN_LOG_PURGE_BYTES: u64 = 4096;

/// Why a sharded configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardConfigError {
    /// `--id` is not a position in `--peers`.
    #[error("--id {id} is not a position in --peers (1 to {hosts})")]
    NotAHost {
        /// The id.
        id: NodeId,
        /// Number of hosts.
        hosts: usize,
    },
    /// A group names a host that is not in `--peers`.
    #[error("{what} names host {host}, which is not a position in --peers (1 to {hosts})")]
    UnknownHost {
        /// The flag.
        what: String,
        /// The host.
        host: NodeId,
        /// Number of hosts.
        hosts: usize,
    },
    /// A group lists no host, or one twice.
    #[error("{what} must list distinct hosts, at least one")]
    BadServers {
        /// The flag.
        what: String,
    },
    /// Group 0 is the controller's.
    #[error("--group 0: group 0 is the controller's; shard groups are numbered from 1")]
    ReservedGroup,
    /// This host holds nothing.
    #[error("host {id} holds no group: name it in --controller or in a --group")]
    HoldsNothing {
        /// The host.
        id: NodeId,
    },
    /// A purge limit of the log is too small.
    #[error("{flag} {value}: at least {MIN_LOG_PURGE_BYTES} bytes")]
    LogPurgeTooSmall {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: u64,
    },
    /// The core refused the host configuration.
    #[error("{0}")]
    Host(String),
}

impl ShardedServerConfig {
    /// Checks the configuration and fills `host.groups` with this host's.
    pub fn validate(mut self) -> Result<ShardedServerConfig, ShardConfigError> {
        let hosts = self.peers.len();
        let id = self.host.id;
        if id == 0 || id as usize > hosts {
            return Err(ShardConfigError::NotAHost { id, hosts });
        }
        let check = |what: String, servers: &[NodeId]| {
            let distinct: BTreeSet<_> = servers.iter().collect();
            if servers.is_empty() || distinct.len() != servers.len() {
                return Err(ShardConfigError::BadServers { what });
            }
            match servers.iter().find(|&&s| s == 0 || s as usize > hosts) {
                Some(&host) => Err(ShardConfigError::UnknownHost { what, host, hosts }),
                None => Ok(()),
            }
        };
        check("--controller".into(), &self.host.controller)?;
        for (group, servers) in &self.groups {
            if *group == CONTROLLER {
                return Err(ShardConfigError::ReservedGroup);
            }
            check(format!("--group {group}"), servers)?;
        }
        self.host.groups = self
            .groups
            .iter()
            .filter(|(_, servers)| servers.contains(&id))
            .map(|(g, s)| (*g, s.clone()))
            .collect();
        if self.host.groups.is_empty() && !self.host.controller.contains(&id) {
            return Err(ShardConfigError::HoldsNothing { id });
        }
        for (flag, value) in [
            ("--log-purge-after", self.log_purge.purge_after),
            ("--log-rewrite-limit", self.log_purge.rewrite_limit),
        ] {
            if value < MIN_LOG_PURGE_BYTES {
                return Err(ShardConfigError::LogPurgeTooSmall { flag, value });
            }
        }
        // The core's own rules (timing, shard count), on a throwaway host.
        Host::new(self.host.clone(), 0, distribkv_core::time::Instant::ZERO)
            .map_err(|error| ShardConfigError::Host(error.to_string()))?;
        Ok(self)
    }

    /// The groups this host holds, the controller's (0) among them if it
    /// is one of its servers.
    pub fn held_groups(&self) -> BTreeSet<GroupId> {
        let mut held: BTreeSet<GroupId> = self.host.groups.keys().copied().collect();
        if self.host.controller.contains(&self.host.id) {
            held.insert(CONTROLLER);
        }
        held
    }
}

/// Why a sharded server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ShardServerError {
    /// The certificate folder cannot be used by a node.
    #[error("certificates in {dir}: {source}")]
    Certificates {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: CertError,
    },
    /// The data folder is not a sharded host's, or another host's.
    #[error("data folder {dir}: {reason}")]
    DataDir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// The host's log could not be opened, recovered or converted.
    #[error("data folder {dir}: {source}")]
    Storage {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: HostStoreError,
    },
    /// The recovered state does not make a valid host.
    #[error("cannot start the host: {0}")]
    Host(#[from] HostError),
    /// The transport could not start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Storage failed while running; the host stopped.
    #[error("storage failed, host stopped (nothing acknowledged was lost): {0}")]
    StorageFailed(StorageError),
    /// The storage worker stopped without saying why.
    #[error("the storage worker stopped unexpectedly")]
    StorageStopped,
    /// The metrics address cannot be bound.
    #[error("--metrics-addr {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl ShardServerError {
    /// Whether the server refused to start on what it was given (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ShardServerError::DataDir { .. }
                | ShardServerError::Storage {
                    source: HostStoreError::UnknownGroupFolder { .. },
                    ..
                }
        )
    }
}

/// Checks (or, for a new folder, writes) the marker of a sharded host's data
/// folder: a single-group node's folder, or another host's, is refused.
fn claim_data_dir(config: &ShardedServerConfig) -> Result<(), ShardServerError> {
    let dir = &config.data_dir;
    let refuse = |reason: String| ShardServerError::DataDir {
        dir: dir.clone(),
        reason,
    };
    let io = |e: std::io::Error| refuse(e.to_string());
    if dir.join("identity").exists() {
        return Err(refuse(
            "it holds a single-group node's data; a sharded host (--shards) needs a folder of its own".into(),
        ));
    }
    let marker = dir.join(SHARDED_MARKER);
    let expected = format!("host {}\n", config.host.id);
    match std::fs::read_to_string(&marker) {
        Ok(text) if text == expected => Ok(()),
        Ok(text) => Err(refuse(format!(
            "it belongs to {} (the sharded marker says so), not host {}",
            text.trim(),
            config.host.id
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?;
            crate::fsutil::write_atomically(&marker, expected.as_bytes()).map_err(io)
        }
        Err(error) => Err(io(error)),
    }
}

/// Runs a sharded host until `shutdown` completes (`Ok`) or storage fails.
/// `ready` is called with the bound address once the host serves.
pub async fn run(
    config: ShardedServerConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ShardServerError> {
    let id = config.host.id;
    let certs = CertSet::load_for_server(&config.certs_dir).map_err(|source| {
        ShardServerError::Certificates {
            dir: config.certs_dir.clone(),
            source,
        }
    })?;
    // Held until the host stops: two hosts on one folder would both write its log.
    let _folder_lock = crate::fsutil::lock_folder(&config.data_dir).map_err(|error| {
        ShardServerError::DataDir {
            dir: config.data_dir.clone(),
            reason: if error.kind() == std::io::ErrorKind::WouldBlock {
                "it is in use by another running server (two hosts on one folder would corrupt its log)"
                    .to_string()
            } else {
                format!("cannot lock it: {error}")
            },
        }
    })?;
    let mut held = config.held_groups();
    let (store, persisted) = open_store(&config, &certs, &held)?;
    let clock = Clock::start();
    let seed = crate::transport::random_u64();
    let mut host_config = config.host.clone();
    host_config.retired = store.retired().collect();
    held.extend(store.retired());
    let host = Host::restart(host_config, seed, clock.now(), persisted)?;

    let metrics = match config.metrics_addr {
        Some(addr) => Some(serve_metrics(id, addr).await?),
        None => None,
    };
    let observer = crate::server::metrics::StorageTimes::observer(metrics.as_ref().map(|(m, _)| m));
    let (worker, storage_events) = MultiStorageWorker::spawn(store, STORAGE_QUEUE, observer)
        .map_err(|e| ShardServerError::Storage {
            dir: config.data_dir.clone(),
            source: e.into(),
        })?;
    let (transport, inbound) = match bind_transport(&config, &certs) {
        Ok(bound) => bound,
        Err(error) => {
            let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
            return Err(error.into());
        }
    };
    ready(transport.local_addr());
    tracing::info!(
        host = id,
        addr = %transport.local_addr(),
        shards = config.host.shards,
        groups = ?driver_groups(&host),
        "serving (sharded)"
    );
    let (metrics, metrics_task) = metrics.unzip();
    let hosts = host_addresses(&config);
    let mut driver = driver::Driver {
        id,
        clock,
        host,
        transport,
        worker,
        metrics,
        hosts,
        held,
        replies: crate::server::waiting::WaitingReplies::new(),
        refused: 0,
        refusal_logged: HashMap::new(),
        peers_sampled: tokio::time::Instant::now(),
        snapshot_asked: None,
    };
    let outcome = driver
        .run(
            crate::server::step::Inputs {
                storage: storage_events,
                peers: inbound.peer_messages,
                clients: inbound.client_requests,
            },
            shutdown,
        )
        .await;
    driver.stop().await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    match &outcome {
        Ok(()) => tracing::info!(host = id, "stopped"),
        Err(error) => tracing::error!(host = id, "{error}"),
    }
    outcome
}

/// Claims the data folder for a sharded host and opens the store of the
/// groups held here; logs what each group recovered.
fn open_store(
    config: &ShardedServerConfig,
    certs: &CertSet,
    held: &BTreeSet<GroupId>,
) -> Result<(MultiStorage, BTreeMap<GroupId, PersistedState>), ShardServerError> {
    let id = config.host.id;
    claim_data_dir(config)?;
    let identity = Identity {
        node_id: id,
        cluster_id: certs.cluster_id().0,
    };
    let options = MultiStorageOptions {
        storage: config.storage.clone(),
        purge_after: config.log_purge.purge_after,
        rewrite_limit: config.log_purge.rewrite_limit,
        ..MultiStorageOptions::default()
    };
    let (store, persisted) =
        store::open(&config.data_dir, identity, options, held).map_err(|source| {
            ShardServerError::Storage {
                dir: config.data_dir.clone(),
                source,
            }
        })?;
    for (group, state) in &persisted {
        tracing::info!(
            host = id,
            group,
            term = state.hard_state.term,
            snapshot = state.snapshot.as_ref().map_or(0, |s| s.meta.index),
            last_index = state.last_index(),
            "recovered group"
        );
    }
    Ok((store, persisted))
}

/// Binds the metrics address and serves the metrics there.
async fn serve_metrics(
    id: NodeId,
    addr: SocketAddr,
) -> Result<(Arc<Metrics>, tokio::task::JoinHandle<()>), ShardServerError> {
    let (metrics, task, bound) = crate::server::metrics::start(addr)
        .await
        .map_err(|source| ShardServerError::Metrics { addr, source })?;
    tracing::info!(host = id, addr = %bound, "serving /metrics, /livez and /readyz");
    Ok((metrics, task))
}

/// Binds this host's own address and starts dialing the other hosts.
fn bind_transport(
    config: &ShardedServerConfig,
    certs: &CertSet,
) -> Result<Bound<PeerFrame, ShardedRequest, ShardedReply>, TransportError> {
    let id = config.host.id;
    let own = &config.peers[id as usize - 1];
    let peers = config
        .peers
        .iter()
        .enumerate()
        .map(|(index, address)| PeerAddress {
            id: index as NodeId + 1,
            address: address.clone(),
        })
        .filter(|peer| peer.id != id)
        .collect();
    PeerTransport::bind(
        PeerTransportConfig {
            node_id: id,
            listen: own.addr,
            peers,
            settings: TransportSettings::for_check_quorum(std::time::Duration::from_millis(
                config.host.raft.check_quorum_timeout(),
            )),
        },
        certs,
    )
}

/// Every host's `name:port`, by id.
pub(crate) fn host_addresses(config: &ShardedServerConfig) -> Vec<(NodeId, String)> {
    config
        .peers
        .iter()
        .enumerate()
        .map(|(index, address)| (index as NodeId + 1, crate::addr::address_text(address)))
        .collect()
}

/// The groups a host holds, for its log lines.
fn driver_groups(host: &Host) -> Vec<GroupId> {
    host.nodes().map(|(group, _)| group).collect()
}
