//! AppendEntries: stale terms (§5.1), the consistency check, conflicts and
//! the commit rule (§5.3).

use crate::{Follower, entry};
use distribkv_core::raft::{AppendEntriesResponse, Message};

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn append_response(sent: &[Message]) -> &AppendEntriesResponse {
    sent.iter()
        .find_map(|m| match m {
            Message::AppendEntriesResponse(r) => Some(r),
            _ => None,
        })
        .expect("an AppendEntries response")
}

/// §5.1: a request with a stale term is rejected, answered with the current
/// term (so the stale leader steps down), and changes nothing.
#[test]
fn stale_term_append_is_rejected() {
    let mut f = Follower::new();
    f.append(2, 3, (0, 0), vec![entry(1, 3, "a")], 0);
    let sent = f.append(3, 2, (0, 0), vec![entry(1, 2, "stale")], 1);
    let response = append_response(&sent);
    assert!(!response.success);
    assert_eq!(response.term, 3);
    assert_eq!(f.terms(), vec![3]);
    assert_eq!(f.node.leader(), Some(2), "the stale leader is not followed");
    assert_eq!(f.node.stats().stale_term, 1);
}

/// §5.3 step 5: commitIndex = min(leaderCommit, index of the last new entry):
/// a follower never commits entries the leader has not vouched for in this
/// message, such as a divergent suffix from an older term.
#[test]
fn commit_is_bounded_by_the_last_new_entry() {
    let mut f = Follower::new();
    // An old leader (term 1) left a suffix that the new leader does not have.
    f.append(
        2,
        1,
        (0, 0),
        vec![entry(1, 1, "a"), entry(2, 1, "old"), entry(3, 1, "old")],
        0,
    );
    // The new leader of term 2 confirms only index 1, with a high commit index.
    f.append(3, 2, (1, 1), vec![], 3);
    assert_eq!(
        f.node.log().commit(),
        1,
        "entries 2 and 3 were not sent by this leader"
    );
    // Once it sends its own entries, they replace the suffix and commit.
    f.append(3, 2, (1, 1), vec![entry(2, 2, "new")], 3);
    assert_eq!(f.terms(), vec![1, 2]);
    assert_eq!(f.node.log().commit(), 2);
}

/// §5.3: a shorter duplicate of an earlier message does not truncate entries
/// that followed it.
#[test]
fn duplicate_appends_do_not_truncate() {
    let mut f = Follower::new();
    f.append(
        2,
        1,
        (0, 0),
        vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")],
        0,
    );
    let sent = f.append(2, 1, (0, 0), vec![entry(1, 1, "a")], 0);
    assert!(append_response(&sent).success);
    assert_eq!(f.terms(), vec![1, 1, 1]);
}

/// §5.3: an entry conflicting with a new one is deleted with all that follow.
#[test]
fn conflicting_suffix_is_replaced() {
    let mut f = Follower::new();
    f.append(
        2,
        1,
        (0, 0),
        vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")],
        0,
    );
    f.append(3, 2, (1, 1), vec![entry(2, 2, "x")], 0);
    assert_eq!(f.terms(), vec![1, 2]);
}

/// §5.3 with fast back-off: a mismatch is rejected with a hint.
#[test]
fn mismatch_is_rejected_with_a_hint() {
    let mut f = Follower::new();
    f.append(2, 1, (0, 0), vec![entry(1, 1, "a"), entry(2, 1, "b")], 0);
    let sent = f.append(3, 3, (4, 3), vec![entry(5, 3, "z")], 0);
    let response = append_response(&sent);
    assert!(!response.success);
    let hint = response.conflict.expect("a hint");
    assert_eq!(
        (hint.index, hint.term),
        (2, 1),
        "the follower's last entry with a term <= 3"
    );
}

/// §5.4.2 with the leader's own log counted only once durable: a follower
/// that answers before the leader's write is durable does not make a
/// majority of three; the leader's acknowledgement of its own write then
/// commits the entry (the commit rule runs on the leader's durability too,
/// not only on answers).
#[test]
fn a_leader_commits_when_its_own_write_becomes_durable_after_an_answer() {
    use crate::{deliver, drain, native_timing};
    use bytes::Bytes;
    use distribkv_core::raft::{Input, Node, Output, RequestVoteResponse};
    use distribkv_core::time::Instant;

    let mut node = Node::new(native_timing(1, [1, 2, 3]), 1, Instant::ZERO).unwrap();
    node.handle(Instant::ZERO, Input::Campaign).unwrap();
    drain(&mut node, 0);
    for pre_vote in [true, false] {
        let vote = Message::RequestVoteResponse(RequestVoteResponse {
            term: 1,
            granted: true,
            pre_vote,
        });
        deliver(&mut node, 0, 2, vote);
    }
    assert!(node.is_leader());
    let answer = |index| {
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 1,
            index,
            success: true,
            conflict: None,
        })
    };
    // The leader's no-op, durable (`drain` acknowledges at once), commits
    // with an answer.
    let noop = node.log().last_index();
    deliver(&mut node, 0, 2, answer(noop));
    assert_eq!(node.log().commit(), noop);

    // A proposal whose write is held back.
    node.handle(Instant(1), Input::Propose(Bytes::from_static(b"x")))
        .unwrap();
    let index = node.log().last_index();
    let mut seq = None;
    while let Some(output) = node.poll_output() {
        if let Output::Persist(write) = output {
            seq = Some(write.seq);
        }
    }
    let seq = seq.expect("the proposal's write");
    // Follower 2 answers first: one vote of three (the leader's entry is not
    // durable yet, follower 3 has not answered).
    node.handle(
        Instant(1),
        Input::Message(distribkv_core::raft::Envelope {
            from: 2,
            to: 1,
            message: answer(index),
        }),
    )
    .unwrap();
    assert_eq!(node.log().commit(), noop, "no majority without the leader");
    // The leader's own write becomes durable: a majority, committed.
    node.handle(Instant(1), Input::Persisted(seq)).unwrap();
    assert_eq!(node.log().commit(), index);
    // Without any answer above the commit index, the leader's own
    // durability commits nothing.
    node.handle(Instant(2), Input::Propose(Bytes::from_static(b"y")))
        .unwrap();
    let mut seq = None;
    while let Some(output) = node.poll_output() {
        if let Output::Persist(write) = output {
            seq = Some(write.seq);
        }
    }
    node.handle(Instant(2), Input::Persisted(seq.expect("a write")))
        .unwrap();
    assert_eq!(node.log().commit(), index);
}
