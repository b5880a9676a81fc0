//! QUIC transport between nodes and from clients.
//!
//! - [`frame`]: the one length-delimited, versioned frame format of every
//!   stream.
//! - [`peer`]: a node's endpoint. It keeps one long-lived connection and one
//!   unidirectional stream to each peer for its outgoing Raft messages, and
//!   accepts connections from peers and clients, delivering what arrives on
//!   tokio channels.
//! - [`client`]: a client of the cluster, many concurrent requests over one
//!   connection per server.
//!
//! # Streams and what travels on them
//!
//! | stream                         | opened by | frames                                                    |
//! |--------------------------------|-----------|-----------------------------------------------------------|
//! | unidirectional, one per link   | a node    | one [`PeerHello`], then peer messages `M`                 |
//! | bidirectional, one per client  | anyone    | requests `(u64 id, Req)` in; answers `(u64 id, Answer<Resp>)` out |
//!
//! Only a connection whose certificate is a node certificate
//! ([`crate::tls::Role::Node`]) may open a unidirectional stream; a client
//! certificate that tries is refused with [`error_code::NOT_A_PEER`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distribkv_core::raft::NodeId;
use serde::{Deserialize, Serialize};

pub mod client;
mod dial;
pub mod frame;
pub mod peer;

pub use client::{Client, ClientError, ClientSettings};
pub use peer::{
    Bound, ClientRequest, Inbound, PeerAddress, PeerTraffic, PeerTransport, PeerTransportConfig,
    ReplyHandle, SendOutcome, TransportError, TransportStats,
};

/// QUIC application error codes used to close connections and streams.
pub mod error_code {
    use quinn::VarInt;

    /// Orderly close (shutdown, reconnect, client done).
    pub const CLOSED: VarInt = VarInt::from_u32(0);
    /// The presented certificate is not from this cluster's CA.
    pub const NOT_AUTHORIZED: VarInt = VarInt::from_u32(1);
    /// A client certificate tried to act as a peer node.
    pub const NOT_A_PEER: VarInt = VarInt::from_u32(2);
    /// The peer's hello was refused (other cluster, own node id, unknown id).
    pub const HELLO_REFUSED: VarInt = VarInt::from_u32(3);
    /// The stream carried something that is not a valid frame; only that
    /// stream is closed.
    pub const BAD_FRAME: VarInt = VarInt::from_u32(4);
}

/// The first frame of every peer stream: who is talking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHello {
    /// The sender's cluster id ([`crate::tls::ClusterId`]); must equal the
    /// receiver's.
    pub cluster_id: u64,
    /// The sender's node id; must be a known peer of the receiver, and not
    /// the receiver itself.
    pub node_id: NodeId,
    /// A random number drawn when the sender's transport started: a new
    /// value means the peer restarted.
    pub incarnation: u64,
}

/// What the server sends back for one client request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer<Resp> {
    /// The server's response.
    Response(Resp),
    /// The server let go of the request without answering (outcome unknown).
    NotAnswered,
    /// The request did not decode on the server; it was not applied.
    UndecodableRequest,
    /// The response could not be encoded (too large); outcome unknown.
    UnencodableResponse,
}

/// Tunables of the transport, shared by nodes and clients.
#[derive(Debug, Clone)]
pub struct TransportSettings {
    /// Largest frame payload accepted or sent.
    pub max_frame_size: usize,
    /// Outgoing messages queued per peer before new ones are dropped.
    pub peer_queue_capacity: usize,
    /// Capacity of each inbound channel (peer messages, client requests);
    /// when full, reading from the network pauses (QUIC flow control pushes
    /// back on the sender).
    pub inbound_capacity: usize,
    /// Frames are gathered into one stream write up to about this many bytes.
    pub max_batch_bytes: usize,
    /// First reconnect delay after a failure.
    pub reconnect_min: Duration,
    /// Longest reconnect delay (the delay doubles up to it, with jitter).
    pub reconnect_max: Duration,
    /// Time allowed for connecting (handshakes, see `redial_after`).
    pub connect_timeout: Duration,
    /// While connecting, a fresh handshake is started this often, the
    /// earlier ones going on: a handshake sent before the other side's
    /// socket existed would otherwise wait out QUIC's retransmission
    /// timeout (about 1 s, then doubling).
    pub redial_after: Duration,
    /// A request whose connection has received nothing at all (not even an
    /// acknowledgement) for this long after it was sent fails, and the
    /// connection is closed, so the next request dials again; the limit is
    /// at least three round trips of the connection.
    pub unresponsive_after: Duration,
    /// An outgoing peer link whose connection has received nothing (not
    /// even an acknowledgement) for this long after the link sent
    /// something is dropped and dialled again; the limit is at least three
    /// round trips of the connection. After a blackout (a partition, a
    /// paused peer) QUIC would otherwise send only probes, at intervals
    /// that double with the silence: a link could stay dead for seconds
    /// after the network healed. A Raft server sets it beyond its leaders'
    /// CheckQuorum step-down ([`TransportSettings::for_check_quorum`]).
    pub peer_silence_limit: Duration,
    /// Interval of QUIC keep-alive pings on idle connections.
    pub keep_alive: Duration,
    /// A connection silent for this long is considered dead.
    pub idle_timeout: Duration,
    /// Requests of one client stream in flight at the server (delivered but
    /// not answered) before the server stops reading that stream.
    pub client_in_flight_limit: usize,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            peer_queue_capacity: 8192,
            inbound_capacity: 8192,
            max_batch_bytes: 256 * 1024,
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            redial_after: Duration::from_millis(250),
            unresponsive_after: Duration::from_millis(300),
            peer_silence_limit: Duration::from_millis(1500),
            keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
            client_in_flight_limit: 4096,
        }
    }
}

impl TransportSettings {
    /// The defaults, for a Raft server whose leaders step down after
    /// hearing no majority for `check_quorum`: a peer link gives up a
    /// silent connection only a quarter later (1.5 s at the defaults). A
    /// leader that hears nobody hands over with `TimeoutNow` when it steps
    /// down; dropping its links before then would lose that message, and
    /// its followers would wait out an election timeout instead (measured
    /// in a soak: 1.85 s median to the first write against 1.33 s).
    pub fn for_check_quorum(check_quorum: Duration) -> TransportSettings {
        let defaults = TransportSettings::default();
        TransportSettings {
            peer_silence_limit: defaults.peer_silence_limit.max(check_quorum * 5 / 4),
            ..defaults
        }
    }

    /// The QUIC transport parameters these settings call for.
    pub(crate) fn quic_transport_config(&self) -> Arc<quinn::TransportConfig> {
        let mut config = quinn::TransportConfig::default();
        config.keep_alive_interval(Some(self.keep_alive));
        // An idle timeout beyond QUIC's range falls back to no timeout: keep
        // alives still detect a dead peer through loss detection.
        config.max_idle_timeout(quinn::IdleTimeout::try_from(self.idle_timeout).ok());
        config.max_concurrent_uni_streams(quinn::VarInt::from_u32(64));
        config.max_concurrent_bidi_streams(quinn::VarInt::from_u32(256));
        Arc::new(config)
    }
}

/// Where a server listens, and the name its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// UDP address.
    pub addr: SocketAddr,
    /// Name checked against the server's certificate (a DNS name or an IP
    /// address as text).
    pub server_name: String,
}

impl ServerAddress {
    /// An address whose certificate is checked against its IP address.
    pub fn new(addr: SocketAddr) -> ServerAddress {
        ServerAddress {
            addr,
            server_name: addr.ip().to_string(),
        }
    }

    /// An address whose certificate is checked against `server_name`.
    pub fn with_name(addr: SocketAddr, server_name: impl Into<String>) -> ServerAddress {
        ServerAddress {
            addr,
            server_name: server_name.into(),
        }
    }
}

/// Delay before the next reconnect attempt: doubles from a minimum to a cap,
/// with jitter (each delay is drawn in `[d/2, d]`), seeded by the caller.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    rng: distribkv_core::rng::Rng,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
            rng: distribkv_core::rng::Rng::new(seed),
        }
    }

    /// Forgets past failures (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay to wait after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.min.saturating_mul(factor).min(self.max);
        let ceiling_micros = ceiling.as_micros().max(2) as u64;
        let micros = self.rng.range_inclusive(ceiling_micros / 2, ceiling_micros);
        Duration::from_micros(micros)
    }
}

/// A random `u64` from the crypto provider (seeds and incarnations).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if crate::tls::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        // No system randomness: fall back to the clock, good enough for
        // jitter and restart detection.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0);
        return nanos ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_links_outlast_the_check_quorum_step_down() {
        // The servers' defaults: CheckQuorum after 2 × (500 + 100) ms.
        let settings = TransportSettings::for_check_quorum(Duration::from_millis(1200));
        assert_eq!(settings.peer_silence_limit, Duration::from_millis(1500));
        // Longer timeouts: a quarter beyond the step-down.
        let settings = TransportSettings::for_check_quorum(Duration::from_secs(4));
        assert_eq!(settings.peer_silence_limit, Duration::from_secs(5));
        // Shorter ones never go under the default.
        let settings = TransportSettings::for_check_quorum(Duration::from_millis(100));
        assert_eq!(settings.peer_silence_limit, Duration::from_millis(1500));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(300), 7);
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        for (attempt, delay) in delays.iter().enumerate() {
            let ceiling =
                Duration::from_millis(10 * (1 << attempt)).min(Duration::from_millis(300));
            assert!(
                *delay <= ceiling && *delay >= ceiling / 2,
                "{attempt}: {delay:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(10));
    }
}
