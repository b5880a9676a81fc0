//! Client operations as the simulator records them, the steady workload,
//! and the checks of a run's history (linearizability, exactly-once appends).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::Sim;
use crate::check;
use crate::kv::{ClerkError, Operation};
use crate::rng::Rng;
use crate::time::Instant;

/// One client operation: what was asked, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Operation id (its position in the history, from 1).
    pub id: u64,
    /// Client number.
    pub client: u64,
    /// The operation.
    pub operation: Operation,
    /// When the client was asked to run it.
    pub invoked_at: Instant,
    /// When it finished (successfully or not).
    pub completed_at: Option<Instant>,
    /// Its invocation's place among every invocation and completion of the
    /// run (from 1): the order things happened in, finer than the
    /// millisecond (an operation invoked in the same millisecond another
    /// completes, but after it, comes later). The history check uses it.
    pub invoked_order: u64,
    /// Its completion's place in the same sequence.
    pub completed_order: Option<u64>,
    /// How it finished: a get's value, or an error.
    pub outcome: Option<Result<Option<Bytes>, ClerkError>>,
    /// Requests the clerk sent for it.
    pub attempts: u32,
}

/// Where an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpStatus {
    /// Not finished.
    Pending,
    /// Took effect (a get: read its value).
    Ok,
    /// The client gave up: it may or may not have taken effect.
    Unknown,
    /// Refused: certainly did not take effect.
    Failed,
}

impl OpStatus {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            OpStatus::Pending => "pending",
            OpStatus::Ok => "ok",
            OpStatus::Unknown => "unknown",
            OpStatus::Failed => "failed",
        }
    }
}

impl HistoryEntry {
    /// Where the operation stands.
    pub fn status(&self) -> OpStatus {
        match &self.outcome {
            None => OpStatus::Pending,
            Some(Ok(_)) => OpStatus::Ok,
            Some(Err(ClerkError::Unknown(_))) => OpStatus::Unknown,
            Some(Err(ClerkError::Refused(_))) => OpStatus::Failed,
        }
    }

    /// Whether it finished successfully.
    pub fn is_complete(&self) -> bool {
        self.status() == OpStatus::Ok
    }

    /// A get's value, if it finished successfully.
    pub fn value(&self) -> Option<&Bytes> {
        match &self.outcome {
            Some(Ok(value)) => value.as_ref(),
            _ => None,
        }
    }
}

/// A steady load: each workload client runs one operation, waits about
/// `interval` ms (uniformly 0 to twice that), and runs the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Clients 1..=clients run the workload.
    pub clients: usize,
    /// Mean pause between a client's operations, ms (0: back to back).
    pub interval: u64,
    /// Keys `k0`..`k{keys-1}`.
    pub keys: usize,
    /// Fraction of gets.
    pub read_fraction: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 3,
            interval: 100,
            keys: 5,
            read_fraction: 0.3,
        }
    }
}

impl Workload {
    /// The next operation of `client`, its `n`th. Writes carry unique
    /// values: appends add a token `[c<client>.<n>]`, so a lost or doubled
    /// append shows in the final value.
    pub fn next_operation(&self, rng: &mut Rng, client: u64, n: u64) -> Operation {
        let key = Bytes::from(format!("k{}", rng.index(self.keys.max(1))));
        if rng.chance(self.read_fraction) {
            return Operation::Get { key };
        }
        match rng.range(0, 100) {
            0..60 => Operation::Append {
                key,
                value: Bytes::from(format!("[c{client}.{n}]")),
            },
            60..95 => Operation::Put {
                key,
                value: Bytes::from(format!("c{client}.{n};")),
            },
            _ => Operation::Delete { key },
        }
    }

    /// Pause before a client's next operation.
    pub fn pause(&self, rng: &mut Rng) -> u64 {
        if self.interval == 0 {
            0
        } else {
            rng.range_inclusive(0, self.interval.saturating_mul(2))
        }
    }
}

/// Checks the client history: linearizable (per key, unknown outcomes
/// allowed to take effect or not), and every acknowledged append present
/// exactly once in the final state (read from the replica that applied the
/// most; call it once the cluster has converged, see [`Sim::is_converged`]).
pub fn check_history(sim: &Sim) -> Vec<String> {
    check_history_within(sim, check::Budget::DEFAULT)
}

/// [`check_history`] with the linearizability search bounded by `budget`
/// instead of [`check::Budget::DEFAULT`] (a long run's hot key may need
/// more: an undecided verdict is a failure, never a pass).
pub fn check_history_within(sim: &Sim, budget: check::Budget) -> Vec<String> {
    let mut failures = Vec::new();
    let operations = sim.check_operations();
    match check::check_linearizable(&operations, budget) {
        Ok(_) => {}
        Err(check::CheckError::GaveUp(gave_up)) => {
            failures.push(format!("linearizability: undecided ({gave_up})"))
        }
        Err(error) => failures.push(format!("linearizability: {error}")),
    }
    if let Some(replica) = sim.replicas().max_by_key(|r| r.node().log().applied()) {
        let final_values = replica
            .store()
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let options = check::AppendCheckOptions {
            reject_unexplained_text: true,
        };
        if let Err(error) = check::check_appends(&operations, &final_values, options) {
            failures.push(format!("exactly-once appends: {error}"));
        }
    }
    failures
}

impl Sim {
    /// The client history in the checker's form. Operations refused for
    /// certain (they did not take effect) are left out; pending and
    /// given-up ones have an unknown outcome. Times are the operations'
    /// places in the run's sequence of invocations and completions
    /// ([`HistoryEntry::invoked_order`]), not milliseconds: an operation
    /// invoked in the millisecond another completed, after it, must see
    /// its effect, and counting them as concurrent would let a stale read
    /// through.
    pub fn check_operations(&self) -> Vec<check::Operation> {
        self.history
            .iter()
            .filter(|entry| entry.status() != OpStatus::Failed)
            .map(|entry| {
                let kind = match &entry.operation {
                    Operation::Put { value, .. } => check::OpKind::Put(value.to_vec()),
                    Operation::Append { value, .. } => check::OpKind::Append(value.to_vec()),
                    Operation::Delete { .. } => check::OpKind::Delete,
                    Operation::Get { .. } => check::OpKind::Get,
                };
                let outcome = match (&entry.outcome, entry.completed_order) {
                    (Some(Ok(value)), Some(at)) => check::Outcome::Ok {
                        completed_at: at,
                        value: if entry.operation.is_write() {
                            None
                        } else {
                            value.as_ref().map(|v| v.to_vec())
                        },
                    },
                    _ => check::Outcome::Unknown,
                };
                check::Operation {
                    id: entry.id,
                    client: entry.client,
                    key: entry.operation.key().to_vec(),
                    kind,
                    invoked_at: entry.invoked_order,
                    outcome,
                }
            })
            .collect()
    }

    /// Checks the client history for linearizability.
    pub fn check_linearizability(&self) -> Result<check::Linearizable, check::CheckError> {
        check::check_linearizable(&self.check_operations(), check::Budget::DEFAULT)
    }
}
