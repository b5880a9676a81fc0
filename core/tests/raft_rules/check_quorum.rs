//! CheckQuorum (§6.2): a leader that hears no majority steps down and hands
//! over; one that hears everyone late keeps leading.

use bytes::Bytes;
use distribkv_core::raft::{
    AppendEntriesResponse, HeartbeatResponse, Input, Message, Node, RequestVoteResponse, RoleKind,
};

use crate::{deliver, drain, native_timing};
use distribkv_core::time::Instant;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Node 1 leading {1, .., n} with the native server's default timing
/// (election timeout 500–1000 ms, heartbeat 100 ms); every write is
/// acknowledged at once; `sent` collects what it sent, with the time.
struct Leader {
    node: Node,
    now: u64,
    sent: Vec<(u64, u64, Message)>,
}

impl Leader {
    /// Node 1 leading {1, 2, 3}.
    fn new() -> Leader {
        Leader::of(3)
    }

    /// Node 1 leading {1, .., voters}.
    fn of(voters: u64) -> Leader {
        let mut leader = Leader {
            node: Node::new(native_timing(1, 1..=voters), 1, Instant::ZERO).unwrap(),
            now: 0,
            sent: Vec::new(),
        };
        leader.node.handle(Instant::ZERO, Input::Campaign).unwrap();
        leader.drain();
        for from in 2..=voters {
            leader.receive(
                from,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term: 1,
                    granted: true,
                    pre_vote: true,
                }),
            );
        }
        for from in 2..=voters {
            leader.receive(
                from,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term: 1,
                    granted: true,
                    pre_vote: false,
                }),
            );
        }
        assert!(leader.node.is_leader());
        leader
    }

    fn drain(&mut self) {
        for envelope in drain(&mut self.node, self.now) {
            self.sent.push((self.now, envelope.to, envelope.message));
        }
    }

    fn receive(&mut self, from: u64, message: Message) {
        for envelope in deliver(&mut self.node, self.now, from, message) {
            self.sent.push((self.now, envelope.to, envelope.message));
        }
    }

    /// Proposes `text` and takes the leader's outputs.
    fn propose(&mut self, text: &'static str) {
        self.node
            .handle(
                Instant(self.now),
                Input::Propose(Bytes::from_static(text.as_bytes())),
            )
            .unwrap();
        self.drain();
    }

    /// Answers the heartbeats sent at a time `due` accepts, in the order
    /// sent, but for the first `answered` of them (answered before);
    /// returns how many it answered.
    fn answer_heartbeats(&mut self, answered: usize, due: impl Fn(u64) -> bool) -> usize {
        let heartbeats: Vec<(u64, u64)> = self
            .sent
            .iter()
            .filter_map(|(at, to, m)| match m {
                Message::Heartbeat(h) if due(*at) => Some((*to, h.round)),
                _ => None,
            })
            .skip(answered)
            .collect();
        for &(from, round) in &heartbeats {
            let term = self.node.term();
            self.receive(
                from,
                Message::HeartbeatResponse(HeartbeatResponse {
                    term,
                    round,
                    last_index: 1,
                }),
            );
        }
        heartbeats.len()
    }

    fn acknowledge(&mut self, from: u64, index: u64) {
        let term = self.node.term();
        self.receive(
            from,
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term,
                index,
                success: true,
                conflict: None,
            }),
        );
    }

    /// Lets time pass until `until`, firing every timer on time.
    fn run_until(&mut self, until: u64) {
        loop {
            let deadline = self.node.poll_timeout().0;
            if deadline > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(deadline);
            self.node.handle(Instant(self.now), Input::Timeout).unwrap();
            self.drain();
        }
    }

    fn timeout_nows(&self) -> Vec<(u64, u64)> {
        self.sent
            .iter()
            .filter(|(_, _, m)| matches!(m, Message::TimeoutNow(_)))
            .map(|(at, to, _)| (*at, *to))
            .collect()
    }
}

/// §6.2 (CheckQuorum) with a hand-over: a leader that hears nobody steps
/// down once no majority was heard for `check_quorum_timeout` (1.2 s
/// here), and tells the follower with the longest log it knows of to
/// campaign at once, so the followers, which still hear its heartbeats, do
/// not wait out an election timeout after its last one (and split the
/// vote now and then). Only a follower holding every committed entry is
/// told.
#[test]
fn a_leader_deposed_by_check_quorum_hands_over_to_its_most_up_to_date_follower() {
    let mut leader = Leader::new();
    assert_eq!(leader.node.config().check_quorum_timeout(), 1200);
    // The no-op (index 1) and two entries; node 3 acknowledges them all,
    // node 2 only the no-op.
    for text in ["a", "b"] {
        leader.propose(text);
    }
    leader.acknowledge(2, 1);
    leader.acknowledge(3, 3);
    assert_eq!(leader.node.log().commit(), 3);
    // From now on the leader hears nobody.
    let deaf_at = leader.now;
    leader.run_until(deaf_at + 1100);
    assert!(
        leader.node.is_leader(),
        "a round trip of up to 1.1 s is tolerated"
    );
    assert!(leader.timeout_nows().is_empty());
    leader.run_until(deaf_at + 1400);
    assert_eq!(leader.node.role(), RoleKind::Follower);
    assert_eq!(leader.node.leader(), None);
    let handovers = leader.timeout_nows();
    assert_eq!(handovers.len(), 1, "{handovers:?}");
    let (at, to) = handovers[0];
    assert_eq!(
        to, 3,
        "the follower with the longest log, the only one holding the commit"
    );
    assert!(
        (deaf_at + 1200..=deaf_at + 1300).contains(&at),
        "stepped down at {at} ms, deaf since {deaf_at} ms"
    );
    assert_eq!(leader.node.stats().check_quorum_handovers, 1);
}

/// CheckQuorum's clock restarts at every check that hears a majority: a
/// leader that heard both followers for 3 s, then nobody, still leads 1.1 s
/// into the silence, and steps down 1.2 to 1.3 s into it (not as soon as
/// one check fails 1.2 s after it took office).
#[test]
fn the_check_quorum_timeout_counts_from_the_last_check_that_heard_a_majority() {
    let mut leader = Leader::new();
    let mut answered = 0;
    for step in 1..=30 {
        leader.run_until(step * 100);
        answered += leader.answer_heartbeats(answered, |_| true);
    }
    assert!(answered >= 58, "every heartbeat answered ({answered})");
    assert!(leader.node.is_leader());
    let deaf_at = leader.now;
    leader.run_until(deaf_at + 1100);
    assert!(
        leader.node.is_leader(),
        "stepped down within 1.1 s of going deaf, after 3 s of a majority"
    );
    leader.run_until(deaf_at + 1300);
    assert_eq!(leader.node.role(), RoleKind::Follower);
}

/// With five voters, two followers hold the commit index (entry 4): node 3
/// has entry 5 too, node 4 stops at 4. The hand-over goes to node 3, the
/// longest log: node 4's would be refused by node 3 (§5.4.1) and need the
/// votes of both laggards, while node 3's can win with any two. (In three
/// voters the only follower holding the commit is always the longest.)
#[test]
fn the_hand_over_goes_to_the_longest_log_among_the_followers_holding_the_commit() {
    let mut leader = Leader::of(5);
    for text in ["a", "b", "c", "d"] {
        leader.propose(text);
    }
    for (from, index) in [(2, 2), (3, 5), (4, 4), (5, 1)] {
        leader.acknowledge(from, index);
    }
    assert_eq!(
        leader.node.log().commit(),
        4,
        "nodes 1, 3 and 4 hold entry 4"
    );
    let deaf_at = leader.now;
    leader.run_until(deaf_at + 1400);
    assert_eq!(leader.node.role(), RoleKind::Follower);
    assert_eq!(
        leader
            .timeout_nows()
            .iter()
            .map(|&(_, to)| to)
            .collect::<Vec<_>>(),
        [3]
    );
}

/// Every link slowed by 500 ms each way: the answers stop for 1 s (those to
/// messages sent before the change came back; those to later ones take
/// the slow way both ways), then flow again, one per heartbeat, each 1 s
/// late. The leader keeps leading: its followers still hear it, every
/// election would need longer round trips than its election timeout, and
/// writes commit in a round trip all along.
#[test]
fn a_leader_whose_answers_are_a_second_late_keeps_leading() {
    let mut leader = Leader::new();
    leader.acknowledge(2, 1);
    leader.acknowledge(3, 1);
    let slow_from = leader.now;
    let mut answered = 0;
    for step in 1..=40 {
        leader.run_until(slow_from + step * 100);
        // Answer every heartbeat sent at least 1 s ago (and after the change).
        let now = leader.now;
        answered += leader.answer_heartbeats(answered, |at| at > slow_from && at + 1000 <= now);
        assert!(
            leader.node.is_leader(),
            "stepped down {} ms after the links slowed",
            leader.now - slow_from
        );
    }
    assert!(answered > 40, "answers flowed again ({answered})");
    assert!(leader.timeout_nows().is_empty());
}
