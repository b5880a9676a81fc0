//! `--metrics-addr`: the node's metrics in the Prometheus text format
//! (`GET /metrics`), and its health (`GET /livez`, `GET /readyz`), over
//! HTTP/1.1 (hyper).
//!
//! The names follow etcd's where they mean the same thing
//! (`etcd_server_has_leader` is `distribkv_server_has_leader`, ...); the
//! list is the contract in DESIGN.md. The step loop updates the gauges and
//! counters after each step ([`Metrics::observe_step`]); the storage
//! worker times its fsyncs and snapshot writes; the transport's per-peer
//! traffic is read when the page is scraped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use distribkv_core::kv::Replica;
use distribkv_core::raft::{LogIndex, NodeId};
use distribkv_core::shard::GroupId;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::storage::StorageObserver;
use crate::transport::PeerTraffic;

mod http;
pub use http::bind;
pub(crate) use http::{HttpLimits, serve};

/// `/livez` fails when the step loop has not stepped for this long (a
/// follower steps at least at every heartbeat, a lone node at every
/// election timeout).
const LIVENESS_LIMIT: Duration = Duration::from_secs(5);

/// Labels `{to}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct To {
    to: NodeId,
}

/// Labels `{from}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct From {
    from: NodeId,
}

/// Labels `{group}` (a sharded host's groups; 0 is the controller's).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Group {
    group: GroupId,
}

/// Labels `{op,outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request_ {
    op: &'static str,
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

fn round_trip_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// What one step shows of the node (or, for a sharded host, of all its
/// groups together), for [`Metrics::record_step`].
struct StepFigures {
    has_leader: bool,
    is_leader: bool,
    term: u64,
    commit: LogIndex,
    applied: LogIndex,
    pending: usize,
    ready: bool,
    /// Follower reads answered while not leading, since the start.
    follower_reads: u64,
}

/// One group's series in the `distribkv_group_*` families (a handle
/// shares its value with the family's series).
struct GroupGauges {
    has_leader: Gauge,
    is_leader: Gauge,
    term: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    /// For the groups holding key-value shards (not the controller).
    shards: Option<Gauge>,
    follower_reads: Counter,
}

/// The last values seen, to turn indexes into counter increments.
#[derive(Debug, Default)]
struct Seen {
    leader: Option<NodeId>,
    commit: LogIndex,
    applied: LogIndex,
    sent: HashMap<NodeId, u64>,
    received: HashMap<NodeId, u64>,
}

/// A node's metrics and health. Shared by the step loop, the storage
/// worker and the HTTP server.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    has_leader: Gauge,
    is_leader: Gauge,
    leader_changes: Counter,
    proposals_committed: Counter,
    proposals_applied: Counter,
    proposals_pending: Gauge,
    proposals_failed: Counter,
    term: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    wal_fsync: Histogram,
    snapshot_save: Histogram,
    peer_sent: Family<To, Counter>,
    peer_received: Family<From, Counter>,
    peer_round_trip: HistogramFamily<To>,
    client_requests: Family<Request_, Counter>,
    follower_reads: Counter,
    group_has_leader: Family<Group, Gauge>,
    group_is_leader: Family<Group, Gauge>,
    group_term: Family<Group, Gauge>,
    group_commit_index: Family<Group, Gauge>,
    group_applied_index: Family<Group, Gauge>,
    group_shards: Family<Group, Gauge>,
    group_follower_reads: Family<Group, Counter>,
    frames_refused: Counter,
    /// Each group's handles in the `group_*` families, so that a step
    /// sets them without building labels and searching the families.
    groups: Mutex<HashMap<GroupId, GroupGauges>>,
    seen: Mutex<Seen>,
    /// Milliseconds since `started` at the last step.
    last_step_ms: AtomicU64,
    ready: AtomicBool,
}

/// Brings `counter` up to `total`, a count the node or host keeps since it
/// started, as the counter does: adds what was counted since the last step.
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every metric of the contract, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            registry: Registry::default(),
            started: Instant::now(),
            has_leader: Gauge::default(),
            is_leader: Gauge::default(),
            leader_changes: Counter::default(),
            proposals_committed: Counter::default(),
            proposals_applied: Counter::default(),
            proposals_pending: Gauge::default(),
            proposals_failed: Counter::default(),
            term: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            wal_fsync: latency_histogram(),
            snapshot_save: latency_histogram(),
            peer_sent: Family::default(),
            peer_received: Family::default(),
            peer_round_trip: Family::new_with_constructor(round_trip_histogram),
            client_requests: Family::default(),
            follower_reads: Counter::default(),
            group_has_leader: Family::default(),
            group_is_leader: Family::default(),
            group_term: Family::default(),
            group_commit_index: Family::default(),
            group_applied_index: Family::default(),
            group_shards: Family::default(),
            group_follower_reads: Family::default(),
            frames_refused: Counter::default(),
            groups: Mutex::new(HashMap::new()),
            seen: Mutex::new(Seen::default()),
            last_step_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        };
        let r = &mut registry;
        r.register(
            "distribkv_server_has_leader",
            "Whether a leader exists (1) or not (0), as this node knows",
            metrics.has_leader.clone(),
        );
        r.register(
            "distribkv_server_is_leader",
            "Whether this node is the leader (1) or not (0)",
            metrics.is_leader.clone(),
        );
        r.register(
            "distribkv_server_leader_changes_seen",
            "Leader changes seen by this node",
            metrics.leader_changes.clone(),
        );
        r.register(
            "distribkv_server_proposals_committed",
            "Log entries committed, as this node knows",
            metrics.proposals_committed.clone(),
        );
        r.register(
            "distribkv_server_proposals_applied",
            "Log entries applied to the state machine",
            metrics.proposals_applied.clone(),
        );
        r.register(
            "distribkv_server_proposals_pending",
            "Client requests waiting for an answer on this node",
            metrics.proposals_pending.clone(),
        );
        r.register(
            "distribkv_server_proposals_failed",
            "Client writes answered with an error by this node",
            metrics.proposals_failed.clone(),
        );
        r.register(
            "distribkv_server_term",
            "Current term",
            metrics.term.clone(),
        );
        r.register(
            "distribkv_server_commit_index",
            "Commit index",
            metrics.commit_index.clone(),
        );
        r.register(
            "distribkv_server_applied_index",
            "Applied index",
            metrics.applied_index.clone(),
        );
        r.register(
            "distribkv_disk_wal_fsync_duration_seconds",
            "Time of one group commit's fsync of the write-ahead log",
            metrics.wal_fsync.clone(),
        );
        r.register(
            "distribkv_disk_snapshot_save_duration_seconds",
            "Time to write one snapshot to disk",
            metrics.snapshot_save.clone(),
        );
        r.register(
            "distribkv_network_peer_sent_bytes",
            "Bytes of messages sent to each peer",
            metrics.peer_sent.clone(),
        );
        r.register(
            "distribkv_network_peer_received_bytes",
            "Bytes of messages received from each peer",
            metrics.peer_received.clone(),
        );
        r.register(
            "distribkv_network_peer_round_trip_time_seconds",
            "Round-trip time to each peer (the QUIC connection's estimate, sampled once a second)",
            metrics.peer_round_trip.clone(),
        );
        r.register(
            "distribkv_client_requests",
            "Client requests answered, by operation and outcome",
            metrics.client_requests.clone(),
        );
        r.register(
            "distribkv_server_follower_reads_served",
            "Follower reads (client --follower-reads) this node answered while not the leader",
            metrics.follower_reads.clone(),
        );
        r.register(
            "distribkv_group_has_leader",
            "Sharded hosts: whether each group held here knows a leader",
            metrics.group_has_leader.clone(),
        );
        r.register(
            "distribkv_group_is_leader",
            "Sharded hosts: whether this host leads each group it holds",
            metrics.group_is_leader.clone(),
        );
        r.register(
            "distribkv_group_term",
            "Sharded hosts: each group's current term here",
            metrics.group_term.clone(),
        );
        r.register(
            "distribkv_group_commit_index",
            "Sharded hosts: each group's commit index here",
            metrics.group_commit_index.clone(),
        );
        r.register(
            "distribkv_group_applied_index",
            "Sharded hosts: each group's applied index here",
            metrics.group_applied_index.clone(),
        );
        r.register(
            "distribkv_group_shards_serving",
            "Sharded hosts: shards each group serves, as its replica here knows",
            metrics.group_shards.clone(),
        );
        r.register(
            "distribkv_group_follower_reads_served",
            "Sharded hosts: follower reads each group's replica here answered while not leading it",
            metrics.group_follower_reads.clone(),
        );
        r.register(
            "distribkv_network_peer_frames_refused",
            "Sharded hosts: peer frames refused (wrong host, unknown group, misaddressed)",
            metrics.frames_refused.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A sharded host's step: the `distribkv_group_*` gauges per group, and
    /// the `distribkv_server_*` ones over all groups (has a leader: every
    /// group knows one; is leader: leads at least one; term: the highest;
    /// indexes and proposals: summed over groups).
    pub fn observe_host(&self, host: &distribkv_core::shard::host::Host, pending: usize) {
        let (mut all_have_leader, mut leads_one, mut ready) = (true, false, true);
        let (mut term, mut commit, mut applied) = (0u64, 0u64, 0u64);
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        for (group, node) in host.nodes() {
            let log = node.log();
            let has_leader = node.leader().is_some();
            all_have_leader &= has_leader;
            leads_one |= node.is_leader();
            ready &= has_leader && log.applied() >= log.commit();
            term = term.max(node.term());
            commit += log.commit();
            applied += log.applied();
            let gauges = groups
                .entry(group)
                .or_insert_with(|| self.group_gauges(group));
            gauges.has_leader.set(i64::from(has_leader));
            gauges.is_leader.set(i64::from(node.is_leader()));
            gauges.term.set(node.term() as i64);
            gauges.commit_index.set(log.commit() as i64);
            gauges.applied_index.set(log.applied() as i64);
            if let Some(kv) = host.kv(group) {
                let serving = kv
                    .shards()
                    .values()
                    .filter(|s| s.status == distribkv_core::shard::group::ShardStatus::Serving)
                    .count();
                gauges
                    .shards
                    .get_or_insert_with(|| {
                        self.group_shards.get_or_create(&Group { group }).clone()
                    })
                    .set(serving as i64);
            }
            let served = host
                .stats()
                .follower_reads_by_group
                .get(&group)
                .copied()
                .unwrap_or(0);
            catch_up(&gauges.follower_reads, served);
        }
        drop(groups);
        self.record_step(StepFigures {
            has_leader: all_have_leader,
            is_leader: leads_one,
            term,
            commit,
            applied,
            pending,
            ready,
            follower_reads: host.stats().follower_reads_served,
        });
    }

    /// The handles of `group`'s per-group metrics, created in their families.
    fn group_gauges(&self, group: GroupId) -> GroupGauges {
        let label = Group { group };
        GroupGauges {
            has_leader: self.group_has_leader.get_or_create(&label).clone(),
            is_leader: self.group_is_leader.get_or_create(&label).clone(),
            term: self.group_term.get_or_create(&label).clone(),
            commit_index: self.group_commit_index.get_or_create(&label).clone(),
            applied_index: self.group_applied_index.get_or_create(&label).clone(),
            shards: None,
            follower_reads: self.group_follower_reads.get_or_create(&label).clone(),
        }
    }

    /// Stops reporting a group's per-group metrics (its replica here was
    /// retired).
    pub fn forget_group(&self, group: GroupId) {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&group);
        let label = Group { group };
        for family in [
            &self.group_has_leader,
            &self.group_is_leader,
            &self.group_term,
            &self.group_commit_index,
            &self.group_applied_index,
            &self.group_shards,
        ] {
            family.remove(&label);
        }
        self.group_follower_reads.remove(&label);
    }

    /// Counts one refused peer frame (sharded hosts).
    pub fn observe_refused_frame(&self) {
        self.frames_refused.inc();
    }

    /// Updates the node's gauges and counters after one step.
    pub fn observe_step(&self, replica: &Replica) {
        let node = replica.node();
        let log = node.log();
        let leader = node.leader();
        let (commit, applied) = (log.commit(), log.applied());
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if leader.is_some() && leader != seen.leader {
                self.leader_changes.inc();
            }
            if leader.is_some() {
                seen.leader = leader;
            }
        }
        self.record_step(StepFigures {
            has_leader: leader.is_some(),
            is_leader: node.is_leader(),
            term: node.term(),
            commit,
            applied,
            pending: replica.pending_requests(),
            ready: leader.is_some() && applied >= commit,
            follower_reads: replica.follower_reads_served(),
        });
    }

    /// Sets the `distribkv_server_*` gauges of one step, counts the
    /// proposals committed and applied since the last, and marks the step
    /// (for `/livez`) and readiness (for `/readyz`).
    fn record_step(&self, figures: StepFigures) {
        let StepFigures {
            has_leader,
            is_leader,
            term,
            commit,
            applied,
            pending,
            ready,
            follower_reads,
        } = figures;
        self.has_leader.set(i64::from(has_leader));
        self.is_leader.set(i64::from(is_leader));
        self.term.set(term as i64);
        self.commit_index.set(commit as i64);
        self.applied_index.set(applied as i64);
        self.proposals_pending.set(pending as i64);
        catch_up(&self.follower_reads, follower_reads);
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            self.proposals_committed
                .inc_by(commit.saturating_sub(seen.commit));
            self.proposals_applied
                .inc_by(applied.saturating_sub(seen.applied));
            seen.commit = seen.commit.max(commit);
            seen.applied = seen.applied.max(applied);
        }
        self.ready.store(ready, Ordering::Relaxed);
        self.last_step_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Counts one answered client request.
    pub fn observe_request(&self, op: &'static str, outcome: &'static str, is_write: bool) {
        self.client_requests
            .get_or_create(&Request_ { op, outcome })
            .inc();
        if is_write && outcome != "ok" {
            self.proposals_failed.inc();
        }
    }

    /// Folds in the transport's per-peer traffic and samples each peer's
    /// round-trip time.
    pub fn observe_peers(&self, traffic: &[PeerTraffic]) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        for peer in traffic {
            let to = To { to: peer.id };
            let sent = seen.sent.entry(peer.id).or_default();
            // A link re-created (the peer's address changed) counts from 0.
            let delta = peer
                .sent_bytes
                .checked_sub(*sent)
                .unwrap_or(peer.sent_bytes);
            self.peer_sent.get_or_create(&to).inc_by(delta);
            *sent = peer.sent_bytes;
            let received = seen.received.entry(peer.id).or_default();
            let delta = peer
                .received_bytes
                .checked_sub(*received)
                .unwrap_or(peer.received_bytes);
            self.peer_received
                .get_or_create(&From { from: peer.id })
                .inc_by(delta);
            *received = peer.received_bytes;
            if let Some(round_trip) = peer.round_trip {
                self.peer_round_trip
                    .get_or_create(&to)
                    .observe(round_trip.as_secs_f64());
            }
        }
    }

    /// Whether the step loop stepped recently.
    pub fn is_live(&self) -> bool {
        let last = Duration::from_millis(self.last_step_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last) < LIVENESS_LIMIT
    }

    /// Whether the node knows a leader of its current term and has applied
    /// everything it knows to be committed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.is_live()
    }

    /// The metrics in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        http::to_text_format(&text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Binds `addr` and serves new metrics there from a task: the metrics,
/// the task, and the address bound.
pub(crate) async fn start(
    addr: std::net::SocketAddr,
) -> std::io::Result<(
    Arc<Metrics>,
    tokio::task::JoinHandle<()>,
    std::net::SocketAddr,
)> {
    let listener = bind(addr).await?;
    let bound = listener.local_addr().unwrap_or(addr);
    let metrics = Arc::new(Metrics::new());
    let task = tokio::spawn(serve(listener, metrics.clone(), HttpLimits::DEFAULT));
    Ok((metrics, task, bound))
}

/// The storage worker's half: fsync and snapshot times.
pub struct StorageTimes(pub Arc<Metrics>);

impl StorageTimes {
    /// The storage worker's observer when there are `metrics`.
    pub(crate) fn observer(metrics: Option<&Arc<Metrics>>) -> Option<Box<dyn StorageObserver>> {
        metrics.map(|metrics| Box::new(StorageTimes(metrics.clone())) as Box<dyn StorageObserver>)
    }
}

impl StorageObserver for StorageTimes {
    fn fsync(&self, took: Duration) {
        self.0.wal_fsync.observe(took.as_secs_f64());
    }

    fn snapshot_saved(&self, took: Duration) {
        self.0.snapshot_save.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use distribkv_core::shard::host::{Host, HostConfig, HostInput};
    use distribkv_core::time::Instant;

    use super::Metrics;

    /// A host's retired group stops being reported; the others stay.
    #[test]
    fn a_forgotten_group_leaves_the_per_group_metrics() {
        let mut config = HostConfig::new(1, 4, vec![1]);
        config.groups = BTreeMap::from([(1, vec![1]), (2, vec![1])]);
        let host = Host::new(config, 7, Instant::ZERO).unwrap();
        let metrics = Metrics::new();
        metrics.observe_host(&host, 0);
        let text = metrics.encode();
        assert!(text.contains("distribkv_group_term{group=\"1\"}"), "{text}");
        metrics.forget_group(1);
        let text = metrics.encode();
        assert!(!text.contains("group=\"1\""), "{text}");
        assert!(text.contains("distribkv_group_term{group=\"2\"}"), "{text}");
    }

    /// The per-group series follow the groups from step to step, and a
    /// group forgotten but still held is reported again at the next step.
    #[test]
    fn the_per_group_metrics_follow_every_step() {
        let mut config = HostConfig::new(1, 4, vec![1]);
        config.groups = BTreeMap::from([(1, vec![1]), (2, vec![1])]);
        let mut host = Host::new(config, 7, Instant::ZERO).unwrap();
        let metrics = Metrics::new();
        metrics.observe_host(&host, 0);
        let text = metrics.encode();
        assert!(
            text.contains("distribkv_group_term{group=\"2\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("distribkv_group_shards_serving{group=\"2\"} 0\n"),
            "{text}"
        );
        assert!(
            !text.contains("distribkv_group_shards_serving{group=\"0\"}"),
            "{text}"
        );
        // Every group's election timer runs out: each starts term 1.
        host.handle(Instant(60_000), HostInput::Timeout).unwrap();
        while host.poll_output().is_some() {}
        metrics.observe_host(&host, 0);
        let text = metrics.encode();
        for group in 0..=2 {
            let line = format!("distribkv_group_term{{group=\"{group}\"}} 1\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        metrics.forget_group(1);
        metrics.observe_host(&host, 0);
        let text = metrics.encode();
        assert!(
            text.contains("distribkv_group_term{group=\"1\"} 1\n"),
            "{text}"
        );
    }
}
