//! The MIT 6.5840 Raft lab tests (3A–3D), run in the simulator with the
//! labs' bounds in virtual time. Each runs on several seeds.
//!
//! Where our Raft differs from the lab's by design: a new leader appends a
//! no-op entry of its term (§8), so the first client command lands at index 2,
//! and PreVote adds one round of messages to an election.
//!
//! One file per part: `election` (3A), `replication` (3B), `persistence`
//! (3C), `snapshots` (3D).
#![cfg(feature = "sim")]

#[path = "../common/mod.rs"]
mod common;

mod election;
mod persistence;
mod replication;
mod snapshots;

pub(crate) const SEEDS: [u64; 3] = [1, 2, 3];

/// Figure 8 is a rare interleaving: more seeds.
pub(crate) const FIGURE8_SEEDS: std::ops::Range<u64> = 1..41;

pub(crate) fn for_seeds(test: impl Fn(u64)) {
    for seed in SEEDS {
        test(seed);
    }
}
