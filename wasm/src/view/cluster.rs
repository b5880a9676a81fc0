//! `state()`: the whole cluster. Up nodes are rendered from their replica;
//! a crashed node from the replica its disk restores
//! ([`Sim::restart_preview`]), so the page shows what the core says it
//! restarts as. The cluster's leader is the simulator's ([`Sim::leader`]).

use std::collections::BTreeMap;

use distribkv_core::kv::{KvStore, Replica};
use distribkv_core::raft::{Entry, Progress};
use distribkv_core::sim::trace::{describe_packet, describe_payload, packet_kind};
use distribkv_core::sim::{Packet, Sim, SimError};
use distribkv_core::time::Instant;
use serde::Serialize;

use super::{JsEndpoint, text};

/// `state()`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    now: u64,
    /// The leader with the highest term among the up nodes, as the
    /// simulator sees it (extension; each node's own belief is its `leader`).
    leader: Option<u64>,
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
    /// Follower reads this node answered while not the leader, since it
    /// last started (extension; 0 while down).
    follower_reads_served: u64,
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

impl Links {
    fn new(sim: &Sim) -> Links {
        let network = sim.network();
        Links {
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
        }
    }
}

/// Renders the whole cluster; each log is cut to its last `log_tail` entries.
/// Fails only if a crashed node's disk cannot be restored, which the core
/// never writes.
pub fn state(sim: &Sim, log_tail: Option<u64>) -> Result<State, SimError> {
    let nodes = (1..=sim.node_count() as u64)
        .map(|id| node_view(sim, id, log_tail))
        .collect::<Result<_, _>>()?;
    let membership = sim.membership();
    Ok(State {
        now: sim.now().as_millis(),
        leader: sim.leader(),
        nodes,
        in_flight: sim.in_flight().map(InFlight::from).collect(),
        links: Links::new(sim),
        membership: MembershipView {
            voters: membership.voters,
            learners: membership.learners,
        },
    })
}

fn node_view(sim: &Sim, id: u64, log_tail: Option<u64>) -> Result<NodeView, SimError> {
    match sim.replica(id) {
        Some(replica) => Ok(NodeView::new(replica, true, log_tail)),
        None => Ok(NodeView::new(&sim.restart_preview(id)?, false, log_tail)),
    }
}

fn tail_start(first: u64, last: u64, log_tail: Option<u64>) -> u64 {
    match log_tail {
        Some(tail) => first.max((last + 1).saturating_sub(tail)),
        None => first,
    }
}

impl NodeView {
    /// Renders `replica`; a node that is down is the replica it restarts
    /// as, with no election timer running.
    fn new(replica: &Replica, up: bool, log_tail: Option<u64>) -> NodeView {
        let node = replica.node();
        let log = node.log();
        let last = log.last_index();
        let from = tail_start(log.first_index(), last, log_tail);
        let election_deadline = node
            .election_deadline()
            .filter(|&at| up && at != Instant::NEVER)
            .map(Instant::as_millis);
        NodeView {
            id: node.id(),
            up,
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
            election_deadline,
            log: log.entries(from, last).map(LogEntry::from).collect(),
            kv: kv_view(replica.store()),
            progress: node.progress().map(|progress| {
                progress
                    .iter()
                    .map(|(&id, p)| ProgressView::new(id, p))
                    .collect()
            }),
            transfer_target: node.transfer_target(),
            follower_reads_served: if up {
                replica.follower_reads_served()
            } else {
                0
            },
        }
    }
}

fn kv_view(store: &KvStore) -> BTreeMap<String, String> {
    store.iter().map(|(k, v)| (text(k), text(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::{busy_sim, json};
    use distribkv_core::raft::MembershipChange;
    use serde_json::json;

    fn rendered(sim: &Sim, log_tail: Option<u64>) -> serde_json::Value {
        json(&state(sim, log_tail).unwrap())
    }

    #[test]
    fn state_has_the_contract_names_and_cuts_logs() {
        let sim = busy_sim();
        let tail = rendered(&sim, Some(3));
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
        let full = rendered(&sim, None);
        let node = &full["nodes"][0];
        let held = node["lastIndex"].as_u64().unwrap() - node["snapshotIndex"].as_u64().unwrap();
        assert_eq!(node["log"].as_array().unwrap().len() as u64, held);
        assert_eq!(full["links"], json!({ "cut": [], "partition": null }));
    }

    #[test]
    fn the_leader_is_the_simulators() {
        let mut sim = busy_sim();
        let leader = sim.leader().expect("a leader");
        assert_eq!(rendered(&sim, Some(0))["leader"], leader);
        sim.crash(leader).unwrap();
        assert_eq!(rendered(&sim, Some(0))["leader"], json!(null));
    }

    #[test]
    fn a_crashed_node_shows_its_disk() {
        let mut sim = busy_sim();
        let id = sim.leader().unwrap() % 5 + 1;
        sim.crash(id).unwrap();
        let persisted = sim.disk(id).unwrap().persisted().clone();
        let view = rendered(&sim, None)["nodes"][id as usize - 1].clone();
        assert_eq!(view["up"], false);
        assert_eq!(view["role"], "follower");
        assert_eq!(view["leader"], json!(null));
        assert_eq!(view["electionDeadline"], json!(null));
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
        // What the page drew is what the node comes back as.
        sim.restart(id).unwrap();
        let mut back = rendered(&sim, None)["nodes"][id as usize - 1].clone();
        back["up"] = json!(false);
        back["electionDeadline"] = json!(null);
        assert_eq!(back, view);
    }

    #[test]
    fn a_crashed_learner_is_drawn_as_a_learner() {
        let mut sim = busy_sim();
        let id = sim.add_node().unwrap();
        sim.change_membership(MembershipChange::AddLearner(id))
            .unwrap();
        sim.run_for(1_000);
        let role = |sim: &Sim| rendered(sim, Some(0))["nodes"][id as usize - 1]["role"].clone();
        assert_eq!(role(&sim), "learner");
        sim.crash(id).unwrap();
        assert_eq!(role(&sim), "learner", "it restarts as a learner");
    }

    #[test]
    fn partitions_and_endpoints_render_as_numbers_and_client_names() {
        let mut sim = busy_sim();
        sim.partition(&[vec![1, 2], vec![3, 4, 5]]).unwrap();
        sim.cut_link(1, 2).unwrap();
        sim.run_for(5);
        let rendered = rendered(&sim, Some(0));
        assert_eq!(rendered["links"]["partition"], json!([[1, 2], [3, 4, 5]]));
        assert_eq!(rendered["links"]["cut"], json!([[1, 2]]));
        for packet in rendered["inFlight"].as_array().unwrap() {
            for end in [&packet["from"], &packet["to"]] {
                assert!(end.is_u64() || end.as_str().is_some_and(|s| s.starts_with('c')));
            }
        }
    }
}
