//! The sharded service in one process, on one thread:
//!
//! - `idle/groups/N`: two hosts holding replicas of N groups at rest, one
//!   virtual second simulated per iteration (tick = heartbeat interval =
//!   50 ms). The batches and Raft messages per virtual second between the
//!   two hosts, and the heap bytes per idle replica (everything the two
//!   hosts hold, divided by the replicas), are printed once
//!   (they are counts, not timings).
//! - `entries/clients/C/groups/G`: C (64, then 512) concurrent client
//!   writes per round to a data set of 1,024 keys, spread over G (1 or
//!   16) groups on three hosts (zero latency, instant fsync), run until
//!   all are committed, applied and answered: committed entries per
//!   second. The rounds are `sim::sharded::WriteRounds`, which the
//!   `profile_shard_rounds` example runs under a profiler.
//! - `apart/clients/C/keys/K/groups/G`: what sharing the hosts costs.
//!   16 groups run apart (16 clusters of three hosts, one after another
//!   on one thread) commit what one group with a sixteenth of the load
//!   does: 4 clients and a sixteenth of the keys. So 64 clients over 16
//!   groups against 4 clients over 1 group (one key per client, and with
//!   1,024 keys against 64) is what multiplexing the groups on shared
//!   hosts costs or saves at the same load per group, and 64 clients over
//!   1 group what one group gains from batching 64 writes per
//!   AppendEntries instead of 4.
//! - `move_shard/keys/10000`: a shard of 10,000 keys moves from one group
//!   to another in the sharded simulator (10 ms network latency, 1–5 ms
//!   fsyncs); the virtual time the move takes is printed, criterion times
//!   the wall time of the simulation.
//!
//! Run: `cargo bench -p distribkv-core --features sim --bench shard`.

use std::alloc::System;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use distribkv_core::shard::host::HostConfig;
use distribkv_core::shard::{ControllerOp, ControllerReply};
use distribkv_core::sim::sharded::{Mesh, ShardedConfig, ShardedSim, WriteRounds};
use distribkv_core::time::Instant;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// Counts allocations, to measure the memory of idle replicas.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes still allocated since `region` began.
fn live_bytes(region: &Region<'_, System>) -> i64 {
    // A reallocation is already counted in both (its growth as allocated,
    // its shrinking as deallocated).
    let change = region.change();
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

fn configs_with(hosts: u64, groups: u64, hibernate_after_ms: u64) -> Vec<HostConfig> {
    let servers: Vec<u64> = (1..=hosts).collect();
    servers
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
        .collect()
}

/// Two hosts with `groups` groups each, elected and at rest.
fn idle_mesh(groups: u64, hibernate_after_ms: u64) -> Mesh {
    let configs = configs_with(2, groups, hibernate_after_ms);
    let mut mesh = Mesh::new(configs, 11).expect("valid configuration");
    mesh.run_until(Instant(3_000));
    mesh
}

fn idle(c: &mut Criterion) {
    for (name, hibernate_after_ms) in [("idle", 0), ("idle_hibernating", 300)] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
        for groups in [1u64, 100, 10_000] {
            let region = Region::new(GLOBAL);
            let mut mesh = idle_mesh(groups, hibernate_after_ms);
            let heap = live_bytes(&region);
            let replicas = 2 * (groups + 1);
            let batches = mesh.total_batches();
            let messages = mesh.messages;
            let raft = mesh.raft_messages;
            let start = mesh.now();
            mesh.run_until(Instant(start.as_millis() + 10_000));
            eprintln!(
                "{name} {groups} groups: {:.1} batches/s carrying {:.1} messages/s ({:.1} Raft) between the two hosts; {} heap bytes per replica",
                (mesh.total_batches() - batches) as f64 / 10.0,
                (mesh.messages - messages) as f64 / 10.0,
                (mesh.raft_messages - raft) as f64 / 10.0,
                heap / replicas as i64,
            );
            group.bench_with_input(BenchmarkId::new("groups", groups), &groups, |b, _| {
                b.iter(|| {
                    let now = mesh.now();
                    mesh.run_until(Instant(now.as_millis() + 1_000));
                });
            });
        }
        group.finish();
    }
}

/// Benchmarks the write rounds of `clients` clients over `keys` keys and
/// `groups` groups as `id`, then checks every write was committed and
/// applied everywhere.
fn bench_rounds(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    (clients, keys, groups): (u64, u64, u64),
) {
    group.throughput(Throughput::Elements(clients));
    let mut rounds =
        WriteRounds::with_keys(3, groups, clients, keys, 1000, 5).expect("groups serving");
    group.bench_with_input(id, &groups, |b, _| {
        b.iter(|| assert_eq!(rounds.run_round(), clients, "every write answered"));
    });
    rounds.check_applied().expect("every round applied");
}

fn entries(c: &mut Criterion) {
    let mut group = c.benchmark_group("entries");
    group.measurement_time(Duration::from_secs(5));
    // The data set: 1,024 keys, as the native `bench` uses 1,000.
    const KEYS: u64 = 1024;
    for clients in [64u64, 512] {
        for groups in [1u64, 16] {
            let id = BenchmarkId::new(format!("clients/{clients}/groups"), groups);
            bench_rounds(&mut group, id, (clients, KEYS, groups));
        }
    }
    group.finish();
}

fn apart(c: &mut Criterion) {
    let mut group = c.benchmark_group("apart");
    group.measurement_time(Duration::from_secs(5));
    // (clients, keys, groups): one key per client, then the data set of
    // `entries` (1,024 keys; a sixteenth of it, 64 keys, for one of the
    // 16 groups run apart).
    for (clients, keys, groups) in [
        (64u64, 64u64, 1u64),
        (64, 64, 16),
        (4, 4, 1),
        (64, 1024, 16),
        (4, 64, 1),
    ] {
        let id = BenchmarkId::new(format!("clients/{clients}/keys/{keys}/groups"), groups);
        bench_rounds(&mut group, id, (clients, keys, groups));
    }
    group.finish();
}

fn loaded(keys: usize) -> ShardedSim {
    let mut config = ShardedConfig::lab(3);
    config.host.shards = 1;
    config.network.latency = (10, 10);
    config.host.snapshot_every = 100_000;
    let mut sim = ShardedSim::new(config).expect("valid configuration");
    sim.join(&[100]).expect("joined");
    for i in 0..keys {
        let put = sim.put(&format!("key{i:05}"), "value-of-twenty-byte");
        assert_eq!(put, Ok(None));
    }
    sim
}

fn arrived(sim: &ShardedSim) -> bool {
    [7, 8, 9].iter().any(|h| {
        sim.host(*h)
            .and_then(|host| host.kv(101))
            .is_some_and(|kv| kv.is_settled() && kv.shards().contains_key(&0))
    })
}

fn move_shard(c: &mut Criterion) {
    let mut group = c.benchmark_group("move_shard");
    group.sample_size(10);
    let keys = 10_000;
    let template = loaded(keys);
    let mut sim = template_clone(&template, keys);
    sim.join(&[101]).expect("joined");
    let started = sim.now();
    let reply = sim.controller(ControllerOp::Move {
        shard: 0,
        group: 101,
    });
    assert_eq!(reply, Ok(ControllerReply::Done));
    assert!(sim.run_until(60_000, arrived));
    eprintln!(
        "move of a {keys}-key shard: {} ms of virtual time from the Move request to the new owner serving it",
        sim.now().as_millis() - started.as_millis()
    );
    group.bench_function(BenchmarkId::new("keys", keys), |b| {
        b.iter_batched(
            || {
                let mut sim = template_clone(&template, keys);
                sim.join(&[101]).expect("joined");
                sim
            },
            |mut sim| {
                let reply = sim.controller(ControllerOp::Move {
                    shard: 0,
                    group: 101,
                });
                assert_eq!(reply, Ok(ControllerReply::Done));
                assert!(sim.run_until(60_000, arrived));
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// The simulator is not `Clone`; rebuilding it from the same seed gives
/// the same state.
fn template_clone(_template: &ShardedSim, keys: usize) -> ShardedSim {
    loaded(keys)
}

criterion_group!(benches, idle, entries, apart, move_shard);
criterion_main!(benches);
