//! The JS configuration object of `new Simulation(config)` and of
//! `setWorkload(workload)`, read into the core's types.

use distribkv_core::sim::{SimConfig, Workload};
use wasm_bindgen::{JsError, JsValue};

use crate::args::{Fields, boolean, error, integer, integer_u64, latency_range, number, range};

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
    "followerReads",
    "maxEntriesPerMessage",
    "snapshotChunkBytes",
    "clientTimeoutMs",
    "clientGiveUpMs",
    "checkSafety",
    "traceCapacity",
];

/// A count or size (an [`integer`] that fits a `usize`: 32 bits in wasm).
fn count(value: &JsValue, what: &str) -> Result<usize, JsError> {
    let n = integer(value, what)?;
    usize::try_from(n).map_err(|_| error(format!("{what} must be at most {}, not {n}", usize::MAX)))
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
    fields.set("nodes", count, &mut config.nodes)?;
    fields.set("seed", integer_u64, &mut config.seed)?;
    if let Some((min, max)) = fields.read("electionTimeoutMs", range)? {
        config.raft.election_timeout_min = min;
        config.raft.election_timeout_max = max;
    }
    fields.set("heartbeatMs", integer, &mut config.raft.heartbeat_interval)?;
    fields.set("latencyMs", latency_range, &mut config.network.latency)?;
    fields.set("dropRate", number, &mut config.network.drop_rate)?;
    fields.set("duplicateRate", number, &mut config.network.duplicate_rate)?;
    fields.set("snapshotEvery", integer, &mut config.snapshot_every)?;
    fields.set("preVote", boolean, &mut config.raft.pre_vote)?;
    fields.set("checkQuorum", boolean, &mut config.raft.check_quorum)?;
    fields.set("diskLatencyMs", range, &mut config.disk_latency)?;
    fields.set("leaseReads", boolean, &mut config.raft.lease_reads)?;
    fields.set("followerReads", boolean, &mut config.follower_reads)?;
    fields.set(
        "maxEntriesPerMessage",
        count,
        &mut config.raft.max_entries_per_message,
    )?;
    fields.set(
        "snapshotChunkBytes",
        count,
        &mut config.raft.snapshot_chunk_bytes,
    )?;
    if let Some(ms) = fields.read("clientTimeoutMs", integer)? {
        if ms == 0 {
            return Err(error("config.clientTimeoutMs must be at least 1"));
        }
        config.client_attempt_timeout = ms;
    }
    if let Some(ms) = fields.read("clientGiveUpMs", integer)? {
        config.client_give_up = Some(ms);
    }
    fields.set("checkSafety", boolean, &mut config.check_safety)?;
    fields.set("traceCapacity", count, &mut config.trace_capacity)?;
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
    if let Some(clients) = fields.read("clients", integer)? {
        if clients > MAX_CLIENTS {
            return Err(error(format!(
                "workload.clients must be at most {MAX_CLIENTS}, not {clients}"
            )));
        }
        workload.clients = clients as usize;
    }
    fields.set("intervalMs", integer, &mut workload.interval)?;
    fields.set("keys", count, &mut workload.keys)?;
    fields.set("readFraction", number, &mut workload.read_fraction)?;
    Ok(workload)
}
