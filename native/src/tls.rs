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

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};

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

/// Common name of the cluster CA. Issuing later certificates rebuilds the
/// issuer from it, so it must never change.
const CA_COMMON_NAME: &str = "distribKV cluster CA";
/// Organization written into every distribKV certificate.
const ORGANIZATION: &str = "distribKV";
/// Common name of the node certificate.
const NODE_COMMON_NAME: &str = "distribKV node";
/// Common name of the client certificate.
const CLIENT_COMMON_NAME: &str = "distribKV client";

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

/// Paths of the files written by [`generate`].
#[derive(Debug, Clone)]
pub struct GeneratedCerts {
    /// The CA certificate.
    pub ca_cert: PathBuf,
    /// The CA private key.
    pub ca_key: PathBuf,
    /// The node certificate.
    pub node_cert: PathBuf,
    /// The node private key.
    pub node_key: PathBuf,
    /// The client certificate.
    pub client_cert: PathBuf,
    /// The client private key.
    pub client_key: PathBuf,
    /// The cluster id derived from the new CA.
    pub cluster_id: ClusterId,
}

/// Creates a new cluster CA, a node certificate for `hosts` (default
/// [`DEFAULT_NODE_HOSTS`] when empty) and a client certificate, and writes
/// them as PEM files into `out_dir` (created if needed). Keys are written with
/// mode 0600. Refuses to overwrite any existing file.
pub fn generate(out_dir: &Path, hosts: &[String]) -> Result<GeneratedCerts, CertError> {
    let paths = GeneratedCerts {
        ca_cert: out_dir.join(CA_CERT_FILE),
        ca_key: out_dir.join(CA_KEY_FILE),
        node_cert: out_dir.join(NODE_CERT_FILE),
        node_key: out_dir.join(NODE_KEY_FILE),
        client_cert: out_dir.join(CLIENT_CERT_FILE),
        client_key: out_dir.join(CLIENT_KEY_FILE),
        cluster_id: ClusterId(0),
    };
    for path in [
        &paths.ca_cert,
        &paths.ca_key,
        &paths.node_cert,
        &paths.node_key,
        &paths.client_cert,
        &paths.client_key,
    ] {
        if path.exists() {
            return Err(CertError::AlreadyExists { path: path.clone() });
        }
    }

    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params().self_signed(&ca_key)?;
    let authority = CertificateAuthority {
        issuer: Issuer::new(ca_params(), ca_key),
        ca_cert_der: ca_cert.der().clone(),
        dir: out_dir.to_path_buf(),
    };
    let node = authority.issue_node_certificate(hosts)?;
    let client = authority.issue_client_certificate()?;

    fs::create_dir_all(out_dir).map_err(|source| CertError::Unwritable {
        path: out_dir.to_path_buf(),
        source,
    })?;
    write_new_file(&paths.ca_cert, ca_cert.pem().as_bytes(), false)?;
    write_new_file(
        &paths.ca_key,
        authority.issuer.key().serialize_pem().as_bytes(),
        true,
    )?;
    node.write(&paths.node_cert, &paths.node_key)?;
    client.write(&paths.client_cert, &paths.client_key)?;
    Ok(GeneratedCerts {
        cluster_id: ClusterId::from_ca_certificate(ca_cert.der()),
        ..paths
    })
}

/// A certificate and its private key, freshly issued, as PEM text.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<secret>")
            .finish()
    }
}

impl IssuedCertificate {
    /// Writes the certificate and the key (mode 0600) to new files; refuses to
    /// overwrite existing ones.
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        for path in [cert_path, key_path] {
            if path.exists() {
                return Err(CertError::AlreadyExists {
                    path: path.to_path_buf(),
                });
            }
        }
        write_new_file(cert_path, self.cert_pem.as_bytes(), false)?;
        write_new_file(key_path, self.key_pem.as_bytes(), true)
    }
}

/// The cluster CA with its private key: issues more node or client
/// certificates after [`generate`] (for example a node certificate with more
/// host names).
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_cert_der: CertificateDer<'static>,
    dir: PathBuf,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.dir)
            .field(
                "cluster_id",
                &ClusterId::from_ca_certificate(&self.ca_cert_der),
            )
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads `ca-cert.pem` and `ca-key.pem` from `dir`.
    pub fn load(dir: &Path) -> Result<CertificateAuthority, CertError> {
        let ca_cert_der = read_certificate(&dir.join(CA_CERT_FILE))?;
        let key_path = dir.join(CA_KEY_FILE);
        let key_pem = read_file(&key_path)?;
        let key_text = String::from_utf8(key_pem).map_err(|error| CertError::Invalid {
            path: key_path.clone(),
            expected: "PEM private key",
            reason: error.to_string(),
        })?;
        let key = KeyPair::from_pem(&key_text).map_err(|error| CertError::Invalid {
            path: key_path.clone(),
            expected: "PEM private key",
            reason: error.to_string(),
        })?;
        Ok(CertificateAuthority {
            issuer: Issuer::new(ca_params(), key),
            ca_cert_der,
            dir: dir.to_path_buf(),
        })
    }

    /// The id of the cluster this CA defines.
    pub fn cluster_id(&self) -> ClusterId {
        ClusterId::from_ca_certificate(&self.ca_cert_der)
    }

    /// Issues a node certificate (server and client authentication) valid for
    /// `hosts` (DNS names or IP addresses; [`DEFAULT_NODE_HOSTS`] when empty).
    /// The result is checked against the CA certificate before it is returned.
    pub fn issue_node_certificate(&self, hosts: &[String]) -> Result<IssuedCertificate, CertError> {
        let hosts: Vec<String> = if hosts.is_empty() {
            DEFAULT_NODE_HOSTS.iter().map(|h| h.to_string()).collect()
        } else {
            hosts.to_vec()
        };
        for host in &hosts {
            validate_host(host)?;
        }
        let mut params =
            CertificateParams::new(hosts.clone()).map_err(|error| CertError::InvalidHost {
                host: hosts.join(","),
                reason: error.to_string(),
            })?;
        params.distinguished_name = distinguished_name(NODE_COMMON_NAME);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let issued = self.issue(params)?;
        self.check_issued(&issued, Role::Node)?;
        Ok(issued)
    }

    /// Issues a client certificate (client authentication only). The result
    /// is checked against the CA certificate before it is returned.
    pub fn issue_client_certificate(&self) -> Result<IssuedCertificate, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(CLIENT_COMMON_NAME);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let issued = self.issue(params)?;
        self.check_issued(&issued, Role::Client)?;
        Ok(issued)
    }

    fn issue(&self, params: CertificateParams) -> Result<IssuedCertificate, CertError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Verifies a new certificate against the CA certificate. The issuer is
    /// rebuilt from fixed parameters, so a CA not made by [`generate`] would
    /// produce certificates that do not chain; this catches it.
    fn check_issued(&self, issued: &IssuedCertificate, role: Role) -> Result<(), CertError> {
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).map_err(|error| {
            CertError::Config {
                dir: self.dir.clone(),
                reason: format!("issued certificate does not parse: {error}"),
            }
        })?;
        let roots = root_store(&self.ca_cert_der, &self.dir)?;
        let actual = role_of_certificate(&roots, &der);
        if actual != Some(role) {
            return Err(CertError::Invalid {
                path: self.dir.join(CA_CERT_FILE),
                expected: "distribKV cluster CA",
                reason: "a certificate issued with this CA key does not verify against it".into(),
            });
        }
        Ok(())
    }
}

/// A certificate chain and its private key: what one side presents.
struct Identity {
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    fn load(cert_path: &Path, key_path: &Path) -> Result<Option<Identity>, CertError> {
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => Ok(None),
            (true, false) => Err(CertError::Missing {
                path: key_path.to_path_buf(),
            }),
            (false, true) => Err(CertError::Missing {
                path: cert_path.to_path_buf(),
            }),
            (true, true) => Ok(Some(Identity {
                cert_chain: vec![read_certificate(cert_path)?],
                key: read_private_key(key_path)?,
            })),
        }
    }

    fn clone_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// The certificates of one folder, loaded: the CA certificate (required) and
/// whichever of the node and client identities are present. A server needs
/// the node identity; a client machine needs only the CA and client files.
pub struct CertSet {
    dir: PathBuf,
    ca_cert: CertificateDer<'static>,
    roots: Arc<RootCertStore>,
    node: Option<Identity>,
    client: Option<Identity>,
    cluster_id: ClusterId,
}

impl fmt::Debug for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSet")
            .field("dir", &self.dir)
            .field("cluster_id", &self.cluster_id)
            .field("has_node_identity", &self.node.is_some())
            .field("has_client_identity", &self.client.is_some())
            .finish()
    }
}

impl CertSet {
    /// Loads the certificates of `dir`. `ca-cert.pem` is required; a
    /// certificate without its key (or the reverse) is an error naming the
    /// missing file.
    pub fn load(dir: &Path) -> Result<CertSet, CertError> {
        let ca_path = dir.join(CA_CERT_FILE);
        let ca_cert = read_certificate(&ca_path)?;
        let roots = Arc::new(root_store(&ca_cert, dir)?);
        let node = Identity::load(&dir.join(NODE_CERT_FILE), &dir.join(NODE_KEY_FILE))?;
        let client = Identity::load(&dir.join(CLIENT_CERT_FILE), &dir.join(CLIENT_KEY_FILE))?;
        let cluster_id = ClusterId::from_ca_certificate(&ca_cert);
        Ok(CertSet {
            dir: dir.to_path_buf(),
            ca_cert,
            roots,
            node,
            client,
            cluster_id,
        })
    }

    /// The folder the certificates were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The id of the cluster, derived from the CA certificate.
    pub fn cluster_id(&self) -> ClusterId {
        self.cluster_id
    }

    /// The CA certificate (DER).
    pub fn ca_certificate(&self) -> &CertificateDer<'static> {
        &self.ca_cert
    }

    /// Whether the node certificate and key were found.
    pub fn has_node_identity(&self) -> bool {
        self.node.is_some()
    }

    /// Whether the client certificate and key were found.
    pub fn has_client_identity(&self) -> bool {
        self.client.is_some()
    }

    /// The quinn server configuration of a node: presents the node
    /// certificate, requires every connecting side to present a certificate
    /// issued by the cluster CA, and negotiates [`ALPN_PROTOCOL`].
    pub fn server_config(&self) -> Result<quinn::ServerConfig, CertError> {
        let identity = self.require(&self.node, NODE_CERT_FILE)?;
        let provider = crypto_provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .map_err(|error| self.config_error(error))?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|error| self.config_error(error))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(identity.cert_chain.clone(), identity.clone_key())
            .map_err(|error| self.config_error(error))?;
        tls.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
        let quic = QuicServerConfig::try_from(tls).map_err(|error| self.config_error(error))?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(quic)))
    }

    /// The quinn client configuration a node uses to dial its peers: presents
    /// the node certificate and trusts only the cluster CA.
    pub fn node_client_config(&self) -> Result<quinn::ClientConfig, CertError> {
        let identity = self.require(&self.node, NODE_CERT_FILE)?;
        self.client_config_with(Some(identity))
    }

    /// The quinn client configuration of a client: presents the client
    /// certificate and trusts only the cluster CA.
    pub fn client_config(&self) -> Result<quinn::ClientConfig, CertError> {
        let identity = self.require(&self.client, CLIENT_CERT_FILE)?;
        self.client_config_with(Some(identity))
    }

    /// A client configuration that trusts the cluster CA but presents no
    /// certificate at all. Servers refuse it; it exists to test exactly that.
    pub fn anonymous_client_config(&self) -> Result<quinn::ClientConfig, CertError> {
        self.client_config_with(None)
    }

    /// The role a connection may take, from the certificate chain it
    /// presented (end entity first), as quinn reports it in
    /// `Connection::peer_identity`. `None` when nothing from this CA was
    /// presented. Only a certificate that verifies as a *server* certificate
    /// (extended key usage `serverAuth`) is a node; the client certificate
    /// carries `clientAuth` only.
    pub fn role_of(&self, presented: &[CertificateDer<'_>]) -> Option<Role> {
        self.role_verifier().role_of(presented)
    }

    /// A cheap, cloneable checker of [`CertSet::role_of`] for connection
    /// handlers.
    pub fn role_verifier(&self) -> RoleVerifier {
        RoleVerifier {
            roots: self.roots.clone(),
        }
    }

    /// The key that signs this node's QUIC stateless-reset tokens, derived
    /// from the node private key and `scope` (the node's listen address).
    ///
    /// A node that crashes and restarts on the same address derives the same
    /// key, so it can answer packets of its previous incarnation's connections
    /// with a valid stateless reset: its peers learn at their next packet that
    /// the old connection is gone and reconnect at once, instead of waiting
    /// for the idle timeout. Only holders of the node key can forge a reset.
    pub fn stateless_reset_key(
        &self,
        scope: &[u8],
    ) -> Result<Arc<dyn quinn::crypto::HmacKey>, CertError> {
        Ok(Arc::new(StatelessResetKey {
            key: self.node_secret("stateless reset", scope)?,
        }))
    }

    /// A secret derived from the node private key, a `label` saying what it
    /// is for, and a `scope` (the node's listen address): stable across
    /// restarts, known only to holders of the node key.
    pub fn node_secret(&self, label: &str, scope: &[u8]) -> Result<[u8; 32], CertError> {
        let identity = self.require(&self.node, NODE_CERT_FILE)?;
        let mut material = b"distribkv node secret v1\0".to_vec();
        material.extend_from_slice(label.as_bytes());
        material.push(0);
        material.extend_from_slice(identity.key.secret_der());
        material.push(0);
        material.extend_from_slice(scope);
        Ok(sha256(&material))
    }

    fn client_config_with(
        &self,
        identity: Option<&Identity>,
    ) -> Result<quinn::ClientConfig, CertError> {
        let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|error| self.config_error(error))?
            .with_root_certificates(self.roots.clone());
        let mut tls = match identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.cert_chain.clone(), identity.clone_key())
                .map_err(|error| self.config_error(error))?,
            None => builder.with_no_client_auth(),
        };
        tls.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
        let quic = QuicClientConfig::try_from(tls).map_err(|error| self.config_error(error))?;
        Ok(quinn::ClientConfig::new(Arc::new(quic)))
    }

    fn require<'a>(
        &self,
        identity: &'a Option<Identity>,
        cert_file: &str,
    ) -> Result<&'a Identity, CertError> {
        identity.as_ref().ok_or_else(|| CertError::Missing {
            path: self.dir.join(cert_file),
        })
    }

    fn config_error(&self, error: impl fmt::Display) -> CertError {
        CertError::Config {
            dir: self.dir.clone(),
            reason: error.to_string(),
        }
    }
}

/// Tells the [`Role`] of a connection from the certificate it presented.
#[derive(Clone)]
pub struct RoleVerifier {
    roots: Arc<RootCertStore>,
}

impl fmt::Debug for RoleVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleVerifier").finish_non_exhaustive()
    }
}

impl RoleVerifier {
    /// See [`CertSet::role_of`].
    pub fn role_of(&self, presented: &[CertificateDer<'_>]) -> Option<Role> {
        role_of_certificate(&self.roots, presented.first()?)
    }
}

/// HMAC-SHA256 under a derived key, for quinn's stateless resets.
struct StatelessResetKey {
    key: [u8; 32],
}

impl StatelessResetKey {
    fn tag(&self, data: &[u8]) -> rustls::crypto::hmac::Tag {
        let suite = match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256 {
            rustls::SupportedCipherSuite::Tls13(suite) => suite,
            // Invariant: TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite.
            _ => unreachable!("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 cipher suite"),
        };
        suite
            .hkdf_provider
            .hmac_sign(&rustls::crypto::tls13::OkmBlock::new(&self.key), data)
    }
}

impl quinn::crypto::HmacKey for StatelessResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let tag = self.tag(data);
        let tag = tag.as_ref();
        let len = signature_out.len().min(tag.len());
        signature_out[..len].copy_from_slice(&tag[..len]);
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let tag = self.tag(data);
        let expected = tag.as_ref();
        let differences = expected
            .iter()
            .zip(signature)
            .fold(expected.len() ^ signature.len(), |acc, (a, b)| {
                acc | usize::from(a ^ b)
            });
        if differences == 0 {
            Ok(())
        } else {
            Err(quinn::crypto::CryptoError)
        }
    }
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

fn role_of_certificate(roots: &RootCertStore, end_entity: &CertificateDer<'_>) -> Option<Role> {
    let parsed = ParsedCertificate::try_from(end_entity).ok()?;
    let algorithms = crypto_provider().signature_verification_algorithms;
    let now = UnixTime::now();
    // Verifying as a server certificate checks the chain *and* the
    // `serverAuth` extended key usage, which only node certificates carry.
    if rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        &[],
        now,
        algorithms.all,
    )
    .is_ok()
    {
        return Some(Role::Node);
    }
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), crypto_provider())
            .build()
            .ok()?;
    client_verifier
        .verify_client_cert(end_entity, &[], now)
        .ok()
        .map(|_| Role::Client)
}

fn root_store(ca_cert: &CertificateDer<'static>, dir: &Path) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca_cert.clone())
        .map_err(|error| CertError::Invalid {
            path: dir.join(CA_CERT_FILE),
            expected: "CA certificate",
            reason: error.to_string(),
        })?;
    Ok(roots)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, common_name);
    name
}

fn validate_host(host: &str) -> Result<(), CertError> {
    let refuse = |reason: &str| {
        Err(CertError::InvalidHost {
            host: host.to_string(),
            reason: reason.to_string(),
        })
    };
    if host.is_empty() {
        return refuse("empty");
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if host.len() > 253 {
        return refuse("longer than 253 characters");
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
    };
    if !host.split('.').all(valid_label) {
        return refuse("not a DNS name or an IP address");
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            CertError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            CertError::Unreadable {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_certificate(path: &Path) -> Result<CertificateDer<'static>, CertError> {
    let bytes = read_file(path)?;
    let cert = CertificateDer::from_pem_slice(&bytes).map_err(|error| CertError::Invalid {
        path: path.to_path_buf(),
        expected: "PEM certificate",
        reason: error.to_string(),
    })?;
    ParsedCertificate::try_from(&cert).map_err(|error| CertError::Invalid {
        path: path.to_path_buf(),
        expected: "PEM certificate",
        reason: error.to_string(),
    })?;
    Ok(cert)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = read_file(path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| CertError::Invalid {
        path: path.to_path_buf(),
        expected: "PEM private key",
        reason: error.to_string(),
    })?;
    crypto_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|error| CertError::Invalid {
            path: path.to_path_buf(),
            expected: "PEM private key",
            reason: error.to_string(),
        })?;
    Ok(key)
}

/// Writes a new file (never overwriting); `secret` files get mode 0600 from
/// the moment they are created.
fn write_new_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CertError> {
    let unwritable = |source| CertError::Unwritable {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            CertError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            unwritable(source)
        }
    })?;
    file.write_all(contents).map_err(unwritable)?;
    file.sync_all().map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_load_and_roles_are_distinguished() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), &[]).unwrap();
        let certs = CertSet::load(dir.path()).unwrap();
        assert_eq!(certs.cluster_id(), generated.cluster_id);
        let node = certs.node.as_ref().unwrap().cert_chain.clone();
        let client = certs.client.as_ref().unwrap().cert_chain.clone();
        assert_eq!(certs.role_of(&node), Some(Role::Node));
        assert_eq!(certs.role_of(&client), Some(Role::Client));
        assert_eq!(certs.role_of(&[]), None);
        certs.server_config().unwrap();
        certs.node_client_config().unwrap();
        certs.client_config().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), &["db1.example".into()]).unwrap();
        for key in [generated.ca_key, generated.node_key, generated.client_key] {
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn foreign_certificates_have_no_role() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        generate(ours.path(), &[]).unwrap();
        generate(theirs.path(), &[]).unwrap();
        let ours = CertSet::load(ours.path()).unwrap();
        let theirs = CertSet::load(theirs.path()).unwrap();
        assert_ne!(ours.cluster_id(), theirs.cluster_id());
        let foreign_node = theirs.node.as_ref().unwrap().cert_chain.clone();
        assert_eq!(ours.role_of(&foreign_node), None);
    }

    #[test]
    fn more_certificates_can_be_issued_later() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &[]).unwrap();
        let authority = CertificateAuthority::load(dir.path()).unwrap();
        let node = authority
            .issue_node_certificate(&["10.1.2.3".into(), "db2.example".into()])
            .unwrap();
        let client = authority.issue_client_certificate().unwrap();
        let certs = CertSet::load(dir.path()).unwrap();
        let node_der = CertificateDer::from_pem_slice(node.cert_pem.as_bytes()).unwrap();
        let client_der = CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).unwrap();
        assert_eq!(certs.role_of(&[node_der]), Some(Role::Node));
        assert_eq!(certs.role_of(&[client_der]), Some(Role::Client));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = CertSet::load(dir.path()).unwrap_err();
        assert!(error.to_string().contains(CA_CERT_FILE), "{error}");

        generate(dir.path(), &[]).unwrap();
        fs::remove_file(dir.path().join(NODE_KEY_FILE)).unwrap();
        let error = CertSet::load(dir.path()).unwrap_err();
        assert!(error.to_string().contains(NODE_KEY_FILE), "{error}");

        fs::remove_file(dir.path().join(NODE_CERT_FILE)).unwrap();
        let certs = CertSet::load(dir.path()).unwrap();
        let error = certs.server_config().unwrap_err();
        assert!(error.to_string().contains(NODE_CERT_FILE), "{error}");

        fs::write(dir.path().join(CLIENT_CERT_FILE), "not a certificate").unwrap();
        let error = CertSet::load(dir.path()).unwrap_err();
        assert!(error.to_string().contains(CLIENT_CERT_FILE), "{error}");

        let error = generate(dir.path(), &[]).unwrap_err();
        assert!(matches!(error, CertError::AlreadyExists { .. }), "{error}");
    }

    #[test]
    fn invalid_hosts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = generate(dir.path(), &["bad host".into()]).unwrap_err();
        assert!(matches!(error, CertError::InvalidHost { .. }), "{error}");
    }
}
