//! The exactly-once check for workloads that append unique tokens.
//!
//! A workload appends tokens such as `[c3.17]` (client 3, its 17th append),
//! chosen so that no token occurs inside another, nor inside a `Put` value.
//! After the cluster heals, it reads the final value of every key from a
//! replica and hands both to [`check_appends`], which checks that
//!
//! - every acknowledged append's token appears exactly once in the final value
//!   of its key (unless a `Put` or `Delete` on the key may have come after the
//!   append and overwritten it);
//! - no token appears more than once, acknowledged or not (a retried append
//!   applied twice is exactly what sessions must prevent);
//! - optionally, no text appears that no append or put wrote: the final value
//!   is a `Put` value (or nothing) followed by tokens.
//!
//! Tokens are found by substring matching, which is exact because tokens do
//! not overlap.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use super::history::{DisplayBytes, OpKind, Operation};

/// What [`check_appends`] checks beyond token counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendCheckOptions {
    /// Also report final text that neither a token nor a `Put` value explains.
    pub reject_unexplained_text: bool,
}

/// One way the final values contradict the appends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendViolation {
    /// An acknowledged append whose token is not in the final value, though
    /// no `Put` or `Delete` could have overwritten it.
    Lost {
        /// The key.
        key: Vec<u8>,
        /// The token appended.
        token: Vec<u8>,
        /// The append's id.
        operation: u64,
        /// The append's client.
        client: u64,
    },
    /// A token that appears more than once.
    Duplicated {
        /// The key.
        key: Vec<u8>,
        /// The token.
        token: Vec<u8>,
        /// How many times it appears in the final value.
        count: usize,
        /// The append's id.
        operation: u64,
        /// The append's client.
        client: u64,
        /// Whether the append was acknowledged (else its outcome was unknown).
        acknowledged: bool,
    },
    /// Final text that no token and no `Put` value explains (reported only
    /// with [`AppendCheckOptions::reject_unexplained_text`]).
    UnexplainedText {
        /// The key.
        key: Vec<u8>,
        /// Where the text starts in the final value, in bytes.
        offset: usize,
        /// The text.
        text: Vec<u8>,
    },
}

/// Why [`check_appends`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendCheckError {
    /// The final values contradict the history; every violation found, by key.
    Violations(Vec<AppendViolation>),
    /// An append of no bytes: it cannot be counted. A workload bug.
    EmptyToken {
        /// The append's id.
        operation: u64,
    },
    /// Two appends on one key with the same token: they cannot be told
    /// apart. A workload bug.
    ReusedToken {
        /// The key.
        key: Vec<u8>,
        /// The token.
        token: Vec<u8>,
        /// The first append with it.
        first: u64,
        /// Another append with it.
        second: u64,
    },
}

/// The appends and puts of one key.
#[derive(Default)]
struct KeyWrites<'a> {
    /// Each token, with its append.
    tokens: BTreeMap<&'a [u8], &'a Operation>,
    put_values: Vec<&'a [u8]>,
    /// The latest completion of a `Put` or `Delete` (`u64::MAX` if one has an
    /// unknown outcome): an append invoked later than this cannot have been
    /// overwritten.
    last_overwrite: Option<u64>,
}

/// Checks the final value of every key (`final_values`: a key absent from
/// the map is missing) against the appends of `operations`. See the module
/// documentation for what is checked.
pub fn check_appends(
    operations: &[Operation],
    final_values: &BTreeMap<Vec<u8>, Vec<u8>>,
    options: AppendCheckOptions,
) -> Result<(), AppendCheckError> {
    let mut by_key: BTreeMap<&[u8], KeyWrites<'_>> = BTreeMap::new();
    for operation in operations {
        let writes = by_key.entry(&operation.key).or_default();
        match &operation.kind {
            OpKind::Append(token) => {
                if token.is_empty() {
                    return Err(AppendCheckError::EmptyToken {
                        operation: operation.id,
                    });
                }
                if let Some(first) = writes.tokens.insert(token, operation) {
                    return Err(AppendCheckError::ReusedToken {
                        key: operation.key.clone(),
                        token: token.clone(),
                        first: first.id.min(operation.id),
                        second: first.id.max(operation.id),
                    });
                }
            }
            OpKind::Put(_) | OpKind::Delete => {
                if let OpKind::Put(value) = &operation.kind {
                    writes.put_values.push(value);
                }
                let completed_at = operation.completed_at().unwrap_or(u64::MAX);
                writes.last_overwrite = writes.last_overwrite.max(Some(completed_at));
            }
            OpKind::Get => {}
        }
    }
    for key in final_values.keys() {
        by_key.entry(key).or_default();
    }

    let mut violations = Vec::new();
    for (key, writes) in &by_key {
        let final_value = final_values.get(*key).map_or(&[][..], Vec::as_slice);
        check_key(key, writes, final_value, options, &mut violations);
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AppendCheckError::Violations(violations))
    }
}

fn check_key(
    key: &[u8],
    writes: &KeyWrites<'_>,
    final_value: &[u8],
    options: AppendCheckOptions,
    violations: &mut Vec<AppendViolation>,
) {
    let occurrences = find_tokens(&writes.tokens, final_value);
    let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
    for &(start, end) in &occurrences {
        *counts.entry(&final_value[start..end]).or_default() += 1;
    }
    for (&token, &operation) in &writes.tokens {
        let count = counts.get(token).copied().unwrap_or(0);
        let could_be_overwritten = writes
            .last_overwrite
            .is_some_and(|last| last >= operation.invoked_at);
        if count == 0 && operation.is_completed() && !could_be_overwritten {
            violations.push(AppendViolation::Lost {
                key: key.to_vec(),
                token: token.to_vec(),
                operation: operation.id,
                client: operation.client,
            });
        } else if count > 1 {
            violations.push(AppendViolation::Duplicated {
                key: key.to_vec(),
                token: token.to_vec(),
                count,
                operation: operation.id,
                client: operation.client,
                acknowledged: operation.is_completed(),
            });
        }
    }
    if options.reject_unexplained_text {
        for (offset, text) in uncovered_spans(final_value, &occurrences) {
            let is_put_value = offset == 0 && writes.put_values.contains(&text);
            if !is_put_value {
                violations.push(AppendViolation::UnexplainedText {
                    key: key.to_vec(),
                    offset,
                    text: text.to_vec(),
                });
            }
        }
    }
}

/// The non-overlapping occurrences `(start, end)` of the tokens in `value`,
/// in order.
fn find_tokens(tokens: &BTreeMap<&[u8], &Operation>, value: &[u8]) -> Vec<(usize, usize)> {
    let mut lengths: Vec<usize> = tokens.keys().map(|token| token.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut occurrences = Vec::new();
    for length in lengths {
        // Where the last occurrence of each token of this length ended, so a
        // token is not counted twice in a run like "aaa" for "aa".
        let mut ends: BTreeMap<&[u8], usize> = BTreeMap::new();
        for (start, window) in value.windows(length).enumerate() {
            if !tokens.contains_key(window) {
                continue;
            }
            let end = ends.entry(window).or_insert(0);
            if start >= *end {
                *end = start + length;
                occurrences.push((start, start + length));
            }
        }
    }
    occurrences.sort_unstable();
    occurrences
}

/// The maximal spans of `value` that no occurrence covers, with their offsets.
fn uncovered_spans<'v>(value: &'v [u8], occurrences: &[(usize, usize)]) -> Vec<(usize, &'v [u8])> {
    let mut spans = Vec::new();
    let mut covered_to = 0;
    for &(start, end) in occurrences {
        if start > covered_to {
            spans.push((covered_to, &value[covered_to..start]));
        }
        covered_to = covered_to.max(end);
    }
    if covered_to < value.len() {
        spans.push((covered_to, &value[covered_to..]));
    }
    spans
}

impl fmt::Display for AppendViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendViolation::Lost {
                key,
                token,
                operation,
                client,
            } => write!(
                f,
                "key {}: acknowledged append #{operation} (client {client}) of {} is missing from the final value",
                DisplayBytes(key),
                DisplayBytes(token)
            ),
            AppendViolation::Duplicated {
                key,
                token,
                count,
                operation,
                client,
                acknowledged,
            } => write!(
                f,
                "key {}: token {} of {} append #{operation} (client {client}) appears {count} times in the final value",
                DisplayBytes(key),
                DisplayBytes(token),
                if *acknowledged {
                    "acknowledged"
                } else {
                    "unacknowledged"
                }
            ),
            AppendViolation::UnexplainedText { key, offset, text } => write!(
                f,
                "key {}: text {} at byte {offset} of the final value was written by no append or put",
                DisplayBytes(key),
                DisplayBytes(text)
            ),
        }
    }
}

impl fmt::Display for AppendCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendCheckError::Violations(violations) => {
                write!(f, "{} append violations:", violations.len())?;
                for violation in violations {
                    write!(f, "\n  {violation}")?;
                }
                Ok(())
            }
            AppendCheckError::EmptyToken { operation } => {
                write!(
                    f,
                    "append #{operation} appends no bytes: there is no token to count"
                )
            }
            AppendCheckError::ReusedToken {
                key,
                token,
                first,
                second,
            } => write!(
                f,
                "appends #{first} and #{second} on key {} use the same token {}",
                DisplayBytes(key),
                DisplayBytes(token)
            ),
        }
    }
}

impl core::error::Error for AppendCheckError {}

#[cfg(test)]
mod tests;
