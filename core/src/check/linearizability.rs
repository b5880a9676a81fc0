//! Linearizability of a key-value history against the sequential model of
//! [`history`](super::history).
//!
//! [`check_linearizable`] decides whether the operations of a history can be
//! ordered so that each takes effect at one instant between its invocation and
//! its completion, and every `Get` reads what the operations before it left.
//! Operations with an unknown outcome may take effect at any instant after
//! their invocation, or never.
//!
//! The check is Wing & Gong's search with Lowe's memo of configurations (as
//! in Porcupine), run separately for each key: operations on different keys
//! never constrain each other, so the history is linearizable exactly when
//! each key's sub-history is (P-compositionality), and small searches are far
//! cheaper than one large one. Keys are checked smallest first, so a
//! violation is reported on the smallest key that shows one, and a
//! [`Budget`] of search steps bounds the total work.
//!
//! One operation precedes another only if it completed strictly before the
//! other was invoked; operations whose intervals touch count as concurrent.
//!
//! Checking linearizability is NP-complete in general; in practice the cost
//! follows how many operations on one key overlap. Histories with a few
//! clients per key, or many clients spread over several keys, check in time
//! linear in their length (10,000 operations from 16 clients over 10 keys in
//! about 10 ms); a single key hammered by a dozen or more clients whose
//! operations all overlap can exhaust the budget, which is then reported as
//! [`CheckError::GaveUp`], never as a verdict.
//!
//! ```
//! use distribkv_core::check::{check_linearizable, Budget, History, OpKind};
//!
//! let mut history = History::new();
//! let put = history.invoke(1, "x", OpKind::Put(b"1".to_vec()), 0);
//! let get = history.invoke(2, "x", OpKind::Get, 5);
//! history.complete(put, 10, None).unwrap();
//! history.complete(get, 12, None).unwrap(); // concurrent with the put: may read nothing
//! let stale = history.invoke(2, "x", OpKind::Get, 20);
//! history.complete(stale, 21, None).unwrap(); // after the put completed: must read "1"
//!
//! let error = check_linearizable(&history.into_operations(), Budget::default()).unwrap_err();
//! assert!(error.to_string().contains("#2 client 2: get(\"x\") -> missing"));
//! ```

mod search;
mod values;
mod visited;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use self::search::{KeyVerdict, Pruning, search_key};
use super::history::{DisplayBytes, DisplayValue, OpKind, Operation, Outcome};

/// How much work [`check_linearizable`] may do before giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The most search steps (one step tries one operation, or backtracks
    /// once), over all keys together.
    pub max_steps: u64,
}

impl Budget {
    /// A few seconds of search at most on a current machine, and far more
    /// than a realistic history needs: 10,000 heavily overlapping operations
    /// from 16 clients take under 100,000 steps.
    pub const DEFAULT: Budget = Budget {
        max_steps: 10_000_000,
    };
    /// Never give up.
    pub const UNLIMITED: Budget = Budget {
        max_steps: u64::MAX,
    };

    /// At most `max_steps` steps.
    pub const fn steps(max_steps: u64) -> Budget {
        Budget { max_steps }
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::DEFAULT
    }
}

/// A history found linearizable, with one witness order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linearizable {
    /// For each key with at least one operation checked: the ids of its
    /// operations in one valid linearization order. Operations with an unknown
    /// outcome appear only if this order lets them take effect; `Get`s with an
    /// unknown outcome never appear.
    pub witness: BTreeMap<Vec<u8>, Vec<u64>>,
    /// Search steps used.
    pub steps: u64,
}

/// Why a history is not known to be linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The history is not linearizable; here is the evidence.
    NotLinearizable(Box<Violation>),
    /// The step budget ran out before the search could decide.
    GaveUp(GaveUp),
    /// The history itself is malformed: a recorder bug, not a cluster bug.
    MalformedHistory(MalformedHistory),
}

/// The evidence that one key's history is not linearizable.
///
/// The search found no order for the key's operations. It reports the
/// longest prefix of an order it could build, and the completed operation that
/// could not be added to that prefix even though it must come before
/// everything invoked after its completion. The `candidates` are the
/// operations that could have come next: one of them (often `blocked`
/// itself, when it is a `Get`) is where the cluster went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: Vec<u8>,
    /// How many operations the history has on this key.
    pub operations_on_key: usize,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<Operation>,
    /// The key's value after `prefix` (`None`: missing).
    pub value_after_prefix: Option<Vec<u8>>,
    /// A completed operation, not in `prefix`, that no extension of `prefix`
    /// could include.
    pub blocked: Operation,
    /// The operations not in `prefix` that were invoked before `blocked`
    /// completed (so could be linearized next), `blocked` included, by
    /// invocation time.
    pub candidates: Vec<Operation>,
}

/// The search ran out of budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GaveUp {
    /// The key being checked when the budget ran out.
    pub key: Vec<u8>,
    /// How many operations the history has on this key.
    pub operations_on_key: usize,
    /// Steps used in all.
    pub steps: u64,
    /// Keys found linearizable before this one.
    pub keys_checked: usize,
    /// Keys in the history.
    pub keys_total: usize,
}

/// A history that no correct recorder produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MalformedHistory {
    /// Two operations share an id.
    DuplicateId {
        /// The id.
        id: u64,
    },
    /// An operation completed before it was invoked.
    CompletedBeforeInvoked {
        /// The operation.
        id: u64,
        /// When it was invoked.
        invoked_at: u64,
        /// When it completed.
        completed_at: u64,
    },
    /// A completed write carries a value; only a `Get` returns one.
    ValueOnWrite {
        /// The operation.
        id: u64,
    },
}

/// Checks that `operations` (in any order) form a linearizable history of the
/// key-value store.
///
/// Returns one witness order per key on success; otherwise the first
/// violation found (on the key with the fewest operations that has one), or
/// [`CheckError::GaveUp`] if `budget` ran out first, or
/// [`CheckError::MalformedHistory`] if the history is not well formed
/// (checked before any search).
pub fn check_linearizable(
    operations: &[Operation],
    budget: Budget,
) -> Result<Linearizable, CheckError> {
    validate(operations).map_err(CheckError::MalformedHistory)?;

    let mut by_key: BTreeMap<&[u8], Vec<&Operation>> = BTreeMap::new();
    for operation in operations {
        by_key.entry(&operation.key).or_default().push(operation);
    }
    let keys_total = by_key.len();
    let mut partitions: Vec<(&[u8], usize, Vec<&Operation>)> = by_key
        .into_iter()
        .map(|(key, operations_on_key)| {
            let count = operations_on_key.len();
            (key, count, operations_that_constrain(operations_on_key))
        })
        .collect();
    // Smallest first: cheap keys are decided before an expensive one can use
    // up the budget, and a violation is shown on the smallest key possible.
    // The sort is stable, so equal sizes stay in key order.
    partitions.sort_by_key(|(_, _, checked)| checked.len());

    let mut steps = 0;
    let mut witness = BTreeMap::new();
    for (keys_checked, (key, operations_on_key, mut checked)) in partitions.into_iter().enumerate()
    {
        if checked.is_empty() {
            continue;
        }
        // Invocation order keeps the linearized set close to a prefix, which
        // is what the memo stores compactly.
        checked.sort_by_key(|operation| (operation.invoked_at, operation.id));
        match search_key(&checked, Pruning::Full, &mut steps, budget.max_steps) {
            KeyVerdict::Linearizable { order } => {
                let ids = order
                    .iter()
                    .map(|&index| checked[index as usize].id)
                    .collect();
                witness.insert(key.to_vec(), ids);
            }
            KeyVerdict::NotLinearizable {
                mut prefix,
                mut blocked,
                mut value_after_prefix,
            } => {
                // Search again without the lookaheads for a report that
                // blames the right operation, if that stays cheap.
                let report_budget = steps.saturating_add(REPORT_STEPS).min(budget.max_steps);
                match search_key(&checked, Pruning::ForReport, &mut steps, report_budget) {
                    KeyVerdict::NotLinearizable {
                        prefix: report_prefix,
                        blocked: report_blocked,
                        value_after_prefix: report_value,
                    } => {
                        (prefix, blocked, value_after_prefix) =
                            (report_prefix, report_blocked, report_value)
                    }
                    KeyVerdict::GaveUp => {}
                    KeyVerdict::Linearizable { .. } => {
                        unreachable!(
                            "invariant: the lookaheads only cut branches that cannot succeed"
                        )
                    }
                }
                let violation = violation(
                    key,
                    operations_on_key,
                    &checked,
                    &prefix,
                    blocked,
                    value_after_prefix,
                );
                return Err(CheckError::NotLinearizable(Box::new(violation)));
            }
            KeyVerdict::GaveUp => {
                return Err(CheckError::GaveUp(GaveUp {
                    key: key.to_vec(),
                    operations_on_key,
                    steps,
                    keys_checked,
                    keys_total,
                }));
            }
        }
    }
    Ok(Linearizable { witness, steps })
}

fn validate(operations: &[Operation]) -> Result<(), MalformedHistory> {
    for operation in operations {
        if let Outcome::Ok {
            completed_at,
            value,
        } = &operation.outcome
        {
            if *completed_at < operation.invoked_at {
                return Err(MalformedHistory::CompletedBeforeInvoked {
                    id: operation.id,
                    invoked_at: operation.invoked_at,
                    completed_at: *completed_at,
                });
            }
            if operation.kind.is_write() && value.is_some() {
                return Err(MalformedHistory::ValueOnWrite { id: operation.id });
            }
        }
    }
    let mut ids: Vec<u64> = operations.iter().map(|operation| operation.id).collect();
    ids.sort_unstable();
    match ids.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(MalformedHistory::DuplicateId { id: pair[0] }),
        None => Ok(()),
    }
}

/// The operations of one key that can constrain a linearization.
///
/// Left out, soundly:
/// - `Get`s with an unknown outcome: they may read anything;
/// - writes with an unknown outcome that no completed `Get` can have
///   observed. A `Put` of `w` that took effect shows in every read until the
///   next overwrite as a value starting with `w`; an `Append` of `s`, as a
///   value containing `s`; a `Delete`, as a missing key or a value built by
///   appends. If no completed `Get` read such a value, no `Get` comes between
///   that write and the next overwrite in any linearization, and removing the
///   write from one leaves it valid.
fn operations_that_constrain(operations_on_key: Vec<&Operation>) -> Vec<&Operation> {
    let mut values_read: Vec<&[u8]> = Vec::new();
    let mut read_missing = false;
    for operation in &operations_on_key {
        match operation.value_read() {
            Some(Some(value)) => values_read.push(value),
            Some(None) => read_missing = true,
            None => {}
        }
    }
    values_read.sort_unstable();
    values_read.dedup();
    let any_read = read_missing || !values_read.is_empty();
    operations_on_key
        .into_iter()
        .filter(|operation| {
            if operation.is_completed() {
                return true;
            }
            match &operation.kind {
                OpKind::Get => false,
                _ if !any_read => false,
                OpKind::Put(value) => values_read.iter().any(|read| read.starts_with(value)),
                OpKind::Append(suffix) => values_read.iter().any(|read| contains(read, suffix)),
                OpKind::Delete => true,
            }
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn violation(
    key: &[u8],
    operations_on_key: usize,
    checked: &[&Operation],
    prefix: &[u32],
    blocked: u32,
    value_after_prefix: Option<Vec<u8>>,
) -> Violation {
    let blocked = checked[blocked as usize];
    let deadline = blocked
        .completed_at()
        .expect("invariant: only completed operations have return entries");
    let mut in_prefix = alloc::vec![false; checked.len()];
    for &index in prefix {
        in_prefix[index as usize] = true;
    }
    let candidates = checked
        .iter()
        .zip(&in_prefix)
        .filter(|(operation, in_prefix)| !**in_prefix && operation.invoked_at <= deadline)
        .map(|(operation, _)| (*operation).clone())
        .collect();
    Violation {
        key: key.to_vec(),
        operations_on_key,
        prefix: prefix
            .iter()
            .map(|&index| checked[index as usize].clone())
            .collect(),
        value_after_prefix,
        blocked: blocked.clone(),
        candidates,
    }
}

/// The most steps spent searching again for a clearer report on a violation.
const REPORT_STEPS: u64 = 1_000_000;

/// The most prefix operations and candidates a report lists.
const LISTED: usize = 12;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = DisplayValue(self.value_after_prefix.as_deref());
        writeln!(
            f,
            "key {} is not linearizable ({} operations on it)",
            DisplayBytes(&self.key),
            self.operations_on_key
        )?;
        writeln!(
            f,
            "  longest linearizable prefix found: {} operations, leaving the value {value}",
            self.prefix.len()
        )?;
        let shown = self.prefix.len().min(LISTED);
        if shown < self.prefix.len() {
            writeln!(
                f,
                "    ... {} earlier operations",
                self.prefix.len() - shown
            )?;
        }
        for operation in &self.prefix[self.prefix.len() - shown..] {
            writeln!(f, "    {operation}")?;
        }
        writeln!(
            f,
            "  it cannot be extended to include {}, which must precede every operation invoked after it completed",
            self.blocked
        )?;
        write!(f, "  operations that could come next:")?;
        for operation in self.candidates.iter().take(LISTED) {
            write!(f, "\n    {operation}")?;
            if let Some(read) = operation.value_read() {
                if read != self.value_after_prefix.as_deref() {
                    write!(f, ": reads {}, the value is {value}", DisplayValue(read))?;
                }
            }
        }
        if self.candidates.len() > LISTED {
            write!(f, "\n    ... and {} more", self.candidates.len() - LISTED)?;
        }
        Ok(())
    }
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave up after {} search steps on key {} ({} operations); {} of {} keys were found linearizable before it",
            self.steps,
            DisplayBytes(&self.key),
            self.operations_on_key,
            self.keys_checked,
            self.keys_total
        )
    }
}

impl fmt::Display for MalformedHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedHistory::DuplicateId { id } => {
                write!(f, "two operations have the id #{id}")
            }
            MalformedHistory::CompletedBeforeInvoked {
                id,
                invoked_at,
                completed_at,
            } => write!(
                f,
                "operation #{id} completed at {completed_at}, before it was invoked at {invoked_at}"
            ),
            MalformedHistory::ValueOnWrite { id } => {
                write!(f, "operation #{id} is a write but returned a value")
            }
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotLinearizable(violation) => violation.fmt(f),
            CheckError::GaveUp(gave_up) => gave_up.fmt(f),
            CheckError::MalformedHistory(malformed) => {
                write!(f, "malformed history: {malformed}")
            }
        }
    }
}

impl core::error::Error for CheckError {}
