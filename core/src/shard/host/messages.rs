//! What goes in and out of a host: messages between hosts, client
//! requests and replies, driver inputs and outputs.

use super::*;

/// A message between hosts, tagged with the group it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HostMessage {
    /// A Raft message of one group.
    Raft {
        /// The group.
        group: GroupId,
        /// The message (`from`/`to` are host ids).
        envelope: Envelope,
    },
    /// A shard group's leader asks a controller server for configuration `num`.
    ConfigQuery {
        /// The asking group.
        group: GroupId,
        /// The configuration wanted.
        num: u64,
    },
    /// A controller server's answer.
    ConfigReply {
        /// The group that asked.
        group: GroupId,
        /// The configuration.
        config: ShardConfig,
    },
    /// The old owner hands a shard over.
    ShardPush {
        /// The old owner.
        from_group: GroupId,
        /// The new owner.
        to_group: GroupId,
        /// The configuration the shard moves in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
        /// Its data and sessions ([`crate::shard::group::encode_shard`]).
        data: Bytes,
    },
    /// The old owner hands over a part of a shard too large for one
    /// message ([`HostConfig::shard_part_bytes`]): its keys after `after`,
    /// in order, the sessions in the last part.
    ShardPushPart {
        /// The old owner.
        from_group: GroupId,
        /// The new owner.
        to_group: GroupId,
        /// The configuration the shard moves in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
        /// The largest key of the parts before this one (`None`: the first).
        after: Option<Bytes>,
        /// Whether this is the last part.
        last: bool,
        /// The part ([`crate::shard::group::encode_shard`]).
        data: Bytes,
    },
    /// The new owner's leader tells the old owner how far a shard moving in
    /// parts has come: the largest key it has applied (`None`: none yet).
    /// The whole shard is acknowledged with [`HostMessage::ShardAck`].
    ShardPartAck {
        /// The old owner.
        group: GroupId,
        /// The configuration the shard moves in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
        /// The largest key the new owner holds.
        held: Option<Bytes>,
    },
    /// A leader proposes that its group hibernate: every replica is at
    /// `index`, nothing is moving.
    Hibernate {
        /// The group.
        group: GroupId,
        /// The leader's term.
        term: Term,
        /// Its last (committed, applied) index.
        index: LogIndex,
    },
    /// A follower agreed and stopped its timers for `group`.
    HibernateAck {
        /// The group.
        group: GroupId,
        /// The term it agreed in.
        term: Term,
    },
    /// Nothing else to send: this host is alive (sent only while some
    /// group is hibernating, at most once per heartbeat interval per peer).
    Alive,
    /// The new owner has the shard: the old owner may delete it.
    ShardAck {
        /// The old owner (the group that pushed).
        group: GroupId,
        /// The configuration the shard moved in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
    },
    /// A replica of `group`, which left and holds no shard in configuration
    /// `config_num`, asks a controller server whether the group may be
    /// retired (see "Retirement" in the module documentation).
    RetireQuery {
        /// The group.
        group: GroupId,
        /// The configuration the asking replica has applied.
        config_num: u64,
    },
    /// `group` is retired: sent by a controller server that applied its
    /// retirement, and by a host that retired its replica to a replica of
    /// the group that still talks to it. The receiver drops its replica.
    Retired {
        /// The group.
        group: GroupId,
    },
}

impl HostMessage {
    /// A short name for traces (`Raft/AppendEntries`, `ShardPush`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            HostMessage::Raft { envelope, .. } => envelope.message.kind(),
            HostMessage::ConfigQuery { .. } => "ConfigQuery",
            HostMessage::ConfigReply { .. } => "ConfigReply",
            HostMessage::ShardPush { .. } => "ShardPush",
            HostMessage::ShardAck { .. } => "ShardAck",
            HostMessage::ShardPushPart { .. } => "ShardPushPart",
            HostMessage::ShardPartAck { .. } => "ShardPartAck",
            HostMessage::Hibernate { .. } => "Hibernate",
            HostMessage::HibernateAck { .. } => "HibernateAck",
            HostMessage::Alive => "Alive",
            HostMessage::RetireQuery { .. } => "RetireQuery",
            HostMessage::Retired { .. } => "Retired",
        }
    }
}

/// Everything one step produced for one destination host.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HostBatch {
    /// Sending host.
    pub from: NodeId,
    /// Receiving host.
    pub to: NodeId,
    /// The messages, in the order they were produced.
    pub messages: Vec<HostMessage>,
}

/// The writes of every group that one step produced: make them durable
/// (in order), then acknowledge with [`HostInput::Persisted`]`(seq)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostWrite {
    /// Position in the host's write stream.
    pub seq: u64,
    /// Each group's writes, in order (apply each to that group's storage
    /// as [`Write`] documents).
    pub writes: Vec<(GroupId, Write)>,
}

/// A client's request to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HostRequest {
    /// A shard controller request (to a controller server).
    Controller {
        /// Correlation id, echoed in the reply.
        id: u64,
        /// Client id (random, chosen by the client).
        client: u64,
        /// Sequence number of the client's changes.
        seq: u64,
        /// What is asked.
        op: ControllerOp,
    },
    /// A key-value operation for one group.
    Kv {
        /// Correlation id, echoed in the reply.
        id: u64,
        /// The group the client believes owns the key.
        group: GroupId,
        /// Client id (random, chosen by the client).
        client: u64,
        /// Sequence number of the client's writes.
        seq: u64,
        /// The operation.
        op: Operation,
    },
    /// A linearizable read of `key` served by this host's replica of
    /// `group`, whatever its role (follower reads, TiKV's follower read):
    /// a follower asks its group's leader for a read index, waits until it
    /// has applied that far, then checks that the group still serves the
    /// key's shard at that point and answers from its own state. Answered
    /// with [`HostReply::Kv`], with the same errors as a get through the
    /// log ([`KvError::WrongGroup`] once the shard moved, and
    /// [`KvError::NotLeader`] when no leader could confirm the index).
    FollowerRead {
        /// Correlation id, echoed in the reply.
        id: u64,
        /// The group the client believes owns the key.
        group: GroupId,
        /// The key.
        key: Bytes,
    },
    /// A chunk of one shard's data and sessions, for a backup of the
    /// service, served by this host's replica of `group` whatever its
    /// role. The first request (`at: None`) waits for a read index as a
    /// [`HostRequest::FollowerRead`] does, then takes the shard's export
    /// if the group serves it at that point and answers its first chunk
    /// ([`KvError::NotArrived`] or [`KvError::WrongGroup`] otherwise, as
    /// for a read); the next ones name that export (`at`: the index it was
    /// taken at) and the `offset` wanted. A host holds a few exports (see
    /// [`EXPORTS_HELD`](super::EXPORTS_HELD)): a chunk of one it no longer
    /// holds is refused with [`KvError::Busy`], and the shard is started
    /// over. Answered with [`HostReply::Export`].
    Export {
        /// Correlation id, echoed in the reply.
        id: u64,
        /// The group the client believes owns the shard.
        group: GroupId,
        /// The shard.
        shard: ShardId,
        /// The export being fetched; `None` for a new one.
        at: Option<LogIndex>,
        /// Where the chunk starts, in bytes.
        offset: u64,
    },
}

/// Bytes of one chunk of a shard's export ([`HostRequest::Export`]).
pub const EXPORT_CHUNK_BYTES: usize = 4 << 20;

/// A chunk of a shard's export ([`HostRequest::Export`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExportChunk {
    /// The shard.
    pub shard: ShardId,
    /// The configuration the group was in when the export was taken.
    pub config: u64,
    /// The group's applied index when the export was taken.
    pub index: LogIndex,
    /// The export's size, bytes (the shard as
    /// [`encode_shard`](super::super::group::encode_shard) writes it).
    pub total: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// The chunk.
    pub data: Bytes,
}

impl HostRequest {
    /// The correlation id.
    pub fn id(&self) -> u64 {
        match self {
            HostRequest::Controller { id, .. }
            | HostRequest::Kv { id, .. }
            | HostRequest::FollowerRead { id, .. }
            | HostRequest::Export { id, .. } => *id,
        }
    }
}

/// A host's answer to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HostReply {
    /// Answer to [`HostRequest::Controller`].
    Controller {
        /// The request's id.
        id: u64,
        /// The controller's reply, or why this server could not get one.
        result: Result<ControllerReply, KvError>,
    },
    /// Answer to [`HostRequest::Kv`].
    Kv {
        /// The request's id.
        id: u64,
        /// The value read (gets), or why it failed.
        result: Result<Option<Bytes>, KvError>,
    },
    /// Answer to [`HostRequest::Export`].
    Export {
        /// The request's id.
        id: u64,
        /// The chunk, or why there is none.
        result: Result<ExportChunk, KvError>,
    },
}

impl HostReply {
    /// The correlation id.
    pub fn id(&self) -> u64 {
        match self {
            HostReply::Controller { id, .. }
            | HostReply::Kv { id, .. }
            | HostReply::Export { id, .. } => *id,
        }
    }
}

/// Input to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostInput {
    /// Time has passed.
    Timeout,
    /// A batch from another host.
    Batch(HostBatch),
    /// A client request.
    Client {
        /// Where the reply goes.
        from: ReplyTo,
        /// The request.
        request: HostRequest,
    },
    /// Host writes up to this seq are durable.
    Persisted(u64),
}

/// Output of a host, in the order the driver must execute them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOutput {
    /// Make durable, then acknowledge.
    Persist(HostWrite),
    /// Send to another host.
    Send(HostBatch),
    /// Answer a client.
    Reply {
        /// Where the request came from.
        to: ReplyTo,
        /// The answer.
        reply: HostReply,
    },
    /// This host dropped its replica of the group for good (the group was
    /// retired): after the writes polled before it, store a tombstone so
    /// that a restart does not host the group again (give it back in
    /// [`HostConfig::retired`]). Losing the tombstone in a crash is safe:
    /// the replica then learns again that its group is retired.
    Retired(GroupId),
}

/// Why the host refused an input (driver misuse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRejected {
    /// `Persisted(seq)` names a write never emitted.
    UnknownWrite {
        /// The seq acknowledged.
        seq: u64,
        /// The last seq emitted.
        last: u64,
    },
}

/// What a host dropped or did, for tests and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Batches received.
    pub batches_received: u64,
    /// Batches sent.
    pub batches_sent: u64,
    /// Messages inside received batches.
    pub messages_received: u64,
    /// Batches for another host or claiming to come from this one, and
    /// Raft messages whose addresses disagree with their batch.
    pub misaddressed: u64,
    /// Messages for a group not hosted here.
    pub unknown_group: u64,
    /// Shard pushes and configuration replies that did not fit the group's state.
    pub ignored: u64,
    /// Times a group went to sleep here.
    pub hibernations: u64,
    /// Replicas dropped here because their group was retired.
    pub groups_retired: u64,
    /// Times a hibernating group woke up here.
    pub wakes: u64,
    /// Wakes caused by a peer host gone silent.
    pub suspicions: u64,
    /// Follower reads answered with a value by a replica that did not lead
    /// its group at that moment.
    pub follower_reads_served: u64,
    /// [`HostStats::follower_reads_served`] by group (groups with none
    /// left out).
    pub follower_reads_by_group: BTreeMap<GroupId, u64>,
}
