//! Client histories: the operations every part of distribKV records (the
//! simulator, the browser, the native fault tests) and the checkers read.
//!
//! An [`Operation`] is what a client saw from outside the cluster: when it
//! invoked the operation, and how (and when) it ended. Times are in whatever
//! unit the recorder uses (virtual milliseconds in the simulator, microseconds
//! in real tests); the checkers only compare them.
//!
//! The key-value semantics the checkers hold histories to:
//!
//! - `put(key, value)` sets the value;
//! - `append(key, suffix)` concatenates `suffix` to the current value, a
//!   missing key counting as empty (so appending to a missing key creates it,
//!   even with an empty suffix);
//! - `delete(key)` removes the key;
//! - `get(key)` returns the value, or nothing for a missing key.

use alloc::vec::Vec;
use core::fmt;

use super::chunked::Chunked;

/// What an operation does. The key lives in [`Operation::key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OpKind {
    /// Set the key to this value.
    Put(Vec<u8>),
    /// Concatenate these bytes to the current value (a missing key counts as empty).
    Append(Vec<u8>),
    /// Read the value.
    Get,
    /// Remove the key.
    Delete,
}

impl OpKind {
    /// True for `Put`, `Append` and `Delete`: the kinds that change the state.
    pub fn is_write(&self) -> bool {
        !matches!(self, OpKind::Get)
    }
}

/// How an operation ended, as seen by its client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Outcome {
    /// The cluster acknowledged the operation at `completed_at`.
    Ok {
        /// When the client received the answer. Invariant: `completed_at >= invoked_at`.
        completed_at: u64,
        /// For a `Get`: the value read, `None` for a missing key.
        /// For a write: always `None`.
        value: Option<Vec<u8>>,
    },
    /// Still pending, or failed in a way that leaves its effect unknown (a
    /// timeout, a lost connection): the operation may take effect at any
    /// moment after its invocation, or never. A `Get` with this outcome
    /// constrains nothing.
    Unknown,
}

/// One client operation: what was asked, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Operation {
    /// Identifies the operation; unique within a history.
    pub id: u64,
    /// The client (session) that issued it. Only used in reports: the checkers
    /// order operations by time, not by client.
    pub client: u64,
    /// The key the operation reads or writes.
    pub key: Vec<u8>,
    /// What the operation does.
    pub kind: OpKind,
    /// When the client sent it.
    pub invoked_at: u64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Operation {
    /// When the operation was acknowledged, or `None` if its outcome is unknown.
    pub fn completed_at(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Ok { completed_at, .. } => Some(completed_at),
            Outcome::Unknown => None,
        }
    }

    /// True if the cluster acknowledged the operation.
    pub fn is_completed(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }

    /// For an acknowledged `Get`: `Some(value read)`, where `None` inside means
    /// the key was missing. `None` for writes and unknown outcomes.
    pub fn value_read(&self) -> Option<Option<&[u8]>> {
        match (&self.kind, &self.outcome) {
            (OpKind::Get, Outcome::Ok { value, .. }) => Some(value.as_deref()),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    /// `#7 client 3: append("x", "[c3.17]") invoked at 12, completed at 20`,
    /// `#8 client 1: get("x") -> missing invoked at 21, completed at 25`,
    /// `#9 client 2: put("x", "1") invoked at 30, outcome unknown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} client {}: ", self.id, self.client)?;
        let key = DisplayBytes(&self.key);
        match &self.kind {
            OpKind::Put(value) => write!(f, "put({key}, {})", DisplayBytes(value))?,
            OpKind::Append(suffix) => write!(f, "append({key}, {})", DisplayBytes(suffix))?,
            OpKind::Get => write!(f, "get({key})")?,
            OpKind::Delete => write!(f, "delete({key})")?,
        }
        if let Some(value) = self.value_read() {
            write!(f, " -> {}", DisplayValue(value))?;
        }
        write!(f, " invoked at {}", self.invoked_at)?;
        match self.completed_at() {
            Some(completed_at) => write!(f, ", completed at {completed_at}"),
            None => f.write_str(", outcome unknown"),
        }
    }
}

/// Renders bytes as a quoted, escaped string: valid UTF-8 as text (with
/// `char::escape_debug`), other bytes as `\xNN`.
///
/// Values longer than [`DisplayBytes::SHORT_LIMIT`] bytes are shortened in the
/// middle (`"abc…(1234 bytes)…xyz"`) unless the alternate flag is given
/// (`{:#}`), which renders everything.
#[derive(Clone, Copy, Debug)]
pub struct DisplayBytes<'a>(pub &'a [u8]);

impl DisplayBytes<'_> {
    /// Longest value rendered in full without the alternate flag.
    pub const SHORT_LIMIT: usize = 96;
    /// Bytes kept at each end of a shortened value.
    const KEPT_AT_EACH_END: usize = 40;

    fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
        for chunk in bytes.utf8_chunks() {
            for character in chunk.valid().chars() {
                write!(f, "{}", character.escape_debug())?;
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for DisplayBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        f.write_str("\"")?;
        if f.alternate() || bytes.len() <= Self::SHORT_LIMIT {
            Self::write_escaped(f, bytes)?;
        } else {
            let kept = Self::KEPT_AT_EACH_END;
            Self::write_escaped(f, &bytes[..kept])?;
            write!(f, "…({} bytes)…", bytes.len())?;
            Self::write_escaped(f, &bytes[bytes.len() - kept..])?;
        }
        f.write_str("\"")
    }
}

/// Renders a key's value: quoted bytes, or `missing`.
#[derive(Clone, Copy, Debug)]
pub struct DisplayValue<'a>(pub Option<&'a [u8]>);

impl fmt::Display for DisplayValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(bytes) => fmt::Display::fmt(&DisplayBytes(bytes), f),
            None => f.write_str("missing"),
        }
    }
}

/// A history under construction: operations are invoked, then completed or
/// failed, in any interleaving.
///
/// Ids are handed out in invocation order, starting at 0. An operation that is
/// neither completed nor failed when the history is checked counts as
/// pending, that is with an unknown outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Invariant: `operations[i].id == i`. Shared with clones (a fork of a
    /// simulation), see [`Chunked`].
    operations: Chunked<Operation>,
    /// `settled[i]` is true once operation `i` was completed or failed.
    /// Invariant: `settled.len() == operations.len()`.
    settled: Chunked<bool>,
}

/// Why [`History::complete`] or [`History::fail_unknown`] refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleError {
    /// No operation has this id.
    UnknownOperation {
        /// The id given.
        id: u64,
    },
    /// The operation was already completed or failed.
    AlreadySettled {
        /// The operation.
        id: u64,
    },
    /// The completion time is earlier than the invocation time.
    CompletedBeforeInvoked {
        /// The operation.
        id: u64,
        /// When it was invoked.
        invoked_at: u64,
        /// The completion time given.
        completed_at: u64,
    },
    /// A value was given for a write; only a `Get` returns one.
    ValueOnWrite {
        /// The operation.
        id: u64,
    },
}

impl fmt::Display for SettleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettleError::UnknownOperation { id } => write!(f, "no operation #{id}"),
            SettleError::AlreadySettled { id } => {
                write!(f, "operation #{id} was already completed or failed")
            }
            SettleError::CompletedBeforeInvoked {
                id,
                invoked_at,
                completed_at,
            } => write!(
                f,
                "operation #{id} completed at {completed_at}, before it was invoked at {invoked_at}"
            ),
            SettleError::ValueOnWrite { id } => {
                write!(f, "operation #{id} is a write, it cannot return a value")
            }
        }
    }
}

impl core::error::Error for SettleError {}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records that `client` invoked an operation on `key` at time `at`, and
    /// returns its id. Until completed or failed, its outcome is unknown.
    pub fn invoke(&mut self, client: u64, key: impl Into<Vec<u8>>, kind: OpKind, at: u64) -> u64 {
        let id = self.operations.len() as u64;
        self.operations.push(Operation {
            id,
            client,
            key: key.into(),
            kind,
            invoked_at: at,
            outcome: Outcome::Unknown,
        });
        self.settled.push(false);
        id
    }

    /// Records that operation `id` was acknowledged at time `at`. `value` is
    /// what a `Get` read (`None` for a missing key); it must be `None` for a
    /// write.
    pub fn complete(
        &mut self,
        id: u64,
        at: u64,
        value: Option<Vec<u8>>,
    ) -> Result<(), SettleError> {
        let index = self.unsettled_index(id)?;
        let operation = &mut self.operations[index];
        if at < operation.invoked_at {
            return Err(SettleError::CompletedBeforeInvoked {
                id,
                invoked_at: operation.invoked_at,
                completed_at: at,
            });
        }
        if operation.kind.is_write() && value.is_some() {
            return Err(SettleError::ValueOnWrite { id });
        }
        operation.outcome = Outcome::Ok {
            completed_at: at,
            value,
        };
        self.settled[index] = true;
        Ok(())
    }

    /// Records that operation `id` failed with an unknown outcome: it may
    /// have taken effect, or may still take effect, or never.
    pub fn fail_unknown(&mut self, id: u64) -> Result<(), SettleError> {
        let index = self.unsettled_index(id)?;
        self.settled[index] = true;
        Ok(())
    }

    fn unsettled_index(&self, id: u64) -> Result<usize, SettleError> {
        let index = usize::try_from(id)
            .ok()
            .filter(|&index| index < self.operations.len())
            .ok_or(SettleError::UnknownOperation { id })?;
        if self.settled[index] {
            return Err(SettleError::AlreadySettled { id });
        }
        Ok(index)
    }

    /// The operation with this id, if any.
    pub fn operation(&self, id: u64) -> Option<&Operation> {
        usize::try_from(id)
            .ok()
            .and_then(|index| self.operations.get(index))
    }

    /// Every operation, in invocation order.
    pub fn operations(&self) -> &Chunked<Operation> {
        &self.operations
    }

    /// The operations invoked but neither completed nor failed yet.
    pub fn pending(&self) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .zip(&self.settled)
            .filter(|(_, settled)| !**settled)
            .map(|(operation, _)| operation)
    }

    /// The number of operations invoked.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// True if no operation was invoked.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The operations, for a checker.
    pub fn into_operations(self) -> Vec<Operation> {
        self.operations.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn builder_assigns_ids_and_records_outcomes() {
        let mut history = History::new();
        let put = history.invoke(1, "x", OpKind::Put(b"a".to_vec()), 10);
        let get = history.invoke(2, "x", OpKind::Get, 12);
        let lost = history.invoke(3, "x", OpKind::Delete, 13);
        let pending = history.invoke(4, "x", OpKind::Append(b"b".to_vec()), 14);
        assert_eq!((put, get, lost, pending), (0, 1, 2, 3));
        history.complete(put, 15, None).unwrap();
        history.complete(get, 16, Some(b"a".to_vec())).unwrap();
        history.fail_unknown(lost).unwrap();

        let operations = history.operations();
        assert_eq!(operations[0].completed_at(), Some(15));
        assert_eq!(operations[1].value_read(), Some(Some(&b"a"[..])));
        assert_eq!(operations[2].outcome, Outcome::Unknown);
        assert_eq!(operations[3].outcome, Outcome::Unknown);
        let pending_ids: Vec<u64> = history.pending().map(|operation| operation.id).collect();
        assert_eq!(pending_ids, vec![pending]);
        assert_eq!(history.len(), 4);
    }

    #[test]
    fn builder_refuses_misuse() {
        let mut history = History::new();
        let put = history.invoke(1, "x", OpKind::Put(b"a".to_vec()), 10);
        let get = history.invoke(1, "x", OpKind::Get, 10);
        let cases: [(&str, Result<(), SettleError>, SettleError); 4] = [
            (
                "unknown id",
                history.clone().complete(9, 20, None),
                SettleError::UnknownOperation { id: 9 },
            ),
            (
                "completed before invoked",
                history.clone().complete(put, 5, None),
                SettleError::CompletedBeforeInvoked {
                    id: put,
                    invoked_at: 10,
                    completed_at: 5,
                },
            ),
            (
                "value on a write",
                history.clone().complete(put, 20, Some(b"a".to_vec())),
                SettleError::ValueOnWrite { id: put },
            ),
            (
                "settled twice",
                {
                    let mut twice = history.clone();
                    twice.complete(get, 20, None).unwrap();
                    twice.fail_unknown(get)
                },
                SettleError::AlreadySettled { id: get },
            ),
        ];
        for (name, result, expected) in cases {
            assert_eq!(result, Err(expected), "{name}");
        }
    }

    #[test]
    fn operations_render_for_humans() {
        let cases = [
            (
                Operation {
                    id: 7,
                    client: 3,
                    key: b"x".to_vec(),
                    kind: OpKind::Append(b"[c3.17]".to_vec()),
                    invoked_at: 12,
                    outcome: Outcome::Ok {
                        completed_at: 20,
                        value: None,
                    },
                },
                "#7 client 3: append(\"x\", \"[c3.17]\") invoked at 12, completed at 20",
            ),
            (
                Operation {
                    id: 8,
                    client: 1,
                    key: b"x".to_vec(),
                    kind: OpKind::Get,
                    invoked_at: 21,
                    outcome: Outcome::Ok {
                        completed_at: 25,
                        value: None,
                    },
                },
                "#8 client 1: get(\"x\") -> missing invoked at 21, completed at 25",
            ),
            (
                Operation {
                    id: 9,
                    client: 2,
                    key: b"k\xff".to_vec(),
                    kind: OpKind::Put(b"say \"hi\"\n".to_vec()),
                    invoked_at: 30,
                    outcome: Outcome::Unknown,
                },
                "#9 client 2: put(\"k\\xff\", \"say \\\"hi\\\"\\n\") invoked at 30, outcome unknown",
            ),
        ];
        for (operation, expected) in cases {
            assert_eq!(operation.to_string(), expected);
        }
    }

    #[test]
    fn long_values_are_shortened_unless_asked_in_full() {
        let long = vec![b'a'; 200];
        let short = DisplayBytes(&long).to_string();
        assert!(short.contains("…(200 bytes)…"), "{short}");
        assert!(short.len() < 120, "{short}");
        let full = alloc::format!("{:#}", DisplayBytes(&long));
        assert_eq!(full.len(), 202);
    }
}
