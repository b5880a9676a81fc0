//! What a controller client asks and is answered: the operations
//! ([`ControllerOp`]), the command as written to the controller's log
//! ([`ControllerCommand`], with its encoding), the refusals
//! ([`ControllerError`]) and the replies ([`ControllerReply`]).

use super::*;

/// What a controller client asks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ControllerOp {
    /// Add groups (id → servers), then rebalance.
    Join(BTreeMap<GroupId, Vec<NodeId>>),
    /// Remove groups, then rebalance their shards over the rest.
    Leave(Vec<GroupId>),
    /// Assign one shard to one group (no rebalancing).
    Move {
        /// The shard.
        shard: ShardId,
        /// Its new owner (a current group).
        group: GroupId,
    },
    /// The configuration with this number, or the latest (`None`, or a
    /// number past the latest).
    Query(Option<u64>),
    /// Retire `group` for good: sent by a host holding a replica of a group
    /// that left and has handed every shard over, in configuration
    /// `config_num` (a client may send it too: it only bars the id from
    /// joining again, since replicas drop themselves only once they have
    /// handed everything over, see `shard::host`). Taken only if the group was a member of a configuration
    /// before `config_num` and is in none from `config_num` to the latest;
    /// otherwise (or for a retry) it changes nothing. Idempotent: it needs
    /// no session, and makes no configuration.
    Retire {
        /// The group.
        group: GroupId,
        /// The configuration the asking replica has applied.
        config_num: u64,
    },
}

/// A controller request as it is written to the controller's log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ControllerCommand {
    /// The client's id (chosen by the client, random).
    pub client: u64,
    /// Its sequence number (from 1, one request at a time).
    pub seq: u64,
    /// Leader's clock (ms) when proposed: expires idle sessions.
    pub at: u64,
    /// What is asked.
    pub op: ControllerOp,
}

/// Why the controller refused a request. It took no effect, except for
/// [`ControllerError::SessionExpired`], whose outcome is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ControllerError {
    /// A Join named a group that is already in the configuration, group 0,
    /// or a group without servers.
    BadJoin(GroupId),
    /// A Leave named a group that is not in the configuration.
    UnknownGroup(GroupId),
    /// A Leave would remove every group, leaving the shards with no owner
    /// (and their data with no server); the group named is the last one it
    /// would remove. Another group must join first.
    LastGroup(GroupId),
    /// A Move named a shard out of range.
    UnknownShard(ShardId),
    /// The sequence number is older than the session's latest.
    Stale,
    /// The client's session was dropped (expired or evicted) after this
    /// request, or a later one, was applied: a retry cannot learn its
    /// result, which is unknown.
    SessionExpired,
    /// A Join named a group that left and was retired: its replicas are
    /// gone, and its id is not reused.
    Retired(GroupId),
    /// A Retire whose conditions do not hold (the group is, or will again
    /// be, in a configuration, or never was in one).
    NotRetirable(GroupId),
}

impl fmt::Display for ControllerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControllerError::BadJoin(g) => {
                write!(f, "cannot join group {g} (zero, present, or no servers)")
            }
            ControllerError::UnknownGroup(g) => write!(f, "group {g} is not in the configuration"),
            ControllerError::LastGroup(g) => write!(
                f,
                "group {g} is the last group: its shards would have no owner \
                 (join another group first)"
            ),
            ControllerError::UnknownShard(s) => write!(f, "shard {s} does not exist"),
            ControllerError::Stale => write!(f, "request superseded by a newer one"),
            ControllerError::SessionExpired => {
                write!(f, "client session expired: the outcome is unknown")
            }
            ControllerError::Retired(g) => write!(
                f,
                "group {g} left and was retired (its replicas are gone): \
                 join a group under a new id"
            ),
            ControllerError::NotRetirable(g) => write!(
                f,
                "group {g} cannot be retired: it is in a configuration, or never was"
            ),
        }
    }
}

/// What the controller answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ControllerReply {
    /// The change took effect (or had, for a retry).
    Done,
    /// The configuration asked for.
    Config(ShardConfig),
    /// Refused; nothing changed.
    Refused(ControllerError),
}

const TAG_JOIN: u8 = 1;
const TAG_LEAVE: u8 = 2;
const TAG_MOVE: u8 = 3;
const TAG_QUERY: u8 = 4;
const TAG_RETIRE: u8 = 5;
const VERSION: u8 = 1;

impl ControllerCommand {
    /// Encodes the command as a log payload.
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::with_capacity(32);
        e.u8(VERSION)
            .varint(self.client)
            .varint(self.seq)
            .varint(self.at);
        match &self.op {
            ControllerOp::Join(groups) => {
                e.u8(TAG_JOIN).varint(groups.len() as u64);
                for (g, servers) in groups {
                    e.varint(*g).varint(servers.len() as u64);
                    for s in servers {
                        e.varint(*s);
                    }
                }
            }
            ControllerOp::Leave(groups) => {
                e.u8(TAG_LEAVE).varint(groups.len() as u64);
                for g in groups {
                    e.varint(*g);
                }
            }
            ControllerOp::Move { shard, group } => {
                e.u8(TAG_MOVE).varint(u64::from(*shard)).varint(*group);
            }
            ControllerOp::Query(num) => {
                e.u8(TAG_QUERY).varint(num.map_or(0, |n| n + 1));
            }
            ControllerOp::Retire { group, config_num } => {
                e.u8(TAG_RETIRE).varint(*group).varint(*config_num);
            }
        }
        e.finish()
    }

    /// Decodes a log payload.
    pub fn decode(payload: Bytes) -> Result<ControllerCommand, DecodeError> {
        let mut d = Decoder::new(payload);
        if d.u8()? != VERSION {
            return Err(DecodeError::Invalid("controller command version"));
        }
        let client = d.varint()?;
        let seq = d.varint()?;
        let at = d.varint()?;
        let op = match d.u8()? {
            TAG_JOIN => {
                let mut groups = BTreeMap::new();
                for _ in 0..d.length()? {
                    let g = d.varint()?;
                    let mut servers = Vec::new();
                    for _ in 0..d.length()? {
                        servers.push(d.varint()?);
                    }
                    groups.insert(g, servers);
                }
                ControllerOp::Join(groups)
            }
            TAG_LEAVE => {
                let mut groups = Vec::new();
                for _ in 0..d.length()? {
                    groups.push(d.varint()?);
                }
                ControllerOp::Leave(groups)
            }
            TAG_MOVE => ControllerOp::Move {
                shard: u32::try_from(d.varint()?).map_err(|_| DecodeError::Invalid("shard id"))?,
                group: d.varint()?,
            },
            TAG_QUERY => ControllerOp::Query(d.varint()?.checked_sub(1)),
            TAG_RETIRE => ControllerOp::Retire {
                group: d.varint()?,
                config_num: d.varint()?,
            },
            _ => return Err(DecodeError::Invalid("controller command tag")),
        };
        d.finish()?;
        Ok(ControllerCommand {
            client,
            seq,
            at,
            op,
        })
    }
}
