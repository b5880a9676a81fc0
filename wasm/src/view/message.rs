//! `message(id)`: every field of one packet in flight. The common part is
//! the `inFlight` rendering of [`super::cluster`]; the payload's own fields
//! are its serde rendering, as the core declares it (camelCase names, keys
//! and values as text), with each enum's tag made a field:
//!
//! - a Raft message: its fields (the variant is `kind`), log entries as
//!   [`LogEntry`] rows and a snapshot chunk as its length, plus `bytes`;
//! - a client request: `requestId`, `request` (the body's variant: `open`,
//!   `operation`, `status`, ...) and its fields, an operation as `op` and
//!   its fields (`key`, `value`);
//! - a response: `requestId`, `ok`, then `reply` (`opened`, `done`,
//!   `status`, ...) or `error` (`notLeader`, `sessionExpired`, ...) and its
//!   fields.
//!
//! A newtype variant's content is the field named after the variant
//! (`done: "1"`, `opened: 7`); numbers beyond JavaScript's safe integers
//! (nonces, fingerprints) are decimal strings.

use distribkv_core::kv::{ClientRequest, ClientResponse};
use distribkv_core::raft::{InstallSnapshot, Message};
use distribkv_core::sim::{Packet, PacketPayload};
use serde::Serialize;
use serde_json::{Map, Value};

use super::cluster::{InFlight, LogEntry};

/// `message(id)`: the packet's `inFlight` rendering plus its payload's fields.
#[derive(Debug, Serialize)]
pub struct MessageView {
    #[serde(flatten)]
    packet: InFlight,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl MessageView {
    /// Renders `packet`.
    pub fn new(packet: &Packet) -> MessageView {
        let mut fields = match &packet.payload {
            PacketPayload::Raft(message) => raft_fields(message),
            PacketPayload::Request(request) => request_fields(request),
            PacketPayload::Response(response) => response_fields(response),
        };
        for value in fields.values_mut() {
            js_safe(value);
        }
        MessageView {
            packet: InFlight::from(packet),
            fields,
        }
    }
}

/// The message's serde fields (without the enum's tag: `kind` names the
/// variant), plus `bytes`, its approximate size. Entries become [`LogEntry`]
/// rows; a snapshot chunk's `data`, its length.
pub(crate) fn raft_fields(message: &Message) -> Map<String, Value> {
    let chunk = match message {
        // Serialized without its bytes, which only their length stands for.
        Message::InstallSnapshot(m) => Some(Message::InstallSnapshot(Box::new(InstallSnapshot {
            data: bytes::Bytes::new(),
            ..(**m).clone()
        }))),
        _ => None,
    };
    let mut fields = untag(serialize(chunk.as_ref().unwrap_or(message)), None);
    match message {
        Message::AppendEntries(m) => {
            let entries: Vec<LogEntry> = m.entries.iter().map(LogEntry::from).collect();
            fields.insert("entries".into(), serialize(&entries));
        }
        Message::InstallSnapshot(m) => {
            fields.insert("data".into(), Value::from(m.data.len()));
        }
        _ => {}
    }
    fields.insert("bytes".into(), Value::from(message.size()));
    fields
}

/// `requestId`, then the body's variant as `request` and its fields, an
/// operation's as `op` and its fields.
fn request_fields(request: &ClientRequest) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("requestId".into(), Value::from(request.id));
    let mut body = untag(serialize(&request.body), Some("request"));
    if let Some(operation) = body.remove("operation") {
        body.extend(untag(operation, Some("op")));
    }
    fields.extend(body);
    fields
}

/// `requestId` and `ok`, then the reply's variant as `reply` or the
/// error's as `error`, and its fields.
fn response_fields(response: &ClientResponse) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("requestId".into(), Value::from(response.id));
    fields.insert("ok".into(), Value::from(response.result.is_ok()));
    fields.extend(match &response.result {
        Ok(reply) => untag(serialize(reply), Some("reply")),
        Err(error) => untag(serialize(error), Some("error")),
    });
    fields
}

/// `value`'s serde rendering (`null` if it cannot be rendered, which the
/// core's types, plain data, never hit).
pub(crate) fn serialize<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// An externally tagged enum's rendering made flat: `{ "variant": { fields } }`
/// becomes `{ tag: "variant", ...fields }`, a newtype variant's
/// `{ "variant": content }` becomes `{ tag: "variant", variant: content }`,
/// a unit variant's `"variant"` becomes `{ tag: "variant" }`. Without a
/// `tag` the variant is left out (the caller names it otherwise).
pub(crate) fn untag(value: Value, tag: Option<&str>) -> Map<String, Value> {
    let mut fields = Map::new();
    let variant = match value {
        Value::String(variant) => variant,
        Value::Object(tagged) if tagged.len() == 1 => {
            let Some((variant, content)) = tagged.into_iter().next() else {
                return fields;
            };
            match content {
                Value::Object(content) => fields = content,
                content => {
                    fields.insert(variant.clone(), content);
                }
            }
            variant
        }
        _ => return fields,
    };
    if let Some(tag) = tag {
        fields.insert(tag.into(), Value::String(variant));
    }
    fields
}

/// Numbers JavaScript cannot hold exactly (above 2^53 - 1) become decimal
/// strings, in place, at any depth.
pub(crate) fn js_safe(value: &mut Value) {
    const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
    match value {
        Value::Number(n) if n.as_u64().is_some_and(|n| n > MAX_SAFE_INTEGER) => {
            *value = Value::String(n.to_string());
        }
        Value::Array(items) => items.iter_mut().for_each(js_safe),
        Value::Object(fields) => fields.values_mut().for_each(js_safe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{busy_sim, json};
    use crate::view::text;
    use distribkv_core::kv::RequestBody;
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
                match &packet.payload {
                    PacketPayload::Raft(_) => assert!(view["term"].is_u64()),
                    PacketPayload::Request(request) => {
                        assert_eq!(view["requestId"], request.id);
                        assert!(view["request"].is_string());
                        if let RequestBody::Open { operation, .. }
                        | RequestBody::Operation { operation, .. } = &request.body
                        {
                            assert_eq!(view["op"], operation.name());
                            assert_eq!(view["key"], text(operation.key()));
                        }
                    }
                    PacketPayload::Response(response) => {
                        assert_eq!(view["requestId"], response.id);
                        assert_eq!(view["ok"], response.result.is_ok());
                        let tag = if response.result.is_ok() {
                            "reply"
                        } else {
                            "error"
                        };
                        assert!(view[tag].is_string(), "{view}");
                    }
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

    #[test]
    fn client_packets_render_their_serde_fields_flat() {
        use distribkv_core::kv::{Operation, Reply, ServiceError};
        use distribkv_core::sim::network::Endpoint;
        use distribkv_core::time::Instant;
        let packet = |payload| Packet {
            id: 1,
            from: Endpoint::Client(1),
            to: Endpoint::Node(2),
            sent_at: Instant(0),
            deliver_at: Instant(5),
            payload,
        };
        let open = json(&MessageView::new(&packet(PacketPayload::Request(
            ClientRequest {
                id: 4,
                body: RequestBody::Open {
                    nonce: u64::MAX,
                    operation: Operation::Put {
                        key: "k".into(),
                        value: "v".into(),
                    },
                },
            },
        ))));
        assert_eq!(open["requestId"], 4);
        assert_eq!(open["request"], "open");
        assert_eq!(open["nonce"], u64::MAX.to_string(), "beyond 2^53: text");
        assert_eq!(
            (&open["op"], &open["key"], &open["value"]),
            (&"put".into(), &"k".into(), &"v".into())
        );
        let status = json(&MessageView::new(&packet(PacketPayload::Request(
            ClientRequest {
                id: 5,
                body: RequestBody::Status,
            },
        ))));
        assert_eq!(status["request"], "status");
        let done = json(&MessageView::new(&packet(PacketPayload::Response(
            ClientResponse {
                id: 4,
                result: Ok(Reply::Done(Some("1".into()))),
            },
        ))));
        assert_eq!(
            (&done["ok"], &done["reply"]),
            (&true.into(), &"done".into())
        );
        assert_eq!(done["done"], "1");
        let refused = json(&MessageView::new(&packet(PacketPayload::Response(
            ClientResponse {
                id: 6,
                result: Err(ServiceError::NotLeader {
                    leader_hint: Some(3),
                }),
            },
        ))));
        assert_eq!(refused["ok"], false);
        assert_eq!(refused["error"], "notLeader");
        assert_eq!(refused["leaderHint"], 3);
    }
}
