//! What the JS API returns: plain, JSON-shaped renderings of the core's
//! state, with the contract's camelCase names. Nothing here decides
//! anything about the simulation; it only copies and renders.

use std::collections::BTreeMap;

use distribkv_core::kv::{ClerkError, KvStore, Operation};
use distribkv_core::kv::{ClientRequest, ClientResponse, Reply, RequestBody};
use distribkv_core::raft::{Entry, Message, Node, Progress};
use distribkv_core::sim::trace::{describe_packet, describe_payload, packet_kind};
use distribkv_core::sim::{
    Endpoint, HistoryEntry, Packet, PacketPayload, Sim, SimStats, StepInfo, TraceLine,
};
use distribkv_core::time::Instant;
use serde::Serialize;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn millis(at: Instant) -> Option<u64> {
    (at != Instant::NEVER).then_some(at.as_millis())
}

/// A node id (a number) or a client (`"c1"`, `"c2"`, ...).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum JsEndpoint {
    /// A replica.
    Node(u64),
    /// A client, as `c<number>`.
    Client(String),
}

impl From<Endpoint> for JsEndpoint {
    fn from(endpoint: Endpoint) -> JsEndpoint {
        match endpoint {
            Endpoint::Node(id) => JsEndpoint::Node(id),
            Endpoint::Client(number) => JsEndpoint::Client(format!("c{number}")),
        }
    }
}

/// `state()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    now: u64,
    nodes: Vec<NodeView>,
    in_flight: Vec<InFlight>,
    links: Links,
    membership: MembershipView,
}

/// `state().membership`: the cluster's members as the leader sees them.
#[derive(Debug, Serialize)]
pub struct MembershipView {
    voters: Vec<u64>,
    learners: Vec<u64>,
}

/// One node in `state().nodes`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    id: u64,
    up: bool,
    role: &'static str,
    term: u64,
    voted_for: Option<u64>,
    leader: Option<u64>,
    commit_index: u64,
    applied_index: u64,
    snapshot_index: u64,
    /// Term of the last entry the snapshot covers (extension).
    snapshot_term: u64,
    last_index: u64,
    durable_index: u64,
    election_deadline: Option<u64>,
    log: Vec<LogEntry>,
    kv: BTreeMap<String, String>,
    progress: Option<Vec<ProgressView>>,
    /// Follower the leader is handing over to (extension).
    transfer_target: Option<u64>,
}

/// One log entry: `{ index, term, command }`.
#[derive(Debug, Serialize)]
pub struct LogEntry {
    index: u64,
    term: u64,
    command: String,
}

impl From<&Entry> for LogEntry {
    fn from(entry: &Entry) -> LogEntry {
        LogEntry {
            index: entry.index,
            term: entry.term,
            command: describe_payload(&entry.payload),
        }
    }
}

/// The leader's view of one follower.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    id: u64,
    match_index: u64,
    next_index: u64,
    state: &'static str,
    inflight: usize,
}

impl ProgressView {
    fn new(id: u64, progress: &Progress) -> ProgressView {
        ProgressView {
            id,
            match_index: progress.match_index,
            next_index: progress.next_index,
            state: progress.state.name(),
            inflight: progress.inflight(),
        }
    }
}

/// A packet in `state().inFlight`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    id: u64,
    from: JsEndpoint,
    to: JsEndpoint,
    kind: &'static str,
    sent_at: u64,
    deliver_at: u64,
    summary: String,
}

impl From<&Packet> for InFlight {
    fn from(packet: &Packet) -> InFlight {
        InFlight {
            id: packet.id,
            from: packet.from.into(),
            to: packet.to.into(),
            kind: packet_kind(&packet.payload),
            sent_at: packet.sent_at.as_millis(),
            deliver_at: packet.deliver_at.as_millis(),
            summary: describe_packet(&packet.payload),
        }
    }
}

/// `state().links`.
#[derive(Debug, Serialize)]
pub struct Links {
    cut: Vec<(JsEndpoint, JsEndpoint)>,
    partition: Option<Vec<Vec<JsEndpoint>>>,
}

/// Renders the whole cluster; each log is cut to its last `log_tail` entries.
pub fn state(sim: &Sim, log_tail: Option<u64>) -> State {
    let nodes = (1..=sim.node_count() as u64)
        .map(|id| node_view(sim, id, log_tail))
        .collect();
    let network = sim.network();
    State {
        now: sim.now().as_millis(),
        nodes,
        in_flight: sim.in_flight().map(InFlight::from).collect(),
        links: Links {
            cut: network
                .cut_links()
                .map(|&(from, to)| (from.into(), to.into()))
                .collect(),
            partition: network.partition_groups().map(|groups| {
                groups
                    .iter()
                    .map(|group| group.iter().map(|&e| e.into()).collect())
                    .collect()
            }),
        },
        membership: {
            let membership = sim.membership();
            MembershipView {
                voters: membership.voters,
                learners: membership.learners,
            }
        },
    }
}

fn kv_view(store: &KvStore) -> BTreeMap<String, String> {
    store.iter().map(|(k, v)| (text(k), text(v))).collect()
}

fn tail_start(first: u64, last: u64, log_tail: Option<u64>) -> u64 {
    match log_tail {
        Some(tail) => first.max((last + 1).saturating_sub(tail)),
        None => first,
    }
}

fn node_view(sim: &Sim, id: u64, log_tail: Option<u64>) -> NodeView {
    match sim.replica(id) {
        Some(replica) => up_node_view(replica.node(), replica.store(), log_tail),
        None => down_node_view(sim, id, log_tail),
    }
}

fn up_node_view(node: &Node, store: &KvStore, log_tail: Option<u64>) -> NodeView {
    let log = node.log();
    let last = log.last_index();
    let from = tail_start(log.first_index(), last, log_tail);
    NodeView {
        id: node.id(),
        up: true,
        role: node.role().name(),
        term: node.term(),
        voted_for: node.voted_for(),
        leader: node.leader(),
        commit_index: log.commit(),
        applied_index: log.applied(),
        snapshot_index: log.snapshot().index,
        snapshot_term: log.snapshot().term,
        last_index: last,
        durable_index: node.durable_index(),
        election_deadline: node.election_deadline().and_then(millis),
        log: log.entries(from, last).map(LogEntry::from).collect(),
        kv: kv_view(store),
        progress: node.progress().map(|progress| {
            progress
                .iter()
                .map(|(&id, p)| ProgressView::new(id, p))
                .collect()
        }),
        transfer_target: node.transfer_target(),
    }
}

/// A crashed node: what its disk holds, and the volatile state it will
/// restart with (follower, no leader, commit and applied at the snapshot,
/// the state machine restored from the snapshot).
fn down_node_view(sim: &Sim, id: u64, log_tail: Option<u64>) -> NodeView {
    let persisted = sim.disk(id).map(|disk| disk.persisted().clone());
    let persisted = persisted.unwrap_or_default();
    let (snapshot_index, snapshot_term) = persisted
        .snapshot
        .as_ref()
        .map_or((0, 0), |s| (s.meta.index, s.meta.term));
    let kv = match &persisted.snapshot {
        Some(snapshot) => KvStore::restore(snapshot.data.clone(), sim.config().limits)
            .map(|store| kv_view(&store))
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let last = persisted.last_index();
    let from = tail_start(snapshot_index + 1, last, log_tail);
    NodeView {
        id,
        up: false,
        role: "follower",
        term: persisted.hard_state.term,
        voted_for: persisted.hard_state.voted_for,
        leader: None,
        commit_index: snapshot_index,
        applied_index: snapshot_index,
        snapshot_index,
        snapshot_term,
        last_index: last,
        durable_index: last,
        election_deadline: None,
        log: persisted
            .entries
            .iter()
            .filter(|e| e.index >= from)
            .map(LogEntry::from)
            .collect(),
        kv,
        progress: None,
        transfer_target: None,
    }
}

/// One operation of `history()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    id: u64,
    client: u64,
    kind: &'static str,
    key: String,
    value: Option<String>,
    invoked_at: u64,
    completed_at: Option<u64>,
    output: Option<String>,
    status: &'static str,
    attempts: u32,
    /// Why it failed or ended unknown (extension).
    error: Option<String>,
}

impl From<&HistoryEntry> for HistoryView {
    fn from(entry: &HistoryEntry) -> HistoryView {
        let value = match &entry.operation {
            Operation::Put { value, .. } | Operation::Append { value, .. } => Some(text(value)),
            Operation::Get { .. } | Operation::Delete { .. } => None,
        };
        let output = match (&entry.operation, &entry.outcome) {
            (Operation::Get { .. }, Some(Ok(Some(read)))) => Some(text(read)),
            _ => None,
        };
        let error = match &entry.outcome {
            Some(Err(ClerkError::Unknown(why))) => Some(why.clone()),
            Some(Err(ClerkError::Refused(why))) => Some(why.to_string()),
            _ => None,
        };
        HistoryView {
            id: entry.id,
            client: entry.client,
            kind: entry.operation.name(),
            key: text(entry.operation.key()),
            value,
            invoked_at: entry.invoked_at.as_millis(),
            completed_at: entry.completed_at.map(Instant::as_millis),
            output,
            status: entry.status().name(),
            attempts: entry.attempts,
            error,
        }
    }
}

/// One line of `events()`, and what `step()` returns (without `seq`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    at: u64,
    node: Option<JsEndpoint>,
    kind: &'static str,
    text: String,
}

impl From<&TraceLine> for EventView {
    fn from(line: &TraceLine) -> EventView {
        EventView {
            seq: Some(line.seq),
            at: line.at.as_millis(),
            node: line.endpoint.map(JsEndpoint::from),
            kind: line.kind,
            text: line.text(),
        }
    }
}

impl From<StepInfo> for EventView {
    fn from(info: StepInfo) -> EventView {
        EventView {
            seq: None,
            at: info.at.as_millis(),
            node: info.endpoint.map(JsEndpoint::from),
            kind: info.kind,
            text: info.text,
        }
    }
}

/// One client of `clients()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    id: u64,
    busy: bool,
    leader_guess: Option<u64>,
    seq: u64,
    /// Runs the steady workload (extension).
    workload: bool,
    /// Its session id, once its first write opened one (extension).
    session: Option<u64>,
}

/// Every client.
pub fn clients(sim: &Sim) -> Vec<ClientView> {
    (1..=sim.client_count() as u64)
        .filter_map(|number| {
            let clerk = sim.clerk(number)?;
            Some(ClientView {
                id: number,
                busy: clerk.is_busy(),
                leader_guess: clerk.leader_guess(),
                seq: clerk.seq(),
                workload: sim.is_workload_client(number),
                session: clerk.session(),
            })
        })
        .collect()
}

/// `stats()` (extension): the simulator's counters.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    events: u64,
    packets_sent: u64,
    rpcs_sent: u64,
    bytes_sent: u64,
    delivered: u64,
    dropped: u64,
    syncs: u64,
    writes_lost: u64,
}

impl From<&SimStats> for StatsView {
    fn from(stats: &SimStats) -> StatsView {
        StatsView {
            events: stats.events,
            packets_sent: stats.packets_sent,
            rpcs_sent: stats.rpcs_sent,
            bytes_sent: stats.bytes_sent,
            delivered: stats.delivered,
            dropped: stats.dropped,
            syncs: stats.syncs,
            writes_lost: stats.writes_lost,
        }
    }
}

/// `message(id)`: every field of one packet in flight. The common part is
/// the `inFlight` rendering; `fields` adds the payload's own fields.
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
        Err(error) => {
            f.insert("error", Field::Text(error.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::sim::{SimConfig, Workload};
    use serde_json::{Value, json};

    fn busy_sim() -> Sim {
        let mut sim = Sim::new(SimConfig {
            nodes: 5,
            seed: 3,
            snapshot_every: 20,
            trace_capacity: 100,
            ..SimConfig::default()
        });
        sim.set_workload(Workload {
            clients: 3,
            interval: 30,
            keys: 3,
            read_fraction: 0.3,
        })
        .unwrap();
        sim.run_for(2_000);
        sim
    }

    fn json<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn state_has_the_contract_names_and_cuts_logs() {
        let sim = busy_sim();
        let tail = json(&state(&sim, Some(3)));
        let node = &tail["nodes"][0];
        for key in [
            "id",
            "up",
            "role",
            "term",
            "votedFor",
            "leader",
            "commitIndex",
            "appliedIndex",
            "snapshotIndex",
            "lastIndex",
            "durableIndex",
            "electionDeadline",
            "log",
            "kv",
            "progress",
        ] {
            assert!(node.get(key).is_some(), "no {key} in {node}");
        }
        for node in tail["nodes"].as_array().unwrap() {
            let log = node["log"].as_array().unwrap();
            assert!(log.len() <= 3);
            if let Some(last) = log.last() {
                assert_eq!(last["index"], node["lastIndex"]);
            }
        }
        let full = json(&state(&sim, None));
        let node = &full["nodes"][0];
        let held = node["lastIndex"].as_u64().unwrap() - node["snapshotIndex"].as_u64().unwrap();
        assert_eq!(node["log"].as_array().unwrap().len() as u64, held);
        assert_eq!(full["links"], json!({ "cut": [], "partition": null }));
    }

    #[test]
    fn a_crashed_node_shows_its_disk() {
        let mut sim = busy_sim();
        let id = sim.leader().unwrap() % 5 + 1;
        sim.crash(id).unwrap();
        let persisted = sim.disk(id).unwrap().persisted().clone();
        let view = json(&state(&sim, None))["nodes"][id as usize - 1].clone();
        assert_eq!(view["up"], false);
        assert_eq!(view["role"], "follower");
        assert_eq!(view["term"], persisted.hard_state.term);
        assert_eq!(view["lastIndex"], persisted.last_index());
        let snapshot = persisted.snapshot.as_ref().map_or(0, |s| s.meta.index);
        assert!(snapshot > 0, "snapshots every 20 entries");
        assert_eq!(view["commitIndex"], snapshot);
        assert_eq!(
            view["log"].as_array().unwrap().len(),
            persisted.entries.len()
        );
        assert!(
            !view["kv"].as_object().unwrap().is_empty(),
            "the state machine comes back from the snapshot"
        );
    }

    #[test]
    fn partitions_and_endpoints_render_as_numbers_and_client_names() {
        let mut sim = busy_sim();
        sim.partition(&[vec![1, 2], vec![3, 4, 5]]).unwrap();
        sim.cut_link(1, 2).unwrap();
        sim.run_for(5);
        let rendered = json(&state(&sim, Some(0)));
        assert_eq!(rendered["links"]["partition"], json!([[1, 2], [3, 4, 5]]));
        assert_eq!(rendered["links"]["cut"], json!([[1, 2]]));
        for packet in rendered["inFlight"].as_array().unwrap() {
            for end in [&packet["from"], &packet["to"]] {
                assert!(end.is_u64() || end.as_str().is_some_and(|s| s.starts_with('c')));
            }
        }
    }

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

    #[test]
    fn history_renders_values_outputs_and_status() {
        let mut sim = busy_sim();
        let get = sim.get("k0");
        sim.run_for(500);
        let history: Vec<Value> = sim
            .history()
            .iter()
            .map(|e| json(&HistoryView::from(e)))
            .collect();
        for op in &history {
            match op["kind"].as_str().unwrap() {
                "put" | "append" => assert!(op["value"].is_string()),
                _ => assert!(op["value"].is_null()),
            }
            if op["kind"] != "get" {
                assert!(op["output"].is_null());
            }
        }
        let get = &history[get as usize - 1];
        assert_eq!(get["status"], "ok");
        assert_eq!(get["kind"], "get");
    }
}
