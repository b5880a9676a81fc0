//! The key-value service with follower reads: a follower asks the leader
//! for a read index and answers itself.

use distribkv_core::raft::NodeId;
use distribkv_core::sim::{Endpoint, OpStatus, Sim};

use crate::{SEEDS, assert_history_ok, generic_test_on, get, put, run_op, sim, text};

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// [`sim`] with every client reading from any server (follower reads).
fn follower_read_sim(servers: usize, seed: u64, unreliable: bool, snapshot_every: u64) -> Sim {
    let mut config = sim(servers, seed, unreliable, snapshot_every)
        .config()
        .clone();
    config.follower_reads = true;
    Sim::new(config)
}

/// With follower reads, a client that cannot reach the leader still reads
/// (a follower asks the leader for a read index and answers), and reads the
/// latest value; without them, the same read waits for the leader.
#[test]
fn follower_reads_complete_without_reaching_the_leader() {
    for seed in SEEDS {
        for follower_reads in [true, false] {
            let mut sim = if follower_reads {
                follower_read_sim(3, seed, false, 0)
            } else {
                sim(3, seed, false, 0)
            };
            let writer = sim.add_client();
            let reader = sim.add_client();
            run_op(&mut sim, writer, put("x", "1"), 10_000).unwrap();
            run_op(&mut sim, writer, put("x", "2"), 10_000).unwrap();
            let leader = sim.leader().expect("a leader after two writes");
            sim.cut_client(reader, leader).unwrap();
            let read = sim.invoke(Some(reader), get("x")).unwrap();
            let done = sim.run_until_condition(3_000, |sim| {
                sim.history()[read as usize - 1].outcome.is_some()
            });
            assert_eq!(
                done, follower_reads,
                "seed {seed}: a read that cannot reach the leader completed: {done}"
            );
            if follower_reads {
                let entry = &sim.history()[read as usize - 1];
                assert_eq!(entry.status(), OpStatus::Ok);
                assert_eq!(text(entry.value().cloned()), "2", "seed {seed}");
            }
            sim.heal();
            assert_history_ok(&mut sim);
        }
    }
}

/// A leader cut off in a minority (without CheckQuorum it does not step
/// down) never confirms a read index for a follower on its side: the
/// majority elects another leader and writes, and a client reading through
/// the minority gets no answer until the heal, never the old value.
#[test]
fn a_deposed_leader_confirms_no_follower_read() {
    for seed in SEEDS {
        let mut config = sim(5, seed, false, 0).config().clone();
        config.follower_reads = true;
        config.raft.check_quorum = false;
        let mut sim = Sim::new(config);
        let writer = sim.add_client();
        let reader = sim.add_client();
        run_op(&mut sim, writer, put("x", "1"), 10_000).unwrap();
        let old_leader = sim.leader().expect("a leader after a write");
        let follower = (1..=5).find(|&id| id != old_leader).unwrap();
        let majority: Vec<NodeId> = (1..=5)
            .filter(|&id| id != old_leader && id != follower)
            .collect();
        let mut minority_side = vec![Endpoint::Node(old_leader), Endpoint::Node(follower)];
        minority_side.push(Endpoint::Client(reader));
        let mut majority_side: Vec<Endpoint> =
            majority.iter().map(|&id| Endpoint::Node(id)).collect();
        majority_side.push(Endpoint::Client(writer));
        sim.partition_endpoints(vec![minority_side, majority_side]);
        run_op(&mut sim, writer, put("x", "2"), 10_000).expect("the majority writes");
        let read = sim.invoke(Some(reader), get("x")).unwrap();
        sim.run_for(3_000);
        assert!(
            sim.history()[read as usize - 1].outcome.is_none(),
            "seed {seed}: a read through the deposed leader's side completed: {:?}",
            sim.history()[read as usize - 1].outcome
        );
        sim.heal();
        assert_history_ok(&mut sim);
    }
}

/// The lab's hardest test (many clients on shared keys, lossy network,
/// partitions, crashes of every server) with follower reads: every history
/// is linearizable.
#[test]
fn follower_reads_partition_unreliable_linearizable() {
    for seed in SEEDS {
        let sim = follower_read_sim(5, seed, true, 0);
        generic_test_on(sim, seed, 15, true, true, 0, true);
    }
}

/// Follower reads with snapshots: a follower that installs a snapshot
/// serves reads from it once it reaches the read index.
#[test]
fn follower_reads_with_snapshots_and_crashes() {
    for seed in SEEDS {
        let sim = follower_read_sim(5, seed, true, 30);
        generic_test_on(sim, seed, 5, true, true, 30, false);
    }
}
