//! Runs the zero-latency key-value loop of the `cluster` benchmark for a
//! while, for profilers: `cargo run --release -p distribkv-core --features
//! sim --example profile_kv -- <clients> <rounds> [reads]`.

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::sim::{Sim, SimConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let reads = args.next().is_some_and(|a| a == "reads");
    let mut config = SimConfig {
        nodes: 3,
        seed: 7,
        disk_latency: (0, 0),
        snapshot_every: 10_000,
        check_safety: false,
        client_give_up: None,
        max_events_per_instant: 0,
        ..SimConfig::default()
    };
    config.network.latency = (0, 0);
    let mut sim = Sim::new(config);
    sim.campaign(1).expect("up");
    sim.stabilize(u64::MAX);
    for _ in 0..clients {
        sim.add_client();
    }
    let value = Bytes::from(vec![b'v'; 256]);
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for client in 1..=clients {
            let key = Bytes::from(format!("k{}", client % 64));
            let operation = if reads {
                Operation::Get { key }
            } else {
                Operation::Put {
                    key,
                    value: value.clone(),
                }
            };
            sim.invoke(Some(client), operation).expect("client");
        }
        sim.stabilize(u64::MAX);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let done = sim.history().iter().filter(|e| e.is_complete()).count();
    println!(
        "{done} operations in {elapsed:.2}s: {:.0} ops/s",
        done as f64 / elapsed
    );
}
