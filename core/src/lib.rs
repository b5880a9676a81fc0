//! distribkv-core: sans-IO Raft, the distribKV key-value state machine, and a
//! deterministic cluster simulator.
//!
//! The core never does I/O. Time is passed in ([`time::Instant`], in
//! milliseconds), randomness comes from a generator seeded by the caller
//! ([`rng::Rng`]), and every effect comes out as a value. It is `#![no_std]`
//! with `alloc`, and builds for `thumbv7em-none-eabihf` and `wasm32-unknown-unknown`.
//!
//! - [`raft`]: the Raft [`Node`](raft::Node).
//! - [`kv`]: the key-value state machine, exactly-once sessions, the
//!   [`Replica`](kv::Replica) that serves clients (a node plus the state
//!   machine: what every driver runs) and the sans-IO [`Clerk`](kv::Clerk).
//! - [`shard`]: sharded distribKV: the shard controller, the shard group
//!   state machine, the multi-group [`Host`](shard::host::Host) (many Raft
//!   groups behind one step function, shard migration, coalesced timers,
//!   hibernation) and the routing [`ShardClerk`](shard::clerk::ShardClerk).
#![cfg_attr(
    feature = "check",
    doc = "- [`check`] (feature `check`): linearizability and exactly-once checkers."
)]
#![cfg_attr(
    not(feature = "check"),
    doc = "- `check` (feature `check`, off in this build): linearizability and exactly-once checkers."
)]
#![cfg_attr(
    feature = "sim",
    doc = "- [`sim`] (feature `sim`): the deterministic cluster simulator."
)]
#![cfg_attr(
    not(feature = "sim"),
    doc = "- `sim` (feature `sim`, off in this build): the deterministic cluster simulator."
)]
//!
//! # The run loop
//!
//! A [`Node`](raft::Node) (and likewise a [`Replica`](kv::Replica)) is driven
//! by one loop:
//!
//! 1. feed inputs with `handle(now, input)`: a message from a peer, a
//!    proposal, a read, a durability acknowledgement, or
//!    [`Input::Timeout`](raft::Input::Timeout) when the time returned by
//!    `poll_timeout()` has come. Several inputs may be fed before draining:
//!    the node then batches its writes and messages;
//! 2. drain `poll_output()` until it returns `None`, executing each output
//!    (or take them all at once with `drain_outputs()`, same order);
//! 3. sleep until the next input or `poll_timeout()`.
//!
//! ```
//! use distribkv_core::raft::{Config, Input, Node, Output};
//! use distribkv_core::time::Instant;
//!
//! // A single-node cluster: it elects itself and commits on its own.
//! let mut node = Node::new(Config::new(1, [1]), 42, Instant::ZERO).unwrap();
//! let mut now = node.poll_timeout();
//! node.handle(now, Input::Timeout).unwrap();
//! let mut committed = Vec::new();
//! for _ in 0..10 {
//!     while let Some(output) = node.poll_output() {
//!         match output {
//!             // Make it durable (fsync), then acknowledge it.
//!             Output::Persist(write) => node.handle(now, Input::Persisted(write.seq)).map(drop).unwrap(),
//!             Output::Send(_envelope) => {} // no peers here
//!             Output::Apply(entries) => committed.extend(entries),
//!             Output::ApplySnapshot(_) | Output::ReadReady { .. } | Output::ReadFailed { .. } => {}
//!         }
//!     }
//!     if node.is_leader() && committed.len() == 1 {
//!         node.handle(now, Input::Propose("hello".into())).unwrap();
//!     }
//!     now = now.max(node.poll_timeout().min(now + 10));
//!     node.handle(now, Input::Timeout).unwrap();
//! }
//! assert!(node.is_leader());
//! assert_eq!(committed.len(), 2, "the leader's no-op, then the proposal");
//! ```
//!
//! # Ordering: what must be durable before what
//!
//! Outputs come in the order the driver must execute them. The node emits
//! [`Output::Persist`](raft::Output::Persist) writes numbered by `seq`; the
//! driver applies them to stable storage in order, and once all writes up to
//! `seq` are durable it feeds [`Input::Persisted(seq)`](raft::Input::Persisted)
//! (one acknowledgement covers every earlier write, so one fsync can cover
//! many writes: group commit). The node itself holds back every message that
//! depends on durable state until the write it depends on is acknowledged:
//!
//! - a granted vote, until the term and vote are durable (else a crash could
//!   let a node vote twice in a term);
//! - a candidate counts its own vote only once it is durable;
//! - a follower's successful AppendEntries answer, until the entries it
//!   acknowledges are durable;
//! - a finished InstallSnapshot answer, until the snapshot is durable;
//! - a leader counts its own log toward the commit quorum only as far as it
//!   is durable, while already sending the entries to its followers.
//!
//! So the driver may send every message as soon as it is polled, and a crash
//! loses at most the writes not yet acknowledged. Committed entries come out
//! in [`Output::Apply`](raft::Output::Apply) in index order; only committed
//! entries are ever handed out. See [`raft::storage`] for the exact meaning of
//! a write.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod hash;
mod held;
pub mod kv;
pub mod raft;
pub mod rng;
pub mod shard;
pub mod time;

#[cfg(feature = "check")]
pub mod check;

#[cfg(feature = "sim")]
pub mod sim;
