//! Idle groups hibernate, and wake on a proposal or a silent peer; every
//! check stays green with hibernation under faults.

use crate::{ask, configs};

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::shard::host::{HostConfig, HostInput, HostReply, HostRequest};
use distribkv_core::sim::sharded::{Mesh, ShardedConfig, ShardedSim};
use distribkv_core::time::Instant;

fn hibernating_configs(hosts: u64, groups: u64) -> Vec<HostConfig> {
    let mut configs = configs(hosts, groups, 50);
    for c in &mut configs {
        c.hibernate_after_ms = 300;
    }
    configs
}

#[test]
fn a_hibernation_delay_no_clock_reaches_means_never() {
    let mut configs = configs(3, 2, 50);
    for c in &mut configs {
        c.hibernate_after_ms = u64::MAX;
    }
    let mut mesh = Mesh::new(configs, 4).unwrap();
    mesh.run_until(Instant(5_000));
    for (id, host) in &mesh.hosts {
        for g in 0..=2 {
            assert!(!host.is_hibernating(g), "host {id} group {g} hibernates");
        }
    }
}

#[test]
fn idle_groups_hibernate_wake_on_a_proposal_and_on_a_silent_peer() {
    let mut mesh = Mesh::new(hibernating_configs(3, 50), 4).unwrap();
    mesh.run_until(Instant(5_000));
    for (id, host) in &mesh.hosts {
        for g in 0..=50 {
            assert!(host.is_hibernating(g), "host {id} group {g} still awake");
        }
    }
    // At rest, no Raft message at all: hosts exchange `Alive` (one per
    // host pair and direction per heartbeat interval) and poll the
    // controller once per poll interval.
    let (batches, raft) = (mesh.total_batches(), mesh.raft_messages);
    mesh.run_until(Instant(15_000));
    let batches_per_second = (mesh.total_batches() - batches) as f64 / 10.0;
    assert_eq!(mesh.raft_messages, raft, "Raft messages while hibernating");
    assert!(
        batches_per_second <= 6.0 * 20.0 + 3.0 * 10.0,
        "{batches_per_second} batches/s"
    );
    // A proposal wakes its group, and commits.
    let leader = mesh.hosts[&1].node(7).unwrap().leader().unwrap();
    let request = HostRequest::Kv {
        id: 1,
        group: 7,
        client: 3,
        seq: 1,
        op: Operation::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
        },
    };
    let before = mesh.hosts[&leader].node(7).unwrap().log().commit();
    mesh.feed(leader, HostInput::Client { from: 1, request });
    mesh.deliver();
    let now = mesh.now();
    mesh.run_until(Instant(now.as_millis() + 100));
    assert!(mesh.hosts[&leader].node(7).unwrap().log().commit() > before);
    // A follower read at a sleeping follower wakes its group and gets its
    // read index from the sleeping leader: it is answered (the group owns
    // no shard yet, so "wrong group", checked at the read index).
    assert!(mesh.hosts[&1].is_hibernating(9));
    let leader = mesh.hosts[&1].node(9).unwrap().leader().unwrap();
    let follower = (1..=3).find(|h| *h != leader).unwrap();
    let read = HostRequest::FollowerRead {
        id: 2,
        group: 9,
        key: Bytes::from_static(b"k"),
    };
    assert_eq!(
        ask(&mut mesh, follower, read),
        HostReply::Kv {
            id: 2,
            result: Err(distribkv_core::shard::group::KvError::WrongGroup)
        }
    );
    // A host goes silent: the groups it led wake on the other hosts
    // (suspected failure) and elect new leaders.
    let led_by_3: Vec<u64> = (1..=50)
        .filter(|g| mesh.hosts[&1].node(*g).unwrap().leader() == Some(3))
        .collect();
    assert!(!led_by_3.is_empty());
    mesh.hosts.remove(&3);
    let now = mesh.now();
    mesh.run_until(Instant(now.as_millis() + 3_000));
    for g in led_by_3 {
        let leaders: Vec<_> = [1, 2]
            .iter()
            .filter(|h| mesh.hosts[h].node(g).unwrap().is_leader())
            .collect();
        assert_eq!(leaders.len(), 1, "group {g} has a new leader");
    }
    assert!(mesh.hosts[&1].stats().suspicions > 0);
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}

#[test]
fn hibernation_under_faults_keeps_every_check_green() {
    // With the workload's gets at the leaders, then at any replica.
    for follower_reads in [false, true] {
        hibernation_under_faults(follower_reads);
    }
}

fn hibernation_under_faults(follower_reads: bool) {
    let mut config = ShardedConfig::small(41);
    config.host.hibernate_after_ms = 300;
    config.network.drop_rate = 0.05;
    config.follower_reads = follower_reads;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    // Idle long enough to hibernate, then work, crash, move, idle again.
    sim.run_for(3_000);
    let (slept, _, _) = sim.hibernation_counts();
    assert!(slept > 0, "nothing hibernated");
    sim.start_workload();
    sim.run_for(1_000);
    sim.crash(1);
    sim.join(&[101, 102]).unwrap();
    sim.run_for(2_000);
    sim.restart(1);
    sim.stop_workload();
    assert!(sim.run_until(20_000, |s| !s.workload_pending()));
    assert!(sim.run_until(20_000, |s| s.is_settled()));
    sim.run_for(3_000);
    let (slept, woke, _) = sim.hibernation_counts();
    assert!(slept > 0 && woke > 0, "hibernations {slept}, wakes {woke}");
    sim.network_mut().config.drop_rate = 0.0;
    let violations = sim.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    let failures = sim.check_history();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        sim.follower_reads_served() > 0,
        follower_reads,
        "reads served by followers: {}",
        sim.follower_reads_served()
    );
}
