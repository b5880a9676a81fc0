//! The client side of a sharded cluster: the core's routing
//! [`ShardClerk`] driven over QUIC.
//!
//! [`detect`] asks the given addresses what they are: a sharded host
//! answers a `Describe` with the addresses of every host and the
//! controller's servers; a single-group node cannot decode it and says so,
//! and the caller then speaks the single-group protocol. A
//! [`ShardedSession`] runs one operation at a time: the clerk routes it
//! by key to the leader of the group owning the key's shard, follows the
//! configuration when shards move, and keeps one sequence number across
//! every retry, so a write applies once even if its shard moves between
//! two attempts. With follower reads on
//! ([`ShardedSession::set_follower_reads`]) a get goes to any replica of
//! the owning group instead of its leader.
//!
//! A transport failure (a host that cannot be reached, a connection lost
//! with the request in flight) is reported to the clerk with
//! [`ShardClerk::handle_unreachable`]: it suspects that host for one
//! retry and asks another after a short back-off (a host tried on a guess
//! gets only [`ShardTiming::probe_ms`]); the outcome stays unknown until
//! some host answers. Certificate problems are not retried.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::raft::NodeId;
use distribkv_core::shard::clerk::{ShardClerk, ShardClerkConfig, ShardClerkOutput};
use distribkv_core::shard::group::KvError as ShardError;
use distribkv_core::shard::host::{HostReply, HostRequest};
use distribkv_core::shard::{ControllerOp, ControllerReply};

use super::wire::{HostDescription, ShardedBody, ShardedReply, ShardedRequest};
use crate::clock::{Clock, sleep_until};
use crate::kv_client::KvError;
use crate::tls::CertSet;
use crate::transport::{Client, ClientError, ClientSettings, ServerAddress};

/// The QUIC client of the sharded protocol.
pub type ShardTransport = Client<ShardedRequest, ShardedReply>;

/// How long [`detect`] waits for an answer.
const DETECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A sharded cluster as a client sees it.
#[derive(Debug)]
pub struct ShardedCluster {
    /// One connection per host; host `n` at index `n - 1`.
    pub transport: ShardTransport,
    /// Every host's id and address.
    pub hosts: Vec<(NodeId, ServerAddress)>,
    /// The controller's servers.
    pub controller: Vec<NodeId>,
    /// Number of shards.
    pub shards: u32,
}

fn connect(servers: Vec<ServerAddress>, certs: &CertSet) -> Result<ShardTransport, ClientError> {
    let settings = ClientSettings {
        request_timeout: Duration::from_secs(60),
        ..ClientSettings::default()
    };
    Client::new(servers, certs, settings)
}

/// Whether `given` are sharded hosts: `Ok(Some(..))` with the whole
/// cluster if one of them says so, `Ok(None)` if one answers as a
/// single-group node or none answers (the single-group commands then report
/// what they find).
pub async fn detect(
    given: &[ServerAddress],
    certs: &CertSet,
) -> Result<Option<ShardedCluster>, ClientError> {
    Ok(match detect_kind(given, certs).await? {
        Detected::Sharded(cluster) => Some(*cluster),
        Detected::Single | Detected::Silent => None,
    })
}

/// What [`detect_kind`] found at the given addresses.
pub enum Detected {
    /// A sharded host answered: the cluster it describes.
    Sharded(Box<ShardedCluster>),
    /// A single-group server answered (it could not decode the request).
    Single,
    /// No server answered within the detection timeout.
    Silent,
}

/// Like [`detect`], but tells a single-group cluster apart from addresses
/// where nothing answered.
pub async fn detect_kind(
    given: &[ServerAddress],
    certs: &CertSet,
) -> Result<Detected, ClientError> {
    let seeds = Arc::new(connect(given.to_vec(), certs)?);
    let (answers, mut receive) = tokio::sync::mpsc::unbounded_channel();
    for index in 0..given.len() {
        let (seeds, answers) = (seeds.clone(), answers.clone());
        tokio::spawn(async move {
            let request = ShardedRequest::new(ShardedBody::Describe);
            let answer =
                tokio::time::timeout(DETECT_TIMEOUT, seeds.request_to(index, request)).await;
            let _ = answers.send(answer);
        });
    }
    drop(answers);
    let mut found = None;
    let mut single = false;
    while let Some(answer) = receive.recv().await {
        match answer {
            Ok(Ok(ShardedReply::Description(description))) => {
                found = Some(description);
                break;
            }
            Ok(Err(ClientError::RequestUndecodable { .. })) => {
                single = true;
                break;
            }
            Ok(Err(error)) if !error.try_another_server() && !error.outcome_unknown() => {
                if matches!(error, ClientError::Certificates(_)) {
                    seeds.close().await;
                    return Err(error);
                }
            }
            _ => {}
        }
    }
    seeds.close().await;
    match found {
        Some(description) => Ok(Detected::Sharded(Box::new(cluster_of(description, certs)?))),
        None if single => Ok(Detected::Single),
        None => Ok(Detected::Silent),
    }
}

/// The client of every host a description names.
fn cluster_of(
    description: HostDescription,
    certs: &CertSet,
) -> Result<ShardedCluster, ClientError> {
    let mut hosts = Vec::new();
    for (id, text) in &description.hosts {
        if let Ok(address) = crate::addr::parse_address(text) {
            hosts.push((*id, address));
        }
    }
    hosts.sort_by_key(|(id, _)| *id);
    let servers = hosts.iter().map(|(_, a)| a.clone()).collect();
    Ok(ShardedCluster {
        transport: connect(servers, certs)?,
        hosts,
        controller: description.controller,
        shards: description.shards,
    })
}

impl ShardedCluster {
    /// Another client of the same hosts, with connections of its own.
    pub fn reconnect(&self, certs: &CertSet) -> Result<ShardedCluster, ClientError> {
        Ok(ShardedCluster {
            transport: connect(self.hosts.iter().map(|(_, a)| a.clone()).collect(), certs)?,
            hosts: self.hosts.clone(),
            controller: self.controller.clone(),
            shards: self.shards,
        })
    }

    /// The client index of host `id`.
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.hosts.iter().position(|(host, _)| *host == id)
    }

    /// Every host's description, by id (`None`: it did not answer).
    pub async fn describe_all(&self) -> Vec<(NodeId, Option<HostDescription>)> {
        let mut tasks = Vec::new();
        for (index, (id, _)) in self.hosts.iter().enumerate() {
            let request = ShardedRequest::new(ShardedBody::Describe);
            let answer =
                tokio::time::timeout(DETECT_TIMEOUT, self.transport.request_to(index, request));
            tasks.push(async move {
                match answer.await {
                    Ok(Ok(ShardedReply::Description(d))) => (*id, Some(d)),
                    _ => (*id, None),
                }
            });
        }
        futures_join_all(tasks).await
    }
}

/// Awaits every future, polling them all at once (a small `join_all`):
/// each runs from the start, so a slow one (a host that is down, waited
/// for until its timeout) does not use up the time of the others.
async fn futures_join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, out) in pending.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *out = Some(value),
                    Poll::Pending => all = false,
                }
            }
        }
        if all { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// Timing of a sharded session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardTiming {
    /// Wait this long for an answer before asking another server, ms.
    pub retry_ms: u64,
    /// Wait this long for an answer from a server tried on a guess (no
    /// sign that it leads its group), ms; see
    /// [`ShardClerkConfig::probe_ms`].
    pub probe_ms: u64,
    /// Pause before retrying a shard on its way or an election, ms.
    pub backoff_ms: u64,
    /// Give up (outcome unknown) after this long, ms.
    pub give_up_after_ms: u64,
}

impl Default for ShardTiming {
    /// 1 s per attempt (300 ms for a probe), 25 ms back-off, give up after 15 s.
    fn default() -> Self {
        ShardTiming {
            retry_ms: 1000,
            probe_ms: 300,
            backoff_ms: 25,
            give_up_after_ms: 15_000,
        }
    }
}

/// An attempt in flight: its host, its id and the answer.
type Pending =
    Pin<Box<dyn Future<Output = (NodeId, u64, Result<ShardedReply, ClientError>)> + Send>>;

/// What a session completed.
enum Completed {
    Kv(Result<Option<Bytes>, ShardError>),
    Controller(ControllerReply),
}

/// One client of a sharded cluster: a routing clerk and the transport it
/// talks through. One operation at a time.
#[derive(Debug)]
pub struct ShardedSession {
    cluster: Arc<ShardedCluster>,
    clerk: ShardClerk,
    clock: Clock,
    timing: ShardTiming,
}

impl ShardedSession {
    /// A session of `cluster` (shared by many sessions); `seed` draws its client id.
    pub fn new(cluster: Arc<ShardedCluster>, timing: ShardTiming, seed: u64) -> ShardedSession {
        let mut config = ShardClerkConfig::new(cluster.controller.clone());
        config.retry_ms = timing.retry_ms;
        config.probe_ms = timing.probe_ms;
        config.backoff_ms = timing.backoff_ms;
        ShardedSession {
            clerk: ShardClerk::new(config, seed),
            cluster,
            clock: Clock::start(),
            timing,
        }
    }

    /// Sends gets to any replica of the owning group, drawn at random for
    /// each read, followers included: the replica serves the read after a
    /// read index round with its group's leader and checks on the state at
    /// that index that its group still owns the key's shard
    /// ([`HostRequest::FollowerRead`]). As linearizable as a read at the
    /// leader; spreads reads over every host. Off by default.
    pub fn set_follower_reads(&mut self, on: bool) {
        self.clerk.set_follower_reads(on);
    }

    /// The configuration the session routes by (after its first operation).
    pub fn cached_config(&self) -> Option<&distribkv_core::shard::ShardConfig> {
        self.clerk.cached_config()
    }

    /// Runs a key-value operation to completion: its value (gets), or why
    /// it failed (refused, or outcome unknown after the give-up time).
    pub async fn run(&mut self, op: Operation) -> Result<Option<Bytes>, KvError> {
        let valid = crate::kv_client::ValidOperation::new(op)?;
        let now = self.clock.now();
        if self.clerk.start(now, valid.operation().clone()).is_err() {
            return Err(KvError::Unknown("an operation is already running".into()));
        }
        match self.drive().await? {
            Completed::Kv(Ok(value)) => Ok(value),
            Completed::Kv(Err(error)) if error.is_definite() => {
                Err(KvError::Unknown(format!("refused by the cluster: {error}")))
            }
            Completed::Kv(Err(error)) => Err(KvError::Unknown(error.to_string())),
            Completed::Controller(_) => Err(KvError::Unknown("unexpected controller reply".into())),
        }
    }

    /// Runs a controller operation (join, leave, move, query) to completion.
    pub async fn controller(&mut self, op: ControllerOp) -> Result<ControllerReply, KvError> {
        let now = self.clock.now();
        if self.clerk.start_controller(now, op).is_err() {
            return Err(KvError::Unknown("an operation is already running".into()));
        }
        match self.drive().await? {
            Completed::Controller(reply) => Ok(reply),
            Completed::Kv(_) => Err(KvError::Unknown("unexpected key-value reply".into())),
        }
    }

    /// Sends the clerk's requests and feeds back the answers until it completes.
    async fn drive(&mut self) -> Result<Completed, KvError> {
        let give_up =
            tokio::time::Instant::now() + Duration::from_millis(self.timing.give_up_after_ms);
        let mut pending: Vec<Pending> = Vec::new();
        let mut heard = false;
        loop {
            while let Some(output) = self.clerk.poll_output() {
                match output {
                    ShardClerkOutput::Send { to, request } => {
                        pending.push(self.send(to, request));
                    }
                    ShardClerkOutput::Done(result) => return Ok(Completed::Kv(result)),
                    ShardClerkOutput::ControllerDone(reply) => {
                        return Ok(Completed::Controller(reply));
                    }
                }
            }
            let deadline = self.clock.deadline(self.clerk.poll_timeout());
            let next = async {
                if pending.is_empty() {
                    std::future::pending::<()>().await;
                }
                let (index, answer) = {
                    let polled = std::future::poll_fn(|cx| {
                        for (index, future) in pending.iter_mut().enumerate() {
                            if let std::task::Poll::Ready(answer) = future.as_mut().poll(cx) {
                                return std::task::Poll::Ready((index, answer));
                            }
                        }
                        std::task::Poll::Pending
                    });
                    polled.await
                };
                (index, answer)
            };
            tokio::select! {
                (index, (from, attempt, answer)) = next => {
                    drop(pending.swap_remove(index));
                    let now = self.clock.now();
                    match answer {
                        Ok(ShardedReply::Host(reply)) => {
                            heard = true;
                            self.clerk.handle_reply(now, from, reply);
                        }
                        Ok(_) => {
                            self.clerk.handle_reply(now, from, busy(attempt));
                        }
                        Err(error) if matches!(error, ClientError::Certificates(_)) => {
                            return Err(KvError::Certificates(error));
                        }
                        // Unreachable or lost: the clerk suspects the host
                        // and tries another one after a pause.
                        Err(error) => {
                            tracing::debug!(host = from, attempt, "attempt failed: {error}");
                            self.clerk.handle_unreachable(now, from, attempt);
                        }
                    }
                }
                () = sleep_until(deadline) => {
                    let now = self.clock.now();
                    self.clerk.handle_timeout(now);
                }
                () = tokio::time::sleep_until(give_up) => {
                    if !heard {
                        let tried = self
                            .cluster
                            .hosts
                            .iter()
                            .map(|(_, a)| a.addr.to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(KvError::NoAnswer { tried });
                    }
                    return Err(KvError::Unknown(format!(
                        "no answer within {} ms",
                        self.timing.give_up_after_ms
                    )));
                }
            }
        }
    }

    fn send(&self, to: NodeId, request: HostRequest) -> Pending {
        let attempt = attempt_of(&request);
        let cluster = self.cluster.clone();
        Box::pin(async move {
            let Some(index) = cluster.index_of(to) else {
                return (to, attempt, Err(ClientError::NoServers));
            };
            let answer = cluster
                .transport
                .request_to(index, ShardedRequest::new(ShardedBody::Host(request)))
                .await;
            (to, attempt, answer)
        })
    }
}

fn attempt_of(request: &HostRequest) -> u64 {
    request.id()
}

/// The answer fed to the clerk when a host answered something other than
/// a host reply.
fn busy(attempt: u64) -> HostReply {
    HostReply::Kv {
        id: attempt,
        result: Err(ShardError::Busy),
    }
}

/// Group ids by the shards they own in `config`, for printing.
pub fn shards_by_group(config: &distribkv_core::shard::ShardConfig) -> BTreeMap<u64, Vec<u32>> {
    let mut by_group: BTreeMap<u64, Vec<u32>> =
        config.groups.keys().map(|g| (*g, Vec::new())).collect();
    for (shard, group) in config.shards.iter().enumerate() {
        by_group.entry(*group).or_default().push(shard as u32);
    }
    by_group
}

#[cfg(test)]
mod join_tests {
    use super::*;

    /// Timeouts made before the futures run (as `describe_all` makes one
    /// per host) each get their whole time: awaited one after another, a
    /// host that is down used up the time of the hosts after it, which
    /// then read as down too.
    #[tokio::test]
    async fn a_slow_future_does_not_use_up_the_others_time() {
        let slow = Box::pin(async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Err::<(), _>("down")
        }) as Pin<Box<dyn Future<Output = Result<(), &str>> + Send>>;
        let quick = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::time::sleep(Duration::from_millis(10)),
        );
        let quick = Box::pin(async move { quick.await.map_err(|_| "timed out") });
        let answers = futures_join_all(vec![slow, quick]).await;
        assert_eq!(answers, vec![Err("down"), Ok(())]);
    }
}
