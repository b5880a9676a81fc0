//! RequestVote and PreVote: one vote per term for an up-to-date log (§5.2,
//! §5.4.1), pre-votes that change nothing, stepping down on a higher term.

use crate::{Follower, entry, vote};
use distribkv_core::raft::{
    AppendEntriesResponse, Config, Envelope, Heartbeat, Input, Message, Node, Output,
    RequestVoteResponse, RoleKind,
};
use distribkv_core::time::Instant;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn granted(sent: &[Message]) -> Option<bool> {
    sent.iter().find_map(|m| match m {
        Message::RequestVoteResponse(RequestVoteResponse { granted, .. }) => Some(*granted),
        _ => None,
    })
}

/// §5.2, §5.4.1: one vote per term, only for a log at least as up to date.
#[test]
fn vote_rules() {
    type Case = (&'static str, Vec<(u64, Message)>, bool);
    let cases: [Case; 5] = [
        (
            "grants a fresh candidate",
            vec![(2, vote(1, (0, 0), false))],
            true,
        ),
        (
            "one vote per term",
            vec![(2, vote(1, (0, 0), false)), (3, vote(1, (0, 0), false))],
            false,
        ),
        (
            "same candidate again",
            vec![(2, vote(1, (0, 0), false)), (2, vote(1, (0, 0), false))],
            true,
        ),
        (
            "stale term",
            vec![(2, vote(2, (0, 0), false)), (3, vote(1, (0, 0), false))],
            false,
        ),
        (
            "new term, new vote",
            vec![(2, vote(1, (0, 0), false)), (3, vote(2, (0, 0), false))],
            true,
        ),
    ];
    for (name, messages, expected) in cases {
        let mut f = Follower::new();
        let mut last = None;
        for (from, message) in messages {
            last = granted(&f.receive(from, message));
        }
        assert_eq!(last, Some(expected), "{name}");
    }
    // A candidate whose log is behind is refused.
    let mut f = Follower::new();
    f.append(2, 2, (0, 0), vec![entry(1, 2, "a")], 0);
    let sent = f.receive(
        3,
        Message::Heartbeat(Heartbeat {
            term: 2,
            commit: 0,
            round: 0,
        }),
    );
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::HeartbeatResponse(_)))
    );
    let mut f = Follower::new();
    f.append(2, 2, (0, 0), vec![entry(1, 2, "a")], 0);
    f.now += 1_000; // past the leader lease
    assert_eq!(
        granted(&f.receive(3, vote(3, (5, 1), false))),
        Some(false),
        "lower last term"
    );
    assert_eq!(
        granted(&f.receive(3, vote(3, (1, 2), false))),
        Some(true),
        "equal log"
    );
}

/// §9.6 of the dissertation: a pre-vote changes nobody's term or vote.
#[test]
fn pre_vote_changes_nothing() {
    let mut f = Follower::new();
    let sent = f.receive(2, vote(5, (0, 0), true));
    assert_eq!(granted(&sent), Some(true));
    assert_eq!((f.node.term(), f.node.voted_for()), (0, None));
}

/// §5.1: a leader that sees a higher term steps down.
#[test]
fn leader_steps_down_on_a_higher_term() {
    let mut node = Node::new(Config::new(1, [1]), 1, Instant::ZERO).unwrap();
    let mut now = 0;
    while !node.is_leader() {
        now += 100;
        node.handle(Instant(now), Input::Timeout).unwrap();
        while let Some(output) = node.poll_output() {
            if let Output::Persist(write) = output {
                node.handle(Instant(now), Input::Persisted(write.seq))
                    .unwrap();
            }
        }
    }
    assert_eq!(node.role(), RoleKind::Leader);
    // A single-node cluster's member list is {1}; a higher term from anyone still counts.
    let message = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: node.term() + 1,
        index: 0,
        success: false,
        conflict: None,
    });
    node.handle(
        Instant(now + 1),
        Input::Message(Envelope {
            from: 2,
            to: 1,
            message,
        }),
    )
    .unwrap();
    assert_eq!(node.role(), RoleKind::Follower);
}
