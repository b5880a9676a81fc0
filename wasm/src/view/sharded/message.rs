//! `message(id)`: every field of one item in flight between hosts and
//! clients, and `events()`, the journal's lines. A Raft message's fields
//! are its serde rendering, exactly as the single-group `message(id)`
//! gives them ([`crate::view::message`]); so are a client request's
//! operation (`op` and its fields), a reply's result (`reply`, `error` and
//! their fields) and a configuration, each enum's tag made a field as there;
//! the other host messages' fields are added by name. Numbers beyond
//! JavaScript's safe integers (a clerk's random id) are decimal strings.

use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::{HostMessage, HostReply, HostRequest};
use distribkv_core::sim::Endpoint;
use distribkv_core::sim::sharded::{InFlightContent, InFlightMessage, JournalLine, ShardedSim};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::view::message::{js_safe, raft_fields, serialize, untag};
use crate::view::{EventView, JsEndpoint};

/// `message(id)`: where an item goes and when, and each message it carries.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardedMessageView {
    /// Its id (`state().inFlight[].id`).
    pub id: u64,
    /// Sender: a host id (of a reply, the host that answers), or a client
    /// (`"c0"` is the page's).
    pub from: JsEndpoint,
    /// Receiver.
    pub to: JsEndpoint,
    /// When it arrives (ms).
    pub deliver_at: u64,
    /// The kinds it carries, distinct, joined by ` + `.
    pub kind: String,
    /// Each message, in order: `{ kind, group, ...fields }`.
    pub messages: Vec<Map<String, Value>>,
}

/// One host message: its kind, its group and its fields.
/// The fields a whole push and a part share: the new owner as `group`,
/// then `shard`, `fromGroup`, `toGroup`, `configNum` and `data` (bytes).
fn push_fields(
    (from_group, to_group, config_num, shard, bytes): (GroupId, GroupId, u64, u32, usize),
    fields: &mut Map<String, Value>,
) {
    fields.insert("group".into(), Value::from(to_group));
    fields.insert("shard".into(), Value::from(shard));
    fields.insert("fromGroup".into(), Value::from(from_group));
    fields.insert("toGroup".into(), Value::from(to_group));
    fields.insert("configNum".into(), Value::from(config_num));
    fields.insert("data".into(), Value::from(bytes));
}

fn host_message(message: &HostMessage) -> Map<String, Value> {
    let mut fields = Map::new();
    let group = |g: GroupId, fields: &mut Map<String, Value>| {
        fields.insert("group".into(), Value::from(g));
    };
    match message {
        HostMessage::Raft { group: g, envelope } => {
            group(*g, &mut fields);
            fields.insert("from".into(), Value::from(envelope.from));
            fields.insert("to".into(), Value::from(envelope.to));
            fields.extend(raft_fields(&envelope.message));
        }
        HostMessage::ConfigQuery { group: g, num } => {
            group(*g, &mut fields);
            fields.insert("num".into(), Value::from(*num));
        }
        HostMessage::ConfigReply { group: g, config } => {
            group(*g, &mut fields);
            fields.insert("config".into(), serialize(config));
        }
        HostMessage::ShardPush {
            from_group,
            to_group,
            config_num,
            shard,
            data,
        } => push_fields(
            (*from_group, *to_group, *config_num, *shard, data.len()),
            &mut fields,
        ),
        HostMessage::ShardAck {
            group: g,
            config_num,
            shard,
        } => {
            group(*g, &mut fields);
            fields.insert("shard".into(), Value::from(*shard));
            fields.insert("configNum".into(), Value::from(*config_num));
        }
        HostMessage::ShardPushPart {
            from_group,
            to_group,
            config_num,
            shard,
            after,
            last,
            data,
        } => {
            push_fields(
                (*from_group, *to_group, *config_num, *shard, data.len()),
                &mut fields,
            );
            fields.insert(
                "after".into(),
                after
                    .as_deref()
                    .map_or(Value::Null, |k| Value::from(crate::view::text(k))),
            );
            fields.insert("last".into(), Value::from(*last));
        }
        HostMessage::ShardPartAck {
            group: g,
            config_num,
            shard,
            held,
        } => {
            group(*g, &mut fields);
            fields.insert("shard".into(), Value::from(*shard));
            fields.insert("configNum".into(), Value::from(*config_num));
            fields.insert(
                "held".into(),
                held.as_deref()
                    .map_or(Value::Null, |k| Value::from(crate::view::text(k))),
            );
        }
        HostMessage::Hibernate {
            group: g,
            term,
            index,
        } => {
            group(*g, &mut fields);
            fields.insert("term".into(), Value::from(*term));
            fields.insert("index".into(), Value::from(*index));
        }
        HostMessage::HibernateAck { group: g, term } => {
            group(*g, &mut fields);
            fields.insert("term".into(), Value::from(*term));
        }
        HostMessage::RetireQuery {
            group: g,
            config_num,
        } => {
            group(*g, &mut fields);
            fields.insert("configNum".into(), Value::from(*config_num));
        }
        HostMessage::Retired { group: g } => group(*g, &mut fields),
        HostMessage::Alive => {}
    }
    let mut out = Map::new();
    out.insert("kind".into(), Value::from(message.kind()));
    out.extend(fields);
    out
}

fn request(request: &HostRequest) -> Map<String, Value> {
    let mut out = Map::new();
    let (kind, group, id, client, seq, op) = match request {
        HostRequest::Controller {
            id,
            client,
            seq,
            op,
        } => ("Controller", 0, id, client, seq, serialize(op)),
        HostRequest::Kv {
            id,
            group,
            client,
            seq,
            op,
        } => ("Kv", *group, id, client, seq, serialize(op)),
        HostRequest::FollowerRead { id, group, key } => {
            let op = distribkv_core::kv::Operation::Get { key: key.clone() };
            ("FollowerRead", *group, id, &0, &0, serialize(&op))
        }
        HostRequest::Export {
            id,
            group,
            shard,
            at,
            offset,
        } => {
            // Backups only (the simulated clients never export): the shard,
            // and the export and offset of a further chunk.
            let mut op = Map::new();
            op.insert("shard".into(), Value::from(*shard));
            op.insert("at".into(), at.map_or(Value::Null, Value::from));
            op.insert("offset".into(), Value::from(*offset));
            let mut tagged = Map::new();
            tagged.insert("Export".into(), Value::Object(op));
            ("Export", *group, id, &0, &0, Value::Object(tagged))
        }
    };
    out.insert("kind".into(), Value::from(kind));
    out.insert("group".into(), Value::from(group));
    out.insert("requestId".into(), Value::from(*id));
    out.insert("client".into(), Value::from(*client));
    out.insert("seq".into(), Value::from(*seq));
    // the operation's variant as `op` and its fields (`key`, `value`; a
    // controller's `join`, `leave`, `move`, `query` with theirs)
    out.extend(untag(op, Some("op")));
    out
}

fn reply(reply: &HostReply) -> Map<String, Value> {
    let mut out = Map::new();
    let (kind, id, ok, fields) = match reply {
        HostReply::Controller { id, result } => (
            "ControllerReply",
            id,
            result.is_ok(),
            match result {
                Ok(reply) => untag(serialize(reply), Some("reply")),
                Err(e) => untag(serialize(e), Some("error")),
            },
        ),
        HostReply::Kv { id, result } => (
            "KvReply",
            id,
            result.is_ok(),
            match result {
                Ok(value) => {
                    let mut f = Map::new();
                    f.insert(
                        "output".into(),
                        value
                            .as_deref()
                            .map_or(Value::Null, |v| Value::from(crate::view::text(v))),
                    );
                    f
                }
                Err(e) => untag(serialize(e), Some("error")),
            },
        ),
        HostReply::Export { id, result } => (
            "ExportReply",
            id,
            result.is_ok(),
            match result {
                Ok(chunk) => {
                    let mut f = Map::new();
                    f.insert("shard".into(), Value::from(chunk.shard));
                    f.insert("configNum".into(), Value::from(chunk.config));
                    f.insert("index".into(), Value::from(chunk.index));
                    f.insert("total".into(), Value::from(chunk.total));
                    f.insert("offset".into(), Value::from(chunk.offset));
                    f.insert("bytes".into(), Value::from(chunk.data.len()));
                    f
                }
                Err(e) => untag(serialize(e), Some("error")),
            },
        ),
    };
    out.insert("kind".into(), Value::from(kind));
    out.insert("requestId".into(), Value::from(*id));
    out.insert("ok".into(), Value::from(ok));
    out.extend(fields);
    out
}

impl ShardedMessageView {
    /// Renders `item`.
    pub fn new(item: &InFlightMessage<'_>) -> ShardedMessageView {
        let (from, to, messages) = match item.content {
            InFlightContent::Batch(batch) => (
                Endpoint::Node(batch.from),
                Endpoint::Node(batch.to),
                batch.messages.iter().map(host_message).collect(),
            ),
            InFlightContent::Request {
                from,
                to,
                request: r,
            } => (Endpoint::Client(from), Endpoint::Node(to), vec![request(r)]),
            InFlightContent::Reply {
                from,
                clerk,
                reply: r,
            } => (
                Endpoint::Node(from),
                Endpoint::Client(clerk),
                vec![reply(r)],
            ),
        };
        let mut messages: Vec<Map<String, Value>> = messages;
        for m in &mut messages {
            for value in m.values_mut() {
                js_safe(value);
            }
        }
        let mut kinds: Vec<&str> = Vec::new();
        for m in &messages {
            if let Some(kind) = m.get("kind").and_then(Value::as_str)
                && !kinds.contains(&kind)
            {
                kinds.push(kind);
            }
        }
        ShardedMessageView {
            id: item.id,
            from: from.into(),
            to: to.into(),
            deliver_at: item.deliver_at,
            kind: kinds.join(" + "),
            messages,
        }
    }
}

impl From<&JournalLine> for EventView {
    fn from(line: &JournalLine) -> EventView {
        EventView::new(
            Some(line.seq),
            line.at,
            line.host.map(JsEndpoint::Node),
            line.group,
            line.kind,
            line.text(),
        )
    }
}

/// `events(since)`: the journal's lines after `since`, at most `limit` (the newest).
pub fn events(sim: &ShardedSim, since: u64, limit: usize) -> Vec<EventView> {
    let lines: Vec<&JournalLine> = sim.journal_since(since).collect();
    let skip = lines.len().saturating_sub(limit);
    lines[skip..].iter().map(|l| EventView::from(*l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::json;
    use distribkv_core::sim::sharded::ShardedConfig;

    /// Whether every number fits a JS number exactly (the page gets plain numbers).
    fn fits_js(value: &Value) -> bool {
        match value {
            Value::Number(n) => n.as_u64().is_none_or(|n| n < 1 << 53),
            Value::Array(items) => items.iter().all(fits_js),
            Value::Object(fields) => fields.values().all(fits_js),
            _ => true,
        }
    }

    #[test]
    fn every_item_in_flight_renders_its_messages_with_the_cores_field_names() {
        let mut sim = ShardedSim::new(ShardedConfig::small(6)).unwrap();
        sim.join_all().unwrap();
        sim.start_workload();
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..3_000 {
            sim.step_once();
            for item in sim.in_flight() {
                let message = sim.in_flight_message(item.id).expect("in flight");
                let view = json(&ShardedMessageView::new(&message));
                assert_eq!(view["id"], item.id);
                assert!(fits_js(&view), "{view}");
                assert_eq!(view["deliverAt"], item.deliver_at);
                // the same ends as `state().inFlight[]`: a reply's sender is
                // the host that answers (ids from 1), as a number
                assert_eq!(view["from"], json(&JsEndpoint::from(item.from)));
                assert_eq!(view["to"], json(&JsEndpoint::from(item.to)));
                if let InFlightContent::Reply { from, .. } = message.content {
                    assert_eq!(view["from"], from);
                    assert!(from >= 1, "host ids start at 1");
                }
                let messages = view["messages"].as_array().unwrap();
                assert_eq!(messages.len(), item.kinds.len());
                for (m, kind) in messages.iter().zip(&item.kinds) {
                    assert_eq!(m["kind"], *kind);
                    match *kind {
                        "AppendEntries" => {
                            assert!(m["group"].is_u64() && m["term"].is_u64());
                            assert!(m["prevLogIndex"].is_u64() && m["leaderCommit"].is_u64());
                            assert!(m["entries"].is_array());
                        }
                        "RequestVote" => assert!(m["lastLogIndex"].is_u64()),
                        "Kv" => {
                            assert!(
                                m["key"].is_string() && m["seq"].is_u64() && m["op"].is_string()
                            )
                        }
                        "KvReply" => assert!(m["ok"].is_boolean()),
                        "ShardPush" => assert!(m["shard"].is_u64() && m["data"].is_u64()),
                        _ => {}
                    }
                    kinds.insert(kind.to_string());
                }
            }
        }
        for kind in [
            "AppendEntries",
            "AppendEntriesResponse",
            "Kv",
            "KvReply",
            "Controller",
        ] {
            assert!(kinds.contains(kind), "no {kind} seen: {kinds:?}");
        }
    }

    #[test]
    fn events_are_the_journals_newest_lines_after_a_position() {
        let mut sim = ShardedSim::new(ShardedConfig::small(6)).unwrap();
        sim.enable_journal(500);
        sim.join_all().unwrap();
        sim.crash(3);
        sim.run_for(300);
        let all = json(&events(&sim, 0, 10_000));
        let all = all.as_array().unwrap();
        assert!(!all.is_empty());
        let crash = all
            .iter()
            .find(|e| e["kind"] == "crash")
            .expect("the crash");
        assert_eq!(crash["node"], 3);
        let seq = crash["seq"].as_u64().unwrap();
        let after = json(&events(&sim, seq, 10_000));
        assert_eq!(after[0]["seq"], seq + 1);
        let few = json(&events(&sim, 0, 5));
        assert_eq!(few.as_array().unwrap().len(), 5);
        assert_eq!(few[4]["seq"], all.last().unwrap()["seq"], "the newest");
    }
}
