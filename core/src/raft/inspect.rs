//! What a driver, a test or a checker can read of a node: read-only
//! accessors, no effects.

use alloc::collections::BTreeMap;
use bytes::Bytes;

use super::api::{RoleKind, Stats};
use super::config::Config;
use super::log::RaftLog;
use super::node::{Node, Role};
use super::progress::Progress;
use super::types::{HardState, LogIndex, Membership, NodeId, Term};
use crate::time::Instant;

impl Node {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Current role.
    pub fn role(&self) -> RoleKind {
        match &self.role {
            Role::Leader(_) => RoleKind::Leader,
            Role::Candidate { .. } => RoleKind::Candidate,
            Role::PreCandidate { .. } => RoleKind::PreCandidate,
            Role::Follower if self.log.membership().is_learner(self.id) => RoleKind::Learner,
            Role::Follower => RoleKind::Follower,
        }
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// Whether this node is a voting member.
    pub fn is_voter(&self) -> bool {
        self.log.membership().is_voter(self.id)
    }

    /// Current term (possibly not yet durable).
    pub fn term(&self) -> Term {
        self.term
    }

    /// Vote cast in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The leader of the current term, if known (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// Data of the latest snapshot (empty without one).
    pub fn snapshot_data(&self) -> &Bytes {
        &self.snapshot_data
    }

    /// Highest log index known durable on this node.
    pub fn durable_index(&self) -> LogIndex {
        self.durable_index
    }

    /// Term and vote known durable on this node.
    pub fn durable_hard_state(&self) -> HardState {
        self.durable_hard_state
    }

    /// Current cluster membership.
    pub fn membership(&self) -> &Membership {
        self.log.membership()
    }

    /// Whether this node was removed from the cluster: the committed
    /// configuration says so. A removal that is only in the log does not
    /// count (it may be truncated away by a new leader). A removed node
    /// never campaigns and its peers refuse its messages; a driver stops
    /// it for good ([`Stats::from_removed`](super::Stats::from_removed)).
    pub fn is_removed(&self) -> bool {
        self.log.committed_membership().is_removed(self.id)
    }

    /// When a follower or candidate will next campaign (`None` for a leader
    /// or a learner).
    pub fn election_deadline(&self) -> Option<Instant> {
        (!self.is_leader() && self.stands_for_election()).then_some(self.election_deadline)
    }

    /// Whether this node campaigns when its election timer expires: a voter
    /// of its latest configuration, or of any configuration from the
    /// committed one on (as far as it knows the commit: after a restart, not
    /// far) that a later entry, not yet committed, removes it from or
    /// demotes it in. Such a node "might still be needed until the Cnew
    /// entry is committed" (§4.2.2 of the dissertation): when its log is
    /// the most up to date, the others cannot be elected without its vote,
    /// which it refuses them (§5.4.1), and with a voter down nobody else
    /// could win. It asks the voters of its latest configuration and does
    /// not count its own vote; once elected, it commits its removal and
    /// steps down. So does a node no voter in any of its configurations
    /// that a candidate asked for its vote while holding a log behind ours
    /// (`needed_as_voter`, see `handle_request_vote`), until it hears a
    /// leader. A node whose removal is committed never campaigns.
    pub(super) fn stands_for_election(&self) -> bool {
        self.is_voter()
            || (!self.is_removed()
                && (self.needed_as_voter || self.log.is_voter_since_commit(self.id)))
    }

    /// The leader's view of each follower (`None` unless leading).
    pub fn progress(&self) -> Option<&BTreeMap<NodeId, Progress>> {
        match &self.role {
            Role::Leader(leader) => Some(&leader.progress),
            _ => None,
        }
    }

    /// The follower the leader is handing over to, if a transfer is in progress.
    pub fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            Role::Leader(leader) => leader.transfer.map(|(to, _)| to),
            _ => None,
        }
    }

    /// Counters of dropped input and notable events.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The latest time the node has seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Messages waiting for a write to become durable.
    pub fn held_messages(&self) -> usize {
        self.held.len()
    }
}
