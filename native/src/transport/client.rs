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

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use quinn::{Connection, ConnectionError, RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::frame::{self, FrameCounters, FrameError, FrameReader};
use super::{Answer, ServerAddress, TransportSettings, error_code};
use crate::tls::{CertError, CertSet};

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

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No server address was given.
    #[error("no server address given")]
    NoServers,
    /// There is no server with this index.
    #[error("no server number {0}")]
    UnknownServer(usize),
    /// The certificates could not be loaded or used.
    #[error("client certificates: {0}")]
    Certificates(String),
    /// The local UDP socket could not be bound.
    #[error("cannot bind a UDP socket: {0}")]
    Bind(String),
    /// The server could not be reached or the handshake failed.
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The server refused this client's certificate (it is missing, or not
    /// issued by the cluster's CA).
    #[error("{server} refused this client's certificate ({alert}); is it from this cluster's CA?")]
    CertificateRefused {
        /// The server.
        server: SocketAddr,
        /// The TLS alert the server sent.
        alert: String,
    },
    /// The server's certificate is not trusted (not from the cluster CA, or
    /// not valid for the name dialed).
    #[error("{server} presented an untrusted certificate: {reason}")]
    ServerNotTrusted {
        /// The server.
        server: SocketAddr,
        /// Why it is not trusted.
        reason: String,
    },
    /// The connection was lost with the request in flight.
    #[error("connection to {server} lost: {reason}")]
    ConnectionLost {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from {server} within {after:?}")]
    Timeout {
        /// The server.
        server: SocketAddr,
        /// The timeout in force.
        after: Duration,
    },
    /// The server let go of the request without answering.
    #[error("{server} did not answer the request")]
    NotAnswered {
        /// The server.
        server: SocketAddr,
    },
    /// The server could not decode the request (it was not applied).
    #[error("{server} could not decode the request")]
    RequestUndecodable {
        /// The server.
        server: SocketAddr,
    },
    /// The server's answer could not be encoded or decoded.
    #[error("the answer from {server} could not be read: {reason}")]
    ResponseUndecodable {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The request could not be encoded (for example over the frame limit).
    #[error("cannot encode the request: {0}")]
    Encode(String),
}

impl ClientError {
    /// Whether the request may have been applied even though it failed.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ClientError::ConnectionLost { .. }
                | ClientError::Timeout { .. }
                | ClientError::NotAnswered { .. }
                | ClientError::ResponseUndecodable { .. }
        )
    }

    /// Whether trying another server may help (the request was certainly
    /// not applied, and the failure concerns this server only).
    pub fn try_another_server(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }
}

impl From<CertError> for ClientError {
    fn from(error: CertError) -> Self {
        ClientError::Certificates(error.to_string())
    }
}

/// Turns a quinn connection error into a [`ClientError`], recognising a TLS
/// refusal from either side.
fn classify(server: SocketAddr, error: &ConnectionError, during_connect: bool) -> ClientError {
    match error {
        ConnectionError::ConnectionClosed(close) => {
            if let Some(alert) = tls_alert(u64::from(close.error_code)) {
                return ClientError::CertificateRefused { server, alert };
            }
        }
        ConnectionError::TransportError(error) if tls_alert(u64::from(error.code)).is_some() => {
            return ClientError::ServerNotTrusted {
                server,
                reason: error.to_string(),
            };
        }
        ConnectionError::ApplicationClosed(close)
            if close.error_code == error_code::NOT_AUTHORIZED =>
        {
            return ClientError::CertificateRefused {
                server,
                alert: String::from_utf8_lossy(&close.reason).into_owned(),
            };
        }
        _ => {}
    }
    if during_connect {
        ClientError::Connect {
            server,
            reason: error.to_string(),
        }
    } else {
        ClientError::ConnectionLost {
            server,
            reason: error.to_string(),
        }
    }
}

/// The TLS alert carried by a QUIC CRYPTO_ERROR code (0x100-0x1ff), named.
fn tls_alert(code: u64) -> Option<String> {
    if !(0x100..=0x1ff).contains(&code) {
        return None;
    }
    let alert = rustls::AlertDescription::from((code - 0x100) as u8);
    Some(format!("TLS alert {alert:?}"))
}

/// The connection slot of one server: empty until the first request, or
/// after the connection failed.
type SessionSlot<Req, Resp> = tokio::sync::Mutex<Option<Arc<Session<Req, Resp>>>>;

type Pending<Resp> = Mutex<HashMap<u64, oneshot::Sender<Result<Answer<Resp>, ClientError>>>>;

/// One connection to one server, with its request stream.
struct Session<Req, Resp> {
    server: SocketAddr,
    connection: Connection,
    outgoing: mpsc::UnboundedSender<(u64, Req)>,
    pending: Arc<Pending<Resp>>,
    failed: Arc<AtomicBool>,
    tasks: [JoinHandle<()>; 2],
}

impl<Req, Resp> Session<Req, Resp> {
    fn is_usable(&self) -> bool {
        !self.failed.load(Ordering::Acquire) && self.connection.close_reason().is_none()
    }
}

impl<Req, Resp> Drop for Session<Req, Resp> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.connection.close(error_code::CLOSED, b"client done");
    }
}

/// A client of the cluster: see the [module documentation](self).
pub struct Client<Req, Resp> {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    servers: Vec<ServerAddress>,
    sessions: Vec<SessionSlot<Req, Resp>>,
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
        let sessions = servers
            .iter()
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        Ok(Client {
            endpoint,
            config,
            servers,
            sessions,
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
        match tokio::time::timeout(self.settings.request_timeout, answer).await {
            Err(_) => {
                forget();
                Err(ClientError::Timeout {
                    server,
                    after: self.settings.request_timeout,
                })
            }
            Ok(Err(_)) => Err(self.failure_of(session)),
            Ok(Ok(Err(error))) => Err(error),
            Ok(Ok(Ok(answer))) => match answer {
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
        let session = Arc::new(self.connect(&self.servers[index]).await?);
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn connect(&self, address: &ServerAddress) -> Result<Session<Req, Resp>, ClientError> {
        let server = address.addr;
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), server, &address.server_name)
            .map_err(|error| ClientError::Connect {
                server,
                reason: error.to_string(),
            })?;
        let connection = tokio::time::timeout(self.settings.transport.connect_timeout, connecting)
            .await
            .map_err(|_| ClientError::Connect {
                server,
                reason: "handshake timed out".into(),
            })?
            .map_err(|error| classify(server, &error, true))?;
        let (send, receive) = connection
            .open_bi()
            .await
            .map_err(|error| classify(server, &error, true))?;
        let pending: Arc<Pending<Resp>> = Arc::new(Mutex::new(HashMap::new()));
        let failed = Arc::new(AtomicBool::new(false));
        let (outgoing, request_queue) = mpsc::unbounded_channel();
        let transport = &self.settings.transport;
        let writer = tokio::spawn(write_requests(
            send,
            request_queue,
            pending.clone(),
            failed.clone(),
            connection.clone(),
            transport.max_frame_size,
            transport.max_batch_bytes,
        ));
        let reader = tokio::spawn(read_answers(
            FrameReader::new(
                receive,
                transport.max_frame_size,
                self.frames.clone(),
                format!("server {server}"),
            ),
            pending.clone(),
            failed.clone(),
            connection.clone(),
        ));
        tracing::debug!(%server, "connected to server");
        Ok(Session {
            server,
            connection,
            outgoing,
            pending,
            failed,
            tasks: [writer, reader],
        })
    }
}

impl<Req, Resp> Drop for Client<Req, Resp> {
    fn drop(&mut self) {
        self.endpoint.close(error_code::CLOSED, b"client done");
    }
}

/// Fails every pending request of a session with the connection's error.
fn fail_session<Resp>(
    connection: &Connection,
    pending: &Pending<Resp>,
    failed: &AtomicBool,
    fallback: String,
) {
    failed.store(true, Ordering::Release);
    let server = connection.remote_address();
    let error = match connection.close_reason() {
        Some(error) => classify(server, &error, false),
        None => ClientError::ConnectionLost {
            server,
            reason: fallback,
        },
    };
    let waiting: Vec<_> = pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain()
        .collect();
    for (_, answer) in waiting {
        let _ = answer.send(Err(error.clone()));
    }
}

/// Writes queued requests, many per stream write.
async fn write_requests<Req: Serialize, Resp>(
    mut send: SendStream,
    mut request_queue: mpsc::UnboundedReceiver<(u64, Req)>,
    pending: Arc<Pending<Resp>>,
    failed: Arc<AtomicBool>,
    connection: Connection,
    max_frame_size: usize,
    max_batch_bytes: usize,
) {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    while let Some(first) = request_queue.recv().await {
        frame::encode_batch(
            first,
            || request_queue.try_recv().ok(),
            &mut buffer,
            (max_frame_size, max_batch_bytes),
            |_, (request_id, _), error| {
                let waiting = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&request_id);
                if let Some(answer) = waiting {
                    let _ = answer.send(Err(ClientError::Encode(error.to_string())));
                }
            },
        );
        if buffer.is_empty() {
            continue;
        }
        if let Err(error) = send.write_chunk(buffer.split().freeze()).await {
            fail_session(&connection, &pending, &failed, error.to_string());
            return;
        }
    }
    let _ = send.finish();
}

/// Reads answers and hands each to the request waiting for it.
async fn read_answers<Resp: DeserializeOwned>(
    mut reader: FrameReader<RecvStream>,
    pending: Arc<Pending<Resp>>,
    failed: Arc<AtomicBool>,
    connection: Connection,
) {
    let server = connection.remote_address();
    loop {
        let (request_id, answer) = match reader.next_tagged::<Answer<Resp>>().await {
            Ok(Some(tagged)) => tagged,
            Ok(None) => {
                fail_session(
                    &connection,
                    &pending,
                    &failed,
                    "server closed the stream".into(),
                );
                return;
            }
            Err(error) => {
                if !matches!(error, FrameError::Read(_)) {
                    let _ = reader.stream_mut().stop(error_code::BAD_FRAME);
                }
                fail_session(&connection, &pending, &failed, error.to_string());
                return;
            }
        };
        let answer = answer.map_err(|error| ClientError::ResponseUndecodable {
            server,
            reason: error.to_string(),
        });
        let waiting = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request_id);
        if let Some(waiting) = waiting {
            let _ = waiting.send(answer);
        }
    }
}
