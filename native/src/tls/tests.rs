//! Unit tests of the certificate module.

use std::fs;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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
fn a_node_certificate_of_another_cluster_is_refused_naming_it() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    generate(ours.path(), &[]).unwrap();
    generate(theirs.path(), &[]).unwrap();
    CertSet::load(ours.path())
        .unwrap()
        .check_node_identity()
        .unwrap();
    // Our CA, their node certificate and key.
    let mixed = tempfile::tempdir().unwrap();
    fs::copy(
        ours.path().join(CA_CERT_FILE),
        mixed.path().join(CA_CERT_FILE),
    )
    .unwrap();
    for file in [NODE_CERT_FILE, NODE_KEY_FILE] {
        fs::copy(theirs.path().join(file), mixed.path().join(file)).unwrap();
    }
    let error = CertSet::load(mixed.path())
        .unwrap()
        .check_node_identity()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(NODE_CERT_FILE) && error.contains("ca-cert.pem did not issue it"),
        "{error}"
    );
    // A client certificate in the place of the node's is no node's either.
    for (from, to) in [
        (CLIENT_CERT_FILE, NODE_CERT_FILE),
        (CLIENT_KEY_FILE, NODE_KEY_FILE),
    ] {
        fs::copy(ours.path().join(from), mixed.path().join(to)).unwrap();
    }
    assert!(
        CertSet::load(mixed.path())
            .unwrap()
            .check_node_identity()
            .is_err()
    );
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
