//! Who may talk: foreign and missing certificates, clients posing as peers,
//! garbage datagrams, bad frames on request streams.

use std::time::Duration;

use bytes::BytesMut;
use distribkv_native::transport::frame::{self, DEFAULT_MAX_FRAME_SIZE};
use distribkv_native::transport::{
    Answer, ClientError, ClientSettings, PeerHello, ServerAddress, error_code,
};

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

fn echo(text: &str) -> TestRequest {
    TestRequest::Echo(text.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_from_another_ca_is_refused_on_a_real_request() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let (_other_dir, other_certs) = cluster_certs();
    let node = start_echo_node(&certs);
    // Everything from another cluster: its CA, its client certificate.
    let foreign = other_certs.client_config().unwrap();
    let client = TestClient::with_tls_config(
        vec![server_address(&node)],
        foreign,
        ClientSettings::default(),
    )
    .unwrap();
    let error = within("refusal", LIMIT, client.request(echo("let me in")))
        .await
        .unwrap_err();
    // The foreign client does not trust our server either; whichever side
    // notices first, the request is refused and says why.
    assert!(
        matches!(
            error,
            ClientError::CertificateRefused { .. } | ClientError::ServerNotTrusted { .. }
        ),
        "{error}"
    );
    assert!(!error.outcome_unknown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_client_certificate_is_refused_even_if_it_trusts_the_server() {
    init_logging();
    let (dir, certs) = cluster_certs();
    let (other_dir, _other_certs) = cluster_certs();
    let node = start_echo_node(&certs);
    // Our CA certificate, their client certificate and key.
    let mixed = mixed_certs(
        dir.path(),
        other_dir.path(),
        [
            distribkv_native::tls::CLIENT_CERT_FILE,
            distribkv_native::tls::CLIENT_KEY_FILE,
        ],
    );
    let mixed = load(mixed.path());
    let client = client_of(&node, &mixed);
    let error = within("refusal", LIMIT, client.request(echo("let me in")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::CertificateRefused { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("refused this client's certificate"),
        "{error}"
    );
    assert_eq!(node.stats().client_requests, 0);
    // The server learns of the failed handshake in its own task, which
    // may run after the client has seen the alert.
    wait_until("the refusal counted", LIMIT, || {
        node.stats().connections_refused >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let client = TestClient::with_tls_config(
        vec![server_address(&node)],
        certs.anonymous_client_config().unwrap(),
        ClientSettings::default(),
    )
    .unwrap();
    let error = within("refusal", LIMIT, client.request(echo("anonymous")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::CertificateRefused { .. }),
        "{error}"
    );
    assert_eq!(node.stats().client_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_node_certificate_of_another_cluster_is_refused() {
    init_logging();
    let (dir, certs) = cluster_certs();
    let (other_dir, _other_certs) = cluster_certs();
    let node = start_echo_node(&certs);
    // Our CA certificate, their node certificate and key.
    let mixed = mixed_certs(
        dir.path(),
        other_dir.path(),
        [
            distribkv_native::tls::NODE_CERT_FILE,
            distribkv_native::tls::NODE_KEY_FILE,
        ],
    );
    let error = node
        .reload_certificates(&load(mixed.path()))
        .unwrap_err()
        .to_string();
    assert!(error.contains("did not issue it"), "{error}");
    // The node kept its certificate: clients still trust it.
    let client = client_of(&node, &certs);
    assert_eq!(
        within("an answer", LIMIT, client.request(echo("still ours")))
            .await
            .unwrap(),
        "still ours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_from_another_ca_is_not_trusted() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let (_other_dir, other_certs) = cluster_certs();
    let impostor = start_echo_node(&other_certs);
    let client = client_of(&impostor, &certs);
    let error = within("distrust", LIMIT, client.request(echo("secret")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::ServerNotTrusted { .. }),
        "{error}"
    );
    assert_eq!(impostor.stats().client_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_cannot_pose_as_a_peer() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let (node, mut inbound) = start_node(1, &certs, any_port());
    node.add_peer(distribkv_native::transport::PeerAddress::new(
        2,
        "127.0.0.1:9".parse().unwrap(),
    ));
    let (_endpoint, connection) = raw_connection(certs.client_config().unwrap(), &node).await;
    let mut stream = connection.open_uni().await.unwrap();
    let mut bytes = BytesMut::new();
    let hello = PeerHello {
        cluster_id: certs.cluster_id().0,
        node_id: 2,
        incarnation: 1,
    };
    frame::encode(&hello, &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    frame::encode(
        &TestMessage::Ping {
            seq: 1,
            payload: vec![],
        },
        &mut bytes,
        DEFAULT_MAX_FRAME_SIZE,
    )
    .unwrap();
    let _ = stream.write_all(&bytes).await;
    let error = within("refusal", LIMIT, connection.closed()).await;
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, error_code::NOT_A_PEER);
        }
        other => panic!("unexpected close: {other}"),
    }
    assert!(
        inbound.peer_messages.try_recv().is_err(),
        "nothing delivered"
    );
    assert_eq!(node.stats().messages_received, 0);
    assert_eq!(node.stats().connections_refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_ignored() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let client = client_of(&node, &certs);
    assert_eq!(client.request(echo("before")).await.unwrap(), "before");

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000u64 {
        let size = [1, 7, 21, 40, 100, 1200, 1500][round as usize % 7];
        let mut datagram: Vec<u8> = (0..size).map(|_| next() as u8).collect();
        match round % 3 {
            // Looks like a QUIC long header (Initial, version 1).
            0 if size >= 5 => {
                datagram[0] = 0xC0;
                datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
            // Looks like a short header.
            1 => datagram[0] = 0x40 | (datagram[0] & 0x3F),
            _ => {}
        }
        socket.send_to(&datagram, node.local_addr()).unwrap();
    }
    // The established connection and new ones still work.
    assert_eq!(
        within("after garbage", LIMIT, client.request(echo("after")))
            .await
            .unwrap(),
        "after"
    );
    let fresh = client_of(&node, &certs);
    assert_eq!(
        within("new client", LIMIT, fresh.request(echo("fresh")))
            .await
            .unwrap(),
        "fresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_closes_only_its_stream() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let (_endpoint, connection) = raw_connection(certs.client_config().unwrap(), &node).await;

    let oversize = [0xD1, 0x80, 0x80, 0x80, 0x40]; // 128 MiB announced
    for garbage in [&b"\x17\x03\x03 definitely not a frame"[..], &oversize[..]] {
        let (mut send, mut receive) = connection.open_bi().await.unwrap();
        send.write_all(garbage).await.unwrap();
        let read = within("stream reset", LIMIT, receive.read_to_end(1024)).await;
        match read {
            Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
                assert_eq!(code, error_code::BAD_FRAME);
            }
            other => panic!("expected a reset stream, got {other:?}"),
        }
        let stopped = within("stream stopped", LIMIT, send.stopped()).await;
        assert_eq!(stopped.unwrap(), Some(error_code::BAD_FRAME));
    }
    assert_eq!(node.stats().streams_closed_bad_frame, 2);

    // Same connection, new stream: an undecodable request is answered as
    // such, a good one normally.
    let (mut send, mut receive) = connection.open_bi().await.unwrap();
    let mut bytes = BytesMut::new();
    frame::encode(&(7u64, 200u8), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    frame::encode(&(8u64, echo("good")), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    send.write_all(&bytes).await.unwrap();
    send.finish().unwrap();
    let answers = within("answers", LIMIT, receive.read_to_end(1 << 20))
        .await
        .unwrap();
    let mut answers = BytesMut::from(&answers[..]);
    let mut decoded = Vec::new();
    while let Some(answer) =
        frame::decode::<(u64, Answer<String>)>(&mut answers, DEFAULT_MAX_FRAME_SIZE).unwrap()
    {
        decoded.push(answer);
    }
    decoded.sort_by_key(|(id, _)| *id);
    assert_eq!(
        decoded,
        vec![
            (7, Answer::UndecodableRequest),
            (8, Answer::Response("good".to_string()))
        ]
    );
    assert!(connection.close_reason().is_none());
    assert_eq!(node.stats().frames_undecodable, 1);

    // And other clients never noticed.
    let client = TestClient::new(
        vec![ServerAddress::new(node.local_addr())],
        &certs,
        ClientSettings::default(),
    )
    .unwrap();
    assert_eq!(
        client.request(echo("still fine")).await.unwrap(),
        "still fine"
    );
}
