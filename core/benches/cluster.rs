//! Throughput of a whole 3-node cluster in one process, through the
//! simulator with zero network and disk latency (safety checkers off):
//!
//! - `raft_commit/batch/N`: N raw entries proposed at the leader at once,
//!   then run until the leader has applied them: committed entries per
//!   second, each write waiting for its commit (a closed loop of N clients).
//! - `kv/{writes,reads}/clients/N`: N clerks (the real client code, with
//!   sessions) doing back-to-back puts, or linearizable gets via ReadIndex.
//!
//! Run: `cargo bench -p distribkv-core --features sim --bench cluster`.

use std::time::{Duration, Instant as WallInstant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use distribkv_core::kv::Operation;
use distribkv_core::sim::{Sim, SimConfig};

fn zero_latency(nodes: usize) -> Sim {
    let mut config = SimConfig {
        nodes,
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
    sim.campaign(1).expect("node 1 is up");
    sim.stabilize(u64::MAX);
    assert_eq!(sim.leader(), Some(1));
    sim
}

fn raft_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_commit");
    group.measurement_time(Duration::from_secs(5));
    for batch in [1u64, 16, 64, 256, 4096] {
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
            let mut sim = zero_latency(3);
            let commands: Vec<Bytes> = (0..batch)
                .map(|i| Bytes::from(format!("command-{i:08}")))
                .collect();
            b.iter(|| {
                let appended = sim.propose_many(1, commands.clone()).expect("leader");
                let last = appended.last().expect("non-empty batch").0;
                sim.stabilize(u64::MAX);
                let applied = sim.replica(1).expect("up").node().log().applied();
                assert!(
                    applied >= last,
                    "batch not committed: applied {applied} < {last}"
                );
            });
        });
    }
    group.finish();
}

/// Runs `clients` clerks back to back until `ops` more operations complete.
fn run_ops(sim: &mut Sim, clients: u64, ops: u64, read: bool) {
    let target = sim.history().len() as u64 + ops;
    let mut issued = sim.history().len() as u64;
    // Each client always has one operation in flight.
    let mut current: Vec<Option<u64>> = vec![None; clients as usize];
    let key = Bytes::from_static(b"key");
    let value = Bytes::from(vec![b'v'; 256]);
    loop {
        let mut done = true;
        for (i, slot) in current.iter_mut().enumerate() {
            let finished = slot.is_none_or(|id| sim.history()[id as usize - 1].outcome.is_some());
            if finished && issued < target {
                let operation = if read {
                    Operation::Get { key: key.clone() }
                } else {
                    Operation::Put {
                        key: key.clone(),
                        value: value.clone(),
                    }
                };
                *slot = Some(
                    sim.invoke(Some(i as u64 + 1), operation)
                        .expect("client exists"),
                );
                issued += 1;
            }
            if slot.is_some_and(|id| sim.history()[id as usize - 1].outcome.is_none()) {
                done = false;
            }
        }
        if done && issued >= target {
            return;
        }
        sim.stabilize(u64::MAX);
    }
}

fn kv(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv");
    group.measurement_time(Duration::from_secs(5));
    for (name, read) in [("writes", false), ("reads", true)] {
        for clients in [1u64, 256] {
            let ops = clients.max(64);
            group.throughput(Throughput::Elements(ops));
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/clients"), clients),
                &clients,
                |b, &clients| {
                    let mut sim = zero_latency(3);
                    for _ in 0..clients {
                        sim.add_client();
                    }
                    // Warm up: sessions open, leader known.
                    run_ops(&mut sim, clients, clients, false);
                    b.iter_custom(|iters| {
                        let start = WallInstant::now();
                        for _ in 0..iters {
                            run_ops(&mut sim, clients, ops, read);
                        }
                        start.elapsed()
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, raft_commit, kv);
criterion_main!(benches);
