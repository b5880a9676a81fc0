//! Two hosts holding replicas of `<groups>` groups at rest, as in the
//! `shard` benchmark's `idle` groups (tick = heartbeat interval = 50 ms),
//! run for `<seconds>` of virtual time after 3 s of elections, for
//! profilers: `cargo run --release -p distribkv-core --features sim
//! --example profile_shard_idle -- <groups> <hibernate_after_ms> <seconds>`
//! (hibernation off with 0). Under `valgrind --tool=callgrind` the
//! instruction count is reproducible (run it with 0 seconds to subtract the
//! setup).

use distribkv_core::shard::host::HostConfig;
use distribkv_core::sim::sharded::Mesh;
use distribkv_core::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let groups: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let hibernate_after_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let servers = vec![1, 2];
    let configs = servers
        .iter()
        .map(|id| {
            let mut c = HostConfig::new(*id, 16, servers.clone());
            c.groups = (1..=groups).map(|g| (g, servers.clone())).collect();
            c.tick_ms = 50;
            c.raft.heartbeat_interval = 50;
            c.snapshot_every = 1000;
            c.hibernate_after_ms = hibernate_after_ms;
            c
        })
        .collect();
    let mut mesh = Mesh::new(configs, 11).expect("valid configuration");
    mesh.run_until(Instant(3_000));
    let (batches, messages) = (mesh.total_batches(), mesh.messages);
    mesh.run_until(Instant(3_000 + seconds * 1_000));
    println!(
        "{groups} groups: {} batches carrying {} messages in {seconds} s at rest",
        mesh.total_batches() - batches,
        mesh.messages - messages
    );
}
