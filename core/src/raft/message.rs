//! Messages between Raft nodes: one struct per RPC (Figure 2 of the Raft paper,
//! plus PreVote, heartbeats with read confirmation, chunked snapshots and
//! leadership transfer).
//!
//! Every message carries the sender's term. Local events (time, proposals,
//! reads) are [`Input`](crate::raft::Input)s, never messages.
//!
//! With the `serde` feature, field names serialize in camelCase (what the
//! browser's message inspector shows); the drivers' wire and disk encoding,
//! postcard, ignores names and depends only on the order of fields and
//! variants, which must not change.

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::Bytes;

use super::types::{Entry, LogIndex, NodeId, SnapshotMeta, Term};

/// A message addressed to one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Envelope {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// A Raft RPC or its response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Message {
    /// Ask for a vote (§5.2), or with `pre_vote`, ask whether a vote would be granted.
    RequestVote(RequestVote),
    /// Answer to [`Message::RequestVote`].
    RequestVoteResponse(RequestVoteResponse),
    /// Replicate entries (§5.3).
    AppendEntries(AppendEntries),
    /// Answer to [`Message::AppendEntries`].
    AppendEntriesResponse(AppendEntriesResponse),
    /// Leader liveness, commit index and ReadIndex confirmation rounds.
    Heartbeat(Heartbeat),
    /// Answer to [`Message::Heartbeat`].
    HeartbeatResponse(HeartbeatResponse),
    /// One chunk of a snapshot (§7). Boxed: it is much larger than the others.
    InstallSnapshot(Box<InstallSnapshot>),
    /// Answer to [`Message::InstallSnapshot`].
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// Start an election now, skipping PreVote: the leader is handing over (§3.10 of the dissertation).
    TimeoutNow(TimeoutNow),
    /// A follower asks its leader for a read index, to serve a read itself
    /// (follower reads, §6.4 of the dissertation).
    ReadIndex(ReadIndexRequest),
    /// Answer to [`Message::ReadIndex`].
    ReadIndexResponse(ReadIndexResponse),
}

impl Message {
    /// The sender's term.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteResponse(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesResponse(m) => m.term,
            Message::Heartbeat(m) => m.term,
            Message::HeartbeatResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::InstallSnapshotResponse(m) => m.term,
            Message::TimeoutNow(m) => m.term,
            Message::ReadIndex(m) => m.term,
            Message::ReadIndexResponse(m) => m.term,
        }
    }

    /// The RPC's name as the paper spells it (`PreVote` for a pre-vote request).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::RequestVote(m) if m.pre_vote => "PreVote",
            Message::RequestVote(_) => "RequestVote",
            Message::RequestVoteResponse(m) if m.pre_vote => "PreVoteResponse",
            Message::RequestVoteResponse(_) => "RequestVoteResponse",
            Message::AppendEntries(_) => "AppendEntries",
            Message::AppendEntriesResponse(_) => "AppendEntriesResponse",
            Message::Heartbeat(_) => "Heartbeat",
            Message::HeartbeatResponse(_) => "HeartbeatResponse",
            Message::InstallSnapshot(_) => "InstallSnapshot",
            Message::InstallSnapshotResponse(_) => "InstallSnapshotResponse",
            Message::TimeoutNow(_) => "TimeoutNow",
            Message::ReadIndex(_) => "ReadIndex",
            Message::ReadIndexResponse(_) => "ReadIndexResponse",
        }
    }

    /// Whether this is a request (as opposed to a response), for RPC counting.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Message::RequestVote(_)
                | Message::AppendEntries(_)
                | Message::Heartbeat(_)
                | Message::InstallSnapshot(_)
                | Message::TimeoutNow(_)
                | Message::ReadIndex(_)
        )
    }

    /// Approximate encoded size in bytes, for batching limits and byte accounting.
    pub fn size(&self) -> usize {
        16 + match self {
            Message::AppendEntries(m) => 32 + m.entries.iter().map(Entry::size).sum::<usize>(),
            Message::InstallSnapshot(m) => 48 + m.data.len() + 8 * m.meta.membership.voters.len(),
            _ => 24,
        }
    }
}

/// RequestVote (§5.2) and PreVote (§9.6 of the dissertation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct RequestVote {
    /// Candidate's term; for a pre-vote, the term it would campaign in.
    pub term: Term,
    /// Index of the candidate's last log entry.
    pub last_log_index: LogIndex,
    /// Term of the candidate's last log entry.
    pub last_log_term: Term,
    /// A pre-vote: nobody changes term or vote because of it.
    pub pre_vote: bool,
    /// Sent after a [`TimeoutNow`]: voters grant it even if they heard from a leader recently.
    pub transfer: bool,
}

/// Answer to [`RequestVote`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct RequestVoteResponse {
    /// The voter's term; for a granted pre-vote, the term of the request.
    pub term: Term,
    /// Whether the vote (or pre-vote) is granted.
    pub granted: bool,
    /// Answers a pre-vote.
    pub pre_vote: bool,
}

/// AppendEntries (§5.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct AppendEntries {
    /// Leader's term.
    pub term: Term,
    /// Index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// Term of that entry.
    pub prev_log_term: Term,
    /// Entries to store, consecutive from `prev_log_index + 1` (may be empty for a probe).
    pub entries: Vec<Entry>,
    /// Leader's commit index.
    pub leader_commit: LogIndex,
}

/// Answer to [`AppendEntries`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct AppendEntriesResponse {
    /// Follower's term.
    pub term: Term,
    /// On success: the follower's log matches the leader's through this index
    /// (and it is durable). On rejection: the `prev_log_index` that was rejected.
    pub index: LogIndex,
    /// Whether the entries were accepted.
    pub success: bool,
    /// On rejection, where the leader should look next (fast back-off).
    pub conflict: Option<ConflictHint>,
}

/// Fast log back-off hint (§5.3: "the follower can include the term of the
/// conflicting entry and the first index it stores for that term"), in the
/// form etcd's raft uses: the follower's largest index `<=` the rejected one
/// whose term is `<=` the leader's `prev_log_term`. The leader probes next at
/// its own largest index `<= index` with a term `<= term`, skipping whole
/// terms on both sides in one round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConflictHint {
    /// The follower's candidate match position.
    pub index: LogIndex,
    /// The follower's term at `index`.
    pub term: Term,
}

/// Heartbeat: keeps followers from campaigning, carries the commit index, and
/// confirms leadership for ReadIndex rounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Heartbeat {
    /// Leader's term.
    pub term: Term,
    /// `min(leader commit, follower's match index)`: never ahead of what the follower has.
    pub commit: LogIndex,
    /// ReadIndex round being confirmed; echoed in the response.
    pub round: u64,
}

/// Answer to [`Heartbeat`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct HeartbeatResponse {
    /// Follower's term.
    pub term: Term,
    /// The round of the heartbeat being answered.
    pub round: u64,
    /// The follower's last log index, so the leader notices a follower that lost entries.
    pub last_index: LogIndex,
}

/// One chunk of a snapshot (§7), sent in order; the follower assembles them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct InstallSnapshot {
    /// Leader's term.
    pub term: Term,
    /// The snapshot being sent.
    pub meta: SnapshotMeta,
    /// Total size of the snapshot data in bytes.
    pub total_len: u64,
    /// Byte offset of `data` in the snapshot.
    pub offset: u64,
    /// The chunk.
    pub data: Bytes,
    /// This is the last chunk.
    pub done: bool,
}

/// Answer to [`InstallSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct InstallSnapshotResponse {
    /// Follower's term.
    pub term: Term,
    /// The snapshot index this answers.
    pub snapshot_index: LogIndex,
    /// Bytes received so far: the offset the leader should send next. Equal to
    /// the total once the snapshot is installed and durable.
    pub received: u64,
    /// The whole snapshot is installed and durable.
    pub done: bool,
}

/// Tells the transfer target to campaign at once (leadership transfer).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimeoutNow {
    /// Leader's term.
    pub term: Term,
}

/// A follower's request for a read index (follower reads, §6.4 of the
/// dissertation): the leader confirms its leadership with a heartbeat round
/// started after the request arrived, exactly as for its own reads, and
/// answers its commit index as of the request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReadIndexRequest {
    /// The follower's term.
    pub term: Term,
    /// The follower's read id, echoed in the answer.
    pub id: u64,
    /// A number the follower drew when it started, echoed in the answer.
    /// Read ids start again when a follower restarts, in the same term and
    /// under the same leader: without it, an answer to a request of the
    /// follower's previous run, delayed across the restart, would be taken
    /// for the answer to a new read with the same id (and serve it at an
    /// older index: a stale read).
    pub nonce: u64,
}

/// Answer to [`ReadIndexRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReadIndexResponse {
    /// The leader's term.
    pub term: Term,
    /// The request's id.
    pub id: u64,
    /// The request's nonce.
    pub nonce: u64,
    /// The read index (serve once applied there), or `None` if this node
    /// could not confirm it (not leader, or it lost leadership meanwhile).
    pub index: Option<LogIndex>,
}
