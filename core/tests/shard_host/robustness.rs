//! Bad configurations, driver misuse and stray requests get errors, not
//! panics; stray and arbitrary multi-group batches are harmless.

use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::raft::{Envelope, Heartbeat, Message, PersistedState};
use distribkv_core::shard::host::{
    Host, HostBatch, HostConfig, HostError, HostInput, HostMessage, HostRejected, HostReply,
    HostRequest,
};
use distribkv_core::shard::{ControllerOp, ShardConfig};
use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};
use distribkv_core::time::Instant;
use proptest::prelude::*;

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
