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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
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
    /// Pause before retrying when no leader is known, ms.
    pub retry_backoff_ms: u64,
    /// Give up (outcome unknown) after this long, ms.
    pub give_up_after_ms: u64,
}

impl Default for SessionTiming {
    /// 1 s per attempt (an election takes 0.5–1 s), 25 ms back-off, give up after 15 s.
    fn default() -> Self {
        SessionTiming {
            attempt_timeout_ms: 1000,
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
    let settings = ClientSettings {
        // The clerk times attempts out itself; this only bounds a stuck one.
        request_timeout: Duration::from_secs(60),
        ..ClientSettings::default()
    };
    Client::new(servers, certs, settings)
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
    let Ok(seeds) = connect(given.clone(), certs) else {
        return given;
    };
    let seeds = Arc::new(seeds);
    let (answers, mut receive) = tokio::sync::mpsc::unbounded_channel();
    for index in 0..given.len() {
        let seeds = seeds.clone();
        let answers = answers.clone();
        tokio::spawn(async move {
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
    drop(answers);
    let mut best: Option<MembersStatus> = None;
    let deadline = tokio::time::Instant::now() + DISCOVERY_TIMEOUT;
    while let Ok(Some(status)) = tokio::time::timeout_at(deadline, receive.recv()).await {
        let authoritative = status.leader == Some(status.node);
        best = Some(status);
        if authoritative {
            break;
        }
    }
    seeds.close().await;
    let Some(status) = best else {
        return given;
    };
    let members: Vec<(NodeId, ServerAddress)> = status
        .members
        .iter()
        .filter_map(|m| Some((m.id, crate::addr::parse_address(&m.address).ok()?)))
        .collect();
    let Some(highest) = members.iter().map(|(id, _)| *id).max() else {
        return given;
    };
    (1..=highest)
        .map(|id| {
            members
                .iter()
                .find(|(member, _)| *member == id)
                .unwrap_or(&members[(id as usize) % members.len()])
                .1
                .clone()
        })
        .collect()
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

/// One client session: a clerk and the transport it talks through.
#[derive(Debug)]
pub struct KvSession {
    transport: Arc<KvTransport>,
    clerk: Clerk,
    clock: Clock,
    /// Whether some node ever answered this session.
    heard_from_cluster: bool,
}

impl KvSession {
    /// A session over `transport` (shared by many sessions) whose clerk
    /// uses `timing`; `seed` picks the first server to try.
    pub fn new(transport: Arc<KvTransport>, timing: SessionTiming, seed: u64) -> KvSession {
        let servers = (1..=transport.servers().len() as NodeId).collect();
        let config = ClerkConfig {
            servers,
            attempt_timeout: timing.attempt_timeout_ms,
            retry_backoff: timing.retry_backoff_ms,
            give_up_after: Some(timing.give_up_after_ms),
            follower_reads: false,
        };
        KvSession {
            transport,
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
        loop {
            while let Some(output) = self.clerk.poll_output() {
                match output {
                    ClerkOutput::Send { to, request } => {
                        tracing::debug!(node = to, request = request.id, "attempt");
                        let transport = self.transport.clone();
                        let id = request.id;
                        pending.push(Box::pin(async move {
                            let index = (to - 1) as usize;
                            (to, id, transport.request_to(index, request).await)
                        }));
                    }
                    ClerkOutput::Done(Ok(value)) => return Ok(value),
                    ClerkOutput::Done(Err(ClerkError::Refused(error))) => {
                        return Err(KvError::Refused(error));
                    }
                    ClerkOutput::Done(Err(ClerkError::Unknown(_))) if !self.heard_from_cluster => {
                        let tried: Vec<String> = self
                            .transport
                            .servers()
                            .iter()
                            .map(|s| format!("{}:{}", s.server_name, s.addr.port()))
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
