//! The multi-group host: one write per step for all groups, one batch per
//! destination per step, coalesced heartbeats, and robustness against
//! malformed multi-group input.
#![cfg(feature = "sim")]

use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::raft::{Envelope, Heartbeat, Message, PersistedState};
use distribkv_core::shard::host::{
    Host, HostBatch, HostConfig, HostError, HostInput, HostMessage, HostRejected, HostReply,
    HostRequest,
};
use distribkv_core::shard::{ControllerOp, ShardConfig};
use distribkv_core::sim::sharded::{Mesh, ShardedConfig, ShardedSim};
use distribkv_core::time::Instant;
use proptest::prelude::*;

/// `hosts` hosts, each holding a replica of each of `groups` groups (ids
/// 1..=groups), the controller on the first three (or all, if fewer).
fn configs(hosts: u64, groups: u64, tick: u64) -> Vec<HostConfig> {
    let servers: Vec<u64> = (1..=hosts).collect();
    let controller: Vec<u64> = servers.iter().copied().take(3).collect();
    servers
        .iter()
        .map(|id| {
            let mut c = HostConfig::new(*id, 10, controller.clone());
            c.groups = (1..=groups).map(|g| (g, servers.clone())).collect();
            c.tick_ms = tick;
            c.raft.heartbeat_interval = 50;
            c
        })
        .collect()
}

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

#[test]
fn bad_host_configurations_are_refused() {
    let mut c = HostConfig::new(1, 10, vec![1]);
    c.groups = BTreeMap::from([(0, vec![1])]);
    assert_eq!(
        Host::new(c, 1, Instant::ZERO).err(),
        Some(HostError::ReservedGroup)
    );
    let mut c = HostConfig::new(1, 10, vec![1]);
    c.groups = BTreeMap::from([(5, vec![2, 3])]);
    assert_eq!(
        Host::new(c, 1, Instant::ZERO).err(),
        Some(HostError::NotAMember(5))
    );
    for shards in [0, u32::MAX] {
        let c = HostConfig::new(1, shards, vec![1]);
        assert_eq!(
            Host::new(c, 1, Instant::ZERO).err(),
            Some(HostError::Timing)
        );
    }
    let mut c = HostConfig::new(1, 10, vec![1]);
    c.raft.lease_reads = true;
    assert_eq!(
        Host::new(c, 1, Instant::ZERO).err(),
        Some(HostError::LeaseReads)
    );
    // A corrupt snapshot on disk is an error, not a panic.
    let mut c = HostConfig::new(1, 10, vec![1]);
    c.groups = BTreeMap::from([(5, vec![1])]);
    let state = PersistedState {
        snapshot: Some(distribkv_core::raft::Snapshot {
            meta: distribkv_core::raft::SnapshotMeta {
                index: 3,
                term: 1,
                membership: distribkv_core::raft::Membership::with_voters([1]),
            },
            data: Bytes::from_static(b"garbage"),
        }),
        ..PersistedState::default()
    };
    let persisted = BTreeMap::from([(5, state)]);
    assert!(matches!(
        Host::restart(c, 1, Instant::ZERO, persisted),
        Err(HostError::Snapshot(5, _))
    ));
}

#[test]
fn driver_misuse_and_stray_requests_get_errors_not_panics() {
    let mut c = HostConfig::new(1, 10, vec![2, 3, 4]);
    c.groups = BTreeMap::from([(5, vec![1, 2, 3])]);
    let mut host = Host::new(c, 1, Instant::ZERO).unwrap();
    assert_eq!(
        host.handle(Instant(1), HostInput::Persisted(99)),
        Err(HostRejected::UnknownWrite { seq: 99, last: 0 })
    );
    let requests = [
        // Not a controller server.
        HostRequest::Controller {
            id: 1,
            client: 1,
            seq: 1,
            op: ControllerOp::Query(None),
        },
        // A group not hosted here.
        HostRequest::Kv {
            id: 2,
            group: 77,
            client: 1,
            seq: 1,
            op: Operation::Get {
                key: Bytes::from_static(b"k"),
            },
        },
        // Group 0 is the controller.
        HostRequest::Kv {
            id: 3,
            group: 0,
            client: 1,
            seq: 1,
            op: Operation::Get {
                key: Bytes::from_static(b"k"),
            },
        },
        // Too large.
        HostRequest::Kv {
            id: 4,
            group: 5,
            client: 1,
            seq: 1,
            op: Operation::Put {
                key: Bytes::from(vec![b'k'; 5000]),
                value: Bytes::new(),
            },
        },
        // Not the leader (no election yet).
        HostRequest::Kv {
            id: 5,
            group: 5,
            client: 1,
            seq: 1,
            op: Operation::Get {
                key: Bytes::from_static(b"k"),
            },
        },
    ];
    let mut answered = 0;
    for request in requests {
        host.handle(Instant(2), HostInput::Client { from: 9, request })
            .unwrap();
        while let Some(output) = host.poll_output() {
            if let distribkv_core::shard::host::HostOutput::Reply { to, reply } = output {
                assert_eq!(to, 9);
                assert!(
                    matches!(
                        reply,
                        HostReply::Controller { result: Err(_), .. }
                            | HostReply::Kv { result: Err(_), .. }
                    ),
                    "{reply:?}"
                );
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 5, "every stray request is answered with an error");
}

/// Messages a faulty network or a confused peer could deliver: Raft
/// messages for unknown groups or with addresses that disagree with their
/// batch, configuration queries and replies for configurations that do not
/// come next, shard pushes whose data does not decode, acknowledgements of
/// shards in any state. (Well-addressed Raft messages with forged content,
/// or forged shard data, are Byzantine input, outside Raft's fault model;
/// a lone host is fed those below, for panics only.)
fn stray_message() -> impl Strategy<Value = HostMessage> {
    let group = prop_oneof![Just(0u64), Just(100), Just(101), Just(102), any::<u64>()];
    let bytes = proptest::collection::vec(any::<u8>(), 0..64).prop_map(|mut v| {
        // A count larger than what follows: never decodes.
        v.splice(0..0, [0xff, 0xff, 0x03]);
        Bytes::from(v)
    });
    prop_oneof![
        (200u64..300, any::<u64>(), any::<u64>()).prop_map(|(group, term, commit)| {
            HostMessage::Raft {
                group,
                envelope: Envelope {
                    from: 1,
                    to: 2,
                    message: Message::Heartbeat(Heartbeat {
                        term,
                        commit,
                        round: 0,
                    }),
                },
            }
        }),
        (group.clone(), any::<u64>())
            .prop_map(|(group, num)| HostMessage::ConfigQuery { group, num }),
        (
            group.clone(),
            1000u64..,
            proptest::collection::vec(any::<u64>(), 0..12)
        )
            .prop_map(|(group, num, shards)| HostMessage::ConfigReply {
                group,
                config: ShardConfig {
                    num,
                    shards,
                    groups: BTreeMap::new(),
                },
            }),
        (group.clone(), group.clone(), 0u64..6, any::<u32>(), bytes).prop_map(
            |(from_group, to_group, config_num, shard, data)| HostMessage::ShardPush {
                from_group,
                to_group,
                config_num,
                shard: shard % 12,
                data,
            }
        ),
        (group, 0u64..6, 0u32..12).prop_map(|(group, config_num, shard)| HostMessage::ShardAck {
            group,
            config_num,
            shard,
        }),
    ]
}

/// Anything at all, well-addressed Raft messages with random terms and
/// commit indexes and random shard data included.
fn any_message() -> impl Strategy<Value = HostMessage> {
    let raft =
        (0u64..4, 0u64..5, any::<u64>(), any::<u64>()).prop_map(|(group, from, term, commit)| {
            HostMessage::Raft {
                group,
                envelope: Envelope {
                    from,
                    to: 1,
                    message: Message::Heartbeat(Heartbeat {
                        term,
                        commit,
                        round: term,
                    }),
                },
            }
        });
    let push = (
        0u64..4,
        0u64..4,
        0u64..4,
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(
            |(from_group, to_group, config_num, shard, data)| HostMessage::ShardPush {
                from_group,
                to_group,
                config_num,
                shard,
                data: Bytes::from(data),
            },
        );
    let reply = (0u64..4, 0u64..4, proptest::collection::vec(0u64..5, 0..12)).prop_map(
        |(group, num, shards)| HostMessage::ConfigReply {
            group,
            config: ShardConfig {
                num,
                shards,
                groups: BTreeMap::from([(1, vec![1, 2])]),
            },
        },
    );
    prop_oneof![raft, push, reply, stray_message()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Stray multi-group batches injected into a running sharded cluster:
    /// no panic, no safety violation, and the service still works and
    /// stays linearizable with appends applied exactly once.
    #[test]
    fn stray_multi_group_batches_are_harmless(
        batches in proptest::collection::vec(
            (1u64..=12, 1u64..=12, proptest::collection::vec(stray_message(), 1..6)),
            1..40,
        )
    ) {
        let mut sim = ShardedSim::new(ShardedConfig::lab(9)).unwrap();
        sim.join(&[100, 101]).unwrap();
        sim.start_workload();
        for (from, to, messages) in batches {
            sim.inject(HostBatch { from, to, messages });
            sim.run_for(20);
        }
        sim.stop_workload();
        prop_assert!(sim.run_until(10_000, |s| !s.workload_pending()));
        prop_assert_eq!(sim.put("after", "x"), Ok(None));
        let violations = sim.violations();
        prop_assert!(violations.is_empty(), "{:?}", violations);
        let failures = sim.check_history();
        prop_assert!(failures.is_empty(), "{:?}", failures);
    }

    /// A lone host (controller and three groups) fed arbitrary batches
    /// between its own timer steps never panics, and counts what it drops.
    #[test]
    fn a_host_never_panics_on_arbitrary_batches(
        batches in proptest::collection::vec(
            (0u64..5, 0u64..3, proptest::collection::vec(any_message(), 1..8)),
            1..60,
        )
    ) {
        let mut config = HostConfig::new(1, 4, vec![1, 2]);
        config.groups = (1..=3).map(|g| (g, vec![1, 2])).collect();
        let mut host = Host::new(config, 5, Instant::ZERO).unwrap();
        let mut now = 0;
        let mut sent = 0;
        for (from, to, messages) in batches {
            now += 37;
            host.handle(Instant(now), HostInput::Timeout).unwrap();
            sent += messages.len() as u64;
            host.handle(Instant(now), HostInput::Batch(HostBatch { from, to, messages })).unwrap();
            while let Some(output) = host.poll_output() {
                if let distribkv_core::shard::host::HostOutput::Persist(write) = output {
                    host.handle(Instant(now), HostInput::Persisted(write.seq)).unwrap();
                }
            }
        }
        let stats = host.stats();
        prop_assert!(stats.messages_received <= sent);
    }
}

fn hibernating_configs(hosts: u64, groups: u64) -> Vec<HostConfig> {
    let mut configs = configs(hosts, groups, 50);
    for c in &mut configs {
        c.hibernate_after_ms = 300;
    }
    configs
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
    let mut config = ShardedConfig::small(41);
    config.host.hibernate_after_ms = 300;
    config.network.drop_rate = 0.05;
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
}

/// A shard push goes to one server of the new owner per poll round (the
/// one believed to lead it, the next one after an unanswered round), not
/// to all of them: with nothing failing, every shard of a move is pushed
/// at most once per server of the new owner, and the new owner's leader
/// acknowledges as soon as the insertion is applied.
#[test]
fn a_shard_push_goes_to_one_server_of_the_new_owner() {
    let mut sim = ShardedSim::new(ShardedConfig::lab(5)).unwrap();
    sim.join(&[100]).unwrap();
    for i in 0..20 {
        assert_eq!(sim.put(&format!("key{i}"), "v"), Ok(None));
    }
    sim.enable_trace();
    sim.join(&[101]).unwrap();
    assert!(sim.run_until(10_000, |s| s.is_settled()), "the move ends");
    let trace = sim.take_trace();
    let pushes: Vec<&String> = trace
        .iter()
        .filter(|l| l.contains(": push shard"))
        .collect();
    assert!(!pushes.is_empty(), "shards moved");
    let mut rounds: BTreeMap<(String, String), std::collections::BTreeSet<String>> =
        BTreeMap::new();
    let mut per_shard: BTreeMap<String, usize> = BTreeMap::new();
    for line in &pushes {
        // "t=711 5 -> 8: push shard 6 of config 2, group 100 to 101 (25 bytes)"
        let (time, rest) = line.split_once(' ').unwrap();
        let (route, what) = rest.split_once(": ").unwrap();
        let to = route.split(" -> ").nth(1).unwrap().to_string();
        let shard = what.split(" of ").next().unwrap().to_string();
        rounds
            .entry((time.to_string(), shard.clone()))
            .or_default()
            .insert(to);
        *per_shard.entry(shard).or_default() += 1;
    }
    for ((time, shard), to) in &rounds {
        assert_eq!(to.len(), 1, "{shard} pushed at {time} to {to:?}");
    }
    for (shard, count) in &per_shard {
        assert!(*count <= 3, "{shard} pushed {count} times:\n{trace:#?}");
    }
    assert!(trace.iter().any(|l| l.contains(": ack shard")));
    assert!(sim.violations().is_empty());
}

/// Runs the mesh until a reply to request `id` comes out of host `to`
/// (fed at once, then delivered and timed for at most 5 s of virtual time).
fn ask(mesh: &mut Mesh, to: u64, request: HostRequest) -> HostReply {
    let id = request.id();
    let reply_id = |r: &HostReply| match r {
        HostReply::Controller { id, .. } | HostReply::Kv { id, .. } => *id,
    };
    let mut replies = mesh.feed(to, HostInput::Client { from: 1, request });
    let deadline = mesh.now().as_millis() + 5_000;
    loop {
        if let Some(reply) = replies.iter().find(|r| reply_id(r) == id) {
            return reply.clone();
        }
        if let Some(at) = mesh
            .late_replies
            .iter()
            .position(|(host, r)| *host == to && reply_id(r) == id)
        {
            return mesh.late_replies.remove(at).1;
        }
        assert!(mesh.now().as_millis() < deadline, "no reply to #{id}");
        let next = Instant(mesh.now().as_millis() + 10);
        mesh.run_until(next);
        replies.clear();
    }
}

/// The host among `candidates` that leads `group` (after an election if needed).
fn leader_among(mesh: &mut Mesh, group: u64, candidates: &[u64]) -> u64 {
    for _ in 0..500 {
        if let Some(id) = candidates
            .iter()
            .copied()
            .find(|id| mesh.hosts[id].node(group).is_some_and(|n| n.is_leader()))
        {
            return id;
        }
        let next = Instant(mesh.now().as_millis() + 10);
        mesh.run_until(next);
    }
    panic!("no leader of group {group} among {candidates:?}");
}

/// Follower reads ([`HostRequest::FollowerRead`]) check ownership on the
/// state at the read index, never on a stale one: a replica cut off while
/// its group handed a shard over still holds that shard as serving, with
/// its old value; asked for a follower read once it hears its leader
/// again, it answers "wrong group" (the key now lives in another group),
/// not the stale value. A current follower serves the read itself.
#[test]
fn a_follower_read_checks_ownership_at_the_read_index() {
    let mut configs = configs(3, 2, 10);
    // Host 3 never campaigns, so it stays a follower that keeps its
    // leader while cut off.
    configs[2].raft.election_timeout_min = 60_000;
    configs[2].raft.election_timeout_max = 70_000;
    let mut mesh = Mesh::new(configs, 17).unwrap();
    mesh.run_until(Instant(2_000));
    let controller = leader_among(&mut mesh, 0, &[1, 2]);
    let join = |id, group| HostRequest::Controller {
        id,
        client: 5,
        seq: id,
        op: ControllerOp::Join(BTreeMap::from([(group, vec![1, 2, 3])])),
    };
    let done = |reply: &HostReply| {
        matches!(
            reply,
            HostReply::Controller { result: Ok(_), .. } | HostReply::Kv { result: Ok(_), .. }
        )
    };
    assert!(done(&ask(&mut mesh, controller, join(1, 1))));
    mesh.run_until(Instant(mesh.now().as_millis() + 1_000));
    let key = Bytes::from_static(b"k");
    let leader = leader_among(&mut mesh, 1, &[1, 2]);
    let put = |id, group, seq, value: &'static [u8]| HostRequest::Kv {
        id,
        group,
        client: 7,
        seq,
        op: Operation::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(value),
        },
    };
    assert!(done(&ask(&mut mesh, leader, put(2, 1, 1, b"old"))));
    mesh.run_until(Instant(mesh.now().as_millis() + 500));
    assert_eq!(
        mesh.hosts[&3].kv(1).unwrap().read(&key),
        Ok(Some(Bytes::from_static(b"old")))
    );

    // Host 3 is cut off; group 2 joins and the key's shard moves to it.
    mesh.isolated.insert(3);
    let controller = leader_among(&mut mesh, 0, &[1, 2]);
    assert!(done(&ask(&mut mesh, controller, join(3, 2))));
    let shard = distribkv_core::shard::shard_of(&key, 10);
    let moved = HostRequest::Controller {
        id: 4,
        client: 5,
        seq: 4,
        op: ControllerOp::Move { shard, group: 2 },
    };
    let controller = leader_among(&mut mesh, 0, &[1, 2]);
    assert!(done(&ask(&mut mesh, controller, moved)));
    mesh.run_until(Instant(mesh.now().as_millis() + 3_000));
    let owner = leader_among(&mut mesh, 2, &[1, 2]);
    assert!(done(&ask(&mut mesh, owner, put(5, 2, 2, b"new"))));
    let leader = leader_among(&mut mesh, 1, &[1, 2]);
    assert!(!mesh.hosts[&leader].kv(1).unwrap().serves(&key));
    // Host 3's replica of group 1 is stale: it still serves the old value.
    assert_eq!(
        mesh.hosts[&3].kv(1).unwrap().read(&key),
        Ok(Some(Bytes::from_static(b"old")))
    );
    assert_eq!(mesh.hosts[&3].node(1).unwrap().leader(), Some(leader));

    // Back in touch: its follower read waits for the read index, and the
    // shard is no longer group 1's there.
    mesh.isolated.clear();
    let read = |id, group| HostRequest::FollowerRead {
        id,
        group,
        key: Bytes::from_static(b"k"),
    };
    let reply = ask(&mut mesh, 3, read(6, 1));
    assert_eq!(
        reply,
        HostReply::Kv {
            id: 6,
            result: Err(distribkv_core::shard::group::KvError::WrongGroup)
        }
    );
    // The owner's followers serve it, with the value written there.
    mesh.run_until(Instant(mesh.now().as_millis() + 500));
    let follower = [1, 2, 3]
        .into_iter()
        .find(|h| !mesh.hosts[h].node(2).unwrap().is_leader())
        .unwrap();
    let before = mesh.hosts[&follower].stats().follower_reads_served;
    let reply = ask(&mut mesh, follower, read(7, 2));
    assert_eq!(
        reply,
        HostReply::Kv {
            id: 7,
            result: Ok(Some(Bytes::from_static(b"new")))
        }
    );
    assert_eq!(
        mesh.hosts[&follower].stats().follower_reads_served,
        before + 1
    );
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}
