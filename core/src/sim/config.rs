//! How a simulated cluster is configured, and why a simulator call is refused.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::clock::NodeClock;
use super::network::NetworkConfig;
use crate::kv::StoreLimits;
use crate::raft::{Config, NodeId, Rejected};

/// How a simulated cluster behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of replicas, 1 to 9. Node ids are `1..=nodes`.
    pub nodes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// The Raft configuration every node runs with (timing, PreVote,
    /// CheckQuorum, lease reads, message and snapshot sizes). Its
    /// membership fields (`id`, `voters`, `learners`, `addresses`) are set
    /// for each node by [`SimConfig::node_config`]; the simulator validates
    /// the result once, when it is built.
    pub raft: Config,
    /// Network behaviour.
    pub network: NetworkConfig,
    /// Time an fsync takes, ms, drawn per sync.
    pub disk_latency: (u64, u64),
    /// Snapshot after this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Each node's clock, by node id (`clocks[0]` is node 1's); nodes
    /// without one read the simulator's time exactly. Leases are safe while
    /// the clocks stay within `raft.max_clock_drift_percent` of each other
    /// ([`NodeClock::within_drift_bound`]).
    pub clocks: Vec<NodeClock>,
    /// Client attempt timeout, ms.
    pub client_attempt_timeout: u64,
    /// Clients send reads to any node, followers included
    /// ([`ClerkConfig::follower_reads`](crate::kv::ClerkConfig::follower_reads)).
    pub follower_reads: bool,
    /// Clients give up after this long (`None`: retry forever), ms.
    pub client_give_up: Option<u64>,
    /// Run the safety checkers after every event.
    pub check_safety: bool,
    /// Keep this many trace lines (0: none).
    pub trace_capacity: usize,
    /// State machine limits.
    pub limits: StoreLimits,
    /// Feed every packet that reaches a node at the same instant in one
    /// batch before draining its outputs, as a driver reading all ready
    /// messages would (fewer, bigger writes and messages).
    pub batch_deliveries: bool,
    /// Events allowed at one virtual instant before the run is reported as
    /// a livelock (0: no limit, for zero-latency benchmarks).
    pub max_events_per_instant: u64,
    /// A node that lost its disk ([`Sim::lose_disk`](super::Sim::lose_disk)) never runs again
    /// under its id (on by default; off only to show what the checkers see
    /// when a blank node rejoins as if nothing happened).
    pub retire_lost_disks: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            seed: 0,
            raft: Config {
                snapshot_chunk_bytes: 16 * 1024,
                ..Config::new(1, 1..=5)
            },
            network: NetworkConfig::default(),
            disk_latency: (1, 3),
            snapshot_every: 1000,
            clocks: Vec::new(),
            client_attempt_timeout: 500,
            follower_reads: false,
            client_give_up: None,
            check_safety: true,
            trace_capacity: 0,
            limits: StoreLimits::default(),
            max_events_per_instant: 100_000,
            batch_deliveries: true,
            retire_lost_disks: true,
        }
    }
}

impl SimConfig {
    /// Node `id`'s Raft configuration: [`SimConfig::raft`] with the
    /// simulated cluster's initial membership (every node `1..=nodes` a
    /// voter, no addresses).
    pub fn node_config(&self, id: NodeId) -> Config {
        Config {
            id,
            voters: (1..=self.nodes as NodeId).collect(),
            learners: Vec::new(),
            addresses: Vec::new(),
            ..self.raft.clone()
        }
    }
}

/// Why a simulator call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The configuration is invalid.
    Config(String),
    /// No such node.
    UnknownNode(u64),
    /// The node is down.
    NodeDown(NodeId),
    /// The node is already up.
    NodeUp(NodeId),
    /// The node lost its disk and may not rejoin under its id.
    Retired(NodeId),
    /// No such client.
    UnknownClient(u64),
    /// No leader is known.
    NoLeader,
    /// The partition groups are malformed.
    BadPartition(String),
    /// A rate is not a probability, or a range is empty.
    BadValue(String),
    /// The node refused the request.
    Rejected(Rejected),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Config(why) => write!(f, "invalid configuration: {why}"),
            SimError::UnknownNode(id) => write!(f, "unknown node {id}"),
            SimError::NodeDown(id) => write!(f, "node {id} is down"),
            SimError::NodeUp(id) => write!(f, "node {id} is already up"),
            SimError::Retired(id) => write!(
                f,
                "node {id} lost its disk: it may rejoin only as a new member, under a new id"
            ),
            SimError::UnknownClient(id) => write!(f, "unknown client {id}"),
            SimError::NoLeader => write!(f, "no leader right now"),
            SimError::BadPartition(why) => write!(f, "bad partition: {why}"),
            SimError::BadValue(why) => write!(f, "{why}"),
            SimError::Rejected(rejected) => write!(f, "{rejected}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SimError {}

pub(super) fn check_probability(what: &str, value: f64) -> Result<(), SimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(SimError::BadValue(format!(
            "{what} must be between 0 and 1, not {value}"
        )))
    }
}
