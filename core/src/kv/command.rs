//! The client protocol (requests and responses between clerks and replicas)
//! and the commands the replicas put in the log.

use alloc::string::String;
use bytes::Bytes;
use core::fmt;

use super::codec::{DecodeError, Decoder, Encoder};
use crate::raft::{LogIndex, NodeId, Term};

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
pub enum Operation {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Append `value` to the value of `key` (a missing key counts as empty).
    Append {
        /// The key.
        key: Bytes,
        /// What to append.
        value: Bytes,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Read `key` (linearizable, via ReadIndex; never written to the log).
    Get {
        /// The key.
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

/// A request from a client to a replica. `id` is the client's correlation id,
/// echoed in the response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClientRequest {
    /// Correlation id chosen by the client.
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RequestBody {
    /// A client's first write, which opens its session (§6.3 of the
    /// dissertation, with the registration folded into the first write: one
    /// log entry, one round). The session's id is the index of the entry;
    /// the write is its sequence number 1. `nonce`, drawn by the client and
    /// kept across retries, lets a retried opening be recognised: it is
    /// answered with the original result and not applied again.
    Open {
        /// Identifies this opening across retries (non-zero).
        nonce: u64,
        /// The write.
        operation: Operation,
    },
    /// Run an operation in a session (a read needs none). Writes with a
    /// `seq` already applied are answered with the original result and not
    /// applied again.
    Operation {
        /// The session.
        client: ClientId,
        /// Sequence number within the session, starting at 1, one operation at a time.
        seq: u64,
        /// The operation.
        operation: Operation,
    },
    /// Report this replica's Raft status (answered by any replica).
    Status,
    /// Report the cluster's members (answered by any replica, from its log;
    /// the leader's answer is the authoritative one).
    Members,
    /// Change the membership by one server (answered by the leader once the
    /// change is in its log; [`RequestBody::Members`] tells when it is
    /// committed).
    ChangeMembers(MemberChange),
    /// A chunk of a consistent snapshot of the state machine, for a backup
    /// (answered by the leader). The first request (`index: None`) takes
    /// the snapshot at a linearizable point (after a ReadIndex round) and
    /// answers its first chunk; the next ones name its `index` and the
    /// `offset` wanted.
    Backup {
        /// The snapshot being fetched; `None` for a new one.
        index: Option<LogIndex>,
        /// Where the chunk starts, in bytes.
        offset: u64,
    },
    /// A linearizable read that any replica may serve, a follower included
    /// (follower reads: it asks its leader for a read index and serves
    /// from its own state machine once it has applied that far). Sent by a
    /// clerk with [`ClerkConfig::follower_reads`](super::ClerkConfig::follower_reads).
    FollowerRead {
        /// The key to read.
        key: Bytes,
    },
}

/// A chunk of a backup snapshot ([`RequestBody::Backup`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BackupChunk {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// That entry's term.
    pub term: Term,
    /// The snapshot's size, bytes.
    pub total: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// The chunk.
    pub data: Bytes,
}

/// A membership change asked by an operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MemberChange {
    /// Add a learner `id` reached at `address`; the id must never have been used.
    Add {
        /// The new member's id.
        id: NodeId,
        /// Where it is reached.
        address: String,
    },
    /// Make learner `id` a voter.
    Promote(NodeId),
    /// Remove member `id` (the leader hands leadership over first when it
    /// is the one removed).
    Remove(NodeId),
}

/// One member of the cluster, as the leader sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemberInfo {
    /// Its id.
    pub id: NodeId,
    /// Where it is reached (empty if the configuration has no address for it).
    pub address: String,
    /// Whether it votes (else it is a learner).
    pub voter: bool,
    /// The highest log index known to be on it (the leader's own last index
    /// for the leader).
    pub match_index: LogIndex,
}

/// The cluster's membership, as one replica sees it (the leader's view is
/// the authoritative one; only the leader knows the members' match indexes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MembersStatus {
    /// The replica that answered.
    pub node: NodeId,
    /// The leader it knows of (itself when `node` leads).
    pub leader: Option<NodeId>,
    /// Its term.
    pub term: Term,
    /// Its commit index.
    pub commit_index: LogIndex,
    /// Its last log index.
    pub last_index: LogIndex,
    /// Every member, voters and learners, by id.
    pub members: alloc::vec::Vec<MemberInfo>,
    /// Ids removed from the cluster (never reused).
    pub removed: alloc::vec::Vec<NodeId>,
    /// Whether the latest membership change is not committed yet.
    pub change_pending: bool,
}

/// A replica's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClientResponse {
    /// The request's correlation id.
    pub id: u64,
    /// The outcome.
    pub result: Result<Reply, ServiceError>,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Reply {
    /// The session was opened by its first write, which took effect; later
    /// writes use this id with sequence numbers 2, 3, ...
    Opened(ClientId),
    /// The operation took effect; a get carries the value read (`None`: missing key).
    Done(Option<Bytes>),
    /// The replica's status.
    Status(NodeStatus),
    /// The cluster's members.
    Members(MembersStatus),
    /// A chunk of a backup snapshot.
    Backup(BackupChunk),
}

/// A replica's Raft status, as `distribkv-native status` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeStatus {
    /// Node id.
    pub id: NodeId,
    /// `leader`, `follower`, `candidate`, `precandidate` or `learner`.
    pub role: String,
    /// Current term.
    pub term: Term,
    /// Known leader.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Applied index.
    pub applied_index: LogIndex,
    /// Last log index.
    pub last_index: LogIndex,
    /// Durable log index.
    pub durable_index: LogIndex,
    /// Snapshot index.
    pub snapshot_index: LogIndex,
    /// Keys stored.
    pub keys: u64,
    /// Open client sessions.
    pub sessions: u64,
    /// A fingerprint of the state machine, keys, values and sessions
    /// ([`KvStore::fingerprint`](super::KvStore::fingerprint)): replicas that
    /// applied the same entries have the same fingerprint.
    pub fingerprint: u64,
    /// The voters of the latest configuration in its log.
    pub voters: alloc::vec::Vec<NodeId>,
    /// Its learners.
    pub learners: alloc::vec::Vec<NodeId>,
    /// Whether it knows a leader of its term and has applied everything it
    /// knows to be committed (what `/readyz` answers).
    pub ready: bool,
    /// On the leader: every other member's match index (`(id, index)`).
    pub followers: alloc::vec::Vec<(NodeId, LogIndex)>,
}

/// Why a request failed. [`ServiceError::is_definite`] tells whether the
/// operation certainly did not take effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
        /// The client's nonce for this opening ([`RequestBody::Open`]).
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
