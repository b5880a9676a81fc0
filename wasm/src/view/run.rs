//! `events()` / `step()` and `stats()`: what the run did, line by line and
//! in counters.

use distribkv_core::sim::{SimStats, StepInfo, TraceLine};
use serde::Serialize;

use super::JsEndpoint;

/// One line of `events()`, and what `step()` returns (without `seq`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    at: u64,
    node: Option<JsEndpoint>,
    /// The group a sharded journal line concerns (0: the controller).
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<u64>,
    kind: &'static str,
    text: String,
}

impl EventView {
    /// A line from its parts.
    pub fn new(
        seq: Option<u64>,
        at: u64,
        node: Option<JsEndpoint>,
        group: Option<u64>,
        kind: &'static str,
        text: String,
    ) -> EventView {
        EventView {
            seq,
            at,
            node,
            group,
            kind,
            text,
        }
    }
}

impl From<&TraceLine> for EventView {
    fn from(line: &TraceLine) -> EventView {
        EventView {
            seq: Some(line.seq),
            at: line.at.as_millis(),
            node: line.endpoint.map(JsEndpoint::from),
            group: None,
            kind: line.kind,
            text: line.text(),
        }
    }
}

impl From<StepInfo> for EventView {
    fn from(info: StepInfo) -> EventView {
        EventView {
            seq: None,
            at: info.at.as_millis(),
            node: info.endpoint.map(JsEndpoint::from),
            group: None,
            kind: info.kind,
            text: info.text,
        }
    }
}

/// `stats()` (extension): the simulator's counters.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    events: u64,
    packets_sent: u64,
    rpcs_sent: u64,
    bytes_sent: u64,
    delivered: u64,
    dropped: u64,
    syncs: u64,
    writes_lost: u64,
}

impl From<&SimStats> for StatsView {
    fn from(stats: &SimStats) -> StatsView {
        StatsView {
            events: stats.events,
            packets_sent: stats.packets_sent,
            rpcs_sent: stats.rpcs_sent,
            bytes_sent: stats.bytes_sent,
            delivered: stats.delivered,
            dropped: stats.dropped,
            syncs: stats.syncs,
            writes_lost: stats.writes_lost,
        }
    }
}
