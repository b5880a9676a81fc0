//! `check().linearizability`: the core's linearizability checker
//! ([`distribkv_core::check`]) run on the simulator's client history, and
//! its verdict rendered for JS.

use distribkv_core::check::{self, Budget, CheckError};
use distribkv_core::sim::Sim;
use serde::Serialize;

/// `check().linearizability`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// No violation found: the history is linearizable, or the search gave
    /// up before deciding (then `decided` is false).
    pub ok: bool,
    /// The key whose operations are not linearizable.
    pub key: Option<String>,
    /// The operations involved in the violation (history ids): those that
    /// could have come next after the longest valid prefix (the blocked one
    /// among them), and the last operation of that prefix.
    pub ops: Vec<u64>,
    /// The explanation (several lines for a violation).
    pub text: String,
    /// Whether the checker decided (extension: false when its step budget
    /// ran out).
    pub decided: bool,
    /// One line for `check().violations` (not sent to JS on its own).
    #[serde(skip)]
    pub summary: Option<String>,
}

/// What a history is, for [`VerdictCache`]: its operations, how many of
/// them settled, and the step budget of the search.
pub type HistoryKey = (usize, usize, u64);

/// The last verdict and the history it was for. A verdict depends only on
/// the history and the budget, so `check()` searches again only when an
/// operation was added or settled, or the budget changed.
#[derive(Clone, Debug, Default)]
pub struct VerdictCache {
    last: Option<(HistoryKey, Verdict)>,
}

impl VerdictCache {
    /// The verdict for the history `key` describes: the kept one if it is
    /// for that history, else `search()`'s, kept for next time.
    pub fn verdict(&mut self, key: HistoryKey, search: impl FnOnce() -> Verdict) -> &Verdict {
        if !matches!(&self.last, Some((last, _)) if *last == key) {
            self.last = None;
        }
        &self.last.get_or_insert_with(|| (key, search())).1
    }
}

/// Checks the simulator's history. Operations refused for certain are left
/// out; pending and given-up ones may or may not have taken effect
/// ([`Sim::check_operations`]).
pub fn check(sim: &Sim, budget: Budget) -> Verdict {
    let operations = sim.check_operations();
    verdict(&operations, check::check_linearizable(&operations, budget))
}

/// Renders the checker's answer on `operations`.
pub fn verdict(
    operations: &[check::Operation],
    result: Result<check::Linearizable, CheckError>,
) -> Verdict {
    match result {
        Ok(linearizable) => {
            let completed = operations.iter().filter(|op| op.is_completed()).count();
            Verdict {
                ok: true,
                key: None,
                ops: Vec::new(),
                text: format!(
                    "linearizable: {completed} completed operations on {} keys fit one order ({} search steps)",
                    linearizable.witness.len(),
                    linearizable.steps
                ),
                decided: true,
                summary: None,
            }
        }
        Err(CheckError::NotLinearizable(violation)) => {
            let mut ops: Vec<u64> = violation.candidates.iter().map(|op| op.id).collect();
            if !ops.contains(&violation.blocked.id) {
                ops.insert(0, violation.blocked.id);
            }
            if let Some(last) = violation.prefix.last() {
                ops.push(last.id);
            }
            let text = violation.to_string();
            let first_line = text.lines().next().unwrap_or_default();
            Verdict {
                ok: false,
                key: Some(String::from_utf8_lossy(&violation.key).into_owned()),
                ops,
                summary: Some(format!(
                    "Linearizability: {first_line}: {} cannot be placed",
                    violation.blocked
                )),
                text,
                decided: true,
            }
        }
        Err(CheckError::GaveUp(gave_up)) => Verdict {
            ok: true,
            key: None,
            ops: Vec::new(),
            text: format!("undecided: {gave_up}"),
            decided: false,
            summary: None,
        },
        Err(CheckError::MalformedHistory(malformed)) => {
            let text = format!("the simulator recorded a malformed history: {malformed}");
            Verdict {
                ok: false,
                key: None,
                ops: Vec::new(),
                summary: Some(format!("Linearizability: {text}")),
                text,
                decided: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::sim::{SimConfig, Workload};

    #[test]
    fn a_normal_run_is_linearizable_and_a_tiny_budget_is_undecided() {
        let mut sim = Sim::new(SimConfig {
            seed: 9,
            ..SimConfig::default()
        });
        sim.set_workload(Workload::default()).unwrap();
        sim.run_for(3_000);
        let verdict = check(&sim, Budget::DEFAULT);
        assert!(verdict.ok && verdict.decided, "{verdict:?}");
        assert!(verdict.summary.is_none() && verdict.ops.is_empty());
        assert!(verdict.text.starts_with("linearizable: "));
        let undecided = check(&sim, Budget::steps(1));
        assert!(undecided.ok && !undecided.decided, "{undecided:?}");
        assert!(undecided.text.starts_with("undecided: "));
    }
}
