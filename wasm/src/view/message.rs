//! `message(id)`: every field of one packet in flight. The common part is
//! the `inFlight` rendering of [`super::cluster`]; the payload's own fields
//! are added by name.

use std::collections::BTreeMap;

use distribkv_core::kv::{ClientRequest, ClientResponse, Operation, Reply, RequestBody};
use distribkv_core::raft::Message;
use distribkv_core::sim::{Packet, PacketPayload};
use serde::Serialize;

use super::cluster::{InFlight, LogEntry};
use super::text;

/// `message(id)`: the packet's `inFlight` rendering plus its payload's fields.
#[derive(Debug, Serialize)]
pub struct MessageView {
    #[serde(flatten)]
    packet: InFlight,
    #[serde(flatten)]
    fields: BTreeMap<&'static str, Field>,
}

/// One field value of a message.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Field {
    /// A number (terms, indexes, sizes).
    Number(u64),
    /// A flag.
    Flag(bool),
    /// A text.
    Text(String),
    /// A missing value (`null`).
    Null(Option<u64>),
    /// Log entries.
    Entries(Vec<LogEntry>),
    /// Node ids.
    Ids(Vec<u64>),
}

impl MessageView {
    /// Renders `packet`.
    pub fn new(packet: &Packet) -> MessageView {
        let mut fields = BTreeMap::new();
        match &packet.payload {
            PacketPayload::Raft(message) => raft_fields(message, &mut fields),
            PacketPayload::Request(request) => request_fields(request, &mut fields),
            PacketPayload::Response(response) => response_fields(response, &mut fields),
        }
        MessageView {
            packet: InFlight::from(packet),
            fields,
        }
    }
}

fn raft_fields(message: &Message, f: &mut BTreeMap<&'static str, Field>) {
    use Field::{Entries, Flag, Ids, Null, Number};
    f.insert("term", Number(message.term()));
    f.insert("bytes", Number(message.size() as u64));
    match message {
        Message::RequestVote(m) => {
            f.insert("lastLogIndex", Number(m.last_log_index));
            f.insert("lastLogTerm", Number(m.last_log_term));
            f.insert("preVote", Flag(m.pre_vote));
            f.insert("transfer", Flag(m.transfer));
        }
        Message::RequestVoteResponse(m) => {
            f.insert("granted", Flag(m.granted));
            f.insert("preVote", Flag(m.pre_vote));
        }
        Message::AppendEntries(m) => {
            f.insert("prevLogIndex", Number(m.prev_log_index));
            f.insert("prevLogTerm", Number(m.prev_log_term));
            f.insert("leaderCommit", Number(m.leader_commit));
            f.insert(
                "entries",
                Entries(m.entries.iter().map(LogEntry::from).collect()),
            );
        }
        Message::AppendEntriesResponse(m) => {
            f.insert("success", Flag(m.success));
            f.insert(
                if m.success {
                    "matchIndex"
                } else {
                    "rejectedIndex"
                },
                Number(m.index),
            );
            match m.conflict {
                Some(hint) => {
                    f.insert("conflictIndex", Number(hint.index));
                    f.insert("conflictTerm", Number(hint.term));
                }
                None => {
                    f.insert("conflictIndex", Null(None));
                    f.insert("conflictTerm", Null(None));
                }
            }
        }
        Message::Heartbeat(m) => {
            f.insert("commit", Number(m.commit));
            f.insert("round", Number(m.round));
        }
        Message::HeartbeatResponse(m) => {
            f.insert("round", Number(m.round));
            f.insert("lastIndex", Number(m.last_index));
        }
        Message::InstallSnapshot(m) => {
            f.insert("snapshotIndex", Number(m.meta.index));
            f.insert("snapshotTerm", Number(m.meta.term));
            f.insert("voters", Ids(m.meta.membership.voters.clone()));
            f.insert("totalLen", Number(m.total_len));
            f.insert("offset", Number(m.offset));
            f.insert("chunkLen", Number(m.data.len() as u64));
            f.insert("done", Flag(m.done));
        }
        Message::InstallSnapshotResponse(m) => {
            f.insert("snapshotIndex", Number(m.snapshot_index));
            f.insert("received", Number(m.received));
            f.insert("done", Flag(m.done));
        }
        Message::TimeoutNow(_) => {}
    }
}

fn operation_fields(operation: &Operation, f: &mut BTreeMap<&'static str, Field>) {
    f.insert("op", Field::Text(operation.name().to_owned()));
    f.insert("key", Field::Text(text(operation.key())));
    if let Operation::Put { value, .. } | Operation::Append { value, .. } = operation {
        f.insert("value", Field::Text(text(value)));
    }
}

fn request_fields(request: &ClientRequest, f: &mut BTreeMap<&'static str, Field>) {
    f.insert("requestId", Field::Number(request.id));
    match &request.body {
        RequestBody::Open { nonce, operation } => {
            f.insert("request", Field::Text("open".to_owned()));
            f.insert("nonce", Field::Text(format!("{nonce:016x}")));
            operation_fields(operation, f);
        }
        RequestBody::Status => {
            f.insert("request", Field::Text("status".to_owned()));
        }
        RequestBody::Members => {
            f.insert("request", Field::Text("members".to_owned()));
        }
        RequestBody::ChangeMembers(change) => {
            f.insert("request", Field::Text(format!("{change:?}")));
        }
        RequestBody::Backup { offset, .. } => {
            f.insert("request", Field::Text("backup".to_owned()));
            f.insert("offset", Field::Number(*offset));
        }
        RequestBody::Operation {
            client,
            seq,
            operation,
        } => {
            f.insert("request", Field::Text("operation".to_owned()));
            f.insert("session", Field::Number(*client));
            f.insert("seq", Field::Number(*seq));
            operation_fields(operation, f);
        }
    }
}

fn response_fields(response: &ClientResponse, f: &mut BTreeMap<&'static str, Field>) {
    f.insert("requestId", Field::Number(response.id));
    f.insert("ok", Field::Flag(response.result.is_ok()));
    match &response.result {
        Ok(Reply::Opened(session)) => {
            f.insert("session", Field::Number(*session));
        }
        Ok(Reply::Done(value)) => {
            let output = value.as_deref().map(text);
            f.insert("output", output.map_or(Field::Null(None), Field::Text));
        }
        Ok(Reply::Status(status)) => {
            f.insert("role", Field::Text(status.role.clone()));
        }
        Ok(Reply::Backup(chunk)) => {
            f.insert("index", Field::Number(chunk.index));
        }
        Ok(Reply::Members(members)) => {
            f.insert("members", Field::Number(members.members.len() as u64));
        }
        Err(error) => {
            f.insert("error", Field::Text(error.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{busy_sim, json};
    use distribkv_core::sim::trace::packet_kind;

    #[test]
    fn every_packet_renders_its_fields() {
        let mut sim = busy_sim();
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..400 {
            sim.step();
            for packet in sim.in_flight() {
                let view = json(&MessageView::new(packet));
                assert_eq!(view["id"], packet.id);
                assert_eq!(view["kind"], packet_kind(&packet.payload));
                match packet.payload {
                    PacketPayload::Raft(_) => assert!(view["term"].is_u64()),
                    _ => assert!(view["requestId"].is_u64()),
                }
                if view["kind"] == "AppendEntries" {
                    assert!(view["entries"].is_array() && view["prevLogIndex"].is_u64());
                }
                kinds.insert(view["kind"].as_str().unwrap().to_owned());
            }
        }
        for kind in [
            "AppendEntries",
            "AppendEntriesResponse",
            "ClientRequest",
            "ClientResponse",
        ] {
            assert!(kinds.contains(kind), "no {kind} seen: {kinds:?}");
        }
    }
}
