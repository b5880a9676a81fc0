//! How long the routing clerks lose when a shard group's leader dies
//! silently, in the simulator: the lab layout (controller on hosts 1-3,
//! groups 100, 101 and 102 on hosts 4-12), the native server's Raft
//! timing (heartbeat 100 ms, election timeout 500-1000 ms), the native
//! client's clerk timing unless given (retry 1000 ms, probe 300 ms), no
//! message loss; three workload clients run 2 s, then group 100's leader
//! host crashes (its requests go unanswered, as a dead or cut-off host's
//! would). Per seed: when the group had a new leader, and the longest any
//! operation waited after the crash (from the crash, or its invocation if
//! later, to its completion, over the 8 s after the crash); then, the
//! host still down, the longest get of the workload's keys by the admin
//! clerk, which never asked the groups before (its first pick in each
//! group is a guess, the group's first host, which is the crashed one in
//! about a third of the seeds):
//! `cargo run --release -p distribkv-core --features sim --example
//! shard_leader_crash_clients -- [seeds] [retry_ms] [probe_ms]`.

use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let retry: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let probe: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let (mut elections, mut waits, mut lost) = (Vec::new(), Vec::new(), Vec::new());
    let mut fresh = Vec::new();
    for seed in 0..seeds {
        let mut config = ShardedConfig::lab(seed);
        config.host.raft.heartbeat_interval = 100;
        config.host.raft.election_timeout_min = 500;
        config.host.raft.election_timeout_max = 1000;
        config.clerk_timing = (retry, probe);
        let mut sim = ShardedSim::new(config).expect("a valid configuration");
        sim.join_all().expect("the groups join");
        sim.run_for(3_000);
        sim.start_workload();
        sim.run_for(2_000);
        let Some(leader) = sim.leader_of(100) else {
            println!("seed {seed}: group 100 has no leader before the crash, skipped");
            continue;
        };
        let crash = sim.now().as_millis();
        sim.crash(leader);
        let mut elected = None;
        for _ in 0..800 {
            sim.run_for(10);
            if elected.is_none() && sim.leader_of(100).is_some() {
                elected = Some(sim.now().as_millis() - crash);
            }
        }
        let end = sim.now().as_millis();
        let wait = sim
            .history()
            .operations()
            .iter()
            .filter(|op| op.completed_at().is_none_or(|at| at >= crash))
            .map(|op| op.completed_at().unwrap_or(end) - op.invoked_at.max(crash))
            .max()
            .unwrap_or(0);
        let elected = elected.unwrap_or(end - crash);
        if wait > 1500 {
            println!("seed {seed}: new leader after {elected} ms, an operation waited {wait} ms");
        }
        sim.stop_workload();
        let mut slowest = 0;
        for key in 0..sim.config().keys {
            let start = sim.now().as_millis();
            let _ = sim.get(&format!("k{key}"));
            slowest = slowest.max(sim.now().as_millis() - start);
        }
        fresh.push(slowest);
        elections.push(elected);
        waits.push(wait);
        lost.push(wait.saturating_sub(elected));
    }
    println!(
        "{} seeds, clerk retry {retry} ms, probe {probe} ms",
        waits.len()
    );
    for (name, values) in [
        ("new leader after the crash", &mut elections),
        ("longest wait of an operation", &mut waits),
        ("  of which after the election", &mut lost),
        ("a fresh clerk's slowest get", &mut fresh),
    ] {
        values.sort_unstable();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        let mean = values.iter().sum::<u64>() as f64 / values.len().max(1) as f64;
        println!(
            "{name:<32} mean {mean:>6.0} ms, median {:>5} ms, p90 {:>5} ms, max {:>5} ms",
            at(0.5),
            at(0.9),
            at(1.0)
        );
    }
    let over = waits.iter().filter(|&&w| w > 1500).count();
    println!("seeds where an operation waited over 1.5 s: {over}");
}
