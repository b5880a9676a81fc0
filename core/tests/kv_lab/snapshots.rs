//! Lab 4B: the key-value service with snapshots.

use crate::{SEEDS, append, assert_history_ok, generic_test, get, put, run_op, sim, text};

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A server cut off while the others move past a snapshot catches up by
/// InstallSnapshot, and its state matches.
#[test]
fn snapshot_rpc_4b() {
    for seed in SEEDS {
        let mut sim = sim(3, seed, false, 10);
        let client = sim.add_client();
        run_op(&mut sim, client, put("a", "A"), 10_000).unwrap();
        // 3 is cut off; 1 and 2 apply far past a snapshot.
        sim.partition(&[vec![1, 2], vec![3]]).unwrap();
        for i in 0..50 {
            run_op(
                &mut sim,
                client,
                put(&i.to_string(), &i.to_string()),
                30_000,
            )
            .expect("majority works");
        }
        sim.run_for(500);
        run_op(&mut sim, client, put("b", "B"), 30_000).unwrap();
        // Now 1 is cut off: 3 must catch up from a snapshot to form a majority with 2.
        sim.partition(&[vec![2, 3], vec![1]]).unwrap();
        run_op(&mut sim, client, put("c", "C"), 30_000).expect("2 and 3 form a majority");
        run_op(&mut sim, client, put("d", "D"), 30_000).unwrap();
        assert_eq!(
            text(run_op(&mut sim, client, get("a"), 30_000).unwrap()),
            "A"
        );
        assert_eq!(
            text(run_op(&mut sim, client, get("b"), 30_000).unwrap()),
            "B"
        );
        assert_eq!(
            text(run_op(&mut sim, client, get("49"), 30_000).unwrap()),
            "49"
        );
        let installed = sim.replica(3).unwrap().node().stats().snapshots_installed;
        assert!(
            installed > 0,
            "node 3 should have caught up with a snapshot"
        );
        sim.heal();
        run_op(&mut sim, client, put("e", "E"), 30_000).unwrap();
        assert_eq!(
            text(run_op(&mut sim, client, get("c"), 30_000).unwrap()),
            "C"
        );
        assert_history_ok(&mut sim);
    }
}

/// With snapshots on, the log and the snapshot stay small.
#[test]
fn snapshot_size_4b() {
    for seed in SEEDS {
        let every = 10;
        let mut sim = sim(3, seed, false, every);
        let client = sim.add_client();
        for i in 0..200 {
            run_op(&mut sim, client, put("x", "0"), 10_000).unwrap();
            assert_eq!(
                text(run_op(&mut sim, client, get("x"), 10_000).unwrap()),
                "0",
                "iteration {i}"
            );
        }
        for id in 1..=3 {
            let replica = sim.replica(id).unwrap();
            let log = replica.node().log().len() as u64;
            assert!(
                log <= 2 * every + 4,
                "node {id} holds {log} entries with snapshots every {every}"
            );
            let snapshot = replica.node().snapshot_data().len();
            assert!(
                snapshot < 500,
                "snapshot of {snapshot} bytes for one key and one session"
            );
        }
        assert_history_ok(&mut sim);
    }
}

#[test]
fn speed_with_snapshots_4b() {
    for seed in SEEDS {
        let mut sim = sim(3, seed, false, 10);
        let client = sim.add_client();
        run_op(&mut sim, client, put("x", ""), 10_000).unwrap();
        let start = sim.now();
        for i in 0..1000 {
            run_op(&mut sim, client, append("x", &format!("x 0 {i} y")), 10_000).unwrap();
        }
        let per_op = sim.now().saturating_since(start) as f64 / 1000.0;
        assert!(
            per_op < sim.config().raft.heartbeat_interval as f64,
            "{per_op:.1} ms per operation"
        );
        assert!(
            per_op < 33.0,
            "{per_op:.1} ms per operation, above the lab's 33 ms"
        );
        assert_history_ok(&mut sim);
    }
}

#[test]
fn snapshot_recover_4b() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 1, false, true, false, 10, false));
}

#[test]
fn snapshot_recover_many_clients_4b() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 20, false, true, false, 10, false));
}

#[test]
fn snapshot_unreliable_4b() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, true, false, false, 10, false));
}

#[test]
fn snapshot_unreliable_recover_4b() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, true, true, false, 10, false));
}

#[test]
fn snapshot_unreliable_recover_concurrent_partition_4b() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 5, true, true, true, 10, false));
}

#[test]
fn snapshot_unreliable_recover_concurrent_partition_linearizable_4b() {
    SEEDS
        .iter()
        .for_each(|&s| generic_test(s, 15, true, true, true, 10, true));
}
