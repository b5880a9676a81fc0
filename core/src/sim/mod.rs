//! A seeded, deterministic simulator of a whole distribKV cluster: replicas,
//! clients, a network and disks, on a virtual clock that jumps from one
//! event to the next. Same seed and same calls give the same run, bit for
//! bit, on every platform ([`Sim::trace_hash`] proves it).
//!
//! The simulator runs the same [`Replica`] and [`Clerk`] code as the native
//! server and the browser. After every event it checks Raft's safety
//! properties ([`invariants`]); client histories are checked for
//! linearizability with [`crate::check`].
//!
//! ```
//! use distribkv_core::sim::{Sim, SimConfig};
//! let mut sim = Sim::new(SimConfig { nodes: 3, seed: 7, ..SimConfig::default() });
//! sim.run_for(1_000);
//! let leader = sim.leader().expect("a leader within a second");
//! let op = sim.put("x", "1");
//! sim.run_for(500);
//! assert!(sim.history()[op as usize - 1].is_complete());
//! sim.crash(leader).unwrap();
//! sim.run_for(1_000);
//! assert_ne!(sim.leader(), Some(leader));
//! assert!(sim.violations().is_empty());
//! ```

mod clients;
pub mod clock;
pub mod disk;
mod faults;
pub mod history;
pub mod invariants;
pub mod network;
mod recovery;
mod run;
pub mod sharded;
pub mod sweep;
pub mod trace;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use clock::NodeClock;
pub use disk::Disk;
pub use history::{HistoryEntry, OpStatus, Workload};
pub use invariants::SafetyChecker;
pub use network::{Endpoint, Network, NetworkConfig};

use crate::check;
use crate::hash::Fnv;
use crate::kv::{
    Clerk, ClientRequest, ClientResponse, Operation, Replica, ReplicaConfig, ReplicaOutput,
    StoreLimits,
};
use crate::raft::{Config, LogIndex, Message, NodeId, Rejected, RoleKind};
use crate::rng::Rng;
use crate::time::Instant;

/// How a simulated cluster behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Number of replicas, 1 to 9. Node ids are `1..=nodes`.
    pub nodes: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Election timeout range, ms.
    pub election_timeout: (u64, u64),
    /// Heartbeat interval, ms.
    pub heartbeat: u64,
    /// Network behaviour.
    pub network: NetworkConfig,
    /// Time an fsync takes, ms, drawn per sync.
    pub disk_latency: (u64, u64),
    /// Snapshot after this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Raft options.
    pub pre_vote: bool,
    /// Raft option: CheckQuorum and leader stickiness.
    pub check_quorum: bool,
    /// Raft option: lease reads.
    pub lease_reads: bool,
    /// Raft option: the clock drift lease reads allow for, in percent
    /// (`Config::max_clock_drift_percent`).
    pub max_clock_drift_percent: u64,
    /// Each node's clock, by node id (`clocks[0]` is node 1's); nodes
    /// without one read the simulator's time exactly. Leases are safe while
    /// the clocks stay within `max_clock_drift_percent` of each other
    /// ([`NodeClock::within_drift_bound`]).
    pub clocks: Vec<NodeClock>,
    /// Most entries per AppendEntries.
    pub max_entries_per_message: usize,
    /// Bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Client attempt timeout, ms.
    pub client_attempt_timeout: u64,
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
    /// A node that lost its disk ([`Sim::lose_disk`]) never runs again
    /// under its id (on by default; off only to show what the checkers see
    /// when a blank node rejoins as if nothing happened).
    pub retire_lost_disks: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            seed: 0,
            election_timeout: (150, 300),
            heartbeat: 50,
            network: NetworkConfig::default(),
            disk_latency: (1, 3),
            snapshot_every: 1000,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            max_clock_drift_percent: 10,
            clocks: Vec::new(),
            max_entries_per_message: 512,
            snapshot_chunk_bytes: 16 * 1024,
            client_attempt_timeout: 500,
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

/// What a packet carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PacketPayload {
    /// Between replicas.
    Raft(Message),
    /// From a client to a replica.
    Request(ClientRequest),
    /// From a replica to a client.
    Response(ClientResponse),
}

/// A packet in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Unique id, in send order.
    pub id: u64,
    /// Sender.
    pub from: Endpoint,
    /// Recipient.
    pub to: Endpoint,
    /// When it was sent.
    pub sent_at: Instant,
    /// When it arrives (unless dropped or cut off).
    pub deliver_at: Instant,
    /// Content.
    pub payload: PacketPayload,
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// Position in the trace (from 1).
    pub seq: u64,
    /// Virtual time.
    pub at: Instant,
    /// Where it happened.
    pub endpoint: Option<Endpoint>,
    /// Short kind: `deliver`, `drop`, `timeout`, `role`, `commit`, `crash`, ...
    pub kind: &'static str,
    /// What to render (packets are rendered only when read).
    detail: TraceDetail,
}

/// The content of a trace line, rendered lazily.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TraceDetail {
    Text(String),
    Packet(Box<Packet>, &'static str),
}

impl TraceLine {
    /// The line's text, e.g. `1->2 AppendEntries term=2 prev=5/1 ...`.
    pub fn text(&self) -> String {
        match &self.detail {
            TraceDetail::Text(text) => text.clone(),
            TraceDetail::Packet(packet, suffix) => format!("{}{suffix}", trace::describe(packet)),
        }
    }
}

/// What happened in one [`Sim::step`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInfo {
    /// Virtual time of the event.
    pub at: Instant,
    /// Where it happened.
    pub endpoint: Option<Endpoint>,
    /// Kind: `deliver`, `timeout`, `disk`, `client`, `workload`.
    pub kind: &'static str,
    /// A one-line description.
    pub text: String,
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Packets sent (before loss).
    pub packets_sent: u64,
    /// Raft RPC requests sent (the MIT labs' RPC count).
    pub rpcs_sent: u64,
    /// Approximate bytes of Raft messages sent.
    pub bytes_sent: u64,
    /// Packets delivered.
    pub delivered: u64,
    /// Packets lost (drop rate, partitions, cuts, down nodes, drops by hand).
    pub dropped: u64,
    /// Disk syncs.
    pub syncs: u64,
    /// Writes lost to crashes.
    pub writes_lost: u64,
}

/// A queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Deliver(u64),
    Synced { node: NodeId, epoch: u64, seq: u64 },
    Workload { client: u64 },
}

/// One replica and its disk.
#[derive(Clone, Debug)]
struct SimNode {
    replica: Option<Replica>,
    disk: Disk,
    /// What this node's state machine applied over its whole life, as a
    /// tester watching its apply channel would see it: entry digests by index.
    applied: BTreeMap<LogIndex, u64>,
    /// Highest index covered by a snapshot it installed or took.
    snapshot_through: LogIndex,
    /// The configuration it was created with (and restarts with).
    config: ReplicaConfig,
    /// Its clock (kept across restarts: the same machine).
    clock: NodeClock,
    /// It lost its disk and may not run again under its id.
    retired: bool,
}

/// One simulated client.
#[derive(Clone, Debug)]
struct SimClient {
    clerk: Clerk,
    /// History index of the operation in progress.
    current: Option<usize>,
    /// Operations queued behind the current one.
    queue: VecDeque<usize>,
    workload: bool,
    ops: u64,
}

/// The simulated cluster.
#[derive(Clone, Debug)]
pub struct Sim {
    config: SimConfig,
    rng: Rng,
    now: Instant,
    nodes: Vec<SimNode>,
    clients: Vec<SimClient>,
    network: Network,
    queue: BTreeMap<(Instant, u64), Event>,
    in_flight: BTreeMap<u64, Box<Packet>>,
    next_event: u64,
    next_packet: u64,
    history: Vec<HistoryEntry>,
    /// Invocations and completions recorded so far (see [`HistoryEntry::invoked_order`]).
    history_order: u64,
    checker: SafetyChecker,
    trace: VecDeque<TraceLine>,
    trace_seq: u64,
    hash: Fnv,
    stats: SimStats,
    workload: Option<Workload>,
    events_at_now: u64,
    /// Whether the event being processed is described in its [`StepInfo`]
    /// (only for [`Sim::step`]; runs skip the formatting).
    describe_steps: bool,
    /// Reused by the event loop to drain a node's outputs.
    output_buffer: Vec<ReplicaOutput>,
}

impl Sim {
    /// Builds a cluster; panics on an invalid configuration (use [`Sim::try_new`] to get an error).
    pub fn new(config: SimConfig) -> Sim {
        match Sim::try_new(config) {
            Ok(sim) => sim,
            Err(e) => panic!("{e}"),
        }
    }

    /// Builds a cluster of `config.nodes` fresh replicas.
    pub fn try_new(config: SimConfig) -> Result<Sim, SimError> {
        if !(1..=9).contains(&config.nodes) {
            return Err(SimError::Config(format!(
                "nodes must be 1 to 9, not {}",
                config.nodes
            )));
        }
        check_probability("drop rate", config.network.drop_rate)?;
        check_probability("duplicate rate", config.network.duplicate_rate)?;
        if let Some(clock) = config.clocks.iter().find(|c| !c.is_valid()) {
            return Err(SimError::BadValue(format!(
                "a clock must move forward (rate {} ppm)",
                clock.rate_ppm
            )));
        }
        if config.network.latency.0 > config.network.latency.1 {
            return Err(SimError::BadValue(String::from(
                "latency range min must not exceed max",
            )));
        }
        let mut sim = Sim {
            rng: Rng::new(config.seed),
            now: Instant::ZERO,
            nodes: Vec::new(),
            clients: Vec::new(),
            network: Network::new(config.network.clone()),
            queue: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_event: 0,
            next_packet: 1,
            history: Vec::new(),
            history_order: 0,
            checker: SafetyChecker::default(),
            trace: VecDeque::new(),
            trace_seq: 0,
            hash: Fnv::new(),
            stats: SimStats::default(),
            workload: None,
            events_at_now: 0,
            describe_steps: false,
            output_buffer: Vec::new(),
            config,
        };
        // Validate the Raft configuration once, with a clear error.
        sim.replica_config(1)
            .raft
            .validate()
            .map_err(|e| SimError::Config(format!("{e}")))?;
        for id in 1..=sim.config.nodes as NodeId {
            let seed = sim.rng.next_u64();
            let config = sim.replica_config(id);
            let clock = sim.clock_config(id);
            let replica = Replica::new(config.clone(), seed, clock.local(sim.now))
                .map_err(|e| SimError::Config(format!("{e}")))?;
            sim.nodes.push(SimNode {
                replica: Some(replica),
                disk: Disk::default(),
                applied: BTreeMap::new(),
                snapshot_through: 0,
                config,
                clock,
                retired: false,
            });
        }
        Ok(sim)
    }

    fn replica_config(&self, id: NodeId) -> ReplicaConfig {
        let mut raft = Config::new(id, 1..=self.config.nodes as NodeId);
        raft.election_timeout_min = self.config.election_timeout.0;
        raft.election_timeout_max = self.config.election_timeout.1;
        raft.heartbeat_interval = self.config.heartbeat;
        raft.pre_vote = self.config.pre_vote;
        raft.check_quorum = self.config.check_quorum;
        raft.lease_reads = self.config.lease_reads;
        raft.max_clock_drift_percent = self.config.max_clock_drift_percent;
        raft.max_entries_per_message = self.config.max_entries_per_message;
        raft.snapshot_chunk_bytes = self.config.snapshot_chunk_bytes;
        ReplicaConfig {
            raft,
            limits: self.config.limits,
            snapshot_every: self.config.snapshot_every,
            record_applied: self.config.check_safety,
        }
    }

    /// The clock node `id` is configured with.
    fn clock_config(&self, id: NodeId) -> NodeClock {
        self.config
            .clocks
            .get(id as usize - 1)
            .copied()
            .unwrap_or_default()
    }

    /// What node `id`'s clock reads now (`None` for an unknown node).
    pub fn node_clock(&self, id: NodeId) -> Option<Instant> {
        self.nodes
            .get((id as usize).wrapping_sub(1))
            .map(|n| n.clock.local(self.now))
    }

    /// Node `index`'s clock reading now (index from 0).
    pub(crate) fn local_now(&self, index: usize) -> Instant {
        self.nodes[index].clock.local(self.now)
    }

    // ---- time ------------------------------------------------------------

    /// Virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Advances virtual time by `ms`, processing every event on the way.
    /// Returns the number of events processed.
    pub fn run_for(&mut self, ms: u64) -> u64 {
        let until = self.now + ms;
        self.run_until(until)
    }

    /// Processes every event up to `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Instant) -> u64 {
        let mut count = 0;
        while let Some(at) = self.next_event_at() {
            if at > until || self.halted() {
                break;
            }
            self.step_event();
            count += 1;
        }
        self.now = self.now.max(until);
        count
    }

    /// Runs until `condition` holds (checked after every event) or `limit` ms pass.
    /// Returns whether the condition held.
    pub fn run_until_condition(
        &mut self,
        limit: u64,
        mut condition: impl FnMut(&Sim) -> bool,
    ) -> bool {
        let until = self.now + limit;
        loop {
            if condition(self) {
                return true;
            }
            if self.halted() {
                return false;
            }
            match self.next_event_at() {
                Some(at) if at <= until => {
                    self.step_event();
                }
                _ => {
                    self.now = until;
                    return condition(self);
                }
            }
        }
    }

    /// Delivers messages and completes disk syncs until none are pending,
    /// without firing any timer (time advances only as messages need).
    /// Returns the number of events processed (stops after `limit`).
    pub fn stabilize(&mut self, limit: u64) -> u64 {
        let mut count = 0;
        while count < limit {
            let Some((&(at, _), _)) = self.queue.first_key_value() else {
                break;
            };
            self.now = self.now.max(at);
            self.stats.events += 1;
            self.step_queue();
            count += 1;
        }
        count
    }

    // ---- observation -------------------------------------------------------

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `id`'s replica, if it is up.
    pub fn replica(&self, id: NodeId) -> Option<&Replica> {
        self.nodes
            .get((id as usize).wrapping_sub(1))
            .and_then(|n| n.replica.as_ref())
    }

    /// Node `id`'s disk.
    pub fn disk(&self, id: NodeId) -> Option<&Disk> {
        self.nodes
            .get((id as usize).wrapping_sub(1))
            .map(|n| &n.disk)
    }

    /// Every up replica.
    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        self.nodes.iter().filter_map(|n| n.replica.as_ref())
    }

    /// The leader with the highest term among the up nodes, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.replicas()
            .filter(|r| r.node().role() == RoleKind::Leader)
            .max_by_key(|r| r.node().term())
            .map(|r| r.node().id())
    }

    /// Whether the cluster has settled: a leader that committed an entry of
    /// its term and everything in its log, and every up replica has applied
    /// all of it.
    pub fn is_converged(&self) -> bool {
        let Some(leader) = self.leader().and_then(|id| self.replica(id)) else {
            return false;
        };
        let log = leader.node().log();
        if log.term_at(log.commit()) != Some(leader.node().term()) {
            return false;
        }
        let last = log.last_index();
        let membership = leader.node().membership();
        log.commit() == last
            && self
                .replicas()
                .filter(|r| membership.contains(r.node().id()))
                .all(|r| r.node().log().applied() == last)
    }

    /// Up nodes that believe they lead, with their terms.
    pub fn leaders(&self) -> Vec<(NodeId, u64)> {
        self.replicas()
            .filter(|r| r.node().role() == RoleKind::Leader)
            .map(|r| (r.node().id(), r.node().term()))
            .collect()
    }

    /// Packets in flight, by id.
    pub fn in_flight(&self) -> impl Iterator<Item = &Packet> {
        self.in_flight.values().map(|p| &**p)
    }

    /// The packet `id`, if in flight.
    pub fn packet(&self, id: u64) -> Option<&Packet> {
        self.in_flight.get(&id).map(|p| &**p)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Whether a livelock stopped the run (safety violations do not stop it).
    pub fn halted(&self) -> bool {
        let limit = self.config.max_events_per_instant;
        limit > 0 && self.events_at_now >= limit
    }

    /// Safety violations found so far.
    pub fn violations(&self) -> &[String] {
        self.checker.violations()
    }

    /// The safety checker.
    pub fn checker(&self) -> &SafetyChecker {
        &self.checker
    }

    /// A hash of everything that happened: equal for equal runs, on every platform.
    pub fn trace_hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Trace lines after `seq` (only the last `trace_capacity` are kept).
    pub fn trace_since(&self, seq: u64) -> impl Iterator<Item = &TraceLine> {
        self.trace.iter().filter(move |line| line.seq > seq)
    }

    /// Counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The digest ([`crate::raft::Payload::digest`]) of the entry node `id`
    /// applied at `index`, over the node's whole life (crashes included).
    /// Covered by a snapshot: the committed entry's digest.
    /// Recorded only with `check_safety`.
    pub fn applied_digest(&self, id: NodeId, index: LogIndex) -> Option<u64> {
        let node = self.nodes.get((id as usize).wrapping_sub(1))?;
        if let Some(&digest) = node.applied.get(&index) {
            return Some(digest);
        }
        if index <= node.snapshot_through {
            return self.checker.committed_at(index).map(|(_, digest)| digest);
        }
        None
    }

    fn trace_line(
        &mut self,
        endpoint: Option<Endpoint>,
        kind: &'static str,
        text: impl FnOnce() -> String,
    ) {
        if self.config.trace_capacity == 0 {
            return;
        }
        self.push_trace(endpoint, kind, TraceDetail::Text(text()));
    }

    /// Traces a packet event; the packet is rendered only if the line is read.
    fn trace_packet(
        &mut self,
        endpoint: Option<Endpoint>,
        kind: &'static str,
        packet: &Packet,
        suffix: &'static str,
    ) {
        if self.config.trace_capacity == 0 {
            return;
        }
        self.push_trace(
            endpoint,
            kind,
            TraceDetail::Packet(Box::new(packet.clone()), suffix),
        );
    }

    fn push_trace(&mut self, endpoint: Option<Endpoint>, kind: &'static str, detail: TraceDetail) {
        self.trace_seq += 1;
        if self.trace.len() == self.config.trace_capacity {
            self.trace.pop_front();
        }
        self.trace.push_back(TraceLine {
            seq: self.trace_seq,
            at: self.now,
            endpoint,
            kind,
            detail,
        });
    }
}

/// Checks the client history: linearizable (per key, unknown outcomes
/// allowed to take effect or not), and every acknowledged append present
/// exactly once in the final state (read from the replica that applied the
/// most; call it once the cluster has converged, see [`Sim::is_converged`]).
pub fn check_history(sim: &Sim) -> Vec<String> {
    let mut failures = Vec::new();
    let operations = sim.check_operations();
    match check::check_linearizable(&operations, check::Budget::DEFAULT) {
        Ok(_) => {}
        Err(check::CheckError::GaveUp(gave_up)) => {
            failures.push(format!("linearizability: undecided ({gave_up})"))
        }
        Err(error) => failures.push(format!("linearizability: {error}")),
    }
    if let Some(replica) = sim.replicas().max_by_key(|r| r.node().log().applied()) {
        let final_values = replica
            .store()
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let options = check::AppendCheckOptions {
            reject_unexplained_text: true,
        };
        if let Err(error) = check::check_appends(&operations, &final_values, options) {
            failures.push(format!("exactly-once appends: {error}"));
        }
    }
    failures
}

impl Sim {
    /// The client history in the checker's form. Operations refused for
    /// certain (they did not take effect) are left out; pending and
    /// given-up ones have an unknown outcome. Times are the operations'
    /// places in the run's sequence of invocations and completions
    /// ([`HistoryEntry::invoked_order`]), not milliseconds: an operation
    /// invoked in the millisecond another completed, after it, must see
    /// its effect, and counting them as concurrent would let a stale read
    /// through.
    pub fn check_operations(&self) -> Vec<check::Operation> {
        self.history
            .iter()
            .filter(|entry| entry.status() != OpStatus::Failed)
            .map(|entry| {
                let kind = match &entry.operation {
                    Operation::Put { value, .. } => check::OpKind::Put(value.to_vec()),
                    Operation::Append { value, .. } => check::OpKind::Append(value.to_vec()),
                    Operation::Delete { .. } => check::OpKind::Delete,
                    Operation::Get { .. } => check::OpKind::Get,
                };
                let outcome = match (&entry.outcome, entry.completed_order) {
                    (Some(Ok(value)), Some(at)) => check::Outcome::Ok {
                        completed_at: at,
                        value: if entry.operation.is_write() {
                            None
                        } else {
                            value.as_ref().map(|v| v.to_vec())
                        },
                    },
                    _ => check::Outcome::Unknown,
                };
                check::Operation {
                    id: entry.id,
                    client: entry.client,
                    key: entry.operation.key().to_vec(),
                    kind,
                    invoked_at: entry.invoked_order,
                    outcome,
                }
            })
            .collect()
    }

    /// Checks the client history for linearizability.
    pub fn check_linearizability(&self) -> Result<check::Linearizable, check::CheckError> {
        check::check_linearizable(&self.check_operations(), check::Budget::DEFAULT)
    }
}

fn check_probability(what: &str, value: f64) -> Result<(), SimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(SimError::BadValue(format!(
            "{what} must be between 0 and 1, not {value}"
        )))
    }
}
