//! The node's interface with its driver: what goes in ([`Input`], with
//! [`MembershipChange`]), what comes out ([`Output`]), what an input may be refused for ([`Rejected`]),
//! and what the node counts ([`Stats`]).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::message::Envelope;
#[cfg(doc)]
use super::node::Node;
use super::storage::Write;
use super::types::{Entry, LogIndex, NodeId, Snapshot, Term};

/// Something the driver asks of the node. Pass it to [`Node::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time has passed: fire whatever deadlines are due. Call it at (or after)
    /// [`Node::poll_timeout`]; calling it early is harmless.
    Timeout,
    /// A message from a peer.
    Message(Envelope),
    /// Append a command to the log (leader only).
    Propose(Bytes),
    /// A linearizable read: answered by [`Output::ReadReady`] with the index the
    /// application must have applied before serving it (leader only).
    ReadIndex(u64),
    /// Every [`Write`] with `seq` up to this one is durable.
    Persisted(u64),
    /// The application took a snapshot of its state at `index` (at most the
    /// applied index): compact the log up to it.
    Compact {
        /// Last index the snapshot covers.
        index: LogIndex,
        /// The serialized application state.
        data: Bytes,
    },
    /// Start an election now, as if the election timeout had fired.
    Campaign,
    /// Hand leadership over to `to` (leader only).
    TransferLeadership(NodeId),
    /// Change the membership by one server (leader only).
    ChangeMembership(MembershipChange),
    /// Add `id` as a learner reached at `address`, recorded in the
    /// replicated configuration (leader only; a removed id is refused).
    AddMember {
        /// The new member's id, never used before.
        id: NodeId,
        /// Where it is reached (opaque to Raft).
        address: String,
        /// Whether it is added to be made a voter once it has caught up:
        /// the configuration then records it in
        /// [`Membership::promoting`](super::Membership::promoting), and no
        /// other change is made until it is promoted or removed.
        promote: bool,
    },
    /// The driver withheld [`Input::Timeout`] for a while (a hibernating
    /// group, see `shard::host`) and resumes it: restart the timers from
    /// now, as a fresh leader or follower would (a leader sends a heartbeat
    /// at once and checks its quorum an election timeout later; a follower
    /// waits a new election timeout). Only postpones timers.
    Wake,
    /// A linearizable read this node serves whatever its role (follower
    /// reads, §6.4 of the dissertation; TiKV's follower read): the leader
    /// runs ReadIndex itself; a follower with a known leader asks it for a
    /// read index ([`Message::ReadIndex`](super::message::Message::ReadIndex)),
    /// which the leader confirms with a heartbeat round as for its own
    /// reads. Answered by [`Output::ReadReady`] (serve once applied there)
    /// or [`Output::ReadFailed`] (leader changed, or no answer within the
    /// maximum election timeout). Refused with [`Rejected::NotLeader`] when
    /// no leader is known.
    FollowerRead(u64),
}

/// One change to the membership, for [`Input::ChangeMembership`] (the
/// rules it follows are in the `membership` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MembershipChange {
    /// Add a non-voting member that receives the log.
    AddLearner(NodeId),
    /// Make a learner (or a new node) a voter.
    AddVoter(NodeId),
    /// Remove a member (voter or learner).
    Remove(NodeId),
}

/// Something the node asks of the driver. Drain with [`Node::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this durable, then acknowledge it with [`Input::Persisted`].
    Persist(Write),
    /// Send this message. Messages may be lost, duplicated or reordered.
    Send(Envelope),
    /// These entries are committed: apply them to the state machine, in order.
    Apply(Vec<Entry>),
    /// Replace the state machine with this snapshot (sent by the leader).
    /// Boxed: rare and large, it would otherwise set the size of every
    /// output.
    ApplySnapshot(Box<Snapshot>),
    /// The read `id` is linearizable once the state machine has applied `index`.
    ReadReady {
        /// The id passed with [`Input::ReadIndex`].
        id: u64,
        /// Apply at least this far, then serve the read.
        index: LogIndex,
    },
    /// The read `id` cannot be served here: this node lost leadership (or,
    /// for a [`Input::FollowerRead`] at a follower, its leader could not
    /// confirm a read index).
    ReadFailed {
        /// The id passed with [`Input::ReadIndex`].
        id: u64,
        /// Who may be leader now.
        leader_hint: Option<NodeId>,
    },
}

/// What an accepted input did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Done; any effects come out of [`Node::poll_output`].
    Done,
    /// A proposal was appended to the leader's log at `index` in `term`.
    /// It is not committed yet: watch the applied entries.
    Appended {
        /// Its index.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
}

/// Why the node refused an input (driver misuse or a request it cannot serve).
/// Bad input from peers is never an error: it is dropped and counted in [`Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Only the leader takes proposals, reads and transfers.
    NotLeader {
        /// The leader this node knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// The leader is handing over leadership and takes no proposals meanwhile.
    TransferInProgress,
    /// The command is larger than `Config::max_entry_bytes`.
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many bytes are uncommitted (followers are slow or unreachable): retry later.
    Busy,
    /// The node id is not a voting member.
    UnknownNode(NodeId),
    /// A learner cannot campaign.
    NotVoter,
    /// A compaction index must be above the current snapshot and at most the applied index.
    CompactionIndex {
        /// The index asked for.
        index: LogIndex,
        /// The current snapshot index.
        snapshot_index: LogIndex,
        /// The applied index.
        applied: LogIndex,
    },
    /// A membership change is not committed yet, or the leader has not
    /// committed an entry of its term yet: retry shortly.
    MembershipChangeInProgress,
    /// The change does not apply to the current membership (adding a member
    /// twice, removing a stranger or the last voter).
    InvalidMembershipChange(MembershipChange),
    /// The id was removed from the cluster: ids are never reused.
    RemovedId(NodeId),
    /// Learner `id` is being caught up to be promoted
    /// ([`Membership::promoting`](super::Membership::promoting)): only its
    /// promotion or its removal is taken until then.
    PromotionInProgress(NodeId),
    /// `Persisted(seq)` names a write that was never emitted.
    UnknownWrite {
        /// The seq acknowledged.
        seq: u64,
        /// The last seq emitted.
        last: u64,
    },
}

impl core::fmt::Display for Rejected {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Rejected::NotLeader {
                leader_hint: Some(id),
            } => write!(f, "not the leader (try node {id})"),
            Rejected::NotLeader { leader_hint: None } => {
                write!(f, "not the leader (no leader known)")
            }
            Rejected::TransferInProgress => write!(f, "leadership transfer in progress"),
            Rejected::TooLarge { size, limit } => {
                write!(f, "command of {size} bytes exceeds the limit of {limit}")
            }
            Rejected::Busy => write!(f, "too much uncommitted data; retry later"),
            Rejected::UnknownNode(id) => write!(f, "node {id} is not a voting member"),
            Rejected::NotVoter => write!(f, "a learner cannot campaign"),
            Rejected::CompactionIndex {
                index,
                snapshot_index,
                applied,
            } => write!(
                f,
                "cannot compact at {index}: it must be above the snapshot ({snapshot_index}) and at most the applied index ({applied})"
            ),
            Rejected::MembershipChangeInProgress => {
                write!(f, "a membership change is in progress; retry shortly")
            }
            Rejected::InvalidMembershipChange(change) => {
                write!(f, "invalid membership change {change:?}")
            }
            Rejected::RemovedId(id) => write!(f, "node {id} was removed; ids are never reused"),
            Rejected::PromotionInProgress(id) => write!(
                f,
                "a membership change is in progress: learner {id} is catching up to be promoted; only its promotion or its removal is taken until then"
            ),
            Rejected::UnknownWrite { seq, last } => {
                write!(f, "write {seq} was never emitted (last is {last})")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Rejected {}

/// The role a node plays, without its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking whether it could win an election (PreVote).
    PreCandidate,
    /// Campaigning in its term.
    Candidate,
    /// Leading its term.
    Leader,
    /// A non-voting member: follows, never campaigns.
    Learner,
}

impl RoleKind {
    /// Lowercase name (`leader`, `follower`, ...), as the JS API spells it.
    pub fn name(self) -> &'static str {
        match self {
            RoleKind::Follower => "follower",
            RoleKind::PreCandidate => "precandidate",
            RoleKind::Candidate => "candidate",
            RoleKind::Leader => "leader",
            RoleKind::Learner => "learner",
        }
    }
}

/// Counters of peer input the node dropped or ignored, and of notable events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages handled.
    pub messages_received: u64,
    /// Messages with a term older than ours (answered when that helps the sender catch up).
    pub stale_term: u64,
    /// Messages that failed validation (bad indexes, sizes, terms).
    pub malformed: u64,
    /// Messages addressed to another node, or from itself or node 0.
    pub misaddressed: u64,
    /// Messages that make no sense in the current role (e.g. a response to an old election).
    pub unexpected: u64,
    /// Vote requests ignored because a leader was heard from recently.
    pub ignored_in_lease: u64,
    /// Messages from an id the committed configuration removed: a removed
    /// node that comes back is refused, never obeyed (no vote, pre-vote,
    /// append or term of its counts).
    pub from_removed: u64,
    /// Elections (and pre-vote rounds) started.
    pub elections: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Snapshot chunks sent.
    pub snapshot_chunks_sent: u64,
    /// Messages that were held for durability and dropped because the term moved on.
    pub held_dropped: u64,
    /// Times CheckQuorum deposed this leader and it sent `TimeoutNow` to a
    /// follower (see [`Config::check_quorum_timeout`](super::Config::check_quorum_timeout)).
    pub check_quorum_handovers: u64,
}
