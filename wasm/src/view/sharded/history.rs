//! `history()`: every client operation, with its key's shard and status.

use std::collections::BTreeSet;

use distribkv_core::check::{OpKind, Outcome};
use distribkv_core::shard::shard_of;
use distribkv_core::sim::sharded::ShardedSim;
use serde::Serialize;

use crate::view::text;

/// One operation of `history()`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardedHistoryOp {
    /// Id, from 1 (`history()[id - 1]`).
    pub id: u64,
    /// Client: 0 the page's, 1.. the workload's.
    pub client: u64,
    /// `"put"`, `"append"`, `"get"` or `"delete"`.
    pub kind: &'static str,
    /// The key.
    pub key: String,
    /// The value written (puts, appends).
    pub value: Option<String>,
    /// The key's shard.
    pub shard: u32,
    /// When invoked.
    pub invoked_at: u64,
    /// When answered.
    pub completed_at: Option<u64>,
    /// What a get read (`null`: missing key, or not a get).
    pub output: Option<String>,
    /// `"pending"`, `"ok"` or `"unknown"` (given up: it may or may not
    /// have taken effect).
    pub status: &'static str,
}

/// `history()`.
/// `history({ from })`: the operations from id `from` (1-based) on.
pub fn history(sim: &ShardedSim, from: u64) -> Vec<ShardedHistoryOp> {
    let history = sim.history();
    let pending: BTreeSet<u64> = history.pending().map(|o| o.id).collect();
    let shards = sim.config().host.shards;
    let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
    history
        .operations()
        .iter()
        .skip(skip)
        .map(|o| {
            let (kind, value) = match &o.kind {
                OpKind::Put(v) => ("put", Some(text(v))),
                OpKind::Append(v) => ("append", Some(text(v))),
                OpKind::Get => ("get", None),
                OpKind::Delete => ("delete", None),
            };
            let (completed_at, output) = match &o.outcome {
                Outcome::Ok {
                    completed_at,
                    value,
                } => (Some(*completed_at), value.as_deref().map(text)),
                Outcome::Unknown => (None, None),
            };
            let status = if completed_at.is_some() {
                "ok"
            } else if pending.contains(&o.id) {
                "pending"
            } else {
                "unknown"
            };
            ShardedHistoryOp {
                id: o.id + 1,
                client: o.client,
                kind,
                key: text(&o.key),
                value,
                shard: shard_of(&o.key, shards),
                invoked_at: o.invoked_at,
                completed_at,
                output,
                status,
            }
        })
        .collect()
}
