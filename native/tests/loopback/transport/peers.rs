//! Peer links: messages both ways, reconnects, hellos, bad frames from peers.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use distribkv_native::transport::frame::{self, DEFAULT_MAX_FRAME_SIZE};
use distribkv_native::transport::{
    PeerAddress, PeerHello, SendOutcome, TransportSettings, error_code,
};

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

fn ping(seq: u64) -> TestMessage {
    TestMessage::Ping {
        seq,
        payload: vec![seq as u8; 32],
    }
}

/// The seq of probe messages, which the tests' counted messages never use.
const PROBE: u64 = u64::MAX;

/// Sends probes from `from` to `to` until one arrives in `inbound`: a link is
/// "connected" as soon as its hello is written, but a hello that reaches a
/// node before that node knows the sender is refused (and the connection
/// closed, losing what was sent on it), so "connected" alone does not prove
/// delivery. Returns how many probes were sent; probes still in flight are
/// skipped here (another sender's) and by [`next_counted`].
async fn prove_delivery(from: &Node, to: u64, inbound: &mut NodeInbound) -> u64 {
    within("a probe delivered", LIMIT, async {
        let mut sent = 0;
        loop {
            if from.send(to, ping(PROBE)) == SendOutcome::Queued {
                sent += 1;
            }
            if let Ok(Some((sender, message))) =
                tokio::time::timeout(Duration::from_millis(20), inbound.peer_messages.recv()).await
            {
                // Nothing but probes is sent yet; a late probe of an earlier
                // call (another sender's, to this node) is skipped.
                assert!(
                    matches!(message, TestMessage::Ping { seq: PROBE, .. }),
                    "only probes so far"
                );
                if sender == from.node_id() {
                    return sent;
                }
            }
        }
    })
    .await
}

/// Sends pings from `from` to node `to`, seq `first` and up, one every
/// 20 ms, until one arrives in `inbound`; returns it.
async fn send_until_received(
    what: &str,
    limit: Duration,
    from: &Node,
    to: u64,
    first: u64,
    inbound: &mut NodeInbound,
) -> (u64, TestMessage) {
    within(what, limit, async {
        let mut seq = first;
        loop {
            let _ = from.send(to, ping(seq));
            seq += 1;
            if let Ok(Some(received)) =
                tokio::time::timeout(Duration::from_millis(20), inbound.peer_messages.recv()).await
            {
                return received;
            }
        }
    })
    .await
}

/// Nodes 1 and 2 with `settings`, each the other's peer, linked both ways.
async fn linked_pair(
    certs: &distribkv_native::tls::CertSet,
    settings: TransportSettings,
) -> ((Node, NodeInbound), (Node, NodeInbound)) {
    let (one, one_inbound) = start_node_with(1, certs, any_port(), settings.clone());
    let (two, two_inbound) = start_node_with(2, certs, any_port(), settings);
    one.add_peer(PeerAddress::new(2, two.local_addr()));
    two.add_peer(PeerAddress::new(1, one.local_addr()));
    wait_until("link 1->2", LIMIT, || one.is_connected(2)).await;
    wait_until("link 2->1", LIMIT, || two.is_connected(1)).await;
    ((one, one_inbound), (two, two_inbound))
}

/// Keep-alives and an idle timeout far beyond the tests' limit: a dead
/// connection is noticed only by what the test checks.
fn slow_to_notice() -> TransportSettings {
    TransportSettings {
        idle_timeout: Duration::from_secs(60),
        keep_alive: Duration::from_secs(30),
        ..TransportSettings::default()
    }
}

/// "Crashes" node `two` without a word: it moves to another socket without
/// closing anything. Quinn keeps reading the old socket until traffic
/// arrives on the new one, so it sends node 1 a message, and waits for it
/// in `one_inbound`.
async fn crash_by_moving(two: &Node, one_inbound: &mut NodeInbound) {
    two.endpoint()
        .rebind(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    two.send(1, ping(2));
    within(
        "message from the moved node",
        LIMIT,
        one_inbound.peer_messages.recv(),
    )
    .await;
}

/// The next message that is not a probe.
async fn next_counted(inbound: &mut NodeInbound) -> (u64, TestMessage) {
    loop {
        let received = within("peer messages", LIMIT, inbound.peer_messages.recv())
            .await
            .unwrap();
        if !matches!(received.1, TestMessage::Ping { seq: PROBE, .. }) {
            return received;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_exchange_messages_both_ways() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let mut nodes = Vec::new();
    let mut inbounds = Vec::new();
    for id in 1..=3 {
        let (node, inbound) = start_node(id, &certs, any_port());
        nodes.push(node);
        inbounds.push(inbound);
    }
    for node in &nodes {
        for other in &nodes {
            node.add_peer(PeerAddress::new(other.node_id(), other.local_addr()));
        }
        assert_eq!(node.peers().len(), 2, "a node is never its own peer");
    }
    for node in &nodes {
        for peer in node.peers() {
            wait_until("links up", LIMIT, || node.is_connected(peer)).await;
        }
    }
    let mut baseline = Vec::new();
    for node in &nodes {
        let mut probes = 0;
        for peer in node.peers() {
            probes += prove_delivery(node, peer, &mut inbounds[peer as usize - 1]).await;
        }
        baseline.push((probes, node.stats()));
    }

    const COUNT: u64 = 500;
    for node in &nodes {
        for peer in node.peers() {
            for seq in 0..COUNT {
                assert_eq!(node.send(peer, ping(seq)), SendOutcome::Queued);
            }
        }
    }
    for (index, inbound) in inbounds.iter_mut().enumerate() {
        let me = index as u64 + 1;
        let mut next_seq: HashMap<u64, u64> = HashMap::new();
        for _ in 0..2 * COUNT {
            let (from, message) = next_counted(inbound).await;
            assert_ne!(from, me);
            let TestMessage::Ping { seq, payload } = message;
            let expected = next_seq.entry(from).or_insert(0);
            assert_eq!(seq, *expected, "in order on one link");
            assert_eq!(payload, vec![seq as u8; 32]);
            *expected += 1;
        }
        assert_eq!(next_seq.len(), 2);
    }
    for (node, (probes, before)) in nodes.iter().zip(&baseline) {
        let stats = node.stats();
        // Every counted message was sent; the probes were sent or dropped
        // with a refused connection.
        let sent = stats.messages_sent - before.messages_sent;
        assert!(
            (2 * COUNT..=2 * COUNT + probes).contains(&sent),
            "{stats:?}"
        );
        let received = stats.messages_received - before.messages_received;
        assert!(received >= 2 * COUNT, "{stats:?}");
        assert!(
            stats.batches_written - before.batches_written < sent,
            "batched: {stats:?}"
        );
    }
    assert_eq!(nodes[0].send(99, ping(0)), SendOutcome::DroppedUnknownPeer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_peer_receives_messages_again() {
    init_logging();
    let (dir, certs) = cluster_certs();
    let ((one, _one_inbound), (two, mut two_inbound)) =
        linked_pair(&certs, TransportSettings::default()).await;
    let two_addr = two.local_addr();
    prove_delivery(&one, 2, &mut two_inbound).await;

    two.shutdown().await;
    drop(two_inbound);
    wait_until("link 1->2 down", LIMIT, || !one.is_connected(2)).await;
    // Down: messages are dropped, not queued forever, and never block.
    // Between two dials the link refuses them as unreachable (while it
    // dials, they queue, up to the queue's capacity).
    let deadline = std::time::Instant::now() + LIMIT;
    let mut seq = 0;
    while one.send(2, ping(seq)) != SendOutcome::DroppedUnreachable {
        assert!(
            std::time::Instant::now() < deadline,
            "no send refused as unreachable while the peer is down: {:?}",
            one.stats()
        );
        seq += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let certs = load(dir.path());
    wait_for_free_port(two_addr).await;
    let (two, mut two_inbound) = start_node(2, &certs, two_addr);
    two.add_peer(PeerAddress::new(1, one.local_addr()));
    let received = send_until_received(
        "messages after restart",
        LIMIT,
        &one,
        2,
        1000,
        &mut two_inbound,
    )
    .await;
    assert_eq!(received.0, 1);
    let stats = one.stats();
    assert!(stats.connections_established >= 2, "{stats:?}");
    assert!(stats.dropped_unreachable > 0, "{stats:?}");
}

/// A node that crashes cannot say goodbye. When it comes back on the same
/// address, it derives the same stateless-reset key, so its peers' old
/// connections are reset at their next packet instead of waiting for the
/// idle timeout (here 60 s, far beyond the test's limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_peer_is_detected_by_stateless_reset() {
    init_logging();
    let (dir, certs) = cluster_certs();
    let ((one, mut one_inbound), (two, mut two_inbound)) =
        linked_pair(&certs, slow_to_notice()).await;
    let two_addr = two.local_addr();
    // Not one message: the first may be lost with a refused hello.
    prove_delivery(&one, 2, &mut two_inbound).await;

    crash_by_moving(&two, &mut one_inbound).await;
    wait_for_free_port(two_addr).await;
    let certs = load(dir.path());
    let (two_again, mut inbound_again) = start_node_with(2, &certs, two_addr, slow_to_notice());
    two_again.add_peer(PeerAddress::new(1, one.local_addr()));
    let started = std::time::Instant::now();
    let limit = Duration::from_secs(5);
    let to_restarted = "messages to the restarted node";
    send_until_received(to_restarted, limit, &one, 2, 100, &mut inbound_again).await;
    assert!(started.elapsed() < limit);
    drop(two);
}

/// A node whose peer crashed and came back, and which has nothing to send
/// to it (a follower, to another follower), gets its link to it back: the
/// restarted peer's hello, which carries a new incarnation, makes the link
/// dial again at once (in a soak, without that, a follower's votes to a
/// restarted peer were lost for 6.7 s). Keep-alives and the idle timeout
/// are far beyond the test's limit here. This checks the outcome, not the
/// cause: in this small setting the old connection also draws a stateless
/// reset by itself (the test passes with the hello's notice switched off);
/// what the soak had, a congestion window full of unacknowledged packets
/// that holds everything back but probes, is not reproduced here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_from_a_restarted_peer_makes_the_link_to_it_dial_again() {
    init_logging();
    let (dir, certs) = cluster_certs();
    let ((one, mut one_inbound), (two, mut two_inbound)) =
        linked_pair(&certs, slow_to_notice()).await;
    let two_addr = two.local_addr();
    prove_delivery(&one, 2, &mut two_inbound).await;
    let dialled = one.stats().connections_established;

    // Node 2 "crashes" without a word and comes back on its address; node
    // 1 sends nothing.
    crash_by_moving(&two, &mut one_inbound).await;
    wait_for_free_port(two_addr).await;
    let certs = load(dir.path());
    let (two_again, mut inbound_again) = start_node_with(2, &certs, two_addr, slow_to_notice());
    two_again.add_peer(PeerAddress::new(1, one.local_addr()));
    wait_until("link 1->2 dialled again", LIMIT, || {
        one.stats().connections_established > dialled
    })
    .await;
    wait_until("link 1->2 up again", LIMIT, || one.is_connected(2)).await;
    let _ = one.send(2, ping(3));
    let (from, _) = within(
        "a message to the restarted node",
        LIMIT,
        inbound_again.peer_messages.recv(),
    )
    .await
    .unwrap();
    assert_eq!(from, 1);
    drop(two);
}

/// Opens a raw peer stream with the node certificate, as a node would.
async fn raw_peer_stream(
    certs: &distribkv_native::tls::CertSet,
    target: &Node,
) -> (quinn::Endpoint, quinn::Connection, quinn::SendStream) {
    let (endpoint, connection) = raw_connection(certs.node_client_config().unwrap(), target).await;
    let stream = connection.open_uni().await.unwrap();
    (endpoint, connection, stream)
}

fn hello(certs: &distribkv_native::tls::CertSet, node_id: u64) -> PeerHello {
    PeerHello {
        cluster_id: certs.cluster_id().0,
        node_id,
        incarnation: 7,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hellos_with_a_wrong_identity_are_refused() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let (node, mut inbound) = start_node(1, &certs, any_port());
    node.add_peer(PeerAddress::new(2, "127.0.0.1:9".parse().unwrap()));
    let wrong_hellos = [
        PeerHello {
            cluster_id: certs.cluster_id().0 ^ 1,
            ..hello(&certs, 2)
        },
        hello(&certs, 1),
        hello(&certs, 42),
    ];
    for wrong in wrong_hellos {
        let (_endpoint, connection, mut stream) = raw_peer_stream(&certs, &node).await;
        let mut bytes = BytesMut::new();
        frame::encode(&wrong, &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
        frame::encode(&ping(1), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
        stream.write_all(&bytes).await.unwrap();
        let error = within("refusal", LIMIT, connection.closed()).await;
        match error {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, error_code::HELLO_REFUSED, "{wrong:?}");
            }
            other => panic!("unexpected close for {wrong:?}: {other}"),
        }
    }
    assert!(
        inbound.peer_messages.try_recv().is_err(),
        "nothing delivered"
    );
    assert_eq!(node.stats().connections_refused, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_peer_frames_are_dropped_and_the_stream_goes_on() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let (node, mut inbound) = start_node(1, &certs, any_port());
    node.add_peer(PeerAddress::new(2, "127.0.0.1:9".parse().unwrap()));
    let (_endpoint, _connection, mut stream) = raw_peer_stream(&certs, &node).await;
    let mut bytes = BytesMut::new();
    frame::encode(&hello(&certs, 2), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    frame::encode(&ping(1), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    // A well-delimited frame whose payload is no TestMessage (variant 9).
    frame::encode(&(9u8, 1u8), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    // A frame of a future format version.
    let future_at = bytes.len();
    frame::encode(&ping(99), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    bytes[future_at] = frame::FRAME_MAGIC | 2;
    frame::encode(&ping(2), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
    stream.write_all(&bytes).await.unwrap();
    for expected in [1, 2] {
        let (from, message) = within("good frames", LIMIT, inbound.peer_messages.recv())
            .await
            .unwrap();
        assert_eq!((from, message), (2, ping(expected)));
    }
    let stats = node.stats();
    assert_eq!(stats.frames_undecodable, 1, "{stats:?}");
    assert_eq!(stats.frames_wrong_version, 1, "{stats:?}");
    assert_eq!(stats.streams_closed_bad_frame, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_a_peer_stream_closes_only_that_stream() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let ((one, mut one_inbound), (two, _two_inbound)) =
        linked_pair(&certs, TransportSettings::default()).await;

    for garbage in [
        &b"\x00garbage that is no frame"[..],
        &[0xD1, 0xFF, 0xFF, 0xFF, 0x7F][..],
    ] {
        let (_endpoint, connection, mut stream) = raw_peer_stream(&certs, &one).await;
        let mut bytes = BytesMut::new();
        frame::encode(&hello(&certs, 2), &mut bytes, DEFAULT_MAX_FRAME_SIZE).unwrap();
        bytes.extend_from_slice(garbage);
        stream.write_all(&bytes).await.unwrap();
        let stopped = within("stream stopped", LIMIT, stream.stopped()).await;
        assert_eq!(stopped.unwrap(), Some(error_code::BAD_FRAME));
        assert!(
            connection.close_reason().is_none(),
            "only the stream is closed"
        );
    }
    assert_eq!(one.stats().streams_closed_bad_frame, 2);

    // The real link from node 2 still works.
    two.send(1, ping(5));
    let (from, message) = within("real link", LIMIT, one_inbound.peer_messages.recv())
        .await
        .unwrap();
    assert_eq!((from, message), (2, ping(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_instead_of_blocking() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let settings = TransportSettings {
        peer_queue_capacity: 4,
        ..TransportSettings::default()
    };
    // The peer address never answers: the link stays in its first handshake.
    let (node, _inbound) = start_node_with(1, &certs, any_port(), settings);
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    node.add_peer(PeerAddress::new(2, silent.local_addr().unwrap()));
    let outcomes: Vec<SendOutcome> = (0..10).map(|seq| node.send(2, ping(seq))).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == SendOutcome::Queued)
            .count(),
        4
    );
    assert!(outcomes.contains(&SendOutcome::DroppedQueueFull));
    assert_eq!(node.stats().dropped_queue_full, 6);
}
