//! Membership requests from operators: the member list (answered by the
//! leader) and one change at a time, checked here so that a refusal says
//! why in words.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{Replica, ReplyTo};
use crate::kv::{MAX_MEMBER_ID, MemberChange, MemberInfo, MembersStatus, Reply, ServiceError};
use crate::raft::{Input, MembershipChange, Rejected};
use crate::time::Instant;

impl Replica {
    /// The cluster's members as this replica sees them (the latest
    /// configuration in its log).
    pub fn members(&self) -> MembersStatus {
        let log = self.node.log();
        let membership = self.node.membership();
        let progress = self.node.progress();
        let members: Vec<MemberInfo> = membership
            .members()
            .map(|id| MemberInfo {
                id,
                address: membership.address(id).unwrap_or_default().to_string(),
                voter: membership.is_voter(id),
                match_index: if id == self.node.id() {
                    log.last_index()
                } else {
                    progress
                        .and_then(|p| p.get(&id))
                        .map_or(0, |p| p.match_index)
                },
            })
            .collect();
        let mut members = members;
        members.sort_by_key(|m| m.id);
        MembersStatus {
            node: self.node.id(),
            leader: self.node.leader(),
            term: self.node.term(),
            commit_index: log.commit(),
            last_index: log.last_index(),
            members,
            removed: membership.removed.clone(),
            change_pending: log
                .last_membership_index()
                .is_some_and(|index| index > log.commit()),
            promoting: membership.promoting,
        }
    }

    /// Serves a member list request: at once from this replica's log, or,
    /// `linearizable`, by the leader once a ReadIndex round confirmed it
    /// still leads and it applied the read index.
    pub(super) fn handle_members(
        &mut self,
        now: Instant,
        from: ReplyTo,
        request: u64,
        linearizable: bool,
    ) {
        if !linearizable {
            let result = Ok(Reply::Members(self.members()));
            self.reply(from, request, result);
        } else if !self.node.is_leader() {
            let error = self.not_leader();
            self.reply(from, request, Err(error));
        } else {
            self.handle_read(now, from, request, super::clients::ReadPurpose::Members);
        }
    }

    /// Serves a membership change: answered once the change is in the
    /// leader's log (the member list tells when it commits). Removing the
    /// leader hands leadership to the most up-to-date voter first: the
    /// answer is then "not the leader, try the successor", where the
    /// request is retried.
    pub(super) fn handle_member_change(
        &mut self,
        now: Instant,
        from: ReplyTo,
        request: u64,
        change: MemberChange,
    ) {
        let result = self.change_members(now, change);
        self.reply(from, request, result.map(|()| Reply::Done(None)));
    }

    fn change_members(&mut self, now: Instant, change: MemberChange) -> Result<(), ServiceError> {
        if !self.node.is_leader() {
            return Err(self.not_leader());
        }
        let membership = self.node.membership();
        let refused = |why: String| Err(ServiceError::Membership(why));
        let input = match change {
            MemberChange::Add {
                id,
                address,
                promote,
            } => {
                if id == 0 {
                    return refused("node ids start at 1".into());
                }
                if id > MAX_MEMBER_ID {
                    return refused(format!("node ids are at most {MAX_MEMBER_ID}, not {id}"));
                }
                if membership.contains(id) {
                    return refused(format!("node {id} is already a member"));
                }
                if address.is_empty() {
                    return refused(format!("node {id} needs an address"));
                }
                Input::AddMember {
                    id,
                    address,
                    promote,
                }
            }
            MemberChange::Promote(id) => {
                if membership.is_voter(id) {
                    return refused(format!("node {id} is already a voter"));
                }
                if !membership.is_learner(id) {
                    return refused(format!("node {id} is not a learner of the cluster"));
                }
                Input::ChangeMembership(MembershipChange::AddVoter(id))
            }
            MemberChange::Remove(id) => {
                if !membership.contains(id) {
                    return refused(format!("node {id} is not a member of the cluster"));
                }
                if membership.is_voter(id) && membership.voters.len() == 1 {
                    return refused(format!("node {id} is the last voter"));
                }
                if id == self.node.id() {
                    return self.hand_over_before_removal(now);
                }
                Input::ChangeMembership(MembershipChange::Remove(id))
            }
        };
        self.node
            .handle(now, input)
            .map(drop)
            .map_err(|rejected| match rejected {
                Rejected::NotLeader { .. } => self.not_leader(),
                Rejected::TransferInProgress | Rejected::Busy => ServiceError::Busy,
                Rejected::PromotionInProgress(id) => ServiceError::Membership(format!(
                    "a membership change is in progress: node {id} is being added (a learner catching up before its promotion); wait for it, or finish it with `member promote {id}`, or abandon it with `member remove {id}`"
                )),
                other => ServiceError::Membership(other.to_string()),
            })
    }

    /// The leader is asked to remove itself: it hands leadership to the
    /// voter with the most of its log, and the request is retried there.
    fn hand_over_before_removal(&mut self, now: Instant) -> Result<(), ServiceError> {
        let membership = self.node.membership();
        let successor = self.node.progress().and_then(|progress| {
            membership
                .voters
                .iter()
                .filter(|&&v| v != self.node.id())
                .filter_map(|v| progress.get(v).map(|p| (p.match_index, *v)))
                .max()
                .map(|(_, id)| id)
        });
        let Some(successor) = successor else {
            return Err(ServiceError::Busy);
        };
        match self.node.handle(now, Input::TransferLeadership(successor)) {
            Ok(_) => Err(ServiceError::NotLeader {
                leader_hint: Some(successor),
            }),
            Err(_) => Err(ServiceError::Busy),
        }
    }
}
