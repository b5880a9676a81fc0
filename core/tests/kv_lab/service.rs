//! Lab 4A: the key-value service without snapshots, and with crashes.

use distribkv_core::raft::NodeId;
use distribkv_core::sim::Endpoint;

use crate::{SEEDS, append, assert_history_ok, generic_test, get, put, run_op, sim, text};

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn basic_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 1, false, false, false, 0, false));
}

#[test]
fn speed_4a() {
    for seed in SEEDS {
        let mut sim = sim(3, seed, false, 0);
        let client = sim.add_client();
        run_op(&mut sim, client, put("x", ""), 10_000).unwrap();
        let start = sim.now();
        let ops = 1000;
        for i in 0..ops {
            run_op(&mut sim, client, append("x", &format!("x 0 {i} y")), 10_000)
                .expect("append completes");
        }
        let per_op = sim.now().saturating_since(start) as f64 / ops as f64;
        let heartbeat = sim.config().raft.heartbeat_interval as f64;
        assert!(
            per_op < heartbeat,
            "{per_op:.1} ms per operation, above one heartbeat ({heartbeat} ms)"
        );
        assert!(
            per_op < 33.0,
            "{per_op:.1} ms per operation, above the lab's 33 ms"
        );
        assert_history_ok(&mut sim);
    }
}

#[test]
fn concurrent_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, false, false, false, 0, false));
}

#[test]
fn unreliable_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, true, false, false, 0, false));
}

/// Many clients append to one key over a lossy network: every append once, in some order.
#[test]
fn unreliable_one_key_4a() {
    for seed in SEEDS {
        let mut sim = sim(3, seed, true, 0);
        let clients = 5;
        for _ in 0..clients {
            sim.add_client();
        }
        run_op(&mut sim, 1, put("k", ""), 60_000).unwrap();
        for c in 1..=clients {
            for j in 0..10 {
                sim.invoke(Some(c), append("k", &format!("x {c} {j} y")))
                    .unwrap();
            }
        }
        let ok = sim.run_until_condition(120_000, |sim| {
            sim.history().iter().all(|e| e.outcome.is_some())
        });
        assert!(ok, "appends did not finish");
        let value = text(run_op(&mut sim, 1, get("k"), 60_000).unwrap());
        for c in 1..=clients {
            let mut last = None;
            for j in 0..10 {
                let token = format!("x {c} {j} y");
                assert_eq!(value.matches(&token).count(), 1, "{token} in {value}");
                let at = value.find(&token).unwrap();
                assert!(
                    last.is_none_or(|l| l < at),
                    "client {c}'s appends out of order"
                );
                last = Some(at);
            }
        }
        assert_history_ok(&mut sim);
    }
}

/// A client in the minority partition cannot complete anything until the
/// heal; clients in the majority can.
#[test]
fn one_partition_4a() {
    for seed in SEEDS {
        let mut sim = sim(5, seed, false, 0);
        let majority_client = sim.add_client();
        let minority_a = sim.add_client();
        let minority_b = sim.add_client();
        run_op(&mut sim, majority_client, put("1", "13"), 10_000).unwrap();
        let leader = loop {
            if let Some(leader) = sim.leader() {
                break leader;
            }
            sim.run_for(50);
        };
        let mut majority: Vec<NodeId> = vec![leader];
        let mut minority: Vec<NodeId> = Vec::new();
        for id in (1..=5).filter(|&id| id != leader) {
            if majority.len() < 3 {
                majority.push(id);
            } else {
                minority.push(id);
            }
        }
        let group = |nodes: &[NodeId], clients: &[u64]| -> Vec<Endpoint> {
            nodes
                .iter()
                .map(|&n| Endpoint::Node(n))
                .chain(clients.iter().map(|&c| Endpoint::Client(c)))
                .collect()
        };
        sim.partition_endpoints(vec![
            group(&majority, &[majority_client]),
            group(&minority, &[minority_a, minority_b]),
        ]);
        run_op(&mut sim, majority_client, put("1", "14"), 10_000).expect("the majority side works");
        assert_eq!(
            text(run_op(&mut sim, majority_client, get("1"), 10_000).unwrap()),
            "14"
        );
        let put_op = sim.invoke(Some(minority_a), put("1", "15")).unwrap();
        let get_op = sim.invoke(Some(minority_b), get("1")).unwrap();
        sim.run_for(1_000);
        assert!(
            sim.history()[put_op as usize - 1].outcome.is_none(),
            "a put in the minority completed"
        );
        assert!(
            sim.history()[get_op as usize - 1].outcome.is_none(),
            "a get in the minority completed"
        );
        sim.heal();
        let done = sim.run_until_condition(10_000, |sim| {
            sim.history()[put_op as usize - 1].outcome.is_some()
                && sim.history()[get_op as usize - 1].outcome.is_some()
        });
        assert!(done, "minority operations did not complete after the heal");
        assert_eq!(
            text(run_op(&mut sim, majority_client, get("1"), 10_000).unwrap()),
            "15"
        );
        assert_history_ok(&mut sim);
    }
}

#[test]
fn many_partitions_one_client_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 1, false, false, true, 0, false));
}

#[test]
fn many_partitions_many_clients_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, false, false, true, 0, false));
}

#[test]
fn persist_one_client_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 1, false, true, false, 0, false));
}

#[test]
fn persist_concurrent_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, false, true, false, 0, false));
}

#[test]
fn persist_concurrent_unreliable_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, true, true, false, 0, false));
}

#[test]
fn persist_partition_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, false, true, true, 0, false));
}

#[test]
fn persist_partition_unreliable_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, true, true, true, 0, false));
}

#[test]
fn persist_partition_unreliable_linearizable_4a() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 15, true, true, true, 0, true));
}
