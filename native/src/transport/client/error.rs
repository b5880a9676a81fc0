//! Why a request failed, and how a QUIC or TLS failure maps onto it.

use std::net::SocketAddr;
use std::time::Duration;

use quinn::ConnectionError;

use crate::tls::CertError;
use crate::transport::error_code;

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
pub(super) fn classify(
    server: SocketAddr,
    error: &ConnectionError,
    during_connect: bool,
) -> ClientError {
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
