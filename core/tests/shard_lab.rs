//! The MIT 6.5840 shard KV tests (lab 5B and its two challenges), run in the
//! sharded simulator in virtual time. Every test ends with the per-group
//! safety checkers clean and, where clients ran, the history linearizable
//! per key with every acknowledged append present exactly once.

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
