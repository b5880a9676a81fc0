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
//! Lease reads (`Config::lease_reads`, off by default) skip the round while
//! the leader holds a lease: followers that answered a round started at `t`
//! refuse to vote for anybody else until `t + election_timeout_min` on their
//! clocks (CheckQuorum's leader stickiness), so no other leader can exist
//! before then. The lease is shortened by `max_clock_drift_percent` to allow
//! for clocks that run at different rates; it assumes that bound holds.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::api::{Output, Rejected};
use super::node::{Node, Role};
use super::types::LogIndex;
use crate::time::Instant;

/// One read waiting for its round to be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRead {
    id: u64,
    index: LogIndex,
    round: u64,
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
    /// Reads waiting for the leader's first commit in its term, or for the next round.
    waiting: Vec<u64>,
    /// Start a round for the waiting reads at the next flush.
    round_needed: bool,
    /// Lease reads are safe until then.
    lease_until: Instant,
}

/// How many round start times the leader remembers.
const REMEMBERED_ROUNDS: usize = 64;

impl ReadState {
    /// Starts a new round at `now`; every waiting read joins it.
    pub fn start_round(&mut self, now: Instant) -> u64 {
        self.round += 1;
        if self.started.len() == REMEMBERED_ROUNDS {
            self.started.pop_front();
        }
        self.started.push_back((self.round, now));
        self.round
    }

    /// Removes every outstanding read (the leader is stepping down).
    pub fn drain_all(&mut self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.pending.drain(..).map(|r| r.id).collect();
        ids.append(&mut self.waiting);
        ids
    }
}

impl Node {
    pub(super) fn read_index(&mut self, id: u64) -> Result<(), Rejected> {
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
            self.staged
                .push_back(Output::ReadReady { id, index: commit });
            return Ok(());
        }
        leader.reads.waiting.push(id);
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
            .extend(waiting.into_iter().map(|id| PendingRead {
                id,
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
            self.staged.push_back(Output::ReadReady {
                id: read.id,
                index: read.index,
            });
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
