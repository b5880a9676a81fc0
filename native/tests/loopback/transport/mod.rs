//! The QUIC transport in-process: nodes and clients of [`PeerTransport`] and
//! [`Client`](distribkv_native::transport::Client) on 127.0.0.1, with test
//! message types, and the helpers they share.

mod blackout;
mod client;
mod peers;
mod security;
mod throughput;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use distribkv_native::tls::{self, CertSet};
use distribkv_native::transport::{
    Client, ClientRequest, ClientSettings, Inbound, PeerTransport, PeerTransportConfig,
    ServerAddress, TransportSettings,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// The peer message type of the tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestMessage {
    /// A numbered message with some bytes.
    Ping { seq: u64, payload: Vec<u8> },
}

/// The client request type of the tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestRequest {
    /// Answered with the same text.
    Echo(String),
    /// Never answered: the server drops the handle.
    Ignore,
    /// Answered only when the test says so (the handle is parked).
    Hold,
}

/// The client response type of the tests.
pub type TestResponse = String;

pub type Node = PeerTransport<TestMessage>;
pub type NodeInbound = Inbound<TestMessage, TestRequest, TestResponse>;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A fresh cluster's certificates in a temporary folder.
pub fn cluster_certs() -> (TempDir, CertSet) {
    let dir = tempfile::tempdir().unwrap();
    tls::generate(dir.path(), &[]).unwrap();
    let certs = CertSet::load(dir.path()).unwrap();
    (dir, certs)
}

/// Loads the certificates of `dir` again.
pub fn load(dir: &Path) -> CertSet {
    CertSet::load(dir).unwrap()
}

/// A folder holding the CA certificate of `ours` and the `files` (a
/// certificate and its key) of `theirs`, another cluster's folder.
pub fn mixed_certs(ours: &Path, theirs: &Path, files: [&str; 2]) -> TempDir {
    let mixed = tempfile::tempdir().unwrap();
    std::fs::copy(
        ours.join(tls::CA_CERT_FILE),
        mixed.path().join(tls::CA_CERT_FILE),
    )
    .unwrap();
    for file in files {
        std::fs::copy(theirs.join(file), mixed.path().join(file)).unwrap();
    }
    mixed
}

/// Starts node `id` on `listen` with no peers yet.
pub fn start_node(id: u64, certs: &CertSet, listen: SocketAddr) -> (Node, NodeInbound) {
    start_node_with(id, certs, listen, TransportSettings::default())
}

/// Starts node `id` with the given settings.
pub fn start_node_with(
    id: u64,
    certs: &CertSet,
    listen: SocketAddr,
    settings: TransportSettings,
) -> (Node, NodeInbound) {
    let config = PeerTransportConfig {
        node_id: id,
        listen,
        peers: Vec::new(),
        settings,
    };
    PeerTransport::bind(config, certs).unwrap()
}

/// The client type of the tests.
pub type TestClient = Client<TestRequest, TestResponse>;

/// Node 1 on a free port, answering requests with [`spawn_echo_server`].
pub fn start_echo_node(certs: &CertSet) -> Node {
    let (node, inbound) = start_node(1, certs, any_port());
    spawn_echo_server(inbound.client_requests);
    node
}

/// A client of `node` with the client certificate of `certs`.
pub fn client_of(node: &Node, certs: &CertSet) -> TestClient {
    TestClient::new(vec![server_address(node)], certs, ClientSettings::default()).unwrap()
}

/// A bare QUIC connection to `target` with the TLS configuration `config`,
/// for speaking the wire protocol by hand; the endpoint must outlive it.
pub async fn raw_connection(
    config: quinn::ClientConfig,
    target: &Node,
) -> (quinn::Endpoint, quinn::Connection) {
    let endpoint = quinn::Endpoint::client(any_port()).unwrap();
    let connection = endpoint
        .connect_with(config, target.local_addr(), "127.0.0.1")
        .unwrap()
        .await
        .unwrap();
    (endpoint, connection)
}

/// A loopback address with a free port.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The address of a node for clients.
pub fn server_address(node: &Node) -> ServerAddress {
    ServerAddress::new(node.local_addr())
}

/// Answers requests: `Echo` with its text, `Ignore` by dropping the handle,
/// `Hold` by keeping the handle until the task ends.
pub fn spawn_echo_server(mut requests: mpsc::Receiver<ClientRequest<TestRequest, TestResponse>>) {
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(ClientRequest { request, reply }) = requests.recv().await {
            match request {
                TestRequest::Echo(text) => {
                    reply.send(text);
                }
                TestRequest::Ignore => drop(reply),
                TestRequest::Hold => held.push(reply),
            }
        }
    });
}

/// Waits until `condition` holds, polling; panics with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `future` with a time limit, panicking with `what` when it is over.
pub async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Waits until `addr` can be bound again: a shut-down endpoint releases its
/// socket when quinn's driver task next runs.
pub async fn wait_for_free_port(addr: SocketAddr) {
    let started = std::time::Instant::now();
    while std::net::UdpSocket::bind(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{addr} was never released"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
