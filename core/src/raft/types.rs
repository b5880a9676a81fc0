//! The vocabulary of Raft: ids, terms, indexes, log entries, hard state.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// A node's id. Ids are small positive integers (`1..=n` in the simulator and
/// in the native server, the 1-based position in the peer list); `0` is never a node.
pub type NodeId = u64;

/// A Raft term (§5.1). Starts at 0; the first election is for term 1.
pub type Term = u64;

/// A position in the replicated log. The first entry has index 1; index 0 is
/// the empty prefix, with term 0.
pub type LogIndex = u64;

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Entry {
    /// Position in the log (`>= 1`).
    pub index: LogIndex,
    /// Term of the leader that created the entry.
    pub term: Term,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// Approximate size on the wire and on disk, for batching limits.
    pub fn size(&self) -> usize {
        24 + match &self.payload {
            Payload::Noop => 0,
            Payload::Command(data) => data.len(),
            Payload::Membership(m) => 8 * (m.voters.len() + m.learners.len()),
        }
    }
}

/// The content of a log entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Payload {
    /// The empty entry a new leader appends to commit entries of earlier
    /// terms (§5.4.2, §8).
    Noop,
    /// An application command, opaque to Raft.
    Command(Bytes),
    /// A new cluster membership, in effect as soon as it is appended.
    /// Boxed: memberships are rare, and inline they would make every entry
    /// (cloned into messages, writes and applies) more than twice as large.
    Membership(Box<Membership>),
}

impl Payload {
    /// A platform-independent hash of the payload (FNV-1a), for checkers and traces.
    pub fn digest(&self) -> u64 {
        let mut hash = crate::hash::Fnv::new();
        match self {
            Payload::Noop => hash.write(&[0]),
            Payload::Command(data) => hash.write(&[1]).write(data),
            Payload::Membership(m) => {
                hash.write(&[2]);
                for v in m.voters.iter().chain(&m.learners) {
                    hash.write_u64(*v);
                }
                &mut hash
            }
        };
        hash.finish()
    }
}

/// Who is in the cluster. Voters count toward quorums; learners only receive the log.
///
/// The configuration also carries where each member is reached (an opaque
/// address for the driver: the native server's `HOST:PORT`, nothing in the
/// simulator), so every node and client learns the members from the log,
/// and which ids were removed (a driver that wants permanent ids refuses
/// them, see [`Membership::add_member`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Membership {
    /// Voting members, sorted, without duplicates.
    pub voters: Vec<NodeId>,
    /// Non-voting members, sorted, disjoint from `voters`.
    pub learners: Vec<NodeId>,
    /// Members' addresses, sorted by id, at most one per member (a member
    /// may have none).
    pub addresses: Vec<(NodeId, String)>,
    /// Ids removed from the cluster, sorted, none of them a member.
    pub removed: Vec<NodeId>,
    /// A learner being caught up to be made a voter (added with
    /// `promote: true`, see [`Input::AddMember`](super::Input::AddMember)):
    /// a learner of this membership, or `None`. Until it is promoted or
    /// removed, no other membership change is made (one change at a time,
    /// across leader changes, since this is replicated).
    pub promoting: Option<NodeId>,
}

impl Membership {
    /// A membership of the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        let mut voters: Vec<NodeId> = voters.into_iter().collect();
        voters.sort_unstable();
        voters.dedup();
        Membership {
            voters,
            learners: Vec::new(),
            addresses: Vec::new(),
            removed: Vec::new(),
            promoting: None,
        }
    }

    /// The address of member `id`, if it has one.
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.addresses
            .binary_search_by_key(&id, |(member, _)| *member)
            .ok()
            .map(|at| self.addresses[at].1.as_str())
    }

    /// Whether `id` was removed from the cluster.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed.binary_search(&id).is_ok()
    }

    /// Whether `id` is a voter.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    /// Whether `id` is a member at all.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// Votes needed for a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// The state Raft must make durable before answering RPCs (Figure 2): the
/// current term and the vote cast in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: Term,
    /// Candidate that received this node's vote in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// Describes a snapshot: the log prefix it replaces and the membership at its end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot covers.
    pub index: LogIndex,
    /// Term of that entry.
    pub term: Term,
    /// Membership in effect at `index`.
    pub membership: Membership,
}

/// A snapshot: metadata and the application's serialized state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The application state at `meta.index`, opaque to Raft.
    pub data: Bytes,
}
