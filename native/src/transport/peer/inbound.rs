//! Accepted connections: every one must present a certificate from the
//! cluster CA, and its [`Role`] decides what it may do. A node may open
//! unidirectional peer streams, whose messages are delivered after a valid
//! hello; anyone may open request streams (see `serving`).

use std::sync::{Arc, PoisonError};

use distribkv_core::raft::NodeId;
use quinn::{Connection, RecvStream};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::serving::{ClientRequest, serve_request_stream};
use super::{Inner, bump};
use crate::tls::Role;
use crate::transport::frame::{FrameError, FrameReader};
use crate::transport::{PeerHello, error_code};

/// Where what arrives goes: peer messages and client requests.
pub(super) struct Acceptor<M, Req, Resp> {
    pub(super) inner: Arc<Inner<M>>,
    pub(super) peer_sender: mpsc::Sender<(NodeId, M)>,
    pub(super) request_sender: mpsc::Sender<ClientRequest<Req, Resp>>,
}

impl<M, Req, Resp> Clone for Acceptor<M, Req, Resp> {
    fn clone(&self) -> Self {
        Acceptor {
            inner: self.inner.clone(),
            peer_sender: self.peer_sender.clone(),
            request_sender: self.request_sender.clone(),
        }
    }
}

impl<M, Req, Resp> Acceptor<M, Req, Resp>
where
    M: DeserializeOwned + Send + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    /// Accepts every incoming connection and serves it in its own task.
    pub(super) async fn run(self) {
        while let Some(incoming) = self.inner.endpoint.accept().await {
            tokio::spawn(self.clone().serve_connection(incoming));
        }
    }

    /// Completes the handshake, tells the role, and serves the streams the
    /// other side opens.
    async fn serve_connection(self, incoming: quinn::Incoming) {
        let inner = &self.inner;
        let remote = incoming.remote_address();
        let connection = match incoming.await {
            Ok(connection) => connection,
            Err(error) => {
                bump(&inner.counters.connections_refused);
                // A client that closes before the handshake ends (it asked
                // every address and had its answer from another server)
                // is not a failure on this side.
                let closed_by_peer =
                    matches!(
                        &error,
                        quinn::ConnectionError::ConnectionClosed(close)
                            if close.error_code == quinn::TransportErrorCode::APPLICATION_ERROR
                    ) || matches!(&error, quinn::ConnectionError::ApplicationClosed(_));
                if closed_by_peer {
                    tracing::debug!(node = inner.node_id, %remote, %error, "the other side closed a connection during the handshake");
                } else {
                    tracing::warn!(node = inner.node_id, %remote, %error, "refused a connection during the handshake");
                }
                return;
            }
        };
        let role = connection
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| inner.roles.role_of(&chain));
        let Some(role) = role else {
            // Unreachable with the mutual-TLS server config, kept as a second lock.
            bump(&inner.counters.connections_refused);
            tracing::warn!(node = inner.node_id, %remote, "refused a connection without a cluster certificate");
            connection.close(
                error_code::NOT_AUTHORIZED,
                b"certificate not from this cluster",
            );
            return;
        };
        tracing::debug!(node = inner.node_id, %remote, ?role, "accepted a connection");
        loop {
            tokio::select! {
                stream = connection.accept_uni() => {
                    let Ok(stream) = stream else { return };
                    if role != Role::Node {
                        bump(&inner.counters.connections_refused);
                        tracing::warn!(node = inner.node_id, %remote, "refused a client certificate posing as a peer node");
                        connection.close(error_code::NOT_A_PEER, b"a client certificate cannot act as a peer node");
                        return;
                    }
                    tokio::spawn(read_peer_stream(inner.clone(), connection.clone(), stream, self.peer_sender.clone()));
                }
                stream = connection.accept_bi() => {
                    let Ok((send, receive)) = stream else { return };
                    tokio::spawn(serve_request_stream(
                        inner.clone(),
                        role,
                        remote,
                        send,
                        receive,
                        self.request_sender.clone(),
                    ));
                }
            }
        }
    }
}

/// Reads a peer stream: the hello, then messages delivered as
/// `(from, message)`.
async fn read_peer_stream<M: DeserializeOwned>(
    inner: Arc<Inner<M>>,
    connection: Connection,
    stream: RecvStream,
    peer_sender: mpsc::Sender<(NodeId, M)>,
) {
    let remote = connection.remote_address();
    let mut reader = FrameReader::new(
        stream,
        inner.settings.max_frame_size,
        inner.frames.clone(),
        format!("peer at {remote}"),
    );
    let hello: PeerHello = match reader.next_message().await {
        Ok(Some(hello)) => hello,
        Ok(None) => return,
        Err(error) => {
            close_bad_stream(&mut reader, &error);
            return;
        }
    };
    if let Err(reason) = check_hello(&inner, &hello) {
        bump(&inner.counters.connections_refused);
        tracing::warn!(node = inner.node_id, %remote, %reason, "refused a peer hello");
        connection.close(error_code::HELLO_REFUSED, reason.as_bytes());
        return;
    }
    let from = hello.node_id;
    let previous = inner
        .incarnations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(from, hello.incarnation);
    match previous {
        Some(previous) if previous != hello.incarnation => {
            tracing::info!(node = inner.node_id, peer = from, %remote, "peer restarted and reconnected");
            if let Some(link) = inner
                .links
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&from)
            {
                link.state.note_peer_restart();
            }
        }
        _ => tracing::debug!(node = inner.node_id, peer = from, %remote, "peer stream open"),
    }
    let received = inner
        .received_bytes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(from)
        .or_default()
        .clone();
    let mut counted = reader.bytes_read();
    received.fetch_add(counted, std::sync::atomic::Ordering::Relaxed);
    loop {
        match reader.next_message::<M>().await {
            Ok(Some(message)) => {
                bump(&inner.counters.messages_received);
                let read = reader.bytes_read();
                received.fetch_add(read - counted, std::sync::atomic::Ordering::Relaxed);
                counted = read;
                if peer_sender.send((from, message)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                close_bad_stream(&mut reader, &error);
                return;
            }
        }
    }
}

/// Why a hello is refused, if it is.
fn check_hello<M>(inner: &Inner<M>, hello: &PeerHello) -> Result<(), String> {
    if hello.cluster_id != inner.cluster_id.0 {
        return Err(format!(
            "cluster id {:016x} is not this cluster's ({})",
            hello.cluster_id, inner.cluster_id
        ));
    }
    if hello.node_id == inner.node_id {
        return Err(format!("node id {} is this node's own id", hello.node_id));
    }
    let known = inner
        .links
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(&hello.node_id);
    if !known {
        return Err(format!("node id {} is not a known peer", hello.node_id));
    }
    Ok(())
}

/// Stops reading a stream after a fatal framing error (a read error means the
/// stream or connection is already gone).
pub(super) fn close_bad_stream(reader: &mut FrameReader<RecvStream>, error: &FrameError) {
    if !matches!(error, FrameError::Read(_)) {
        let _ = reader.stream_mut().stop(error_code::BAD_FRAME);
    }
}
