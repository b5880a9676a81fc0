//! A link through a blackout: after the network comes back, messages flow
//! again within a fraction of a second, not after QUIC's doubling probe
//! timeouts (seconds after a blackout of a few seconds).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use distribkv_native::transport::{PeerAddress, TransportSettings};

use super::*;

const LIMIT: Duration = Duration::from_secs(10);

/// A UDP relay between a dialling node and `target`, on a thread of its
/// own: what arrives from `target` goes to the last other sender, the
/// rest to `target`. While `dark` is set it drops everything.
struct Relay {
    addr: SocketAddr,
    dark: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let dark = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_dark, thread_stop) = (dark.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            let mut dialler: Option<SocketAddr> = None;
            while !thread_stop.load(Ordering::Relaxed) {
                let Ok((length, from)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if thread_dark.load(Ordering::Relaxed) {
                    continue;
                }
                let to = if from == target {
                    match dialler {
                        Some(to) => to,
                        None => continue,
                    }
                } else {
                    dialler = Some(from);
                    target
                };
                let _ = socket.send_to(&buffer[..length], to);
            }
        });
        Relay { addr, dark, stop }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn ping(seq: u64) -> TestMessage {
    TestMessage::Ping {
        seq,
        payload: vec![seq as u8; 32],
    }
}

/// Sends a ping every 20 ms, seq from `first`, until one of seq `first` or
/// later arrives; returns when it arrived.
async fn first_arrival(one: &Node, two_inbound: &mut NodeInbound, first: u64) -> Instant {
    within("a ping through the relay", LIMIT, async {
        let mut seq = first;
        loop {
            let _ = one.send(2, ping(seq));
            seq += 1;
            if let Ok(Some((_, TestMessage::Ping { seq: got, .. }))) =
                tokio::time::timeout(Duration::from_millis(20), two_inbound.peer_messages.recv())
                    .await
            {
                if got >= first {
                    return Instant::now();
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_carries_messages_again_soon_after_a_blackout() {
    init_logging();
    let (_dir, certs) = cluster_certs();
    let settings = TransportSettings::default();
    let (one, _one_inbound) = start_node_with(1, &certs, any_port(), settings.clone());
    let (two, mut two_inbound) = start_node_with(2, &certs, any_port(), settings.clone());
    let relay = Relay::start(two.local_addr());
    one.add_peer(PeerAddress::new(2, relay.addr));
    two.add_peer(PeerAddress::new(1, one.local_addr()));
    first_arrival(&one, &mut two_inbound, 0).await;

    // 6 s dark while node 1 keeps sending, as a leader under load does
    // (4 KiB every 20 ms): the unacknowledged bytes fill the congestion
    // window, QUIC declares persistent congestion, and from then on only
    // probes go out, at intervals that double with the silence.
    relay.dark.store(true, Ordering::Relaxed);
    let dark_until = Instant::now() + Duration::from_millis(6000);
    let mut seq = 1_000;
    while Instant::now() < dark_until {
        let _ = one.send(
            2,
            TestMessage::Ping {
                seq,
                payload: vec![7; 4096],
            },
        );
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(1), two_inbound.peer_messages.recv()).await
    {}
    relay.dark.store(false, Ordering::Relaxed);
    let lit = Instant::now();
    let arrived = first_arrival(&one, &mut two_inbound, 1_000_000).await;
    let after = arrived - lit;
    assert!(
        after < Duration::from_millis(1_000),
        "a message sent after the blackout arrived {after:?} after it \
         (the link should have dropped its silent connection after {:?} and dialled again)",
        settings.peer_silence_limit
    );
    println!("first message after a 6 s blackout: {after:?}");
}
