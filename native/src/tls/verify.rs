//! Telling what a connection may do from the certificate it presented.
//!
//! Roles are told apart by extended key usage: only node certificates carry
//! `serverAuth`, so a chain that verifies as a *server* certificate against
//! the cluster CA is a node, one that verifies only as a client certificate
//! is a client, and anything else has no role.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};

use super::files::invalid;
use super::{CA_CERT_FILE, CertError, Role, crypto_provider};

/// Tells the [`Role`] of a connection from the certificate it presented.
#[derive(Clone)]
pub struct RoleVerifier {
    pub(super) roots: Arc<RootCertStore>,
}

impl fmt::Debug for RoleVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleVerifier").finish_non_exhaustive()
    }
}

impl RoleVerifier {
    /// See [`CertSet::role_of`](super::CertSet::role_of).
    pub fn role_of(&self, presented: &[CertificateDer<'_>]) -> Option<Role> {
        role_of_certificate(&self.roots, presented.first()?)
    }
}

/// The role `end_entity` may take with the cluster CA in `roots` (see the
/// module documentation).
pub(super) fn role_of_certificate(
    roots: &RootCertStore,
    end_entity: &CertificateDer<'_>,
) -> Option<Role> {
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

/// The trust anchors of a cluster: its CA certificate alone (`dir` names the
/// folder it came from, for errors).
pub(super) fn root_store(
    ca_cert: &CertificateDer<'static>,
    dir: &Path,
) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca_cert.clone())
        .map_err(|error| invalid(&dir.join(CA_CERT_FILE), "CA certificate", error))?;
    Ok(roots)
}
