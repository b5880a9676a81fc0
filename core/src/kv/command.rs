//! What the replicas put in the log: key-value operations, the commands
//! that carry them (and their binary encoding), and the errors a request
//! gets when an operation is refused. The requests and responses around
//! them are in [`protocol`](super::protocol).

use alloc::string::String;
use bytes::Bytes;
use core::fmt;

use super::codec::{DecodeError, Decoder, Encoder};
use crate::raft::NodeId;

/// A client session id: the log index of the entry that opened it (a
/// client's first write), so every replica assigns the same id and no two
/// sessions share one.
pub type ClientId = u64;

/// Largest key, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// Largest value (after an append, too), in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// A key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub enum Operation {
    /// Set `key` to `value`.
    Put {
        /// The key.
        #[cfg_attr(feature = "serde", serde(with = "super::text"))]
        key: Bytes,
        /// The new value.
        #[cfg_attr(feature = "serde", serde(with = "super::text"))]
        value: Bytes,
    },
    /// Append `value` to the value of `key` (a missing key counts as empty).
    Append {
        /// The key.
        #[cfg_attr(feature = "serde", serde(with = "super::text"))]
        key: Bytes,
        /// What to append.
        #[cfg_attr(feature = "serde", serde(with = "super::text"))]
        value: Bytes,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        #[cfg_attr(feature = "serde", serde(with = "super::text"))]
        key: Bytes,
    },
    /// Read `key` (linearizable, via ReadIndex; never written to the log).
    Get {
        /// The key.
        #[cfg_attr(feature = "serde", serde(with = "super::text"))]
        key: Bytes,
    },
}

impl Operation {
    /// The key the operation touches.
    pub fn key(&self) -> &Bytes {
        match self {
            Operation::Put { key, .. }
            | Operation::Append { key, .. }
            | Operation::Delete { key }
            | Operation::Get { key } => key,
        }
    }

    /// Lowercase name: `put`, `append`, `delete`, `get`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Put { .. } => "put",
            Operation::Append { .. } => "append",
            Operation::Delete { .. } => "delete",
            Operation::Get { .. } => "get",
        }
    }

    /// Whether the operation changes state (and so goes through the log).
    pub fn is_write(&self) -> bool {
        !matches!(self, Operation::Get { .. })
    }

    /// Checks the size limits, before anything reaches the log.
    pub fn validate(&self, max_key: usize, max_value: usize) -> Result<(), ServiceError> {
        let key = self.key().len();
        if key > max_key {
            return Err(ServiceError::KeyTooLarge {
                size: key,
                limit: max_key,
            });
        }
        if let Operation::Put { value, .. } | Operation::Append { value, .. } = self
            && value.len() > max_value
        {
            return Err(ServiceError::ValueTooLarge {
                size: value.len(),
                limit: max_value,
            });
        }
        Ok(())
    }
}

/// Why a request failed. [`ServiceError::is_definite`] tells whether the
/// operation certainly did not take effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "camelCase", rename_all_fields = "camelCase")
)]
pub enum ServiceError {
    /// This replica is not the leader; try `leader_hint`. A write that was
    /// pending here may still commit: retry with the same sequence number.
    NotLeader {
        /// The leader this replica knows of.
        leader_hint: Option<NodeId>,
    },
    /// The session is unknown (expired or never opened): open a new one. A
    /// write sent in the old session may or may not have taken effect.
    SessionExpired,
    /// The key exceeds the limit.
    KeyTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The value (or the value an append would produce) exceeds the limit.
    ValueTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The cluster is overloaded or handing over leadership: retry shortly.
    Busy,
    /// The request's sequence number is older than the session's latest:
    /// its answer was already given.
    StaleSequence,
    /// The replica has stopped (it hit an unrecoverable error).
    Unavailable(String),
    /// A membership change was refused (invalid, a removed id, or another
    /// change in progress); nothing changed.
    Membership(String),
}

impl ServiceError {
    /// Whether the operation certainly did not take effect.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            ServiceError::KeyTooLarge { .. }
                | ServiceError::ValueTooLarge { .. }
                | ServiceError::Membership(_)
        )
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::NotLeader {
                leader_hint: Some(id),
            } => write!(f, "not the leader (try node {id})"),
            ServiceError::NotLeader { leader_hint: None } => {
                write!(f, "not the leader (no leader known)")
            }
            ServiceError::SessionExpired => write!(f, "client session expired"),
            ServiceError::KeyTooLarge { size, limit } => {
                write!(f, "key of {size} bytes exceeds the limit of {limit}")
            }
            ServiceError::ValueTooLarge { size, limit } => {
                write!(f, "value of {size} bytes exceeds the limit of {limit}")
            }
            ServiceError::Busy => write!(f, "busy; retry shortly"),
            ServiceError::StaleSequence => {
                write!(f, "request superseded by a newer one in the same session")
            }
            ServiceError::Unavailable(why) => write!(f, "replica unavailable: {why}"),
            ServiceError::Membership(why) => write!(f, "{why}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ServiceError {}

/// What a log entry's command says. `at` is the leader's clock when it
/// proposed the command: the state machine's notion of time, used to expire
/// sessions identically on every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open a session, with no write; its id is the entry's index. Written
    /// by earlier versions (a session is now opened by its first write,
    /// [`Command::Open`]); still applied, so that their logs replay.
    Register {
        /// Leader's clock, ms.
        at: u64,
    },
    /// Open a session with its first write: the session's id is the
    /// entry's index, the write its sequence number 1.
    Open {
        /// The client's nonce for this opening ([`RequestBody::Open`](super::RequestBody::Open)).
        nonce: u64,
        /// Leader's clock, ms.
        at: u64,
        /// The write (never a get).
        operation: Operation,
    },
    /// A write in a session.
    Write {
        /// Session.
        client: ClientId,
        /// Sequence number.
        seq: u64,
        /// Leader's clock, ms.
        at: u64,
        /// The write (never a get).
        operation: Operation,
    },
}

const COMMAND_VERSION: u8 = 1;
const TAG_REGISTER: u8 = 1;
const TAG_WRITE: u8 = 2;
const TAG_OPEN: u8 = 3;
const OP_PUT: u8 = 1;
const OP_APPEND: u8 = 2;
const OP_DELETE: u8 = 3;

impl Command {
    /// Encodes the command as a log payload.
    pub fn encode(&self) -> Bytes {
        match self {
            Command::Register { at } => {
                let mut e = Encoder::with_capacity(12);
                e.u8(COMMAND_VERSION).u8(TAG_REGISTER).varint(*at);
                e.finish()
            }
            Command::Write {
                client,
                seq,
                at,
                operation,
            } => {
                let mut e = Encoder::with_capacity(32 + operation.key().len() + 8);
                e.u8(COMMAND_VERSION)
                    .u8(TAG_WRITE)
                    .varint(*client)
                    .varint(*seq)
                    .varint(*at);
                encode_write(&mut e, operation);
                e.finish()
            }
            Command::Open {
                nonce,
                at,
                operation,
            } => {
                let mut e = Encoder::with_capacity(32 + operation.key().len() + 8);
                e.u8(COMMAND_VERSION)
                    .u8(TAG_OPEN)
                    .varint(*nonce)
                    .varint(*at);
                encode_write(&mut e, operation);
                e.finish()
            }
        }
    }

    /// Decodes a log payload.
    pub fn decode(payload: Bytes) -> Result<Command, DecodeError> {
        let mut d = Decoder::new(payload);
        if d.u8()? != COMMAND_VERSION {
            return Err(DecodeError::Invalid("command version"));
        }
        let command = match d.u8()? {
            TAG_REGISTER => Command::Register { at: d.varint()? },
            TAG_WRITE => Command::Write {
                client: d.varint()?,
                seq: d.varint()?,
                at: d.varint()?,
                operation: decode_write(&mut d)?,
            },
            TAG_OPEN => Command::Open {
                nonce: d.varint()?,
                at: d.varint()?,
                operation: decode_write(&mut d)?,
            },
            _ => return Err(DecodeError::Invalid("command tag")),
        };
        d.finish()?;
        Ok(command)
    }

    /// A short human rendering (`put x=1 (c5#2)`: session 5, sequence
    /// number 2; `put x=1 (new session)`; `register`), for traces and the
    /// browser.
    pub fn describe(payload: &Bytes) -> String {
        use alloc::format;
        let write = |operation: &Operation, session: &str| {
            let key = String::from_utf8_lossy(operation.key());
            match operation {
                Operation::Put { value, .. } => {
                    format!("put {key}={} ({session})", String::from_utf8_lossy(value))
                }
                Operation::Append { value, .. } => {
                    format!(
                        "append {key}+={} ({session})",
                        String::from_utf8_lossy(value)
                    )
                }
                Operation::Delete { .. } => format!("delete {key} ({session})"),
                Operation::Get { .. } => format!("get {key}"),
            }
        };
        match Command::decode(payload.clone()) {
            Ok(Command::Register { .. }) => String::from("register"),
            Ok(Command::Write {
                client,
                seq,
                operation,
                ..
            }) => write(&operation, &format!("c{client}#{seq}")),
            Ok(Command::Open { operation, .. }) => write(&operation, "new session"),
            Err(_) => format!("<{} bytes>", payload.len()),
        }
    }
}

/// Appends a write: its tag, key and value.
fn encode_write(e: &mut Encoder, operation: &Operation) {
    match operation {
        Operation::Put { key, value } => e.u8(OP_PUT).bytes(key).bytes(value),
        Operation::Append { key, value } => e.u8(OP_APPEND).bytes(key).bytes(value),
        Operation::Delete { key } => e.u8(OP_DELETE).bytes(key),
        // Invariant: the replica proposes only writes.
        Operation::Get { .. } => unreachable!("gets are never written to the log"),
    };
}

/// Reads a write written by [`encode_write`].
fn decode_write(d: &mut Decoder) -> Result<Operation, DecodeError> {
    Ok(match d.u8()? {
        OP_PUT => Operation::Put {
            key: d.bytes()?,
            value: d.bytes()?,
        },
        OP_APPEND => Operation::Append {
            key: d.bytes()?,
            value: d.bytes()?,
        },
        OP_DELETE => Operation::Delete { key: d.bytes()? },
        _ => return Err(DecodeError::Invalid("operation tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let commands = [
            Command::Register { at: 12345 },
            Command::Write {
                client: 7,
                seq: 3,
                at: 99,
                operation: Operation::Put {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from_static(b"v"),
                },
            },
            Command::Write {
                client: 1,
                seq: u64::MAX,
                at: 0,
                operation: Operation::Append {
                    key: Bytes::from_static(b""),
                    value: Bytes::from_static(b"xyz"),
                },
            },
            Command::Write {
                client: 2,
                seq: 1,
                at: 5,
                operation: Operation::Delete {
                    key: Bytes::from_static(b"gone"),
                },
            },
            Command::Open {
                nonce: u64::MAX,
                at: 6,
                operation: Operation::Put {
                    key: Bytes::from_static(b"first"),
                    value: Bytes::from_static(b"write"),
                },
            },
        ];
        for command in commands {
            assert_eq!(Command::decode(command.encode()), Ok(command));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases: [&[u8]; 8] = [
            b"",
            &[9],
            &[1, 9],
            &[1, 2, 1, 1, 1, 7],
            &[1, 1, 5, 0],
            &[1, 2, 1, 1, 1, 1, 200],
            &[1, 3, 1, 1, 4],
            &[1, 3, 1, 1, 3, 1, b'k', 0],
        ];
        for case in cases {
            assert!(
                Command::decode(Bytes::copy_from_slice(case)).is_err(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn limits_are_checked_before_the_log() {
        let big = Bytes::from(alloc::vec![0u8; 11]);
        let put = Operation::Put {
            key: Bytes::from_static(b"k"),
            value: big.clone(),
        };
        assert_eq!(
            put.validate(10, 10),
            Err(ServiceError::ValueTooLarge {
                size: 11,
                limit: 10
            })
        );
        let get = Operation::Get { key: big };
        assert_eq!(
            get.validate(10, 10),
            Err(ServiceError::KeyTooLarge {
                size: 11,
                limit: 10
            })
        );
        assert!(ServiceError::KeyTooLarge { size: 1, limit: 0 }.is_definite());
        assert!(!ServiceError::NotLeader { leader_hint: None }.is_definite());
    }
}
