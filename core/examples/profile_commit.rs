//! Runs the zero-latency commit loop of the `cluster` benchmark for a while,
//! for profilers: `cargo run --release -p distribkv-core --features sim
//! --example profile_commit -- <batch> <rounds>`.

use bytes::Bytes;
use distribkv_core::sim::{Sim, SimConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let batch: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut config = SimConfig {
        nodes: 3,
        seed: 7,
        disk_latency: (0, 0),
        snapshot_every: 10_000,
        check_safety: false,
        max_events_per_instant: 0,
        ..SimConfig::default()
    };
    config.network.latency = (0, 0);
    let mut sim = Sim::new(config);
    sim.campaign(1).expect("up");
    sim.stabilize(u64::MAX);
    let commands: Vec<Bytes> = (0..batch)
        .map(|i| Bytes::from(format!("command-{i:08}")))
        .collect();
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        sim.propose_many(1, commands.clone()).expect("leader");
        sim.stabilize(u64::MAX);
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{} entries in {elapsed:.2}s: {:.0} committed entries/s, {} events",
        batch * rounds,
        (batch * rounds) as f64 / elapsed,
        sim.stats().events
    );
}
