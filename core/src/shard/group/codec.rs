//! The group's formats: its log entries ([`GroupCommand`]) and the shards
//! that move between groups ([`encode_shard`]).

use super::*;

/// An entry of a group's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupCommand {
    /// A client operation (a get too: reads go through the log, so the
    /// ownership check and the read happen at the same point of the history).
    Client {
        /// Client id (chosen by the client).
        client: u64,
        /// Sequence number within the client (writes only need it).
        seq: u64,
        /// Leader's clock, ms.
        at: u64,
        /// The operation.
        op: Operation,
    },
    /// Step to this configuration (taken only if it is the next one and
    /// every shard is settled).
    Config(ShardConfig),
    /// The data of a `Pulling` shard, from its previous owner.
    InsertShard {
        /// The configuration the shard moved in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
        /// Its data and sessions ([`encode_shard`]).
        data: Bytes,
    },
    /// A part of a `Pulling` shard's data, from its previous owner (a
    /// shard too large for one entry moves in parts, in key order): taken
    /// only if it follows what the shard holds, i.e. `after` is the
    /// largest key held (`None`: nothing held yet). The last part carries
    /// the sessions and makes the shard `Serving`.
    InsertShardPart {
        /// The configuration the shard moved in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
        /// The largest key of the parts before this one.
        after: Option<Bytes>,
        /// Whether this is the last part.
        last: bool,
        /// Its keys (larger than `after`) and, in the last part, the
        /// sessions ([`encode_shard`]).
        data: Bytes,
    },
    /// The new owner confirmed it has this `Sending` shard: drop it.
    DeleteShard {
        /// The configuration the shard moved in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
    },
}

const VERSION: u8 = 1;
const TAG_CLIENT: u8 = 1;
const TAG_CONFIG: u8 = 2;
const TAG_INSERT: u8 = 3;
const TAG_DELETE: u8 = 4;
const TAG_INSERT_PART: u8 = 5;

impl GroupCommand {
    /// Encodes the command as a log payload.
    pub fn encode(&self) -> Bytes {
        let mut e = Encoder::with_capacity(32);
        e.u8(VERSION);
        match self {
            GroupCommand::Client {
                client,
                seq,
                at,
                op,
            } => {
                e.u8(TAG_CLIENT).varint(*client).varint(*seq).varint(*at);
                encode_operation(&mut e, op);
            }
            GroupCommand::Config(config) => {
                e.u8(TAG_CONFIG);
                config.encode_into(&mut e);
            }
            GroupCommand::InsertShard {
                config_num,
                shard,
                data,
            } => {
                e.u8(TAG_INSERT)
                    .varint(*config_num)
                    .varint(u64::from(*shard))
                    .bytes(data);
            }
            GroupCommand::InsertShardPart {
                config_num,
                shard,
                after,
                last,
                data,
            } => {
                e.u8(TAG_INSERT_PART)
                    .varint(*config_num)
                    .varint(u64::from(*shard));
                match after {
                    Some(key) => e.u8(1).bytes(key),
                    None => e.u8(0),
                };
                e.u8(u8::from(*last)).bytes(data);
            }
            GroupCommand::DeleteShard { config_num, shard } => {
                e.u8(TAG_DELETE)
                    .varint(*config_num)
                    .varint(u64::from(*shard));
            }
        }
        e.finish()
    }

    /// Decodes a log payload.
    pub fn decode(payload: Bytes) -> Result<GroupCommand, DecodeError> {
        let mut d = Decoder::new(payload);
        if d.u8()? != VERSION {
            return Err(DecodeError::Invalid("group command version"));
        }
        let command = match d.u8()? {
            TAG_CLIENT => GroupCommand::Client {
                client: d.varint()?,
                seq: d.varint()?,
                at: d.varint()?,
                op: decode_operation(&mut d)?,
            },
            TAG_CONFIG => GroupCommand::Config(ShardConfig::decode_from(&mut d)?),
            TAG_INSERT => GroupCommand::InsertShard {
                config_num: d.varint()?,
                shard: decode_shard_id(&mut d)?,
                data: d.bytes()?,
            },
            TAG_DELETE => GroupCommand::DeleteShard {
                config_num: d.varint()?,
                shard: decode_shard_id(&mut d)?,
            },
            TAG_INSERT_PART => GroupCommand::InsertShardPart {
                config_num: d.varint()?,
                shard: decode_shard_id(&mut d)?,
                after: match d.u8()? {
                    0 => None,
                    1 => Some(d.bytes()?),
                    _ => return Err(DecodeError::Invalid("shard part bound")),
                },
                last: match d.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("shard part flag")),
                },
                data: d.bytes()?,
            },
            _ => return Err(DecodeError::Invalid("group command tag")),
        };
        d.finish()?;
        Ok(command)
    }
}

pub(super) fn decode_shard_id(d: &mut Decoder) -> Result<ShardId, DecodeError> {
    u32::try_from(d.varint()?).map_err(|_| DecodeError::Invalid("shard id"))
}

pub(crate) fn encode_operation(e: &mut Encoder, op: &Operation) {
    match op {
        Operation::Put { key, value } => e.u8(1).bytes(key).bytes(value),
        Operation::Append { key, value } => e.u8(2).bytes(key).bytes(value),
        Operation::Delete { key } => e.u8(3).bytes(key),
        Operation::Get { key } => e.u8(4).bytes(key),
    };
}

pub(crate) fn decode_operation(d: &mut Decoder) -> Result<Operation, DecodeError> {
    Ok(match d.u8()? {
        1 => Operation::Put {
            key: d.bytes()?,
            value: d.bytes()?,
        },
        2 => Operation::Append {
            key: d.bytes()?,
            value: d.bytes()?,
        },
        3 => Operation::Delete { key: d.bytes()? },
        4 => Operation::Get { key: d.bytes()? },
        _ => return Err(DecodeError::Invalid("operation tag")),
    })
}

/// Layout of [`encode_shard`]: 1, the sessions with their tombstones
/// ([`SessionTable::encode_into`]).
const SHARD_FORMAT: u8 = 1;

/// Encodes a shard's data, sessions and session tombstones for a move.
pub fn encode_shard(data: &BTreeMap<Bytes, Bytes>, sessions: &SessionTable) -> Bytes {
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut e =
        Encoder::with_capacity(size + 24 + 24 * sessions.len() + 12 * sessions.tombstone_count());
    e.u8(SHARD_FORMAT).varint(data.len() as u64);
    for (k, v) in data {
        e.bytes(k).bytes(v);
    }
    e.varint(sessions.next_sweep());
    sessions.encode_into(&mut e);
    e.finish()
}

/// An empty session table of a shard, under `limits`.
pub fn shard_sessions(limits: &StoreLimits) -> SessionTable {
    SessionTable::with_tombstones(
        Tombstones::LastSeq,
        limits.session_ttl_ms,
        limits.max_sessions,
        limits.max_dropped_sessions,
    )
}

/// Decodes what [`encode_shard`] wrote.
pub fn decode_shard(
    bytes: Bytes,
    limits: &StoreLimits,
) -> Result<(BTreeMap<Bytes, Bytes>, SessionTable), DecodeError> {
    let mut d = Decoder::new(bytes);
    if d.u8()? != SHARD_FORMAT {
        return Err(DecodeError::Invalid("shard format"));
    }
    let mut data = BTreeMap::new();
    for _ in 0..d.length()? {
        let k = d.bytes()?;
        let v = d.bytes()?;
        data.insert(k, v);
    }
    let next_sweep = d.varint()?;
    let decoded = decode_sessions(&mut d, SessionLayout::CURRENT)?;
    let sessions = SessionTable::restore_with(
        Tombstones::LastSeq,
        limits.session_limits(),
        next_sweep,
        decoded,
    );
    d.finish()?;
    Ok((data, sessions))
}
