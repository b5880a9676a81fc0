//! The Raft node: state, the single entry point [`Node::handle`], timers,
//! incoming messages and role changes. Durability and the output queue live
//! in `durability`, the read-only accessors in `inspect`; the algorithm
//! itself lives in the sibling modules (`election`, `replication`,
//! `snapshot`, `read`, `transfer`), each an `impl Node` block for one concern.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

use super::api::{Accepted, Input, Output, Rejected, Stats};
use super::config::{Config, ConfigError};
use super::durability::{Held, PendingWrite};
use super::log::RaftLog;
use super::message::{Envelope, Message};
use super::progress::Progress;
use super::quorum::VoteTally;
use super::read::{ForwardedRead, ReadState};
use super::storage::{PersistedState, Write};
use super::types::{HardState, LogIndex, Membership, NodeId, SnapshotMeta, Term};
use crate::rng::Rng;
use crate::time::Instant;

/// The leader's state: exists only while leading.
#[derive(Clone, Debug)]
pub(super) struct LeaderState {
    /// Every other member's progress, and that of each node in `departing`.
    pub progress: BTreeMap<NodeId, Progress>,
    /// Nodes whose removal is committed but who may not know it yet: the
    /// leader keeps replicating to them until it can tell them (see
    /// `sync_progress`). Invariant: none is a member of the latest or of the
    /// committed configuration, each has an entry in `progress`, and none
    /// counts toward any quorum (those count the configuration's voters).
    pub departing: BTreeMap<NodeId, Departure>,
    /// Next heartbeat.
    pub heartbeat_deadline: Instant,
    /// Next CheckQuorum check (every heartbeat interval).
    pub check_quorum_deadline: Instant,
    /// When a CheckQuorum check last found a majority heard from (or when
    /// leadership began). Invariant: `quorum_heard_at <= now`.
    pub quorum_heard_at: Instant,
    /// ReadIndex rounds and waiting reads.
    pub reads: ReadState,
    /// A leadership transfer in progress: target and deadline.
    pub transfer: Option<(NodeId, Instant)>,
    /// A `TimeoutNow` was sent in this term: no more lease reads in it.
    pub timeout_now_sent: bool,
    /// Bytes of entries appended but not yet committed.
    pub uncommitted_bytes: usize,
    /// Followers to send AppendEntries to when the outputs are next flushed.
    pub append_needed: Vec<NodeId>,
    /// Send AppendEntries to every follower when the outputs are next flushed.
    pub append_to_all: bool,
}

/// A node the leader says farewell to: its removal (the membership entry at
/// `removed_at`) is committed, and the leader replicates to it until a
/// heartbeat whose commit index covers that entry has been answered, or
/// until `until` (it may be dead: a replaced machine).
#[derive(Clone, Debug)]
pub(super) struct Departure {
    /// Index of the membership entry that removed it.
    pub removed_at: LogIndex,
    /// The heartbeat round that first told it its removal is committed
    /// (sent once it had acknowledged `removed_at`).
    pub told_in_round: Option<u64>,
    /// When the leader stops trying.
    pub until: Instant,
}

/// A role and the state that only that role has.
#[derive(Clone, Debug)]
pub(super) enum Role {
    Follower,
    PreCandidate {
        votes: VoteTally,
    },
    Candidate {
        votes: VoteTally,
        self_vote_seq: u64,
    },
    Leader(Box<LeaderState>),
}

impl Role {
    /// The progress of follower `peer`, when leading and tracking it.
    pub(super) fn follower_progress(&mut self, peer: NodeId) -> Option<&mut Progress> {
        match self {
            Role::Leader(leader) => leader.progress.get_mut(&peer),
            _ => None,
        }
    }

    /// The progress of follower `from`, whose answer just arrived, marked
    /// recently active (CheckQuorum counts it). An answer that finds this
    /// node no longer leading is counted as `unexpected`, one from a node it
    /// does not track as `misaddressed`; both are dropped.
    pub(super) fn answering_follower(
        &mut self,
        from: NodeId,
        stats: &mut Stats,
    ) -> Option<&mut Progress> {
        let Role::Leader(leader) = self else {
            stats.unexpected += 1;
            return None;
        };
        let Some(progress) = leader.progress.get_mut(&from) else {
            stats.misaddressed += 1;
            return None;
        };
        progress.recent_active = true;
        Some(progress)
    }
}

/// A snapshot being received chunk by chunk.
#[derive(Clone, Debug)]
pub(super) struct SnapshotAssembly {
    pub meta: SnapshotMeta,
    pub total_len: u64,
    pub data: Vec<u8>,
}

/// A Raft node. See the crate documentation for the run loop.
#[derive(Clone, Debug)]
pub struct Node {
    pub(super) id: NodeId,
    pub(super) config: Config,
    pub(super) rng: Rng,
    /// Latest term seen (may not be durable yet; see `durable_hard_state`).
    pub(super) term: Term,
    /// Vote cast in `term`.
    pub(super) voted_for: Option<NodeId>,
    /// The leader of `term`, if known.
    pub(super) leader: Option<NodeId>,
    pub(super) role: Role,
    pub(super) log: RaftLog,
    /// Data of the snapshot `log.snapshot()` describes (empty without one).
    pub(super) snapshot_data: Bytes,
    /// When a follower or candidate campaigns next.
    pub(super) election_deadline: Instant,
    /// Last time a leader of the current term was heard from.
    pub(super) leader_contact: Option<Instant>,
    /// With lease reads, a node that restarted refuses votes and pre-votes
    /// (except for a leadership transfer) until then: see [`Node::restart`].
    pub(super) restart_lease_until: Instant,
    pub(super) incoming_snapshot: Option<SnapshotAssembly>,
    /// Reads forwarded to the leader (follower reads), by id. Invariant:
    /// empty unless following `leader` in `term` (failed on any change).
    pub(super) forwarded_reads: BTreeMap<u64, ForwardedRead>,
    /// Drawn from the seed when the node starts, sent with its follower
    /// reads and echoed by the leader ([`ReadIndexRequest::nonce`](super::message::ReadIndexRequest::nonce)):
    /// only answers to this run's requests are taken.
    pub(super) read_nonce: u64,
    /// A candidate asked for our vote although we are no voter in our
    /// latest configuration (so a configuration we do not hold counts us),
    /// and its log is behind ours: it cannot win without us, and we refuse
    /// it. Until we hear from a leader we stand for election ourselves
    /// (`stands_for_election`). Volatile: a candidate that still needs us
    /// asks again.
    pub(super) needed_as_voter: bool,
    pub(super) now: Instant,
    pub(super) stats: Stats,
    // Durability.
    pub(super) next_seq: u64,
    pub(super) acked_seq: u64,
    pub(super) pending_writes: VecDeque<PendingWrite>,
    pub(super) durable_index: LogIndex,
    pub(super) durable_hard_state: HardState,
    pub(super) held: VecDeque<Held>,
    // Outputs.
    pub(super) staged_write: Write,
    /// Lowest index after which the staged write replaces stored entries.
    pub(super) staged_clip: LogIndex,
    pub(super) staged: VecDeque<Output>,
    pub(super) outputs: VecDeque<Output>,
    /// An emptied [`Output::Apply`] vector handed back by the driver.
    pub(super) apply_buffer: Vec<super::types::Entry>,
}

impl Node {
    /// A fresh node that has never run: empty log, term 0. It has answered
    /// no leader, so it owes no lease and votes at once.
    pub fn new(config: Config, seed: u64, now: Instant) -> Result<Node, ConfigError> {
        let mut node = Node::restart(config, seed, now, PersistedState::default())?;
        node.restart_lease_until = Instant::ZERO;
        Ok(node)
    }

    /// A node restarting from what its stable storage held. The application
    /// restores its state machine from `persisted.snapshot` itself; committed
    /// entries after it are handed out again by [`Output::Apply`] once the
    /// node learns the commit index.
    ///
    /// With lease reads on, the node refuses votes and pre-votes (but not a
    /// leadership transfer's votes) for `election_timeout_min` after `now`.
    /// Before the crash it may have answered a leader's heartbeat round: the
    /// leader's lease counts on that answer as a promise not to help elect
    /// anyone else for `election_timeout_min` after it (CheckQuorum's leader
    /// stickiness, see `in_leader_lease`). That promise lives in volatile
    /// state (`leader`, `leader_contact`), which the crash wiped; without
    /// the lockout the node would grant votes at once, a new leader could
    /// commit while the old one still serves reads from its lease, and those
    /// reads would be stale. The node answered that round before it crashed,
    /// so before `now`: refusing until `now + election_timeout_min` keeps
    /// the promise whatever it was. A transfer's vote stays allowed: the
    /// leader that sent `TimeoutNow` has stopped lease reads for its term
    /// (see `read_index`). A cluster that restarts as a whole waits up to one
    /// minimum election timeout longer for its first leader.
    pub fn restart(
        config: Config,
        seed: u64,
        now: Instant,
        persisted: PersistedState,
    ) -> Result<Node, ConfigError> {
        config.validate()?;
        let restart_lease_until = if config.lease_reads {
            now + config.election_timeout_min
        } else {
            Instant::ZERO
        };
        let initial = Membership {
            voters: {
                let mut v = config.voters.clone();
                v.sort_unstable();
                v
            },
            learners: {
                let mut l = config.learners.clone();
                l.sort_unstable();
                l
            },
            addresses: {
                let mut a = config.addresses.clone();
                a.sort_unstable();
                a.dedup_by_key(|(id, _)| *id);
                a
            },
            removed: Vec::new(),
            promoting: None,
        };
        let (meta, snapshot_data) = match persisted.snapshot {
            Some(snapshot) => (snapshot.meta, snapshot.data),
            None => (
                SnapshotMeta {
                    index: 0,
                    term: 0,
                    membership: initial,
                },
                Bytes::new(),
            ),
        };
        let log = RaftLog::restore(meta, persisted.entries);
        let mut node = Node {
            id: config.id,
            rng: Rng::new(seed ^ config.id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            config,
            term: persisted.hard_state.term,
            voted_for: persisted.hard_state.voted_for,
            leader: None,
            role: Role::Follower,
            durable_index: log.last_index(),
            log,
            snapshot_data,
            election_deadline: Instant::NEVER,
            leader_contact: None,
            restart_lease_until,
            incoming_snapshot: None,
            forwarded_reads: BTreeMap::new(),
            read_nonce: Rng::new(seed ^ 0x7EAD_1D5E_ED5E_ED00).next_u64(),
            needed_as_voter: false,
            now,
            stats: Stats::default(),
            next_seq: 1,
            acked_seq: 0,
            pending_writes: VecDeque::new(),
            durable_hard_state: persisted.hard_state,
            held: VecDeque::new(),
            staged_write: Write::default(),
            staged_clip: LogIndex::MAX,
            staged: VecDeque::new(),
            outputs: VecDeque::new(),
            apply_buffer: Vec::new(),
        };
        node.reset_election_timer();
        Ok(node)
    }

    /// Feeds one input. `now` must not go backwards (an earlier time is
    /// treated as the latest one seen). Inputs may be fed several at a time
    /// before the outputs are drained: the node then batches its writes and
    /// messages.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<Accepted, Rejected> {
        self.now = self.now.max(now);
        self.expire_forwarded_reads();
        match input {
            Input::Timeout => {
                self.handle_timeout();
                Ok(Accepted::Done)
            }
            Input::Message(envelope) => {
                self.handle_message(envelope);
                Ok(Accepted::Done)
            }
            Input::Propose(command) => self.propose(command),
            Input::ReadIndex(id) => self.read_index(id).map(|()| Accepted::Done),
            Input::Persisted(seq) => self.handle_persisted(seq).map(|()| Accepted::Done),
            Input::Compact { index, data } => self.compact(index, data).map(|()| Accepted::Done),
            Input::Campaign => {
                if !self.is_voter() {
                    return Err(Rejected::NotVoter);
                }
                if !self.is_leader() {
                    self.campaign(false);
                }
                Ok(Accepted::Done)
            }
            Input::TransferLeadership(to) => self.transfer_leadership(to).map(|()| Accepted::Done),
            Input::ChangeMembership(change) => {
                self.change_membership(change).map(|()| Accepted::Done)
            }
            Input::AddMember {
                id,
                address,
                promote,
            } => self
                .add_member(id, address, promote)
                .map(|()| Accepted::Done),
            Input::Wake => {
                self.wake();
                Ok(Accepted::Done)
            }
            Input::FollowerRead(id) => self.follower_read(id).map(|()| Accepted::Done),
        }
    }

    /// The next output, or `None` when there is nothing to do until the next input.
    ///
    /// Outputs come in the order the driver must execute them: a
    /// [`Output::Persist`] comes before the messages produced with it.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.flush();
        }
        self.outputs.pop_front()
    }

    /// When the node next needs [`Input::Timeout`]; `Instant::NEVER` if nothing is scheduled.
    pub fn poll_timeout(&self) -> Instant {
        match &self.role {
            Role::Leader(leader) => {
                let mut deadline = leader.heartbeat_deadline;
                if self.config.check_quorum {
                    deadline = deadline.min(leader.check_quorum_deadline);
                }
                if let Some((_, transfer_deadline)) = leader.transfer {
                    deadline = deadline.min(transfer_deadline);
                }
                deadline
            }
            // A forwarded read fails once its answer is overdue.
            _ => self
                .forwarded_reads
                .values()
                .map(|read| read.sent_at + self.config.election_timeout_max)
                .fold(self.election_deadline, Instant::min),
        }
    }

    fn handle_timeout(&mut self) {
        let now = self.now;
        if let Role::Leader(leader) = &mut self.role {
            if let Some((_, deadline)) = leader.transfer
                && now >= deadline
            {
                leader.transfer = None;
            }
            if self.config.check_quorum && now >= leader.check_quorum_deadline {
                // CheckQuorum (§6.2), checked at every heartbeat interval: the
                // leader steps down once no majority was heard from for a whole
                // `check_quorum_timeout`, so within one heartbeat interval of
                // that. (With checks one election timeout apart, a leader that
                // stopped hearing its followers just after a check stepped down
                // only at the second check: up to two timeouts later, during
                // which its heartbeats kept the followers from electing anyone.)
                leader.check_quorum_deadline = now + self.config.heartbeat_interval;
                let quorum_heard_at = leader.quorum_heard_at;
                if self.has_active_quorum() {
                    if let Role::Leader(leader) = &mut self.role {
                        leader.quorum_heard_at = now;
                    }
                } else if now >= quorum_heard_at + self.config.check_quorum_timeout() {
                    self.step_down_handing_over();
                    return;
                }
            }
            if let Role::Leader(leader) = &mut self.role
                && now >= leader.heartbeat_deadline
            {
                self.broadcast_heartbeat();
            }
        } else if now >= self.election_deadline {
            if self.stands_for_election() {
                self.campaign(false);
            } else {
                self.reset_election_timer();
            }
        }
    }

    fn handle_message(&mut self, envelope: Envelope) {
        self.stats.messages_received += 1;
        let Envelope { from, to, message } = envelope;
        // Senders outside the membership this node knows are heard: a new
        // node learns the membership from the log, which may come from a
        // leader added after it was configured. What counts is checked where
        // it matters: only voters' votes count, only members get progress.
        if to != self.id || from == self.id || from == 0 {
            self.stats.misaddressed += 1;
            return;
        }
        // A removed id never disturbs the cluster: whatever it sends (votes,
        // pre-votes, appends, a higher term) is dropped before it is looked
        // at. Only a committed removal counts: one still in flight may be
        // truncated away, and a leader that removes itself keeps leading
        // until its removal commits (§4.2.2).
        // The one exception: the leader hears the answers, in its own term,
        // of a node it is telling that its removal is committed.
        if self.log.committed_membership().is_removed(from)
            && !self.is_farewell_answer(from, &message)
        {
            self.stats.from_removed += 1;
            return;
        }
        if !self.is_well_formed(&message) {
            self.stats.malformed += 1;
            return;
        }
        let term = message.term();
        if term > self.term {
            match &message {
                // A pre-vote never changes anybody's term (§9.6).
                Message::RequestVote(m) if m.pre_vote => {}
                Message::RequestVoteResponse(m) if m.pre_vote && m.granted => {}
                // Leader stickiness: a node that heard from a live leader
                // ignores disruptive candidates (unless the leader asked for it).
                Message::RequestVote(m) if !m.transfer && self.in_leader_lease() => {
                    self.stats.ignored_in_lease += 1;
                    return;
                }
                Message::AppendEntries(_) | Message::Heartbeat(_) | Message::InstallSnapshot(_) => {
                    self.become_follower(term, Some(from));
                }
                _ => self.become_follower(term, None),
            }
        } else if term < self.term {
            self.stats.stale_term += 1;
            self.answer_stale(from, &message);
            return;
        }
        match message {
            Message::RequestVote(m) => self.handle_request_vote(from, m),
            Message::RequestVoteResponse(m) => self.handle_vote_response(from, m),
            Message::AppendEntries(m) => self.handle_append_entries(from, m),
            Message::AppendEntriesResponse(m) => self.handle_append_response(from, m),
            Message::Heartbeat(m) => self.handle_heartbeat(from, m),
            Message::HeartbeatResponse(m) => self.handle_heartbeat_response(from, m),
            Message::InstallSnapshot(m) => self.handle_install_snapshot(from, *m),
            Message::InstallSnapshotResponse(m) => self.handle_snapshot_response(from, m),
            Message::TimeoutNow(_) => self.handle_timeout_now(from),
            Message::ReadIndex(m) => self.handle_read_index_request(from, m),
            Message::ReadIndexResponse(m) => self.handle_read_index_response(from, m),
        }
    }

    /// Whether `message` from the removed node `from` answers this leader's
    /// farewell replication (see `LeaderState::departing`): a response of
    /// the leader's own term. Such an answer only moves that node's
    /// progress, which no quorum counts.
    fn is_farewell_answer(&self, from: NodeId, message: &Message) -> bool {
        let Role::Leader(leader) = &self.role else {
            return false;
        };
        leader.departing.contains_key(&from)
            && message.term() == self.term
            && matches!(
                message,
                Message::AppendEntriesResponse(_)
                    | Message::HeartbeatResponse(_)
                    | Message::InstallSnapshotResponse(_)
            )
    }

    /// A message from an older term: tell a stale leader or candidate about
    /// the newer term (with PreVote and CheckQuorum it would otherwise never
    /// learn it and could stay stuck); drop stale responses.
    fn answer_stale(&mut self, from: NodeId, message: &Message) {
        use super::message::{AppendEntriesResponse, RequestVoteResponse};
        let reply = match message {
            Message::AppendEntries(_) | Message::Heartbeat(_) | Message::InstallSnapshot(_) => {
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    term: self.term,
                    index: 0,
                    success: false,
                    conflict: None,
                })
            }
            Message::RequestVote(m) => Message::RequestVoteResponse(RequestVoteResponse {
                term: self.term,
                granted: false,
                pre_vote: m.pre_vote,
            }),
            _ => return,
        };
        self.send(from, reply);
    }

    /// Checks a peer message for internal consistency. Anything that fails is
    /// dropped: it cannot come from a correct peer.
    fn is_well_formed(&self, message: &Message) -> bool {
        // The last term can never be campaigned past: no correct peer reaches it.
        if message.term() == Term::MAX {
            return false;
        }
        match message {
            Message::AppendEntries(m) => {
                m.prev_log_term <= m.term
                    && m.entries.iter().enumerate().all(|(i, e)| {
                        m.prev_log_index.checked_add(1 + i as u64) == Some(e.index)
                            && e.term <= m.term
                            && e.term >= m.prev_log_term
                            && (i == 0 || e.term >= m.entries[i - 1].term)
                    })
            }
            Message::InstallSnapshot(m) => {
                m.meta.term <= m.term
                    && m.meta.index > 0
                    && m.total_len <= self.config.max_snapshot_bytes
                    && m.offset
                        .checked_add(m.data.len() as u64)
                        .is_some_and(|end| end <= m.total_len)
                    && (!m.done || m.offset + m.data.len() as u64 == m.total_len)
                    && !m.meta.membership.voters.is_empty()
            }
            _ => true,
        }
    }

    // ---- role changes ----------------------------------------------------

    /// Becomes a follower in `term` (resetting the vote if the term is new).
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term || leader != self.leader {
            self.fail_forwarded_reads();
        }
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.stage_hard_state();
        }
        if let Role::Leader(state) = &mut self.role {
            let reads = state.reads.drain_all();
            self.fail_reads(reads, leader);
        }
        if leader != self.leader {
            self.incoming_snapshot = None;
        }
        self.leader = leader;
        self.role = Role::Follower;
        self.reset_election_timer();
    }

    /// Restarts the timers from now after the driver withheld timeouts.
    fn wake(&mut self) {
        let now = self.now;
        let check_quorum_in = self.config.election_timeout_min;
        match &mut self.role {
            Role::Leader(leader) => {
                leader.heartbeat_deadline = now;
                leader.check_quorum_deadline = now + check_quorum_in;
            }
            _ => self.reset_election_timer(),
        }
    }

    /// Draws a new random election timeout from now.
    pub(super) fn reset_election_timer(&mut self) {
        let timeout = self.rng.range(
            self.config.election_timeout_min,
            self.config.election_timeout_max,
        );
        self.election_deadline = self.now + timeout;
    }

    /// Whether a leader was heard from within the minimum election timeout
    /// (only with CheckQuorum, which makes that a promise), or this node
    /// restarted too recently to know (with lease reads: see [`Node::restart`]).
    pub(super) fn in_leader_lease(&self) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        if self.is_leader() || self.now < self.restart_lease_until {
            return true;
        }
        self.leader.is_some()
            && self
                .leader_contact
                .is_some_and(|t| self.now < t + self.config.election_timeout_min)
    }
}
