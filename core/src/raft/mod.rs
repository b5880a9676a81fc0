//! Raft consensus as a pure state machine.
//!
//! [`Node`] is the entry point; see the crate documentation for its run loop.
//! The driver's API is what this module re-exports: inputs, outputs and
//! refusals (`api`), [`config`], [`message`], [`storage`] (the persistence
//! contract) and [`types`]. One module per concern inside: `log`
//! ([`RaftLog`], which drivers and checkers read but only the node
//! changes), `progress` (the leader's view of each follower), `quorum`
//! (vote and commit counting), `membership`; the node itself across `node`
//! (state, inputs, timers, role changes), `durability` (staged writes, held
//! messages, the output queue) and `inspect` (read-only accessors); and the
//! algorithm split across `election`, `replication`, `snapshot`, `read` and
//! `transfer`.

pub mod config;
pub mod message;
pub mod storage;
pub mod types;

mod api;
mod durability;
pub(crate) use durability::move_queue;
mod election;
mod inspect;
mod log;
mod membership;
mod node;
mod progress;
mod quorum;
mod read;
mod replication;
mod snapshot;
mod transfer;

pub use api::{Accepted, Input, MembershipChange, Output, Rejected, RoleKind, Stats};
pub use config::{Config, ConfigError, MAX_ELECTION_TIMEOUT_MS};
pub use log::RaftLog;
pub use message::*;
pub use node::Node;
pub use progress::{Progress, ProgressState};
pub use storage::*;
pub use types::*;
