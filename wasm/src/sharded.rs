//! `ShardedSimulation`: the core's sharded simulator
//! ([`distribkv_core::sim::sharded::ShardedSim`]) for the browser: hosts
//! holding replicas of the controller group and of several shard groups,
//! routing clerks, shard moves. It only translates, as [`crate::Simulation`]
//! does: arguments are checked here, the core decides, [`crate::view::sharded`]
//! renders.
//!
//! Operations the page asks for (`put`, `append`, `get`, `join`, `leave`,
//! `move`) run one at a time on one routing clerk, in the order asked, and
//! finish in virtual time while `runFor` advances it; key-value operations
//! are recorded in the history when asked (an early invocation only widens
//! their interval). The workload clients run concurrently with them.
//!
//! ```js
//! const sim = new ShardedSimulation({ seed: 1, hosts: 5, groups: 3, replicas: 3, shards: 10 });
//! sim.runFor(2000);           // the groups join (the first configuration)
//! const op = sim.put("x", "1");
//! sim.move(sim.shardOf("x"), 101);
//! sim.runFor(2000);
//! sim.history()[op - 1].status; // "ok"
//! sim.check().ok;             // true
//! ```

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use distribkv_core::check::Budget;
use distribkv_core::kv::Operation;
use distribkv_core::raft::{Config, NodeId};
use distribkv_core::shard::clerk::ShardClerkOutput;
use distribkv_core::shard::controller::{ControllerOp, ControllerReply};
use distribkv_core::shard::{GroupId, shard_of};
use distribkv_core::sim::Endpoint;
use distribkv_core::sim::sharded::{AdminOp, ShardedConfig, ShardedSim};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::args::{self, Fields, error};
use crate::{install_panic_hook, linearizability, to_js, view};

/// The id of the first shard group; the others follow (101, 102, ...).
pub const FIRST_GROUP: GroupId = 100;
/// Most hosts a sharded simulation may have.
pub const MAX_HOSTS: u64 = 32;
/// Most shard groups.
pub const MAX_GROUPS: u64 = 12;
/// Most shards.
pub const MAX_SHARDS: u64 = 64;
/// Most replicas of one group.
pub const MAX_REPLICAS: u64 = 7;
/// Most workload clients.
pub const MAX_SHARDED_CLIENTS: u64 = 20;
/// How long a page operation may wait for its answer before it is given
/// up (its outcome then unknown), unless the config says otherwise.
pub const DEFAULT_ADMIN_TIMEOUT_MS: u64 = 10_000;
/// Ended page operations kept for `state().admin.done`.
const ADMIN_DONE_KEPT: usize = 20;

const CONFIG_FIELDS: &[&str] = &[
    "seed",
    "hosts",
    "groups",
    "replicas",
    "shards",
    "controllerReplicas",
    "placement",
    "join",
    "clients",
    "keys",
    "latencyMs",
    "dropRate",
    "electionTimeoutMs",
    "heartbeatMs",
    "snapshotEvery",
    "adminTimeoutMs",
];

/// A page operation waiting for, or running on, the routing clerk.
#[derive(Clone, Debug)]
struct AdminTask {
    /// What it does.
    op: AdminOp,
    /// Its history id (key-value operations).
    history: Option<u64>,
    /// When it was asked (ms).
    asked_at: u64,
    /// When it started on the clerk (ms), once started.
    started_at: Option<u64>,
}

/// An ended page operation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminDone {
    /// What it did (`join 100 101`, `move shard 3 to 101`, `put x`).
    pub op: String,
    /// When it was asked.
    pub asked_at: u64,
    /// When it ended.
    pub ended_at: u64,
    /// `"ok"`, `"refused"` or `"timeout"`.
    pub outcome: &'static str,
    /// The controller's or the group's answer, in words.
    pub text: String,
}

/// A sharded distribKV service, simulated deterministically in virtual time.
#[wasm_bindgen]
pub struct ShardedSimulation {
    sim: ShardedSim,
    queue: VecDeque<AdminTask>,
    done: VecDeque<AdminDone>,
    admin_timeout: u64,
    last_check: Option<((usize, usize, u64), linearizability::Verdict)>,
}

/// Describes an admin operation in words.
fn describe_op(op: &AdminOp) -> String {
    match op {
        AdminOp::Kv(op) => {
            let key = String::from_utf8_lossy(op.key()).into_owned();
            match op {
                Operation::Put { value, .. } => {
                    format!("put {key} {}", String::from_utf8_lossy(value))
                }
                Operation::Append { value, .. } => {
                    format!("append {key} {}", String::from_utf8_lossy(value))
                }
                Operation::Get { .. } => format!("get {key}"),
                Operation::Delete { .. } => format!("delete {key}"),
            }
        }
        AdminOp::Controller(ControllerOp::Join(groups)) => {
            let ids: Vec<String> = groups.keys().map(|g| g.to_string()).collect();
            format!("join {}", ids.join(" "))
        }
        AdminOp::Controller(ControllerOp::Leave(groups)) => {
            let ids: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            format!("leave {}", ids.join(" "))
        }
        AdminOp::Controller(ControllerOp::Move { shard, group }) => {
            format!("move shard {shard} to {group}")
        }
        AdminOp::Controller(ControllerOp::Query(_)) => String::from("query"),
    }
}

/// Reads the constructor's config into the core's.
fn sharded_config(value: &JsValue) -> Result<(ShardedConfig, Vec<GroupId>, u64), JsError> {
    let fields = Fields::new(value, "config", CONFIG_FIELDS)?;
    let mut config = ShardedConfig::small(fields.read("seed", args::integer_u64)?.unwrap_or(1));
    let bounded = |name: &str, min: u64, max: u64, default: u64| -> Result<u64, JsError> {
        let n = fields.read(name, args::integer)?.unwrap_or(default);
        if n < min || n > max {
            return Err(error(format!(
                "config.{name} must be {min} to {max}, not {n}"
            )));
        }
        Ok(n)
    };
    let placement = match fields.get("placement") {
        Some(value) => Some(placement(&value)?),
        None => None,
    };
    let hosts = bounded(
        "hosts",
        1,
        MAX_HOSTS,
        placement
            .as_ref()
            .and_then(|p| p.iter().flatten().max().copied())
            .unwrap_or(5)
            .max(3),
    )?;
    let groups = match &placement {
        Some(p) => {
            if fields.get("groups").is_some() || fields.get("replicas").is_some() {
                return Err(error(
                    "config.placement lists each group's hosts: give it without config.groups and config.replicas",
                ));
            }
            for (i, servers) in p.iter().enumerate() {
                for host in servers {
                    if *host == 0 || *host > hosts {
                        return Err(error(format!(
                            "config.placement[{i}] names host {host}, but host ids are 1 to {hosts}"
                        )));
                    }
                }
            }
            p.clone()
        }
        None => {
            let groups = bounded("groups", 1, MAX_GROUPS, 3)?;
            let replicas = bounded("replicas", 1, MAX_REPLICAS.min(hosts), 3.min(hosts))?;
            // Round robin: group i's replicas on consecutive hosts, so
            // every host holds about the same number of replicas.
            (0..groups)
                .map(|i| {
                    (0..replicas)
                        .map(|j| (i * replicas + j) % hosts + 1)
                        .collect()
                })
                .collect()
        }
    };
    let controller = bounded(
        "controllerReplicas",
        1,
        MAX_REPLICAS.min(hosts),
        3.min(hosts),
    )?;
    config.hosts = hosts;
    config.host.controller = (1..=controller).collect();
    config.host.groups = groups
        .into_iter()
        .enumerate()
        .map(|(i, servers)| (FIRST_GROUP + i as u64, servers))
        .collect();
    config.host.shards = bounded("shards", 1, MAX_SHARDS, 10)? as u32;
    config.clients = bounded("clients", 0, MAX_SHARDED_CLIENTS, 3)?;
    config.keys = bounded("keys", 1, 1000, 6)?;
    fields.set("latencyMs", args::range, &mut config.network.latency)?;
    if let Some(rate) = fields.read("dropRate", args::number)? {
        if !(0.0..=0.5).contains(&rate) {
            return Err(error(format!(
                "config.dropRate must be 0 to 0.5, not {rate}"
            )));
        }
        config.network.drop_rate = rate;
    }
    let mut raft = Config::new(1, [1]);
    if let Some((min, max)) = fields.read("electionTimeoutMs", args::range)? {
        if min == 0 {
            return Err(error("config.electionTimeoutMs must start at 1 ms or more"));
        }
        raft.election_timeout_min = min;
        raft.election_timeout_max = max;
    }
    if let Some(ms) = fields.read("heartbeatMs", args::integer)? {
        if ms == 0 || ms >= raft.election_timeout_min {
            return Err(error(format!(
                "config.heartbeatMs must be at least 1 and below the election timeout's minimum ({}), not {ms}",
                raft.election_timeout_min
            )));
        }
        raft.heartbeat_interval = ms;
    }
    config.host.raft = raft;
    fields.set(
        "snapshotEvery",
        args::integer,
        &mut config.host.snapshot_every,
    )?;
    let join = match fields.get("join") {
        None => config.host.groups.keys().copied().collect(),
        Some(value) => {
            let mut join = Vec::new();
            for (i, item) in args::array(&value, "config.join")?.iter().enumerate() {
                let g = args::integer(item, &format!("config.join[{i}]"))?;
                if !config.host.groups.contains_key(&g) {
                    return Err(error(format!(
                        "config.join[{i}] is group {g}, but the groups are {}",
                        group_list(&config)
                    )));
                }
                join.push(g);
            }
            join
        }
    };
    let timeout = fields
        .read("adminTimeoutMs", args::integer)?
        .unwrap_or(DEFAULT_ADMIN_TIMEOUT_MS)
        .max(1);
    Ok((config, join, timeout))
}

/// `config.placement`: each group's hosts.
fn placement(value: &JsValue) -> Result<Vec<Vec<NodeId>>, JsError> {
    let groups = args::array(value, "config.placement")?;
    if groups.is_empty() || groups.len() as u64 > MAX_GROUPS {
        return Err(error(format!(
            "config.placement must list 1 to {MAX_GROUPS} groups, not {}",
            groups.len()
        )));
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let what = format!("config.placement[{i}]");
            let hosts = args::array(group, &what)?;
            if hosts.is_empty() || hosts.len() as u64 > MAX_REPLICAS {
                return Err(error(format!(
                    "{what} must list 1 to {MAX_REPLICAS} hosts, not {}",
                    hosts.len()
                )));
            }
            let mut ids: Vec<NodeId> = Vec::new();
            for (j, host) in hosts.iter().enumerate() {
                let id = args::integer(host, &format!("{what}[{j}]"))?;
                if ids.contains(&id) {
                    return Err(error(format!("{what} names host {id} twice")));
                }
                ids.push(id);
            }
            Ok(ids)
        })
        .collect()
}

fn group_list(config: &ShardedConfig) -> String {
    let ids: Vec<String> = config.host.groups.keys().map(|g| g.to_string()).collect();
    ids.join(", ")
}

impl ShardedSimulation {
    /// A host id, checked.
    fn host_id(&self, id: &JsValue) -> Result<NodeId, JsError> {
        let id = args::integer(id, "host id")?;
        let hosts = self.sim.config().hosts;
        if id == 0 || id > hosts {
            return Err(error(format!(
                "unknown host {id} (host ids are 1 to {hosts})"
            )));
        }
        Ok(id)
    }

    /// A group id, checked against the configured groups.
    fn group_id(&self, id: &JsValue, what: &str) -> Result<GroupId, JsError> {
        let id = args::integer(id, what)?;
        if !self.sim.config().host.groups.contains_key(&id) {
            return Err(error(format!(
                "unknown group {id} (the groups are {})",
                group_list(self.sim.config())
            )));
        }
        Ok(id)
    }

    /// A list of group ids (a number or an array of numbers).
    fn group_ids(&self, value: &JsValue, what: &str) -> Result<Vec<GroupId>, JsError> {
        let items = if js_sys::Array::is_array(value) {
            args::array(value, what)?
        } else {
            vec![value.clone()]
        };
        if items.is_empty() {
            return Err(error(format!("{what} must name at least one group")));
        }
        items.iter().map(|item| self.group_id(item, what)).collect()
    }

    /// Queues a page operation; its history id for a key-value one.
    fn ask(&mut self, op: AdminOp) -> Option<u64> {
        let history = match &op {
            AdminOp::Kv(kv) => Some(self.sim.record_admin_invoke(kv)),
            AdminOp::Controller(_) => None,
        };
        self.queue.push_back(AdminTask {
            op,
            history,
            asked_at: self.sim.now().as_millis(),
            started_at: None,
        });
        self.maybe_start_admin();
        history
    }

    /// Starts the next queued operation if the clerk is free.
    fn maybe_start_admin(&mut self) {
        let Some(task) = self.queue.front_mut() else {
            return;
        };
        if task.started_at.is_some() || self.sim.is_admin_busy() {
            return;
        }
        if self.sim.start_admin(task.op.clone()).is_ok() {
            task.started_at = Some(self.sim.now().as_millis());
        }
    }

    /// Ends the running operation with `output` (`None`: given up).
    fn finish_admin(&mut self, output: Option<ShardClerkOutput>) {
        let Some(task) = self.queue.pop_front() else {
            return;
        };
        let (outcome, text) = match &output {
            None => {
                self.sim.abandon_admin(task.history);
                (
                    "timeout",
                    String::from("no answer in time: given up (it may still take effect)"),
                )
            }
            Some(output) => {
                if let Some(id) = task.history {
                    self.sim.settle_admin_kv(id, output);
                }
                match output {
                    ShardClerkOutput::Done(Ok(Some(value))) => {
                        ("ok", String::from_utf8_lossy(value).into_owned())
                    }
                    ShardClerkOutput::Done(Ok(None)) => ("ok", String::new()),
                    ShardClerkOutput::Done(Err(e)) => ("refused", format!("{e:?}")),
                    ShardClerkOutput::ControllerDone(ControllerReply::Config(c)) => {
                        ("ok", format!("configuration {}", c.num))
                    }
                    ShardClerkOutput::ControllerDone(ControllerReply::Refused(e)) => {
                        ("refused", format!("{e:?}"))
                    }
                    ShardClerkOutput::ControllerDone(ControllerReply::Done) => {
                        ("ok", String::from("done"))
                    }
                    ShardClerkOutput::Send { .. } => ("ok", String::new()),
                }
            }
        };
        self.done.push_back(AdminDone {
            op: describe_op(&task.op),
            asked_at: task.asked_at,
            ended_at: self.sim.now().as_millis(),
            outcome,
            text,
        });
        while self.done.len() > ADMIN_DONE_KEPT {
            self.done.pop_front();
        }
    }

    /// Advances time to `until`, running the page's operations on the way.
    fn advance_to(&mut self, until: u64) {
        loop {
            self.maybe_start_admin();
            let now = self.sim.now().as_millis();
            let running = self.queue.front().and_then(|t| t.started_at);
            let Some(started) = running else {
                if until > now {
                    self.sim.run_for(until - now);
                }
                return;
            };
            let deadline = started + self.admin_timeout;
            let stop = until.min(deadline);
            let output = self.sim.run_admin(stop.saturating_sub(now));
            let now = self.sim.now().as_millis();
            if output.is_some() {
                self.finish_admin(output);
            } else if now >= deadline {
                self.finish_admin(None);
            } else if now >= until {
                return;
            }
        }
    }

    fn key_operation(
        key: &JsValue,
        make: impl FnOnce(Bytes) -> Operation,
    ) -> Result<AdminOp, JsError> {
        let key = args::string(key, "key")?;
        if key.is_empty() {
            return Err(error("key must not be empty"));
        }
        Ok(AdminOp::Kv(make(Bytes::from(key))))
    }
}

#[wasm_bindgen]
impl ShardedSimulation {
    /// A fresh sharded service; every config field is optional (see
    /// `ShardedConfig`). The groups in `config.join` (all by default) are
    /// asked to join at once: the first configuration arrives while time runs.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "ShardedConfig")] config: JsValue,
    ) -> Result<ShardedSimulation, JsError> {
        install_panic_hook();
        let (config, join, admin_timeout) = sharded_config(&config)?;
        let groups = config.host.groups.clone();
        let sim =
            ShardedSim::new(config).map_err(|e| error(format!("bad configuration: {e:?}")))?;
        let mut this = ShardedSimulation {
            sim,
            queue: VecDeque::new(),
            done: VecDeque::new(),
            admin_timeout,
            last_check: None,
        };
        if !join.is_empty() {
            let map: BTreeMap<GroupId, Vec<NodeId>> =
                join.iter().map(|g| (*g, groups[g].clone())).collect();
            this.ask(AdminOp::Controller(ControllerOp::Join(map)));
        }
        Ok(this)
    }

    // ---- time ------------------------------------------------------------

    /// Virtual milliseconds since the start.
    pub fn now(&self) -> f64 {
        self.sim.now().as_millis() as f64
    }

    /// Advances virtual time by `ms`; returns the new time.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] ms: JsValue,
    ) -> Result<f64, JsError> {
        let ms = args::millis(&ms, "ms")?;
        let until = self.sim.now().as_millis().saturating_add(ms);
        self.advance_to(until);
        Ok(self.now())
    }

    /// Advances to virtual time `t` (an earlier `t` does nothing); returns the new time.
    #[wasm_bindgen(js_name = runUntil)]
    pub fn run_until(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] t: JsValue,
    ) -> Result<f64, JsError> {
        let t = args::millis(&t, "t")?;
        let until = t.max(self.sim.now().as_millis());
        self.advance_to(until);
        Ok(self.now())
    }

    /// Processes the next event (a delivery, a timer, a disk sync), however
    /// far ahead; returns the new time.
    pub fn step(&mut self) -> f64 {
        self.maybe_start_admin();
        let running = self.queue.front().is_some_and(|t| t.started_at.is_some());
        if running {
            // At most one event: a result, if it came, ends the operation.
            if let Some(output) = self.sim.run_admin(0) {
                self.finish_admin(Some(output));
            }
        }
        self.sim.step_once();
        if running && let Some(output) = self.sim.run_admin(0) {
            self.finish_admin(Some(output));
        }
        self.now()
    }

    // ---- observation -------------------------------------------------------

    /// The whole service: hosts and the replicas they hold, groups, the
    /// controller's configuration and the shard map, messages in flight,
    /// clients and the page's operations.
    #[wasm_bindgen(unchecked_return_type = "ShardedState")]
    pub fn state(&self) -> Result<JsValue, JsError> {
        let admin = view::sharded::AdminView {
            running: self
                .queue
                .front()
                .filter(|t| t.started_at.is_some())
                .map(|t| describe_op(&t.op)),
            queued: self
                .queue
                .iter()
                .filter(|t| t.started_at.is_none())
                .map(|t| describe_op(&t.op))
                .collect(),
            done: self.done.iter().cloned().collect(),
        };
        to_js(&view::sharded::state(&self.sim, admin))
    }

    /// Every client operation: `{ id, client, kind, key, value, shard,
    /// invokedAt, completedAt, output, status }` (ids from 1; client 0 is
    /// the page's, 1.. the workload's).
    #[wasm_bindgen(unchecked_return_type = "ShardedHistoryOp[]")]
    pub fn history(&self) -> Result<JsValue, JsError> {
        to_js(&view::sharded::history(&self.sim))
    }

    /// The shard `key` belongs to.
    #[wasm_bindgen(js_name = shardOf)]
    pub fn shard_of(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Result<f64, JsError> {
        let key = args::string(&key, "key")?;
        Ok(f64::from(shard_of(
            key.as_bytes(),
            self.sim.config().host.shards,
        )))
    }

    /// The correctness checks: Raft's safety properties per group (checked
    /// after every event) and linearizability of the history per key,
    /// across every shard move. `opts.maxSteps` bounds the search.
    #[wasm_bindgen(unchecked_return_type = "ShardedCheckResult")]
    pub fn check(
        &mut self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ maxSteps?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        let fields = Fields::new(&opts, "check options", &["maxSteps"])?;
        let budget = match fields.read("maxSteps", args::integer)? {
            Some(steps) => Budget::steps(steps),
            None => Budget::DEFAULT,
        };
        let history = self.sim.history();
        let key = (
            history.len(),
            history.len() - history.pending().count(),
            budget.max_steps,
        );
        let verdict = match self.last_check.take() {
            Some((last, verdict)) if last == key => verdict,
            _ => {
                let mut operations = history.operations().to_vec();
                for o in &mut operations {
                    if !o.is_completed() {
                        o.outcome = distribkv_core::check::Outcome::Unknown;
                    }
                }
                let result = self.sim.check_linearizable(budget);
                linearizability::verdict(&operations, result)
            }
        };
        let result = to_js(&view::sharded::check(&self.sim, &verdict));
        self.last_check = Some((key, verdict));
        result
    }

    // ---- clients -----------------------------------------------------------

    /// `put key value`, routed by key to the group owning its shard;
    /// returns the operation id (`history()[id - 1]`).
    pub fn put(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
    ) -> Result<f64, JsError> {
        let value = Bytes::from(args::string(&value, "value")?);
        let op = Self::key_operation(&key, |key| Operation::Put { key, value })?;
        Ok(self.ask(op).map_or(0.0, |id| (id + 1) as f64))
    }

    /// `append key value` (a missing key counts as empty); returns the operation id.
    pub fn append(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
    ) -> Result<f64, JsError> {
        let value = Bytes::from(args::string(&value, "value")?);
        let op = Self::key_operation(&key, |key| Operation::Append { key, value })?;
        Ok(self.ask(op).map_or(0.0, |id| (id + 1) as f64))
    }

    /// `get key` (linearizable); returns the operation id.
    pub fn get(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Result<f64, JsError> {
        let op = Self::key_operation(&key, |key| Operation::Get { key })?;
        Ok(self.ask(op).map_or(0.0, |id| (id + 1) as f64))
    }

    /// Starts or stops the workload clients (appends of unique tokens,
    /// gets and puts on `config.keys` keys, back to back).
    #[wasm_bindgen(js_name = setWorkload)]
    pub fn set_workload(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "boolean")] on: JsValue,
    ) -> Result<(), JsError> {
        if args::boolean(&on, "on")? {
            self.sim.start_workload();
        } else {
            self.sim.stop_workload();
        }
        Ok(())
    }

    // ---- configuration ------------------------------------------------------

    /// Asks the controller to add groups (a group id or an array of them,
    /// with their configured hosts), then rebalance.
    pub fn join(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number | number[]")] groups: JsValue,
    ) -> Result<(), JsError> {
        let groups = self.group_ids(&groups, "groups")?;
        let map = groups
            .iter()
            .map(|g| (*g, self.sim.config().host.groups[g].clone()))
            .collect();
        self.ask(AdminOp::Controller(ControllerOp::Join(map)));
        Ok(())
    }

    /// Asks the controller to remove groups, their shards going to the rest.
    pub fn leave(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number | number[]")] groups: JsValue,
    ) -> Result<(), JsError> {
        let groups = self.group_ids(&groups, "groups")?;
        self.ask(AdminOp::Controller(ControllerOp::Leave(groups)));
        Ok(())
    }

    /// Asks the controller to give `shard` to `group` (which must have joined).
    #[wasm_bindgen(js_name = "move")]
    pub fn move_shard(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] shard: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] group: JsValue,
    ) -> Result<(), JsError> {
        let shard = args::integer(&shard, "shard")?;
        let shards = u64::from(self.sim.config().host.shards);
        if shard >= shards {
            return Err(error(format!(
                "unknown shard {shard} (shards are 0 to {})",
                shards - 1
            )));
        }
        let group = self.group_id(&group, "group")?;
        self.ask(AdminOp::Controller(ControllerOp::Move {
            shard: shard as u32,
            group,
        }));
        Ok(())
    }

    // ---- faults ------------------------------------------------------------

    /// Crashes a host: every replica it holds stops; unsynced writes are lost.
    pub fn crash(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] host: JsValue,
    ) -> Result<(), JsError> {
        let id = self.host_id(&host)?;
        self.sim.crash(id);
        Ok(())
    }

    /// Restarts a crashed host from its disk (every group it holds).
    pub fn restart(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] host: JsValue,
    ) -> Result<(), JsError> {
        let id = self.host_id(&host)?;
        self.sim.restart(id);
        Ok(())
    }

    /// Splits the hosts into sides (`[[1, 2], [3, 4, 5]]`); a host left
    /// out reaches no one. Clients reach every host.
    pub fn partition(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number[][]")] sides: JsValue,
    ) -> Result<(), JsError> {
        let mut seen = Vec::new();
        let mut groups = Vec::new();
        for (i, side) in args::array(&sides, "sides")?.iter().enumerate() {
            let mut endpoints = Vec::new();
            for (j, host) in args::array(side, &format!("sides[{i}]"))?
                .iter()
                .enumerate()
            {
                let id = self.host_id(host).map_err(|_| {
                    error(format!(
                        "sides[{i}][{j}] is not a host id (1 to {})",
                        self.sim.config().hosts
                    ))
                })?;
                if seen.contains(&id) {
                    return Err(error(format!("host {id} is on two sides")));
                }
                seen.push(id);
                endpoints.push(Endpoint::Node(id));
            }
            groups.push(endpoints);
        }
        if groups.len() < 2 {
            return Err(error("a partition needs at least two sides"));
        }
        self.sim.network_mut().partition(groups);
        Ok(())
    }

    /// Removes the partition and every cut link.
    pub fn heal(&mut self) {
        self.sim.network_mut().heal();
    }

    /// Cuts the link from one host to another (one direction).
    #[wasm_bindgen(js_name = cutLink)]
    pub fn cut_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        let (from, to) = (self.host_id(&from)?, self.host_id(&to)?);
        self.sim
            .network_mut()
            .cut_link(Endpoint::Node(from), Endpoint::Node(to));
        Ok(())
    }

    /// Restores a link cut by `cutLink`.
    #[wasm_bindgen(js_name = restoreLink)]
    pub fn restore_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        let (from, to) = (self.host_id(&from)?, self.host_id(&to)?);
        self.sim
            .network_mut()
            .restore_link(Endpoint::Node(from), Endpoint::Node(to));
        Ok(())
    }
}
