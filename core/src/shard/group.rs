//! The sharded key-value state machine of one replica group (6.5840's
//! `shardkv` server state), applied from the group's own log.
//!
//! Each shard the group holds has a status:
//!
//! - `Serving`: owned in the current configuration and here: client
//!   operations on its keys are applied;
//! - `Pulling { from }`: owned in the current configuration but its data
//!   has not arrived from its previous owner yet: operations are refused
//!   with [`KvError::NotArrived`] (the client retries);
//! - `Sending { to }`: owned in the previous configuration, not in the
//!   current one; kept until the new owner confirms it has the data, then
//!   deleted. Operations are refused with [`KvError::WrongGroup`].
//!
//! A shard absent from the map is not this group's: [`KvError::WrongGroup`].
//!
//! Everything that changes this state is a log entry ([`GroupCommand`]), so
//! every replica of the group goes through the same states in the same
//! order: configurations one at a time ([`GroupCommand::Config`], taken
//! only when no shard is `Pulling` or `Sending`), shards that arrive
//! ([`GroupCommand::InsertShard`]) and shards the new owner confirmed
//! ([`GroupCommand::DeleteShard`]). Shards travel with their client
//! sessions, so a write retried after its shard moved is still recognised.
//!
//! Exactly-once: each shard keeps the sessions of the clients that wrote
//! to it. A client names itself and numbers all its writes in one
//! sequence; its first write to a shard opens its session there. Sessions
//! expire and are evicted by the rules of the key-value service
//! ([`SessionTable`]), and a dropped session leaves a tombstone of its
//! client and latest sequence number, which moves with the shard too: a
//! retried write of the dropped session's time is refused with
//! [`KvError::SessionExpired`] (its outcome is unknown) instead of being
//! applied a second time, while a newer write of that client opens a new
//! session.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use super::controller::ShardConfig;
use super::{GroupId, ShardId, shard_of};
use crate::kv::Operation;
use crate::kv::codec::{DecodeError, Decoder, Encoder};
use crate::kv::session::{SessionCheck, SessionLayout, SessionTable, Tombstones, decode_sessions};
use crate::kv::store::StoreLimits;
use crate::raft::{LogIndex, NodeId, Payload};

mod codec;

use codec::decode_shard_id;
pub use codec::{GroupCommand, decode_shard, encode_shard, shard_sessions};

/// Where a shard held by this group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardStatus {
    /// Owned and here: serving.
    Serving,
    /// Owned, waiting for its data from `from`.
    Pulling {
        /// The previous owner.
        from: GroupId,
    },
    /// No longer owned: kept until `to` confirms it has the data.
    Sending {
        /// The new owner.
        to: GroupId,
    },
}

/// One shard's data and client sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Its status.
    pub status: ShardStatus,
    /// Key → value.
    pub data: BTreeMap<Bytes, Bytes>,
    /// Exactly-once sessions of the clients that wrote to this shard.
    pub sessions: SessionTable,
}

/// Why a client operation was refused. Only [`KvError::is_definite`]
/// errors certainly took no effect; retry the others with the same
/// sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KvError {
    /// The group does not own the key's shard in its configuration: ask
    /// the controller for a newer one.
    WrongGroup,
    /// The shard is this group's but its data is still on its way: retry shortly.
    NotArrived,
    /// Not the group's leader; try `leader_hint` (a host id).
    NotLeader {
        /// The leader this server knows of.
        leader_hint: Option<NodeId>,
    },
    /// The sequence number is older than the session's latest.
    Stale,
    /// The client's session in this shard was dropped (expired or evicted)
    /// after this write, or a later one, was applied: a retry cannot learn
    /// its result, which is unknown.
    SessionExpired,
    /// The key or (resulting) value exceeds the limits.
    TooLarge,
    /// The server cannot take the request now (overloaded, unknown group): retry.
    Busy,
}

impl KvError {
    /// Whether the operation certainly did not take effect.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            KvError::WrongGroup | KvError::NotArrived | KvError::TooLarge
        )
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::WrongGroup => write!(f, "wrong group for this key"),
            KvError::NotArrived => write!(f, "the shard has not arrived yet"),
            KvError::NotLeader {
                leader_hint: Some(h),
            } => write!(f, "not the leader (try {h})"),
            KvError::NotLeader { leader_hint: None } => write!(f, "not the leader"),
            KvError::Stale => write!(f, "request superseded by a newer one"),
            KvError::SessionExpired => write!(f, "client session expired: the outcome is unknown"),
            KvError::TooLarge => write!(f, "key or value too large"),
            KvError::Busy => write!(f, "busy; retry"),
        }
    }
}

/// What applying a group command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupApplied {
    /// A client operation's result (`Some(value)` for a get that found one).
    Client(Result<Option<Bytes>, KvError>),
    /// A configuration, shard insertion or deletion (taken or ignored as stale).
    Internal,
}

/// A part of a shard moving in parts ([`ShardKv::export_part`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPart {
    /// Its keys and values (and, in the last part, the shard's sessions),
    /// encoded as a shard.
    pub data: Bytes,
    /// Whether it is the shard's last part.
    pub last: bool,
    /// Its largest key (the `after` of the part that follows it); the
    /// `after` it was asked for if it holds no key.
    pub up_to: Option<Bytes>,
}

/// The replicated state of one shard group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardKv {
    group: GroupId,
    /// The configuration the group is in (`num` 0 before the first).
    config: ShardConfig,
    /// Invariant: holds exactly the shards owned in `config` plus those
    /// still `Sending`; a shard is `Pulling` or `Sending` only for a move
    /// made by `config` itself.
    shards: BTreeMap<ShardId, Shard>,
    limits: StoreLimits,
    clock: u64,
}

/// Applies a fresh write (not a get) to a shard's data.
fn apply_write(
    data: &mut BTreeMap<Bytes, Bytes>,
    op: Operation,
    limits: StoreLimits,
) -> Result<Option<Bytes>, KvError> {
    match op {
        Operation::Put { key, value } => {
            data.insert(key, value);
            Ok(None)
        }
        Operation::Append { key, value } => {
            let old = data.get(&key).map_or(0, |v| v.len());
            if old + value.len() > limits.max_value_bytes {
                Err(KvError::TooLarge)
            } else {
                let mut joined = Vec::with_capacity(old + value.len());
                if let Some(v) = data.get(&key) {
                    joined.extend_from_slice(v);
                }
                joined.extend_from_slice(&value);
                data.insert(key, Bytes::from(joined));
                Ok(None)
            }
        }
        Operation::Delete { key } => {
            data.remove(&key);
            Ok(None)
        }
        Operation::Get { .. } => unreachable!("a get is answered before the session check"),
    }
}

/// Format 1: each shard as [`encode_shard`] writes it (sessions with their
/// tombstones).
const SNAPSHOT_MAGIC: &[u8; 4] = b"DKSG";
const SNAPSHOT_VERSION: u8 = 1;

impl ShardKv {
    /// The state of group `group` before any configuration, for a service
    /// of `shards` shards.
    pub fn new(group: GroupId, shards: u32, limits: StoreLimits) -> ShardKv {
        ShardKv {
            group,
            config: ShardConfig::initial(shards),
            shards: BTreeMap::new(),
            limits,
            clock: 0,
        }
    }

    /// The group's id.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The configuration the group is in.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// The shards held, with their status and data.
    pub fn shards(&self) -> &BTreeMap<ShardId, Shard> {
        &self.shards
    }

    /// Whether no shard is moving in or out (the group may take the next
    /// configuration).
    pub fn is_settled(&self) -> bool {
        self.shards
            .values()
            .all(|s| s.status == ShardStatus::Serving)
    }

    /// Shards this group must hand over: (shard, new owner).
    pub fn sending(&self) -> impl Iterator<Item = (ShardId, GroupId)> + '_ {
        self.shards.iter().filter_map(|(id, s)| match s.status {
            ShardStatus::Sending { to } => Some((*id, to)),
            _ => None,
        })
    }

    /// Whether this group has the data of `shard` as moved in configuration
    /// `config_num` (it inserted it, or went past that configuration,
    /// which needs every pulled shard inserted).
    pub fn has_received(&self, config_num: u64, shard: ShardId) -> bool {
        self.config.num > config_num
            || (self.config.num == config_num
                && !matches!(
                    self.shards.get(&shard).map(|s| s.status),
                    Some(ShardStatus::Pulling { .. })
                ))
    }

    /// Whether `shard` is waiting for its data in configuration `config_num`.
    pub fn is_pulling(&self, config_num: u64, shard: ShardId) -> bool {
        self.config.num == config_num
            && matches!(
                self.shards.get(&shard).map(|s| s.status),
                Some(ShardStatus::Pulling { .. })
            )
    }

    /// Whether `shard` is waiting in configuration `config_num` for the new
    /// owner's confirmation.
    pub fn is_sending(&self, config_num: u64, shard: ShardId) -> bool {
        self.config.num == config_num
            && matches!(
                self.shards.get(&shard).map(|s| s.status),
                Some(ShardStatus::Sending { .. })
            )
    }

    /// The data and sessions of a held shard, encoded for a move.
    pub fn export(&self, shard: ShardId) -> Option<Bytes> {
        let s = self.shards.get(&shard)?;
        Some(encode_shard(&s.data, &s.sessions))
    }

    /// Whether a held shard's keys and values hold more than `bytes`
    /// (counted only until they do: asked of every shard being sent at
    /// every poll, it costs at most a part's worth of keys, not the shard).
    pub fn shard_exceeds(&self, shard: ShardId, bytes: usize) -> bool {
        let Some(s) = self.shards.get(&shard) else {
            return false;
        };
        let mut total = 0;
        s.data.iter().any(|(k, v)| {
            total += k.len() + v.len();
            total > bytes
        })
    }

    /// The part of a held shard's export that follows `after` (the largest
    /// key of the parts before it; `None` for the first): its keys in order
    /// up to about `max_bytes` (at least one), and whether it is the last
    /// (which then carries the sessions). The last keys and the sessions go
    /// in one part if it is no larger than `max_bytes`, else the sessions
    /// follow alone, in a last part of no keys. `None` if the shard is not
    /// held.
    pub fn export_part(
        &self,
        shard: ShardId,
        after: Option<&Bytes>,
        max_bytes: usize,
    ) -> Option<ShardPart> {
        use core::ops::Bound;
        let s = self.shards.get(&shard)?;
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.clone()));
        let mut part = BTreeMap::new();
        let mut size = 0;
        let mut rest = s.data.range((lower, Bound::Unbounded)).peekable();
        while let Some((k, v)) = rest.next_if(|_| size < max_bytes || part.is_empty()) {
            size += k.len() + v.len();
            part.insert(k.clone(), v.clone());
        }
        let up_to = part.keys().next_back().cloned().or_else(|| after.cloned());
        if rest.next().is_none() {
            let data = encode_shard(&part, &s.sessions);
            // The sessions go in a part of their own (of no keys, after the
            // same key) if they would make the last part larger than a part:
            // a shard's sessions and tombstones alone may take megabytes,
            // and with a part's keys they could pass an entry's limit.
            if data.len() <= max_bytes || part.is_empty() {
                return Some(ShardPart {
                    data,
                    last: true,
                    up_to,
                });
            }
        }
        Some(ShardPart {
            data: encode_shard(&part, &shard_sessions(&self.limits)),
            last: false,
            up_to,
        })
    }

    /// The largest key a `Pulling` shard holds from the parts it took
    /// (`Some(None)`: none yet); `None` unless the shard is pulled in
    /// configuration `config_num`.
    pub fn pulled_up_to(&self, config_num: u64, shard: ShardId) -> Option<Option<Bytes>> {
        if !self.is_pulling(config_num, shard) {
            return None;
        }
        Some(self.shards.get(&shard)?.data.keys().next_back().cloned())
    }

    /// Whether the group serves `key` now (owns its shard and has its data).
    pub fn serves(&self, key: &[u8]) -> bool {
        let shard = shard_of(key, self.config.shards.len() as u32);
        matches!(
            self.shards.get(&shard).map(|s| s.status),
            Some(ShardStatus::Serving)
        )
    }

    /// A read of `key` on this state, with the checks of a get through the
    /// log: its value if the group serves the key's shard,
    /// [`KvError::NotArrived`] if the shard is on its way here,
    /// [`KvError::WrongGroup`] otherwise. Linearizable only on a state
    /// that has applied a confirmed read index (see `shard::host`).
    pub fn read(&self, key: &[u8]) -> Result<Option<Bytes>, KvError> {
        let shard = shard_of(key, self.config.shards.len() as u32);
        match self.shards.get(&shard) {
            Some(s) if s.status == ShardStatus::Serving => Ok(s.data.get(key).cloned()),
            Some(Shard {
                status: ShardStatus::Pulling { .. },
                ..
            }) => Err(KvError::NotArrived),
            _ => Err(KvError::WrongGroup),
        }
    }

    /// The value of `key` held here (any status), for checkers and tests.
    pub fn value(&self, key: &[u8]) -> Option<&Bytes> {
        let shard = shard_of(key, self.config.shards.len() as u32);
        self.shards.get(&shard)?.data.get(key)
    }

    /// Applies the committed entry at `index`; `None` for entries that are
    /// not group commands (no-ops, membership, undecodable bytes).
    pub fn apply(&mut self, _index: LogIndex, payload: &Payload) -> Option<GroupApplied> {
        let Payload::Command(bytes) = payload else {
            return None;
        };
        let command = GroupCommand::decode(bytes.clone()).ok()?;
        Some(match command {
            GroupCommand::Client {
                client,
                seq,
                at,
                op,
            } => {
                self.clock = self.clock.max(at);
                GroupApplied::Client(self.apply_client(client, seq, op))
            }
            GroupCommand::Config(next) => {
                self.apply_config(next);
                GroupApplied::Internal
            }
            GroupCommand::InsertShard {
                config_num,
                shard,
                data,
            } => {
                if self.is_pulling(config_num, shard)
                    && let Ok((data, sessions)) = decode_shard(data, &self.limits)
                    && let Some(s) = self.shards.get_mut(&shard)
                {
                    s.data = data;
                    s.sessions = sessions;
                    s.status = ShardStatus::Serving;
                }
                GroupApplied::Internal
            }
            GroupCommand::InsertShardPart {
                config_num,
                shard,
                after,
                last,
                data,
            } => {
                if self.is_pulling(config_num, shard)
                    && let Ok((part, sessions)) = decode_shard(data, &self.limits)
                    && let Some(s) = self.shards.get_mut(&shard)
                    && s.data.keys().next_back() == after.as_ref()
                    && part
                        .keys()
                        .next()
                        .is_none_or(|first| after.as_ref().is_none_or(|a| first > a))
                {
                    s.data.extend(part);
                    if last {
                        s.sessions = sessions;
                        s.status = ShardStatus::Serving;
                    }
                }
                GroupApplied::Internal
            }
            GroupCommand::DeleteShard { config_num, shard } => {
                if self.is_sending(config_num, shard) {
                    self.shards.remove(&shard);
                }
                GroupApplied::Internal
            }
        })
    }

    fn apply_client(
        &mut self,
        client: u64,
        seq: u64,
        op: Operation,
    ) -> Result<Option<Bytes>, KvError> {
        let id = shard_of(op.key(), self.config.shards.len() as u32);
        let limits = self.limits;
        let clock = self.clock;
        let shard = match self.shards.get_mut(&id) {
            Some(s) if s.status == ShardStatus::Serving => s,
            Some(Shard {
                status: ShardStatus::Pulling { .. },
                ..
            }) => return Err(KvError::NotArrived),
            _ => return Err(KvError::WrongGroup),
        };
        if let Operation::Get { key } = &op {
            return Ok(shard.data.get(key).cloned());
        }
        shard.sessions.expire(clock);
        // A write of a client unknown to this shard opens its session,
        // unless a dropped session of the client had reached that
        // sequence number (see `SessionTable::admit`). One search of the
        // shard's sessions for the check and the record.
        let data = &mut shard.data;
        let applied = shard.sessions.admit_with(client, seq, clock, || {
            let result = apply_write(data, op, limits);
            // A refusal is recorded too, so a retry gets the same answer.
            let recorded = match &result {
                Ok(_) => Ok(()),
                Err(_) => Err(crate::kv::ServiceError::Busy),
            };
            (result, recorded)
        });
        match applied {
            Ok(result) => result,
            Err(SessionCheck::Duplicate(Ok(()))) => Ok(None),
            Err(SessionCheck::Duplicate(Err(_))) => Err(KvError::TooLarge),
            Err(SessionCheck::Stale) => Err(KvError::Stale),
            Err(SessionCheck::Expired | SessionCheck::Unknown) => Err(KvError::SessionExpired),
            Err(SessionCheck::Fresh) => unreachable!("a fresh write is applied"),
        }
    }

    fn apply_config(&mut self, next: ShardConfig) {
        if next.num != self.config.num + 1
            || next.shards.len() != self.config.shards.len()
            || !self.is_settled()
        {
            return;
        }
        let me = self.group;
        for (id, (old, new)) in self.config.shards.iter().zip(&next.shards).enumerate() {
            let id = id as ShardId;
            if *new == me && *old != me {
                let status = if *old == 0 {
                    ShardStatus::Serving
                } else {
                    ShardStatus::Pulling { from: *old }
                };
                self.shards.insert(
                    id,
                    Shard {
                        status,
                        data: BTreeMap::new(),
                        sessions: shard_sessions(&self.limits),
                    },
                );
            } else if *old == me && *new != me {
                if *new == 0 {
                    // Every group left: the shard has no owner to go to
                    // and its data is dropped (as in 6.5840).
                    self.shards.remove(&id);
                } else if let Some(s) = self.shards.get_mut(&id) {
                    s.status = ShardStatus::Sending { to: *new };
                }
            }
        }
        self.config = next;
    }

    /// Serializes the whole state.
    pub fn snapshot(&self) -> Bytes {
        let mut e = Encoder::with_capacity(256);
        e.raw(SNAPSHOT_MAGIC)
            .u8(SNAPSHOT_VERSION)
            .varint(self.group)
            .varint(self.clock);
        self.config.encode_into(&mut e);
        e.varint(self.shards.len() as u64);
        for (id, s) in &self.shards {
            e.varint(u64::from(*id));
            match s.status {
                ShardStatus::Serving => e.u8(0),
                ShardStatus::Pulling { from } => e.u8(1).varint(from),
                ShardStatus::Sending { to } => e.u8(2).varint(to),
            };
            e.bytes(&encode_shard(&s.data, &s.sessions));
        }
        e.finish()
    }

    /// Rebuilds the state from [`ShardKv::snapshot`], with this state's
    /// limits.
    pub fn restore(&self, data: Bytes) -> Result<ShardKv, DecodeError> {
        let mut d = Decoder::new(data);
        if d.raw(4)?.as_ref() != SNAPSHOT_MAGIC {
            return Err(DecodeError::Invalid("group snapshot magic"));
        }
        if d.u8()? != SNAPSHOT_VERSION {
            return Err(DecodeError::Invalid("group snapshot version"));
        }
        let group = d.varint()?;
        let clock = d.varint()?;
        let config = ShardConfig::decode_from(&mut d)?;
        let mut shards = BTreeMap::new();
        for _ in 0..d.length()? {
            let id = decode_shard_id(&mut d)?;
            let status = match d.u8()? {
                0 => ShardStatus::Serving,
                1 => ShardStatus::Pulling { from: d.varint()? },
                2 => ShardStatus::Sending { to: d.varint()? },
                _ => return Err(DecodeError::Invalid("shard status")),
            };
            let (data, sessions) = decode_shard(d.bytes()?, &self.limits)?;
            shards.insert(
                id,
                Shard {
                    status,
                    data,
                    sessions,
                },
            );
        }
        d.finish()?;
        Ok(ShardKv {
            group,
            config,
            shards,
            limits: self.limits,
            clock,
        })
    }
}

#[cfg(test)]
mod tests;
