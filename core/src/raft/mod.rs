//! Raft consensus as a pure state machine.

pub mod message;
pub mod types;

pub use message::*;
pub use types::*;
pub mod storage;
pub use storage::*;
