//! What travels between sharded hosts, and between clients and hosts.
//!
//! # Between hosts: group-tagged frames
//!
//! Every step of a host produces at most one [`HostBatch`] per destination
//! host, holding the messages of every group, each tagged with its group
//! ([`HostMessage`]). The batch travels as one [`PeerFrame`] on the one
//! peer stream of the one QUIC connection between the two processes,
//! whatever the number of groups. The sender's id is not in the frame: it
//! is the id of the stream's authenticated hello.
//!
//! A frame is checked before the host sees it ([`check_frame`]): it must be
//! for this host, not empty, and every message must concern a group held
//! here and, for Raft messages, name the stream's sender and this host. A
//! frame that fails is refused whole (a well-behaved peer never sends
//! one: different `--group` flags on two hosts are the usual cause), with
//! a [`FrameRefused`] logged and counted.
//!
//! # Between clients and hosts
//!
//! A request stream carries [`ShardedRequest`]s, each answered by one
//! [`ShardedReply`]. Every request starts with [`PROTOCOL`]: a request of
//! the single-group protocol cannot be read as a sharded one by accident,
//! nor the reverse, so a client can ask a server which protocol it speaks
//! (a sharded `Describe` that a single-group server cannot decode).

use std::collections::BTreeSet;

use distribkv_core::raft::{LogIndex, NodeId, Term};
use distribkv_core::shard::host::{HostBatch, HostMessage, HostReply, HostRequest};
use distribkv_core::shard::{GroupId, ShardConfig, ShardId};
use serde::{Deserialize, Serialize};

/// One frame on a peer stream: a host batch without its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFrame {
    /// The receiving host.
    pub to: NodeId,
    /// The messages, in the order they were produced, each tagged with its group.
    pub messages: Vec<HostMessage>,
}

impl From<HostBatch> for PeerFrame {
    fn from(batch: HostBatch) -> PeerFrame {
        PeerFrame {
            to: batch.to,
            messages: batch.messages,
        }
    }
}

/// Why a peer frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameRefused {
    /// The frame names another host as its destination.
    #[error("frame from host {from} is for host {to}, not this host ({me})")]
    WrongHost {
        /// The stream's sender.
        from: NodeId,
        /// The destination it names.
        to: NodeId,
        /// This host.
        me: NodeId,
    },
    /// The frame holds no message.
    #[error("empty frame from host {from}")]
    Empty {
        /// The stream's sender.
        from: NodeId,
    },
    /// A message concerns a group this host does not hold.
    #[error(
        "frame from host {from} refused: its {kind} message concerns group {group}, which this host does not hold (are the --group flags the same on every host?)"
    )]
    UnknownGroup {
        /// The stream's sender.
        from: NodeId,
        /// The message's kind.
        kind: &'static str,
        /// The group.
        group: GroupId,
    },
    /// A Raft message's addresses disagree with the stream.
    #[error(
        "frame from host {from} refused: a {kind} message of group {group} claims to be from {claimed_from} to {claimed_to}"
    )]
    Misaddressed {
        /// The stream's sender.
        from: NodeId,
        /// The message's kind.
        kind: &'static str,
        /// The group.
        group: GroupId,
        /// The sender it names.
        claimed_from: NodeId,
        /// The receiver it names.
        claimed_to: NodeId,
    },
}

/// Checks a frame that arrived from host `from` at host `me`, which holds
/// `groups` (the controller's group 0 among them if it is a controller
/// server), and makes it the host's input.
pub fn check_frame(
    from: NodeId,
    me: NodeId,
    groups: &BTreeSet<GroupId>,
    frame: PeerFrame,
) -> Result<HostBatch, FrameRefused> {
    if frame.to != me {
        return Err(FrameRefused::WrongHost {
            from,
            to: frame.to,
            me,
        });
    }
    if frame.messages.is_empty() {
        return Err(FrameRefused::Empty { from });
    }
    for message in &frame.messages {
        let kind = message.kind();
        // The group this host must hold for the message to make sense.
        let held = match message {
            HostMessage::Raft { group, envelope } => {
                if envelope.from != from || envelope.to != me {
                    return Err(FrameRefused::Misaddressed {
                        from,
                        kind,
                        group: *group,
                        claimed_from: envelope.from,
                        claimed_to: envelope.to,
                    });
                }
                Some(*group)
            }
            // A question for the controller: this host must be one of its servers.
            HostMessage::ConfigQuery { .. } => Some(distribkv_core::shard::host::CONTROLLER),
            HostMessage::ConfigReply { group, .. }
            | HostMessage::Hibernate { group, .. }
            | HostMessage::HibernateAck { group, .. }
            | HostMessage::ShardAck { group, .. }
            | HostMessage::ShardPartAck { group, .. } => Some(*group),
            HostMessage::ShardPush { to_group, .. }
            | HostMessage::ShardPushPart { to_group, .. } => Some(*to_group),
            HostMessage::RetireQuery { .. } => Some(distribkv_core::shard::host::CONTROLLER),
            // A group retired here is still known (its peers are told so).
            HostMessage::Retired { group } => Some(*group),
            HostMessage::Alive => None,
        };
        if let Some(group) = held
            && !groups.contains(&group)
        {
            return Err(FrameRefused::UnknownGroup { from, kind, group });
        }
    }
    Ok(HostBatch {
        from,
        to: me,
        messages: frame.messages,
    })
}

/// The first field of every client request: "DKVS" in ASCII, as a number.
pub const PROTOCOL: u32 = 0x444B_5653;

/// A client's request to a sharded host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardedRequest {
    /// Always [`PROTOCOL`].
    pub protocol: u32,
    /// What is asked.
    pub body: ShardedBody,
}

impl ShardedRequest {
    /// A request of this protocol.
    pub fn new(body: ShardedBody) -> ShardedRequest {
        ShardedRequest {
            protocol: PROTOCOL,
            body,
        }
    }
}

/// What a client asks a sharded host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardedBody {
    /// The host's description: who it is, where the others are, the
    /// status of each group it holds (answered by any host, at once).
    Describe,
    /// A controller or key-value request, for the core's host.
    Host(HostRequest),
    /// Hand the leadership of `group`, led by this host, to host `to`.
    TransferLeader {
        /// The group.
        group: GroupId,
        /// The host to lead it.
        to: NodeId,
    },
}

/// A sharded host's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardedReply {
    /// Answer to [`ShardedBody::Describe`].
    Description(HostDescription),
    /// The host's answer to [`ShardedBody::Host`].
    Host(HostReply),
    /// The request was not of this protocol.
    Refused(String),
    /// Answer to [`ShardedBody::TransferLeader`]: the transfer started, or why not.
    Transfer(Result<(), String>),
}

/// A host as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDescription {
    /// Its id.
    pub id: NodeId,
    /// Every host's address, by id (`--peers`).
    pub hosts: Vec<(NodeId, String)>,
    /// Number of shards.
    pub shards: u32,
    /// The controller group's servers.
    pub controller: Vec<NodeId>,
    /// The groups it holds (the controller's is group 0).
    pub groups: Vec<GroupStatus>,
}

/// One hosted group's replica, as its host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group (0: the controller).
    pub group: GroupId,
    /// `leader`, `follower`, `candidate`, `precandidate` or `learner`.
    pub role: String,
    /// Current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Applied index.
    pub applied_index: LogIndex,
    /// Last log index.
    pub last_index: LogIndex,
    /// Whether the group is hibernating here.
    pub hibernating: bool,
    /// The configuration the replica has applied (for a shard group), or
    /// the latest one (for the controller).
    pub config_num: u64,
    /// Shards it serves (shard groups).
    pub serving: Vec<ShardId>,
    /// Shards arriving (`(shard, from group)`).
    pub pulling: Vec<(ShardId, GroupId)>,
    /// Shards leaving (`(shard, to group)`).
    pub sending: Vec<(ShardId, GroupId)>,
    /// Keys held (shard groups).
    pub keys: u64,
    /// The latest configuration (controller replicas only).
    pub latest: Option<ShardConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use distribkv_core::raft::{Envelope, Message};
    use distribkv_core::shard::host::CONTROLLER;

    fn heartbeat(from: NodeId, to: NodeId, group: GroupId) -> HostMessage {
        let message = Message::TimeoutNow(distribkv_core::raft::TimeoutNow { term: 1 });
        HostMessage::Raft {
            group,
            envelope: Envelope { from, to, message },
        }
    }

    fn groups(list: &[GroupId]) -> BTreeSet<GroupId> {
        list.iter().copied().collect()
    }

    #[test]
    fn a_frame_of_several_groups_becomes_one_batch() {
        let frame = PeerFrame {
            to: 1,
            messages: vec![
                heartbeat(2, 1, 7),
                heartbeat(2, 1, 8),
                HostMessage::Alive,
                HostMessage::ConfigQuery { group: 9, num: 3 },
            ],
        };
        let batch = check_frame(2, 1, &groups(&[CONTROLLER, 7, 8]), frame.clone()).unwrap();
        assert_eq!((batch.from, batch.to), (2, 1));
        assert_eq!(batch.messages, frame.messages);
        // The frame format carries it whole.
        let mut bytes = BytesMut::new();
        crate::transport::frame::encode(&frame, &mut bytes, 1 << 20).unwrap();
        let decoded: PeerFrame = crate::transport::frame::decode(&mut bytes, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(decoded, frame);
    }

    #[test]
    fn malformed_frames_are_refused_with_the_reason() {
        let held = groups(&[7]);
        let refuse = |from, frame| check_frame(from, 1, &held, frame).unwrap_err().to_string();
        let error = refuse(
            2,
            PeerFrame {
                to: 3,
                messages: vec![HostMessage::Alive],
            },
        );
        assert_eq!(error, "frame from host 2 is for host 3, not this host (1)");
        let error = refuse(
            2,
            PeerFrame {
                to: 1,
                messages: vec![],
            },
        );
        assert_eq!(error, "empty frame from host 2");
        let error = refuse(
            2,
            PeerFrame {
                to: 1,
                messages: vec![heartbeat(2, 1, 7), heartbeat(2, 1, 5)],
            },
        );
        assert!(
            error.contains("concerns group 5, which this host does not hold"),
            "{error}"
        );
        let error = refuse(
            2,
            PeerFrame {
                to: 1,
                messages: vec![heartbeat(3, 1, 7)],
            },
        );
        assert!(error.contains("claims to be from 3 to 1"), "{error}");
        let error = refuse(
            2,
            PeerFrame {
                to: 1,
                messages: vec![HostMessage::ConfigQuery { group: 7, num: 1 }],
            },
        );
        assert!(
            error.contains("group 0"),
            "not a controller server: {error}"
        );
        let error = refuse(
            2,
            PeerFrame {
                to: 1,
                messages: vec![HostMessage::ShardPush {
                    from_group: 7,
                    to_group: 8,
                    config_num: 2,
                    shard: 1,
                    data: Bytes::new(),
                }],
            },
        );
        assert!(
            error.contains("ShardPush message concerns group 8"),
            "{error}"
        );
    }

    #[test]
    fn garbage_does_not_decode_as_a_frame_and_protocols_do_not_mix() {
        // A payload that is not a PeerFrame is refused by the decoder.
        assert!(postcard::from_bytes::<PeerFrame>(&[1, 9, 0xFF]).is_err());
        // A sharded request does not decode as a single-group one.
        let describe = postcard::to_allocvec(&ShardedRequest::new(ShardedBody::Describe)).unwrap();
        assert!(postcard::from_bytes::<distribkv_core::kv::ClientRequest>(&describe).is_err());
        // Nor a single-group request as a sharded one with the right protocol.
        let single = distribkv_core::kv::ClientRequest {
            id: 1,
            body: distribkv_core::kv::RequestBody::Status,
        };
        let bytes = postcard::to_allocvec(&single).unwrap();
        let decoded = postcard::from_bytes::<ShardedRequest>(&bytes);
        assert!(decoded.is_err() || decoded.unwrap().protocol != PROTOCOL);
    }
}
