//! The browser benchmark's workload, natively: virtual time simulated per
//! wall-clock second, to compare with the wasm build (`scripts/bench-wasm.mjs`)
//! and to profile the simulator with native tools.
//!
//! `cargo run --release -p distribkv-wasm --example sim_throughput -- [nodes] [virtual seconds] [trace lines] [safety 0|1]`

use std::time::Instant;

use distribkv_core::sim::{Sim, SimConfig, Workload};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let nodes = args.first().copied().unwrap_or(5) as usize;
    let seconds = args.get(1).copied().unwrap_or(60);
    let trace = args.get(2).copied().unwrap_or(5_000) as usize;
    let safety = args.get(3).copied().unwrap_or(1) != 0;
    let mut sim = Sim::new(SimConfig {
        nodes,
        seed: 1,
        trace_capacity: trace,
        check_safety: safety,
        ..SimConfig::default()
    });
    sim.set_workload(Workload {
        clients: 3,
        interval: 50,
        keys: 5,
        read_fraction: 0.3,
    })
    .expect("valid workload");
    sim.run_for(1_000);
    let events = sim.stats().events;
    let start = Instant::now();
    sim.run_for(seconds * 1_000);
    let wall = start.elapsed().as_secs_f64();
    let events = sim.stats().events - events;
    println!(
        "{nodes} nodes, trace {trace}, safety {safety}: {:.0}x real time, {:.0}k events/s, {events} events, {} ops, {:.3} s wall",
        seconds as f64 / wall,
        events as f64 / wall / 1e3,
        sim.history().len(),
        wall
    );
}
