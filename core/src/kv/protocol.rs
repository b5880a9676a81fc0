//! The client protocol: requests from clerks to replicas and the replicas'
//! answers. With the `serde` feature, field and variant names serialize in
//! camelCase and keys and values as text in human-readable formats (JSON),
//! as the browser shows them; binary formats (the drivers' wire encoding)
//! carry raw bytes.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::command::{ClientId, Operation, ServiceError};
use crate::raft::{LogIndex, NodeId, Term};

/// A request from a client to a replica. `id` is the client's correlation id,
/// echoed in the response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct ClientRequest {
    /// Correlation id chosen by the client.
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "camelCase", rename_all_fields = "camelCase")
)]
pub enum RequestBody {
    /// A client's first write, which opens its session (§6.3 of the
    /// dissertation, with the registration folded into the first write: one
    /// log entry, one round). The session's id is the index of the entry;
    /// the write is its sequence number 1. `nonce`, drawn by the client and
    /// kept across retries, lets a retried opening be recognised: it is
    /// answered with the original result and not applied again.
    Open {
        /// Identifies this opening across retries (non-zero).
        nonce: u64,
        /// The write.
        operation: Operation,
    },
    /// Run an operation in a session (a read needs none). Writes with a
    /// `seq` already applied are answered with the original result and not
    /// applied again.
    Operation {
        /// The session.
        client: ClientId,
        /// Sequence number within the session, starting at 1, one operation at a time.
        seq: u64,
        /// The operation.
        operation: Operation,
    },
    /// Report this replica's Raft status (answered by any replica).
    Status,
    /// Report the cluster's members. Answered by any replica from its log
    /// unless `linearizable`: then only by the leader, after a ReadIndex
    /// round has confirmed that it still leads and it has applied what was
    /// committed when the request came (like etcd's `member list`), so
    /// that a deposed leader cannot answer with a stale configuration.
    Members {
        /// Whether only the leader answers, at a linearizable point.
        linearizable: bool,
    },
    /// Change the membership by one server (answered by the leader once the
    /// change is in its log; [`RequestBody::Members`] tells when it is
    /// committed).
    ChangeMembers(MemberChange),
    /// A chunk of a consistent snapshot of the state machine, for a backup
    /// (answered by the leader). The first request (`index: None`) takes
    /// the snapshot at a linearizable point (after a ReadIndex round) and
    /// answers its first chunk; the next ones name its `index` and the
    /// `offset` wanted.
    Backup {
        /// The snapshot being fetched; `None` for a new one.
        index: Option<LogIndex>,
        /// Where the chunk starts, in bytes.
        offset: u64,
    },
    /// A linearizable read that any replica may serve, a follower included
    /// (follower reads: it asks its leader for a read index and serves
    /// from its own state machine once it has applied that far). Sent by a
    /// clerk with [`ClerkConfig::follower_reads`](super::ClerkConfig::follower_reads).
    FollowerRead {
        /// The key to read.
        key: Bytes,
    },
}

/// A chunk of a backup snapshot ([`RequestBody::Backup`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct BackupChunk {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// That entry's term.
    pub term: Term,
    /// The snapshot's size, bytes.
    pub total: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// The chunk.
    #[cfg_attr(feature = "serde", serde(with = "super::text"))]
    pub data: Bytes,
}

/// The highest id [`MemberChange::Add`] accepts. Clients address the
/// members by id, keeping one slot per id up to the highest: an id in the
/// billions would make every client allocate gigabytes.
pub const MAX_MEMBER_ID: NodeId = 65_535;

/// A membership change asked by an operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "camelCase", rename_all_fields = "camelCase")
)]
pub enum MemberChange {
    /// Add a learner `id` reached at `address`; the id must never have been
    /// used, and be at most [`MAX_MEMBER_ID`].
    Add {
        /// The new member's id.
        id: NodeId,
        /// Where it is reached.
        address: String,
        /// Whether it is added to be promoted once it has caught up: until
        /// it is promoted or removed, the cluster takes no other change
        /// ([`Membership::promoting`](crate::raft::Membership::promoting)).
        promote: bool,
    },
    /// Make learner `id` a voter.
    Promote(NodeId),
    /// Remove member `id` (the leader hands leadership over first when it
    /// is the one removed).
    Remove(NodeId),
}

/// One member of the cluster, as the leader sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct MemberInfo {
    /// Its id.
    pub id: NodeId,
    /// Where it is reached (empty if the configuration has no address for it).
    pub address: String,
    /// Whether it votes (else it is a learner).
    pub voter: bool,
    /// The highest log index known to be on it (the leader's own last index
    /// for the leader).
    pub match_index: LogIndex,
}

/// The cluster's membership, as one replica sees it (the leader's view is
/// the authoritative one; only the leader knows the members' match indexes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct MembersStatus {
    /// The replica that answered.
    pub node: NodeId,
    /// The leader it knows of (itself when `node` leads).
    pub leader: Option<NodeId>,
    /// Its term.
    pub term: Term,
    /// Its commit index.
    pub commit_index: LogIndex,
    /// Its last log index.
    pub last_index: LogIndex,
    /// Every member, voters and learners, by id.
    pub members: Vec<MemberInfo>,
    /// Ids removed from the cluster (never reused).
    pub removed: Vec<NodeId>,
    /// Whether the latest membership change is not committed yet.
    pub change_pending: bool,
    /// A learner being caught up to be promoted (by `member add`): until
    /// it is promoted or removed, no other change is taken.
    pub promoting: Option<NodeId>,
}

/// A replica's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct ClientResponse {
    /// The request's correlation id.
    pub id: u64,
    /// The outcome.
    pub result: Result<Reply, ServiceError>,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "camelCase", rename_all_fields = "camelCase")
)]
pub enum Reply {
    /// The session was opened by its first write, which took effect; later
    /// writes use this id with sequence numbers 2, 3, ...
    Opened(ClientId),
    /// The operation took effect; a get carries the value read (`None`: missing key).
    Done(#[cfg_attr(feature = "serde", serde(with = "super::text::option"))] Option<Bytes>),
    /// The replica's status.
    Status(NodeStatus),
    /// The cluster's members.
    Members(MembersStatus),
    /// A chunk of a backup snapshot.
    Backup(BackupChunk),
}

/// A replica's Raft status, as `distribkv-native status` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct NodeStatus {
    /// Node id.
    pub id: NodeId,
    /// `leader`, `follower`, `candidate`, `precandidate` or `learner`.
    pub role: String,
    /// Current term.
    pub term: Term,
    /// Known leader.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Applied index.
    pub applied_index: LogIndex,
    /// Last log index.
    pub last_index: LogIndex,
    /// Durable log index.
    pub durable_index: LogIndex,
    /// Snapshot index.
    pub snapshot_index: LogIndex,
    /// Keys stored.
    pub keys: u64,
    /// Open client sessions.
    pub sessions: u64,
    /// A fingerprint of the state machine, keys, values and sessions
    /// ([`KvStore::fingerprint`](super::KvStore::fingerprint)): replicas that
    /// applied the same entries have the same fingerprint.
    pub fingerprint: u64,
    /// The voters of the latest configuration in its log.
    pub voters: Vec<NodeId>,
    /// Its learners.
    pub learners: Vec<NodeId>,
    /// Whether it knows a leader of its term and has applied everything it
    /// knows to be committed (what `/readyz` answers).
    pub ready: bool,
    /// On the leader: every other member's match index (`(id, index)`).
    pub followers: Vec<(NodeId, LogIndex)>,
}
