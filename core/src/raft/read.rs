//! Linearizable reads without writing to the log: ReadIndex (§6.4 of the
//! dissertation) and, optionally, leader leases.
//!
//! A read at the leader records the commit index as its read index, then
//! waits until a majority has answered a heartbeat round started after the
//! read arrived: at that moment the leader was still leader, so no other
//! leader can have committed anything newer. The application serves the read
//! once it has applied the read index. A new leader first commits an entry of
//! its own term, so that its commit index is up to date (§8).
//!
//! Reads fed to the node in one batch (between two drains of its outputs)
//! share one round of heartbeats; rounds overlap, so a read never waits for
//! an earlier round to finish.
//!
//! **Follower reads** ([`Input::FollowerRead`](super::api::Input::FollowerRead),
//! §6.4 of the dissertation, TiKV's follower read): a follower asks its
//! leader for a read index ([`Message::ReadIndex`]); the leader treats it
//! exactly as one of its own reads (the same waiting for a commit in its
//! term, the same heartbeat round started after the request arrived, or
//! its lease) and answers the index ([`Message::ReadIndexResponse`]); the
//! follower emits [`Output::ReadReady`] and the application serves the
//! read once its own state machine has applied that index. Linearizable
//! for the same reason as the leader's reads: the index is at least the
//! commit index at some moment after the read was invoked, when the leader
//! was still leader, and a state machine that applied at least that far
//! reflects every write completed before the read began (state machine
//! safety makes every replica's applied prefix the same). The follower
//! fails the read ([`Output::ReadFailed`]) if its term or leader changes
//! before the answer, or if none comes within the maximum election
//! timeout (the request or the answer may be lost).
//!
//! Lease reads (`Config::lease_reads`, off by default) skip the round while
//! the leader holds a lease: followers that answered a round started at `t`
//! refuse to vote for anybody else until `t + election_timeout_min` on their
//! clocks (CheckQuorum's leader stickiness), so no other leader can exist
//! before then. The lease is shortened by `max_clock_drift_percent` to allow
//! for clocks that run at different rates; it assumes that bound holds.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::api::{Output, Rejected};
use super::message::{Message, ReadIndexRequest, ReadIndexResponse};
use super::node::{Node, Role};
use super::types::{LogIndex, NodeId, Term};
use crate::time::Instant;

/// Who asked the leader for a read: this node (`None`), or a follower and
/// the nonce its request carried ([`ReadIndexRequest::nonce`]).
pub(super) type Asker = Option<(NodeId, u64)>;

/// One read waiting for its round to be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRead {
    id: u64,
    from: Asker,
    index: LogIndex,
    round: u64,
}

/// A read this follower forwarded to its leader, waiting for the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ForwardedRead {
    /// The leader asked.
    pub leader: NodeId,
    /// The term it was asked in.
    pub term: Term,
    /// When; the read fails after the maximum election timeout.
    pub sent_at: Instant,
}

/// The leader's ReadIndex bookkeeping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadState {
    /// Latest heartbeat round started.
    round: u64,
    /// Start times of recent rounds, oldest first.
    started: VecDeque<(u64, Instant)>,
    /// Highest round confirmed by a majority.
    confirmed: u64,
    /// Reads assigned to a round, oldest first.
    pending: VecDeque<PendingRead>,
    /// Reads waiting for the leader's first commit in its term, or for the
    /// next round, with who asked.
    waiting: Vec<(u64, Asker)>,
    /// Start a round for the waiting reads at the next flush.
    round_needed: bool,
    /// Lease reads are safe until then.
    lease_until: Instant,
}

/// How many round start times the leader remembers.
const REMEMBERED_ROUNDS: usize = 64;

impl ReadState {
    /// A round is to start at the next flush.
    pub(super) fn round_needed(&self) -> bool {
        self.round_needed
    }

    /// Starts a new round at `now`; every waiting read joins it.
    pub fn start_round(&mut self, now: Instant) -> u64 {
        self.round += 1;
        if self.started.len() == REMEMBERED_ROUNDS {
            self.started.pop_front();
        }
        self.started.push_back((self.round, now));
        self.round
    }

    /// Removes every outstanding read (the leader is stepping down), with
    /// who asked for each.
    pub(super) fn drain_all(&mut self) -> Vec<(u64, Asker)> {
        let mut reads: Vec<(u64, Asker)> = self.pending.drain(..).map(|r| (r.id, r.from)).collect();
        reads.append(&mut self.waiting);
        reads
    }
}

impl Node {
    pub(super) fn read_index(&mut self, id: u64) -> Result<(), Rejected> {
        self.read_index_for(id, None)
    }

    /// A read of this node's (`from` = `None`) or of a follower's.
    fn read_index_for(&mut self, id: u64, from: Asker) -> Result<(), Rejected> {
        let committed_in_term = self.log.term_at(self.log.commit()) == Some(self.term);
        let lease_reads = self.config.lease_reads;
        let now = self.now;
        let commit = self.log.commit();
        let Role::Leader(leader) = &mut self.role else {
            return Err(Rejected::NotLeader {
                leader_hint: self.leader,
            });
        };
        // No lease reads while a transfer is pending, nor ever again in this
        // term once a TimeoutNow went out: the target may receive it at any
        // later time (a slow link, a delay longer than the transfer's
        // deadline), campaign as a transfer, and the voters set their
        // stickiness aside for such a campaign. The lease no longer
        // excludes another leader, so only a ReadIndex round is safe.
        if lease_reads
            && committed_in_term
            && leader.transfer.is_none()
            && !leader.timeout_now_sent
            && now < leader.reads.lease_until
        {
            self.deliver_read(id, from, commit);
            return Ok(());
        }
        leader.reads.waiting.push((id, from));
        leader.reads.round_needed |= committed_in_term;
        Ok(())
    }

    /// Assigns the waiting reads to a new round and sends its heartbeats.
    fn start_read_round(&mut self) {
        let commit = self.log.commit();
        let now = self.now;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.reads.waiting.is_empty() {
            return;
        }
        let round = leader.reads.round + 1;
        let waiting = core::mem::take(&mut leader.reads.waiting);
        leader
            .reads
            .pending
            .extend(waiting.into_iter().map(|(id, from)| PendingRead {
                id,
                from,
                index: commit,
                round,
            }));
        let _ = now;
        self.broadcast_heartbeat();
    }

    /// Releases the reads of every round a majority has confirmed.
    pub(super) fn maybe_confirm_reads(&mut self) {
        let id = self.id;
        let voters = self.log.membership().voters.clone();
        let election_min = self.config.election_timeout_min;
        let drift = self.config.max_clock_drift_percent;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let mut rounds: Vec<u64> = voters
            .iter()
            .map(|&v| {
                if v == id {
                    leader.reads.round
                } else {
                    leader.progress.get(&v).map_or(0, |p| p.round_acked)
                }
            })
            .collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = rounds[voters.len() / 2];
        if confirmed > leader.reads.confirmed {
            leader.reads.confirmed = confirmed;
            if let Some(&(_, started)) = leader.reads.started.iter().find(|(r, _)| *r == confirmed)
            {
                let lease = election_min * (100 - drift) / 100;
                leader.reads.lease_until = leader.reads.lease_until.max(started + lease);
            }
        }
        let mut released = Vec::new();
        while leader
            .reads
            .pending
            .front()
            .is_some_and(|r| r.round <= leader.reads.confirmed)
        {
            released.push(leader.reads.pending.pop_front().expect("checked non-empty"));
        }
        for read in released {
            self.deliver_read(read.id, read.from, read.index);
        }
    }

    /// A confirmed read index: to this node's application, or to the
    /// follower that asked.
    fn deliver_read(&mut self, id: u64, from: Asker, index: LogIndex) {
        match from {
            None => self.staged.push_back(Output::ReadReady { id, index }),
            Some((follower, nonce)) => {
                let term = self.term;
                self.send(
                    follower,
                    Message::ReadIndexResponse(ReadIndexResponse {
                        term,
                        id,
                        nonce,
                        index: Some(index),
                    }),
                );
            }
        }
    }

    /// Fails reads the leader can no longer confirm (it steps down): its
    /// own with [`Output::ReadFailed`], its followers' with an answer
    /// without index.
    pub(super) fn fail_reads(&mut self, reads: Vec<(u64, Asker)>, leader_hint: Option<NodeId>) {
        for (id, from) in reads {
            match from {
                None => self
                    .staged
                    .push_back(Output::ReadFailed { id, leader_hint }),
                Some((follower, nonce)) => {
                    let term = self.term;
                    let answer = ReadIndexResponse {
                        term,
                        id,
                        nonce,
                        index: None,
                    };
                    self.send(follower, Message::ReadIndexResponse(answer));
                }
            }
        }
    }

    /// [`Input::FollowerRead`](super::api::Input::FollowerRead): the
    /// leader reads as for [`Input::ReadIndex`](super::api::Input::ReadIndex);
    /// a follower (or learner) that knows its leader asks it.
    pub(super) fn follower_read(&mut self, id: u64) -> Result<(), Rejected> {
        match (&self.role, self.leader) {
            (Role::Leader(_), _) => self.read_index_for(id, None),
            (Role::Follower, Some(leader)) if leader != self.id => {
                let (term, sent_at) = (self.term, self.now);
                self.forwarded_reads.insert(
                    id,
                    ForwardedRead {
                        leader,
                        term,
                        sent_at,
                    },
                );
                let nonce = self.read_nonce;
                self.send(
                    leader,
                    Message::ReadIndex(ReadIndexRequest { term, id, nonce }),
                );
                Ok(())
            }
            _ => Err(Rejected::NotLeader {
                leader_hint: self.leader,
            }),
        }
    }

    /// A follower's [`ReadIndexRequest`] (same term as ours).
    pub(super) fn handle_read_index_request(&mut self, from: NodeId, request: ReadIndexRequest) {
        if self.is_leader() {
            // Always accepted at the leader.
            let _ = self.read_index_for(request.id, Some((from, request.nonce)));
        } else {
            self.stats.unexpected += 1;
            let asker = Some((from, request.nonce));
            self.fail_reads(alloc::vec![(request.id, asker)], self.leader);
        }
    }

    /// The leader's [`ReadIndexResponse`] (same term as ours).
    pub(super) fn handle_read_index_response(&mut self, from: NodeId, response: ReadIndexResponse) {
        // An answer to a request of this node's previous run (same term,
        // same leader, same id, delayed across a restart) carries that
        // run's nonce.
        let asked = self.forwarded_reads.get(&response.id);
        if response.nonce != self.read_nonce
            || !asked.is_some_and(|read| read.leader == from && read.term == response.term)
        {
            self.stats.unexpected += 1;
            return;
        }
        self.forwarded_reads.remove(&response.id);
        let output = match response.index {
            Some(index) => Output::ReadReady {
                id: response.id,
                index,
            },
            None => Output::ReadFailed {
                id: response.id,
                leader_hint: self.leader,
            },
        };
        self.staged.push_back(output);
    }

    /// Fails every forwarded read: the term or the leader changed, or this
    /// node campaigns, so no answer will be taken.
    pub(super) fn fail_forwarded_reads(&mut self) {
        let leader_hint = self.leader;
        for id in core::mem::take(&mut self.forwarded_reads).into_keys() {
            self.staged
                .push_back(Output::ReadFailed { id, leader_hint });
        }
    }

    /// Fails the forwarded reads not answered within the maximum election
    /// timeout (the request or the answer was lost).
    pub(super) fn expire_forwarded_reads(&mut self) {
        if self.forwarded_reads.is_empty() {
            return;
        }
        let deadline = self.config.election_timeout_max;
        let now = self.now;
        let leader_hint = self.leader;
        let expired: Vec<u64> = self
            .forwarded_reads
            .iter()
            .filter(|(_, read)| now >= read.sent_at + deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.forwarded_reads.remove(&id);
            self.staged
                .push_back(Output::ReadFailed { id, leader_hint });
        }
    }

    /// The leader committed an entry of its own term: its commit index is now
    /// known to be current, so reads waiting for that can start.
    pub(super) fn on_commit_in_term(&mut self) {
        if let Role::Leader(leader) = &mut self.role
            && !leader.reads.waiting.is_empty()
        {
            leader.reads.round_needed = true;
        }
    }

    /// Starts one heartbeat round for every read that arrived since the last
    /// flush. Rounds may overlap: a read never waits for an earlier round to
    /// finish, and reads fed in one batch share one round.
    pub(super) fn maybe_start_read_round(&mut self) {
        if let Role::Leader(leader) = &mut self.role
            && core::mem::take(&mut leader.reads.round_needed)
        {
            self.start_read_round();
        }
    }
}
