//! A fork of a long run (the page's timeline checkpoints, `fork()` in the
//! JS API) shares the client history with the original instead of copying
//! it, and the checkers keep only what a replica may still apply: what a
//! fork allocates stays small however long the run was.
#![cfg(all(feature = "sim", not(target_arch = "wasm32")))]

use std::alloc::System;

use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};
use distribkv_core::sim::{HistoryEntry, Sim, SimConfig, Workload};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated by cloning `value`.
fn clone_cost<T: Clone>(value: &T) -> (usize, T) {
    let region = Region::new(GLOBAL);
    let copy = value.clone();
    (region.change().bytes_allocated, copy)
}

#[test]
fn a_fork_of_a_long_run_does_not_copy_its_history() {
    let mut sim = Sim::new(SimConfig {
        nodes: 3,
        seed: 3,
        ..SimConfig::default()
    });
    sim.set_workload(Workload {
        clients: 8,
        interval: 5,
        keys: 5,
        read_fraction: 0.3,
    })
    .expect("a valid workload");
    while sim.history().len() < 20_000 {
        sim.run_for(5_000);
    }
    let history_bytes = sim.history().len() * size_of::<HistoryEntry>();
    let (cost, mut fork) = clone_cost(&sim);
    assert!(
        cost < history_bytes / 4,
        "a fork allocated {cost} bytes; the history of {} operations alone holds {history_bytes}",
        sim.history().len()
    );
    // Both run on alike, and changing one leaves the other's history alone.
    sim.run_for(2_000);
    fork.run_for(2_000);
    assert_eq!(sim.history(), fork.history());
    assert_eq!(sim.trace_hash(), fork.trace_hash());
    let before = sim.history().clone();
    fork.set_workload(Workload::default())
        .expect("a valid workload");
    fork.run_for(2_000);
    assert_eq!(sim.history(), &before);
    assert_ne!(fork.history(), &before);
}

#[test]
fn a_fork_of_a_long_sharded_run_copies_neither_history_nor_checkers() {
    let mut sim = ShardedSim::new(ShardedConfig::small(4)).expect("valid config");
    sim.join_all().expect("joined");
    sim.start_workload();
    while sim.history().len() < 20_000 {
        sim.run_for(10_000);
    }
    let operations = sim.history().len();
    let (cost, mut fork) = clone_cost(&sim);
    let history_bytes = operations * size_of::<distribkv_core::check::Operation>();
    assert!(
        cost < history_bytes / 4,
        "a fork allocated {cost} bytes; the history of {operations} operations alone holds {history_bytes}"
    );
    sim.run_for(2_000);
    fork.run_for(2_000);
    assert_eq!(sim.history(), fork.history());
    assert_eq!(sim.violations(), fork.violations());
}
