//! The MIT 6.5840 shard KV tests (lab 5B and its two challenges), run in the
//! sharded simulator in virtual time. Every test ends with the per-group
//! safety checkers clean and, where clients ran, the history linearizable
//! per key with every acknowledged append present exactly once.

#![cfg(feature = "sim")]

mod controller;
mod retire;

use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::shard::ControllerReply;
use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};

fn key(i: usize) -> String {
    format!("key{i}")
}

fn assert_clean(sim: &mut ShardedSim) {
    let violations = sim.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    let failures = sim.check_history();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Puts `n` keys and returns what they hold.
fn fill(sim: &mut ShardedSim, n: usize) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let value = format!("v{i}.");
        assert_eq!(sim.put(&key(i), &value), Ok(None), "put {}", key(i));
        expected.insert(key(i), value);
    }
    expected
}

fn check_all(sim: &mut ShardedSim, expected: &BTreeMap<String, String>) {
    for (k, v) in expected {
        assert_eq!(sim.get(k), Ok(Some(Bytes::from(v.clone()))), "get {k}");
    }
}

/// Appends to every key and records the expected value.
fn append_all(sim: &mut ShardedSim, expected: &mut BTreeMap<String, String>, round: usize) {
    for (k, v) in expected.iter_mut() {
        let token = format!("[{round}]");
        assert_eq!(sim.append(k, &token), Ok(None), "append {k}");
        v.push_str(&token);
    }
}

#[test]
fn static_shards() {
    let mut sim = ShardedSim::new(ShardedConfig::lab(1)).unwrap();
    assert_eq!(sim.join(&[100, 101]), Ok(ControllerReply::Done));
    let expected = fill(&mut sim, 10);
    check_all(&mut sim, &expected);
    // Take group 101 down entirely: exactly the keys of group 100 still
    // answer (6.5840: "ndone == n/2" within the time limit).
    let config = sim.query().unwrap();
    for host in [7, 8, 9] {
        sim.crash(host);
    }
    let mut served = 0;
    let mut owned_by_100 = 0;
    for k in expected.keys() {
        let shard = distribkv_core::shard::shard_of(k.as_bytes(), 10);
        let mine = config.owner(shard) == 100;
        owned_by_100 += usize::from(mine);
        let got = sim.kv(
            Operation::Get {
                key: Bytes::from(k.clone()),
            },
            2_000,
        );
        if got.is_ok() {
            served += 1;
            assert!(mine, "{k} answered though its group is down");
        }
    }
    assert_eq!(served, owned_by_100);
    for host in [7, 8, 9] {
        sim.restart(host);
    }
    check_all(&mut sim, &expected);
    assert_clean(&mut sim);
}

#[test]
fn join_then_leave() {
    let mut sim = ShardedSim::new(ShardedConfig::lab(2)).unwrap();
    sim.join(&[100]).unwrap();
    let mut expected = fill(&mut sim, 10);
    sim.join(&[101]).unwrap();
    append_all(&mut sim, &mut expected, 1);
    sim.leave(&[100]).unwrap();
    append_all(&mut sim, &mut expected, 2);
    check_all(&mut sim, &expected);
    // Group 100 is gone from the configuration: its servers can stop.
    assert!(sim.run_until(5_000, |s| s.is_settled()));
    for host in [4, 5, 6] {
        sim.crash(host);
    }
    check_all(&mut sim, &expected);
    assert_clean(&mut sim);
}

/// Runs the workload while `changes` happen, then heals, lets the clients
/// finish and checks everything (6.5840's concurrent and unreliable tests,
/// with the history checked for linearizability and exactly-once appends
/// instead of the per-key value only).
fn concurrent(seed: u64, unreliable: bool, changes: impl FnOnce(&mut ShardedSim)) -> ShardedSim {
    let mut config = ShardedConfig::lab(seed);
    config.clients = 10;
    config.keys = 10;
    config.host.snapshot_every = 100;
    if unreliable {
        // 6.5840's unreliable network: a tenth of the messages lost, some
        // delivered twice, some very late.
        config.network.drop_rate = 0.1;
        config.network.duplicate_rate = 0.05;
        config.network.long_delay_rate = 0.02;
        config.network.long_delay = (200, 2000);
    }
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    sim.start_workload();
    changes(&mut sim);
    sim.network_mut().config.drop_rate = 0.0;
    sim.network_mut().config.long_delay_rate = 0.0;
    sim.run_for(2_000);
    sim.stop_workload();
    assert!(
        sim.run_until(10_000, |s| !s.workload_pending()),
        "clients still waiting 10 s after the end"
    );
    assert!(
        sim.history().len() > 100,
        "only {} operations",
        sim.history().len()
    );
    assert_clean(&mut sim);
    sim
}

#[test]
fn concurrent_1_joins_and_leaves() {
    concurrent(11, false, |sim| {
        sim.run_for(150);
        for (join, groups) in [
            (true, 101),
            (true, 102),
            (false, 100),
            (false, 101),
            (true, 101),
            (true, 100),
        ] {
            let reply = if join {
                sim.join(&[groups])
            } else {
                sim.leave(&[groups])
            };
            assert_eq!(reply, Ok(ControllerReply::Done));
            sim.run_for(500);
        }
    });
}

#[test]
fn concurrent_2_changes_with_groups_restarting() {
    concurrent(12, false, |sim| {
        sim.join(&[101, 102]).unwrap();
        sim.run_for(500);
        for round in 0..3 {
            sim.leave(&[100, 102]).unwrap();
            sim.run_for(1_000);
            sim.join(&[100, 102]).unwrap();
            sim.leave(&[101]).unwrap();
            sim.run_for(1_000);
            sim.join(&[101]).unwrap();
            let down = [101, 102][round % 2];
            sim.crash_group(down);
            sim.run_for(1_000);
            sim.restart_group(down);
        }
    });
}

#[test]
fn concurrent_3_changes_and_whole_cluster_restarts() {
    concurrent(13, false, |sim| {
        let mut t = 0;
        let mut pause = 137;
        while t < 12_000 {
            sim.join(&[102, 101]).unwrap();
            pause = (pause * 7 + 311) % 900;
            sim.run_for(pause);
            t += pause;
            for g in [100, 101, 102] {
                sim.crash_group(g);
            }
            for g in [100, 101, 102] {
                sim.restart_group(g);
            }
            pause = (pause * 7 + 311) % 900;
            sim.run_for(pause);
            sim.leave(&[101, 102]).unwrap();
            pause = (pause * 7 + 311) % 900;
            sim.run_for(pause);
            t += 2 * pause + 100;
        }
    });
}

fn unreliable_changes(sim: &mut ShardedSim) {
    sim.run_for(150);
    sim.join(&[101]).unwrap();
    sim.run_for(500);
    sim.join(&[102]).unwrap();
    sim.run_for(500);
    sim.leave(&[100]).unwrap();
    sim.run_for(500);
    sim.leave(&[101]).unwrap();
    sim.run_for(500);
    sim.join(&[101]).unwrap();
    sim.join(&[100]).unwrap();
}

#[test]
fn unreliable_1() {
    // Sequential operations by one clerk over a lossy network while the
    // configuration changes.
    let mut config = ShardedConfig::lab(21);
    config.network.drop_rate = 0.1;
    config.network.duplicate_rate = 0.05;
    config.host.snapshot_every = 100;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    let mut expected = fill(&mut sim, 10);
    sim.join(&[101]).unwrap();
    sim.join(&[102]).unwrap();
    sim.leave(&[100]).unwrap();
    for round in 0..2 {
        check_all(&mut sim, &expected);
        append_all(&mut sim, &mut expected, round);
    }
    sim.join(&[100]).unwrap();
    sim.leave(&[101]).unwrap();
    check_all(&mut sim, &expected);
    check_all(&mut sim, &expected);
    sim.network_mut().config.drop_rate = 0.0;
    assert_clean(&mut sim);
}

#[test]
fn unreliable_2() {
    concurrent(22, true, unreliable_changes);
}

#[test]
fn unreliable_3_linearizable() {
    let sim = concurrent(23, true, unreliable_changes);
    let gets = sim
        .history()
        .operations()
        .iter()
        .filter(|o| matches!(o.kind, distribkv_core::check::OpKind::Get))
        .count();
    assert!(gets > 20, "the history mixes reads in ({gets})");
}

#[test]
fn snapshots() {
    let mut config = ShardedConfig::lab(3);
    config.host.snapshot_every = 10;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    let mut expected = fill(&mut sim, 30);
    sim.join(&[101]).unwrap();
    sim.join(&[102]).unwrap();
    sim.leave(&[100]).unwrap();
    append_all(&mut sim, &mut expected, 1);
    sim.leave(&[101]).unwrap();
    sim.join(&[100]).unwrap();
    append_all(&mut sim, &mut expected, 2);
    check_all(&mut sim, &expected);
    sim.run_for(1_000);
    // Every server down, then back from its snapshot and log.
    for host in 1..=12 {
        sim.crash(host);
    }
    for host in 1..=12 {
        sim.restart(host);
    }
    check_all(&mut sim, &expected);
    assert_clean(&mut sim);
}

#[test]
fn a_server_missing_configuration_changes_catches_up() {
    let mut config = ShardedConfig::lab(4);
    config.host.snapshot_every = 10;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    let mut expected = fill(&mut sim, 10);
    sim.join(&[101]).unwrap();
    append_all(&mut sim, &mut expected, 1);
    // One server of each group misses the next changes.
    for host in [4, 7, 10] {
        sim.crash(host);
    }
    sim.join(&[102]).unwrap();
    sim.leave(&[100]).unwrap();
    append_all(&mut sim, &mut expected, 2);
    sim.leave(&[101]).unwrap();
    sim.join(&[100]).unwrap();
    append_all(&mut sim, &mut expected, 3);
    for host in [4, 7, 10] {
        sim.restart(host);
    }
    // Now another server of each group misses changes, so the ones that
    // were away must have caught up for the groups to keep a majority.
    for host in [5, 8, 11] {
        sim.crash(host);
    }
    sim.join(&[101]).unwrap();
    sim.leave(&[102]).unwrap();
    append_all(&mut sim, &mut expected, 4);
    check_all(&mut sim, &expected);
    for host in [5, 8, 11] {
        sim.restart(host);
    }
    check_all(&mut sim, &expected);
    assert!(sim.run_until(10_000, |s| s.is_settled()));
    assert_clean(&mut sim);
}

#[test]
fn moved_shards_are_deleted() {
    // 6.5840 challenge 1: snapshot after every entry, 30 keys of 1000
    // bytes, shards moved back and forth; in the end the disks hold each
    // value about once per replica.
    let mut config = ShardedConfig::lab(5);
    config.host.snapshot_every = 1;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    let n = 30;
    let value = |i: usize| format!("{i:04}").repeat(250);
    for i in 0..n {
        assert_eq!(sim.put(&key(i), &value(i)), Ok(None));
    }
    for _ in 0..2 {
        sim.join(&[101]).unwrap();
        sim.leave(&[100]).unwrap();
        sim.join(&[102]).unwrap();
        sim.run_for(3_000);
        sim.leave(&[101]).unwrap();
        sim.join(&[100]).unwrap();
        sim.leave(&[102]).unwrap();
        sim.run_for(3_000);
    }
    sim.join(&[101]).unwrap();
    sim.join(&[102]).unwrap();
    assert!(sim.run_until(10_000, |s| s.is_settled()));
    sim.run_for(3_000);
    // Each shard is held by exactly one group.
    let held = sim.held_shards();
    let mut seen = std::collections::BTreeSet::new();
    for shards in held.values() {
        for s in shards {
            assert!(seen.insert(*s), "shard {s} held twice: {held:?}");
        }
    }
    // The lab's bound: 27 keys stored once, 3 keys also in duplicate
    // tables, everything on 3 replicas, plus slop.
    let bound = 3 * ((n - 3) * 1000 + 2 * 3 * 1000 + 6000) as u64;
    let total = sim.persisted_bytes();
    assert!(total <= bound, "{total} bytes persisted > {bound}");
    for i in 0..n {
        assert_eq!(sim.get(&key(i)), Ok(Some(Bytes::from(value(i)))));
    }
    assert_clean(&mut sim);
}

fn owned_by(config: &distribkv_core::shard::ShardConfig, group: u64, k: &str) -> bool {
    config.owner(distribkv_core::shard::shard_of(k.as_bytes(), 10)) == group
}

#[test]
fn unaffected_shards_keep_serving() {
    // 6.5840 challenge 2, "unaffected".
    let mut config = ShardedConfig::lab(6);
    config.network.drop_rate = 0.1;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    for i in 0..10 {
        sim.put(&key(i), "100").unwrap();
    }
    sim.join(&[101]).unwrap();
    let config = sim.query().unwrap();
    sim.run_for(1_000);
    let mut expected = BTreeMap::new();
    for i in 0..10 {
        if owned_by(&config, 101, &key(i)) {
            sim.put(&key(i), "101").unwrap();
            expected.insert(key(i), String::from("101"));
        }
    }
    assert!(!expected.is_empty());
    sim.crash_group(100);
    // 101 cannot get 100's shards now, but keeps serving its own.
    sim.leave(&[100]).unwrap();
    sim.run_for(1_000);
    for (k, v) in &expected {
        let got = sim.kv(
            Operation::Get {
                key: Bytes::from(k.clone()),
            },
            2_000,
        );
        assert_eq!(got, Ok(Some(Bytes::from(v.clone()))), "{k}");
        let next = format!("{v}-1");
        let put = sim.kv(
            Operation::Put {
                key: Bytes::from(k.clone()),
                value: Bytes::from(next.clone()),
            },
            2_000,
        );
        assert_eq!(put, Ok(None), "{k}");
    }
    sim.network_mut().config.drop_rate = 0.0;
    sim.restart_group(100);
    assert_clean(&mut sim);
}

#[test]
fn partial_migration_serves_what_arrived() {
    // 6.5840 challenge 2, "partial".
    let mut config = ShardedConfig::lab(7);
    config.network.drop_rate = 0.1;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100, 101, 102]).unwrap();
    sim.run_for(1_000);
    for i in 0..10 {
        sim.put(&key(i), "100").unwrap();
    }
    let config = sim.query().unwrap();
    sim.crash_group(100);
    // 101 gets 102's shards but not 100's; it serves the former at once.
    sim.leave(&[100, 102]).unwrap();
    sim.run_for(1_000);
    let mut checked = 0;
    for i in 0..10 {
        let k = key(i);
        if owned_by(&config, 102, &k) {
            let got = sim.kv(
                Operation::Get {
                    key: Bytes::from(k.clone()),
                },
                2_000,
            );
            assert_eq!(got, Ok(Some(Bytes::from_static(b"100"))), "{k}");
            let put = sim.kv(
                Operation::Put {
                    key: Bytes::from(k.clone()),
                    value: Bytes::from_static(b"100-2"),
                },
                2_000,
            );
            assert_eq!(put, Ok(None), "{k}");
            checked += 1;
        }
    }
    assert!(checked > 0);
    sim.network_mut().config.drop_rate = 0.0;
    sim.restart_group(100);
    assert_clean(&mut sim);
}
