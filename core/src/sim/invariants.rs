//! Raft's safety properties (Figure 3 of the paper), checked incrementally
//! after every simulated event:
//!
//! - **Election Safety**: at most one leader per term.
//! - **Leader Append-Only**: a leader never overwrites or deletes its entries.
//! - **Log Matching**: entries with the same index and term have the same
//!   content and the same predecessor term — which, by induction, means the
//!   logs are identical up to there. Checked on every entry any node writes.
//! - **Leader Completeness**: a new leader holds every entry committed in an
//!   earlier term.
//! - **State Machine Safety**: no two nodes apply different entries (or
//!   snapshots) at the same index.
//!
//! And the node-local invariants: terms never decrease (across restarts too),
//! at most one vote per term and voter (durable or sent), and
//! `snapshot <= applied <= commit <= last index`, `durable <= last index`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::kv::AppliedRecord;
use crate::raft::{
    Entry, Envelope, LogIndex, Message, Node, NodeId, PersistedState, RoleKind, Term, Write,
};

/// A hash of an entry's payload.
pub fn payload_digest(entry: &Entry) -> u64 {
    entry.payload.digest()
}

/// What the checker remembers of one node between events.
#[derive(Clone, Debug, Default)]
struct Watch {
    term: Term,
    role: Option<RoleKind>,
    last_index: LogIndex,
    checked_commit: LogIndex,
    /// Highest durable term ever seen for this node (survives restarts).
    durable_term: Term,
}

/// The incremental safety checker.
#[derive(Clone, Debug, Default)]
pub struct SafetyChecker {
    leaders: BTreeMap<Term, NodeId>,
    votes: BTreeMap<(NodeId, Term), NodeId>,
    /// (index, term) -> (payload digest, predecessor term)
    entries: BTreeMap<(LogIndex, Term), (u64, Option<Term>)>,
    /// index -> (term, payload digest, the highest term that had a leader
    /// when the checker first saw it committed: the entry was committed in
    /// that term or an earlier one)
    committed: BTreeMap<LogIndex, (Term, u64, Term)>,
    applied: BTreeMap<LogIndex, (Term, u64)>,
    snapshots: BTreeMap<LogIndex, (Term, u64)>,
    watches: BTreeMap<NodeId, Watch>,
    violations: Vec<String>,
}

impl SafetyChecker {
    /// Violations found so far, in order.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Records a violation found outside the checker (e.g. a livelock).
    pub fn report(&mut self, text: String) {
        self.violation(text);
    }

    fn violation(&mut self, text: String) {
        if self.violations.len() < 100 {
            self.violations.push(text);
        }
    }

    /// Call before feeding an input to `node`, to remember its state.
    pub fn before(&mut self, node: &Node) {
        let watch = self.watches.entry(node.id()).or_default();
        watch.term = node.term();
        watch.role = Some(node.role());
        watch.last_index = node.log().last_index();
    }

    /// A node (re)started from its disk: forget its volatile state.
    pub fn restarted(&mut self, node: &Node) {
        let id = node.id();
        let durable = node.durable_hard_state().term;
        let watch = self.watches.entry(id).or_default();
        if node.term() < watch.durable_term {
            let text = format!(
                "Term monotonicity: node {id} restarted at term {} after term {} was durable",
                node.term(),
                watch.durable_term
            );
            self.violation(text);
        }
        let watch = self.watches.entry(id).or_default();
        watch.durable_term = watch.durable_term.max(durable);
        watch.term = node.term();
        watch.role = Some(node.role());
        watch.last_index = node.log().last_index();
        watch.checked_commit = node.log().commit();
    }

    /// A write the node emitted while handling the input `before` saw.
    pub fn observe_write(&mut self, node: &Node, write: &Write) {
        let id = node.id();
        let watch = self.watches.get(&id).cloned().unwrap_or_default();
        if let Some(first) = write.entries.first() {
            if watch.role == Some(RoleKind::Leader)
                && node.role() == RoleKind::Leader
                && watch.term == node.term()
                && first.index <= watch.last_index
            {
                let text = format!(
                    "Leader Append-Only: leader {id} of term {} rewrote its log from index {} (its last was {})",
                    node.term(),
                    first.index,
                    watch.last_index
                );
                self.violation(text);
            }
        }
        let mut previous_term = write
            .entries
            .first()
            .and_then(|first| node.log().term_at(first.index - 1));
        for entry in &write.entries {
            let digest = payload_digest(entry);
            match self.entries.get(&(entry.index, entry.term)) {
                Some(&(known_digest, known_previous)) => {
                    let previous_differs =
                        matches!((known_previous, previous_term), (Some(a), Some(b)) if a != b);
                    if known_digest != digest || previous_differs {
                        let text = format!(
                            "Log Matching: node {id} holds a different entry at index {} term {} than another node",
                            entry.index, entry.term
                        );
                        self.violation(text);
                    }
                }
                None => {
                    self.entries
                        .insert((entry.index, entry.term), (digest, previous_term));
                }
            }
            previous_term = Some(entry.term);
        }
    }

    /// A message the node sent.
    pub fn observe_send(&mut self, envelope: &Envelope) {
        if let Message::RequestVoteResponse(response) = &envelope.message
            && response.granted
            && !response.pre_vote
        {
            self.record_vote(envelope.from, response.term, envelope.to, "granted");
        }
    }

    fn record_vote(&mut self, voter: NodeId, term: Term, candidate: NodeId, how: &str) {
        match self.votes.get(&(voter, term)) {
            Some(&other) if other != candidate => {
                let text = format!(
                    "One vote per term: node {voter} {how} a vote to {candidate} in term {term} after voting for {other}"
                );
                self.violation(text);
            }
            Some(_) => {}
            None => {
                self.votes.insert((voter, term), candidate);
            }
        }
    }

    /// Entries and snapshots a replica applied.
    pub fn observe_applied(&mut self, id: NodeId, records: &[AppliedRecord]) {
        for record in records {
            let (map, index, term, digest, what) = match *record {
                AppliedRecord::Entry {
                    index,
                    term,
                    digest,
                } => (&mut self.applied, index, term, digest, "entry"),
                AppliedRecord::Snapshot {
                    index,
                    term,
                    digest,
                } => (&mut self.snapshots, index, term, digest, "snapshot"),
            };
            match map.get(&index) {
                Some(&(known_term, known_digest))
                    if (known_term, known_digest) != (term, digest) =>
                {
                    let text = format!(
                        "State Machine Safety: node {id} applied a different {what} at index {index} (term {term}) than another node (term {known_term})"
                    );
                    self.violation(text);
                }
                Some(_) => {}
                None => {
                    map.insert(index, (term, digest));
                }
            }
        }
    }

    /// After an event: check every up node.
    pub fn after_event<'a>(&mut self, nodes: impl Iterator<Item = &'a Node>) {
        for node in nodes {
            self.check_node(node);
        }
    }

    fn check_node(&mut self, node: &Node) {
        let id = node.id();
        let log = node.log();
        let watch = self.watches.get(&id).cloned().unwrap_or_default();
        let (snapshot, applied, commit, last) = (
            log.snapshot().index,
            log.applied(),
            log.commit(),
            log.last_index(),
        );
        if !(snapshot <= applied && applied <= commit && commit <= last) {
            self.violation(format!(
                "Index order: node {id} has snapshot {snapshot}, applied {applied}, commit {commit}, last {last}"
            ));
        }
        if node.durable_index() > last {
            self.violation(format!(
                "Index order: node {id} durable index {} > last {last}",
                node.durable_index()
            ));
        }
        if node.term() < watch.term {
            self.violation(format!(
                "Term monotonicity: node {id} went from term {} to {}",
                watch.term,
                node.term()
            ));
        }
        let durable = node.durable_hard_state();
        if durable.term < watch.durable_term {
            self.violation(format!(
                "Term monotonicity: node {id} durable term went from {} to {}",
                watch.durable_term, durable.term
            ));
        }
        if let Some(candidate) = durable.voted_for {
            self.record_vote(id, durable.term, candidate, "durably cast");
        }
        // Election Safety.
        let is_new_leader = node.role() == RoleKind::Leader
            && (watch.role != Some(RoleKind::Leader) || watch.term != node.term());
        if node.role() == RoleKind::Leader {
            match self.leaders.get(&node.term()) {
                Some(&other) if other != id => {
                    let text = format!(
                        "Election Safety: nodes {other} and {id} both lead term {}",
                        node.term()
                    );
                    self.violation(text);
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(node.term(), id);
                }
            }
            self.record_vote(id, node.term(), id, "cast");
        }
        // Leader Completeness: the new leader of term T holds the latest
        // entry committed in a term before T. (A node may take office in
        // a term older than one whose leader has already committed: it
        // counted its votes late. Such a stale leader can commit nothing,
        // and Raft promises it nothing about entries committed after its
        // term.)
        if is_new_leader && let Some((index, (term, digest))) = self.committed_before(node.term()) {
            let holds = index <= snapshot
                || log
                    .entry(index)
                    .is_some_and(|e| e.term == term && payload_digest(e) == digest);
            if !holds {
                let text = format!(
                    "Leader Completeness: node {id} leads term {} without the entry committed at index {index} (term {term})",
                    node.term()
                );
                self.violation(text);
            }
        }
        // Committed entries agree everywhere.
        let from = watch.checked_commit.max(snapshot) + 1;
        for index in from..=commit {
            let Some(entry) = log.entry(index) else {
                continue;
            };
            let value = (entry.term, payload_digest(entry));
            match self.committed.get(&index) {
                Some(&(term, digest, _)) if (term, digest) != value => {
                    let text = format!(
                        "State Machine Safety: node {id} committed term {} at index {index}, another node committed term {}",
                        value.0, term
                    );
                    self.violation(text);
                }
                Some(_) => {}
                None => {
                    let by = self.leaders.last_key_value().map_or(0, |(&t, _)| t);
                    self.committed.insert(index, (value.0, value.1, by));
                }
            }
        }
        let watch = self.watches.entry(id).or_default();
        watch.checked_commit = commit;
        watch.term = node.term();
        watch.role = Some(node.role());
        watch.last_index = last;
        watch.durable_term = watch.durable_term.max(durable.term);
    }

    /// The lowest index a running replica can still write or apply again:
    /// its snapshot's, or what it applied if that is lower. What is below
    /// it on every replica may be forgotten ([`SafetyChecker::prune_below`]).
    pub fn floor_of_running(node: &Node) -> LogIndex {
        node.log().snapshot().index.min(node.log().applied())
    }

    /// The same for a replica that is down: the snapshot on its disk (0
    /// without one), since it replays the entries after it when it restarts.
    pub fn floor_of_stopped(disk: &PersistedState) -> LogIndex {
        disk.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }

    /// Forgets history below `index`, which no node can write or apply again.
    pub fn prune_below(&mut self, index: LogIndex) {
        self.entries = self.entries.split_off(&(index, 0));
        self.applied = self.applied.split_off(&index);
        // Keep the latest committed entry for Leader Completeness.
        let keep_from = index.min(self.committed.last_key_value().map_or(0, |(i, _)| *i));
        self.committed = self.committed.split_off(&keep_from);
        self.snapshots = self.snapshots.split_off(&index.saturating_sub(1));
    }

    /// The latest entry known committed in a term before `term`.
    fn committed_before(&self, term: Term) -> Option<(LogIndex, (Term, u64))> {
        self.committed
            .iter()
            .rev()
            .find(|&(_, &(_, _, by))| by < term)
            .map(|(&index, &(term, digest, _))| (index, (term, digest)))
    }

    /// Highest index known committed anywhere.
    pub fn committed_index(&self) -> LogIndex {
        self.committed.last_key_value().map_or(0, |(i, _)| *i)
    }

    /// The committed entry at `index`: its term and payload digest.
    pub fn committed_at(&self, index: LogIndex) -> Option<(Term, u64)> {
        self.committed
            .get(&index)
            .map(|&(term, digest, _)| (term, digest))
    }

    /// The leader of each term seen so far.
    pub fn leaders(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders
    }

    /// How many log positions the checker remembers (entries written,
    /// committed, applied, snapshots applied): what [`SafetyChecker::prune_below`]
    /// keeps bounded in a long run.
    pub fn remembered(&self) -> usize {
        self.entries.len() + self.committed.len() + self.applied.len() + self.snapshots.len()
    }
}
