//! Figure 2's rules, one by one, on a single node fed hand-written messages
//! (in the style of etcd's raft unit tests). The simulator tests find what
//! breaks in rare interleavings; these pin each rule down directly.

use bytes::Bytes;
use distribkv_core::raft::{
    AppendEntries, AppendEntriesResponse, Config, Entry, Envelope, HardState, Heartbeat, Input,
    Membership, MembershipChange, Message, Node, Output, Payload, PersistedState, Rejected,
    RequestVote, RequestVoteResponse, RoleKind, Snapshot, SnapshotMeta,
};
use distribkv_core::time::Instant;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn entry(index: u64, term: u64, text: &'static str) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(Bytes::from_static(text.as_bytes())),
    }
}

/// Node 1 of {1, 2, 3}; every write is acknowledged at once; returns what it sent.
struct Follower {
    node: Node,
    now: u64,
}

impl Follower {
    fn new() -> Follower {
        Follower {
            node: Node::new(Config::new(1, [1, 2, 3]), 1, Instant::ZERO).unwrap(),
            now: 0,
        }
    }

    fn receive(&mut self, from: u64, message: Message) -> Vec<Message> {
        self.now += 1;
        self.node
            .handle(
                Instant(self.now),
                Input::Message(Envelope {
                    from,
                    to: 1,
                    message,
                }),
            )
            .unwrap();
        let mut sent = Vec::new();
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(write) => {
                    self.node
                        .handle(Instant(self.now), Input::Persisted(write.seq))
                        .unwrap();
                }
                Output::Send(envelope) => sent.push(envelope.message),
                _ => {}
            }
        }
        sent
    }

    fn append(
        &mut self,
        from: u64,
        term: u64,
        prev: (u64, u64),
        entries: Vec<Entry>,
        commit: u64,
    ) -> Vec<Message> {
        self.receive(
            from,
            Message::AppendEntries(AppendEntries {
                term,
                prev_log_index: prev.0,
                prev_log_term: prev.1,
                entries,
                leader_commit: commit,
            }),
        )
    }

    fn terms(&self) -> Vec<u64> {
        let log = self.node.log();
        log.entries(log.first_index(), log.last_index())
            .map(|e| e.term)
            .collect()
    }
}

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

fn vote(term: u64, last: (u64, u64), pre_vote: bool) -> Message {
    Message::RequestVote(RequestVote {
        term,
        last_log_index: last.0,
        last_log_term: last.1,
        pre_vote,
        transfer: false,
    })
}

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

fn membership_entry(index: u64, term: u64, membership: Membership) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Membership(membership),
    }
}

/// §4.2.2 and the contract of `Node::is_removed`: a node is removed when
/// its removal is committed, not when it is in its log (a new leader may
/// truncate it away, and the node must then go on as a member).
#[test]
fn only_a_committed_removal_removes_a_node() {
    let mut f = Follower::new();
    let without_1 = Membership::with_voters([1, 2, 3])
        .apply(MembershipChange::Remove(1))
        .unwrap();
    f.append(
        2,
        1,
        (0, 0),
        vec![entry(1, 1, "a"), membership_entry(2, 1, without_1.clone())],
        1,
    );
    assert!(
        f.node.membership().is_removed(1),
        "the removal is in its log"
    );
    assert!(!f.node.is_removed(), "but not committed: not removed");

    // Leader 2 lost it: leader 3 of term 2 replaces it, and node 1 is a
    // voter again, as if nothing had happened.
    f.append(3, 2, (1, 1), vec![entry(2, 2, "b")], 2);
    assert!(!f.node.membership().is_removed(1));
    assert!(!f.node.is_removed() && f.node.is_voter());

    // Removed again, and committed this time.
    f.append(3, 2, (2, 2), vec![membership_entry(3, 2, without_1)], 2);
    assert!(!f.node.is_removed());
    f.append(3, 2, (3, 2), vec![], 3);
    assert!(f.node.is_removed(), "the removal is committed");
}

/// A removed node that comes back is refused, not obeyed: its votes,
/// pre-votes and appends are dropped, whatever their term, once its
/// removal is committed (and only then).
#[test]
fn a_removed_id_cannot_disturb_the_cluster() {
    let mut f = Follower::new();
    let without_3 = Membership::with_voters([1, 2, 3])
        .apply(MembershipChange::Remove(3))
        .unwrap();
    f.append(
        2,
        1,
        (0, 0),
        vec![entry(1, 1, "a"), membership_entry(2, 1, without_3)],
        1,
    );
    // Not committed yet: node 3 is still heard (a higher term counts).
    let sent = f.receive(3, vote(2, (2, 1), true));
    assert!(
        matches!(&sent[..], [Message::RequestVoteResponse(_)]),
        "{sent:?}"
    );
    f.append(2, 1, (2, 1), vec![], 2);
    let term = f.node.term();
    let refused = [
        vote(9, (5, 5), false),
        vote(9, (5, 5), true),
        Message::AppendEntries(AppendEntries {
            term: 9,
            prev_log_index: 2,
            prev_log_term: 1,
            entries: vec![entry(3, 9, "x")],
            leader_commit: 3,
        }),
        Message::Heartbeat(Heartbeat {
            term: 9,
            commit: 2,
            round: 1,
        }),
    ];
    for (at, message) in refused.into_iter().enumerate() {
        let sent = f.receive(3, message);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(f.node.stats().from_removed, at as u64 + 1);
    }
    assert_eq!(f.node.term(), term, "no term of node 3 counts");
    assert_eq!(f.node.leader(), Some(2));
    assert_eq!(f.node.log().last_index(), 2, "no entry of node 3 either");
}

/// Feeds `input` to `node` at `now`, makes every write durable at once, and
/// returns the messages it sent.
fn step(node: &mut Node, now: u64, input: Input) -> Vec<Envelope> {
    node.handle(Instant(now), input).unwrap();
    drain(node, now).0
}

/// Drains `node`'s outputs, making every write durable at once: the
/// messages it sent and the reads it found ready.
fn drain(node: &mut Node, now: u64) -> (Vec<Envelope>, Vec<u64>) {
    let mut sent = Vec::new();
    let mut ready = Vec::new();
    while let Some(output) = node.poll_output() {
        match output {
            Output::Persist(write) => {
                node.handle(Instant(now), Input::Persisted(write.seq))
                    .unwrap();
            }
            Output::Send(envelope) => sent.push(envelope),
            Output::ReadReady { id, .. } => ready.push(id),
            _ => {}
        }
    }
    (sent, ready)
}

/// Delivers `envelopes` to `node` (those addressed to it) and returns what it sent.
fn deliver(node: &mut Node, now: u64, envelopes: Vec<Envelope>) -> Vec<Envelope> {
    let id = node.id();
    envelopes
        .into_iter()
        .filter(|e| e.to == id)
        .flat_map(|e| step(node, now, Input::Message(e)))
        .collect()
}

/// A message from node 2 to node 1.
fn from_2(message: Message) -> Input {
    Input::Message(Envelope {
        from: 2,
        to: 1,
        message,
    })
}

fn ack_from_2(term: u64, index: u64) -> Input {
    from_2(Message::AppendEntriesResponse(AppendEntriesResponse {
        term,
        index,
        success: true,
        conflict: None,
    }))
}

/// Node 1 of {1, 2, 3} elected leader of term 1 with node 2's votes (node
/// 2 is played by hand); node 3 is a real node that holds the no-op of
/// term 1, and so does node 2. Messages for node 3 are returned, not
/// delivered.
fn leader_1_and_follower_3() -> (Node, Node) {
    let mut one = Node::new(Config::new(1, [1, 2, 3]), 1, Instant::ZERO).unwrap();
    let mut three = Node::new(Config::new(3, [1, 2, 3]), 3, Instant::ZERO).unwrap();
    step(&mut one, 1, Input::Campaign);
    for pre_vote in [true, false] {
        let vote = Message::RequestVoteResponse(RequestVoteResponse {
            term: 1,
            granted: true,
            pre_vote,
        });
        let mut sent = step(&mut one, 2, from_2(vote));
        while !sent.is_empty() {
            let replies = deliver(&mut three, 3, sent);
            sent = deliver(&mut one, 4, replies);
        }
    }
    assert!(one.is_leader() && one.term() == 1);
    step(&mut one, 5, ack_from_2(1, 1));
    assert_eq!((one.log().commit(), three.log().last_index()), (1, 1));
    (one, three)
}

/// §4.2.2 and `Node::is_removed`: a removal commits with the new
/// configuration's majority, so the removed node's acknowledgement of the
/// entry that removes it may come after the commit. The leader keeps
/// replicating to it until then and tells it (a heartbeat whose commit
/// index covers the removal), so that it learns it was removed and stops,
/// instead of running on forever as a member that nobody talks to.
#[test]
fn a_removed_node_learns_its_removal_even_when_it_acknowledges_late() {
    let (mut one, mut three) = leader_1_and_follower_3();
    let removing = step(
        &mut one,
        10,
        Input::ChangeMembership(MembershipChange::Remove(3)),
    );
    // Node 2 acknowledges the removal: it commits without node 3.
    let committed = step(&mut one, 11, ack_from_2(1, 2));
    assert_eq!(one.log().commit(), 2);
    assert!(one.log().committed_membership().is_removed(3));
    // Only now does node 3 receive its removal (and acknowledge it).
    let acks = deliver(&mut three, 12, [removing, committed].concat());
    assert!(three.membership().is_removed(3) && !three.is_removed());
    let farewell = deliver(&mut one, 13, acks);
    assert!(
        farewell
            .iter()
            .any(|e| e.to == 3 && matches!(&e.message, Message::Heartbeat(h) if h.commit >= 2)),
        "the leader tells node 3 its removal is committed: {farewell:?}"
    );
    deliver(&mut three, 14, farewell);
    assert!(three.is_removed(), "node 3 knows it was removed");
}

/// The leader's farewell to a removed node is safe: what that node
/// answers moves no commit index and keeps no leader in office
/// (CheckQuorum counts the voters only).
#[test]
fn a_departing_node_counts_toward_no_quorum() {
    let (mut one, mut three) = leader_1_and_follower_3();
    let removing = step(
        &mut one,
        10,
        Input::ChangeMembership(MembershipChange::Remove(3)),
    );
    let mut to_three = [removing, step(&mut one, 11, ack_from_2(1, 2))].concat();
    assert_eq!(one.log().commit(), 2);
    to_three.extend(step(&mut one, 12, Input::Propose(Bytes::from_static(b"x"))));
    // From here on node 2 is silent.
    let (mut lonely, mut behind) = (one.clone(), three.clone());

    // Node 3 holds entry 3 and says so: no commit follows.
    let acks = deliver(&mut three, 13, to_three);
    assert_eq!(three.log().last_index(), 3);
    deliver(&mut one, 14, acks);
    assert_eq!(
        one.log().commit(),
        2,
        "node 3's acknowledgement counts for nothing"
    );

    // Node 3, which never receives its removal (so the leader keeps
    // telling it), answers every heartbeat: they confirm no read (ReadIndex
    // needs a majority of the voters), and the leader still steps down.
    let mut now = 14;
    lonely.handle(Instant(now), Input::ReadIndex(7)).unwrap();
    let (mut to_three, mut ready) = drain(&mut lonely, now);
    let mut answers = 0;
    while lonely.is_leader() && now < 2_000 {
        assert!(
            lonely.progress().unwrap().contains_key(&3),
            "still departing"
        );
        now += 10;
        let heartbeats = to_three
            .into_iter()
            .filter(|e: &Envelope| matches!(e.message, Message::Heartbeat(_)))
            .collect();
        for reply in deliver(&mut behind, now, heartbeats) {
            answers += 1;
            lonely.handle(Instant(now), Input::Message(reply)).unwrap();
        }
        lonely.handle(Instant(now), Input::Timeout).unwrap();
        let (sent, confirmed) = drain(&mut lonely, now);
        to_three = sent;
        ready.extend(confirmed);
    }
    assert!(ready.is_empty(), "node 3 confirmed a read");
    assert!(
        !lonely.is_leader(),
        "CheckQuorum: node 3's answers do not keep node 1 in office"
    );
    // Node 2 was last heard at 11: CheckQuorum deposes node 1 within a
    // heartbeat interval of the timeout after that.
    let config = Config::new(1, [1, 2, 3]);
    let bound = 11 + config.check_quorum_timeout() + 2 * config.heartbeat_interval;
    assert!(now <= bound, "stepped down at {now}, after {bound}");
    assert!(answers >= 3, "node 3 answered {answers} heartbeats");
    assert_eq!(lonely.log().commit(), 2);
}

/// Ids are permanent: a leader refuses to add back an id that was ever
/// removed, as a learner or as a voter, whichever way it is asked, even
/// when the removal is known only from a snapshot (the removed ids are part
/// of the configuration, which snapshots carry).
#[test]
fn a_removed_id_is_never_added_back_even_after_a_snapshot() {
    let without_3 = Membership::with_voters([1, 3])
        .apply(MembershipChange::Remove(3))
        .unwrap();
    let persisted = PersistedState {
        hard_state: HardState {
            term: 1,
            voted_for: Some(1),
        },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: 5,
                term: 1,
                membership: without_3,
            },
            data: Bytes::new(),
        }),
        entries: Vec::new(),
    };
    let mut node = Node::restart(Config::new(1, [1, 3]), 1, Instant::ZERO, persisted).unwrap();
    step(&mut node, 1, Input::Campaign);
    step(&mut node, 2, Input::Timeout);
    assert!(node.is_leader() && node.log().commit() == 6);
    let refused = [
        Input::ChangeMembership(MembershipChange::AddLearner(3)),
        Input::ChangeMembership(MembershipChange::AddVoter(3)),
        Input::AddMember {
            id: 3,
            address: "h3:1".into(),
            promote: true,
        },
    ];
    for input in refused {
        let shown = format!("{input:?}");
        let refusal = node.handle(Instant(3), input).unwrap_err();
        assert_eq!(refusal, Rejected::RemovedId(3), "{shown}");
        assert_eq!(
            refusal.to_string(),
            "node 3 was removed; ids are never reused"
        );
    }
    assert_eq!(node.log().last_index(), 6, "nothing was appended");
    node.handle(
        Instant(4),
        Input::ChangeMembership(MembershipChange::AddLearner(4)),
    )
    .expect("a new id is taken");
}

/// Node 1 leading {1, 2, 3} with the native server's default timing
/// (election timeout 500–1000 ms, heartbeat 100 ms); every write is
/// acknowledged at once; `sent` collects what it sent, with the time.
struct Leader {
    node: Node,
    now: u64,
    sent: Vec<(u64, u64, Message)>,
}

impl Leader {
    fn new() -> Leader {
        let mut config = Config::new(1, [1, 2, 3]);
        config.election_timeout_min = 500;
        config.election_timeout_max = 1000;
        config.heartbeat_interval = 100;
        let mut leader = Leader {
            node: Node::new(config, 1, Instant::ZERO).unwrap(),
            now: 0,
            sent: Vec::new(),
        };
        leader.node.handle(Instant::ZERO, Input::Campaign).unwrap();
        leader.drain();
        for from in [2, 3] {
            leader.receive(
                from,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term: 1,
                    granted: true,
                    pre_vote: true,
                }),
            );
        }
        for from in [2, 3] {
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
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(write) => {
                    self.node
                        .handle(Instant(self.now), Input::Persisted(write.seq))
                        .unwrap();
                }
                Output::Send(envelope) => {
                    self.sent.push((self.now, envelope.to, envelope.message));
                }
                _ => {}
            }
        }
    }

    fn receive(&mut self, from: u64, message: Message) {
        self.node
            .handle(
                Instant(self.now),
                Input::Message(Envelope {
                    from,
                    to: 1,
                    message,
                }),
            )
            .unwrap();
        self.drain();
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
        leader
            .node
            .handle(
                Instant(leader.now),
                Input::Propose(Bytes::from_static(text.as_bytes())),
            )
            .unwrap();
        leader.drain();
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
        let due: Vec<(u64, u64)> = leader
            .sent
            .iter()
            .filter_map(|(at, to, m)| match m {
                Message::Heartbeat(h) if *at > slow_from && *at + 1000 <= leader.now => {
                    Some((*to, h.round))
                }
                _ => None,
            })
            .skip(answered)
            .collect();
        answered += due.len();
        for (from, round) in due {
            let term = leader.node.term();
            leader.receive(
                from,
                Message::HeartbeatResponse(distribkv_core::raft::HeartbeatResponse {
                    term,
                    round,
                    last_index: 1,
                }),
            );
        }
        assert!(
            leader.node.is_leader(),
            "stepped down {} ms after the links slowed",
            leader.now - slow_from
        );
    }
    assert!(answered > 40, "answers flowed again ({answered})");
    assert!(leader.timeout_nows().is_empty());
}
