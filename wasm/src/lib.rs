//! distribkv-wasm: the distribKV cluster simulator for the browser.
//!
//! One exported class, `Simulation`, wraps the core's deterministic
//! simulator ([`distribkv_core::sim::Sim`]). It only translates: JS
//! arguments are checked and turned into the core's types ([`args`],
//! [`config`]), and the core's state is rendered as plain JSON-shaped data
//! ([`view`]). Every decision about the cluster is the core's.
//!
//! ```js
//! import init, { Simulation } from "./pkg/distribkv_wasm.js";
//! await init();
//! const sim = new Simulation({ nodes: 5, seed: 42 });
//! sim.runFor(1000);
//! const op = sim.put("x", "1");
//! sim.runFor(500);
//! sim.history()[op - 1].status; // "ok"
//! ```
//!
//! Bad arguments throw a JS `Error` whose message names the argument; the
//! instance stays usable. The contract is in the design document ("The
//! browser simulation (wasm + web)"); `index.d.ts` in the built package
//! spells out every shape.

pub mod args;
pub mod config;
pub mod linearizability;
pub mod view;

use bytes::Bytes;
use distribkv_core::check::Budget;
use distribkv_core::kv::Operation;
use distribkv_core::raft::{MembershipChange, NodeId};
use distribkv_core::sim::{Sim, SimError};
use distribkv_core::time::Instant;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::args::{Fields, error};
use crate::config::MAX_CLIENTS;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A node id (1..n) or a client ("c1", "c2", ...). */
export type Endpoint = number | string;

export interface SimulationConfig {
  nodes?: number; seed?: number | bigint;
  electionTimeoutMs?: [number, number]; heartbeatMs?: number; latencyMs?: [number, number];
  dropRate?: number; duplicateRate?: number; snapshotEvery?: number;
  preVote?: boolean; checkQuorum?: boolean;
  diskLatencyMs?: [number, number]; leaseReads?: boolean; maxEntriesPerMessage?: number;
  snapshotChunkBytes?: number; clientTimeoutMs?: number; clientGiveUpMs?: number | null;
  checkSafety?: boolean; traceCapacity?: number;
}

export interface LogEntry { index: number; term: number; command: string; }

export interface FollowerProgress {
  id: number; matchIndex: number; nextIndex: number;
  state: "probe" | "replicate" | "snapshot"; inflight: number;
}

export interface NodeState {
  id: number; up: boolean; role: "leader" | "follower" | "candidate" | "precandidate" | "learner";
  term: number; votedFor: number | null; leader: number | null;
  commitIndex: number; appliedIndex: number; snapshotIndex: number; snapshotTerm: number;
  lastIndex: number; durableIndex: number; electionDeadline: number | null;
  log: LogEntry[]; kv: Record<string, string>; progress: FollowerProgress[] | null;
  transferTarget: number | null;
}

export interface InFlightMessage {
  id: number; from: Endpoint; to: Endpoint; kind: string;
  sentAt: number; deliverAt: number; summary: string;
}

export interface SimulationState {
  now: number; nodes: NodeState[]; inFlight: InFlightMessage[];
  links: { cut: [Endpoint, Endpoint][]; partition: Endpoint[][] | null };
  membership: { voters: number[]; learners: number[] };
}

export interface HistoryOp {
  id: number; client: number; kind: "put" | "append" | "get" | "delete"; key: string;
  value: string | null; invokedAt: number; completedAt: number | null; output: string | null;
  status: "pending" | "ok" | "unknown" | "failed"; attempts: number; error: string | null;
}

export interface SimEvent { seq?: number; at: number; node: Endpoint | null; kind: string; text: string; }

export interface ClientInfo {
  id: number; busy: boolean; leaderGuess: number | null; seq: number;
  workload: boolean; session: number | null;
}

export interface WorkloadConfig { clients?: number; intervalMs?: number; keys?: number; readFraction?: number; }

export interface CheckResult {
  ok: boolean; violations: string[]; safety: string[];
  linearizability: { ok: boolean; key: string | null; ops: number[]; text: string; decided: boolean };
}

export interface SimStats {
  events: number; packetsSent: number; rpcsSent: number; bytesSent: number;
  delivered: number; dropped: number; syncs: number; writesLost: number;
}
"#;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Logs a panic to the console before the instance traps. Nothing is meant
/// to panic (every argument is checked, the core reports misuse as
/// errors); this makes a broken invariant visible if one does.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                console_error(&format!("distribkv-wasm panicked: {info}"));
            }));
        });
    }
}

/// Converts a rendering into a plain JS value: objects (not `Map`s) and
/// numbers (not BigInt).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| error(format!("could not render the result for JS: {e}")))
}

/// A whole distribKV cluster, simulated deterministically in virtual time.
#[wasm_bindgen]
pub struct Simulation {
    sim: Sim,
    /// The last linearizability verdict and the history it was for
    /// (operations, settled operations, step budget).
    last_check: Option<((usize, usize, u64), linearizability::Verdict)>,
}

impl Simulation {
    fn fail(&self, e: SimError) -> JsError {
        match e {
            SimError::UnknownNode(id) => error(format!(
                "unknown node {id} (node ids are 1 to {})",
                self.sim.node_count()
            )),
            other => error(other.to_string()),
        }
    }

    fn node_id(&self, value: &JsValue, what: &str) -> Result<NodeId, JsError> {
        args::integer(value, what)
    }

    fn invoke(&mut self, client: &JsValue, operation: Operation) -> Result<u64, JsError> {
        let client = args::optional_integer(client, "client")?;
        if let Some(number) = client {
            if number == 0 || number > MAX_CLIENTS {
                return Err(error(format!(
                    "client must be 1 to {MAX_CLIENTS}, not {number}"
                )));
            }
            // Clients are numbered from 1; naming one that does not exist yet
            // opens it (and every one before it).
            while (self.sim.client_count() as u64) < number {
                self.sim.add_client();
            }
        }
        self.sim.invoke(client, operation).map_err(|e| self.fail(e))
    }

    fn key(value: &JsValue) -> Result<Bytes, JsError> {
        Ok(Bytes::from(args::string(value, "key")?))
    }

    fn value(value: &JsValue) -> Result<Bytes, JsError> {
        Ok(Bytes::from(args::string(value, "value")?))
    }
}

#[wasm_bindgen]
impl Simulation {
    /// A fresh cluster: `config` fields are all optional (`{ nodes: 5, seed: 42 }`).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "SimulationConfig")] config: JsValue,
    ) -> Result<Simulation, JsError> {
        install_panic_hook();
        let config = config::sim_config(&config)?;
        let sim = Sim::try_new(config).map_err(|e| error(e.to_string()))?;
        Ok(Simulation {
            sim,
            last_check: None,
        })
    }

    // ---- time ------------------------------------------------------------

    /// Virtual milliseconds since the start.
    pub fn now(&self) -> f64 {
        self.sim.now().as_millis() as f64
    }

    /// Advances virtual time by `ms`, processing every event on the way.
    /// Returns the number of events processed.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] ms: JsValue,
    ) -> Result<f64, JsError> {
        let ms = args::millis(&ms, "ms")?;
        Ok(self.sim.run_for(ms) as f64)
    }

    /// Processes every event up to virtual time `t`, then sets the clock to
    /// `t` (an earlier `t` does nothing). Returns the number of events processed.
    #[wasm_bindgen(js_name = runUntil)]
    pub fn run_until(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] t: JsValue,
    ) -> Result<f64, JsError> {
        let t = args::millis(&t, "t")?;
        Ok(self.sim.run_until(Instant(t)) as f64)
    }

    /// Processes the next event: `{ at, node, kind, text }`, or `null` if nothing is scheduled.
    #[wasm_bindgen(unchecked_return_type = "SimEvent | null")]
    pub fn step(&mut self) -> Result<JsValue, JsError> {
        match self.sim.step() {
            Some(info) => to_js(&view::EventView::from(info)),
            None => Ok(JsValue::NULL),
        }
    }

    /// Virtual time of the next event, or `null`.
    #[wasm_bindgen(js_name = nextEventAt, unchecked_return_type = "number | null")]
    pub fn next_event_at(&self) -> JsValue {
        match self.sim.next_event_at() {
            Some(at) if at != Instant::NEVER => JsValue::from(at.as_millis() as f64),
            _ => JsValue::NULL,
        }
    }

    /// Trace lines with `seq > sinceSeq` (the last `traceCapacity` lines are kept).
    #[wasm_bindgen(unchecked_return_type = "SimEvent[]")]
    pub fn events(
        &self,
        #[wasm_bindgen(js_name = sinceSeq, unchecked_optional_param_type = "number")]
        since_seq: JsValue,
    ) -> Result<JsValue, JsError> {
        let since = args::optional_integer(&since_seq, "sinceSeq")?.unwrap_or(0);
        let lines: Vec<view::EventView> = self
            .sim
            .trace_since(since)
            .map(view::EventView::from)
            .collect();
        to_js(&lines)
    }

    // ---- faults ----------------------------------------------------------

    /// Crashes node `id`: its volatile state and unsynced writes are lost.
    pub fn crash(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim.crash(id).map_err(|e| self.fail(e))
    }

    /// Restarts node `id` from what its disk holds.
    pub fn restart(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim.restart(id).map_err(|e| self.fail(e))
    }

    /// Splits the nodes into groups that reach only each other
    /// (`[[1, 2], [3, 4, 5]]`); unlisted nodes are alone. Replaces any
    /// earlier partition; clients reach every node.
    pub fn partition(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number[][]")] groups: JsValue,
    ) -> Result<(), JsError> {
        let outer = args::array(&groups, "partition groups")
            .map_err(|_| error(format!(
                "partition expects an array of arrays of node ids, like [[1, 2], [3, 4, 5]], not {}",
                args::describe(&groups)
            )))?;
        let mut parsed = Vec::with_capacity(outer.len());
        for (i, group) in outer.iter().enumerate() {
            let members = args::array(group, &format!("partition group {i}"))?;
            let mut ids = Vec::with_capacity(members.len());
            for member in &members {
                ids.push(self.node_id(member, &format!("node id in partition group {i}"))?);
            }
            parsed.push(ids);
        }
        self.sim.partition(&parsed).map_err(|e| self.fail(e))
    }

    /// Removes the partition and every cut link.
    pub fn heal(&mut self) {
        self.sim.heal();
    }

    /// Cuts the link from node `from` to node `to` (one direction).
    #[wasm_bindgen(js_name = cutLink)]
    pub fn cut_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        let from = self.node_id(&from, "from")?;
        let to = self.node_id(&to, "to")?;
        self.sim.cut_link(from, to).map_err(|e| self.fail(e))
    }

    /// Restores the link from node `from` to node `to`.
    #[wasm_bindgen(js_name = restoreLink)]
    pub fn restore_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        let from = self.node_id(&from, "from")?;
        let to = self.node_id(&to, "to")?;
        self.sim.restore_link(from, to).map_err(|e| self.fail(e))
    }

    /// Probability (0..1) that a packet is lost.
    #[wasm_bindgen(js_name = setDropRate)]
    pub fn set_drop_rate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] rate: JsValue,
    ) -> Result<(), JsError> {
        let rate = args::number(&rate, "drop rate")?;
        self.sim.set_drop_rate(rate).map_err(|e| self.fail(e))
    }

    /// Probability (0..1) that a packet is delivered twice.
    #[wasm_bindgen(js_name = setDuplicateRate)]
    pub fn set_duplicate_rate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] rate: JsValue,
    ) -> Result<(), JsError> {
        let rate = args::number(&rate, "duplicate rate")?;
        self.sim.set_duplicate_rate(rate).map_err(|e| self.fail(e))
    }

    /// One-way latency range for packets sent from now on, ms.
    #[wasm_bindgen(js_name = setLatency)]
    pub fn set_latency(
        &mut self,
        #[wasm_bindgen(js_name = minMs, unchecked_param_type = "number")] min_ms: JsValue,
        #[wasm_bindgen(js_name = maxMs, unchecked_param_type = "number")] max_ms: JsValue,
    ) -> Result<(), JsError> {
        let min = args::integer(&min_ms, "minimum latency")?;
        let max = args::integer(&max_ms, "maximum latency")?;
        self.sim.set_latency(min, max).map_err(|e| self.fail(e))
    }

    /// Node `id`'s election timer fires now.
    #[wasm_bindgen(js_name = triggerElection)]
    pub fn trigger_election(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim.campaign(id).map_err(|e| self.fail(e))
    }

    /// Asks the current leader to hand leadership to node `to`.
    #[wasm_bindgen(js_name = transferLeadership)]
    pub fn transfer_leadership(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        let to = self.node_id(&to, "node id")?;
        self.sim.transfer_leadership(to).map_err(|e| self.fail(e))
    }

    /// Starts a new machine (the next node id, at most 9 in all) that knows
    /// the current membership; returns its id. It takes part once added with
    /// `addLearner` (then `promote`).
    #[wasm_bindgen(js_name = addNode)]
    pub fn add_node(&mut self) -> Result<f64, JsError> {
        self.sim
            .add_node()
            .map(|id| id as f64)
            .map_err(|e| self.fail(e))
    }

    /// Asks the leader to add node `id` as a learner (it receives the log, does not vote).
    #[wasm_bindgen(js_name = addLearner)]
    pub fn add_learner(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim
            .change_membership(MembershipChange::AddLearner(id))
            .map_err(|e| self.fail(e))
    }

    /// Asks the leader to make node `id` a voter.
    pub fn promote(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim
            .change_membership(MembershipChange::AddVoter(id))
            .map_err(|e| self.fail(e))
    }

    /// Asks the leader to remove node `id` from the cluster.
    #[wasm_bindgen(js_name = removeMember)]
    pub fn remove_member(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim
            .change_membership(MembershipChange::Remove(id))
            .map_err(|e| self.fail(e))
    }

    /// Node `id` snapshots its state machine and compacts its log now.
    pub fn snapshot(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        let id = self.node_id(&id, "node id")?;
        self.sim.snapshot(id).map_err(|e| self.fail(e))
    }

    /// Drops the packet `msgId` in flight; returns whether it was in flight.
    #[wasm_bindgen(js_name = dropMessage)]
    pub fn drop_message(
        &mut self,
        #[wasm_bindgen(js_name = msgId, unchecked_param_type = "number")] msg_id: JsValue,
    ) -> Result<bool, JsError> {
        let id = args::integer(&msg_id, "message id")?;
        Ok(self.sim.drop_packet(id))
    }

    /// Every field of the packet `msgId` in flight, or `null`.
    #[wasm_bindgen(unchecked_return_type = "(InFlightMessage & Record<string, unknown>) | null")]
    pub fn message(
        &self,
        #[wasm_bindgen(js_name = msgId, unchecked_param_type = "number")] msg_id: JsValue,
    ) -> Result<JsValue, JsError> {
        let id = args::integer(&msg_id, "message id")?;
        match self.sim.packet(id) {
            Some(packet) => to_js(&view::MessageView::new(packet)),
            None => Ok(JsValue::NULL),
        }
    }

    // ---- clients ---------------------------------------------------------

    /// `put key value`; returns the operation id. Without `client`, an idle
    /// client runs it (a new one if all are busy); with one, that client
    /// runs it after what it is doing.
    pub fn put(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        let operation = Operation::Put {
            key: Self::key(&key)?,
            value: Self::value(&value)?,
        };
        self.invoke(&client, operation).map(|id| id as f64)
    }

    /// `append key value` (a missing key counts as empty); returns the operation id.
    pub fn append(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        let operation = Operation::Append {
            key: Self::key(&key)?,
            value: Self::value(&value)?,
        };
        self.invoke(&client, operation).map(|id| id as f64)
    }

    /// `get key` (linearizable, via ReadIndex); returns the operation id.
    pub fn get(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        let operation = Operation::Get {
            key: Self::key(&key)?,
        };
        self.invoke(&client, operation).map(|id| id as f64)
    }

    /// `delete key`; returns the operation id.
    pub fn delete(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        let operation = Operation::Delete {
            key: Self::key(&key)?,
        };
        self.invoke(&client, operation).map(|id| id as f64)
    }

    /// Starts, changes or (with `clients: 0`) stops a steady workload.
    /// Absent fields keep their current values.
    #[wasm_bindgen(js_name = setWorkload)]
    pub fn set_workload(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "WorkloadConfig")] workload: JsValue,
    ) -> Result<(), JsError> {
        let workload = config::workload(&workload, self.sim.workload())?;
        self.sim.set_workload(workload).map_err(|e| self.fail(e))
    }

    /// Every client: `[{ id, busy, leaderGuess, seq, workload, session }]`.
    #[wasm_bindgen(unchecked_return_type = "ClientInfo[]")]
    pub fn clients(&self) -> Result<JsValue, JsError> {
        to_js(&view::clients(&self.sim))
    }

    /// Every operation invoked so far, in invocation order (`history()[id - 1]`
    /// is operation `id`). `opts.from` (extension) returns only the operations
    /// with `id >= from`, so a caller can re-read from its oldest pending one.
    #[wasm_bindgen(unchecked_return_type = "HistoryOp[]")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ from?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        let fields = Fields::new(&opts, "history options", &["from"])?;
        let from = fields.integer("from")?.unwrap_or(1).max(1);
        let skip = usize::try_from(from - 1).unwrap_or(usize::MAX);
        let ops: Vec<view::HistoryView> = self
            .sim
            .history()
            .iter()
            .skip(skip)
            .map(view::HistoryView::from)
            .collect();
        to_js(&ops)
    }

    // ---- observation -------------------------------------------------------

    /// The whole cluster. `opts.logTail` limits each node's log to its last N entries.
    #[wasm_bindgen(unchecked_return_type = "SimulationState")]
    pub fn state(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ logTail?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        let fields = Fields::new(&opts, "state options", &["logTail"])?;
        let tail = fields.integer("logTail")?;
        to_js(&view::state(&self.sim, tail))
    }

    /// The correctness checks: Raft's safety properties (checked after
    /// every event) and linearizability of the client history.
    /// `opts.maxSteps` bounds the linearizability search (default
    /// 10,000,000 steps); past it the verdict is undecided, never a violation.
    #[wasm_bindgen(unchecked_return_type = "CheckResult")]
    pub fn check(
        &mut self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ maxSteps?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Check<'a> {
            ok: bool,
            violations: Vec<String>,
            safety: &'a [String],
            linearizability: &'a linearizability::Verdict,
        }
        let fields = Fields::new(&opts, "check options", &["maxSteps"])?;
        let budget = match fields.integer("maxSteps")? {
            Some(steps) => Budget::steps(steps),
            None => Budget::DEFAULT,
        };
        // The verdict depends only on the history: recheck only when an
        // operation was added or settled.
        let history = self.sim.history();
        let key = (
            history.len(),
            history.iter().filter(|e| e.outcome.is_some()).count(),
            budget.max_steps,
        );
        let verdict = match self.last_check.take() {
            Some((last, verdict)) if last == key => verdict,
            _ => linearizability::check(&self.sim, budget),
        };
        let safety = self.sim.violations();
        let mut violations = safety.to_vec();
        violations.extend(verdict.summary.clone());
        let result = to_js(&Check {
            ok: violations.is_empty(),
            violations,
            safety,
            linearizability: &verdict,
        });
        self.last_check = Some((key, verdict));
        result
    }

    /// The trace hash (a u64 in decimal): equal for equal runs, on every platform.
    #[wasm_bindgen(js_name = traceHash)]
    pub fn trace_hash(&self) -> String {
        self.sim.trace_hash().to_string()
    }

    /// The leader with the highest term among the up nodes, or `null` (extension).
    #[wasm_bindgen(unchecked_return_type = "number | null")]
    pub fn leader(&self) -> JsValue {
        self.sim
            .leader()
            .map_or(JsValue::NULL, |id| JsValue::from(id as f64))
    }

    /// The simulator's counters (extension).
    #[wasm_bindgen(unchecked_return_type = "SimStats")]
    pub fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&view::StatsView::from(self.sim.stats()))
    }
}
