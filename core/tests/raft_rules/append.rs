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
