//! Certificate rotation without downtime: a node's certificate and key are
//! replaced on disk, and on SIGHUP the node serves new connections with
//! them, without a restart and without losing its peers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use distribkv_core::kv::{ClientRequest, ClientResponse, RequestBody};
use distribkv_native::tls::{CertSet, CertificateAuthority, NODE_CERT_FILE, NODE_KEY_FILE};
use distribkv_native::transport::{Client, ClientSettings, ServerAddress};
use rustix::process::Signal;

use super::harness::{self, Cluster, Hosts, Loopback, signal};

/// The name only the new certificate is valid for.
const NEW_NAME: &str = "rotated.distribkv.test";

/// Whether node at `addr` answers a status request when its certificate
/// must be valid for `name`.
fn answers_as(
    runtime: &tokio::runtime::Runtime,
    certs: &CertSet,
    addr: SocketAddr,
    name: &str,
) -> bool {
    runtime.block_on(async {
        let settings = ClientSettings {
            request_timeout: Duration::from_secs(5),
            ..ClientSettings::default()
        };
        let client: Client<ClientRequest, ClientResponse> =
            Client::new(vec![ServerAddress::with_name(addr, name)], certs, settings).unwrap();
        let request = ClientRequest {
            id: 1,
            body: RequestBody::Status,
        };
        let answered = client.request_to(0, request).await.is_ok();
        client.close().await;
        answered
    })
}

#[test]
fn sighup_makes_new_connections_use_the_rotated_certificate() {
    let cluster = Cluster::start(harness::one_at_a_time(), Loopback::new(3), &[]).unwrap();
    cluster.leader(Duration::from_secs(20));
    cluster.put("before", "1");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client_certs = CertSet::load(&cluster.certs).unwrap();
    let addr: SocketAddr = cluster.hosts.address(1).parse().unwrap();
    assert!(answers_as(&runtime, &client_certs, addr, "127.0.0.1"));
    assert!(
        !answers_as(&runtime, &client_certs, addr, NEW_NAME),
        "the old certificate is not valid for {NEW_NAME}"
    );

    // A new node certificate from the same CA, valid for one more name,
    // put in place atomically (rename), as an operator's tooling would.
    let authority = CertificateAuthority::load(&cluster.certs).unwrap();
    let issued = authority
        .issue_node_certificate(&["localhost".into(), "127.0.0.1".into(), NEW_NAME.into()])
        .unwrap();
    for (file, text) in [
        (NODE_CERT_FILE, &issued.cert_pem),
        (NODE_KEY_FILE, &issued.key_pem),
    ] {
        let temporary = cluster.certs.join(format!("{file}.new"));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, cluster.certs.join(file)).unwrap();
    }

    signal(cluster.pid(1), Signal::HUP);
    let started = Instant::now();
    while !cluster.log_of(1).contains("reloaded the certificates") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            cluster.log_tail(1, 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        answers_as(&runtime, &client_certs, addr, NEW_NAME),
        "a new connection gets the new certificate"
    );
    assert!(cluster.is_running(1), "no restart");

    // The node kept serving and kept its peers; the others, not reloaded
    // yet, still talk to it, and it to them.
    cluster.put("after", "2");
    assert_eq!(cluster.get("before").as_deref(), Some("1"));
    cluster.wait_converged(Duration::from_secs(20)).unwrap();
    for id in [2, 3] {
        signal(cluster.pid(id), Signal::HUP);
    }
    cluster.put("after-all", "3");
    cluster.wait_converged(Duration::from_secs(20)).unwrap();
    assert!((1..=3).all(|id| cluster.is_running(id)));
}
