//! Runs the rounds of the `shard` benchmark's `entries` group (three hosts,
//! 64 puts per round spread over the groups, every write committed,
//! applied and answered, on a zero-latency `Mesh`) for profilers, without
//! criterion's setup of the other groups:
//! `cargo run --release -p distribkv-core --features sim --example
//! profile_shard_rounds -- <groups> <rounds>`. Under
//! `valgrind --tool=callgrind` the instruction count per round is
//! reproducible (run it with 0 rounds to subtract the setup).

use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::shard::host::{HostConfig, HostInput, HostRequest};
use distribkv_core::sim::sharded::Mesh;
use distribkv_core::time::Instant;

const CLIENTS: u64 = 64;

fn main() {
    let mut args = std::env::args().skip(1);
    let groups: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let servers: Vec<u64> = vec![1, 2, 3];
    let configs = servers
        .iter()
        .map(|id| {
            let mut c = HostConfig::new(*id, 16, servers.clone());
            c.groups = (1..=groups).map(|g| (g, servers.clone())).collect();
            c.tick_ms = 50;
            c.raft.heartbeat_interval = 50;
            c.snapshot_every = 1000;
            c
        })
        .collect();
    let mut mesh = Mesh::new(configs, 5).expect("valid configuration");
    mesh.run_until(Instant(3_000));
    let messages = mesh.raft_messages;
    let start = std::time::Instant::now();
    for seq in 1..=rounds {
        let mut by_leader: BTreeMap<u64, Vec<HostInput>> = BTreeMap::new();
        for client in 0..CLIENTS {
            let g = 1 + client % groups;
            let leader = mesh.hosts[&1]
                .node(g)
                .and_then(|n| n.leader())
                .expect("a leader");
            by_leader
                .entry(leader)
                .or_default()
                .push(HostInput::Client {
                    from: client,
                    request: HostRequest::Kv {
                        id: seq,
                        group: g,
                        client: client + 1,
                        seq,
                        op: Operation::Put {
                            key: Bytes::from(format!("key{client}")),
                            value: Bytes::from_static(b"value"),
                        },
                    },
                });
        }
        for (leader, inputs) in by_leader {
            mesh.feed_many(leader, inputs);
        }
        let now = mesh.now();
        mesh.run_until(now);
    }
    let elapsed = start.elapsed();
    println!(
        "{groups} groups: {rounds} rounds of {CLIENTS} writes, {} Raft messages per round, {:.0} entries/s",
        (mesh.raft_messages - messages) / rounds.max(1),
        (rounds * CLIENTS) as f64 / elapsed.as_secs_f64().max(1e-9)
    );
}
