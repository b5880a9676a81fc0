//! One write per step for all groups, one batch per destination per step,
//! and heartbeats coalesced across groups.

use crate::configs;
use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::shard::host::{HostInput, HostRequest};
use distribkv_core::sim::sharded::Mesh;
use distribkv_core::time::Instant;

#[test]
fn one_write_and_one_batch_per_destination_per_step() {
    let mut mesh = Mesh::new(configs(3, 16, 10), 1).unwrap();
    mesh.run_until(Instant(3_000));
    for (id, host) in &mesh.hosts {
        let leaders = host.nodes().filter(|(_, n)| n.leader().is_some()).count();
        assert_eq!(
            leaders, 17,
            "host {id}: every group (and the controller) has a leader"
        );
    }
    // One client write to each of the 16 groups, fed to their leaders
    // (each leader host takes its requests in one go).
    let mut by_leader: BTreeMap<u64, Vec<HostInput>> = BTreeMap::new();
    for group in 1..=16u64 {
        let leader = mesh.hosts[&1].node(group).unwrap().leader().unwrap();
        let request = HostRequest::Kv {
            id: group,
            group,
            client: 7,
            seq: group,
            op: Operation::Put {
                key: Bytes::from(format!("k{group}")),
                value: Bytes::from_static(b"v"),
            },
        };
        by_leader
            .entry(leader)
            .or_default()
            .push(HostInput::Client { from: 1, request });
    }
    for (leader, inputs) in by_leader {
        mesh.feed_many(leader, inputs);
    }
    mesh.run_until(Instant(4_000));
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
    // Followers got the entries of several groups in one batch and made
    // them durable in one write.
    assert!(
        mesh.widest_write >= 4,
        "widest write carried {} groups",
        mesh.widest_write
    );
}

/// Batches per virtual second between two hosts at rest.
fn idle_batches_per_second(groups: u64, tick: u64) -> f64 {
    let mut mesh = Mesh::new(configs(2, groups, tick), 3).unwrap();
    mesh.run_until(Instant(5_000));
    let before = mesh.total_batches();
    mesh.run_until(Instant(15_000));
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
    (mesh.total_batches() - before) as f64 / 10.0
}

#[test]
fn heartbeats_are_coalesced_across_groups() {
    // With the tick equal to the heartbeat interval, every group's
    // heartbeats leave together: the number of batches between two hosts
    // at rest hardly depends on the number of groups.
    let one = idle_batches_per_second(1, 50);
    let hundred = idle_batches_per_second(100, 50);
    assert!(one > 0.0);
    assert!(
        hundred <= 2.0 * one,
        "1 group: {one}/s, 100 groups: {hundred}/s"
    );
}
