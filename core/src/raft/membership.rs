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
//! Configurations differ from node to node while a change is in flight, so
//! a node that is no voter in its own may be one in a candidate's: when
//! such a candidate, with a log behind the node's, asks it for its vote,
//! the node stands itself (see `handle_request_vote`), leads only until an
//! entry of its term commits, and hands over the same way.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::api::{MembershipChange, Rejected};
use super::message::{Heartbeat, Message, TimeoutNow};
use super::node::{Departure, LeaderState, Node, Role};
use super::progress::Progress;
use super::types::{LogIndex, Membership, NodeId, Payload};

/// How long (in maximum election timeouts) a leader keeps telling a removed
/// node that its removal is committed before it gives up on it (a removed
/// machine may be dead for good).
pub(super) const FAREWELL_TIMEOUTS: u64 = 10;

impl Membership {
    /// The membership after `change`, or why the change is invalid (adding
    /// an id that was ever removed is: [`Rejected::RemovedId`]).
    pub fn apply(&self, change: MembershipChange) -> Result<Membership, Rejected> {
        let mut next = self.clone();
        match change {
            // Ids are permanent: one that was ever removed never comes
            // back (members drop whatever a committed-removed id sends, so
            // it could not even reach them).
            MembershipChange::AddLearner(id) | MembershipChange::AddVoter(id)
                if self.is_removed(id) =>
            {
                return Err(Rejected::RemovedId(id));
            }
            MembershipChange::AddLearner(id) => {
                if id == 0 || self.contains(id) {
                    return Err(Rejected::InvalidMembershipChange(change));
                }
                next.learners.push(id);
                next.learners.sort_unstable();
            }
            MembershipChange::AddVoter(id) => {
                if id == 0 || self.is_voter(id) {
                    return Err(Rejected::InvalidMembershipChange(change));
                }
                next.learners.retain(|&l| l != id);
                next.voters.push(id);
                next.voters.sort_unstable();
                if next.promoting == Some(id) {
                    next.promoting = None;
                }
            }
            MembershipChange::Remove(id) => {
                if !self.contains(id) || (self.is_voter(id) && self.voters.len() == 1) {
                    return Err(Rejected::InvalidMembershipChange(change));
                }
                next.voters.retain(|&v| v != id);
                next.learners.retain(|&l| l != id);
                next.addresses.retain(|(member, _)| *member != id);
                if next.promoting == Some(id) {
                    next.promoting = None;
                }
                if let Err(at) = next.removed.binary_search(&id) {
                    next.removed.insert(at, id);
                }
            }
        }
        Ok(next)
    }

    /// The membership with `id` added as a learner reached at `address`,
    /// recorded as [`Membership::promoting`] when `promote` is set. Ids are
    /// permanent: one that was ever removed is refused
    /// ([`Rejected::RemovedId`], as by [`Membership::apply`]), as is a member's.
    pub fn add_member(
        &self,
        id: NodeId,
        address: String,
        promote: bool,
    ) -> Result<Membership, Rejected> {
        let mut next = self.apply(MembershipChange::AddLearner(id))?;
        next.set_address(id, address);
        if promote {
            next.promoting = Some(id);
        }
        Ok(next)
    }

    /// Whether `change` may be made while a learner is being caught up to
    /// be promoted: only that learner's promotion or removal may.
    pub fn allows_while_promoting(&self, change: MembershipChange) -> Result<(), Rejected> {
        match (self.promoting, change) {
            (None, _) => Ok(()),
            (Some(id), MembershipChange::AddVoter(to) | MembershipChange::Remove(to))
                if to == id =>
            {
                Ok(())
            }
            (Some(id), _) => Err(Rejected::PromotionInProgress(id)),
        }
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
        self.log.membership().allows_while_promoting(change)?;
        let next = self.log.membership().apply(change)?;
        self.append_entry(Payload::Membership(Box::new(next)));
        self.sync_progress();
        Ok(())
    }

    /// Adds `id` as a learner reached at `address`, to be promoted once it
    /// has caught up if `promote` (leader only, one change at a time like
    /// [`MembershipChange`]s; a removed id is refused).
    pub(super) fn add_member(
        &mut self,
        id: NodeId,
        address: String,
        promote: bool,
    ) -> Result<(), Rejected> {
        self.check_membership_change()?;
        self.log
            .membership()
            .allows_while_promoting(MembershipChange::AddLearner(id))?;
        let next = self.log.membership().add_member(id, address, promote)?;
        self.append_entry(Payload::Membership(Box::new(next)));
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
    /// members are probed from the end of the log. A member whose removal
    /// commits becomes departing (see [`Departure`]): the leader keeps
    /// replicating to it, so that it receives the entry that removes it,
    /// and once it has acknowledged that entry, a heartbeat carries a
    /// commit index covering it: from it the node learns that its removal
    /// is committed, and stops (see [`Node::is_removed`]). Without that, a
    /// node whose acknowledgement of its removal arrived after the commit
    /// (the commit needs only the new configuration's majority) would never
    /// learn it and would run on. A departing node counts toward no quorum:
    /// commits, elections, CheckQuorum and ReadIndex count the voters of
    /// the configuration.
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
        let commit = self.log.commit();
        let until = self.now + self.config.election_timeout_max * FAREWELL_TIMEOUTS;
        let Role::Leader(leader) = &self.role else {
            return;
        };
        let leaving: Vec<(NodeId, LogIndex)> = leader
            .progress
            .keys()
            .filter(|id| !members.contains(id) && !leader.departing.contains_key(id))
            .map(|&id| (id, self.log.removal_index(id).unwrap_or(commit)))
            .collect();
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        for &(id, removed_at) in &leaving {
            leader.departing.insert(
                id,
                Departure {
                    removed_at,
                    told_in_round: None,
                    until,
                },
            );
        }
        let departing = &leader.departing;
        leader
            .progress
            .retain(|id, _| members.contains(id) || departing.contains_key(id));
        for id in members {
            leader
                .progress
                .entry(id)
                .or_insert_with(|| Progress::new(last));
        }
        leader.append_to_all = true;
        for (id, _) in leaving {
            self.maybe_say_farewell(id);
        }
    }

    /// Tells departing node `peer` that its removal is committed, if it has
    /// acknowledged the entry that removed it (a heartbeat's commit index
    /// never goes past what the follower is known to hold).
    pub(super) fn maybe_say_farewell(&mut self, peer: NodeId) {
        let (term, commit) = (self.term, self.log.commit());
        let Role::Leader(leader) = &self.role else {
            return;
        };
        // Called on every answer that advances a follower: the (usually
        // empty) set of departing nodes first, the follower's progress only
        // for a departing one.
        let Some(departure) = leader.departing.get(&peer) else {
            return;
        };
        let Some(progress) = leader.progress.get(&peer) else {
            return;
        };
        if departure.told_in_round.is_none()
            && progress.match_index >= departure.removed_at
            && commit >= departure.removed_at
        {
            let commit = commit.min(progress.match_index);
            self.send(
                peer,
                Message::Heartbeat(Heartbeat {
                    term,
                    commit,
                    round: 0,
                }),
            );
        }
    }

    /// At a heartbeat (round `round`): forgets the departing nodes that
    /// answered a heartbeat telling them their removal is committed, or
    /// that ran out of time, and notes which ones this round tells.
    pub(super) fn update_departures(&mut self, round: u64) {
        let now = self.now;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let LeaderState {
            progress,
            departing,
            ..
        } = &mut **leader;
        departing.retain(|id, departure| {
            let Some(p) = progress.get(id) else {
                return false;
            };
            let told = departure.told_in_round.is_some_and(|r| p.round_acked >= r);
            if told || now >= departure.until {
                progress.remove(id);
                return false;
            }
            if departure.told_in_round.is_none() && p.match_index >= departure.removed_at {
                departure.told_in_round = Some(round);
            }
            true
        });
    }

    /// A leader no longer in the voters steps down once its removal is
    /// committed (it kept leading until then, §4.2.2). So does a leader
    /// that was never a voter in its configuration (a learner that a
    /// candidate needed, see `handle_request_vote`), once an entry of its
    /// term is committed (this is called when the commit index moves, which
    /// only an entry of the leader's term makes it do) and with it its
    /// configuration (one from its snapshot, with no membership entry in
    /// the log, is committed).
    pub(super) fn maybe_step_down_after_removal(&mut self) {
        if self.is_leader()
            && !self.log.membership().is_voter(self.id)
            && self
                .log
                .last_membership_index()
                .is_none_or(|index| index <= self.log.commit())
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

    fn back_id(change: MembershipChange) -> NodeId {
        match change {
            MembershipChange::AddLearner(id)
            | MembershipChange::AddVoter(id)
            | MembershipChange::Remove(id) => id,
        }
    }

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
        let m = m.add_member(5, "h5:1".into(), false).unwrap();
        assert_eq!((m.learners.clone(), m.address(5)), (vec![5], Some("h5:1")));
        assert_eq!(
            m.add_member(1, "h1:1".into(), false),
            Err(Rejected::RemovedId(1)),
            "a removed id is never reused"
        );
        assert_eq!(
            m.add_member(5, "h:2".into(), false),
            Err(Rejected::InvalidMembershipChange(
                MembershipChange::AddLearner(5)
            ))
        );
        let m = m.apply(MembershipChange::Remove(5)).unwrap();
        assert_eq!((m.address(5), m.removed.clone()), (None, vec![1, 5]));
        for back in [
            MembershipChange::AddLearner(5),
            MembershipChange::AddVoter(5),
            MembershipChange::AddVoter(1),
        ] {
            assert_eq!(
                m.apply(back),
                Err(Rejected::RemovedId(back_id(back))),
                "{back:?}: ids are permanent"
            );
        }
        let single = Membership::with_voters([7]);
        assert!(
            single.apply(MembershipChange::Remove(7)).is_err(),
            "the last voter stays"
        );
    }

    #[test]
    fn a_learner_being_promoted_blocks_every_other_change() {
        let m = Membership::with_voters([1, 2, 3])
            .add_member(4, "h4:1".into(), true)
            .unwrap();
        assert_eq!((m.learners.clone(), m.promoting), (vec![4], Some(4)));
        for change in [
            MembershipChange::AddLearner(5),
            MembershipChange::AddVoter(5),
            MembershipChange::Remove(3),
        ] {
            assert_eq!(
                m.allows_while_promoting(change),
                Err(Rejected::PromotionInProgress(4)),
                "{change:?} while 4 catches up"
            );
        }
        for way_out in [MembershipChange::AddVoter(4), MembershipChange::Remove(4)] {
            assert_eq!(m.allows_while_promoting(way_out), Ok(()));
            let next = m.apply(way_out).unwrap();
            assert_eq!(next.promoting, None, "{way_out:?} ends the promotion");
            assert_eq!(
                next.allows_while_promoting(MembershipChange::Remove(3)),
                Ok(())
            );
        }
        let plain = Membership::with_voters([1, 2, 3])
            .add_member(4, "h4:1".into(), false)
            .unwrap();
        assert_eq!(plain.promoting, None, "--learner is not a promotion");
    }
}
