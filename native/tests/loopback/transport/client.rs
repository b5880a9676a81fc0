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
    let client = Arc::new(client_of(&node, &certs));
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
