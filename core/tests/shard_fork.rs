//! A cloned [`ShardedSim`] is an independent copy of the cluster: driven
//! with the same calls as the original from the middle of a run (workload,
//! a crash, a partition, a shard move), it produces the same journal,
//! migration trace, history and messages in flight; driven differently, it
//! leaves the original untouched. The browser's `fork()` and its timeline
//! checkpoints rely on both.
#![cfg(feature = "sim")]

use distribkv_core::shard::ControllerOp;
use distribkv_core::sim::network::Endpoint;
use distribkv_core::sim::sharded::{AdminOp, JournalLine, ShardedConfig, ShardedSim};

/// What can be observed of a run: time, deliveries, the journal, the
/// migration trace, the history and the messages in flight.
#[derive(Debug, PartialEq)]
struct Observed {
    now: u64,
    delivered: u64,
    journal: Vec<JournalLine>,
    trace: Vec<String>,
    history: distribkv_core::check::History,
    in_flight: Vec<u64>,
    violations: Vec<String>,
}

fn observe(sim: &mut ShardedSim) -> Observed {
    Observed {
        now: sim.now().as_millis(),
        delivered: sim.delivered(),
        journal: sim.journal_since(0).cloned().collect(),
        trace: sim.take_trace(),
        history: sim.history().clone(),
        in_flight: sim.in_flight().iter().map(|m| m.id).collect(),
        violations: sim.violations(),
    }
}

/// A run in its middle: the groups joined, the workload on, host 2 down,
/// a shard move asked for and not answered yet.
fn mid_run() -> ShardedSim {
    let mut sim = ShardedSim::new(ShardedConfig::small(11)).expect("valid config");
    sim.enable_trace();
    sim.enable_journal(100_000);
    sim.join_all().expect("joined");
    sim.start_workload();
    sim.run_for(1_500);
    sim.crash(2);
    let step = AdminOp::Controller(ControllerOp::Move {
        shard: 3,
        group: 101,
    });
    sim.start_admin(step).expect("the admin clerk is idle");
    sim.run_for(40);
    sim
}

/// The same calls for both: run, partition, heal, restart, another move.
fn drive(sim: &mut ShardedSim) {
    sim.run_for(700);
    sim.network_mut().partition(vec![
        vec![Endpoint::Node(1), Endpoint::Node(3)],
        vec![Endpoint::Node(4), Endpoint::Node(5)],
    ]);
    sim.run_for(900);
    sim.network_mut().heal();
    sim.restart(2);
    sim.run_admin(5_000);
    let step = AdminOp::Controller(ControllerOp::Move {
        shard: 7,
        group: 102,
    });
    sim.start_admin(step).expect("the admin clerk is idle");
    for _ in 0..500 {
        sim.step_once();
    }
    sim.run_for(2_000);
}

#[test]
fn a_clone_driven_identically_runs_on_identically() {
    let mut original = mid_run();
    let mut clone = original.clone();
    drive(&mut original);
    drive(&mut clone);
    let (a, b) = (observe(&mut original), observe(&mut clone));
    assert!(a.trace.len() > 2, "the run moved shards: {:?}", a.trace);
    assert!(
        a.history.len() > 20,
        "the workload ran: {} operations",
        a.history.len()
    );
    assert!(
        a.journal.iter().any(|line| line.kind == "crash"),
        "the journal saw the crash"
    );
    assert_eq!(a, b);
}

#[test]
fn driving_a_clone_differently_leaves_the_original_untouched() {
    let mut original = mid_run();
    let mut twin = original.clone();
    let mut clone = original.clone();
    clone.crash(1);
    clone.crash(3);
    clone.stop_workload();
    clone.run_for(3_000);
    drive(&mut original);
    drive(&mut twin);
    let (a, b, c) = (
        observe(&mut original),
        observe(&mut twin),
        observe(&mut clone),
    );
    assert_eq!(a, b, "the original runs as if the clone did not exist");
    assert_ne!(a.journal, c.journal);
    assert_ne!(a.history, c.history);
}

/// The per-group safety checkers forget the log positions no replica can
/// write or apply again, so a long run (and each fork of it) does not keep
/// every entry: with a host down they keep what its disk would replay, and
/// once it is back they shrink again.
#[test]
fn the_checkers_forget_what_no_replica_can_apply_again() {
    let mut sim = ShardedSim::new(ShardedConfig::small(5)).expect("valid config");
    sim.join_all().expect("joined");
    sim.start_workload();
    let snapshot_every = sim.config().host.snapshot_every as usize;
    let commit = |sim: &ShardedSim, group| {
        (1..=5)
            .filter_map(|host| sim.host(host)?.node(group).map(|n| n.log().commit()))
            .max()
            .unwrap_or(0) as usize
    };
    let remembered = |sim: &ShardedSim| {
        [100, 101, 102].map(|group| sim.checker_remembers(group).expect("a group"))
    };

    sim.run_for(20_000);
    sim.crash(4);
    sim.run_for(60_000);
    let while_down = remembered(&sim);
    sim.restart(4);
    sim.run_for(120_000);
    let after = remembered(&sim);
    let violations = sim.violations();
    assert!(violations.is_empty(), "{violations:?}");

    for (i, group) in [100u64, 101, 102].into_iter().enumerate() {
        let committed = commit(&sim, group);
        // Each position is remembered at most once per map (entry written,
        // committed, applied, snapshot); the slowest replica may still
        // apply up to a snapshot interval and its lag behind the others.
        let bound = 6 * snapshot_every;
        // Without forgetting, at least three maps hold every committed entry.
        assert!(
            3 * committed > 2 * bound,
            "group {group} committed only {committed} entries: the run is too short to tell"
        );
        assert!(
            after[i] <= bound,
            "group {group}'s checker remembers {} positions of {committed} committed (bound {bound})",
            after[i]
        );
        // Host 4 holds groups 101 and 102: while it was down (a minute of
        // writes), their checkers kept what it would replay from its disk.
        if group != 100 {
            assert!(
                while_down[i] > bound && while_down[i] > after[i],
                "group {group}: {} positions remembered with host 4 down, {} after",
                while_down[i],
                after[i]
            );
        }
    }
}
