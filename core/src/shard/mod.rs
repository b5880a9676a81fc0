//! Sharded distribKV: many Raft groups, a shard controller, shards that move.
//!
//! The key space is cut into a fixed number of shards (a key's shard is a
//! hash of the key, [`shard_of`]). A **shard controller**
//! ([`controller`]), itself a replicated state machine, holds the numbered
//! history of configurations: which replica group owns which shard, and
//! which servers form each group.
pub mod clerk;
pub mod controller;
pub mod group;
pub mod host;

pub use controller::{
    Controller, ControllerCommand, ControllerError, ControllerOp, ControllerReply, ShardConfig,
    rebalance,
};

use crate::hash::Fnv;

/// A replica group's id. 0 means "no group" (an unassigned shard).
pub type GroupId = u64;

/// A shard's number, `0..shards`.
pub type ShardId = u32;

/// The shard of `key` among `shards` (at least 1): FNV-1a of the key, modulo.
pub fn shard_of(key: &[u8], shards: u32) -> ShardId {
    let mut hash = Fnv::new();
    hash.write(key);
    (hash.finish() % u64::from(shards.max(1))) as ShardId
}
