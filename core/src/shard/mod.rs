//! Sharded distribKV: many Raft groups, a shard controller, shards that
//! move (MIT 6.5840's `shardctrler` and `shardkv`, run the multi-raft way
//! of TiKV and CockroachDB: one server holds replicas of many groups).
//!
//! - The key space is cut into a fixed number of shards; a key's shard is
//!   a hash of the key ([`shard_of`]).
//! - The **shard controller** ([`controller`]) is a replicated state
//!   machine of its own group holding the numbered history of
//!   configurations: which group owns each shard, which servers form each
//!   group. Join, Leave and Move make the next configuration (rebalancing
//!   evenly and moving as little as possible); Query reads one.
//! - Each **shard group** replicates a [`ShardKv`](group::ShardKv): it
//!   serves the shards it owns in its current configuration and steps
//!   through configurations one at a time, in order, through its own log;
//!   moving shards carry their data and client sessions ([`group`]).
//! - A **host** ([`host`]) is one server: it holds replicas of many groups
//!   (the controller's among them, possibly) behind one step function, and
//!   runs the migration protocol, coalesced timers and hibernation. Its
//!   module documentation gives the run loop and the safety arguments of
//!   migration and hibernation.
//! - The **routing clerk** ([`clerk`]) caches the configuration, routes
//!   each operation to the owning group's leader and keeps exactly-once
//!   across moves.
//! - **Exactly-once** rests on per-shard client sessions that move with
//!   their shard. A session dropped by expiry or eviction leaves a
//!   tombstone of its client's latest sequence number (moving with the
//!   shard too), so a late retry is refused as
//!   [`KvError::SessionExpired`](group::KvError::SessionExpired), an
//!   unknown outcome, never applied twice ([`crate::kv::session`]).
//!
//! The simulator runs all of it: `sim::sharded` (feature `sim`).
//!
//! ```
//! use std::collections::BTreeMap;
//! use distribkv_core::shard::host::{Host, HostConfig, HostInput, HostOutput};
//! use distribkv_core::time::Instant;
//!
//! // One host holding the controller and two shard groups, alone.
//! let mut config = HostConfig::new(1, 10, vec![1]);
//! config.groups = BTreeMap::from([(100, vec![1]), (101, vec![1])]);
//! let mut host = Host::new(config, 7, Instant::ZERO).unwrap();
//! for _ in 0..100 {
//!     let now = host.poll_timeout();
//!     host.handle(now, HostInput::Timeout).unwrap();
//!     while let Some(output) = host.poll_output() {
//!         match output {
//!             // One write for every group: make it durable, then say so.
//!             HostOutput::Persist(write) => {
//!                 host.handle(now, HostInput::Persisted(write.seq)).unwrap()
//!             }
//!             HostOutput::Send(_batch) => {} // no other host here
//!             HostOutput::Reply { .. } => {}
//!             // A group retired: store its tombstone after that write.
//!             HostOutput::Retired(_group) => {}
//!         }
//!     }
//! }
//! assert!(host.nodes().all(|(_, node)| node.is_leader()));
//! ```
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
