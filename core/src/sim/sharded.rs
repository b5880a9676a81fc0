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

mod interactive;
mod journal;
pub use interactive::{InFlight, InFlightContent, InFlightMessage, WorkloadClient};
pub use journal::JournalLine;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

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
    /// The controller group's servers.
    pub controller: Vec<NodeId>,
    /// Shard groups and their servers (not joined yet: see [`ShardedSim::join`]).
    pub groups: BTreeMap<GroupId, Vec<NodeId>>,
    /// Number of shards.
    pub shards: u32,
    /// Workload clients (started by [`ShardedSim::start_workload`]).
    pub clients: u64,
    /// Keys the workload uses.
    pub keys: u64,
    /// The network.
    pub network: NetworkConfig,
    /// Time an fsync takes, ms (drawn per sync).
    pub fsync_ms: (u64, u64),
    /// Raft timing of every group.
    pub raft: Config,
    /// Snapshot a group every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Host timer tick, ms.
    pub tick_ms: u64,
    /// Host migration poll, ms.
    pub poll_ms: u64,
    /// Idle groups hibernate after this many ms (0: never).
    pub hibernate_after_ms: u64,
}

impl ShardedConfig {
    /// The 6.5840 layout: the controller on hosts 1–3 and three groups of
    /// three hosts each, on hosts of their own (100: 4–6, 101: 7–9, 102:
    /// 10–12), so that a whole group can be taken down; 10 shards.
    pub fn lab(seed: u64) -> ShardedConfig {
        ShardedConfig {
            hosts: 12,
            groups: BTreeMap::from([
                (100, vec![4, 5, 6]),
                (101, vec![7, 8, 9]),
                (102, vec![10, 11, 12]),
            ]),
            ..ShardedConfig::small(seed)
        }
    }

    /// Five hosts; the controller on 1–3; groups 100 (hosts 1–3), 101
    /// (hosts 3–5) and 102 (hosts 1, 4, 5), so every host holds replicas
    /// of two or three groups; 10 shards, 3 clients on 6 keys.
    pub fn small(seed: u64) -> ShardedConfig {
        ShardedConfig {
            seed,
            hosts: 5,
            controller: vec![1, 2, 3],
            groups: BTreeMap::from([
                (100, vec![1, 2, 3]),
                (101, vec![3, 4, 5]),
                (102, vec![1, 4, 5]),
            ]),
            shards: 10,
            clients: 3,
            keys: 6,
            network: NetworkConfig::default(),
            fsync_ms: (1, 5),
            raft: Config::new(1, [1]),
            snapshot_every: 200,
            tick_ms: 10,
            poll_ms: 100,
            hibernate_after_ms: 0,
        }
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
        reply: HostReply,
    },
    Synced {
        host: NodeId,
        epoch: u64,
        seq: u64,
    },
}

/// One host's stable storage: each group's persisted state, plus host
/// writes not yet synced.
#[derive(Clone, Debug, Default)]
struct HostDisk {
    durable: BTreeMap<GroupId, PersistedState>,
    unsynced: Vec<HostWrite>,
    syncing: Option<u64>,
    epoch: u64,
    syncs: u64,
}

impl HostDisk {
    fn write(&mut self, write: HostWrite) -> Option<u64> {
        let seq = write.seq;
        self.unsynced.push(write);
        if self.syncing.is_none() {
            self.syncing = Some(seq);
            Some(seq)
        } else {
            None
        }
    }

    fn synced(&mut self, epoch: u64, seq: u64) -> Option<(u64, Option<u64>)> {
        if epoch != self.epoch || self.syncing != Some(seq) {
            return None;
        }
        let count = self.unsynced.iter().take_while(|w| w.seq <= seq).count();
        for write in self.unsynced.drain(..count) {
            apply(&mut self.durable, &write);
        }
        self.syncs += 1;
        self.syncing = self.unsynced.last().map(|w| w.seq);
        Some((seq, self.syncing))
    }

    fn crash(&mut self, rng: &mut Rng) {
        let survivors = rng.range_inclusive(0, self.unsynced.len() as u64) as usize;
        for write in self.unsynced.drain(..survivors) {
            apply(&mut self.durable, &write);
        }
        self.unsynced.clear();
        self.syncing = None;
        self.epoch += 1;
    }
}

fn apply(durable: &mut BTreeMap<GroupId, PersistedState>, write: &HostWrite) {
    for (group, w) in &write.writes {
        durable.entry(*group).or_default().apply(w);
    }
}

struct Slot {
    host: Option<Host>,
    disk: HostDisk,
    /// Restarts so far (varies the seed of each incarnation).
    incarnation: u64,
}

struct Client {
    clerk: ShardClerk,
    /// The history id of the operation in flight.
    pending: Option<u64>,
    /// Appends done (for unique tokens).
    count: u64,
}

/// A simulated sharded cluster. See the module documentation.
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
}

/// What the trace compares before and after an input: each shard group's
/// configuration number and shard statuses on one host.
type ShardView = Vec<(GroupId, u64, Vec<(u32, ShardStatus)>)>;

fn shard_view(host: &Host) -> ShardView {
    host.nodes()
        .filter_map(|(g, _)| {
            let kv = host.kv(g)?;
            let shards = kv.shards().iter().map(|(s, sh)| (*s, sh.status)).collect();
            Some((g, kv.config().num, shards))
        })
        .collect()
}

fn status_text(status: Option<ShardStatus>) -> String {
    match status {
        None => String::from("gone"),
        Some(ShardStatus::Serving) => String::from("serving"),
        Some(ShardStatus::Pulling { from }) => format!("pulling from {from}"),
        Some(ShardStatus::Sending { to }) => format!("sending to {to}"),
    }
}

/// The admin clerk's operation did not finish in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

impl ShardedSim {
    /// A cluster of fresh hosts; no group has joined yet.
    pub fn new(config: ShardedConfig) -> Result<ShardedSim, HostError> {
        let mut rng = Rng::new(config.seed);
        let mut slots = BTreeMap::new();
        let mut checkers = BTreeMap::new();
        checkers.insert(CONTROLLER, SafetyChecker::default());
        for g in config.groups.keys() {
            checkers.insert(*g, SafetyChecker::default());
        }
        for id in 1..=config.hosts {
            let host = Host::new(host_config(&config, id), config.seed ^ id, Instant::ZERO)?;
            slots.insert(
                id,
                Slot {
                    host: Some(host),
                    disk: HostDisk::default(),
                    incarnation: 0,
                },
            );
        }
        let clients = (0..=config.clients)
            .map(|i| Client {
                clerk: ShardClerk::new(
                    ShardClerkConfig::new(config.controller.clone()),
                    rng.next_u64() ^ i,
                ),
                pending: None,
                count: 0,
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

    /// Fsyncs completed on every host so far.
    pub fn syncs(&self) -> u64 {
        self.slots.values().map(|s| s.disk.syncs).sum()
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
            .filter_map(|(id, s)| s.host.as_ref().map(|h| (h.poll_timeout().as_millis(), *id)))
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

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Batch(batch) => {
                self.delivered += 1;
                if self.trace.is_some() && self.is_up(batch.to) {
                    for m in &batch.messages {
                        let line = match m {
                            HostMessage::ShardPush {
                                from_group,
                                to_group,
                                config_num,
                                shard,
                                data,
                            } => format!(
                                "{} -> {}: push shard {shard} of config {config_num}, group {from_group} to {to_group} ({} bytes)",
                                batch.from,
                                batch.to,
                                data.len()
                            ),
                            HostMessage::ShardAck {
                                group,
                                config_num,
                                shard,
                            } => format!(
                                "{} -> {}: ack shard {shard} of config {config_num} to group {group}",
                                batch.from, batch.to
                            ),
                            _ => continue,
                        };
                        self.log(line);
                    }
                }
                if self.is_up(batch.to) {
                    self.note_batch(&batch);
                }
                let to = batch.to;
                self.feed(to, HostInput::Batch(batch));
            }
            Event::Request { to, from, request } => {
                if self.is_up(to) {
                    self.note_request(from, to, &request);
                }
                self.feed(to, HostInput::Client { from, request })
            }
            Event::Reply { clerk, reply } => {
                self.note_reply(clerk, &reply);
                let now = self.now;
                self.clients[clerk as usize].clerk.handle_reply(now, reply);
                self.drain_clerk(clerk);
            }
            Event::Synced { host, epoch, seq } => {
                let Some(slot) = self.slots.get_mut(&host) else {
                    return;
                };
                if let Some((acked, next)) = slot.disk.synced(epoch, seq) {
                    if let Some(next) = next {
                        let delay = self
                            .rng
                            .range_inclusive(self.config.fsync_ms.0, self.config.fsync_ms.1);
                        self.schedule(
                            delay,
                            Event::Synced {
                                host,
                                epoch,
                                seq: next,
                            },
                        );
                    }
                    self.feed(host, HostInput::Persisted(acked));
                }
            }
        }
    }

    /// Feeds one input to host `id` (dropped if it is down), executes its
    /// outputs and runs the checkers of its groups.
    fn feed(&mut self, id: NodeId, input: HostInput) {
        let now = self.now;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let Some(host) = slot.host.as_mut() else {
            return;
        };
        let before = (self.trace.is_some() || self.journal.is_some()).then(|| shard_view(host));
        let roles_before = self.journal.is_some().then(|| journal::roles(host));
        for (g, node) in host.nodes() {
            if let Some(checker) = self.checkers.get_mut(&g) {
                checker.before(node);
            }
        }
        if let Err(e) = host.handle(now, input) {
            self.violations
                .push(format!("host {id} refused a driver input: {e:?}"));
        }
        let mut outputs = Vec::new();
        while let Some(output) = host.poll_output() {
            outputs.push(output);
        }
        let applied = host.drain_applied();
        for output in outputs {
            match output {
                HostOutput::Persist(write) => {
                    let host = self.slots[&id].host.as_ref().expect("up");
                    for (g, w) in &write.writes {
                        if let (Some(checker), Some(node)) =
                            (self.checkers.get_mut(g), host.node(*g))
                        {
                            checker.observe_write(node, w);
                        }
                    }
                    let slot = self.slots.get_mut(&id).expect("exists");
                    if let Some(seq) = slot.disk.write(write) {
                        let epoch = slot.disk.epoch;
                        let delay = self
                            .rng
                            .range_inclusive(self.config.fsync_ms.0, self.config.fsync_ms.1);
                        self.schedule(
                            delay,
                            Event::Synced {
                                host: id,
                                epoch,
                                seq,
                            },
                        );
                    }
                }
                HostOutput::Send(batch) => {
                    for message in &batch.messages {
                        if let HostMessage::Raft { group, envelope } = message
                            && let Some(checker) = self.checkers.get_mut(group)
                        {
                            checker.observe_send(envelope);
                        }
                    }
                    let (from, to) = (Endpoint::Node(batch.from), Endpoint::Node(batch.to));
                    if !self.network.can_reach(from, to) {
                        continue;
                    }
                    if let Some((first, second)) = self.network.transit(&mut self.rng) {
                        if let Some(second) = second {
                            self.schedule(second, Event::Batch(batch.clone()));
                        }
                        self.schedule(first, Event::Batch(batch));
                    }
                }
                HostOutput::Reply { to, reply } => {
                    let (from, dest) = (Endpoint::Node(id), Endpoint::Client(to));
                    if !self.network.can_reach(from, dest) {
                        continue;
                    }
                    if let Some((first, _)) = self.network.transit(&mut self.rng) {
                        self.schedule(first, Event::Reply { clerk: to, reply });
                    }
                }
            }
        }
        let mut by_group: BTreeMap<GroupId, Vec<crate::kv::AppliedRecord>> = BTreeMap::new();
        for (g, record) in applied {
            by_group.entry(g).or_default().push(record);
        }
        for (g, records) in by_group {
            if let Some(checker) = self.checkers.get_mut(&g) {
                checker.observe_applied(id, &records);
            }
        }
        let host = self.slots[&id].host.as_ref().expect("up");
        for (g, node) in host.nodes() {
            if let Some(checker) = self.checkers.get_mut(&g) {
                checker.after_event(core::iter::once(node));
            }
        }
        if let Some(roles) = roles_before {
            self.note_roles(id, &roles);
        }
        let host = self.slots[&id].host.as_ref().expect("up");
        if let Some(before) = before {
            let after = shard_view(host);
            for ((g, num_before, old), (_, num, new)) in before.iter().zip(&after) {
                let mut changes = Vec::new();
                let shards: BTreeSet<u32> = old.iter().chain(new.iter()).map(|(s, _)| *s).collect();
                for s in shards {
                    let was = old.iter().find(|(x, _)| *x == s).map(|(_, st)| *st);
                    let is = new.iter().find(|(x, _)| *x == s).map(|(_, st)| *st);
                    if was != is {
                        changes.push(format!("{s} {}", status_text(is)));
                    }
                }
                if num_before != num || !changes.is_empty() {
                    let line = format!("host {id} group {g} config {num}: {}", changes.join(", "));
                    self.note(Some(id), Some(*g), "shard", || line.clone());
                    self.log(line);
                }
            }
        }
    }

    fn drain_clerk(&mut self, index: u64) {
        let now = self.now;
        while let Some(output) = self.clients[index as usize].clerk.poll_output() {
            match output {
                ShardClerkOutput::Send { to, request } => {
                    let (from, dest) = (Endpoint::Client(index), Endpoint::Node(to));
                    if !self.network.can_reach(from, dest) {
                        continue;
                    }
                    if let Some((first, second)) = self.network.transit(&mut self.rng) {
                        if let Some(second) = second {
                            let request = request.clone();
                            self.schedule(
                                second,
                                Event::Request {
                                    to,
                                    from: index,
                                    request,
                                },
                            );
                        }
                        self.schedule(
                            first,
                            Event::Request {
                                to,
                                from: index,
                                request,
                            },
                        );
                    }
                }
                done => {
                    if index == 0 {
                        self.admin_result = Some(done);
                    } else {
                        self.complete_workload(index, done);
                    }
                }
            }
        }
        if index != 0 && self.workload && !self.clients[index as usize].clerk.is_busy() {
            self.next_workload_op(index, now);
        }
    }

    /// Runs one operation through the admin clerk, for at most `limit` ms.
    pub fn admin(&mut self, op: AdminOp, limit: u64) -> Result<ShardClerkOutput, TimedOut> {
        let now = self.now;
        self.admin_result = None;
        let started = match op {
            AdminOp::Kv(op) => self.clients[0].clerk.start(now, op),
            AdminOp::Controller(op) => self.clients[0].clerk.start_controller(now, op),
        };
        if started.is_err() {
            return Err(TimedOut);
        }
        self.drain_clerk(0);
        self.run_until(limit, |s| s.admin_result.is_some());
        match self.admin_result.take() {
            Some(result) => Ok(result),
            None => {
                // Abandon it: a fresh admin clerk (the old one's request
                // may still take effect, as a client that gave up).
                let seed = self.rng.next_u64();
                self.clients[0].clerk =
                    ShardClerk::new(ShardClerkConfig::new(self.config.controller.clone()), seed);
                Err(TimedOut)
            }
        }
    }

    /// A controller operation through the admin clerk (10 s of virtual time at most).
    pub fn controller(&mut self, op: ControllerOp) -> Result<ControllerReply, TimedOut> {
        match self.admin(AdminOp::Controller(op), 10_000)? {
            ShardClerkOutput::ControllerDone(reply) => Ok(reply),
            _ => Err(TimedOut),
        }
    }

    /// Joins these groups (with their configured servers).
    pub fn join(&mut self, groups: &[GroupId]) -> Result<ControllerReply, TimedOut> {
        let map = groups
            .iter()
            .filter_map(|g| self.config.groups.get(g).map(|s| (*g, s.clone())))
            .collect();
        self.controller(ControllerOp::Join(map))
    }

    /// Joins every configured group at once.
    pub fn join_all(&mut self) -> Result<ControllerReply, TimedOut> {
        let groups: Vec<GroupId> = self.config.groups.keys().copied().collect();
        self.join(&groups)
    }

    /// Removes these groups.
    pub fn leave(&mut self, groups: &[GroupId]) -> Result<ControllerReply, TimedOut> {
        self.controller(ControllerOp::Leave(groups.to_vec()))
    }

    /// The latest configuration, from the controller.
    pub fn query(&mut self) -> Result<ShardConfig, TimedOut> {
        match self.controller(ControllerOp::Query(None))? {
            ControllerReply::Config(c) => Ok(c),
            _ => Err(TimedOut),
        }
    }

    /// A key-value operation through the admin clerk (10 s at most),
    /// recorded in the history as client 0's.
    pub fn kv(&mut self, op: Operation, limit: u64) -> Result<Option<Bytes>, KvOutcome> {
        let id = self.record_invoke(0, &op);
        match self.admin(AdminOp::Kv(op.clone()), limit) {
            Ok(ShardClerkOutput::Done(Ok(value))) => {
                self.record_complete(id, &op, value.clone());
                Ok(value)
            }
            Ok(ShardClerkOutput::Done(Err(e))) => {
                let _ = self.history.fail_unknown(id);
                Err(KvOutcome::Refused(e))
            }
            _ => {
                let _ = self.history.fail_unknown(id);
                Err(KvOutcome::TimedOut)
            }
        }
    }

    /// `put`, through [`ShardedSim::kv`], with 10 s of virtual time.
    pub fn put(&mut self, key: &str, value: &str) -> Result<Option<Bytes>, KvOutcome> {
        self.kv(
            Operation::Put {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
            10_000,
        )
    }

    /// `append`, through [`ShardedSim::kv`].
    pub fn append(&mut self, key: &str, value: &str) -> Result<Option<Bytes>, KvOutcome> {
        self.kv(
            Operation::Append {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
            10_000,
        )
    }

    /// `get`, through [`ShardedSim::kv`].
    pub fn get(&mut self, key: &str) -> Result<Option<Bytes>, KvOutcome> {
        self.kv(
            Operation::Get {
                key: Bytes::copy_from_slice(key.as_bytes()),
            },
            10_000,
        )
    }

    fn record_invoke(&mut self, client: u64, op: &Operation) -> u64 {
        let kind = match op {
            Operation::Put { value, .. } => check::OpKind::Put(value.to_vec()),
            Operation::Append { value, .. } => check::OpKind::Append(value.to_vec()),
            Operation::Delete { .. } => check::OpKind::Delete,
            Operation::Get { .. } => check::OpKind::Get,
        };
        self.history
            .invoke(client, op.key().to_vec(), kind, self.now.as_millis())
    }

    fn record_complete(&mut self, id: u64, op: &Operation, value: Option<Bytes>) {
        let value = if op.is_write() {
            None
        } else {
            value.map(|v| v.to_vec())
        };
        if let Err(e) = self.history.complete(id, self.now.as_millis(), value) {
            self.violations.push(format!("history: {e:?}"));
        }
    }

    /// Starts the workload clients: appends of unique tokens, gets and a
    /// few puts on `keys` keys, back to back.
    pub fn start_workload(&mut self) {
        self.workload = true;
        let now = self.now;
        for i in 1..self.clients.len() as u64 {
            if !self.clients[i as usize].clerk.is_busy() {
                self.next_workload_op(i, now);
            }
        }
    }

    /// Stops starting new workload operations (those in flight continue).
    pub fn stop_workload(&mut self) {
        self.workload = false;
    }

    /// Whether a workload operation is still in flight.
    pub fn workload_pending(&self) -> bool {
        self.clients.iter().skip(1).any(|c| c.pending.is_some())
    }

    fn next_workload_op(&mut self, index: u64, now: Instant) {
        let key = format!("k{}", self.rng.index(self.config.keys.max(1) as usize));
        let key = Bytes::from(key);
        let roll = self.rng.index(10);
        let client = &mut self.clients[index as usize];
        client.count += 1;
        let op = match roll {
            0..=5 => Operation::Append {
                key,
                value: Bytes::from(format!("[c{index}.{}]", client.count)),
            },
            6..=8 => Operation::Get { key },
            _ => Operation::Put {
                key,
                value: Bytes::from(format!("(p{index}.{})", client.count)),
            },
        };
        let id = self.record_invoke(index, &op);
        let client = &mut self.clients[index as usize];
        client.pending = Some(id);
        let _ = client.clerk.start(now, op);
        self.drain_clerk(index);
    }

    fn complete_workload(&mut self, index: u64, output: ShardClerkOutput) {
        let Some(id) = self.clients[index as usize].pending.take() else {
            return;
        };
        let op = match self.history.operation(id) {
            Some(op) => op.kind.clone(),
            None => return,
        };
        match output {
            ShardClerkOutput::Done(Ok(value)) => {
                let value = if op.is_write() {
                    None
                } else {
                    value.map(|v| v.to_vec())
                };
                if let Err(e) = self.history.complete(id, self.now.as_millis(), value) {
                    self.violations.push(format!("history: {e:?}"));
                }
            }
            _ => {
                let _ = self.history.fail_unknown(id);
            }
        }
    }

    /// Crashes host `id`: its replicas stop, unsynced writes are lost
    /// (but a random prefix), messages to it are dropped.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(slot) = self.slots.get_mut(&id)
            && slot.host.take().is_some()
        {
            slot.disk.crash(&mut self.rng);
            self.log(format!("host {id} crashes"));
            self.note(Some(id), None, "crash", || format!("host {id} crashes"));
        }
    }

    /// Restarts a crashed host from its disk.
    pub fn restart(&mut self, id: NodeId) {
        let config = host_config(&self.config, id);
        let seed = self.config.seed;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.host.is_some() {
            return;
        }
        slot.incarnation += 1;
        let seed = seed ^ id ^ slot.incarnation.wrapping_mul(0x9E37_79B9);
        match Host::restart(config, seed, self.now, slot.disk.durable.clone()) {
            Ok(host) => {
                for (g, node) in host.nodes() {
                    if let Some(checker) = self.checkers.get_mut(&g) {
                        checker.restarted(node);
                    }
                }
                slot.host = Some(host);
                self.log(format!("host {id} restarts"));
                self.note(Some(id), None, "restart", || {
                    format!("host {id} restarts from its disk")
                });
            }
            Err(e) => self
                .violations
                .push(format!("host {id} cannot restart: {e}")),
        }
    }

    /// Delivers an arbitrary batch to host `to` now, through the same
    /// checkers as any other (robustness tests feed malformed ones).
    pub fn inject(&mut self, batch: HostBatch) {
        let to = batch.to;
        self.feed(to, HostInput::Batch(batch));
    }

    /// Delivers an arbitrary client request to host `to` now; the reply goes
    /// to the admin clerk, which ignores what it did not ask.
    pub fn inject_request(&mut self, to: NodeId, request: HostRequest) {
        self.feed(to, HostInput::Client { from: 0, request });
    }

    /// Crashes every server of a group (6.5840's `ShutdownGroup`).
    pub fn crash_group(&mut self, group: GroupId) {
        for id in self.config.groups.get(&group).cloned().unwrap_or_default() {
            self.crash(id);
        }
    }

    /// Restarts every server of a group (6.5840's `StartGroup`).
    pub fn restart_group(&mut self, group: GroupId) {
        for id in self.config.groups.get(&group).cloned().unwrap_or_default() {
            self.restart(id);
        }
    }

    /// Bytes of durable Raft state (entries) and snapshots of every group
    /// on every host's disk: what 6.5840's shard deletion test bounds.
    pub fn persisted_bytes(&self) -> u64 {
        let mut total = 0;
        for slot in self.slots.values() {
            for state in slot.disk.durable.values() {
                total += state.snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
                total += state.entries.iter().map(|e| e.size() as u64).sum::<u64>();
            }
        }
        total
    }

    /// Whether host `id` is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.host(id).is_some()
    }

    /// The leader host of a group, if one is up and leading.
    pub fn leader_of(&self, group: GroupId) -> Option<NodeId> {
        self.slots
            .iter()
            .filter_map(|(id, s)| {
                let node = s.host.as_ref()?.node(group)?;
                node.is_leader().then_some((node.term(), *id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Whether every group's up replicas have reached the controller's
    /// latest configuration with no shard moving (at least one replica per
    /// group must be up).
    pub fn is_settled(&self) -> bool {
        let Some(latest) = self
            .slots
            .values()
            .filter_map(|s| s.host.as_ref()?.controller())
            .map(|c| c.latest().num)
            .max()
        else {
            return false;
        };
        self.config.groups.keys().all(|g| {
            self.slots
                .values()
                .filter_map(|s| s.host.as_ref()?.kv(*g))
                .any(|kv| kv.config().num == latest && kv.is_settled())
        })
    }

    /// Shards held by each group on its most advanced up replica (any status).
    pub fn held_shards(&self) -> BTreeMap<GroupId, BTreeSet<u32>> {
        let mut held = BTreeMap::new();
        for g in self.config.groups.keys() {
            let best = self
                .slots
                .values()
                .filter_map(|s| {
                    let host = s.host.as_ref()?;
                    Some((host.node(*g)?.log().applied(), host.kv(*g)?))
                })
                .max_by_key(|(applied, _)| *applied);
            if let Some((_, kv)) = best {
                held.insert(*g, kv.shards().keys().copied().collect());
            }
        }
        held
    }

    /// Checks the history: linearizable per key (every shard move included),
    /// and, with the final value of each key read through the service
    /// (call after healing), every acknowledged append present exactly once.
    pub fn check_history(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        let keys: BTreeSet<Vec<u8>> = self
            .history
            .operations()
            .iter()
            .map(|o| o.key.clone())
            .collect();
        let mut final_values = BTreeMap::new();
        for key in keys {
            let op = Operation::Get {
                key: Bytes::from(key.clone()),
            };
            match self.kv(op, 30_000) {
                Ok(Some(value)) => {
                    final_values.insert(key, value.to_vec());
                }
                Ok(None) => {}
                Err(e) => failures.push(format!(
                    "final read of {} failed: {e:?}",
                    check::DisplayBytes(&key)
                )),
            }
        }
        let mut operations = self.history.operations().to_vec();
        // Still pending at the end: unknown outcome.
        for o in &mut operations {
            if !o.is_completed() {
                o.outcome = check::Outcome::Unknown;
            }
        }
        match check::check_linearizable(&operations, check::Budget::DEFAULT) {
            Ok(_) => {}
            Err(check::CheckError::GaveUp(g)) => {
                failures.push(format!("linearizability: undecided ({g})"))
            }
            Err(e) => failures.push(format!("linearizability: {e}")),
        }
        if failures.is_empty() {
            let options = check::AppendCheckOptions {
                reject_unexplained_text: true,
            };
            if let Err(e) = check::check_appends(&operations, &final_values, options) {
                failures.push(format!("exactly-once appends: {e}"));
            }
        }
        failures
    }
}

/// An operation for the admin clerk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// A key-value operation.
    Kv(Operation),
    /// A controller operation.
    Controller(ControllerOp),
}

/// How an admin key-value operation ended, when not with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutcome {
    /// Refused for certain.
    Refused(KvError),
    /// Not answered in time (it may still take effect).
    TimedOut,
}

fn host_config(config: &ShardedConfig, id: NodeId) -> HostConfig {
    let mut host = HostConfig::new(id, config.shards, config.controller.clone());
    host.groups = config
        .groups
        .iter()
        .filter(|(_, servers)| servers.contains(&id))
        .map(|(g, s)| (*g, s.clone()))
        .collect();
    host.raft = config.raft.clone();
    host.snapshot_every = config.snapshot_every;
    host.tick_ms = config.tick_ms;
    host.poll_ms = config.poll_ms;
    host.hibernate_after_ms = config.hibernate_after_ms;
    host.record_applied = true;
    host
}

/// What one sharded seed did and found.
#[derive(Clone, Debug, Default)]
pub struct ShardedReport {
    /// Safety violations, history failures and liveness failures.
    pub failures: Vec<String>,
    /// The faults and configuration changes, in order, for the replay log.
    pub actions: Vec<String>,
    /// Client operations recorded.
    pub operations: usize,
    /// Configurations made.
    pub configurations: u64,
}

impl ShardedReport {
    /// Whether the seed passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One randomized sharded run: the [`ShardedConfig::small`] layout (hosts
/// holding replicas of several groups), a random network (loss,
/// duplication, long delays), a workload of appends, gets and puts, and
/// `rounds` rounds of random joins, leaves, moves, host crashes and
/// restarts, partitions and one-way cuts. Then everything heals: the
/// groups must settle on the latest configuration, every client operation
/// must finish, and the history must be linearizable with every append
/// applied exactly once.
pub fn run_sharded_seed(seed: u64, rounds: u32) -> ShardedReport {
    let mut report = ShardedReport::default();
    let mut rng = Rng::new(seed ^ 0x5A4D_ED00);
    let mut config = ShardedConfig::small(seed);
    config.network.drop_rate = [0.0, 0.02, 0.1][rng.index(3)];
    config.network.duplicate_rate = [0.0, 0.05][rng.index(2)];
    config.network.long_delay_rate = [0.0, 0.01][rng.index(2)];
    config.network.long_delay = (100, 1000);
    config.snapshot_every = [20, 200][rng.index(2)];
    config.hibernate_after_ms = [0, 300][rng.index(2)];
    let groups: Vec<GroupId> = config.groups.keys().copied().collect();
    let hosts = config.hosts;
    let shards = config.shards;
    let mut sim = match ShardedSim::new(config) {
        Ok(sim) => sim,
        Err(e) => {
            report.failures.push(format!("cannot build: {e}"));
            return report;
        }
    };
    let mut joined: BTreeSet<GroupId> = BTreeSet::new();
    let first = groups[rng.index(groups.len())];
    if sim.join(&[first]).is_ok() {
        joined.insert(first);
    }
    report.actions.push(format!(
        "join {first} (drop {}, duplicate {}, long delays {}, snapshot every {}, hibernate after {} ms)",
        sim.config.network.drop_rate,
        sim.config.network.duplicate_rate,
        sim.config.network.long_delay_rate,
        sim.config.snapshot_every,
        sim.config.hibernate_after_ms
    ));
    sim.start_workload();
    for _ in 0..rounds {
        let action = rng.index(10);
        let text = match action {
            0 | 1 => {
                let candidates: Vec<GroupId> = groups
                    .iter()
                    .copied()
                    .filter(|g| !joined.contains(g))
                    .collect();
                if candidates.is_empty() {
                    String::from("nothing")
                } else {
                    let g = candidates[rng.index(candidates.len())];
                    let r = sim.join(&[g]);
                    if r == Ok(ControllerReply::Done) {
                        joined.insert(g);
                    }
                    format!("join {g}: {r:?}")
                }
            }
            2 => {
                if joined.len() < 2 {
                    String::from("nothing")
                } else {
                    let list: Vec<GroupId> = joined.iter().copied().collect();
                    let g = list[rng.index(list.len())];
                    let r = sim.leave(&[g]);
                    if r == Ok(ControllerReply::Done) {
                        joined.remove(&g);
                    }
                    format!("leave {g}: {r:?}")
                }
            }
            3 => {
                let list: Vec<GroupId> = joined.iter().copied().collect();
                if list.is_empty() {
                    String::from("nothing")
                } else {
                    let g = list[rng.index(list.len())];
                    let shard = rng.index(shards as usize) as u32;
                    let r = sim.controller(ControllerOp::Move { shard, group: g });
                    format!("move {shard} to {g}: {r:?}")
                }
            }
            4 | 5 => {
                let id = rng.range_inclusive(1, hosts);
                sim.crash(id);
                format!("crash {id}")
            }
            6 => {
                let down: Vec<NodeId> = (1..=hosts).filter(|h| !sim.is_up(*h)).collect();
                match down.first() {
                    Some(id) => {
                        sim.restart(*id);
                        format!("restart {id}")
                    }
                    None => String::from("nothing"),
                }
            }
            7 => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                for h in 1..=hosts {
                    if rng.chance(0.5) {
                        a.push(Endpoint::Node(h));
                    } else {
                        b.push(Endpoint::Node(h));
                    }
                }
                let text = format!("partition {a:?} | {b:?}");
                sim.network_mut().partition(vec![a, b]);
                text
            }
            8 => {
                let from = rng.range_inclusive(1, hosts);
                let to = rng.range_inclusive(1, hosts);
                sim.network_mut()
                    .cut_link(Endpoint::Node(from), Endpoint::Node(to));
                format!("cut {from}->{to}")
            }
            _ => {
                sim.network_mut().heal();
                String::from("heal")
            }
        };
        report
            .actions
            .push(format!("t={} {text}", sim.now().as_millis()));
        let pause = rng.range_inclusive(200, 800);
        sim.run_for(pause);
    }
    // Heal everything; the service must settle and finish every operation.
    sim.network_mut().heal();
    for id in 1..=hosts {
        let link = sim.network_mut().cut_links().cloned().collect::<Vec<_>>();
        for (a, b) in link {
            sim.network_mut().restore_link(a, b);
        }
        sim.restart(id);
    }
    sim.network_mut().config.drop_rate = 0.0;
    sim.network_mut().config.long_delay_rate = 0.0;
    sim.run_for(2_000);
    sim.stop_workload();
    if !sim.run_until(30_000, |s| !s.workload_pending()) {
        report.failures.push(String::from(
            "liveness: client operations still pending 30 s after healing",
        ));
    }
    if !sim.run_until(30_000, |s| s.is_settled()) {
        report.failures.push(String::from(
            "liveness: groups not settled 30 s after healing",
        ));
    }
    report.failures.extend(sim.violations());
    report.failures.extend(sim.check_history());
    report.operations = sim.history().len();
    report.configurations = sim
        .slots
        .values()
        .filter_map(|s| s.host.as_ref()?.controller())
        .map(|c| c.latest().num)
        .max()
        .unwrap_or(0);
    report
}

/// Hosts wired to each other with no latency, no loss and instant fsyncs,
/// stepped in lockstep on a virtual clock: the smallest driver of
/// [`Host`], for tests of batching and coalescing and for benchmarks.
/// Every step is checked against the host contract: at most one write and
/// at most one batch per destination per input.
pub struct Mesh {
    /// The hosts, by id.
    pub hosts: BTreeMap<NodeId, Host>,
    now: Instant,
    queue: Vec<HostBatch>,
    /// Batches delivered, by (from, to).
    pub batches: BTreeMap<(NodeId, NodeId), u64>,
    /// Messages inside the delivered batches.
    pub messages: u64,
    /// Of those, Raft messages.
    pub raft_messages: u64,
    /// Host writes made durable.
    pub writes: u64,
    /// The largest number of groups one host write carried.
    pub widest_write: usize,
    /// Contract breaches seen (more than one write or one batch per destination in a step).
    pub breaches: Vec<String>,
}

impl Mesh {
    /// Hosts built from these configurations, at time 0.
    pub fn new(configs: Vec<HostConfig>, seed: u64) -> Result<Mesh, HostError> {
        let mut hosts = BTreeMap::new();
        for config in configs {
            let id = config.id;
            hosts.insert(id, Host::new(config, seed ^ id, Instant::ZERO)?);
        }
        Ok(Mesh {
            hosts,
            now: Instant::ZERO,
            queue: Vec::new(),
            batches: BTreeMap::new(),
            messages: 0,
            raft_messages: 0,
            writes: 0,
            widest_write: 0,
            breaches: Vec::new(),
        })
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Feeds one input to host `id` and executes its outputs: writes are
    /// durable at once, batches queued for delivery, replies returned.
    pub fn feed(&mut self, id: NodeId, input: HostInput) -> Vec<HostReply> {
        self.feed_many(id, vec![input])
    }

    /// Feeds several inputs to host `id` before draining its outputs once
    /// (a driver that read several packets in one go).
    pub fn feed_many(&mut self, id: NodeId, inputs: Vec<HostInput>) -> Vec<HostReply> {
        let mut replies = Vec::new();
        let mut pending = vec![inputs];
        while let Some(inputs) = pending.pop() {
            let Some(host) = self.hosts.get_mut(&id) else {
                return replies;
            };
            for input in inputs {
                if host.handle(self.now, input).is_err() {
                    self.breaches
                        .push(format!("host {id} refused a driver input"));
                }
            }
            let mut persisted = None;
            let mut destinations = BTreeSet::new();
            let mut writes = 0;
            while let Some(output) = host.poll_output() {
                match output {
                    HostOutput::Persist(write) => {
                        writes += 1;
                        self.writes += 1;
                        self.widest_write = self.widest_write.max(write.writes.len());
                        persisted = Some(write.seq);
                    }
                    HostOutput::Send(batch) => {
                        if !destinations.insert(batch.to) {
                            self.breaches.push(format!(
                                "host {id} sent two batches to {} in one step",
                                batch.to
                            ));
                        }
                        self.queue.push(batch);
                    }
                    HostOutput::Reply { reply, .. } => replies.push(reply),
                }
            }
            if writes > 1 {
                self.breaches
                    .push(format!("host {id} emitted {writes} writes in one step"));
            }
            if let Some(seq) = persisted {
                pending.push(vec![HostInput::Persisted(seq)]);
            }
        }
        replies
    }

    /// Delivers every queued batch (and what they cause) until none is left.
    pub fn deliver(&mut self) {
        let mut rounds = 0;
        while !self.queue.is_empty() && rounds < 1000 {
            rounds += 1;
            for batch in core::mem::take(&mut self.queue) {
                *self.batches.entry((batch.from, batch.to)).or_default() += 1;
                self.messages += batch.messages.len() as u64;
                self.raft_messages += batch
                    .messages
                    .iter()
                    .filter(|m| matches!(m, HostMessage::Raft { .. }))
                    .count() as u64;
                let to = batch.to;
                self.feed(to, HostInput::Batch(batch));
            }
        }
    }

    /// Advances the clock to `until`, firing host timers as they come due
    /// and delivering everything at once.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.deliver();
            let next = self
                .hosts
                .iter()
                .map(|(id, h)| (h.poll_timeout(), *id))
                .min();
            match next {
                Some((at, id)) if at <= until => {
                    self.now = self.now.max(at);
                    self.feed(id, HostInput::Timeout);
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Total batches delivered.
    pub fn total_batches(&self) -> u64 {
        self.batches.values().sum()
    }
}
