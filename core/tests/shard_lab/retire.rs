//! Groups that left are retired: once a group is out of the controller's
//! configuration and every shard it owned is acknowledged by its new
//! owner, its replicas are dropped on every host (state machine, node,
//! log), a restart does not bring them back, and its id cannot join again.

use distribkv_core::shard::{ControllerError, ControllerReply};
use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};

use super::assert_clean;

/// Group 101 (hosts 3–5, which also hold replicas of groups 100 and 102)
/// leaves while clients write, with messages lost and duplicated, one of
/// its hosts crashed mid-handoff and another cut off: it is retired on
/// every host, no acknowledged write is lost (the history is linearizable
/// and every acknowledged append is there exactly once), a restarted host
/// does not host it again, and a Join of its id is refused.
#[test]
fn a_group_that_left_is_retired_everywhere_under_faults() {
    for seed in [31, 32, 33] {
        let mut config = ShardedConfig::small(seed);
        config.clients = 6;
        config.keys = 8;
        config.host.snapshot_every = 50;
        config.host.retire_after_ms = 1_500;
        config.network.drop_rate = 0.05;
        config.network.duplicate_rate = 0.05;
        let mut sim = ShardedSim::new(config).unwrap();
        assert_eq!(sim.join(&[100, 101, 102]), Ok(ControllerReply::Done));
        sim.start_workload();
        sim.run_for(1_000);
        assert_eq!(sim.replicas_of(101), [3, 4, 5]);
        assert_eq!(sim.leave(&[101]), Ok(ControllerReply::Done));
        // Host 4 (groups 101 and 102) crashes during the handoff, host 5
        // is cut off from everyone for a while.
        sim.run_for(100);
        sim.crash(4);
        let others: Vec<_> = [1, 2, 3, 4]
            .map(distribkv_core::sim::network::Endpoint::Node)
            .to_vec();
        sim.network_mut().partition(vec![
            others,
            vec![distribkv_core::sim::network::Endpoint::Node(5)],
        ]);
        sim.run_for(2_000);
        sim.network_mut().heal();
        sim.run_for(1_000);
        sim.restart(4);
        assert!(
            sim.run_until(30_000, |s| s.replicas_of(101).is_empty()),
            "seed {seed}: group 101 still on hosts {:?}",
            sim.replicas_of(101)
        );
        assert!(sim.is_retired(101));
        for host in [3, 4, 5] {
            assert_eq!(
                sim.disk_holds(host, 101),
                (false, true),
                "seed {seed}: host {host}'s disk"
            );
        }
        // Writes continue on the groups that stayed; a restart keeps 101
        // gone from the start (the tombstone on its disk, not a reminder
        // from the group's other hosts).
        sim.crash(3);
        sim.run_for(300);
        sim.restart(3);
        assert!(
            sim.replicas_of(101).is_empty(),
            "seed {seed}: host 3 hosts group 101 again after a restart"
        );
        sim.run_for(1_000);
        assert!(sim.replicas_of(101).is_empty());
        assert_eq!(
            sim.join(&[101]),
            Ok(ControllerReply::Refused(ControllerError::Retired(101)))
        );
        sim.network_mut().config.drop_rate = 0.0;
        sim.network_mut().config.duplicate_rate = 0.0;
        sim.run_for(1_000);
        sim.stop_workload();
        assert!(sim.run_until(10_000, |s| !s.workload_pending()));
        assert!(sim.history().len() > 100, "seed {seed}: too few operations");
        assert_clean(&mut sim);
        assert!(sim.is_settled());
    }
}

/// A group that leaves and joins again before its retirement delay keeps
/// its replicas and gets shards again (6.5840's tests do this); a group
/// declared on its hosts but never joined is never retired.
#[test]
fn a_quick_rejoin_and_a_group_never_joined_keep_their_replicas() {
    let mut config = ShardedConfig::small(34);
    config.host.retire_after_ms = 2_000;
    let mut sim = ShardedSim::new(config).unwrap();
    assert_eq!(sim.join(&[100, 101]), Ok(ControllerReply::Done));
    sim.run_for(500);
    assert_eq!(sim.leave(&[101]), Ok(ControllerReply::Done));
    sim.run_for(500);
    assert_eq!(sim.join(&[101]), Ok(ControllerReply::Done));
    sim.run_for(10_000);
    assert!(sim.is_settled());
    assert_eq!(sim.replicas_of(101).len(), 3);
    assert_eq!(sim.replicas_of(102).len(), 3, "102 never joined");
    assert!(!sim.is_retired(101) && !sim.is_retired(102));
    assert!(!sim.held_shards()[&101].is_empty());
    assert_clean(&mut sim);
}

/// Sweep seed 7,216,316 (20 rounds), in miniature: an old owner pushes a
/// shard, the new owner inserts it, but the acknowledgement is lost; the
/// new owner goes on through later configurations, leaves and is retired
/// while the old owner is still cut off from it. Once the links are back,
/// the old owner's next push reaches only hosts that retired the new
/// owner: they acknowledge it themselves (the retired group had gone past
/// that configuration, so it had the shard). Without that, the old owner
/// pushes to nobody for ever: it never deletes the shard, never reaches
/// the latest configuration, and is never retired.
#[test]
fn a_push_to_a_group_retired_since_is_acknowledged_by_the_hosts_that_retired_it() {
    use distribkv_core::sim::network::Endpoint;
    let mut config = ShardedConfig::small(35);
    // Disjoint hosts: the old owner 101 on 4–6, the new owner 100 on 1–3,
    // 102 and the controller on 7–9.
    config.hosts = 9;
    config.host.controller = vec![7, 8, 9];
    config.host.groups = [
        (100, vec![1, 2, 3]),
        (101, vec![4, 5, 6]),
        (102, vec![7, 8, 9]),
    ]
    .into_iter()
    .collect();
    config.host.retire_after_ms = 500;
    config.clients = 3;
    let mut sim = ShardedSim::new(config).unwrap();
    assert_eq!(sim.join(&[100, 101]), Ok(ControllerReply::Done));
    sim.start_workload();
    assert!(sim.run_until(10_000, |s| s.is_settled()));
    let moving = sim.held_shards()[&101].clone();
    assert!(!moving.is_empty());
    // Nothing from 100's hosts reaches 101's: pushes arrive, acks do not.
    let cut = |sim: &mut ShardedSim, on: bool| {
        for a in 1..=3 {
            for b in 4..=6 {
                let (a, b) = (Endpoint::Node(a), Endpoint::Node(b));
                if on {
                    sim.network_mut().cut_link(a, b);
                } else {
                    sim.network_mut().restore_link(a, b);
                }
            }
        }
    };
    cut(&mut sim, true);
    assert_eq!(sim.leave(&[101]), Ok(ControllerReply::Done));
    assert!(
        sim.run_until(10_000, |s| {
            let held = s.held_shards();
            moving.iter().all(|shard| held[&100].contains(shard))
        }),
        "100 inserted 101's shards"
    );
    assert!(
        moving.is_subset(&sim.held_shards()[&101]),
        "101 heard no ack"
    );
    // 100 moves on, leaves and is retired; 101 still waits for its acks.
    assert_eq!(sim.join(&[102]), Ok(ControllerReply::Done));
    assert_eq!(sim.leave(&[100]), Ok(ControllerReply::Done));
    assert!(
        sim.run_until(20_000, |s| s.is_retired(100)
            && s.replicas_of(100).is_empty()),
        "100 retired"
    );
    assert!(!sim.held_shards()[&101].is_empty(), "101 still sending");
    cut(&mut sim, false);
    assert!(
        sim.run_until(20_000, |s| s.is_retired(101)
            && s.replicas_of(101).is_empty()),
        "101 never finished its handoff: it holds {:?}",
        sim.held_shards().get(&101)
    );
    sim.stop_workload();
    assert!(sim.run_until(10_000, |s| !s.workload_pending()));
    assert_eq!(sim.held_shards()[&102].len(), 10, "102 serves every shard");
    assert_clean(&mut sim);
    assert!(sim.is_settled());
}
