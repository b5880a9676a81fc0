//! Client requests: round trips, concurrency, failover, timeouts, reconnects.

use std::sync::Arc;
use std::time::Duration;

use distribkv_native::transport::{ClientError, ClientSettings, ServerAddress, TransportSettings};

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_round_trip() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let client = client_of(&node, &certs);
    let answer = within(
        "echo",
        LIMIT,
        client.request(TestRequest::Echo("hello".into())),
    )
    .await
    .unwrap();
    assert_eq!(answer, "hello");
    let big = "x".repeat(1 << 20);
    let answer = within(
        "big echo",
        LIMIT,
        client.request(TestRequest::Echo(big.clone())),
    )
    .await
    .unwrap();
    assert_eq!(answer, big);
    assert_eq!(node.stats().client_requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_on_one_connection() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    // What is tested is that one connection carries every request. The
    // silence detector (a connection that receives nothing for
    // `unresponsive_after` after a request is closed and dialled again) is
    // tested elsewhere; on a loaded machine a starved process can be silent
    // for 300 ms, and then this test would count a second connection.
    let settings = ClientSettings {
        request_timeout: LIMIT,
        transport: TransportSettings {
            unresponsive_after: LIMIT,
            ..TransportSettings::default()
        },
    };
    let client = Arc::new(TestClient::new(vec![server_address(&node)], &certs, settings).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..64 {
        let client = client.clone();
        tasks.spawn(async move {
            for round in 0..50 {
                let text = format!("{task}-{round}");
                let answer = client
                    .request(TestRequest::Echo(text.clone()))
                    .await
                    .unwrap();
                assert_eq!(answer, text, "each answer goes to its own request");
            }
        });
    }
    within("3200 requests", LIMIT * 3, async {
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
    })
    .await;
    assert_eq!(node.stats().client_requests, 64 * 50);
    assert_eq!(
        node.endpoint().open_connections(),
        1,
        "one connection carries every request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_and_slow_requests_fail_clearly() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let settings = ClientSettings {
        request_timeout: Duration::from_millis(300),
        ..ClientSettings::default()
    };
    let client = TestClient::new(vec![server_address(&node)], &certs, settings).unwrap();
    let error = client.request(TestRequest::Ignore).await.unwrap_err();
    assert!(matches!(error, ClientError::NotAnswered { .. }), "{error}");
    assert!(error.outcome_unknown());
    let error = client.request(TestRequest::Hold).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    // The connection is still fine.
    let answer = client
        .request(TestRequest::Echo("after".into()))
        .await
        .unwrap();
    assert_eq!(answer, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_over_to_a_server_that_answers() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let settings = ClientSettings {
        transport: TransportSettings {
            connect_timeout: Duration::from_millis(300),
            ..TransportSettings::default()
        },
        ..ClientSettings::default()
    };
    let client = TestClient::new(
        vec![
            ServerAddress::new(silent.local_addr().unwrap()),
            server_address(&node),
        ],
        &certs,
        settings,
    )
    .unwrap();
    let error = client
        .request_to(0, TestRequest::Echo("x".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Connect { .. }), "{error}");
    let answer = within(
        "failover",
        LIMIT,
        client.request(TestRequest::Echo("x".into())),
    )
    .await
    .unwrap();
    assert_eq!(answer, "x");
    assert_eq!(client.preferred_server(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_after_a_server_restart() {
    init_logging();
    let (dir, certs) = cluster_certs();
    let (node, inbound) = start_node(1, &certs, any_port());
    spawn_echo_server(inbound.client_requests);
    let addr = node.local_addr();
    let client = TestClient::new(
        vec![ServerAddress::new(addr)],
        &certs,
        ClientSettings::default(),
    )
    .unwrap();
    assert_eq!(
        client.request(TestRequest::Echo("1".into())).await.unwrap(),
        "1"
    );

    node.shutdown().await;
    let error = client
        .request(TestRequest::Echo("2".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::ConnectionLost { .. } | ClientError::Connect { .. }
        ),
        "{error}"
    );

    wait_for_free_port(addr).await;
    let (_node, inbound) = start_node(1, &load(dir.path()), addr);
    spawn_echo_server(inbound.client_requests);
    let answer = within(
        "after restart",
        LIMIT,
        client.request(TestRequest::Echo("3".into())),
    )
    .await
    .unwrap();
    assert_eq!(answer, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_reaches_a_server_whose_socket_opens_after_the_first_handshake() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let addr = std::net::UdpSocket::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap();
    // The first handshake is lost (nothing listens yet). QUIC alone would
    // send it again after about 1 s, past this connect timeout; a fresh
    // handshake every `redial_after` reaches the server once it listens.
    let settings = ClientSettings {
        transport: TransportSettings {
            connect_timeout: Duration::from_millis(900),
            ..TransportSettings::default()
        },
        ..ClientSettings::default()
    };
    let client = TestClient::new(vec![ServerAddress::new(addr)], &certs, settings).unwrap();
    let request =
        tokio::spawn(async move { client.request_to(0, TestRequest::Echo("late".into())).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_node, inbound) = start_node(1, &certs, addr);
    spawn_echo_server(inbound.client_requests);
    let answer = within("the late server", LIMIT, request).await.unwrap();
    assert_eq!(answer.unwrap(), "late");
}

/// A UDP forwarder between a client and a server that can turn into a
/// black hole (a server that died without a word, as under kill -9 or a
/// power cut: no QUIC close ever arrives).
struct Forwarder {
    addr: std::net::SocketAddr,
    silent: Arc<std::sync::atomic::AtomicBool>,
}

impl Forwarder {
    fn start(server: std::net::SocketAddr) -> Forwarder {
        use std::sync::atomic::Ordering;
        let outside = std::net::UdpSocket::bind(any_port()).unwrap();
        let inside = std::net::UdpSocket::bind(any_port()).unwrap();
        let addr = outside.local_addr().unwrap();
        let silent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Arc::new(std::sync::Mutex::new(None));
        let (out_read, in_write) = (outside.try_clone().unwrap(), inside.try_clone().unwrap());
        let (silent_in, client_in) = (silent.clone(), client.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while let Ok((length, from)) = out_read.recv_from(&mut buffer) {
                *client_in.lock().unwrap() = Some(from);
                if !silent_in.load(Ordering::Relaxed) {
                    let _ = in_write.send_to(&buffer[..length], server);
                }
            }
        });
        let silent_out = silent.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while let Ok((length, _)) = inside.recv_from(&mut buffer) {
                let to = *client.lock().unwrap();
                if let (Some(to), false) = (to, silent_out.load(Ordering::Relaxed)) {
                    let _ = outside.send_to(&buffer[..length], to);
                }
            }
        });
        Forwarder { addr, silent }
    }

    fn set_silent(&self, silent: bool) {
        self.silent
            .store(silent, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_silent_fails_the_request_early_and_the_next_one_dials_again() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let forwarder = Forwarder::start(node.local_addr());
    // The request timeout is well above the silence that gives a server up
    // (`unresponsive_after`, 300 ms): on a loaded machine the check must
    // still fire first, or the test would see a timeout instead.
    let settings = ClientSettings {
        request_timeout: Duration::from_secs(4),
        ..ClientSettings::default()
    };
    let client = TestClient::new(
        vec![ServerAddress::with_name(forwarder.addr, "127.0.0.1")],
        &certs,
        settings,
    )
    .unwrap();
    let answer = client.request(TestRequest::Echo("before".into())).await;
    assert_eq!(answer.unwrap(), "before");
    // A live server that acknowledges but takes its time is waited for.
    let error = client.request(TestRequest::Hold).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
    // A server that sends nothing at all is given up on before the request
    // timeout, with an unknown outcome.
    forwarder.set_silent(true);
    let error = client
        .request(TestRequest::Echo("lost".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::ConnectionLost { .. }),
        "{error}"
    );
    assert!(error.outcome_unknown());
    // That connection is closed: the next request dials again (with the
    // short limit of a suspect) and gets through once the server is heard.
    forwarder.set_silent(false);
    let answer = within(
        "a new connection",
        LIMIT,
        client.request(TestRequest::Echo("after".into())),
    )
    .await;
    assert_eq!(answer.unwrap(), "after");
}
