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
mod config;
pub mod disk;
mod faults;
pub mod history;
pub mod invariants;
pub mod network;
mod observe;
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

use config::check_probability;

pub use clock::NodeClock;
pub use config::{SimConfig, SimError};
pub use disk::Disk;
pub use history::{HistoryEntry, OpStatus, Workload, check_history, check_history_within};
pub use invariants::SafetyChecker;
pub use network::{Endpoint, Network, NetworkConfig, Packet, PacketPayload};
pub use trace::TraceLine;

use crate::hash::Fnv;
use crate::kv::{Clerk, Replica, ReplicaConfig, ReplicaOutput};
use crate::raft::{LogIndex, NodeId};
use crate::rng::Rng;
use crate::time::Instant;

/// The index of node (or client) `id` in a list numbered from 1, or
/// `usize::MAX` (no such entry) for 0 and for an id a `usize` cannot hold:
/// on 32-bit targets (wasm) `id as usize` would wrap 2^32 + 1 to node 1.
pub(crate) fn index_of(id: u64) -> usize {
    usize::try_from(id).map_or(usize::MAX, |id| id.wrapping_sub(1))
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
    /// Shared with forks (see [`check::Chunked`]).
    history: crate::check::Chunked<HistoryEntry>,
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
            history: crate::check::Chunked::new(),
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
            let config = sim.replica_config(id);
            sim.push_node(id, config)?;
        }
        Ok(sim)
    }

    /// Adds node `id` (the next one) with `config`, a fresh replica on a
    /// blank disk, seeded from the simulator's generator.
    fn push_node(&mut self, id: NodeId, config: ReplicaConfig) -> Result<(), SimError> {
        let seed = self.rng.next_u64();
        let clock = self.clock_config(id);
        let replica = Replica::new(config.clone(), seed, clock.local(self.now))
            .map_err(|e| SimError::Config(format!("{e}")))?;
        self.nodes.push(SimNode {
            replica: Some(replica),
            disk: Disk::default(),
            applied: BTreeMap::new(),
            snapshot_through: 0,
            config,
            clock,
            retired: false,
        });
        Ok(())
    }

    fn replica_config(&self, id: NodeId) -> ReplicaConfig {
        ReplicaConfig {
            raft: self.config.node_config(id),
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
            .get(index_of(id))
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
}
