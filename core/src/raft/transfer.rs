//! Leadership transfer (§3.10 of the dissertation): the leader brings the
//! target up to date, then tells it to campaign at once with `TimeoutNow`.
//! Proposals are refused meanwhile; the transfer is abandoned after an
//! election timeout.
//!
//! A leader that CheckQuorum deposes hands over the same way, without the
//! catching up: it cannot hear anyone, but its messages may still go out
//! (a leader that "hears nobody"), and its followers, which still hear its
//! heartbeats, would otherwise wait out a whole election timeout after its
//! last one, and split their votes now and then.

use super::api::Rejected;
use super::message::{Message, TimeoutNow};
use super::node::{Node, Role};
use super::types::NodeId;

impl Node {
    pub(super) fn transfer_leadership(&mut self, to: NodeId) -> Result<(), Rejected> {
        if !self.is_leader() {
            return Err(Rejected::NotLeader {
                leader_hint: self.leader,
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !self.log.membership().is_voter(to) {
            return Err(Rejected::UnknownNode(to));
        }
        let deadline = self.now + self.config.election_timeout_min;
        let last_index = self.log.last_index();
        let max_inflight = self.config.max_inflight_messages;
        let Role::Leader(leader) = &mut self.role else {
            return Ok(());
        };
        leader.transfer = Some((to, deadline));
        let progress = leader
            .progress
            .get_mut(&to)
            .expect("every voter but the leader has progress");
        if progress.match_index == last_index {
            self.maybe_send_timeout_now(to);
        } else {
            progress.unstall(max_inflight);
            self.mark_append(to);
        }
        Ok(())
    }

    /// Sends `TimeoutNow` to `peer` if it is the transfer target and fully caught up.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let last_index = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let ready = leader.transfer.is_some_and(|(to, _)| to == peer)
            && leader
                .progress
                .get(&peer)
                .is_some_and(|p| p.match_index == last_index);
        if ready {
            // Ends lease reads for the rest of this term (see `read_index`).
            leader.timeout_now_sent = true;
            let term = self.term;
            self.send(peer, Message::TimeoutNow(TimeoutNow { term }));
        }
    }

    /// CheckQuorum deposed this leader: tells the follower with the longest
    /// log it knows of to campaign at once (`TimeoutNow`), then becomes a
    /// follower without a leader.
    ///
    /// The target is the voter with the highest match index, provided it
    /// holds every entry this leader knows to be committed (the leader has
    /// heard nothing lately, so its view may lag: the followers may hold
    /// more). Safety does not rest on the choice: the target still needs
    /// the votes of a majority, each granted only to a log at least as up
    /// to date as the voter's (§5.4.1). `TimeoutNow` only lets it skip
    /// PreVote and the voters' leader stickiness, which protect a leader
    /// that is alive; this one has stepped down, and stopped serving lease
    /// reads with it. A `TimeoutNow` that arrives after the target moved to
    /// a later term is stale and dropped; lost, it costs nothing: the
    /// followers time out as they would have.
    pub(super) fn step_down_handing_over(&mut self) {
        let commit = self.log.commit();
        let term = self.term;
        let target = match &self.role {
            Role::Leader(leader) => self
                .log
                .membership()
                .voters
                .iter()
                .filter(|&&id| id != self.id)
                .filter_map(|&id| leader.progress.get(&id).map(|p| (p.match_index, id)))
                .filter(|&(matched, _)| matched >= commit)
                // Highest match; the lowest id among equals.
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
                .map(|(_, id)| id),
            _ => None,
        };
        self.become_follower(term, None);
        if let Some(target) = target {
            self.stats.check_quorum_handovers += 1;
            self.send(target, Message::TimeoutNow(TimeoutNow { term }));
        }
    }
}
