//! Cluster certificates and the mutual-TLS configuration of every QUIC
//! connection.
//!
//! A cluster has one certificate authority (CA). Everything else is issued by
//! it:
//!
//! | file              | what it is                                                         |
//! |-------------------|--------------------------------------------------------------------|
//! | `ca-cert.pem`     | the cluster CA certificate; every node and client trusts only it   |
//! | `ca-key.pem`      | the CA private key (mode 0600), kept to issue more certificates    |
//! | `node-cert.pem`   | the node certificate, shared by every node: server *and* client auth |
//! | `node-key.pem`    | its private key (mode 0600)                                        |
//! | `client-cert.pem` | the client certificate: client auth only                          |
//! | `client-key.pem`  | its private key (mode 0600)                                        |
//!
//! Roles are told apart by extended key usage: the node certificate carries
//! both `serverAuth` and `clientAuth`, the client certificate only
//! `clientAuth`. A connection whose certificate does not verify as a *server*
//! certificate against the CA is therefore a client and may never act as a
//! peer node ([`CertSet::role_of`]).
//!
//! The [`ClusterId`] is derived from the CA certificate, so every node and
//! client of one cluster agrees on it without configuration, and a data folder
//! or a peer from another cluster can be recognised and refused.
//!
//! Only one crypto provider is compiled in (ring) and it is passed explicitly to
//! every rustls builder.
//!
//! - [`authority`]: the CA, issuing certificates, and [`generate`];
//! - [`cert_set`]: a certificate folder loaded into [`CertSet`], and the QUIC
//!   configurations and node secrets made from it;
//! - [`verify`]: telling a connection's [`Role`] from what it presented;
//! - `files`: reading and writing the PEM files.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub mod authority;
pub mod cert_set;
mod files;
pub mod verify;

pub use authority::{CertificateAuthority, GeneratedCerts, IssuedCertificate, generate};
pub use cert_set::CertSet;
pub use verify::RoleVerifier;

/// File name of the cluster CA certificate.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// File name of the cluster CA private key.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// File name of the node certificate (server and client authentication).
pub const NODE_CERT_FILE: &str = "node-cert.pem";
/// File name of the node private key.
pub const NODE_KEY_FILE: &str = "node-key.pem";
/// File name of the client certificate (client authentication only).
pub const CLIENT_CERT_FILE: &str = "client-cert.pem";
/// File name of the client private key.
pub const CLIENT_KEY_FILE: &str = "client-key.pem";

/// The ALPN protocol every distribKV connection negotiates.
pub const ALPN_PROTOCOL: &[u8] = b"distribkv/1";

/// Names put in the node certificate when no host is given.
pub const DEFAULT_NODE_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// An error while generating, writing, reading or using certificates. Every
/// variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file that is needed does not exist.
    #[error("certificate file {path} is missing")]
    Missing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{path} is not a valid {expected}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the file should contain ("PEM certificate", "PEM private key", ...).
        expected: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating refuses to overwrite an existing file (a second CA would
    /// split the cluster in two).
    #[error("{path} already exists; refusing to overwrite it")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Unwritable {
        /// The file or folder.
        path: PathBuf,
        /// Why it could not be written.
        source: io::Error,
    },
    /// A host name or IP address cannot be put in a certificate.
    #[error("invalid host name {host:?} for a certificate: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// Why it was refused.
        reason: String,
    },
    /// Certificate generation failed inside rcgen.
    #[error("certificate generation failed: {0}")]
    Generation(#[from] rcgen::Error),
    /// The loaded files do not make a usable TLS configuration (for example
    /// a key that does not match its certificate).
    #[error("TLS configuration from {dir}: {reason}")]
    Config {
        /// The certificate folder.
        dir: PathBuf,
        /// What rustls or quinn refused.
        reason: String,
    },
}

/// Identifies one cluster: the first 8 bytes (big-endian) of the SHA-256 of
/// its CA certificate (DER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u64);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl ClusterId {
    /// The cluster id of the cluster whose CA certificate is `ca_cert_der`.
    pub fn from_ca_certificate(ca_cert_der: &[u8]) -> ClusterId {
        let digest = sha256(ca_cert_der);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        ClusterId(u64::from_be_bytes(first))
    }
}

/// What the certificate presented on a connection allows it to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A cluster node: may send Raft messages and client requests.
    Node,
    /// A client: may send client requests only.
    Client,
}

/// The one crypto provider of this crate (ring), passed explicitly to every
/// rustls builder so that no process-wide default is needed.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of `data`, from the ring provider's TLS 1.3 suite.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let hash = match suite {
        rustls::SupportedCipherSuite::Tls13(suite) => suite.common.hash_provider.hash(data),
        // Invariant: TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite.
        _ => unreachable!("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 cipher suite"),
    };
    let mut digest = [0u8; 32];
    digest.copy_from_slice(hash.as_ref());
    digest
}

#[cfg(test)]
mod tests;
