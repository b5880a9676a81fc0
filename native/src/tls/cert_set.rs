//! A certificate folder, loaded: the CA certificate and whichever of the
//! node and client identities are present, and the QUIC configurations and
//! node secrets made from them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::files::{invalid, read_certificate, read_private_key};
use super::verify::root_store;
use super::{
    ALPN_PROTOCOL, CA_CERT_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE, CertError, ClusterId,
    NODE_CERT_FILE, NODE_KEY_FILE, Role, RoleVerifier, crypto_provider, sha256,
};

/// A certificate chain and its private key: what one side presents.
pub(super) struct Identity {
    pub(super) cert_chain: Vec<CertificateDer<'static>>,
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
    pub(super) node: Option<Identity>,
    pub(super) client: Option<Identity>,
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

    /// [`CertSet::load`] for a server: the folder's node certificate must
    /// also pass [`CertSet::check_node_identity`].
    pub fn load_for_server(dir: &Path) -> Result<CertSet, CertError> {
        let certs = CertSet::load(dir)?;
        certs.check_node_identity()?;
        Ok(certs)
    }

    /// Checks that the node certificate, if present, was issued by the CA
    /// as a node's. One of another cluster (copied into the folder) would
    /// be refused by every peer and client at each connection: a server
    /// refuses it once, at start, naming the file.
    pub fn check_node_identity(&self) -> Result<(), CertError> {
        match &self.node {
            Some(node) if self.role_of(&node.cert_chain) != Some(Role::Node) => Err(invalid(
                &self.dir.join(NODE_CERT_FILE),
                "node certificate of this cluster",
                format!("{CA_CERT_FILE} did not issue it (is it another cluster's?)"),
            )),
            _ => Ok(()),
        }
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
