//! RequestVote and PreVote: one vote per term for an up-to-date log (§5.2,
//! §5.4.1), pre-votes that change nothing, stepping down on a higher term.

use crate::{Follower, deliver, drain, entry, feed, native_timing, vote};
use distribkv_core::raft::{
    AppendEntriesResponse, Config, Heartbeat, Input, Message, Node, RequestVoteResponse, RoleKind,
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
        drain(&mut node, now);
    }
    assert_eq!(node.role(), RoleKind::Leader);
    // A single-node cluster's member list is {1}; a higher term from anyone still counts.
    let message = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: node.term() + 1,
        index: 0,
        success: false,
        conflict: None,
    });
    deliver(&mut node, now + 1, 2, message);
    assert_eq!(node.role(), RoleKind::Follower);
}

/// Node 1 of {1, 2, 3} (native timing, `seed`), a candidate in term 1 at
/// 2 ms: it campaigned at 0 and node 2 granted its pre-vote.
fn candidate_in_term_1(seed: u64) -> Node {
    let mut node = Node::new(native_timing(1, [1, 2, 3]), seed, Instant::ZERO).unwrap();
    node.handle(Instant::ZERO, Input::Campaign).unwrap();
    while node.poll_output().is_some() {}
    let pre_vote = Message::RequestVoteResponse(RequestVoteResponse {
        term: 1,
        granted: true,
        pre_vote: true,
    });
    feed(&mut node, 2, 2, pre_vote);
    assert_eq!(node.role(), RoleKind::Candidate);
    node
}

/// A split vote (§5.2): node 1 campaigns in term 1 and hears node 3's
/// RequestVote for the same term. Each voted for itself, so unless the last
/// voter (perhaps a dead leader) breaks the tie, term 1 elects nobody.
/// Node 1 re-arms a shorter randomized timeout, from one heartbeat interval
/// to the minimum election timeout (100–500 ms with the native defaults),
/// instead of waiting out the 500–1000 ms it drew when it stood; the rival
/// does the same. Over many seeds the new deadline spreads across that range.
#[test]
fn a_candidate_that_hears_a_rival_of_its_term_re_arms_a_shorter_timeout() {
    let mut rearmed = Vec::new();
    for seed in 1..=40 {
        let mut node = candidate_in_term_1(seed);
        let drawn = node.poll_timeout().0;
        assert!((502..1002).contains(&drawn), "seed {seed}: {drawn}");
        let sent = feed(&mut node, 5, 3, vote(1, (0, 0), false));
        assert_eq!(granted(&sent), Some(false), "it voted for itself");
        let deadline = node.poll_timeout().0;
        assert!(
            (105..505).contains(&deadline) || deadline == drawn,
            "seed {seed}: re-armed to {deadline}"
        );
        assert!(deadline <= drawn);
        rearmed.push(deadline);
        // The re-armed timer starts the next election, through PreVote.
        node.handle(Instant(deadline), Input::Timeout).unwrap();
        assert_eq!(node.role(), RoleKind::PreCandidate, "seed {seed}");
    }
    assert!(
        rearmed.iter().all(|&d| d < 505),
        "always sooner than the minimum election timeout: {rearmed:?}"
    );
    assert!(
        rearmed.iter().any(|&d| d < 200) && rearmed.iter().any(|&d| d >= 400),
        "spread over the range: {rearmed:?}"
    );
}

/// A rival candidate of our term whose log is ahead of ours can win and we
/// cannot, so we do not rush into the next term before it: we stand back a
/// whole randomized election timeout from when we heard it, so that it
/// likely campaigns first next time and gets our vote. Rushing instead put
/// a candidate with a stale log (and a configuration without the rival)
/// into every new term first, refusing the only electable node for good:
/// seed 7,921,602 of the seed sweep, with PreVote off, stalled 10 s after
/// healing.
#[test]
fn a_candidate_that_hears_a_rival_with_a_longer_log_stands_back() {
    let mut backed_off = Vec::new();
    for seed in 1..=40 {
        let mut node = candidate_in_term_1(seed);
        // Node 3 stands in term 1 too, with a log ahead of our empty one.
        let sent = feed(&mut node, 5, 3, vote(1, (4, 1), false));
        assert_eq!(granted(&sent), Some(false), "it voted for itself");
        let deadline = node.poll_timeout().0;
        assert!(
            (505..1005).contains(&deadline),
            "seed {seed}: a whole election timeout from the request (5 ms), not sooner: {deadline}"
        );
        backed_off.push(deadline);
    }
    assert!(
        backed_off.iter().any(|&d| d < 700) && backed_off.iter().any(|&d| d >= 850),
        "randomized over the range: {backed_off:?}"
    );
}

/// A leadership transfer's candidate with a shorter log than ours (the
/// hand-over of a leader that CheckQuorum deposed picks its target from
/// what it last heard, and its `TimeoutNow` may overtake its last
/// AppendEntries) is refused (§5.4.1), and we re-arm a shorter randomized
/// timeout (one heartbeat interval to the minimum election timeout: 50–150
/// ms with `Config::new`'s timing) instead of the 150–300 ms the new term
/// drew, so the election the candidate was told to hold does not stall for
/// a whole election timeout when it cannot win. A transfer candidate as up
/// to date as we are gets the vote (and a full timeout); an ordinary stale
/// candidate is refused, and the timer is left alone.
#[test]
fn a_voter_that_refuses_a_transfer_candidate_for_its_shorter_log_re_arms_a_shorter_timeout() {
    let request = |last: (u64, u64), transfer: bool| {
        Message::RequestVote(distribkv_core::raft::RequestVote {
            term: 2,
            last_log_index: last.0,
            last_log_term: last.1,
            pre_vote: false,
            transfer,
        })
    };
    let entries = || vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")];
    let mut rearmed = Vec::new();
    for (last, transfer, expected) in [
        ((2, 1), true, false),
        ((3, 1), true, true),
        ((2, 1), false, false),
    ] {
        let mut f = Follower::new();
        f.append(2, 1, (0, 0), entries(), 1);
        if !transfer {
            f.now += 1_000; // past the leader lease
        }
        let sent = f.receive(3, request(last, transfer));
        assert_eq!(granted(&sent), Some(expected), "{last:?} {transfer}");
        assert_eq!((f.node.term(), f.node.role()), (2, RoleKind::Follower));
        let timeout = f.node.poll_timeout().0 - f.now;
        if transfer && !expected {
            assert!((50..150).contains(&timeout), "re-armed to {timeout} ms");
            rearmed.push(timeout);
        } else {
            assert!(
                (150..300).contains(&timeout),
                "{last:?} {transfer}: {timeout} ms"
            );
        }
    }
    assert_eq!(rearmed.len(), 1);
}
