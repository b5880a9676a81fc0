//! A client of the cluster: requests and their answers over QUIC.
//!
//! The client keeps at most one connection per server, with one
//! bidirectional stream on it. Every request carries an id chosen by the
//! client; the server answers with the same id, in any order, so many
//! requests can be in flight on one stream at once. Requests waiting to be
//! written are gathered into one stream write, and so are answers on the
//! server side. One stream per request was measured as the alternative
//! (`tests/loopback/transport/throughput.rs`, release build, loopback, 2 cores): with
//! 64 requests in flight it reached about 24k round trips per second against
//! about 215k for ids on one stream, since every request costs a stream open,
//! a FIN and stream-credit updates.
//!
//! A request either gets its answer or fails with a [`ClientError`] saying
//! whether it may have been applied ([`ClientError::outcome_unknown`]). The
//! client never resends a request by itself: retries with the same session
//! sequence number belong to the layer above.
//!
//! - this module: [`Client`] and its [`ClientSettings`];
//! - `session`: one connection to one server, with its request stream;
//! - `error`: [`ClientError`], and how a QUIC or TLS failure maps onto it.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::frame::FrameCounters;
use super::{Answer, ServerAddress, TransportSettings, error_code};
use crate::tls::CertSet;

mod error;
mod session;

pub use error::ClientError;
use error::classify;
use session::{Session, SessionSlot};

/// How often a request checks whether its connection received anything.
const UNRESPONSIVE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// How waiting for an answer ended.
enum Wait<Resp> {
    Answer(Result<Result<Answer<Resp>, ClientError>, oneshot::error::RecvError>),
    TimedOut,
    /// The connection received nothing for this long after the request.
    Unresponsive(std::time::Duration),
}

/// How a [`Client`] behaves.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Time allowed for one request, from the moment it is queued to its
    /// answer.
    pub request_timeout: Duration,
    /// Transport tunables (frame size, batching, handshake timeout, keep-alive).
    pub transport: TransportSettings,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            request_timeout: Duration::from_secs(5),
            transport: TransportSettings::default(),
        }
    }
}

/// A client of the cluster: see the [module documentation](self).
pub struct Client<Req, Resp> {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    servers: Vec<ServerAddress>,
    sessions: Vec<SessionSlot<Req, Resp>>,
    /// Per server: it went silent (a request got nothing back, or a dial
    /// timed out) and has not completed a handshake since; dials to it get
    /// a short limit.
    suspects: Vec<AtomicBool>,
    preferred: AtomicUsize,
    next_request_id: AtomicU64,
    settings: ClientSettings,
    frames: Arc<FrameCounters>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.servers)
            .field("preferred", &self.preferred.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<Req, Resp> Client<Req, Resp>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// A client of `servers`, presenting the client certificate of `certs`.
    /// Connects lazily, at the first request.
    pub fn new(
        servers: Vec<ServerAddress>,
        certs: &CertSet,
        settings: ClientSettings,
    ) -> Result<Client<Req, Resp>, ClientError> {
        let config = certs.client_config()?;
        Self::with_tls_config(servers, config, settings)
    }

    /// A client with a TLS configuration of its own (for example
    /// [`CertSet::anonymous_client_config`]).
    pub fn with_tls_config(
        servers: Vec<ServerAddress>,
        mut config: quinn::ClientConfig,
        settings: ClientSettings,
    ) -> Result<Client<Req, Resp>, ClientError> {
        if servers.is_empty() {
            return Err(ClientError::NoServers);
        }
        config.transport_config(settings.transport.quic_transport_config());
        let bind: SocketAddr = if servers.iter().all(|server| server.addr.is_ipv4()) {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint =
            quinn::Endpoint::client(bind).map_err(|error| ClientError::Bind(error.to_string()))?;
        let suspects = servers.iter().map(|_| AtomicBool::new(false)).collect();
        let sessions = servers
            .iter()
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        Ok(Client {
            endpoint,
            config,
            servers,
            sessions,
            suspects,
            preferred: AtomicUsize::new(0),
            next_request_id: AtomicU64::new(1),
            settings,
            frames: Arc::new(FrameCounters::default()),
            _types: PhantomData,
        })
    }

    /// The server addresses, by index.
    pub fn servers(&self) -> &[ServerAddress] {
        &self.servers
    }

    /// The index of the server [`Client::request`] tries first.
    pub fn preferred_server(&self) -> usize {
        self.preferred.load(Ordering::Relaxed)
    }

    /// Makes [`Client::request`] try server `index` first (for example the
    /// leader named by a redirect).
    pub fn set_preferred_server(&self, index: usize) {
        if index < self.servers.len() {
            self.preferred.store(index, Ordering::Relaxed);
        }
    }

    /// Sends `request` to the preferred server. If it cannot be reached, the
    /// others are tried in turn (the request was not sent, so this is safe),
    /// and the first that answers becomes the preferred one.
    pub async fn request(&self, request: Req) -> Result<Resp, ClientError> {
        let first = self.preferred_server();
        let count = self.servers.len();
        let mut last_error = None;
        for offset in 0..count {
            let index = (first + offset) % count;
            match self.session(index).await {
                Ok(session) => {
                    if index != first {
                        self.set_preferred_server(index);
                    }
                    return self.request_on(&session, request).await;
                }
                Err(error) if error.try_another_server() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        // Invariant: `servers` is not empty (checked in the constructor), so
        // the loop ran at least once.
        Err(last_error.expect("at least one server was tried"))
    }

    /// Sends `request` to server `index`, without trying others.
    pub async fn request_to(&self, index: usize, request: Req) -> Result<Resp, ClientError> {
        let session = self.session(index).await?;
        self.request_on(&session, request).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for slot in &self.sessions {
            slot.lock().await.take();
        }
        self.endpoint.close(error_code::CLOSED, b"client done");
    }

    async fn request_on(
        &self,
        session: &Session<Req, Resp>,
        request: Req,
    ) -> Result<Resp, ClientError> {
        let server = session.server;
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (answer_sender, answer) = oneshot::channel();
        session
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id, answer_sender);
        let forget = || {
            session
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&request_id);
        };
        if session.outgoing.send((request_id, request)).is_err() {
            forget();
            return Err(self.failure_of(session));
        }
        match self.wait_for_answer(session, answer).await {
            Wait::TimedOut => {
                forget();
                Err(ClientError::Timeout {
                    server,
                    after: self.settings.request_timeout,
                })
            }
            Wait::Unresponsive(silence) => {
                forget();
                // Nothing came back, not even an acknowledgement: the
                // server is gone (killed, restarted, cut off). The next
                // request to it dials again instead of queueing behind
                // retransmissions that back off further each time.
                session
                    .connection
                    .close(error_code::CLOSED, b"server unresponsive");
                for (address, suspect) in self.servers.iter().zip(&self.suspects) {
                    if address.addr == server {
                        suspect.store(true, Ordering::Relaxed);
                    }
                }
                tracing::debug!(%server, ?silence, "server unresponsive; connection closed");
                Err(ClientError::ConnectionLost {
                    server,
                    reason: format!(
                        "nothing received for {} ms after the request was sent",
                        silence.as_millis()
                    ),
                })
            }
            Wait::Answer(answer) => self.decode_answer(session, answer),
        }
    }

    /// Waits for `answer` until the request timeout; gives up earlier if
    /// the connection receives nothing at all for
    /// [`TransportSettings::unresponsive_after`] (at least three round
    /// trips) after the request was sent. A live server acknowledges the
    /// request's packet within a round trip and the acknowledgement delay,
    /// however long the answer itself takes.
    async fn wait_for_answer(
        &self,
        session: &Session<Req, Resp>,
        mut answer: oneshot::Receiver<Result<Answer<Resp>, ClientError>>,
    ) -> Wait<Resp> {
        let sent = tokio::time::Instant::now();
        let deadline = sent + self.settings.request_timeout;
        let received_before = session.connection.stats().udp_rx.datagrams;
        let mut heard = false;
        // The first check comes after one period: most answers arrive
        // before it, and never pay for a look at the connection's counters.
        let mut check = tokio::time::interval_at(sent + UNRESPONSIVE_CHECK, UNRESPONSIVE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                result = &mut answer => return Wait::Answer(result),
                () = tokio::time::sleep_until(deadline) => return Wait::TimedOut,
                _ = check.tick(), if !heard => {
                    if session.connection.stats().udp_rx.datagrams != received_before {
                        heard = true;
                        continue;
                    }
                    let limit = self
                        .settings
                        .transport
                        .unresponsive_after
                        .max(session.connection.rtt() * 3);
                    let silence = sent.elapsed();
                    if silence >= limit {
                        return Wait::Unresponsive(silence);
                    }
                }
            }
        }
    }

    fn decode_answer(
        &self,
        session: &Session<Req, Resp>,
        answer: Result<Result<Answer<Resp>, ClientError>, oneshot::error::RecvError>,
    ) -> Result<Resp, ClientError> {
        let server = session.server;
        match answer {
            Err(_) => Err(self.failure_of(session)),
            Ok(Err(error)) => Err(error),
            Ok(Ok(answer)) => match answer {
                Answer::Response(response) => Ok(response),
                Answer::NotAnswered => Err(ClientError::NotAnswered { server }),
                Answer::UndecodableRequest => Err(ClientError::RequestUndecodable { server }),
                Answer::UnencodableResponse => Err(ClientError::ResponseUndecodable {
                    server,
                    reason: "the server could not encode its answer".into(),
                }),
            },
        }
    }

    fn failure_of(&self, session: &Session<Req, Resp>) -> ClientError {
        match session.connection.close_reason() {
            Some(error) => classify(session.server, &error, false),
            None => ClientError::ConnectionLost {
                server: session.server,
                reason: "request stream closed".into(),
            },
        }
    }

    /// The live session to server `index`, connecting if needed.
    async fn session(&self, index: usize) -> Result<Arc<Session<Req, Resp>>, ClientError> {
        let slot = self
            .sessions
            .get(index)
            .ok_or(ClientError::UnknownServer(index))?;
        let mut slot = slot.lock().await;
        if let Some(session) = slot.as_ref() {
            if session.is_usable() {
                return Ok(session.clone());
            }
        }
        *slot = None;
        let suspect = &self.suspects[index];
        let mut transport = self.settings.transport.clone();
        if suspect.load(Ordering::Relaxed) {
            // It went silent on its last connection: if it is back, a
            // handshake completes within a round trip; if not, the caller
            // learns it soon and can try another server (a follower's hint
            // may still name this one, the leader it last heard of).
            transport.connect_timeout = transport
                .connect_timeout
                .min(transport.unresponsive_after.max(transport.redial_after));
        }
        let connected = Session::connect(
            &self.endpoint,
            self.config.clone(),
            &self.servers[index],
            &transport,
            self.frames.clone(),
        )
        .await;
        // Only silence makes a suspect; an answer, even a refusal, clears it.
        suspect.store(
            matches!(&connected, Err(ClientError::Connect { .. })),
            Ordering::Relaxed,
        );
        let session = Arc::new(connected?);
        *slot = Some(session.clone());
        Ok(session)
    }
}

impl<Req, Resp> Drop for Client<Req, Resp> {
    fn drop(&mut self) {
        self.endpoint.close(error_code::CLOSED, b"client done");
    }
}
