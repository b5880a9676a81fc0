//! The sharded step loop: one task owns the [`Host`] and translates between
//! it and the world (see the [module documentation](super)).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use distribkv_core::raft::NodeId;
use distribkv_core::shard::group::{KvError, ShardStatus};
use distribkv_core::shard::host::{
    CONTROLLER, Host, HostBatch, HostInput, HostOutput, HostReply, HostRequest,
};
use tokio::sync::mpsc;

use super::ShardServerError;
use super::wire::{
    FrameRefused, GroupStatus, HostDescription, PROTOCOL, PeerFrame, ShardedBody, ShardedReply,
    ShardedRequest, check_frame,
};
use crate::clock::Clock;
use crate::server::metrics::Metrics;
use crate::server::step::{self, Inputs, StorageHalt};
use crate::server::waiting::{WaitingReplies, expiry_timer};
use crate::storage::StorageEvent;
use crate::storage::multi::{MultiJob, MultiStorageWorker};
use crate::transport::{ClientRequest as Incoming, PeerTransport};

/// At most one refused-frame warning per peer per this interval (the rest are counted).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// A group whose live tail pins the multi-group log's old segments is
/// asked to snapshot at most this often.
const SNAPSHOT_ASK_INTERVAL: Duration = Duration::from_secs(10);

/// The most bytes of messages one frame to a peer carries. A step's
/// messages to one host (every group's appends, shard parts on their way)
/// may add up to more than a frame may hold
/// ([`DEFAULT_MAX_FRAME_SIZE`](crate::transport::frame::DEFAULT_MAX_FRAME_SIZE),
/// 16 MiB), and a frame over it is dropped whole: they go in several
/// frames, in order, each within this budget (a message larger than it
/// alone in its frame).
const FRAME_BUDGET: usize = 8 << 20;

/// `batch` as frames of at most `budget` bytes of messages each, in order.
fn frames(batch: HostBatch, budget: usize) -> Vec<PeerFrame> {
    // A size that cannot be counted goes alone (and is refused by the
    // transport, as a whole frame would be).
    fn size<T: serde::Serialize>(value: &T) -> usize {
        postcard::experimental::serialized_size(value).unwrap_or(usize::MAX)
    }
    let whole = PeerFrame::from(batch);
    if whole.messages.len() <= 1 || size(&whole) <= budget {
        return vec![whole];
    }
    let mut frames = Vec::new();
    let mut current = Vec::new();
    let mut bytes: usize = 0;
    for message in whole.messages {
        let message_bytes = size(&message);
        if !current.is_empty() && bytes.saturating_add(message_bytes) > budget {
            frames.push(PeerFrame {
                to: whole.to,
                messages: std::mem::take(&mut current),
            });
            bytes = 0;
        }
        bytes = bytes.saturating_add(message_bytes);
        current.push(message);
    }
    frames.push(PeerFrame {
        to: whole.to,
        messages: current,
    });
    frames
}

/// One input from the world.
type Event = step::Event<PeerFrame, Incoming<ShardedRequest, ShardedReply>>;

impl From<StorageHalt> for ShardServerError {
    fn from(halt: StorageHalt) -> ShardServerError {
        match halt {
            StorageHalt::Failed(error) => ShardServerError::StorageFailed(error),
            StorageHalt::Stopped => ShardServerError::StorageStopped,
        }
    }
}

/// The sharded step loop's state.
pub(super) struct Driver {
    pub(super) id: NodeId,
    pub(super) clock: Clock,
    pub(super) host: Host,
    pub(super) transport: PeerTransport<PeerFrame>,
    pub(super) worker: MultiStorageWorker,
    pub(super) metrics: Option<Arc<Metrics>>,
    /// Every host's address, by id.
    pub(super) hosts: Vec<(NodeId, String)>,
    /// The groups held here (0: the controller's), and those retired here:
    /// frames about them are let through (the host tells a retired group's
    /// peers that it is retired).
    pub(super) held: BTreeSet<GroupId>,
    pub(super) replies: WaitingReplies<ShardedReply>,
    /// Frames refused, in all.
    pub(super) refused: u64,
    /// When a refusal from each peer was last logged.
    pub(super) refusal_logged: HashMap<NodeId, tokio::time::Instant>,
    pub(super) peers_sampled: tokio::time::Instant,
    /// The last group asked to snapshot because it pinned old segments, and when.
    pub(super) snapshot_asked: Option<(GroupId, tokio::time::Instant)>,
}

use distribkv_core::shard::GroupId;

/// What a request asks, for the metrics, and whether it writes.
fn request_kind(request: &ShardedRequest) -> (&'static str, bool) {
    match &request.body {
        ShardedBody::Describe => ("status", false),
        ShardedBody::TransferLeader { .. } => ("transfer_leader", false),
        ShardedBody::Host(HostRequest::Controller { .. }) => ("shard_controller", false),
        ShardedBody::Host(HostRequest::Kv { op, .. }) => (op.name(), op.is_write()),
        ShardedBody::Host(HostRequest::FollowerRead { .. }) => ("get", false),
        ShardedBody::Host(HostRequest::Export { .. }) => ("snapshot", false),
    }
}

impl Driver {
    /// Steps until `shutdown` completes (`Ok`) or storage fails.
    pub(super) async fn run(
        &mut self,
        mut inputs: Inputs<PeerFrame, Incoming<ShardedRequest, ShardedReply>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ShardServerError> {
        tokio::pin!(shutdown);
        let mut expiry = expiry_timer();
        // The host's first outputs (elections of groups alone on this host).
        self.drain_outputs(&mut inputs.storage).await?;
        loop {
            let deadline = self.clock.deadline(self.host.poll_timeout());
            let event = tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!(host = self.id, "shutting down");
                    return Ok(());
                }
                event = inputs.next(deadline) => event,
                _ = expiry.tick() => {
                    self.replies.expire();
                    continue;
                }
            };
            self.handle(event)?;
            inputs.drain_ready(|event| self.handle(event))?;
            self.snapshot_pinning_group();
            self.drain_outputs(&mut inputs.storage).await?;
            self.observe();
        }
    }

    /// Feeds one event to the host.
    fn handle(&mut self, event: Event) -> Result<(), ShardServerError> {
        let now = self.clock.now();
        let input = match event {
            Event::Storage(event) => HostInput::Persisted(step::durable(event)?),
            Event::Peer((from, frame)) => match check_frame(from, self.id, &self.held, frame) {
                Ok(batch) => HostInput::Batch(batch),
                Err(refused) => {
                    self.refuse(from, &refused);
                    return Ok(());
                }
            },
            Event::Client(Incoming { request, reply }) => {
                if request.protocol != PROTOCOL {
                    reply.send(ShardedReply::Refused(format!(
                        "not a sharded distribKV request (protocol {:#x}, expected {PROTOCOL:#x})",
                        request.protocol
                    )));
                    return Ok(());
                }
                let (op, is_write) = request_kind(&request);
                let request = match request.body {
                    ShardedBody::Describe => {
                        reply.send(ShardedReply::Description(self.describe()));
                        if let Some(metrics) = &self.metrics {
                            metrics.observe_request(op, "ok", false);
                        }
                        return Ok(());
                    }
                    ShardedBody::TransferLeader { group, to } => {
                        let outcome =
                            self.host
                                .transfer_leadership(now, group, to)
                                .map_err(|rejected| match rejected {
                                    distribkv_core::raft::Rejected::NotLeader { leader_hint } => {
                                        format!(
                                            "host {} does not lead group {group} (leader: {})",
                                            self.id,
                                            leader_hint
                                                .map_or("unknown".to_string(), |l| l.to_string())
                                        )
                                    }
                                    other => format!("group {group}: {other}"),
                                });
                        if let Some(metrics) = &self.metrics {
                            let outcome = if outcome.is_ok() { "ok" } else { "error" };
                            metrics.observe_request(op, outcome, false);
                        }
                        reply.send(ShardedReply::Transfer(outcome));
                        return Ok(());
                    }
                    ShardedBody::Host(request) => request,
                };
                let token = self.replies.insert(reply, op, is_write);
                HostInput::Client {
                    from: token,
                    request,
                }
            }
            Event::Timeout => HostInput::Timeout,
        };
        if let Err(rejected) = self.host.handle(now, input) {
            // Only driver misuse gets here; the host is unchanged.
            tracing::warn!(host = self.id, "host refused an input: {rejected:?}");
        }
        Ok(())
    }

    /// Has the host snapshot the group whose live tail kept the
    /// multi-group log's last purge from deleting old segments once the
    /// log has grown to several times its purge threshold
    /// ([`MultiStorageStats::snapshot_wanted`](crate::storage::multi::MultiStorageStats::snapshot_wanted):
    /// a group that went quiet with more than `rewrite_limit` of entries
    /// would otherwise keep them until its next snapshot, which may never
    /// come), at most once per [`SNAPSHOT_ASK_INTERVAL`] for the same group.
    fn snapshot_pinning_group(&mut self) {
        let Some(group) = self.worker.stats().snapshot_wanted() else {
            return;
        };
        let now = tokio::time::Instant::now();
        if self.snapshot_asked.is_some_and(|(asked, at)| {
            asked == group && now.duration_since(at) < SNAPSHOT_ASK_INTERVAL
        }) {
            return;
        }
        self.snapshot_asked = Some((group, now));
        if self.host.snapshot_group(self.clock.now(), group) {
            tracing::info!(
                host = self.id,
                group,
                "snapshotting a group whose log keeps old segments of the write-ahead log"
            );
        }
    }

    /// Logs (at most once per peer per interval) and counts a refused frame.
    fn refuse(&mut self, from: NodeId, refused: &FrameRefused) {
        self.refused += 1;
        let now = tokio::time::Instant::now();
        let due = self
            .refusal_logged
            .get(&from)
            .is_none_or(|at| now.duration_since(*at) >= REFUSAL_LOG_INTERVAL);
        if due {
            self.refusal_logged.insert(from, now);
            tracing::warn!(host = self.id, refused_so_far = self.refused, "{refused}");
        }
        if let Some(metrics) = &self.metrics {
            metrics.observe_refused_frame();
        }
    }

    /// Executes every output of the host, in order.
    async fn drain_outputs(
        &mut self,
        storage_events: &mut mpsc::UnboundedReceiver<StorageEvent>,
    ) -> Result<(), ShardServerError> {
        while let Some(output) = self.host.poll_output() {
            match output {
                HostOutput::Persist(write) => {
                    if self.worker.persist(write).await.is_err() {
                        return Err(step::refused_write(storage_events).await.into());
                    }
                }
                HostOutput::Retired(group) => {
                    // After the write polled before it, in the same queue.
                    tracing::info!(
                        host = self.id,
                        group,
                        "group {group} left the service and was retired: \
                         its replica and its log here are removed"
                    );
                    if self
                        .worker
                        .submit(MultiJob::RetireGroup(group))
                        .await
                        .is_err()
                    {
                        return Err(step::refused_write(storage_events).await.into());
                    }
                    if let Some(metrics) = &self.metrics {
                        metrics.forget_group(group);
                    }
                }
                HostOutput::Send(batch) => {
                    let to = batch.to;
                    for frame in frames(batch, FRAME_BUDGET) {
                        let outcome = self.transport.send(to, frame);
                        tracing::trace!(to, ?outcome, "frame");
                    }
                }
                HostOutput::Reply { to, reply } => {
                    if let Some(waiting) = self.replies.take(to) {
                        if let Some(metrics) = &self.metrics {
                            let error = match &reply {
                                HostReply::Kv { result, .. } => result.as_ref().err(),
                                HostReply::Controller { result, .. } => result.as_ref().err(),
                                HostReply::Export { result, .. } => result.as_ref().err(),
                            };
                            let outcome = match error {
                                None => "ok",
                                Some(KvError::NotLeader { .. }) => "not_leader",
                                Some(KvError::WrongGroup) => "wrong_group",
                                Some(KvError::Busy | KvError::NotArrived) => "busy",
                                Some(_) => "error",
                            };
                            metrics.observe_request(waiting.op, outcome, waiting.is_write);
                        }
                        waiting.reply.send(ShardedReply::Host(reply));
                    }
                }
            }
        }
        Ok(())
    }

    fn observe(&mut self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        metrics.observe_host(&self.host, self.replies.len());
        step::sample_peers(metrics, &self.transport, &mut self.peers_sampled);
    }

    /// This host's description (`Describe`).
    fn describe(&self) -> HostDescription {
        let config = self.host.config();
        HostDescription {
            id: self.id,
            hosts: self.hosts.clone(),
            shards: config.shards,
            controller: config.controller.clone(),
            groups: group_statuses(&self.host),
        }
    }

    /// Stops the transport, then lets the storage worker commit what is queued.
    pub(super) async fn stop(self) {
        self.transport.shutdown().await;
        let worker = self.worker;
        let _ = tokio::task::spawn_blocking(move || worker.shutdown()).await;
    }
}

/// The status of every group `host` holds.
pub fn group_statuses(host: &Host) -> Vec<GroupStatus> {
    host.nodes()
        .map(|(group, node)| {
            let log = node.log();
            let mut status = GroupStatus {
                group,
                role: node.role().name().to_string(),
                term: node.term(),
                leader: node.leader(),
                commit_index: log.commit(),
                applied_index: log.applied(),
                last_index: log.last_index(),
                hibernating: host.is_hibernating(group),
                config_num: 0,
                serving: Vec::new(),
                pulling: Vec::new(),
                sending: Vec::new(),
                keys: 0,
                latest: None,
            };
            if group == CONTROLLER {
                if let Some(controller) = host.controller() {
                    status.config_num = controller.latest().num;
                    status.latest = Some(controller.latest().clone());
                }
            } else if let Some(kv) = host.kv(group) {
                status.config_num = kv.config().num;
                for (shard, held) in kv.shards() {
                    status.keys += held.data.len() as u64;
                    match held.status {
                        ShardStatus::Serving => status.serving.push(*shard),
                        ShardStatus::Pulling { from } => status.pulling.push((*shard, from)),
                        ShardStatus::Sending { to } => status.sending.push((*shard, to)),
                    }
                }
            }
            status
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use distribkv_core::shard::host::HostMessage;

    fn push(shard: u32, bytes: usize) -> HostMessage {
        HostMessage::ShardPush {
            from_group: 1,
            to_group: 2,
            config_num: 3,
            shard,
            data: Bytes::from(vec![b'x'; bytes]),
        }
    }

    /// A step's messages to one host that add up to more than a frame may
    /// hold go in several frames, in order, none over the budget but a
    /// message larger than it alone; a batch within it stays one frame.
    #[test]
    fn a_batch_larger_than_a_frame_goes_in_several() {
        let budget = 1000;
        let sizes = [300, 300, 300, 300, 1500, 10, 990];
        let batch = HostBatch {
            from: 1,
            to: 2,
            messages: (0u32..).zip(sizes).map(|(s, b)| push(s, b)).collect(),
        };
        let split = frames(batch.clone(), budget);
        let shards: Vec<Vec<u32>> = split
            .iter()
            .map(|f| {
                f.messages
                    .iter()
                    .map(|m| match m {
                        HostMessage::ShardPush { shard, .. } => *shard,
                        other => panic!("{other:?}"),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            shards,
            vec![vec![0, 1, 2], vec![3], vec![4], vec![5], vec![6]]
        );
        for frame in &split {
            assert_eq!(frame.to, 2);
            let bytes = postcard::experimental::serialized_size(frame).unwrap();
            assert!(bytes <= budget + 20 || frame.messages.len() == 1, "{bytes}");
        }
        let small = HostBatch {
            messages: batch.messages[..3].to_vec(),
            ..batch
        };
        assert_eq!(frames(small, budget).len(), 1);
    }
}
