//! The replicated key-value service: the state machine, exactly-once
//! sessions, the replica that serves clients, and the sans-IO clerk.

pub mod clerk;
pub mod codec;
pub mod command;
pub mod protocol;
pub mod replica;
pub mod session;
pub mod store;
#[cfg(feature = "serde")]
mod text;

pub use clerk::{Busy, Clerk, ClerkConfig, ClerkError, ClerkOutput};
pub use command::*;
pub use protocol::*;
pub use replica::{
    AppliedRecord, BACKUP_CHUNK_BYTES, BACKUP_IDLE_MS, BACKUPS_HELD, Replica, ReplicaConfig,
    ReplicaError, ReplicaInput, ReplicaOutput, ReplyTo,
};
pub use store::{Applied, KvStore, StoreLimits};
