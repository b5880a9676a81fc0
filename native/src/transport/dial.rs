//! Dialing a server or a peer: overlapping QUIC handshakes, a fresh one
//! every [`TransportSettings::redial_after`].
//!
//! A handshake whose first packet reaches a host where nothing listens yet
//! (a server restarting) is lost without a word: QUIC retransmits it after
//! its probe timeout, which starts at about 1 s before any round trip was
//! measured and doubles at each retry (1 s, then 3 s after the first send,
//! then 7 s). Measured on an all-node restart: a node whose first handshake
//! to a peer left 10 ms before the peer's socket existed connected a whole
//! second later. So a dial starts a new handshake every `redial_after`
//! while the earlier ones go on (on a slow link the first may still
//! complete), takes the first to complete and drops the rest, until
//! [`TransportSettings::connect_timeout`].

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{ServerAddress, TransportSettings};

/// Why a dial failed.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The handshake could not even start (bad address or name, endpoint
    /// closed).
    Start(quinn::ConnectError),
    /// The server answered and refused (TLS, transport or application
    /// error): trying again the same way would fail the same way.
    Refused(quinn::ConnectionError),
    /// No handshake completed within the connect timeout.
    TimedOut,
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Start(error) => error.fmt(f),
            DialError::Refused(error) => error.fmt(f),
            DialError::TimedOut => f.write_str("handshake timed out"),
        }
    }
}

/// Whether a failed handshake is an answer from the server (it refused)
/// rather than silence or a local matter.
fn is_refusal(error: &quinn::ConnectionError) -> bool {
    matches!(
        error,
        quinn::ConnectionError::TransportError(_)
            | quinn::ConnectionError::ConnectionClosed(_)
            | quinn::ConnectionError::ApplicationClosed(_)
            | quinn::ConnectionError::VersionMismatch
    )
}

/// Dials `address` with `config`: see the [module documentation](self).
pub(crate) async fn dial(
    endpoint: &quinn::Endpoint,
    config: &quinn::ClientConfig,
    address: &ServerAddress,
    settings: &TransportSettings,
) -> Result<quinn::Connection, DialError> {
    let deadline = Instant::now() + settings.connect_timeout;
    // Dropping the set (on success, on failure, or when the caller gives up)
    // aborts the handshakes still running, which closes them.
    let mut handshakes = JoinSet::new();
    loop {
        let connecting = endpoint
            .connect_with(config.clone(), address.addr, &address.server_name)
            .map_err(DialError::Start)?;
        handshakes.spawn(connecting);
        let next =
            (Instant::now() + settings.redial_after.max(Duration::from_millis(1))).min(deadline);
        loop {
            tokio::select! {
                Some(joined) = handshakes.join_next() => match joined {
                    Ok(Ok(connection)) => return Ok(connection),
                    Ok(Err(error)) if is_refusal(&error) => return Err(DialError::Refused(error)),
                    // Silence or a local failure of one handshake: the
                    // others, and the next, go on.
                    Ok(Err(_)) | Err(_) => {}
                },
                () = tokio::time::sleep_until(next) => break,
            }
        }
        if Instant::now() >= deadline {
            return Err(DialError::TimedOut);
        }
    }
}
