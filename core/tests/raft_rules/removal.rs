//! Membership: when a node counts as removed, and what a removed id may
//! still do (nothing that disturbs the cluster or counts toward a quorum).

use crate::{Follower, entry, vote};
use bytes::Bytes;
use distribkv_core::raft::{
    AppendEntries, AppendEntriesResponse, Config, Entry, Envelope, HardState, Heartbeat, Input,
    Membership, MembershipChange, Message, Node, Output, Payload, PersistedState, Rejected,
    RequestVoteResponse, Snapshot, SnapshotMeta,
};
use distribkv_core::time::Instant;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn membership_entry(index: u64, term: u64, membership: Membership) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Membership(Box::new(membership)),
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

/// The nodes asked for a vote (`pre_vote`: for a pre-vote) in `sent`, in order.
fn asked(sent: &[Envelope], pre_vote: bool) -> Vec<u64> {
    let mut to: Vec<u64> = sent
        .iter()
        .filter(|e| matches!(&e.message, Message::RequestVote(r) if r.pre_vote == pre_vote))
        .map(|e| e.to)
        .collect();
    to.sort_unstable();
    to
}

/// A message from `from` to node 1.
fn to_1(from: u64, message: Message) -> Input {
    Input::Message(Envelope {
        from,
        to: 1,
        message,
    })
}

/// §4.2.2: a node whose removal is in its log but not yet committed still
/// stands for election (without counting its own vote), since it "might
/// still be needed until the Cnew entry is committed". Here leader 2 of
/// {1, 2, 3, 4} appended the removal of node 1 to node 1 only and died.
/// Nodes 3 and 4 cannot win: they need node 1's vote, which it refuses
/// them, its log being ahead of theirs (§5.4.1). Had node 1 not stood, the
/// cluster would have had no leader until node 2 came back (the seed sweep
/// found that with a crashed voter and a lost disk). Node 1 wins with 3
/// and 4, commits its removal with them, and steps down.
#[test]
fn a_node_whose_removal_is_not_committed_still_stands_for_election() {
    let mut one = Node::new(Config::new(1, [1, 2, 3, 4]), 1, Instant::ZERO).unwrap();
    let without_1 = Membership::with_voters([1, 2, 3, 4])
        .apply(MembershipChange::Remove(1))
        .unwrap();
    let append = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry(1, 1, "a"), membership_entry(2, 1, without_1)],
        leader_commit: 1,
    });
    step(&mut one, 1, to_1(2, append));
    assert!(!one.is_voter() && !one.is_removed());
    let Some(deadline) = one.election_deadline() else {
        panic!("a node whose removal is not committed must keep its election timer");
    };

    let sent = step(&mut one, deadline.0, Input::Timeout);
    assert_eq!(asked(&sent, true), vec![2, 3, 4], "a pre-vote round");
    let mut now = deadline.0;
    for pre_vote in [true, false] {
        let mut sent = Vec::new();
        for voter in [3, 4] {
            now += 1;
            let granted = Message::RequestVoteResponse(RequestVoteResponse {
                term: 2,
                granted: true,
                pre_vote,
            });
            sent.extend(step(&mut one, now, to_1(voter, granted)));
        }
        if pre_vote {
            assert_eq!(asked(&sent, false), vec![2, 3, 4], "then the election");
        }
    }
    assert!(
        one.is_leader() && one.term() == 2,
        "3 and 4 are a majority of {{2, 3, 4}}"
    );

    // Its no-op (index 3) and with it the removal commit with 3 and 4:
    // it is removed and leads no more.
    for voter in [3, 4] {
        now += 1;
        let ack = Message::AppendEntriesResponse(AppendEntriesResponse {
            term: 2,
            index: 3,
            success: true,
            conflict: None,
        });
        step(&mut one, now, to_1(voter, ack));
    }
    assert_eq!(one.log().commit(), 3);
    assert!(one.is_removed() && !one.is_leader());
}

/// The same after a restart, when the node knows no commit at all (the
/// sweep's seed 10904): node 4 was added as a learner, promoted, and its
/// removal appended, and it restarted. Every one of those entries may still
/// be the cluster's latest, so it stands (asking voters 1, 2 and 3 of its
/// latest configuration); only a committed removal keeps it quiet.
#[test]
fn a_restarted_node_whose_removal_it_cannot_know_committed_still_stands() {
    let initial = Membership::with_voters([1, 2, 3]);
    let learner = initial.apply(MembershipChange::AddLearner(4)).unwrap();
    let voter = learner.apply(MembershipChange::AddVoter(4)).unwrap();
    let removed = voter.apply(MembershipChange::Remove(4)).unwrap();
    let persisted = PersistedState {
        hard_state: HardState {
            term: 1,
            voted_for: None,
        },
        snapshot: None,
        entries: vec![
            entry(1, 1, "a"),
            membership_entry(2, 1, learner),
            membership_entry(3, 1, voter),
            membership_entry(4, 1, removed),
        ],
    };
    // It joined as a learner of {1, 2, 3}, as a new node is configured.
    let mut config = Config::new(4, [1, 2, 3]);
    config.learners = vec![4];
    let mut four = Node::restart(config, 4, Instant::ZERO, persisted).unwrap();
    assert_eq!(four.log().commit(), 0);
    assert!(!four.is_voter() && !four.is_removed());
    let Some(deadline) = four.election_deadline() else {
        panic!("a voter of an uncommitted configuration must keep its election timer");
    };
    let sent = step(&mut four, deadline.0, Input::Timeout);
    let mut asked: Vec<u64> = sent
        .iter()
        .filter(|e| matches!(&e.message, Message::RequestVote(r) if r.pre_vote))
        .map(|e| e.to)
        .collect();
    asked.sort_unstable();
    assert_eq!(asked, vec![1, 2, 3]);
}

/// A learner asked for its vote by a candidate whose log is behind its own
/// stands for election itself (the sweep's seed 8,813,285, a liveness
/// bug). Leader 3 of {1, 2, 3} had appended node 5's promotion (index 7,
/// term 3) to itself only; leader 1 of term 8, whose log lacked it, then
/// sent its entries to learner 5 only, and lost its disk for good. Node 3
/// (voters {1, 2, 3, 5} in its log) needed 2 and 5 and could not have 5's
/// vote (5's log was ahead); node 2 needed 3, which refused its older log;
/// and node 5, a learner in its own log, never campaigned. Here node 1 is
/// the learner of voters {2, 3, 4}; candidate 3 counts it a voter and asks
/// it; it refuses, then stands (asking voters 2, 3 and 4, its own vote not
/// counted), wins with 3 and 4, commits an entry of its term with them
/// (which brings them its log and configuration), hands over to the most
/// up-to-date voter (`TimeoutNow`) and steps down. A leader's message
/// before its timer fires ends it.
#[test]
fn a_learner_that_a_candidate_behind_it_needs_stands_for_election() {
    let mut config = Config::new(1, [2, 3, 4]);
    config.learners = vec![1];
    let learner = Node::new(config, 1, Instant::ZERO).unwrap();
    let append = Message::AppendEntries(AppendEntries {
        term: 2,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![entry(1, 1, "a"), entry(2, 2, "b")],
        leader_commit: 1,
    });
    let request = |pre_vote: bool| {
        Message::RequestVote(distribkv_core::raft::RequestVote {
            term: 3,
            last_log_index: 1,
            last_log_term: 1,
            pre_vote,
            transfer: false,
        })
    };
    let refused = |sent: &[Envelope]| {
        sent.iter().any(|e| {
            e.to == 3
                && matches!(
                    e.message,
                    Message::RequestVoteResponse(RequestVoteResponse { granted: false, .. })
                )
        })
    };

    for pre_vote in [true, false] {
        let mut one = learner.clone();
        step(&mut one, 1, to_1(2, append.clone()));
        assert!(
            !one.is_voter() && one.election_deadline().is_none(),
            "a learner does not campaign"
        );
        // A candidate that is not behind us (its log as long as ours) does
        // not make us stand: it can have our vote.
        let mut even = one.clone();
        let sent = step(
            &mut even,
            1_000,
            to_1(
                3,
                Message::RequestVote(distribkv_core::raft::RequestVote {
                    term: 3,
                    last_log_index: 2,
                    last_log_term: 2,
                    pre_vote,
                    transfer: false,
                }),
            ),
        );
        assert!(!refused(&sent) && even.election_deadline().is_none());

        let sent = step(&mut one, 1_000, to_1(3, request(pre_vote)));
        assert!(refused(&sent), "a candidate behind us is refused (§5.4.1)");
        let Some(deadline) = one.election_deadline() else {
            panic!("asked by a candidate behind it, the learner must arm its election timer");
        };
        assert!(
            (1_150..1_300).contains(&deadline.0),
            "a randomized election timeout: {deadline:?}"
        );

        // A leader heard before the timer fires: nothing to stand for.
        let mut led = one.clone();
        let heartbeat = Message::AppendEntries(AppendEntries {
            term: 3,
            prev_log_index: 2,
            prev_log_term: 2,
            entries: vec![],
            leader_commit: 1,
        });
        step(&mut led, 1_100, to_1(4, heartbeat));
        assert!(
            led.election_deadline().is_none(),
            "a leader's message ends it"
        );

        let sent = step(&mut one, deadline.0, Input::Timeout);
        assert_eq!(
            asked(&sent, true),
            vec![2, 3, 4],
            "the voters of its configuration, pre-vote first"
        );
        let mut now = deadline.0;
        for pre in [true, false] {
            let mut sent = Vec::new();
            for (i, voter) in [3, 4].into_iter().enumerate() {
                assert!(
                    !one.is_leader(),
                    "its own vote does not count: 3 alone is no majority"
                );
                now += 1;
                // A pre-vote is for the term after ours; a vote, for ours.
                let term = if pre { one.term() + 1 } else { one.term() };
                let granted = Message::RequestVoteResponse(RequestVoteResponse {
                    term,
                    granted: true,
                    pre_vote: pre,
                });
                sent.extend(step(&mut one, now, to_1(voter, granted)));
                if i == 0 {
                    assert!(!one.is_leader());
                }
            }
            if pre {
                assert_eq!(asked(&sent, false), vec![2, 3, 4], "then the election");
            }
        }
        assert!(
            one.is_leader() && !one.is_voter(),
            "3 and 4 are a majority of {{2, 3, 4}}"
        );

        // Its no-op (index 3) commits with 3 and 4: it hands over to 3 (the
        // first to match, the lowest id among equals) and steps down.
        let mut sent = Vec::new();
        for voter in [3, 4] {
            now += 1;
            let ack = Message::AppendEntriesResponse(AppendEntriesResponse {
                term: one.term(),
                index: 3,
                success: true,
                conflict: None,
            });
            sent.extend(step(&mut one, now, to_1(voter, ack)));
        }
        assert_eq!(one.log().commit(), 3);
        assert!(
            !one.is_leader(),
            "a learner leads only until an entry of its term commits"
        );
        let handed_to: Vec<u64> = sent
            .iter()
            .filter(|e| matches!(e.message, Message::TimeoutNow(_)))
            .map(|e| e.to)
            .collect();
        assert_eq!(
            handed_to.len(),
            1,
            "one voter told to campaign at once: {handed_to:?}"
        );
        assert!([3, 4].contains(&handed_to[0]));
        assert!(
            one.election_deadline().is_none(),
            "and it is a learner again, which does not campaign"
        );
    }
}
