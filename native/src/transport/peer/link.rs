//! Outgoing links: one task per peer owns its queue, dials the peer, opens
//! one unidirectional stream, writes a [`PeerHello`], then writes messages,
//! everything already queued in one stream write. When the connection is
//! lost, or silent after a send for longer than
//! [`TransportSettings::peer_silence_limit`], it reconnects with
//! exponential back-off (capped, jittered); while it waits, queued and new
//! messages are dropped.
//!
//! [`TransportSettings::peer_silence_limit`]: crate::transport::TransportSettings::peer_silence_limit

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn::{Connection, SendStream};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Inner, PeerAddress, bump};
use crate::transport::frame;
use crate::transport::{Backoff, PeerHello, error_code};

/// The state of the link to one peer, shared by its task and the senders.
#[derive(Debug)]
pub(super) struct LinkState {
    pub(super) address: PeerAddress,
    /// False while the link waits to reconnect after a failure: sends are
    /// dropped at once instead of queued.
    pub(super) reachable: AtomicBool,
    /// True while a connection with a stream is up.
    pub(super) connected: AtomicBool,
    /// Bytes of messages written to the peer.
    pub(super) sent_bytes: AtomicU64,
    /// The connection's latest round-trip estimate, microseconds (0: none yet).
    pub(super) rtt_micros: AtomicU64,
    /// How many times a hello from the peer showed a new incarnation (it
    /// restarted), counted by the inbound side.
    pub(super) peer_restarts: AtomicU64,
    /// Woken when `peer_restarts` grows.
    pub(super) peer_restarted: tokio::sync::Notify,
}

impl LinkState {
    /// The peer restarted (a hello with a new incarnation arrived): a
    /// connection made before that goes to a process that no longer exists.
    /// The link drops it and dials at once. Left alone, it would learn
    /// only from a stateless reset, drawn by its next packet; but with its
    /// old packets unacknowledged filling the congestion window, only
    /// probes go out, at intervals that double with the silence (measured
    /// in a soak: a follower's link to a restarted peer stayed dead 6.7 s,
    /// its pre-votes and votes lost, and the two live nodes could not elect
    /// a leader until the third came back).
    pub(super) fn note_peer_restart(&self) {
        self.peer_restarts.fetch_add(1, Ordering::Relaxed);
        self.peer_restarted.notify_one();
    }
}

/// The sending side of one peer's link: its queue, state and task.
pub(super) struct Link<M> {
    pub(super) queue: mpsc::Sender<M>,
    pub(super) state: Arc<LinkState>,
    pub(super) task: JoinHandle<()>,
}

/// Why a link's connection ended.
enum LinkEnd {
    /// The peer was removed (its queue closed).
    Removed,
    /// The connection or stream failed.
    Lost(String),
}

/// The task of one outgoing link: connect, pump, reconnect with back-off.
pub(super) async fn run_link<M: Serialize>(
    inner: Arc<Inner<M>>,
    state: Arc<LinkState>,
    mut queue: mpsc::Receiver<M>,
) {
    let settings = &inner.settings;
    let peer = state.address.id;
    let mut backoff = Backoff::new(
        settings.reconnect_min,
        settings.reconnect_max,
        crate::transport::random_u64(),
    );
    let mut failures_logged = false;
    loop {
        let restarts_before = state.peer_restarts.load(Ordering::Relaxed);
        match dial(&inner, &state.address).await {
            Ok((connection, stream)) => {
                bump(&inner.counters.connections_established);
                state.reachable.store(true, Ordering::Relaxed);
                state.connected.store(true, Ordering::Relaxed);
                backoff.reset();
                tracing::info!(node = inner.node_id, peer, "connected to peer");
                failures_logged = false;
                let end = pump(
                    &inner,
                    &state,
                    &connection,
                    stream,
                    &mut queue,
                    restarts_before,
                )
                .await;
                state.connected.store(false, Ordering::Relaxed);
                match end {
                    LinkEnd::Removed => {
                        connection.close(error_code::CLOSED, b"peer removed");
                        return;
                    }
                    LinkEnd::Lost(reason) => {
                        tracing::info!(node = inner.node_id, peer, %reason, "link to peer lost");
                        connection.close(error_code::CLOSED, b"reconnecting");
                    }
                }
            }
            Err(reason) => {
                if failures_logged {
                    tracing::debug!(node = inner.node_id, peer, %reason, "peer still unreachable");
                } else {
                    tracing::warn!(node = inner.node_id, peer, %reason, "cannot reach peer");
                    failures_logged = true;
                }
            }
        }
        state.reachable.store(false, Ordering::Relaxed);
        let delay = backoff.next_delay();
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        // While waiting, what is queued cannot be delivered: drop it. A
        // hello from the peer's new incarnation ends the wait: it is up.
        loop {
            tokio::select! {
                () = &mut wait => break,
                () = state.peer_restarted.notified() => {
                    backoff.reset();
                    break;
                }
                message = queue.recv() => match message {
                    Some(_) => bump(&inner.counters.dropped_unreachable),
                    None => return,
                },
            }
        }
        state.reachable.store(true, Ordering::Relaxed);
    }
}

/// Connects to a peer, opens the message stream and sends the hello.
async fn dial<M>(inner: &Inner<M>, peer: &PeerAddress) -> Result<(Connection, SendStream), String> {
    let config = inner
        .dial_config
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let connection =
        crate::transport::dial::dial(&inner.endpoint, &config, &peer.address, &inner.settings)
            .await
            .map_err(|error| error.to_string())?;
    let mut stream = connection
        .open_uni()
        .await
        .map_err(|error| error.to_string())?;
    let hello = PeerHello {
        cluster_id: inner.cluster_id.0,
        node_id: inner.node_id,
        incarnation: inner.incarnation,
    };
    let hello = frame::encode_to_bytes(&hello, inner.settings.max_frame_size)
        .map_err(|error| error.to_string())?;
    stream
        .write_chunk(hello)
        .await
        .map_err(|error| error.to_string())?;
    Ok((connection, stream))
}

/// How often a link looks at its connection's receive counter.
const SILENCE_CHECK: Duration = Duration::from_millis(100);

/// Watches one connection for silence after a send: sent at `since`, and
/// nothing received since (see [`TransportSettings::peer_silence_limit`]).
///
/// [`TransportSettings::peer_silence_limit`]: crate::transport::TransportSettings::peer_silence_limit
struct Silence {
    limit: Duration,
    received: u64,
    since: Option<Instant>,
}

impl Silence {
    fn new(connection: &Connection, limit: Duration) -> Silence {
        Silence {
            limit,
            received: connection.stats().udp_rx.datagrams,
            since: None,
        }
    }

    /// Something was written: from now on an answer is due.
    fn sent(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }

    /// How long the connection has been silent since a send, if that is
    /// beyond the limit (at least three round trips).
    fn overdue(&mut self, connection: &Connection) -> Option<Duration> {
        let received = connection.stats().udp_rx.datagrams;
        if received != self.received {
            self.received = received;
            self.since = None;
            return None;
        }
        let silence = self.since?.elapsed();
        (silence >= self.limit.max(connection.rtt() * 3)).then_some(silence)
    }
}

/// The reason a link gives up a silent connection.
fn silent(silence: Duration) -> LinkEnd {
    LinkEnd::Lost(format!(
        "the peer acknowledged nothing for {} ms after a send",
        silence.as_millis()
    ))
}

/// Writes queued messages to the stream, many per write, until the
/// connection fails, falls silent after a send, or the peer is removed.
async fn pump<M: Serialize>(
    inner: &Inner<M>,
    state: &LinkState,
    connection: &Connection,
    mut stream: SendStream,
    queue: &mut mpsc::Receiver<M>,
    restarts_before: u64,
) -> LinkEnd {
    let settings = &inner.settings;
    let counters = &inner.counters;
    let mut buffer = BytesMut::with_capacity(settings.max_batch_bytes);
    let mut silence = Silence::new(connection, settings.peer_silence_limit);
    let mut check = tokio::time::interval(SILENCE_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            biased;
            message = queue.recv() => match message {
                Some(message) => message,
                None => return LinkEnd::Removed,
            },
            error = connection.closed() => return LinkEnd::Lost(error.to_string()),
            () = state.peer_restarted.notified() => {
                if state.peer_restarts.load(Ordering::Relaxed) == restarts_before {
                    continue; // A restart this connection already reached.
                }
                return LinkEnd::Lost("the peer restarted".into());
            }
            _ = check.tick() => match silence.overdue(connection) {
                Some(silent_for) => return silent(silent_for),
                None => continue,
            },
        };
        let batched = frame::encode_batch(
            first,
            || queue.try_recv().ok(),
            &mut buffer,
            (settings.max_frame_size, settings.max_batch_bytes),
            |_, _, error| {
                bump(&counters.dropped_unencodable);
                tracing::error!(node = inner.node_id, %error, "dropped an outgoing message");
            },
        );
        if buffer.is_empty() {
            continue;
        }
        let chunk = buffer.split().freeze();
        let length = chunk.len() as u64;
        // A write waits while the stream's flow-control window is full,
        // which a dead connection never reopens: keep watching meanwhile.
        let write = stream.write_chunk(chunk);
        tokio::pin!(write);
        loop {
            tokio::select! {
                result = &mut write => match result {
                    Ok(()) => break,
                    Err(error) => return LinkEnd::Lost(error.to_string()),
                },
                _ = check.tick() => {
                    if let Some(silent_for) = silence.overdue(connection) {
                        return silent(silent_for);
                    }
                }
            }
        }
        silence.sent();
        state.sent_bytes.fetch_add(length, Ordering::Relaxed);
        state
            .rtt_micros
            .store(connection.rtt().as_micros() as u64, Ordering::Relaxed);
        counters.messages_sent.fetch_add(batched, Ordering::Relaxed);
        bump(&counters.batches_written);
    }
}
