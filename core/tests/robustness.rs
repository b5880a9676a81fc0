//! Bad, stale, duplicate and random peer input never panics a node: it is
//! dropped and counted. Driver misuse gets an error, not a panic.

use bytes::Bytes;
use distribkv_core::raft::{
    AppendEntries, AppendEntriesResponse, Config, ConflictHint, Entry, Envelope, Heartbeat,
    HeartbeatResponse, Input, InstallSnapshot, InstallSnapshotResponse, Membership, Message, Node,
    Payload, Rejected, RequestVote, RequestVoteResponse, SnapshotMeta, TimeoutNow,
};
use distribkv_core::rng::Rng;
use distribkv_core::time::Instant;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Random values biased toward the interesting ones: small, and the extremes.
fn value(rng: &mut Rng) -> u64 {
    match rng.range(0, 10) {
        0 => u64::MAX,
        1 => u64::MAX - 1,
        2..6 => rng.range(0, 6),
        _ => rng.range(0, 1000),
    }
}

fn entries(rng: &mut Rng) -> Vec<Entry> {
    let len = rng.range(0, 6);
    let consecutive = rng.chance(0.5);
    let first = value(rng);
    (0..len)
        .map(|i| Entry {
            index: if consecutive {
                first.wrapping_add(i)
            } else {
                value(rng)
            },
            term: value(rng),
            payload: if rng.chance(0.5) {
                Payload::Noop
            } else {
                Payload::Command(Bytes::from_static(b"x"))
            },
        })
        .collect()
}

fn message(rng: &mut Rng) -> Message {
    let term = value(rng);
    match rng.range(0, 9) {
        0 => Message::RequestVote(RequestVote {
            term,
            last_log_index: value(rng),
            last_log_term: value(rng),
            pre_vote: rng.chance(0.5),
            transfer: rng.chance(0.5),
        }),
        1 => Message::RequestVoteResponse(RequestVoteResponse {
            term,
            granted: rng.chance(0.5),
            pre_vote: rng.chance(0.5),
        }),
        2 => Message::AppendEntries(AppendEntries {
            term,
            prev_log_index: value(rng),
            prev_log_term: value(rng),
            entries: entries(rng),
            leader_commit: value(rng),
        }),
        3 => Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            index: value(rng),
            success: rng.chance(0.5),
            conflict: rng.chance(0.5).then(|| ConflictHint {
                index: value(rng),
                term: value(rng),
            }),
        }),
        4 => Message::Heartbeat(Heartbeat {
            term,
            commit: value(rng),
            round: value(rng),
        }),
        5 => Message::HeartbeatResponse(HeartbeatResponse {
            term,
            round: value(rng),
            last_index: value(rng),
        }),
        6 => {
            let len = rng.range(0, 40) as usize;
            Message::InstallSnapshot(Box::new(InstallSnapshot {
                term,
                meta: SnapshotMeta {
                    index: value(rng),
                    term: value(rng),
                    membership: Membership::with_voters([1, 2, 3]),
                },
                total_len: value(rng),
                offset: value(rng),
                data: Bytes::from(vec![7u8; len]),
                done: rng.chance(0.5),
            }))
        }
        7 => Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term,
            snapshot_index: value(rng),
            received: value(rng),
            done: rng.chance(0.5),
        }),
        _ => Message::TimeoutNow(TimeoutNow { term }),
    }
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

/// Thousands of seeded runs of random messages from peers and strangers;
/// a failure names its seed.
#[test]
fn random_messages_never_panic() {
    for seed in 0..3000u64 {
        let mut rng = Rng::new(seed);
        let count = rng.range(0, 40);
        let messages = (0..count)
            .map(|_| {
                let from = if rng.chance(0.8) {
                    rng.range(2, 4)
                } else {
                    rng.range(0, 9)
                };
                (from, message(&mut rng))
            })
            .collect();
        let campaign = rng.chance(0.5);
        let outcome = std::panic::catch_unwind(|| run(messages, campaign));
        assert!(outcome.is_ok(), "random message seed {seed} panicked");
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
            from: 0,
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
    assert_eq!(node.term(), 0, "misaddressed input changes nothing");
    let oversized = Message::InstallSnapshot(Box::new(InstallSnapshot {
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
    }));
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
