//! What the JS API returns: plain, JSON-shaped renderings of the core's
//! state, with the contract's camelCase names. Nothing here decides
//! anything about the simulation; it only copies and renders, one file per
//! call:
//!
//! - [`cluster`]: `state()`, the nodes (a crashed one as the core says it
//!   restarts), their logs and the leader's view of its followers, the
//!   packets in flight, the links and the membership;
//! - [`message`]: `message(id)`, every field of one packet;
//! - [`mod@clients`]: `history()` and `clients()`;
//! - [`run`]: `events()` / `step()` lines and `stats()`;
//! - [`sharded`]: everything `ShardedSimulation` returns.

pub mod clients;
pub mod cluster;
pub mod message;
pub mod run;
pub mod sharded;

pub use clients::{ClientView, HistoryView, clients};
pub use cluster::{State, state};
pub use message::MessageView;
pub use run::{EventView, StatsView};

use distribkv_core::sim::Endpoint;
use serde::Serialize;

/// Bytes as text (invalid UTF-8 replaced).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A node id (a number) or a client (`"c1"`, `"c2"`, ...).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum JsEndpoint {
    /// A replica.
    Node(u64),
    /// A client, as `c<number>`.
    Client(String),
}

impl From<Endpoint> for JsEndpoint {
    fn from(endpoint: Endpoint) -> JsEndpoint {
        match endpoint {
            Endpoint::Node(id) => JsEndpoint::Node(id),
            Endpoint::Client(number) => JsEndpoint::Client(format!("c{number}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use distribkv_core::sim::{Sim, SimConfig, Workload};
    use serde::Serialize;
    use serde_json::Value;

    /// Five nodes under three clients' load for two seconds, snapshotting every 20 entries.
    pub(super) fn busy_sim() -> Sim {
        let mut sim = Sim::new(SimConfig {
            nodes: 5,
            seed: 3,
            snapshot_every: 20,
            trace_capacity: 100,
            ..SimConfig::default()
        });
        sim.set_workload(Workload {
            clients: 3,
            interval: 30,
            keys: 3,
            read_fraction: 0.3,
        })
        .unwrap();
        sim.run_for(2_000);
        sim
    }

    pub(super) fn json<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }
}
