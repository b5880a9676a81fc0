//! One connection to one server, with its one request stream: a writer task
//! that sends queued requests many per stream write, and a reader task that
//! hands each answer to the request waiting for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use quinn::{Connection, RecvStream, SendStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::ClientError;
use super::error::classify;
use crate::transport::dial::DialError;
use crate::transport::frame::{self, FrameCounters, FrameError, FrameReader};
use crate::transport::{Answer, ServerAddress, TransportSettings, error_code};

/// The connection slot of one server: empty until the first request, or
/// after the connection failed.
pub(super) type SessionSlot<Req, Resp> = tokio::sync::Mutex<Option<Arc<Session<Req, Resp>>>>;

pub(super) type Pending<Resp> =
    Mutex<HashMap<u64, oneshot::Sender<Result<Answer<Resp>, ClientError>>>>;

/// One connection to one server, with its request stream.
pub(super) struct Session<Req, Resp> {
    pub(super) server: SocketAddr,
    pub(super) connection: Connection,
    pub(super) outgoing: mpsc::UnboundedSender<(u64, Req)>,
    pub(super) pending: Arc<Pending<Resp>>,
    failed: Arc<AtomicBool>,
    tasks: [JoinHandle<()>; 2],
}

impl<Req, Resp> Session<Req, Resp> {
    /// Connects to the server at `address` and opens the request stream,
    /// with a writer and a reader task on it.
    pub(super) async fn connect(
        endpoint: &quinn::Endpoint,
        config: quinn::ClientConfig,
        address: &ServerAddress,
        transport: &TransportSettings,
        frames: Arc<FrameCounters>,
    ) -> Result<Session<Req, Resp>, ClientError>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        let server = address.addr;
        tracing::debug!(%server, "connecting to server");
        let connection = crate::transport::dial::dial(endpoint, &config, address, transport)
            .await
            .map_err(|error| match error {
                DialError::Refused(error) => classify(server, &error, true),
                other => ClientError::Connect {
                    server,
                    reason: other.to_string(),
                },
            })?;
        let (send, receive) = connection
            .open_bi()
            .await
            .map_err(|error| classify(server, &error, true))?;
        let pending: Arc<Pending<Resp>> = Arc::new(Mutex::new(HashMap::new()));
        let failed = Arc::new(AtomicBool::new(false));
        let (outgoing, request_queue) = mpsc::unbounded_channel();
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
                frames,
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

    /// Whether the connection still carries requests.
    pub(super) fn is_usable(&self) -> bool {
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
    tracing::debug!(%server, "connection to server lost: {error}");
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
        // With other requests in flight, the tasks that one answer batch
        // released may be queuing theirs right now (on a multi-threaded
        // runtime this task is woken by the first of them, often on another
        // worker): let them run first, so that they join this write. Without
        // it each request went out in a packet of its own, and the servers
        // paid per packet (see docs/BENCHMARKS.md, sharded native cluster).
        // A lone request is written at once.
        let others_in_flight = pending.lock().unwrap_or_else(PoisonError::into_inner).len() > 1;
        if others_in_flight {
            tokio::task::yield_now().await;
        }
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
