//! Bad, stale, duplicate and random peer input never panics a node: it is
//! dropped and counted. Driver misuse gets an error, not a panic.

use bytes::Bytes;
use distribkv_core::raft::{
    AppendEntries, AppendEntriesResponse, Config, ConflictHint, Entry, Envelope, Heartbeat,
    HeartbeatResponse, Input, InstallSnapshot, InstallSnapshotResponse, Membership, Message, Node,
    Payload, Rejected, RequestVote, RequestVoteResponse, SnapshotMeta, TimeoutNow,
};
use distribkv_core::time::Instant;
use proptest::prelude::*;

fn small() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..6, Just(u64::MAX), Just(u64::MAX - 1), 0u64..1000]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec((small(), small(), prop::bool::ANY), 0..6).prop_map(|raw| {
        raw.into_iter()
            .map(|(index, term, noop)| Entry {
                index,
                term,
                payload: if noop {
                    Payload::Noop
                } else {
                    Payload::Command(Bytes::from_static(b"x"))
                },
            })
            .collect()
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (small(), small(), small(), any::<bool>(), any::<bool>()).prop_map(
            |(term, i, t, pre_vote, transfer)| {
                Message::RequestVote(RequestVote {
                    term,
                    last_log_index: i,
                    last_log_term: t,
                    pre_vote,
                    transfer,
                })
            }
        ),
        (small(), any::<bool>(), any::<bool>()).prop_map(|(term, granted, pre_vote)| {
            Message::RequestVoteResponse(RequestVoteResponse {
                term,
                granted,
                pre_vote,
            })
        }),
        (small(), small(), small(), entries(), small()).prop_map(
            |(term, prev, prev_term, entries, commit)| {
                Message::AppendEntries(AppendEntries {
                    term,
                    prev_log_index: prev,
                    prev_log_term: prev_term,
                    entries,
                    leader_commit: commit,
                })
            }
        ),
        (
            small(),
            small(),
            any::<bool>(),
            prop::option::of((small(), small()))
        )
            .prop_map(|(term, index, success, hint)| {
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    term,
                    index,
                    success,
                    conflict: hint.map(|(index, term)| ConflictHint { index, term }),
                })
            }),
        (small(), small(), small()).prop_map(|(term, commit, round)| Message::Heartbeat(
            Heartbeat {
                term,
                commit,
                round
            }
        )),
        (small(), small(), small()).prop_map(|(term, round, last)| Message::HeartbeatResponse(
            HeartbeatResponse {
                term,
                round,
                last_index: last
            }
        )),
        (
            small(),
            small(),
            small(),
            small(),
            small(),
            prop::collection::vec(any::<u8>(), 0..40),
            any::<bool>()
        )
            .prop_map(|(term, index, snap_term, total, offset, data, done)| {
                Message::InstallSnapshot(InstallSnapshot {
                    term,
                    meta: SnapshotMeta {
                        index,
                        term: snap_term,
                        membership: Membership::with_voters([1, 2, 3]),
                    },
                    total_len: total,
                    offset,
                    data: Bytes::from(data),
                    done,
                })
            }),
        (small(), small(), small(), any::<bool>()).prop_map(|(term, index, received, done)| {
            Message::InstallSnapshotResponse(InstallSnapshotResponse {
                term,
                snapshot_index: index,
                received,
                done,
            })
        }),
        small().prop_map(|term| Message::TimeoutNow(TimeoutNow { term })),
    ]
}

/// Drives node 1 of a 3-node cluster through random messages from its
/// peers (and strangers), with time passing and writes acknowledged.
fn run(messages: Vec<(u64, Message)>, campaign_first: bool) {
    let mut node = Node::new(Config::new(1, [1, 2, 3]), 7, Instant::ZERO).unwrap();
    let mut now = Instant::ZERO;
    if campaign_first {
        node.handle(now, Input::Campaign).unwrap();
    }
    for (from, message) in messages {
        now = now + 7;
        let _ = node.handle(
            now,
            Input::Message(Envelope {
                from,
                to: 1,
                message,
            }),
        );
        let _ = node.handle(now, Input::Timeout);
        while let Some(output) = node.poll_output() {
            if let distribkv_core::raft::Output::Persist(write) = output {
                node.handle(now, Input::Persisted(write.seq)).unwrap();
            }
        }
        let log = node.log();
        assert!(
            log.snapshot().index <= log.applied()
                && log.applied() <= log.commit()
                && log.commit() <= log.last_index()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_messages_never_panic(messages in prop::collection::vec((prop_oneof![Just(2u64), Just(3), 0u64..9], message()), 0..40), campaign in any::<bool>()) {
        run(messages, campaign);
    }
}

#[test]
fn malformed_messages_are_counted() {
    let mut node = Node::new(Config::new(1, [1, 2, 3]), 7, Instant::ZERO).unwrap();
    let gap = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![Entry {
            index: 5,
            term: 1,
            payload: Payload::Noop,
        }],
        leader_commit: 0,
    });
    node.handle(
        Instant(1),
        Input::Message(Envelope {
            from: 2,
            to: 1,
            message: gap,
        }),
    )
    .unwrap();
    assert_eq!(node.stats().malformed, 1);
    assert_eq!(
        node.log().last_index(),
        0,
        "nothing from a malformed message is stored"
    );
    let stranger = Message::Heartbeat(Heartbeat {
        term: 9,
        commit: 0,
        round: 0,
    });
    node.handle(
        Instant(2),
        Input::Message(Envelope {
            from: 9,
            to: 1,
            message: stranger.clone(),
        }),
    )
    .unwrap();
    node.handle(
        Instant(2),
        Input::Message(Envelope {
            from: 2,
            to: 4,
            message: stranger,
        }),
    )
    .unwrap();
    assert_eq!(node.stats().misaddressed, 2);
    assert_eq!(node.term(), 0, "input from strangers changes nothing");
    let oversized = Message::InstallSnapshot(InstallSnapshot {
        term: 1,
        meta: SnapshotMeta {
            index: 3,
            term: 1,
            membership: Membership::with_voters([1, 2, 3]),
        },
        total_len: u64::MAX,
        offset: 0,
        data: Bytes::new(),
        done: false,
    });
    node.handle(
        Instant(3),
        Input::Message(Envelope {
            from: 2,
            to: 1,
            message: oversized,
        }),
    )
    .unwrap();
    assert_eq!(
        node.stats().malformed,
        2,
        "a snapshot larger than the limit is refused"
    );
}

#[test]
fn driver_misuse_is_an_error() {
    let mut node = Node::new(Config::new(1, [1, 2, 3]), 7, Instant::ZERO).unwrap();
    assert_eq!(
        node.handle(Instant(1), Input::Persisted(5)),
        Err(Rejected::UnknownWrite { seq: 5, last: 0 })
    );
    assert_eq!(
        node.handle(
            Instant(1),
            Input::Compact {
                index: 3,
                data: Bytes::new()
            }
        ),
        Err(Rejected::CompactionIndex {
            index: 3,
            snapshot_index: 0,
            applied: 0
        })
    );
    assert_eq!(
        node.handle(Instant(1), Input::Propose(Bytes::from_static(b"x"))),
        Err(Rejected::NotLeader { leader_hint: None })
    );
    assert_eq!(
        node.handle(Instant(1), Input::ReadIndex(1)),
        Err(Rejected::NotLeader { leader_hint: None })
    );
    assert!(matches!(
        node.handle(Instant(1), Input::TransferLeadership(2)),
        Err(Rejected::NotLeader { .. })
    ));
    let bad = Config {
        election_timeout_max: 10,
        ..Config::new(1, [1, 2])
    };
    assert!(Node::new(bad, 1, Instant::ZERO).is_err());
    assert!(
        Node::new(Config::new(4, [1, 2, 3]), 1, Instant::ZERO).is_err(),
        "a node outside the cluster"
    );
}
