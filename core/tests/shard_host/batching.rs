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

/// `Node::drain_outputs` and `Host::drain_outputs` give exactly what
/// `poll_output` until `None` gives, in the same order (checked on clones
/// of the same host and node, mid-run with writes, batches and replies
/// pending), and leave nothing behind.
#[test]
fn draining_at_once_equals_polling_one_by_one() {
    use std::collections::VecDeque;
    let mut mesh = Mesh::new(configs(3, 4, 10), 5).unwrap();
    mesh.run_until(Instant(3_000));
    let leader = mesh.hosts[&1].node(1).unwrap().leader().unwrap();
    let now = mesh.now();
    let host = mesh.hosts.get_mut(&leader).unwrap();
    for group in 1..=4u64 {
        let request = HostRequest::Kv {
            id: group,
            group,
            client: 9,
            seq: group,
            op: Operation::Put {
                key: Bytes::from(format!("k{group}")),
                value: Bytes::from_static(b"v"),
            },
        };
        host.handle(now, HostInput::Client { from: 1, request })
            .unwrap();
    }
    // A node with a proposal staged (its write, AppendEntries, perhaps a
    // rejected-elsewhere reply), cloned before anything is drained.
    let mut node = host.node(1).unwrap().clone();
    if node.is_leader() {
        node.handle(
            now,
            distribkv_core::raft::Input::Propose(Bytes::from_static(b"x")),
        )
        .unwrap();
    }
    let mut polled_node = node.clone();
    let mut one_by_one = Vec::new();
    while let Some(output) = polled_node.poll_output() {
        one_by_one.push(output);
    }
    let mut at_once = VecDeque::new();
    node.drain_outputs(&mut at_once);
    assert_eq!(Vec::from(at_once), one_by_one);
    assert_eq!(node.poll_output(), None);

    let mut polled_host = host.clone();
    let mut one_by_one = Vec::new();
    while let Some(output) = polled_host.poll_output() {
        one_by_one.push(output);
    }
    assert!(!one_by_one.is_empty(), "the proposals produced outputs");
    let mut at_once = VecDeque::new();
    host.drain_outputs(&mut at_once);
    assert_eq!(Vec::from(at_once), one_by_one);
    assert_eq!(host.poll_output(), None);
}
