//! How to run one server: where the cluster is, the folders, and the core's
//! own [`ReplicaConfig`] (Raft timing and limits, snapshots), checked once by
//! the core's rules before anything starts.

use std::ops::Deref;
use std::path::PathBuf;

use distribkv_core::kv::ReplicaConfig;
use distribkv_core::raft::{ConfigError, NodeId};

use crate::storage::StorageOptions;
use crate::transport::ServerAddress;

/// Leader heartbeat interval on a real network, ms.
///
/// The native defaults suit a LAN or one machine: heartbeats every 100 ms
/// and an election timeout drawn from 500–1000 ms. The minimum is five
/// heartbeats, so a follower campaigns only after missing several in a row
/// (a loaded 2-core machine or a slow fsync can delay one by tens of
/// milliseconds), and a crashed leader is replaced within about one second.
/// With CheckQuorum a leader that hears from no majority for 1.2 s steps
/// down (`Config::check_quorum_timeout` in the core: round trips of up to
/// about 1 s are tolerated) and tells its most up-to-date follower to
/// campaign at once.
pub const DEFAULT_HEARTBEAT_MS: u64 = 100;
/// Lower bound of the election timeout on a real network, ms (see
/// [`DEFAULT_HEARTBEAT_MS`]).
pub const DEFAULT_ELECTION_MIN_MS: u64 = 500;
/// Upper bound (exclusive) of the election timeout on a real network, ms.
pub const DEFAULT_ELECTION_MAX_MS: u64 = 1000;

/// How to run one server. [`ServerConfig::validate`] turns it into the
/// [`ValidConfig`] that [`run`](super::run) takes.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// A new cluster: every member's address, in id order (this node's
    /// included). Empty for a node that joins, or that restarts on a data
    /// folder (which knows the members).
    pub peers: Vec<ServerAddress>,
    /// The address to listen on, when it is not this node's in `peers`
    /// (a node that joins); by default the address the configuration has
    /// for this node.
    pub listen: Option<ServerAddress>,
    /// Members to ask for the configuration, for a node that joins an
    /// existing cluster: it waits until it is added.
    pub join: Vec<ServerAddress>,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The certificate folder (needs the CA and the node certificate).
    pub certs_dir: PathBuf,
    /// The replica: `replica.raft.id` is this node's id, its 1-based
    /// position in `peers`. The members are the positions of `peers`, all
    /// voters: [`ServerConfig::validate`] sets `replica.raft.voters` and
    /// `learners` from them.
    pub replica: ReplicaConfig,
    /// Storage tuning.
    pub storage: StorageOptions,
    /// Where to serve `/metrics`, `/livez` and `/readyz` over HTTP, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl ServerConfig {
    /// Node `id` of the cluster `peers` with the native defaults: the timing
    /// of [`DEFAULT_HEARTBEAT_MS`], the core's other defaults (a snapshot
    /// every 10,000 entries, PreVote and CheckQuorum on, lease reads off),
    /// and the default storage options.
    pub fn new(
        id: NodeId,
        peers: Vec<ServerAddress>,
        data_dir: PathBuf,
        certs_dir: PathBuf,
    ) -> ServerConfig {
        let mut replica = ReplicaConfig::new(id, 1..=peers.len() as NodeId);
        replica.raft.heartbeat_interval = DEFAULT_HEARTBEAT_MS;
        replica.raft.election_timeout_min = DEFAULT_ELECTION_MIN_MS;
        replica.raft.election_timeout_max = DEFAULT_ELECTION_MAX_MS;
        ServerConfig {
            peers,
            listen: None,
            join: Vec::new(),
            data_dir,
            certs_dir,
            replica,
            storage: StorageOptions::default(),
            metrics_addr: None,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.replica.raft.id
    }

    /// Makes every position of `peers` a voter, then checks the
    /// configuration by the core's rules
    /// ([`Config::validate`](distribkv_core::raft::Config::validate)).
    /// Without `peers` (a node that joins or restarts) the members are
    /// known only at start: the rules are checked with this node as the
    /// only voter, then again with the real members.
    pub fn validate(mut self) -> Result<ValidConfig, ConfigError> {
        self.replica.raft.voters = if self.peers.is_empty() {
            vec![self.id()]
        } else {
            (1..=self.peers.len() as NodeId).collect()
        };
        self.replica.raft.learners.clear();
        self.replica.raft.validate()?;
        Ok(ValidConfig(self))
    }
}

/// A [`ServerConfig`] that passed [`ServerConfig::validate`].
#[derive(Debug, Clone)]
pub struct ValidConfig(ServerConfig);

impl ValidConfig {
    /// This node's own address: `listen`, else its position in `peers`
    /// (`None` for a node that learns it from its configuration).
    pub fn own_address(&self) -> Option<&ServerAddress> {
        self.0
            .listen
            .as_ref()
            .or_else(|| self.0.peers.get(self.0.id() as usize - 1))
    }
}

impl Deref for ValidConfig {
    type Target = ServerConfig;

    fn deref(&self) -> &ServerConfig {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: u16) -> Vec<ServerAddress> {
        (1..=n)
            .map(|port| ServerAddress::new(([127, 0, 0, 1], port).into()))
            .collect()
    }

    #[test]
    fn the_core_rules_decide() {
        let config = |id| ServerConfig::new(id, peers(3), "d".into(), "c".into());
        let valid = config(3).validate().unwrap();
        assert_eq!(valid.own_address().unwrap().addr.port(), 3);
        assert_eq!(
            config(4).validate().unwrap_err(),
            ConfigError::NotAMember(4)
        );
        assert_eq!(config(0).validate().unwrap_err(), ConfigError::ZeroId);
        let mut slow_heartbeat = config(1);
        slow_heartbeat.replica.raft.heartbeat_interval = DEFAULT_ELECTION_MIN_MS;
        assert!(matches!(
            slow_heartbeat.validate(),
            Err(ConfigError::HeartbeatInterval { .. })
        ));
    }
}
