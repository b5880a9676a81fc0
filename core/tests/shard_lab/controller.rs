//! The 6.5840 shard controller tests, against the replicated controller
//! group (the state machine alone is tested in `shard::controller`).

use std::collections::BTreeMap;

use distribkv_core::shard::{ControllerError, ControllerOp, ControllerReply};
use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};

use crate::assert_clean;

fn query_num(sim: &mut ShardedSim, num: u64) -> distribkv_core::shard::ShardConfig {
    match sim.controller(ControllerOp::Query(Some(num))) {
        Ok(ControllerReply::Config(c)) => c,
        other => panic!("query {num}: {other:?}"),
    }
}

#[test]
fn controller_history_survives_leader_crashes() {
    let mut sim = ShardedSim::new(ShardedConfig::lab(31)).unwrap();
    sim.join(&[100]).unwrap();
    sim.join(&[101, 102]).unwrap();
    sim.leave(&[100]).unwrap();
    let history: Vec<_> = (0..=3).map(|n| query_num(&mut sim, n)).collect();
    for round in 0..3 {
        let leader = sim.leader_of(0).expect("a controller leader");
        sim.crash(leader);
        let g = 100;
        if round % 2 == 0 {
            assert_eq!(sim.join(&[g]), Ok(ControllerReply::Done));
        } else {
            assert_eq!(sim.leave(&[g]), Ok(ControllerReply::Done));
        }
        sim.restart(leader);
        for c in &history {
            assert_eq!(
                &query_num(&mut sim, c.num),
                c,
                "configuration {} changed",
                c.num
            );
        }
    }
    let latest = sim.query().unwrap();
    assert_eq!(latest.num, 6);
    // Every controller replica holds the same history.
    sim.run_for(1_000);
    let history: Vec<_> = (0..=6).map(|n| query_num(&mut sim, n)).collect();
    for host in 1..=3 {
        let controller = sim.host(host).unwrap().controller().unwrap();
        for c in &history {
            assert_eq!(
                controller.config(c.num),
                Some(c),
                "host {host}, configuration {}",
                c.num
            );
        }
    }
    assert_clean(&mut sim);
}

#[test]
fn concurrent_controller_clients_are_served_exactly_once() {
    // Ten clients each join their own group and leave it again, their
    // requests delivered twice and to several controller servers at once.
    let mut config = ShardedConfig::lab(32);
    config.network.duplicate_rate = 0.2;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.run_for(1_000);
    // A group that stays, as the last group cannot leave (6.5840's
    // controller lets it, leaving the shards with no owner).
    let stays = BTreeMap::from([(1000, vec![1, 2, 3])]);
    assert_eq!(
        sim.controller(ControllerOp::Join(stays)),
        Ok(ControllerReply::Done)
    );
    for step in 0..2u64 {
        for client in 1..=10u64 {
            let group = 1000 + client;
            let op = if step == 0 {
                ControllerOp::Join(BTreeMap::from([(group, vec![1, 2, 3])]))
            } else {
                ControllerOp::Leave(vec![group])
            };
            for host in 1..=3 {
                sim.inject_request(
                    host,
                    distribkv_core::shard::host::HostRequest::Controller {
                        id: 0,
                        client,
                        seq: step + 1,
                        op: op.clone(),
                    },
                );
            }
        }
        // Retries, as clients whose answers were lost.
        sim.run_for(500);
        for client in 1..=10u64 {
            let leader = sim.leader_of(0).unwrap();
            let group = 1000 + client;
            let op = if step == 0 {
                ControllerOp::Join(BTreeMap::from([(group, vec![1, 2, 3])]))
            } else {
                ControllerOp::Leave(vec![group])
            };
            sim.inject_request(
                leader,
                distribkv_core::shard::host::HostRequest::Controller {
                    id: 0,
                    client,
                    seq: step + 1,
                    op,
                },
            );
        }
        sim.run_for(500);
        let latest = sim.query().unwrap();
        assert_eq!(
            latest.num,
            1 + 10 * (step + 1),
            "one configuration per request"
        );
        let load = latest.load();
        if let (Some(min), Some(max)) = (load.values().min(), load.values().max()) {
            assert!(max - min <= 1, "{load:?}");
        }
    }
    let latest = sim.query().unwrap();
    assert_eq!(latest.groups.keys().copied().collect::<Vec<_>>(), [1000]);
    assert!(latest.shards.iter().all(|g| *g == 1000));
    // Nor can it leave now.
    assert_eq!(
        sim.controller(ControllerOp::Leave(vec![1000])),
        Ok(ControllerReply::Refused(ControllerError::LastGroup(1000)))
    );
    assert_eq!(sim.query().unwrap(), latest);
    assert_clean(&mut sim);
}
