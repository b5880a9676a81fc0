//! Leader election (§5.2) with PreVote (§9.6 of the dissertation) and
//! CheckQuorum (§6.2).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::membership::FAREWELL_TIMEOUTS;
use super::message::{Message, RequestVote, RequestVoteResponse};
use super::node::{Departure, LeaderState, Node, Role};
use super::progress::Progress;
use super::quorum::{VoteResult, VoteTally};
use super::read::ReadState;
use super::types::{Entry, LogIndex, NodeId, Payload};

impl Node {
    /// Starts an election: a pre-vote round first when PreVote is on and the
    /// election is not a leadership transfer.
    pub(super) fn campaign(&mut self, transfer: bool) {
        self.stats.elections += 1;
        if self.config.pre_vote && !transfer {
            self.become_pre_candidate();
        } else {
            self.become_candidate(transfer);
        }
    }

    /// Asks the voters whether they would vote for us in `term + 1`, without
    /// changing anybody's term: a node cut off from the cluster keeps failing
    /// here instead of inflating its term and deposing the leader when it returns.
    fn become_pre_candidate(&mut self) {
        self.fail_forwarded_reads();
        self.leader = None;
        let mut votes = VoteTally::default();
        votes.record(self.id, true);
        self.role = Role::PreCandidate { votes };
        self.reset_election_timer();
        let request = RequestVote {
            term: self.term.saturating_add(1),
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote: true,
            transfer: false,
        };
        self.broadcast_to_voters(Message::RequestVote(request));
        self.check_election();
    }

    /// Increments the term, votes for itself (counted once durable) and asks for votes.
    pub(super) fn become_candidate(&mut self, transfer: bool) {
        self.fail_forwarded_reads();
        self.term = self.term.saturating_add(1);
        self.voted_for = Some(self.id);
        self.leader = None;
        self.stage_hard_state();
        self.role = Role::Candidate {
            votes: VoteTally::default(),
            self_vote_seq: self.staged_seq(),
        };
        self.reset_election_timer();
        let request = RequestVote {
            term: self.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote: false,
            transfer,
        };
        self.broadcast_to_voters(Message::RequestVote(request));
    }

    fn broadcast_to_voters(&mut self, message: Message) {
        let voters: Vec<NodeId> = self.log.membership().voters.clone();
        for voter in voters {
            if voter != self.id {
                self.send(voter, message.clone());
            }
        }
    }

    /// Acts on the votes counted so far.
    pub(super) fn check_election(&mut self) {
        let voters = &self.log.membership().voters;
        let (result, pre_vote) = match &self.role {
            Role::PreCandidate { votes } => (votes.result(voters), true),
            Role::Candidate { votes, .. } => (votes.result(voters), false),
            _ => return,
        };
        match (result, pre_vote) {
            (VoteResult::Won, true) => self.become_candidate(false),
            (VoteResult::Won, false) => self.become_leader(),
            (VoteResult::Lost, _) => {
                let term = self.term;
                self.become_follower(term, None);
            }
            (VoteResult::Pending, _) => {}
        }
    }

    /// Takes office: every follower is probed from the end of our log, and a
    /// no-op entry of the new term lets the leader commit (and learn the
    /// commit index of) entries from earlier terms (§5.4.2, §8).
    fn become_leader(&mut self) {
        let last = self.log.last_index();
        let latest = self.log.membership();
        let committed = self.log.committed_membership();
        let mut progress: BTreeMap<NodeId, Progress> = latest
            .members()
            .chain(committed.members())
            .filter(|&id| id != self.id)
            .map(|id| (id, Progress::new(last)))
            .collect();
        // Nodes removed by entries still in the log may not know it yet
        // (the previous leader may have died before telling them): they
        // are told again, see `sync_progress`.
        let until = self.now + self.config.election_timeout_max * FAREWELL_TIMEOUTS;
        let departing: BTreeMap<NodeId, Departure> = self
            .log
            .removals()
            .filter(|&(id, _)| id != self.id && !progress.contains_key(&id))
            .map(|(id, removed_at)| {
                let departure = Departure {
                    removed_at,
                    told_in_round: None,
                    until,
                };
                (id, departure)
            })
            .collect();
        for id in departing.keys() {
            progress.insert(*id, Progress::new(last));
        }
        self.role = Role::Leader(Box::new(LeaderState {
            progress,
            departing,
            heartbeat_deadline: self.now + self.config.heartbeat_interval,
            check_quorum_deadline: self.now + self.config.heartbeat_interval,
            quorum_heard_at: self.now,
            reads: ReadState::default(),
            transfer: None,
            timeout_now_sent: false,
            uncommitted_bytes: 0,
            append_needed: Vec::new(),
            append_to_all: true,
        }));
        self.leader = Some(self.id);
        self.needed_as_voter = false;
        self.incoming_snapshot = None;
        self.append_entry(Payload::Noop);
    }

    /// Appends an entry of the current term to the leader's log and stages it.
    /// Appends an entry of the current term to the log and stages it;
    /// returns its index.
    pub(super) fn append_entry(&mut self, payload: Payload) -> LogIndex {
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.term,
            payload,
        };
        let (index, size) = (entry.index, entry.size());
        self.log.push(entry.clone());
        self.stage_entries([entry]);
        if let Role::Leader(leader) = &mut self.role {
            leader.uncommitted_bytes += size;
            leader.append_to_all = true;
        }
        index
    }

    pub(super) fn handle_request_vote(&mut self, from: NodeId, request: RequestVote) {
        let up_to_date = self
            .log
            .is_up_to_date(request.last_log_index, request.last_log_term);
        // A candidate asks only the voters of its latest configuration. If
        // we are none in ours, the candidate holds a configuration we do
        // not (one that adds or promotes us, not yet in our log, or that
        // our log replaced), and with a log behind ours it can never have
        // our vote (§5.4.1). Should it need it to win (the voters of its
        // configuration that are alive, us among them, a bare majority),
        // nobody could ever be elected: the others refuse us nothing, but
        // we, no voter in our own eyes, would never campaign. So we stand
        // ourselves, as a voter being removed does (`stands_for_election`):
        // asking the voters of our latest configuration, our own vote not
        // counted; once elected, we commit an entry of our term, which
        // brings our log (and configuration) to the others, then hand over
        // to a voter and step down (`maybe_step_down_after_removal`).
        // Hearing a leader first ends it (`accept_leader`).
        if !up_to_date && !self.stands_for_election() && !self.is_removed() {
            self.needed_as_voter = true;
            self.reset_election_timer();
        }
        if request.pre_vote {
            // Would we vote in `request.term`? Only if it is ahead of ours,
            // its log is at least as up to date, and no leader is alive.
            let granted = request.term > self.term && up_to_date && !self.in_leader_lease();
            let term = if granted { request.term } else { self.term };
            self.send(
                from,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term,
                    granted,
                    pre_vote: true,
                }),
            );
            return;
        }
        // Same term here: a higher one made us a follower on receipt.
        let can_vote =
            self.voted_for == Some(from) || (self.voted_for.is_none() && self.leader.is_none());
        let granted = can_vote && up_to_date;
        let response = Message::RequestVoteResponse(RequestVoteResponse {
            term: self.term,
            granted,
            pre_vote: false,
        });
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(from);
                self.stage_hard_state();
            }
            self.reset_election_timer();
            // The vote must be durable before the candidate can count it:
            // otherwise a crash could let this node vote twice in one term.
            self.send_when_durable(from, response);
            return;
        }
        self.send(from, response);
        let candidate = matches!(self.role, Role::Candidate { .. });
        // A rival candidate of our term whose log is ahead of ours: it can
        // win and we cannot (it has every vote we could get, and ours would
        // be its). Rushing our next campaign would put us into each new
        // term before it, where we vote for ourselves and refuse it, for as
        // long as our timer keeps beating its: so we stand back a whole
        // randomized election timeout from now instead, and it likely
        // campaigns first in the next term, where we grant.
        let rival_ahead = candidate
            && (request.last_log_term, request.last_log_index)
                > (self.log.last_term(), self.log.last_index());
        if rival_ahead {
            self.reset_election_timer();
            return;
        }
        let split = candidate;
        // A leadership transfer whose candidate holds less than we do:
        // usually the hand-over of a leader that CheckQuorum deposed, which
        // chose its target from what it last heard (its `TimeoutNow` may
        // even overtake its last AppendEntries). It cannot have our vote
        // (§5.4.1); with three voters (the deposed leader hearing nobody) it
        // cannot win at all, and the election it was told to hold would
        // stall until somebody's full election timeout.
        let stale_transfer = request.transfer && !up_to_date && self.is_voter();
        if split || stale_transfer {
            self.rearm_sooner();
        }
    }

    /// The election of this term is unlikely to succeed: either a candidate
    /// heard a rival's RequestVote for its own term (the votes are split
    /// between at least two candidates, each voted for itself, and a dead
    /// leader's vote never comes to break the tie), or a voter refused a
    /// transfer candidate whose log is behind its own. Each would wait out
    /// a whole election timeout (0.5–1 s with the native defaults) before
    /// the next election; instead it re-arms a shorter randomized timeout,
    /// drawn from `heartbeat_interval..election_timeout_min`, if that comes
    /// sooner. (Standing at once would be quicker with three voters, but
    /// with five the transfer candidate may still win with the others'
    /// votes, and several refusers standing together would split the next
    /// vote: the floor of one heartbeat interval gives a candidate that
    /// wins after all the time to tell us before we campaign, and the
    /// randomness keeps the refusers, or the rivals, who heard each other,
    /// apart.) Safety never rests on timing (§5.2: one vote per term,
    /// §5.4.1: only for a log at least as up to date), and the next
    /// campaign goes through PreVote, which fails while the voters hear a
    /// leader.
    fn rearm_sooner(&mut self) {
        let sooner = self.now
            + self.rng.range(
                self.config.heartbeat_interval,
                self.config.election_timeout_min,
            );
        self.election_deadline = self.election_deadline.min(sooner);
    }

    pub(super) fn handle_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        let term = self.term;
        match &mut self.role {
            Role::PreCandidate { votes }
                if response.pre_vote
                    && ((response.granted && response.term == term + 1)
                        || (!response.granted && response.term <= term)) =>
            {
                votes.record(from, response.granted);
            }
            Role::Candidate { votes, .. } if !response.pre_vote && response.term == term => {
                votes.record(from, response.granted);
            }
            _ => {
                self.stats.unexpected += 1;
                return;
            }
        }
        self.check_election();
    }

    /// CheckQuorum: whether a majority of voters was heard from since the
    /// last check; resets the activity flags for the next one.
    pub(super) fn has_active_quorum(&mut self) -> bool {
        let id = self.id;
        let voters = self.log.membership().voters.clone();
        let Role::Leader(leader) = &mut self.role else {
            return false;
        };
        let active = voters
            .iter()
            .filter(|&&v| v == id || leader.progress.get(&v).is_some_and(|p| p.recent_active))
            .count();
        for progress in leader.progress.values_mut() {
            progress.recent_active = false;
        }
        active > voters.len() / 2
    }

    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.leader != Some(from) && self.leader.is_some() {
            self.stats.unexpected += 1;
            return;
        }
        if !self.is_voter() || self.is_leader() {
            self.stats.unexpected += 1;
            return;
        }
        // The leader asked us to take over: campaign at once, skipping
        // PreVote, and let voters ignore their leader lease (§3.10).
        self.stats.elections += 1;
        self.become_candidate(true);
    }
}
