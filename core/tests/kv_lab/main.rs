//! The MIT 6.5840 key-value service lab tests (kvraft, 4A/4B), run in the
//! simulator in virtual time: concurrent clients append and read while
//! servers are partitioned, crash and restart, over a reliable or lossy
//! network, with and without snapshots. Every history is also checked for
//! linearizability and exactly-once appends.
//!
//! The helpers the tests share are here; the tests are in one file per
//! part: `service` (4A), `snapshots` (4B), and `follower_reads` (the same
//! service with reads served by followers).
#![cfg(feature = "sim")]

mod follower_reads;
mod service;
mod snapshots;

use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::raft::NodeId;
use distribkv_core::rng::Rng;
use distribkv_core::sim::{OpStatus, Sim, SimConfig, check_history};

pub(crate) const SEEDS: [u64; 2] = [1, 2];

pub(crate) fn sim(servers: usize, seed: u64, unreliable: bool, snapshot_every: u64) -> Sim {
    let mut config = SimConfig {
        nodes: servers,
        seed,
        snapshot_every,
        client_give_up: None,
        ..SimConfig::default()
    };
    config.network.latency = (1, 10);
    if unreliable {
        config.network.drop_rate = 0.1;
        config.network.latency = (1, 27);
        config.network.long_delay_rate = 0.02;
        config.network.long_delay = (200, 1000);
    }
    Sim::new(config)
}

pub(crate) fn put(key: &str, value: &str) -> Operation {
    Operation::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

pub(crate) fn append(key: &str, value: &str) -> Operation {
    Operation::Append {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

pub(crate) fn get(key: &str) -> Operation {
    Operation::Get {
        key: Bytes::copy_from_slice(key.as_bytes()),
    }
}

/// Runs one operation from `client` to completion (bounded by `limit` ms).
pub(crate) fn run_op(
    sim: &mut Sim,
    client: u64,
    operation: Operation,
    limit: u64,
) -> Option<Option<Bytes>> {
    let id = sim.invoke(Some(client), operation).expect("known client");
    let done = sim.run_until_condition(limit, |sim| {
        sim.history()[id as usize - 1].outcome.is_some()
    });
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    if !done {
        return None;
    }
    let entry = &sim.history()[id as usize - 1];
    assert_eq!(
        entry.status(),
        OpStatus::Ok,
        "op {id} failed: {:?}",
        entry.outcome
    );
    Some(entry.value().cloned())
}

pub(crate) fn text(value: Option<Bytes>) -> String {
    value
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

/// Waits for the cluster to converge, then checks safety, linearizability
/// and exactly-once appends over the whole history.
pub(crate) fn assert_history_ok(sim: &mut Sim) {
    assert!(
        sim.run_until_condition(30_000, |sim| sim.is_converged()),
        "the cluster did not converge"
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let failures = check_history(sim);
    assert!(failures.is_empty(), "{failures:?}");
}

/// The lab's GenericTest: `clients` clients, each appending to its own key
/// (or random keys) and checking what it reads, for three rounds of five
/// seconds; optionally with a partitioner, crashes of every server between
/// rounds, and snapshots (whose log size is then checked).
pub(crate) fn generic_test(
    seed: u64,
    clients: u64,
    unreliable: bool,
    crash: bool,
    partitions: bool,
    snapshot_every: u64,
    random_keys: bool,
) {
    let sim = sim(5, seed, unreliable, snapshot_every);
    generic_test_on(
        sim,
        seed,
        clients,
        crash,
        partitions,
        snapshot_every,
        random_keys,
    );
}

/// [`generic_test`] on a simulator built by the caller.
pub(crate) fn generic_test_on(
    mut sim: Sim,
    seed: u64,
    clients: u64,
    crash: bool,
    partitions: bool,
    snapshot_every: u64,
    random_keys: bool,
) {
    let servers = sim.node_count();
    let mut rng = Rng::new(seed ^ 0xC11E);
    for _ in 0..clients {
        sim.add_client();
    }
    // What each client expects its key to hold (only meaningful when keys are not shared).
    let mut expected: BTreeMap<u64, String> = (1..=clients).map(|c| (c, String::new())).collect();
    for c in 1..=clients {
        run_op(&mut sim, c, put(&format!("k{c}"), ""), 60_000).expect("initial put completes");
    }
    let mut max_log = 0;
    for round in 0..3 {
        // Each client keeps one operation in flight.
        let mut in_flight: BTreeMap<u64, (u64, Option<String>)> = BTreeMap::new();
        let mut counters: BTreeMap<u64, u64> = BTreeMap::new();
        let round_end = sim.now() + 5_000;
        let mut next_partition = sim.now() + 1_000;
        while sim.now() < round_end {
            for c in 1..=clients {
                if let Some((id, expect)) = in_flight.get(&c) {
                    let entry = &sim.history()[*id as usize - 1];
                    if entry.outcome.is_none() {
                        continue;
                    }
                    assert_eq!(entry.status(), OpStatus::Ok, "lab clerks retry forever");
                    if let Some(expect) = expect
                        && !random_keys
                    {
                        assert_eq!(
                            &text(entry.value().cloned()),
                            expect,
                            "client {c} read a wrong value in round {round}"
                        );
                    }
                    in_flight.remove(&c);
                }
                let key = if random_keys {
                    format!("k{}", rng.range_inclusive(1, clients))
                } else {
                    format!("k{c}")
                };
                let j = counters.entry(c).or_insert(0);
                *j += 1;
                let (operation, expect) = if rng.chance(0.5) {
                    let value = format!("x {c} {round} {j} y");
                    if !random_keys {
                        expected.get_mut(&c).unwrap().push_str(&value);
                    }
                    (append(&key, &value), None)
                } else {
                    (get(&key), Some(expected[&c].clone()))
                };
                let id = sim.invoke(Some(c), operation).unwrap();
                in_flight.insert(c, (id, expect));
            }
            sim.run_for(5);
            if partitions && sim.now() >= next_partition {
                let mut groups = (Vec::new(), Vec::new());
                for id in 1..=servers as NodeId {
                    if rng.chance(0.5) {
                        groups.0.push(id);
                    } else {
                        groups.1.push(id);
                    }
                }
                sim.partition(&[groups.0, groups.1]).unwrap();
                next_partition = sim.now() + rng.range(800, 1200);
            }
            for id in 1..=servers as NodeId {
                if let Some(replica) = sim.replica(id) {
                    max_log = max_log.max(replica.node().log().len());
                }
            }
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        }
        sim.heal();
        if crash {
            for id in 1..=servers as NodeId {
                sim.crash(id).unwrap();
            }
            sim.run_for(100);
            for id in 1..=servers as NodeId {
                sim.restart(id).unwrap();
            }
        }
        // Let every client finish, then check each one's key.
        let ok = sim.run_until_condition(60_000, |sim| {
            sim.history().iter().all(|e| e.outcome.is_some())
        });
        assert!(ok, "clients did not finish after the heal in round {round}");
        if !random_keys {
            for c in 1..=clients {
                let value =
                    run_op(&mut sim, c, get(&format!("k{c}")), 60_000).expect("get completes");
                assert_eq!(
                    text(value),
                    expected[&c],
                    "client {c}'s key after round {round}"
                );
            }
        }
    }
    if snapshot_every > 0 {
        assert!(
            max_log as u64 <= 8 * snapshot_every + 64,
            "log grew to {max_log} entries with snapshots every {snapshot_every}"
        );
    }
    assert_history_ok(&mut sim);
}
