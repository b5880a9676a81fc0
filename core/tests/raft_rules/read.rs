//! Follower reads (§6.4 of the dissertation): a follower takes only the
//! answer to a request of its own current run.

use distribkv_core::raft::{
    Config, Envelope, Input, Message, Node, Output, PersistedState, ReadIndexRequest,
    ReadIndexResponse,
};
use distribkv_core::time::Instant;

use super::{Follower, entry};

/// The ReadIndex request among `sent`.
fn read_request(sent: &[Message]) -> ReadIndexRequest {
    sent.iter()
        .find_map(|m| match m {
            Message::ReadIndex(request) => Some(request.clone()),
            _ => None,
        })
        .expect("a ReadIndex request to the leader")
}

/// Delivers `message` from leader 2 to node 1, leaving its outputs.
fn receive(node: &mut Node, now: u64, message: Message) {
    let envelope = Envelope {
        from: 2,
        to: 1,
        message,
    };
    node.handle(Instant(now), Input::Message(envelope)).unwrap();
}

/// The reads `node` answered since the last call: `(id, Some(index))` for
/// a read ready, `(id, None)` for one failed.
fn answered(node: &mut Node) -> Vec<(u64, Option<u64>)> {
    let mut reads = Vec::new();
    while let Some(output) = node.poll_output() {
        match output {
            Output::ReadReady { id, index } => reads.push((id, Some(index))),
            Output::ReadFailed { id, .. } => reads.push((id, None)),
            Output::Persist(write) => {
                node.handle(Instant(0), Input::Persisted(write.seq))
                    .unwrap();
            }
            _ => {}
        }
    }
    reads
}

/// A follower restarts in the same term, under the same leader, and asks
/// again with the same read id (ids start again with each run). An answer
/// to its previous run's request, delayed across the restart, must not be
/// taken for the new read: it was given at an older commit index, and
/// serving the new read there returns a stale value. Found by the seed
/// sweep (seed 7,609,165): a `get` read the value from before two
/// acknowledged appends.
#[test]
fn an_answer_to_a_request_of_the_previous_run_is_not_taken_after_a_restart() {
    // Node 1 follows leader 2 in term 1; entries 1 to 3 committed.
    let mut first = Follower::new();
    let entries = vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")];
    first.append(2, 1, (0, 0), entries.clone(), 3);
    first
        .node
        .handle(Instant(10), Input::FollowerRead(1))
        .unwrap();
    let sent = super::drain(&mut first.node, 10);
    let old = read_request(&sent.into_iter().map(|e| e.message).collect::<Vec<_>>());
    assert_eq!((old.term, old.id), (1, 1));
    // The leader answers index 3; the answer is held up in the network.
    let stale = ReadIndexResponse {
        term: 1,
        id: old.id,
        nonce: old.nonce,
        index: Some(3),
    };

    // Node 1 restarts from its disk (term 1, entries 1 to 3) with a new
    // seed, as every restart draws; entries 4 and 5 commit meanwhile.
    let mut persisted = PersistedState::default();
    persisted.hard_state.term = 1;
    persisted.entries = entries;
    let mut node = Node::restart(Config::new(1, [1, 2, 3]), 99, Instant(100), persisted).unwrap();
    let more = vec![entry(4, 1, "d"), entry(5, 1, "e")];
    super::feed(
        &mut node,
        101,
        2,
        Message::AppendEntries(distribkv_core::raft::AppendEntries {
            term: 1,
            prev_log_index: 3,
            prev_log_term: 1,
            entries: more,
            leader_commit: 5,
        }),
    );
    answered(&mut node);
    node.handle(Instant(102), Input::FollowerRead(1)).unwrap();
    let sent = super::drain(&mut node, 102);
    let new = read_request(&sent.into_iter().map(|e| e.message).collect::<Vec<_>>());
    assert_eq!(
        (new.term, new.id),
        (1, 1),
        "the same term and read id as the previous run's"
    );
    assert_ne!(new.nonce, old.nonce, "a new run draws a new nonce");

    // The previous run's answer arrives: not an answer to this read.
    receive(&mut node, 103, Message::ReadIndexResponse(stale.clone()));
    assert_eq!(
        answered(&mut node),
        vec![],
        "the stale answer served the new read"
    );

    // The leader's answer to this run's request is taken.
    let fresh = ReadIndexResponse {
        nonce: new.nonce,
        index: Some(5),
        ..stale
    };
    receive(&mut node, 104, Message::ReadIndexResponse(fresh));
    assert_eq!(answered(&mut node), vec![(1, Some(5))]);
}

/// A node that is not the leader refuses a follower's ReadIndex with the
/// request's nonce, so that the follower takes the refusal (the leader's
/// answers echo it the same way; the simulator's follower reads rely on
/// them).
#[test]
fn a_refusal_echoes_the_requests_nonce() {
    let mut follower = Follower::new();
    follower.append(2, 1, (0, 0), vec![entry(1, 1, "a")], 1);
    let sent = follower.receive(
        3,
        Message::ReadIndex(ReadIndexRequest {
            term: 1,
            id: 7,
            nonce: 0xABCD,
        }),
    );
    let refusal = ReadIndexResponse {
        term: 1,
        id: 7,
        nonce: 0xABCD,
        index: None,
    };
    assert_eq!(sent, vec![Message::ReadIndexResponse(refusal)]);
}
