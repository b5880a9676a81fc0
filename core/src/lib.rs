//! distribkv-core: sans-IO Raft, the distribKV key-value state machine, and a
//! deterministic cluster simulator.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod hash;
pub mod kv;
pub mod raft;
pub mod rng;
pub mod time;

#[cfg(feature = "check")]
pub mod check;

#[cfg(feature = "sim")]
pub mod sim;
