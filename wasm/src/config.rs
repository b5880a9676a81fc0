//! The JS configuration object of `new Simulation(config)` and of
//! `setWorkload(workload)`, read into the core's types.

use distribkv_core::sim::{SimConfig, Workload};
use wasm_bindgen::{JsError, JsValue};

use crate::args::{Fields, error};

/// Trace lines kept for `events()` unless the config says otherwise.
pub const DEFAULT_TRACE_CAPACITY: usize = 5_000;

/// Most clients one simulation may have (workload and explicit ids alike).
pub const MAX_CLIENTS: u64 = 100;

const CONFIG_FIELDS: &[&str] = &[
    // The contract's fields.
    "nodes",
    "seed",
    "electionTimeoutMs",
    "heartbeatMs",
    "latencyMs",
    "dropRate",
    "duplicateRate",
    "snapshotEvery",
    "preVote",
    "checkQuorum",
    // Extensions: the rest of the simulator's configuration.
    "diskLatencyMs",
    "leaseReads",
    "maxEntriesPerMessage",
    "snapshotChunkBytes",
    "clientTimeoutMs",
    "clientGiveUpMs",
    "checkSafety",
    "traceCapacity",
];

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Reads the constructor's config; absent fields keep [`SimConfig::default`]
/// (and a trace of [`DEFAULT_TRACE_CAPACITY`] lines). Value ranges are
/// checked by `Sim::try_new`.
pub fn sim_config(value: &JsValue) -> Result<SimConfig, JsError> {
    let fields = Fields::new(value, "config", CONFIG_FIELDS)?;
    let mut config = SimConfig {
        trace_capacity: DEFAULT_TRACE_CAPACITY,
        ..SimConfig::default()
    };
    if let Some(nodes) = fields.integer("nodes")? {
        config.nodes = to_usize(nodes);
    }
    if let Some(seed) = fields.integer_u64("seed")? {
        config.seed = seed;
    }
    if let Some(range) = fields.range("electionTimeoutMs")? {
        config.election_timeout = range;
    }
    if let Some(heartbeat) = fields.integer("heartbeatMs")? {
        config.heartbeat = heartbeat;
    }
    if let Some(range) = fields.range("latencyMs")? {
        config.network.latency = range;
    }
    if let Some(rate) = fields.number("dropRate")? {
        config.network.drop_rate = rate;
    }
    if let Some(rate) = fields.number("duplicateRate")? {
        config.network.duplicate_rate = rate;
    }
    if let Some(every) = fields.integer("snapshotEvery")? {
        config.snapshot_every = every;
    }
    if let Some(flag) = fields.boolean("preVote")? {
        config.pre_vote = flag;
    }
    if let Some(flag) = fields.boolean("checkQuorum")? {
        config.check_quorum = flag;
    }
    if let Some(range) = fields.range("diskLatencyMs")? {
        config.disk_latency = range;
    }
    if let Some(flag) = fields.boolean("leaseReads")? {
        config.lease_reads = flag;
    }
    if let Some(count) = fields.integer("maxEntriesPerMessage")? {
        config.max_entries_per_message = to_usize(count);
    }
    if let Some(bytes) = fields.integer("snapshotChunkBytes")? {
        config.snapshot_chunk_bytes = to_usize(bytes);
    }
    if let Some(ms) = fields.integer("clientTimeoutMs")? {
        if ms == 0 {
            return Err(error("config.clientTimeoutMs must be at least 1"));
        }
        config.client_attempt_timeout = ms;
    }
    if let Some(value) = fields.get("clientGiveUpMs") {
        config.client_give_up = Some(crate::args::integer(&value, "config.clientGiveUpMs")?);
    }
    if let Some(flag) = fields.boolean("checkSafety")? {
        config.check_safety = flag;
    }
    if let Some(lines) = fields.integer("traceCapacity")? {
        config.trace_capacity = to_usize(lines);
    }
    Ok(config)
}

const WORKLOAD_FIELDS: &[&str] = &["clients", "intervalMs", "keys", "readFraction"];

/// Reads `setWorkload`'s argument. Absent fields keep the workload in
/// effect (or, with none, [`Workload::default`] with zero clients).
pub fn workload(value: &JsValue, current: Option<&Workload>) -> Result<Workload, JsError> {
    let fields = Fields::new(value, "workload", WORKLOAD_FIELDS)?;
    let mut workload = current.cloned().unwrap_or(Workload {
        clients: 0,
        ..Workload::default()
    });
    if let Some(clients) = fields.integer("clients")? {
        if clients > MAX_CLIENTS {
            return Err(error(format!(
                "workload.clients must be at most {MAX_CLIENTS}, not {clients}"
            )));
        }
        workload.clients = to_usize(clients);
    }
    if let Some(interval) = fields.integer("intervalMs")? {
        workload.interval = interval;
    }
    if let Some(keys) = fields.integer("keys")? {
        workload.keys = to_usize(keys);
    }
    if let Some(fraction) = fields.number("readFraction")? {
        workload.read_fraction = fraction;
    }
    Ok(workload)
}
