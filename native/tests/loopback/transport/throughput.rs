//! Throughput measurements of the transport on loopback. Not timed tests:
//! they print figures and are ignored by default. Run with
//!
//! ```text
//! cargo test --release -p distribkv-native --test loopback transport::throughput -- --ignored --nocapture --test-threads 1
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use distribkv_native::transport::frame::{self, DEFAULT_MAX_FRAME_SIZE};
use distribkv_native::transport::{Answer, PeerAddress, SendOutcome};

use super::*;

const RUN: Duration = Duration::from_secs(3);

async fn round_trips(concurrency: usize) -> f64 {
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let client = Arc::new(client_of(&node, &certs));
    client
        .request(TestRequest::Echo("warm up".into()))
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < RUN {
                client
                    .request(TestRequest::Echo("0123456789abcdef".into()))
                    .await
                    .unwrap();
                done += 1;
            }
            done
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand"]
async fn measure_request_round_trips() {
    for concurrency in [1, 64] {
        let rate = round_trips(concurrency).await;
        println!("round trips, one connection, {concurrency:>2} concurrent: {rate:>9.0} /s");
    }
}

/// The alternative design: one QUIC stream per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand"]
async fn measure_stream_per_request_round_trips() {
    let (_dir, certs) = cluster_certs();
    let node = start_echo_node(&certs);
    let (_endpoint, connection) = raw_connection(certs.client_config().unwrap(), &node).await;
    for concurrency in [1, 64] {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let connection = connection.clone();
            tasks.spawn(async move {
                let mut done = 0u64;
                let mut bytes = BytesMut::new();
                while started.elapsed() < RUN {
                    let (mut send, mut receive) = connection.open_bi().await.unwrap();
                    frame::encode(
                        &(1u64, TestRequest::Echo("0123456789abcdef".into())),
                        &mut bytes,
                        DEFAULT_MAX_FRAME_SIZE,
                    )
                    .unwrap();
                    send.write_all(&bytes.split()).await.unwrap();
                    send.finish().unwrap();
                    let answer = receive.read_to_end(1 << 16).await.unwrap();
                    let mut answer = BytesMut::from(&answer[..]);
                    let (_, answer) =
                        frame::decode::<(u64, Answer<String>)>(&mut answer, DEFAULT_MAX_FRAME_SIZE)
                            .unwrap()
                            .unwrap();
                    assert!(matches!(answer, Answer::Response(_)));
                    done += 1;
                }
                done
            });
        }
        let mut total = 0;
        while let Some(done) = tasks.join_next().await {
            total += done.unwrap();
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!("round trips, stream per request, {concurrency:>2} concurrent: {rate:>9.0} /s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand"]
async fn measure_one_way_peer_messages() {
    let (_dir, certs) = cluster_certs();
    let (one, _one_inbound) = start_node(1, &certs, any_port());
    let (two, mut two_inbound) = start_node(2, &certs, any_port());
    one.add_peer(PeerAddress::new(2, two.local_addr()));
    two.add_peer(PeerAddress::new(1, one.local_addr()));
    wait_until("link", Duration::from_secs(10), || one.is_connected(2)).await;

    let receiver = tokio::spawn(async move {
        let mut received = 0u64;
        let started = Instant::now();
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(500), two_inbound.peer_messages.recv()).await
        {
            received += 1;
        }
        (
            received,
            started.elapsed().saturating_sub(Duration::from_millis(500)),
        )
    });
    let started = Instant::now();
    let mut seq = 0u64;
    let mut full = 0u64;
    while started.elapsed() < RUN {
        for _ in 0..256 {
            let message = TestMessage::Ping {
                seq,
                payload: vec![0; 64],
            };
            match one.send(2, message) {
                SendOutcome::Queued => seq += 1,
                _ => full += 1,
            }
        }
        tokio::task::yield_now().await;
    }
    let (received, elapsed) = receiver.await.unwrap();
    let stats = one.stats();
    println!(
        "one-way peer messages (64-byte payload): {:>9.0} /s received; {} sent in {} batches \
         ({:.1} per write), {} refused by a full queue",
        received as f64 / elapsed.as_secs_f64(),
        stats.messages_sent,
        stats.batches_written,
        stats.messages_sent as f64 / stats.batches_written.max(1) as f64,
        full
    );
}
