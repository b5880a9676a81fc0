//! Raft consensus as a pure state machine.
//!
//! [`Node`] is the entry point; see the crate documentation for its run loop.
//! One module per concern: [`log`], [`progress`], [`quorum`], [`message`],
//! [`storage`] (the persistence contract); the node itself across `node`
//! (state, inputs, timers, role changes), `durability` (staged writes, held
//! messages, the output queue) and `inspect` (read-only accessors); and the
//! algorithm split across `election`, `replication`, `snapshot`, `read` and
//! `transfer`.

pub mod config;
pub mod log;
pub mod message;
pub mod progress;
pub mod quorum;
pub mod storage;
pub mod types;

mod api;
mod durability;
mod election;
mod inspect;
mod membership;
mod node;
mod read;
mod replication;
mod snapshot;
mod transfer;

pub use api::{Accepted, Input, Output, Rejected, RoleKind, Stats};
pub use config::{Config, ConfigError};
pub use membership::MembershipChange;
pub use message::*;
pub use node::Node;
pub use progress::{Progress, ProgressState};
pub use read::ReadState;
pub use storage::*;
pub use types::*;
