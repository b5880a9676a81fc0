//! The MIT 6.5840 key-value service lab tests (kvraft, 4A/4B), run in the
//! simulator in virtual time: concurrent clients append and read while
//! servers are partitioned, crash and restart, over a reliable or lossy
//! network, with and without snapshots. Every history is also checked for
//! linearizability and exactly-once appends.
#![cfg(feature = "sim")]

use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::raft::NodeId;
use distribkv_core::rng::Rng;
use distribkv_core::sim::{Endpoint, OpStatus, Sim, SimConfig, check_history};

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const SEEDS: [u64; 2] = [1, 2];

fn sim(servers: usize, seed: u64, unreliable: bool, snapshot_every: u64) -> Sim {
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

fn put(key: &str, value: &str) -> Operation {
    Operation::Put {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn append(key: &str, value: &str) -> Operation {
    Operation::Append {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn get(key: &str) -> Operation {
    Operation::Get {
        key: Bytes::copy_from_slice(key.as_bytes()),
    }
}

/// Runs one operation from `client` to completion (bounded by `limit` ms).
fn run_op(sim: &mut Sim, client: u64, operation: Operation, limit: u64) -> Option<Option<Bytes>> {
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

fn text(value: Option<Bytes>) -> String {
    value
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

/// Waits for the cluster to converge, then checks safety, linearizability
/// and exactly-once appends over the whole history.
fn assert_history_ok(sim: &mut Sim) {
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
fn generic_test(
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
fn generic_test_on(
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

// ---- Follower reads ----

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

// ---- 4B: snapshots ----

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
