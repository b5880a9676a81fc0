//! The client side of the key-value service: the core's sans-IO
//! [`Clerk`] driven over the QUIC [`Client`].
//!
//! A [`KvSession`] runs one operation at a time. The clerk decides
//! everything (which server to ask, when to retry, with which session
//! sequence number, when to give up); this module only sends its requests,
//! feeds back the answers, and wakes it at its deadlines. A retried write
//! keeps its sequence number, so it is applied at most once.
//!
//! A transport failure (a server that cannot be reached, a connection lost
//! with the request in flight) is fed to the clerk as an
//! [`ServiceError::Unavailable`] answer from that server: the clerk then
//! tries another server after a short back-off, exactly as when a replica
//! reports that it cannot serve, and the outcome stays unknown until some
//! server answers. Certificate problems are not retried: they would fail
//! the same way everywhere.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use distribkv_core::kv::{
    Clerk, ClerkConfig, ClerkError, ClerkOutput, ClientRequest, ClientResponse, MAX_KEY_BYTES,
    MAX_VALUE_BYTES, MembersStatus, Operation, Reply, RequestBody, ServiceError,
};
use distribkv_core::raft::NodeId;

use crate::clock::{Clock, sleep_until};
use crate::tls::CertSet;
use crate::transport::{Client, ClientError, ClientSettings, ServerAddress};

/// The QUIC client of the key-value protocol.
pub type KvTransport = Client<ClientRequest, ClientResponse>;

/// Timing of a session's clerk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTiming {
    /// Wait this long for an answer before asking another server, ms.
    pub attempt_timeout_ms: u64,
    /// Wait this long for an answer from a server tried without a sign
    /// that it leads, ms (see the core's `ClerkConfig::probe_timeout`).
    pub probe_timeout_ms: u64,
    /// Pause before retrying when no leader is known, ms.
    pub retry_backoff_ms: u64,
    /// Give up (outcome unknown) after this long, ms.
    pub give_up_after_ms: u64,
}

impl Default for SessionTiming {
    /// 1 s per attempt (an election takes 0.5–1 s), 300 ms for a server
    /// tried without a sign that it leads (one that does not lead answers
    /// within a round trip), 25 ms back-off, give up after 15 s.
    fn default() -> Self {
        SessionTiming {
            attempt_timeout_ms: 1000,
            probe_timeout_ms: 300,
            retry_backoff_ms: 25,
            give_up_after_ms: 15_000,
        }
    }
}

/// How an operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvError {
    /// Refused before sending: the key or value is over the limit.
    #[error("{0}")]
    Invalid(ServiceError),
    /// The cluster refused the operation; it certainly did not take effect.
    #[error("refused: {0}")]
    Refused(ServiceError),
    /// The outcome is unknown: the operation may or may not have taken effect.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The certificates do not let this client talk to the cluster.
    #[error("{0}")]
    Certificates(ClientError),
    /// No server answered anything at all.
    #[error(
        "no node of the cluster answered (tried {tried}); is it running, and are these its addresses?"
    )]
    NoAnswer {
        /// The addresses tried.
        tried: String,
    },
}

/// Connects to the cluster: a QUIC client of `servers` with the client
/// certificate of `certs`. Connections are opened lazily, one per server.
pub fn connect(servers: Vec<ServerAddress>, certs: &CertSet) -> Result<KvTransport, ClientError> {
    connect_with(servers, certs.client_config()?)
}

/// [`connect`] with a TLS configuration already made from the certificates.
fn connect_with(
    servers: Vec<ServerAddress>,
    tls: quinn::ClientConfig,
) -> Result<KvTransport, ClientError> {
    let settings = ClientSettings {
        // The clerk times attempts out itself; this only bounds a stuck one.
        request_timeout: Duration::from_secs(60),
        ..ClientSettings::default()
    };
    Client::with_tls_config(servers, tls, settings)
}

/// How long [`discover`] waits for the members' answers.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster's servers as its configuration describes them, whatever
/// part of it `given` lists (any members, in any order): asks every given
/// address for the member list (the leader's answer is preferred) and
/// returns every member's address at the position of its id (id `n` at
/// index `n - 1`, as the clerk's leader hints need; an id that is not a
/// member, removed or never used, gets the address of a member). If no
/// node answers, `given` itself.
pub async fn discover(given: Vec<ServerAddress>, certs: &CertSet) -> Vec<ServerAddress> {
    let Ok(tls) = certs.client_config() else {
        return given;
    };
    match discover_with(&given, tls).await {
        Some(found) => found.servers,
        None => given,
    }
}

/// What [`discover_with`] found.
struct Discovered {
    /// Addresses by id, as [`discover`] returns them.
    servers: Vec<ServerAddress>,
    /// The ids that were members.
    members: Vec<NodeId>,
}

/// The configuration as the nodes at `given` know it: asks them all at
/// once for the member list and takes the leader's answer, or without one
/// the answer of the node that knows the most recent configuration; `None`
/// if no node answered within 2 s (`DISCOVERY_TIMEOUT`). It does not wait for
/// every node: an answer that names a leader listed among its members is
/// enough, after a short wait for the leader's own answer.
pub async fn members_status(
    given: &[ServerAddress],
    certs: &CertSet,
) -> Result<Option<MembersStatus>, ClientError> {
    Ok(members_status_with(given, certs.client_config()?).await)
}

/// How long discovery keeps listening, once an answer naming a reachable
/// leader came, for the leader's own answer or a more recent configuration.
const DISCOVERY_SETTLE: Duration = Duration::from_millis(50);

/// Whether `status` tells a caller where to go: it names a leader that is
/// among its members, with an address.
fn names_reachable_leader(status: &MembersStatus) -> bool {
    status.leader.is_some_and(|leader| {
        status
            .members
            .iter()
            .any(|m| m.id == leader && crate::addr::parse_address(&m.address).is_ok())
    })
}

/// [`members_status`] with a TLS configuration already made. It returns as
/// soon as it has what a caller needs: the leader's own answer at once;
/// another answer naming a leader among its members (with an address)
/// after [`DISCOVERY_SETTLE`] more for a better one (a stale leader only
/// costs a NotLeader hint and another discovery); otherwise once every
/// node has answered or failed, or at [`DISCOVERY_TIMEOUT`]. A dead or cut
/// off node does not hold it up while the others can tell the leader.
async fn members_status_with(
    given: &[ServerAddress],
    tls: quinn::ClientConfig,
) -> Option<MembersStatus> {
    let seeds = Arc::new(connect_with(given.to_vec(), tls).ok()?);
    let (answers, mut receive) = tokio::sync::mpsc::unbounded_channel();
    let mut asking = tokio::task::JoinSet::new();
    for index in 0..given.len() {
        let seeds = seeds.clone();
        let answers = answers.clone();
        asking.spawn(async move {
            let request = ClientRequest {
                id: 1,
                body: RequestBody::Members {
                    linearizable: false,
                },
            };
            let answer =
                tokio::time::timeout(DISCOVERY_TIMEOUT, seeds.request_to(index, request)).await;
            if let Ok(Ok(ClientResponse {
                result: Ok(Reply::Members(status)),
                ..
            })) = answer
            {
                let _ = answers.send(status);
            }
        });
    }
    // The channel closes once every node has answered or failed.
    drop(answers);
    let mut best: Option<MembersStatus> = None;
    let mut deadline = tokio::time::Instant::now() + DISCOVERY_TIMEOUT;
    while let Ok(Some(status)) = tokio::time::timeout_at(deadline, receive.recv()).await {
        let authoritative = status.leader == Some(status.node);
        // Without the leader's answer, the one that knows the most recent
        // configuration.
        let newer = best
            .as_ref()
            .is_none_or(|b| (status.term, status.last_index) > (b.term, b.last_index));
        let enough = names_reachable_leader(&status);
        if newer || authoritative {
            best = Some(status);
        }
        if authoritative {
            break;
        }
        if enough {
            deadline = deadline.min(tokio::time::Instant::now() + DISCOVERY_SETTLE);
        }
    }
    // A request still waiting on a silent node holds its connection slot,
    // which closing the client waits for: end them first.
    asking.abort_all();
    while asking.join_next().await.is_some() {}
    seeds.close().await;
    best
}

/// [`discover`], or `None` if no node answered.
async fn discover_with(given: &[ServerAddress], tls: quinn::ClientConfig) -> Option<Discovered> {
    let status = members_status_with(given, tls).await?;
    // The servers are listed by id, one slot per id up to the highest: a
    // member above MAX_MEMBER_ID (which no cluster accepts any more) is not
    // reached by id rather than allocating a slot for every id below it.
    let members: Vec<(NodeId, ServerAddress)> = status
        .members
        .iter()
        .filter(|m| m.id <= distribkv_core::kv::MAX_MEMBER_ID)
        .filter_map(|m| Some((m.id, crate::addr::parse_address(&m.address).ok()?)))
        .collect();
    let highest = members.iter().map(|(id, _)| *id).max()?;
    let servers = (1..=highest)
        .map(|id| {
            members
                .iter()
                .find(|(member, _)| *member == id)
                .unwrap_or(&members[(id as usize) % members.len()])
                .1
                .clone()
        })
        .collect();
    Some(Discovered {
        servers,
        members: members.iter().map(|(id, _)| *id).collect(),
    })
}

/// How soon after a re-discovery another one may start.
const REDISCOVERY_PAUSE: Duration = Duration::from_millis(500);

/// A single-group cluster as its clients see it: the transport to every
/// member of its configuration, re-discovered when the configuration
/// changes under a running client (a session's clerk asks for the member
/// list, [`ClerkOutput::Discover`], when a leader hint names a node added
/// after the client started: [`KvCluster::learn`] asks the members it
/// knows, see [`discover`]). Shared by the sessions of one process, which
/// it spares from asking all at once.
pub struct KvCluster {
    tls: quinn::ClientConfig,
    current: std::sync::RwLock<Known>,
    /// Held during a re-discovery (one at a time); the time the last one ended.
    rediscovery: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

/// The members a [`KvCluster`] knows and the transport to them.
struct Known {
    transport: Arc<KvTransport>,
    members: Vec<NodeId>,
}

impl fmt::Debug for KvCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvCluster")
            .field("transport", &self.transport())
            .finish_non_exhaustive()
    }
}

impl KvCluster {
    /// Connects to every member of the cluster that `given` lists part of
    /// (see [`discover`]).
    pub async fn connect(
        given: Vec<ServerAddress>,
        certs: &CertSet,
    ) -> Result<KvCluster, ClientError> {
        let tls = certs.client_config()?;
        let (servers, members) = match discover_with(&given, tls.clone()).await {
            Some(found) => (found.servers, found.members),
            None => (given, Vec::new()),
        };
        let transport = Arc::new(connect_with(servers, tls.clone())?);
        Ok(KvCluster {
            tls,
            current: std::sync::RwLock::new(Known { transport, members }),
            rediscovery: tokio::sync::Mutex::new(None),
        })
    }

    /// A cluster whose servers are `servers` exactly, node `n` at index
    /// `n - 1`, without asking them first (they may not run yet); members
    /// added later are still learned from leader hints.
    pub fn fixed(servers: Vec<ServerAddress>, certs: &CertSet) -> Result<KvCluster, ClientError> {
        let tls = certs.client_config()?;
        let transport = Arc::new(connect_with(servers, tls.clone())?);
        Ok(KvCluster {
            tls,
            current: std::sync::RwLock::new(Known {
                transport,
                members: Vec::new(),
            }),
            rediscovery: tokio::sync::Mutex::new(None),
        })
    }

    /// The transport to the members known now.
    pub fn transport(&self) -> Arc<KvTransport> {
        self.known().transport.clone()
    }

    /// The ids the transport reaches now, as a clerk lists its servers:
    /// node `n` at index `n - 1`.
    pub fn server_ids(&self) -> Vec<NodeId> {
        (1..=self.transport().servers().len() as NodeId).collect()
    }

    fn known(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the transport can reach node `id` (it was a member when the
    /// members were last discovered, or at least has a position).
    pub fn knows(&self, id: NodeId) -> bool {
        let known = self.known();
        known.members.contains(&id)
            || (known.members.is_empty() && (id as usize) <= known.transport.servers().len())
    }

    /// Asks the members known for the member list again, because node `id`
    /// (a leader hint) is not known; afterwards the transport reaches every
    /// member then listed. Returns whether `id` is known now. Concurrent
    /// calls wait for one re-discovery; a call soon after one changes
    /// nothing.
    pub async fn learn(&self, id: NodeId) -> bool {
        let mut last = self.rediscovery.lock().await;
        if self.knows(id) {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < REDISCOVERY_PAUSE) {
            return false;
        }
        let given = self.transport().servers().to_vec();
        let found = discover_with(&given, self.tls.clone()).await;
        *last = Some(tokio::time::Instant::now());
        let Some(found) = found else {
            return false;
        };
        if !found.members.contains(&id) {
            return false;
        }
        let Ok(transport) = connect_with(found.servers, self.tls.clone()) else {
            return false;
        };
        tracing::debug!(node = id, "learned a new member's address");
        // Requests in flight keep the old transport alive until they end.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Known {
            transport: Arc::new(transport),
            members: found.members,
        };
        true
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.transport().close().await;
    }
}

/// An operation within the size limits the servers enforce. The client side
/// checks a request once, here, so that an oversized key or value is refused
/// before anything is sent (the server checks it once more on its side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOperation(Operation);

impl ValidOperation {
    /// Checks `operation` against the limits.
    pub fn new(operation: Operation) -> Result<ValidOperation, KvError> {
        operation
            .validate(MAX_KEY_BYTES, MAX_VALUE_BYTES)
            .map_err(KvError::Invalid)?;
        Ok(ValidOperation(operation))
    }

    /// The operation.
    pub fn operation(&self) -> &Operation {
        &self.0
    }
}

type Pending =
    Pin<Box<dyn Future<Output = (NodeId, u64, Result<ClientResponse, ClientError>)> + Send>>;

/// A re-discovery under way ([`ClerkOutput::Discover`]): the servers known
/// once it ends.
type Discovery = Pin<Box<dyn Future<Output = Vec<NodeId>> + Send>>;

/// One client session: a clerk and the cluster it talks to.
#[derive(Debug)]
pub struct KvSession {
    cluster: Arc<KvCluster>,
    clerk: Clerk,
    clock: Clock,
    /// Whether some node ever answered this session.
    heard_from_cluster: bool,
}

impl KvSession {
    /// A session of `cluster` (shared by many sessions) whose clerk uses
    /// `timing`; `seed` picks the first server to try.
    pub fn new(cluster: Arc<KvCluster>, timing: SessionTiming, seed: u64) -> KvSession {
        let config = ClerkConfig {
            servers: cluster.server_ids(),
            attempt_timeout: timing.attempt_timeout_ms,
            probe_timeout: timing.probe_timeout_ms,
            retry_backoff: timing.retry_backoff_ms,
            give_up_after: Some(timing.give_up_after_ms),
            follower_reads: false,
        };
        KvSession {
            cluster,
            clerk: Clerk::new(config, seed),
            clock: Clock::start(),
            heard_from_cluster: false,
        }
    }

    /// Lets any node serve this session's reads, followers included
    /// (follower reads: same linearizability, reads spread over the
    /// cluster); off by default.
    pub fn set_follower_reads(&mut self, on: bool) {
        self.clerk.set_follower_reads(on);
    }

    /// Runs `operation` to its end: `Ok(value)` (a get's value, `None` for a
    /// missing key and for writes) or why it failed.
    pub async fn execute(&mut self, operation: ValidOperation) -> Result<Option<Bytes>, KvError> {
        // Invariant: `execute` takes `&mut self` and runs each operation to
        // its end, so the clerk is never busy here.
        self.clerk
            .start(self.clock.now(), operation.0)
            .expect("one operation at a time");
        // Every attempt of the operation still waiting for its answer: the
        // clerk takes a success from any of them (a slow server's answer
        // still counts after the attempt timeout sent it elsewhere) and
        // acts on the errors of the latest only.
        let mut pending: Vec<Pending> = Vec::new();
        // Runs beside the attempts: the clerk goes on meanwhile.
        let mut discovery: Option<Discovery> = None;
        loop {
            while let Some(output) = self.clerk.poll_output() {
                match output {
                    ClerkOutput::Send { to, request } => {
                        tracing::debug!(node = to, request = request.id, "attempt");
                        let transport = self.cluster.transport();
                        let id = request.id;
                        pending.push(Box::pin(async move {
                            let index = (to - 1) as usize;
                            (to, id, transport.request_to(index, request).await)
                        }));
                    }
                    ClerkOutput::Discover { hint } => {
                        tracing::debug!(node = hint, "leader hint names an unknown node");
                        let cluster = self.cluster.clone();
                        discovery = Some(Box::pin(async move {
                            cluster.learn(hint).await;
                            cluster.server_ids()
                        }));
                    }
                    ClerkOutput::Done(Ok(value)) => return Ok(value),
                    ClerkOutput::Done(Err(ClerkError::Refused(error))) => {
                        return Err(KvError::Refused(error));
                    }
                    ClerkOutput::Done(Err(ClerkError::Unknown(_))) if !self.heard_from_cluster => {
                        let tried: Vec<String> = self
                            .cluster
                            .transport()
                            .servers()
                            .iter()
                            .map(crate::addr::address_text)
                            .collect();
                        return Err(KvError::NoAnswer {
                            tried: tried.join(", "),
                        });
                    }
                    ClerkOutput::Done(Err(ClerkError::Unknown(why))) => {
                        return Err(KvError::Unknown(why));
                    }
                }
            }
            let deadline = self.clock.deadline(self.clerk.poll_timeout());
            tokio::select! {
                (from, id, answer) = wait(&mut pending) => {
                    let response = match answer {
                        Ok(response) => {
                            self.heard_from_cluster = true;
                            response
                        }
                        Err(error @ (ClientError::CertificateRefused { .. }
                        | ClientError::ServerNotTrusted { .. }
                        | ClientError::Certificates(_)
                        | ClientError::Bind(_))) => {
                            return Err(KvError::Certificates(error));
                        }
                        Err(error) => {
                            tracing::debug!(node = from, request = id, "attempt failed: {error}");
                            ClientResponse {
                            id,
                            result: Err(ServiceError::Unavailable(error.to_string())),
                        }}
                    };
                    self.clerk.handle_response(self.clock.now(), from, response);
                }
                servers = async { discovery.as_mut().expect("checked by the guard").await },
                    if discovery.is_some() =>
                {
                    discovery = None;
                    self.clerk.handle_members(self.clock.now(), servers);
                }
                () = sleep_until(deadline) => {
                    tracing::trace!("clerk deadline");
                    self.clerk.handle_timeout(self.clock.now());
                }
            }
        }
    }
}

/// Asks server `index` (0-based) for its status.
pub async fn node_status(
    transport: &KvTransport,
    index: usize,
) -> Result<distribkv_core::kv::NodeStatus, String> {
    let request = ClientRequest {
        id: 1,
        body: RequestBody::Status,
    };
    let answer =
        tokio::time::timeout(Duration::from_secs(5), transport.request_to(index, request)).await;
    match answer {
        Err(_) => Err("no answer within 5 s".into()),
        Ok(Err(error)) => Err(error.to_string()),
        Ok(Ok(ClientResponse {
            result: Ok(distribkv_core::kv::Reply::Status(status)),
            ..
        })) => Ok(status),
        Ok(Ok(ClientResponse {
            result: Err(error), ..
        })) => Err(error.to_string()),
        Ok(Ok(other)) => Err(format!("unexpected answer {other:?}")),
    }
}

/// Waits for the first of the pending requests to end (and removes it), or
/// forever without one.
async fn wait(pending: &mut Vec<Pending>) -> (NodeId, u64, Result<ClientResponse, ClientError>) {
    use std::task::Poll;
    std::future::poll_fn(|cx| {
        let ready = pending.iter_mut().enumerate().find_map(|(at, future)| {
            match future.as_mut().poll(cx) {
                Poll::Ready(answer) => Some((at, answer)),
                Poll::Pending => None,
            }
        });
        match ready {
            Some((at, answer)) => {
                drop(pending.swap_remove(at));
                Poll::Ready(answer)
            }
            None => Poll::Pending,
        }
    })
    .await
}
