//! distribkv-wasm: the distribKV cluster simulator for the browser.
//!
//! One exported class, `Simulation`, wraps the core's deterministic
//! simulator ([`distribkv_core::sim::Sim`]). It only translates: JS
//! arguments are checked and turned into the core's types ([`args`],
//! [`config`]), calls are handed to the simulator (time and observation
//! here, [`faults`] and operator actions, [`clients`]' operations), and the
//! core's state is rendered as plain JSON-shaped data ([`view`],
//! [`linearizability`]; the TypeScript shapes in [`types`]). Every decision
//! about the cluster is the core's.
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
//! A second class, `ShardedSimulation` ([`sharded`]), wraps the sharded
//! simulator: a controller group and several replica groups on shared
//! hosts, shards moving between groups.
//!
//! Bad arguments throw a JS `Error` whose message names the argument; the
//! instance stays usable. The contract is in the design document ("The
//! browser simulation (wasm + web)"); `index.d.ts` in the built package
//! spells out every shape.

pub mod args;
pub mod clients;
pub mod config;
pub mod faults;
pub mod linearizability;
pub mod sharded;
pub mod types;
pub mod view;

use distribkv_core::sim::{Sim, SimError};
use distribkv_core::time::Instant;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::args::{Fields, error};

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
#[derive(Clone)]
pub struct Simulation {
    sim: Sim,
    /// The last linearizability verdict and the history it was for.
    verdicts: linearizability::VerdictCache,
}

impl Simulation {
    /// The JS error for a refused call; an unknown node id names the valid range.
    fn fail(&self, e: SimError) -> JsError {
        match e {
            SimError::UnknownNode(id) => error(format!(
                "unknown node {id} (node ids are 1 to {})",
                self.sim.node_count()
            )),
            other => error(other.to_string()),
        }
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
            verdicts: linearizability::VerdictCache::default(),
        })
    }

    /// An independent copy of the cluster at this moment (nodes, disks,
    /// network, messages in flight, clients, history, trace): given the same
    /// calls, it runs on exactly as this one does, and what is done to one
    /// never changes the other. Free it (`free()`) when done.
    pub fn fork(&self) -> Simulation {
        self.clone()
    }

    // ---- time ------------------------------------------------------------

    /// Virtual milliseconds since the start.
    pub fn now(&self) -> f64 {
        self.sim.now().as_millis() as f64
    }

    /// Advances virtual time by `ms`, processing every event on the way.
    /// Returns the number of events processed. `ms` is at most 100,000,000
    /// (about 27.8 virtual hours, so that a slip such as `runFor(1e12)`
    /// cannot freeze the page for good); a larger value, or one past
    /// 2^53 - 1, throws: run longer with several calls.
    #[wasm_bindgen(js_name = runFor)]
    pub fn run_for(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] ms: JsValue,
    ) -> Result<f64, JsError> {
        let ms = args::run_span(&ms, "ms")?;
        Ok(self.sim.run_for(ms) as f64)
    }

    /// Processes every event up to virtual time `t`, then sets the clock to
    /// `t` (an earlier `t` does nothing). Returns the number of events processed.
    /// `t` is at most 100,000,000 ms after `now()`, as `runFor`'s `ms`; a
    /// later one, or one past 2^53 - 1, throws.
    #[wasm_bindgen(js_name = runUntil)]
    pub fn run_until(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] t: JsValue,
    ) -> Result<f64, JsError> {
        let t = args::run_target(&t, "t", self.sim.now().as_millis())?;
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

    // ---- observation -------------------------------------------------------

    /// Every field of the packet `msgId` in flight, or `null`: its `inFlight`
    /// fields, `bytes` (its size), and a Raft message's own fields as the core
    /// names them, in camelCase (`term`, `prevLogIndex`, `conflict`, `meta`,
    /// ...; `entries` as `{ index, term, command }` rows, a snapshot chunk's
    /// `data` as its length), or a client packet's, also from the core's
    /// serde rendering (`requestId`, `request`, `op`, `key`, `value`, `ok`,
    /// `reply` or `error`, ...).
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

    /// The whole cluster. `opts.logTail` limits each node's log to its last N entries.
    #[wasm_bindgen(unchecked_return_type = "SimulationState")]
    pub fn state(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ logTail?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        let fields = Fields::new(&opts, "state options", &["logTail"])?;
        let tail = fields.read("logTail", args::integer)?;
        to_js(&view::state(&self.sim, tail).map_err(|e| self.fail(e))?)
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
        let budget = args::check_budget(&opts)?;
        let history = self.sim.history();
        let key = (
            history.len(),
            history.iter().filter(|e| e.outcome.is_some()).count(),
            budget.max_steps,
        );
        let sim = &self.sim;
        let verdict = self
            .verdicts
            .verdict(key, || linearizability::check(sim, budget));
        let safety = sim.violations();
        let mut violations = safety.to_vec();
        violations.extend(verdict.summary.clone());
        to_js(&Check {
            ok: violations.is_empty(),
            violations,
            safety,
            linearizability: verdict,
        })
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
