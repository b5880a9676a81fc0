//! The shard controller: a replicated state machine holding the numbered
//! history of shard configurations (6.5840's `shardctrler`).
//!
//! Configuration 0 has no groups and every shard assigned to group 0 (no
//! one). Each [`ControllerOp::Join`], [`ControllerOp::Leave`] and
//! [`ControllerOp::Move`] that takes effect appends the next configuration;
//! [`ControllerOp::Query`] reads one. Configurations never change once
//! made, so any replica that has applied configuration `n` may answer a
//! question about `n` (the groups rely on this to learn configurations
//! without a round through the controller's log).
//!
//! Rebalancing ([`rebalance()`]) is a pure function of the previous
//! assignment and the set of groups: every group ends with `⌊S/G⌋` or
//! `⌈S/G⌉` shards, and only shards that must move do (those of departed
//! groups, and the surplus of groups above their share).
//!
//! Exactly-once: requests carry a client id and a sequence number, checked
//! against the [`SessionTable`] of the KV service (the same expiry rules,
//! driven by the log clock). A retried Join, Leave or Move is answered with
//! its first result and never makes a second configuration. A client's
//! session is opened by its first request; a dropped session leaves a
//! tombstone of its latest sequence number ([`Tombstones::LastSeq`]), so a
//! retry from before the drop is refused
//! ([`ControllerError::SessionExpired`]) rather than applied again.
//!
//! Unlike 6.5840's controller, a Leave that would remove every group is
//! refused ([`ControllerError::LastGroup`]): once shards are owned, some
//! group always owns each of them, so no data is left without a server.
//!
//! Retirement: a group that left may be retired ([`ControllerOp::Retire`],
//! asked by its own replicas once they have handed every shard over; see
//! `shard::host`). The controller retires it only if it was a member of an
//! earlier configuration and is in none from the asker's configuration to
//! the latest, so no configuration it still has to go through gives it a
//! shard. A retired group's id is never reused: a Join naming it is
//! refused ([`ControllerError::Retired`]), since its replicas are gone.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use super::{GroupId, ShardId};
use crate::kv::codec::{DecodeError, Decoder, Encoder};
use crate::kv::command::ServiceError;
use crate::kv::session::{
    SessionCheck, SessionLayout, SessionLimits, SessionTable, Tombstones, decode_sessions,
};
use crate::raft::{LogIndex, NodeId, Payload};

mod config;
mod rebalance;
mod requests;
pub use config::ShardConfig;
pub use rebalance::rebalance;
pub use requests::{ControllerCommand, ControllerError, ControllerOp, ControllerReply};

/// The controller's replicated state: every configuration ever made, and
/// the client sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    /// Invariant: `configs[n].num == n`, and there is at least configuration 0.
    configs: Vec<ShardConfig>,
    /// Groups retired for good (never in a configuration again).
    retired: BTreeSet<GroupId>,
    sessions: SessionTable,
    clock: u64,
}

/// Session expiry of the controller (log clock, ms) and its capacity.
const SESSION_TTL_MS: u64 = 60 * 60 * 1000;
const MAX_SESSIONS: usize = 10_000;
const MAX_DROPPED_SESSIONS: usize = 10_000;
const SESSION_LIMITS: SessionLimits = SessionLimits {
    ttl: SESSION_TTL_MS,
    max_sessions: MAX_SESSIONS,
    max_dropped: MAX_DROPPED_SESSIONS,
};
/// Format 1: the sessions with their tombstones ([`SessionTable::encode_into`]);
/// format 2 adds the retired groups after them (format 1 is still read).
const SNAPSHOT_MAGIC: &[u8; 4] = b"DKSC";
const SNAPSHOT_VERSION: u8 = 2;

impl Controller {
    /// A controller of `shards` shards holding only configuration 0.
    pub fn new(shards: u32) -> Controller {
        Controller {
            configs: vec![ShardConfig::initial(shards)],
            retired: BTreeSet::new(),
            sessions: SessionTable::with_tombstones(
                Tombstones::LastSeq,
                SESSION_TTL_MS,
                MAX_SESSIONS,
                MAX_DROPPED_SESSIONS,
            ),
            clock: 0,
        }
    }

    /// The latest configuration.
    pub fn latest(&self) -> &ShardConfig {
        // Invariant: configuration 0 always exists.
        self.configs.last().expect("configuration 0 exists")
    }

    /// Configuration `num`, if made yet.
    pub fn config(&self, num: u64) -> Option<&ShardConfig> {
        self.configs.get(usize::try_from(num).ok()?)
    }

    /// Whether `group` was retired ([`ControllerOp::Retire`]).
    pub fn is_retired(&self, group: GroupId) -> bool {
        self.retired.contains(&group)
    }

    /// The retired groups.
    pub fn retired(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.retired.iter().copied()
    }

    /// Whether `group` may be retired for a replica at configuration
    /// `config_num` (see [`ControllerOp::Retire`]).
    pub fn may_retire(&self, group: GroupId, config_num: u64) -> bool {
        let Ok(from) = usize::try_from(config_num) else {
            return false;
        };
        group != 0
            && from < self.configs.len()
            && self.configs[..from]
                .iter()
                .any(|c| c.groups.contains_key(&group))
            && self.configs[from..]
                .iter()
                .all(|c| !c.groups.contains_key(&group))
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.configs[0].shards.len() as u32
    }

    /// Applies the committed entry at `index`; `None` for entries that are
    /// not controller commands (no-ops, membership, undecodable bytes).
    pub fn apply(&mut self, _index: LogIndex, payload: &Payload) -> Option<ControllerReply> {
        let Payload::Command(bytes) = payload else {
            return None;
        };
        let command = ControllerCommand::decode(bytes.clone()).ok()?;
        self.clock = self.clock.max(command.at);
        self.sessions.expire(self.clock);
        Some(self.execute(command))
    }

    fn execute(&mut self, command: ControllerCommand) -> ControllerReply {
        let ControllerCommand {
            client, seq, op, ..
        } = command;
        if let ControllerOp::Query(num) = op {
            // A read: no session needed, nothing changes.
            let config = match num.and_then(|n| self.config(n)) {
                Some(config) => config.clone(),
                None => self.latest().clone(),
            };
            return ControllerReply::Config(config);
        }
        if let ControllerOp::Retire { group, config_num } = op {
            // Idempotent: no session needed.
            if self.retired.contains(&group) {
                return ControllerReply::Done;
            }
            if !self.may_retire(group, config_num) {
                return ControllerReply::Refused(ControllerError::NotRetirable(group));
            }
            self.retired.insert(group);
            return ControllerReply::Done;
        }
        match self.sessions.admit(client, seq, self.clock) {
            SessionCheck::Duplicate(result) => return reply_of(result),
            SessionCheck::Stale => return ControllerReply::Refused(ControllerError::Stale),
            SessionCheck::Expired | SessionCheck::Unknown => {
                return ControllerReply::Refused(ControllerError::SessionExpired);
            }
            SessionCheck::Fresh => {}
        }
        let result = self.change(op);
        let recorded = match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(ServiceError::Unavailable(alloc::format!(
                "{}",
                ErrorCode(e)
            ))),
        };
        self.sessions.record(client, seq, recorded, self.clock);
        match result {
            Ok(()) => ControllerReply::Done,
            Err(e) => ControllerReply::Refused(e),
        }
    }

    fn change(&mut self, op: ControllerOp) -> Result<(), ControllerError> {
        let mut next = self.latest().clone();
        next.num += 1;
        match op {
            ControllerOp::Join(groups) => {
                for (g, servers) in &groups {
                    if self.retired.contains(g) {
                        return Err(ControllerError::Retired(*g));
                    }
                    if *g == 0 || servers.is_empty() || next.groups.contains_key(g) {
                        return Err(ControllerError::BadJoin(*g));
                    }
                }
                next.groups.extend(groups);
                let ids: Vec<GroupId> = next.groups.keys().copied().collect();
                rebalance(&mut next.shards, &ids);
            }
            ControllerOp::Leave(groups) => {
                for g in &groups {
                    if next.groups.remove(g).is_none() {
                        return Err(ControllerError::UnknownGroup(*g));
                    }
                }
                if let (true, Some(last)) = (next.groups.is_empty(), groups.last()) {
                    return Err(ControllerError::LastGroup(*last));
                }
                let ids: Vec<GroupId> = next.groups.keys().copied().collect();
                rebalance(&mut next.shards, &ids);
            }
            ControllerOp::Move { shard, group } => {
                if !next.groups.contains_key(&group) {
                    return Err(ControllerError::UnknownGroup(group));
                }
                let Some(owner) = next.shards.get_mut(shard as usize) else {
                    return Err(ControllerError::UnknownShard(shard));
                };
                *owner = group;
            }
            ControllerOp::Query(_) | ControllerOp::Retire { .. } => {
                unreachable!("handled before the session check")
            }
        }
        self.configs.push(next);
        Ok(())
    }

    /// Serializes the whole state (configurations and sessions).
    pub fn snapshot(&self) -> Bytes {
        let mut e = Encoder::with_capacity(64 * self.configs.len());
        e.raw(SNAPSHOT_MAGIC)
            .u8(SNAPSHOT_VERSION)
            .varint(self.clock);
        e.varint(self.configs.len() as u64);
        for c in &self.configs {
            c.encode_into(&mut e);
        }
        e.varint(self.sessions.next_sweep());
        self.sessions.encode_into(&mut e);
        e.varint(self.retired.len() as u64);
        for g in &self.retired {
            e.varint(*g);
        }
        e.finish()
    }

    /// Rebuilds the state from [`Controller::snapshot`].
    pub fn restore(data: Bytes) -> Result<Controller, DecodeError> {
        let mut d = Decoder::new(data);
        if d.raw(4)?.as_ref() != SNAPSHOT_MAGIC {
            return Err(DecodeError::Invalid("controller snapshot magic"));
        }
        let version = d.u8()?;
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(DecodeError::Invalid("controller snapshot version"));
        }
        let clock = d.varint()?;
        let mut configs = Vec::new();
        for n in 0..d.length()? {
            let c = ShardConfig::decode_from(&mut d)?;
            if c.num != n as u64 {
                return Err(DecodeError::Invalid("configuration numbering"));
            }
            configs.push(c);
        }
        if configs.is_empty() {
            return Err(DecodeError::Invalid("no configuration 0"));
        }
        let next_sweep = d.varint()?;
        let decoded = decode_sessions(&mut d, SessionLayout::CURRENT)?;
        let sessions =
            SessionTable::restore_with(Tombstones::LastSeq, SESSION_LIMITS, next_sweep, decoded);
        let mut retired = BTreeSet::new();
        if version >= 2 {
            for _ in 0..d.length()? {
                retired.insert(d.varint()?);
            }
        }
        d.finish()?;
        Ok(Controller {
            configs,
            retired,
            sessions,
            clock,
        })
    }
}

/// The session table records results as `Result<(), ServiceError>`; a
/// refusal is kept as its code so a retry gets the same refusal back.
struct ErrorCode<'a>(&'a ControllerError);

impl fmt::Display for ErrorCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ControllerError::BadJoin(g) => write!(f, "j{g}"),
            ControllerError::UnknownGroup(g) => write!(f, "g{g}"),
            ControllerError::LastGroup(g) => write!(f, "l{g}"),
            ControllerError::UnknownShard(s) => write!(f, "s{s}"),
            ControllerError::Stale => write!(f, "x"),
            ControllerError::SessionExpired => write!(f, "e"),
            ControllerError::Retired(g) => write!(f, "r{g}"),
            ControllerError::NotRetirable(g) => write!(f, "n{g}"),
        }
    }
}

fn reply_of(result: Result<(), ServiceError>) -> ControllerReply {
    let code = match result {
        Ok(()) => return ControllerReply::Done,
        Err(ServiceError::Unavailable(code)) => code,
        Err(_) => return ControllerReply::Refused(ControllerError::Stale),
    };
    let number = || {
        code.get(1..)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    ControllerReply::Refused(match code.as_bytes().first() {
        Some(b'j') => ControllerError::BadJoin(number()),
        Some(b'g') => ControllerError::UnknownGroup(number()),
        Some(b'l') => ControllerError::LastGroup(number()),
        Some(b's') => ControllerError::UnknownShard(number() as ShardId),
        Some(b'e') => ControllerError::SessionExpired,
        Some(b'r') => ControllerError::Retired(number()),
        Some(b'n') => ControllerError::NotRetirable(number()),
        _ => ControllerError::Stale,
    })
}

#[cfg(test)]
mod tests;
