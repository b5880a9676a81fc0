//! `history()` and `clients()`: what the clients asked, what they got
//! back, and where each client stands.

use distribkv_core::kv::{ClerkError, Operation};
use distribkv_core::sim::{HistoryEntry, Sim};
use distribkv_core::time::Instant;
use serde::Serialize;

use super::text;

/// One operation of `history()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    id: u64,
    client: u64,
    kind: &'static str,
    key: String,
    value: Option<String>,
    invoked_at: u64,
    completed_at: Option<u64>,
    output: Option<String>,
    status: &'static str,
    attempts: u32,
    /// Why it failed or ended unknown (extension).
    error: Option<String>,
}

impl From<&HistoryEntry> for HistoryView {
    fn from(entry: &HistoryEntry) -> HistoryView {
        let value = match &entry.operation {
            Operation::Put { value, .. } | Operation::Append { value, .. } => Some(text(value)),
            Operation::Get { .. } | Operation::Delete { .. } => None,
        };
        let output = match (&entry.operation, &entry.outcome) {
            (Operation::Get { .. }, Some(Ok(Some(read)))) => Some(text(read)),
            _ => None,
        };
        let error = match &entry.outcome {
            Some(Err(ClerkError::Unknown(why))) => Some(why.clone()),
            Some(Err(ClerkError::Refused(why))) => Some(why.to_string()),
            _ => None,
        };
        HistoryView {
            id: entry.id,
            client: entry.client,
            kind: entry.operation.name(),
            key: text(entry.operation.key()),
            value,
            invoked_at: entry.invoked_at.as_millis(),
            completed_at: entry.completed_at.map(Instant::as_millis),
            output,
            status: entry.status().name(),
            attempts: entry.attempts,
            error,
        }
    }
}

/// One client of `clients()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    id: u64,
    busy: bool,
    leader_guess: Option<u64>,
    seq: u64,
    /// Runs the steady workload (extension).
    workload: bool,
    /// Its session id, once its first write opened one (extension).
    session: Option<u64>,
}

/// Every client.
pub fn clients(sim: &Sim) -> Vec<ClientView> {
    (1..=sim.client_count() as u64)
        .filter_map(|number| {
            let clerk = sim.clerk(number)?;
            Some(ClientView {
                id: number,
                busy: clerk.is_busy(),
                leader_guess: clerk.leader_guess(),
                seq: clerk.seq(),
                workload: sim.is_workload_client(number),
                session: clerk.session(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{busy_sim, json};
    use serde_json::Value;

    #[test]
    fn history_renders_values_outputs_and_status() {
        let mut sim = busy_sim();
        let get = sim.get("k0");
        sim.run_for(500);
        let history: Vec<Value> = sim
            .history()
            .iter()
            .map(|e| json(&HistoryView::from(e)))
            .collect();
        for op in &history {
            match op["kind"].as_str().unwrap() {
                "put" | "append" => assert!(op["value"].is_string()),
                _ => assert!(op["value"].is_null()),
            }
            if op["kind"] != "get" {
                assert!(op["output"].is_null());
            }
        }
        let get = &history[get as usize - 1];
        assert_eq!(get["status"], "ok");
        assert_eq!(get["kind"], "get");
    }
}
