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
use distribkv_core::kv::Operation;
use distribkv_core::raft::NodeId;
use distribkv_core::shard::controller::ControllerOp;
use distribkv_core::shard::{GroupId, shard_of};
use distribkv_core::sim::sharded::{AdminOp, ShardedSim};
use wasm_bindgen::prelude::*;

use crate::args::{self, error};
use crate::{install_panic_hook, linearizability, to_js, view};

mod admin;
mod config;
mod faults;

pub use admin::AdminDone;
use admin::{AdminTask, describe_op};
use config::{config_error, group_list, sharded_config};

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
/// Journal lines kept for `events()`, unless `config.traceCapacity` says otherwise.
pub const DEFAULT_TRACE_CAPACITY: u64 = 1_000;

/// A sharded distribKV service, simulated deterministically in virtual time.
#[wasm_bindgen]
#[derive(Clone)]
pub struct ShardedSimulation {
    sim: ShardedSim,
    queue: VecDeque<AdminTask>,
    done: VecDeque<AdminDone>,
    admin_timeout: u64,
    /// The last linearizability verdict and the history it was for.
    verdicts: linearizability::VerdictCache,
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
        let mut ids: Vec<GroupId> = Vec::with_capacity(items.len());
        for item in &items {
            let id = self.group_id(item, what)?;
            if ids.contains(&id) {
                return Err(error(format!("{what} names group {id} twice")));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Queues a page operation; its history id for a key-value one.
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
    /// A bad field throws an Error naming the field and its value
    /// (`config.hosts must be 1 to 32, not 40`), Raft timings the core
    /// refuses too (`bad configuration: config.electionTimeoutMs must be
    /// [min, max] with min below max ..., not [150, 150]`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "ShardedConfig")] config: JsValue,
    ) -> Result<ShardedSimulation, JsError> {
        install_panic_hook();
        let (config, page) = sharded_config(&config)?;
        let groups = config.host.groups.clone();
        let mut sim = ShardedSim::new(config).map_err(|e| error(config_error(&e)))?;
        if page.trace_capacity > 0 {
            sim.enable_journal(page.trace_capacity);
        }
        let mut this = ShardedSimulation {
            sim,
            queue: VecDeque::new(),
            done: VecDeque::new(),
            admin_timeout: page.admin_timeout,
            verdicts: linearizability::VerdictCache::default(),
        };
        if !page.join.is_empty() {
            let map: BTreeMap<GroupId, Vec<NodeId>> =
                page.join.iter().map(|g| (*g, groups[g].clone())).collect();
            this.ask(AdminOp::Controller(ControllerOp::Join(map)));
        }
        Ok(this)
    }

    /// An independent copy of the service at this moment (hosts, disks,
    /// network, messages in flight, clients, the page's queued and finished
    /// operations, history, journal): given the same calls, it runs on
    /// exactly as this one does, and what is done to one never changes the
    /// other. Free it (`free()`) when done.
    pub fn fork(&self) -> ShardedSimulation {
        self.clone()
    }

    // ---- time ------------------------------------------------------------

    /// Virtual milliseconds since the start.
    pub fn now(&self) -> f64 {
        self.sim.now().as_millis() as f64
    }

    /// Advances virtual time by `ms`; returns the new time. `ms` is at
    /// most 100,000,000 (about 27.8 virtual hours, so that a slip such as
    /// `runFor(1e12)` cannot freeze the page for good); a larger value, or
    /// one past 2^53 - 1, throws: run longer with several calls.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] ms: JsValue,
    ) -> Result<f64, JsError> {
        let ms = args::run_span(&ms, "ms")?;
        let until = self.sim.now().as_millis().saturating_add(ms);
        self.advance_to(until);
        Ok(self.now())
    }

    /// Processes every event up to virtual time `t`, then sets the clock to
    /// `t` (an earlier `t` does nothing); returns the new time. At `t =
    /// now()`, after single events (`step()`), it processes the rest of that
    /// millisecond, as a run from earlier to `t` would. `t` is at most
    /// 100,000,000 ms after `now()`, as `runFor`'s `ms`; a later one, or one
    /// past 2^53 - 1, throws.
    #[wasm_bindgen(js_name = runUntil)]
    pub fn run_until(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] t: JsValue,
    ) -> Result<f64, JsError> {
        let now = self.sim.now().as_millis();
        let t = args::run_target(&t, "t", now)?;
        if t >= now {
            self.advance_to(t);
        }
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
    /// the page's, 1.. the workload's). `opts.from`: only the operations
    /// from that id on (a page reads the history incrementally, as it does
    /// `Simulation.history`).
    #[wasm_bindgen(unchecked_return_type = "ShardedHistoryOp[]")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ from?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        let from = args::history_from(&opts)?;
        to_js(&view::sharded::history(&self.sim, from))
    }

    /// The journal's lines after `since` (0: every line kept), oldest
    /// first, at most the newest 500: `{ seq, at, node (the host), group,
    /// kind, text }`. Empty with `traceCapacity: 0`.
    #[wasm_bindgen(unchecked_return_type = "ShardedEvent[]")]
    pub fn events(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] since: JsValue,
    ) -> Result<JsValue, JsError> {
        let since = if since.is_undefined() || since.is_null() {
            0
        } else {
            args::integer_u64(&since, "since")?
        };
        to_js(&view::sharded::events(&self.sim, since, 500))
    }

    /// Every field of the item in flight `id` (`state().inFlight[].id`):
    /// `{ id, from, to, deliverAt, kind, messages: [{ kind, group, ...fields }] }`,
    /// a Raft message's fields by the core's serde names; `null` once it
    /// was delivered or dropped.
    #[wasm_bindgen(unchecked_return_type = "ShardedMessage | null")]
    pub fn message(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<JsValue, JsError> {
        let id = args::integer_u64(&id, "message id")?;
        match self.sim.in_flight_message(id) {
            Some(item) => to_js(&view::sharded::ShardedMessageView::new(&item)),
            None => Ok(JsValue::NULL),
        }
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
        let budget = args::check_budget(&opts)?;
        let history = self.sim.history();
        let key = (
            history.len(),
            history.len() - history.pending().count(),
            budget.max_steps,
        );
        let sim = &self.sim;
        let verdict = self.verdicts.verdict(key, || {
            let mut operations = history.operations().to_vec();
            for o in &mut operations {
                if !o.is_completed() {
                    o.outcome = distribkv_core::check::Outcome::Unknown;
                }
            }
            linearizability::verdict(&operations, sim.check_linearizable(budget))
        });
        to_js(&view::sharded::check(sim, verdict))
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
}
