//! `message(id)`: every field of one packet in flight. The common part is
//! the `inFlight` rendering of [`super::cluster`]; a Raft message's own
//! fields are its serde rendering (camelCase names, as the core declares
//! them), with log entries as [`LogEntry`] rows and a snapshot chunk as its
//! length; a client packet's fields are added by name.

use std::collections::BTreeMap;

use distribkv_core::kv::{ClientRequest, ClientResponse, Operation, Reply, RequestBody};
use distribkv_core::raft::{InstallSnapshot, Message};
use distribkv_core::sim::{Packet, PacketPayload};
use serde::Serialize;
use serde_json::{Map, Value};

use super::cluster::{InFlight, LogEntry};
use super::text;

/// `message(id)`: the packet's `inFlight` rendering plus its payload's fields.
#[derive(Debug, Serialize)]
pub struct MessageView {
    #[serde(flatten)]
    packet: InFlight,
    #[serde(flatten)]
    fields: BTreeMap<&'static str, Field>,
    #[serde(flatten)]
    raft: Map<String, Value>,
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
}

impl MessageView {
    /// Renders `packet`.
    pub fn new(packet: &Packet) -> MessageView {
        let mut fields = BTreeMap::new();
        let mut raft = Map::new();
        match &packet.payload {
            PacketPayload::Raft(message) => raft = raft_fields(message),
            PacketPayload::Request(request) => request_fields(request, &mut fields),
            PacketPayload::Response(response) => response_fields(response, &mut fields),
        }
        MessageView {
            packet: InFlight::from(packet),
            fields,
            raft,
        }
    }
}

/// The message's serde fields (without the enum's tag: `kind` names the
/// variant), plus `bytes`, its approximate size. Entries become [`LogEntry`]
/// rows; a snapshot chunk's `data`, its length.
fn raft_fields(message: &Message) -> Map<String, Value> {
    let chunk = match message {
        // Serialized without its bytes, which only their length stands for.
        Message::InstallSnapshot(m) => Some(Message::InstallSnapshot(Box::new(InstallSnapshot {
            data: bytes::Bytes::new(),
            ..(**m).clone()
        }))),
        _ => None,
    };
    let mut fields = match serde_json::to_value(chunk.as_ref().unwrap_or(message)) {
        // An externally tagged enum: `{ "AppendEntries": { ...fields } }`.
        Ok(Value::Object(tagged)) => match tagged.into_iter().next() {
            Some((_, Value::Object(fields))) => fields,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    match message {
        Message::AppendEntries(m) => {
            let entries: Vec<LogEntry> = m.entries.iter().map(LogEntry::from).collect();
            fields.insert(
                "entries".into(),
                serde_json::to_value(entries).unwrap_or(Value::Null),
            );
        }
        Message::InstallSnapshot(m) => {
            fields.insert("data".into(), Value::from(m.data.len()));
        }
        _ => {}
    }
    fields.insert("bytes".into(), Value::from(message.size()));
    fields
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
        RequestBody::FollowerRead { key } => {
            f.insert("request", Field::Text("follower read".to_owned()));
            f.insert("op", Field::Text("get".to_owned()));
            f.insert("key", Field::Text(text(key)));
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
                match view["kind"].as_str().unwrap() {
                    "AppendEntries" => {
                        assert!(view["prevLogIndex"].is_u64() && view["leaderCommit"].is_u64());
                        for entry in view["entries"].as_array().unwrap() {
                            assert!(entry["index"].is_u64() && entry["command"].is_string());
                        }
                    }
                    "AppendEntriesResponse" => {
                        assert!(view["index"].is_u64() && view["success"].is_boolean());
                        assert!(view["conflict"].is_null() || view["conflict"]["term"].is_u64());
                    }
                    "InstallSnapshot" => {
                        assert!(view["data"].is_u64() && view["meta"]["index"].is_u64());
                    }
                    _ => {}
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

    #[test]
    fn a_snapshot_chunk_renders_its_meta_and_the_length_of_its_data() {
        use distribkv_core::raft::{Membership, SnapshotMeta};
        use distribkv_core::sim::network::Endpoint;
        use distribkv_core::time::Instant;
        let packet = Packet {
            id: 7,
            from: Endpoint::Node(1),
            to: Endpoint::Node(2),
            sent_at: Instant(10),
            deliver_at: Instant(20),
            payload: PacketPayload::Raft(Message::InstallSnapshot(Box::new(InstallSnapshot {
                term: 3,
                meta: SnapshotMeta {
                    index: 40,
                    term: 2,
                    membership: Membership::with_voters([1, 2, 3]),
                },
                total_len: 100,
                offset: 64,
                data: bytes::Bytes::from_static(&[9; 36]),
                done: true,
            }))),
        };
        let view = json(&MessageView::new(&packet));
        assert_eq!(view["kind"], "InstallSnapshot");
        assert_eq!(view["data"], 36);
        assert_eq!(view["totalLen"], 100);
        assert_eq!(view["offset"], 64);
        assert_eq!(view["done"], true);
        assert_eq!(view["meta"]["index"], 40);
        assert_eq!(
            view["meta"]["membership"]["voters"],
            serde_json::json!([1, 2, 3])
        );
    }
}
