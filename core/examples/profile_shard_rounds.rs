//! Runs the rounds of the `shard` benchmark's `entries` group
//! ([`WriteRounds`]: three hosts, 64 puts per round spread over the
//! groups, every write committed, applied and answered, on a zero-latency
//! `Mesh`) for profilers, without criterion's setup of the other groups:
//! `cargo run --release -p distribkv-core --features sim --example
//! profile_shard_rounds -- <groups> <rounds> [clients] [keys]
//! [snapshot_every]` (64 clients, one key per client and a snapshot of
//! each group every 1,000 of its entries, unless given).
//! Under
//! `valgrind --tool=callgrind` the instruction count per round is
//! reproducible (run it with 0 rounds to subtract the setup).

use distribkv_core::sim::sharded::WriteRounds;

fn main() {
    let mut args = std::env::args().skip(1);
    let groups: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let clients: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let keys: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(clients);
    let snapshot_every: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut writes = WriteRounds::with_keys(3, groups, clients, keys, snapshot_every, 5)
        .expect("groups serving");
    let messages = writes.mesh.raft_messages;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let answered = writes.run_round();
        assert_eq!(
            answered,
            clients,
            "round {}: every write answered",
            writes.rounds()
        );
    }
    let elapsed = start.elapsed();
    writes.check_applied().expect("every round applied");
    println!(
        "{groups} groups: {rounds} rounds of {clients} writes, {} Raft messages per round, {:.0} entries/s",
        (writes.mesh.raft_messages - messages) / rounds.max(1),
        (rounds * clients) as f64 / elapsed.as_secs_f64().max(1e-9)
    );
}
