//! Membership changes, one server at a time (§4.1 of the dissertation), with
//! learners (non-voting members that receive the log, as in etcd).
//!
//! A change is an ordinary log entry ([`Payload::Membership`]) that takes
//! effect on every node as soon as it is in its log, committed or not. Two
//! rules make single-server changes safe: a leader proposes a change only
//! once the previous one is committed, and only once it has committed an
//! entry of its own term (the correction to the dissertation's algorithm:
//! without it, a leader elected by the old configuration could commit a
//! change concurrent with a lost one). A new server should join as a
//! learner, catch up, then be promoted, so that it does not stall commits
//! while it has an empty log. A leader that removes itself keeps leading
//! (without counting itself) until the change commits, then steps down and
//! tells its most up-to-date voter to campaign at once (`TimeoutNow`).

use alloc::string::String;
use alloc::vec::Vec;

use super::api::{MembershipChange, Rejected};
use super::message::{Message, TimeoutNow};
use super::node::{Node, Role};
use super::progress::Progress;
use super::types::{Membership, NodeId, Payload};

impl Membership {
    /// The membership after `change`, or why the change is invalid.
    pub fn apply(&self, change: MembershipChange) -> Result<Membership, Rejected> {
        let mut next = self.clone();
        match change {
            MembershipChange::AddLearner(id) => {
                if id == 0 || self.contains(id) {
                    return Err(Rejected::InvalidMembershipChange(change));
                }
                next.learners.push(id);
                next.learners.sort_unstable();
                // The simulator may bring a removed machine back;
                // `add_member` is the way that keeps ids permanent.
                next.removed.retain(|&r| r != id);
            }
            MembershipChange::AddVoter(id) => {
                if id == 0 || self.is_voter(id) {
                    return Err(Rejected::InvalidMembershipChange(change));
                }
                next.learners.retain(|&l| l != id);
                next.voters.push(id);
                next.voters.sort_unstable();
            }
            MembershipChange::Remove(id) => {
                if !self.contains(id) || (self.is_voter(id) && self.voters.len() == 1) {
                    return Err(Rejected::InvalidMembershipChange(change));
                }
                next.voters.retain(|&v| v != id);
                next.learners.retain(|&l| l != id);
                next.addresses.retain(|(member, _)| *member != id);
                if let Err(at) = next.removed.binary_search(&id) {
                    next.removed.insert(at, id);
                }
            }
        }
        Ok(next)
    }

    /// The membership with `id` added as a learner reached at `address`.
    /// Ids are permanent: one that was ever removed is refused
    /// ([`Rejected::RemovedId`]), as is a member's.
    pub fn add_member(&self, id: NodeId, address: String) -> Result<Membership, Rejected> {
        if self.is_removed(id) {
            return Err(Rejected::RemovedId(id));
        }
        let mut next = self.apply(MembershipChange::AddLearner(id))?;
        next.set_address(id, address);
        Ok(next)
    }

    /// Records where member `id` is reached.
    pub fn set_address(&mut self, id: NodeId, address: String) {
        match self
            .addresses
            .binary_search_by_key(&id, |(member, _)| *member)
        {
            Ok(at) => self.addresses[at].1 = address,
            Err(at) => self.addresses.insert(at, (id, address)),
        }
    }
}

impl Node {
    pub(super) fn change_membership(&mut self, change: MembershipChange) -> Result<(), Rejected> {
        self.check_membership_change()?;
        let next = self.log.membership().apply(change)?;
        self.append_entry(Payload::Membership(next));
        self.sync_progress();
        Ok(())
    }

    /// Adds `id` as a learner reached at `address` (leader only, one change
    /// at a time like [`MembershipChange`]s; a removed id is refused).
    pub(super) fn add_member(&mut self, id: NodeId, address: String) -> Result<(), Rejected> {
        self.check_membership_change()?;
        let next = self.log.membership().add_member(id, address)?;
        self.append_entry(Payload::Membership(next));
        self.sync_progress();
        Ok(())
    }

    /// Whether this node may change the membership now: it leads, hands
    /// over to nobody, the previous change is committed, and so is an entry
    /// of its own term.
    fn check_membership_change(&self) -> Result<(), Rejected> {
        let Role::Leader(leader) = &self.role else {
            return Err(Rejected::NotLeader {
                leader_hint: self.leader,
            });
        };
        if leader.transfer.is_some() {
            return Err(Rejected::TransferInProgress);
        }
        let pending = self
            .log
            .last_membership_index()
            .is_some_and(|index| index > self.log.commit());
        let committed_in_term = self.log.term_at(self.log.commit()) == Some(self.term);
        if pending || !committed_in_term {
            return Err(Rejected::MembershipChangeInProgress);
        }
        Ok(())
    }

    /// Makes the leader's follower set match the current membership: new
    /// members are probed from the end of the log, removed ones forgotten
    /// once their removal commits. Until then the leader keeps replicating
    /// to them, so a removed node receives the entry that removes it and
    /// knows to stop.
    pub(super) fn sync_progress(&mut self) {
        let committed = self.log.membership_at(self.log.commit());
        let members: Vec<NodeId> = self
            .log
            .membership()
            .members()
            .chain(committed.members())
            .filter(|&m| m != self.id)
            .collect();
        let last = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        leader.progress.retain(|id, _| members.contains(id));
        for id in members {
            leader
                .progress
                .entry(id)
                .or_insert_with(|| Progress::new(last));
        }
        leader.append_to_all = true;
    }

    /// A leader no longer in the voters steps down once its removal is
    /// committed (it kept leading until then, §4.2.2).
    pub(super) fn maybe_step_down_after_removal(&mut self) {
        if self.is_leader()
            && !self.log.membership().is_voter(self.id)
            && self
                .log
                .last_membership_index()
                .is_some_and(|index| index <= self.log.commit())
        {
            // Hand over at once to the most up-to-date voter rather than
            // leaving the cluster leaderless until an election timeout.
            let last = self.log.last_index();
            let voters = self.log.membership().voters.clone();
            let successor = match &self.role {
                Role::Leader(leader) => voters
                    .iter()
                    .filter_map(|v| leader.progress.get(v).map(|p| (p.match_index, *v)))
                    .filter(|(matched, _)| *matched == last)
                    .max()
                    .map(|(_, id)| id),
                _ => None,
            };
            if let Some(successor) = successor {
                let term = self.term;
                self.send(successor, Message::TimeoutNow(TimeoutNow { term }));
            }
            let term = self.term;
            self.become_follower(term, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn changes_one_at_a_time() {
        let m = Membership::with_voters([1, 2, 3]);
        let m = m.apply(MembershipChange::AddLearner(4)).unwrap();
        assert_eq!(
            (m.voters.clone(), m.learners.clone()),
            (vec![1, 2, 3], vec![4])
        );
        let m = m.apply(MembershipChange::AddVoter(4)).unwrap();
        assert_eq!(
            (m.voters.clone(), m.learners.clone()),
            (vec![1, 2, 3, 4], vec![])
        );
        let m = m.apply(MembershipChange::Remove(1)).unwrap();
        assert_eq!(m.voters, vec![2, 3, 4]);
        let invalid = [
            MembershipChange::AddLearner(2),
            MembershipChange::AddLearner(0),
            MembershipChange::AddVoter(3),
            MembershipChange::Remove(9),
        ];
        for change in invalid {
            assert_eq!(
                m.apply(change),
                Err(Rejected::InvalidMembershipChange(change))
            );
        }
        let m = m.add_member(5, "h5:1".into()).unwrap();
        assert_eq!((m.learners.clone(), m.address(5)), (vec![5], Some("h5:1")));
        assert_eq!(
            m.add_member(1, "h1:1".into()),
            Err(Rejected::RemovedId(1)),
            "a removed id is never reused"
        );
        assert_eq!(
            m.add_member(5, "h:2".into()),
            Err(Rejected::InvalidMembershipChange(
                MembershipChange::AddLearner(5)
            ))
        );
        let m = m.apply(MembershipChange::Remove(5)).unwrap();
        assert_eq!((m.address(5), m.removed.clone()), (None, vec![1, 5]));
        let single = Membership::with_voters([7]);
        assert!(
            single.apply(MembershipChange::Remove(7)).is_err(),
            "the last voter stays"
        );
    }
}
