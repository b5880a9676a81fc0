//! A seeded, deterministic simulator of a sharded cluster: hosts holding
//! replicas of the controller group and of several shard groups
//! ([`Host`]), routing clerks ([`ShardClerk`]), the network model of the
//! single-group simulator (latency, loss, duplication, long delays,
//! partitions, one-way cuts) and one disk per host whose unsynced writes a
//! crash loses (a random prefix survives).
//!
//! After every event, Raft's safety properties are checked per group
//! ([`SafetyChecker`], one per group, fed with that group's writes,
//! messages and applied entries). [`ShardedSim::check_history`] checks the
//! clients' history for linearizability per key and for exactly-once
//! appends, across every shard move.
//!
//! ```
//! use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};
//! use distribkv_core::shard::ControllerOp;
//! let mut sim = ShardedSim::new(ShardedConfig::small(7)).unwrap();
//! sim.join_all().unwrap();
//! assert_eq!(sim.put("x", "1"), Ok(None));
//! assert_eq!(sim.get("x"), Ok(Some("1".into())));
//! assert!(sim.violations().is_empty());
//! ```

mod clients;
mod disk;
mod events;
mod exports;
mod hosts;
mod interactive;
mod journal;
mod mesh;
mod rounds;
mod sweep;

pub use clients::{AdminOp, KvOutcome};
use disk::HostDisk;
pub use interactive::{InFlight, InFlightContent, InFlightMessage, WorkloadClient};
pub use journal::JournalLine;
pub use mesh::Mesh;
pub use rounds::WriteRounds;
pub use sweep::{ShardedReport, run_sharded_seed};

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

use super::clock::NodeClock;
use super::invariants::SafetyChecker;
use super::network::{Endpoint, Network, NetworkConfig};
use crate::check;
use crate::kv::Operation;
use crate::raft::{Config, NodeId, PersistedState};
use crate::rng::Rng;
use crate::shard::clerk::{ShardClerk, ShardClerkConfig, ShardClerkOutput};
use crate::shard::controller::{ControllerOp, ControllerReply};
use crate::shard::group::{KvError, ShardStatus};
use crate::shard::host::{
    CONTROLLER, Host, HostBatch, HostConfig, HostError, HostInput, HostMessage, HostOutput,
    HostReply, HostRequest, HostWrite,
};
use crate::shard::{GroupId, ShardConfig};
use crate::time::Instant;

/// How a simulated sharded cluster behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardedConfig {
    /// Seed of everything random.
    pub seed: u64,
    /// Hosts, with ids `1..=hosts`.
    pub hosts: u64,
    /// What every host is built with: the number of shards, the
    /// controller's servers, every shard group with its servers (not
    /// joined yet: see [`ShardedSim::join`]), Raft timing, state machine
    /// limits, snapshots, tick, poll and hibernation. Each host gets its
    /// own `id` and the groups it is a server of; `record_applied` is
    /// always on (the checkers need it).
    pub host: HostConfig,
    /// Each host's clock, by host id (`clocks[0]` is host 1's); hosts
    /// beyond the list, and all of them when it is empty, read the
    /// simulator's time. Hosts refuse lease reads, so nothing depends on
    /// the rates staying within `host.raft.max_clock_drift_percent`, but
    /// the sweep keeps them there, as real machines would be.
    pub clocks: Vec<NodeClock>,
    /// Workload clients (started by [`ShardedSim::start_workload`]).
    pub clients: u64,
    /// Keys the workload uses.
    pub keys: u64,
    /// The workload clients send their gets to any server of the owning
    /// group ([`ShardClerkConfig::follower_reads`]).
    pub follower_reads: bool,
    /// The network.
    pub network: NetworkConfig,
    /// Time an fsync takes, ms (drawn per sync).
    pub fsync_ms: (u64, u64),
    /// Every routing clerk's [`ShardClerkConfig::retry_ms`] and
    /// [`ShardClerkConfig::probe_ms`] (100 and 100, the clerk's defaults).
    pub clerk_timing: (u64, u64),
}

impl ShardedConfig {
    /// The 6.5840 layout: the controller on hosts 1–3 and three groups of
    /// three hosts each, on hosts of their own (100: 4–6, 101: 7–9, 102:
    /// 10–12), so that a whole group can be taken down; 10 shards.
    pub fn lab(seed: u64) -> ShardedConfig {
        let mut config = ShardedConfig::small(seed);
        config.hosts = 12;
        config.host.groups = BTreeMap::from([
            (100, vec![4, 5, 6]),
            (101, vec![7, 8, 9]),
            (102, vec![10, 11, 12]),
        ]);
        config
    }

    /// Five hosts; the controller on 1–3; groups 100 (hosts 1–3), 101
    /// (hosts 3–5) and 102 (hosts 1, 4, 5), so every host holds replicas
    /// of two or three groups; 10 shards, 3 clients on 6 keys; a snapshot
    /// every 200 entries.
    pub fn small(seed: u64) -> ShardedConfig {
        let mut host = HostConfig::new(0, 10, vec![1, 2, 3]);
        host.groups = BTreeMap::from([
            (100, vec![1, 2, 3]),
            (101, vec![3, 4, 5]),
            (102, vec![1, 4, 5]),
        ]);
        host.raft = Config::new(1, [1]);
        host.snapshot_every = 200;
        host.record_applied = true;
        ShardedConfig {
            seed,
            hosts: 5,
            host,
            clocks: Vec::new(),
            clients: 3,
            keys: 6,
            follower_reads: false,
            network: NetworkConfig::default(),
            fsync_ms: (1, 5),
            clerk_timing: (100, 100),
        }
    }

    /// A routing clerk's configuration (without follower reads).
    pub fn clerk(&self) -> ShardClerkConfig {
        let mut config = ShardClerkConfig::new(self.host.controller.clone());
        (config.retry_ms, config.probe_ms) = self.clerk_timing;
        config
    }

    /// The clock of host `id`.
    pub fn clock(&self, id: NodeId) -> NodeClock {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.clocks.get(i.checked_sub(1)?))
            .copied()
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
enum Event {
    Batch(HostBatch),
    Request {
        to: NodeId,
        from: u64,
        request: HostRequest,
    },
    Reply {
        clerk: u64,
        from: NodeId,
        reply: HostReply,
    },
    Synced {
        host: NodeId,
        epoch: u64,
        seq: u64,
    },
}

#[derive(Clone)]
struct Slot {
    host: Option<Host>,
    disk: HostDisk,
    /// Restarts so far (varies the seed of each incarnation).
    incarnation: u64,
    /// The host's clock (kept across restarts: the same machine).
    clock: NodeClock,
}

#[derive(Clone)]
struct Client {
    clerk: ShardClerk,
    /// The history id of the operation in flight.
    pending: Option<u64>,
    /// Appends done (for unique tokens).
    count: u64,
}

/// A simulated sharded cluster. See the module documentation.
///
/// A clone is an independent copy of the cluster at that moment: driven
/// with the same calls, it runs on identically to the original (the same
/// events, journal, trace and history).
#[derive(Clone)]
pub struct ShardedSim {
    config: ShardedConfig,
    now: Instant,
    rng: Rng,
    slots: BTreeMap<NodeId, Slot>,
    events: BTreeMap<(u64, u64), Event>,
    next_event: u64,
    network: Network,
    checkers: BTreeMap<GroupId, SafetyChecker>,
    /// Client 0 runs the operations the test asks for; 1.. the workload.
    clients: Vec<Client>,
    admin_result: Option<ShardClerkOutput>,
    workload: bool,
    history: check::History,
    violations: Vec<String>,
    delivered: u64,
    /// Migration trace lines (when enabled).
    trace: Option<Vec<String>>,
    /// The event journal (when enabled).
    journal: Option<journal::Journal>,
    /// Workload writes refused as [`KvError::SessionExpired`].
    expired_sessions: u64,
    /// Follower reads served by crashed hosts before they crashed.
    follower_reads_before: u64,
    /// The export probe in flight (see `exports`), the last request id
    /// used, and the exports answered in full.
    export: Option<exports::ExportProbe>,
    next_export: u64,
    exports_served: u64,
    /// Parts of shards moving in parts delivered to hosts.
    shard_parts_delivered: u64,
    /// Inputs fed to hosts (the checkers forget what no replica can write
    /// or apply again every [`PRUNE_EVERY`] of them).
    feeds: u64,
}

/// How many host inputs between two prunings of the checkers.
const PRUNE_EVERY: u64 = 1024;

/// Why a simulated sharded cluster could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardedSimError {
    /// A host refused its configuration.
    Host(HostError),
    /// A host's clock does not move forward.
    Clock {
        /// The host.
        host: NodeId,
        /// Its rate, ppm (must be above -1,000,000).
        rate_ppm: i64,
    },
}

impl core::fmt::Display for ShardedSimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ShardedSimError::Host(e) => write!(f, "{e}"),
            ShardedSimError::Clock { host, rate_ppm } => write!(
                f,
                "host {host}'s clock must move forward (rate {rate_ppm} ppm)"
            ),
        }
    }
}

/// The admin clerk's operation did not finish in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

impl ShardedSim {
    /// A cluster of fresh hosts; no group has joined yet.
    pub fn new(config: ShardedConfig) -> Result<ShardedSim, ShardedSimError> {
        if let Some((i, clock)) = config
            .clocks
            .iter()
            .enumerate()
            .find(|(_, c)| !c.is_valid())
        {
            return Err(ShardedSimError::Clock {
                host: i as NodeId + 1,
                rate_ppm: clock.rate_ppm,
            });
        }
        let mut rng = Rng::new(config.seed);
        let mut slots = BTreeMap::new();
        let mut checkers = BTreeMap::new();
        checkers.insert(CONTROLLER, SafetyChecker::default());
        for g in config.host.groups.keys() {
            checkers.insert(*g, SafetyChecker::default());
        }
        for id in 1..=config.hosts {
            let clock = config.clock(id);
            let host = Host::new(
                host_config(&config, id),
                config.seed ^ id,
                clock.local(Instant::ZERO),
            )
            .map_err(ShardedSimError::Host)?;
            slots.insert(
                id,
                Slot {
                    host: Some(host),
                    disk: HostDisk::default(),
                    incarnation: 0,
                    clock,
                },
            );
        }
        let clients = (0..=config.clients)
            .map(|i| {
                let mut clerk_config = config.clerk();
                // The workload's; the admin clerk (0) reads at the leaders.
                clerk_config.follower_reads = config.follower_reads && i > 0;
                Client {
                    clerk: ShardClerk::new(clerk_config, rng.next_u64() ^ i),
                    pending: None,
                    count: 0,
                }
            })
            .collect();
        Ok(ShardedSim {
            network: Network::new(config.network.clone()),
            config,
            now: Instant::ZERO,
            rng,
            slots,
            events: BTreeMap::new(),
            next_event: 0,
            checkers,
            clients,
            admin_result: None,
            workload: false,
            history: check::History::new(),
            violations: Vec::new(),
            delivered: 0,
            trace: None,
            journal: None,
            expired_sessions: 0,
            follower_reads_before: 0,
            export: None,
            next_export: 0,
            exports_served: 0,
            shard_parts_delivered: 0,
            feeds: 0,
        })
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The configuration.
    pub fn config(&self) -> &ShardedConfig {
        &self.config
    }

    /// A running host.
    pub fn host(&self, id: NodeId) -> Option<&Host> {
        self.slots.get(&id)?.host.as_ref()
    }

    /// How many log positions group `group`'s safety checker remembers
    /// ([`SafetyChecker::remembered`]); `None` for an unknown group.
    pub fn checker_remembers(&self, group: GroupId) -> Option<usize> {
        self.checkers.get(&group).map(SafetyChecker::remembered)
    }

    /// Every safety violation found so far, per group, and driver errors.
    pub fn violations(&self) -> Vec<String> {
        let mut all = self.violations.clone();
        for (g, checker) in &self.checkers {
            all.extend(
                checker
                    .violations()
                    .iter()
                    .map(|v| format!("group {g}: {v}")),
            );
        }
        all
    }

    /// Starts recording the migration trace: every change of a group's
    /// configuration or shard status on any host, and every shard push
    /// and acknowledgement delivered.
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// Takes the trace lines recorded since the last call.
    pub fn take_trace(&mut self) -> Vec<String> {
        self.trace.as_mut().map(core::mem::take).unwrap_or_default()
    }

    fn log(&mut self, line: String) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!("t={} {line}", self.now.as_millis()));
        }
    }

    /// Messages delivered to hosts so far (batches).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Hibernations, wakes and suspicion wakes on every running host.
    pub fn hibernation_counts(&self) -> (u64, u64, u64) {
        self.slots
            .values()
            .filter_map(|s| s.host.as_ref())
            .map(|h| {
                (
                    h.stats().hibernations,
                    h.stats().wakes,
                    h.stats().suspicions,
                )
            })
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    }

    /// Follower reads answered with a value by a replica that did not
    /// lead its group, on every host so far (crashed ones included).
    pub fn follower_reads_served(&self) -> u64 {
        self.follower_reads_before
            + self
                .slots
                .values()
                .filter_map(|s| s.host.as_ref())
                .map(|h| h.stats().follower_reads_served)
                .sum::<u64>()
    }

    /// Parts of shards moving in parts ([`HostMessage::ShardPushPart`])
    /// delivered to hosts.
    pub fn shard_parts_delivered(&self) -> u64 {
        self.shard_parts_delivered
    }

    /// Attempts the clients' routing clerks gave up after an unanswered
    /// probe ([`ShardClerk::probes_expired`]; 0 unless
    /// [`ShardedConfig::clerk_timing`] makes the probe shorter than the
    /// retry).
    pub fn probes_expired(&self) -> u64 {
        self.clients.iter().map(|c| c.clerk.probes_expired()).sum()
    }

    /// Fsyncs completed on every host so far.
    pub fn syncs(&self) -> u64 {
        self.slots.values().map(|s| s.disk.pending.syncs).sum()
    }

    /// The client history.
    pub fn history(&self) -> &check::History {
        &self.history
    }

    /// The network (partitions, cuts, link behaviour).
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.network
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.next_event += 1;
        self.events
            .insert((self.now.as_millis() + delay, self.next_event), event);
    }

    /// Advances virtual time by `ms`.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now.as_millis() + ms;
        while self.step(until) {}
        self.now = Instant(until);
    }

    /// Runs until `done` holds or `limit` ms have passed; whether it held.
    pub fn run_until(&mut self, limit: u64, mut done: impl FnMut(&ShardedSim) -> bool) -> bool {
        let until = self.now.as_millis() + limit;
        loop {
            if done(self) {
                return true;
            }
            if !self.step(until) {
                self.now = Instant(until);
                return done(self);
            }
        }
    }

    /// Processes the next event or timer due by `until`; false if none.
    fn step(&mut self, until: u64) -> bool {
        let event_at = self.events.first_key_value().map(|((t, _), _)| *t);
        let host_at = self
            .slots
            .iter()
            .filter_map(|(id, s)| {
                let deadline = s.clock.global(s.host.as_ref()?.poll_timeout());
                Some((deadline.as_millis(), *id))
            })
            .min();
        let clerk_at = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clerk.poll_timeout().as_millis(), i))
            .min();
        let next = [event_at, host_at.map(|(t, _)| t), clerk_at.map(|(t, _)| t)]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next.filter(|t| *t <= until) else {
            return false;
        };
        self.now = self.now.max(Instant(next));
        if event_at == Some(next) {
            let (_, event) = self.events.pop_first().expect("an event is due");
            self.handle_event(event);
        } else if let Some((t, id)) = host_at
            && t == next
        {
            self.feed(id, HostInput::Timeout);
        } else if let Some((_, i)) = clerk_at {
            let now = self.now;
            self.clients[i].clerk.handle_timeout(now);
            self.drain_clerk(i as u64);
        }
        true
    }
}

fn host_config(config: &ShardedConfig, id: NodeId) -> HostConfig {
    let mut host = config.host.clone();
    host.id = id;
    host.groups.retain(|_, servers| servers.contains(&id));
    host.record_applied = true;
    host
}
