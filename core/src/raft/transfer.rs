//! Leadership transfer (§3.10 of the dissertation): the leader brings the
//! target up to date, then tells it to campaign at once with `TimeoutNow`.
//! Proposals are refused meanwhile; the transfer is abandoned after an
//! election timeout.

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
}
