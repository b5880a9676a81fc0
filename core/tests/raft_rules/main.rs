//! Figure 2's rules, one by one, on a single node fed hand-written messages
//! (in the style of etcd's raft unit tests). The simulator tests find what
//! breaks in rare interleavings; these pin each rule down directly.
//!
//! One file per family of rules: `append` (AppendEntries, §5.1 and §5.3),
//! `vote` (RequestVote and PreVote, §5.2 and §5.4.1), `removal` (membership:
//! what a removed id may still do), `check_quorum` (a leader that hears
//! nobody, or hears everyone late) and `read` (follower reads). The
//! helpers they share are here.

use bytes::Bytes;
use distribkv_core::raft::{
    AppendEntries, Config, Entry, Envelope, Input, Message, Node, Output, Payload, RequestVote,
};
use distribkv_core::time::Instant;

mod append;
mod check_quorum;
mod read;
mod removal;
mod vote;

/// Node `id` of `voters` with the native server's default timing
/// (election timeout 500–1000 ms, heartbeat 100 ms).
pub(crate) fn native_timing(id: u64, voters: impl IntoIterator<Item = u64>) -> Config {
    let mut config = Config::new(id, voters);
    config.election_timeout_min = 500;
    config.election_timeout_max = 1000;
    config.heartbeat_interval = 100;
    config
}

/// Takes `node`'s outputs at `now`, acknowledging its writes at once;
/// returns what it sent.
pub(crate) fn drain(node: &mut Node, now: u64) -> Vec<Envelope> {
    let mut sent = Vec::new();
    while let Some(output) = node.poll_output() {
        match output {
            Output::Persist(write) => {
                node.handle(Instant(now), Input::Persisted(write.seq))
                    .unwrap();
            }
            Output::Send(envelope) => sent.push(envelope),
            _ => {}
        }
    }
    sent
}

/// Delivers `message` from `from` to node 1 at `now`, acknowledging its
/// writes at once; returns what it sent.
pub(crate) fn deliver(node: &mut Node, now: u64, from: u64, message: Message) -> Vec<Envelope> {
    node.handle(
        Instant(now),
        Input::Message(Envelope {
            from,
            to: 1,
            message,
        }),
    )
    .unwrap();
    drain(node, now)
}

/// [`deliver`], keeping only the messages sent.
pub(crate) fn feed(node: &mut Node, now: u64, from: u64, message: Message) -> Vec<Message> {
    deliver(node, now, from, message)
        .into_iter()
        .map(|envelope| envelope.message)
        .collect()
}

pub(crate) fn entry(index: u64, term: u64, text: &'static str) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(Bytes::from_static(text.as_bytes())),
    }
}

/// Node 1 of {1, 2, 3}; every write is acknowledged at once; returns what it sent.
pub(crate) struct Follower {
    pub(crate) node: Node,
    now: u64,
}

impl Follower {
    pub(crate) fn new() -> Follower {
        Follower {
            node: Node::new(Config::new(1, [1, 2, 3]), 1, Instant::ZERO).unwrap(),
            now: 0,
        }
    }

    pub(crate) fn receive(&mut self, from: u64, message: Message) -> Vec<Message> {
        self.now += 1;
        feed(&mut self.node, self.now, from, message)
    }

    pub(crate) fn append(
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

    pub(crate) fn terms(&self) -> Vec<u64> {
        let log = self.node.log();
        log.entries(log.first_index(), log.last_index())
            .map(|e| e.term)
            .collect()
    }
}

pub(crate) fn vote(term: u64, last: (u64, u64), pre_vote: bool) -> Message {
    Message::RequestVote(RequestVote {
        term,
        last_log_index: last.0,
        last_log_term: last.1,
        pre_vote,
        transfer: false,
    })
}
