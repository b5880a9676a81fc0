//! The cluster CA: creating it with [`generate`], and issuing node and client
//! certificates from it ([`CertificateAuthority`]). Every certificate is
//! checked against the CA certificate before it is handed out.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::files::{invalid, read_certificate, read_file, write_new_file};
use super::verify::{role_of_certificate, root_store};
use super::{
    CA_CERT_FILE, CA_KEY_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE, CertError, ClusterId,
    DEFAULT_NODE_HOSTS, NODE_CERT_FILE, NODE_KEY_FILE, Role,
};

/// Common name of the cluster CA. Issuing later certificates rebuilds the
/// issuer from it, so it must never change.
const CA_COMMON_NAME: &str = "distribKV cluster CA";
/// Organization written into every distribKV certificate.
const ORGANIZATION: &str = "distribKV";
/// Common name of the node certificate.
const NODE_COMMON_NAME: &str = "distribKV node";
/// Common name of the client certificate.
const CLIENT_COMMON_NAME: &str = "distribKV client";
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
        let invalid_key = |error: &dyn fmt::Display| invalid(&key_path, "PEM private key", error);
        let key_text = String::from_utf8(key_pem).map_err(|e| invalid_key(&e))?;
        let key = KeyPair::from_pem(&key_text).map_err(|e| invalid_key(&e))?;
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
