//! A user-space UDP relay on every link between two hosts: delay (up to
//! 500 ms), jitter, reordering, duplication and bit flips on the wire,
//! under the nemesis' control. There is no netem on this kernel, so the
//! datagrams of every node-to-node link are steered through this relay,
//! from the start of a test to its end.
//!
//! # How a datagram goes through it
//!
//! In node `i`'s namespace, `iptables -t nat -A OUTPUT` rewrites the
//! destination of every datagram to node `j`'s port ([`PORT`]) into the
//! relay's socket for the link `i → j`, which lives in the clients'
//! namespace at `198.18.X.(100 + j)`, port `20000 + 16 i + j`. The relay
//! sends it on to `198.18.X.j` from a socket bound to `198.18.X.(100 + i)`
//! (same port), and sends node `j`'s answers back the other way. Node `i`
//! sees the answers come from `198.18.X.j:7000` (conntrack undoes the
//! rewrite), node `j` sees the datagrams come from `198.18.X.(100 + i)`: so
//! `198.18.X.(100 + k)` stands for "node `k`, through the relay" in the
//! firewall rules, which match both of a node's addresses. The clients
//! talk to the nodes directly and never go through the relay.
//!
//! The peers know each other by their certificates and their hello, never
//! by address, so the detour changes nothing for them but the timing.
//!
//! # Faults
//!
//! Each directed link has its [`LinkFaults`]; a datagram going `from → to`
//! (either the request or the answer of a connection) follows the faults
//! of that direction. A corrupted datagram has one random bit flipped:
//! QUIC's packet protection (AEAD) must reject it, so it is lost, never
//! decoded.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::net::PORT;
use super::rng::Rng;

/// The relay's alias of node `k` is `198.18.X.(ALIAS_BASE + k)`.
pub const ALIAS_BASE: u8 = 100;
/// The relay's ports: `PORT_BASE + 16 from + to`.
const PORT_BASE: u16 = 20000;

/// What happens to the datagrams of one direction of one link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFaults {
    /// Every datagram waits this long, ms.
    pub delay_ms: u64,
    /// Plus a uniform extra of up to this, ms (reorders datagrams closer
    /// together than that).
    pub jitter_ms: u64,
    /// Probability that a datagram is held back a further 10 to 60 ms,
    /// behind the ones sent after it.
    pub reorder: f64,
    /// Probability that a datagram is sent twice (the copy with its own
    /// delay).
    pub duplicate: f64,
    /// Probability that one random bit of a datagram is flipped.
    pub corrupt: f64,
}

impl LinkFaults {
    fn is_clean(&self) -> bool {
        *self == LinkFaults::default()
    }
}

/// What the relay did, over its whole life.
#[derive(Debug, Default)]
pub struct RelayCounts {
    /// Datagrams forwarded (copies included).
    pub forwarded: AtomicU64,
    /// Datagrams held back by a delay, jitter or reordering.
    pub delayed: AtomicU64,
    /// Extra copies sent.
    pub duplicated: AtomicU64,
    /// Datagrams sent with a flipped bit.
    pub corrupted: AtomicU64,
}

impl RelayCounts {
    /// One line: `forwarded N, delayed N, duplicated N, corrupted N`.
    pub fn render(&self) -> String {
        format!(
            "forwarded {}, delayed {}, duplicated {}, corrupted {}",
            self.forwarded.load(Ordering::Relaxed),
            self.delayed.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed),
            self.corrupted.load(Ordering::Relaxed)
        )
    }
}

type Links = Arc<Mutex<BTreeMap<(usize, usize), LinkFaults>>>;

/// The relay of one network: its thread, the faults of every link, counts.
pub struct Relay {
    links: Links,
    /// What it did.
    pub counts: Arc<RelayCounts>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("counts", &self.counts.render())
            .finish_non_exhaustive()
    }
}

/// Where the relay of `subnet` (`198.18.X.0`) puts node `k`'s alias.
pub fn alias(subnet: Ipv4Addr, k: usize) -> Ipv4Addr {
    let o = subnet.octets();
    Ipv4Addr::new(o[0], o[1], o[2], ALIAS_BASE + k as u8)
}

/// The relay's port for the link `from → to`.
pub fn relay_port(from: usize, to: usize) -> u16 {
    PORT_BASE + 16 * from as u16 + to as u16
}

impl Relay {
    /// Starts the relay for `hosts` nodes of `subnet` inside namespace
    /// `clients_ns` (whose interface already has the aliases). The caller
    /// installs the rewriting rules in the nodes' namespaces.
    pub fn start(
        clients_ns: &str,
        subnet: Ipv4Addr,
        hosts: usize,
        seed: u64,
    ) -> Result<Relay, String> {
        let links: Links = Arc::new(Mutex::new(BTreeMap::new()));
        let counts = Arc::new(RelayCounts::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<Result<(), String>>();
        let namespace_file = format!("/var/run/netns/{clients_ns}");
        let thread = {
            let links = links.clone();
            let counts = counts.clone();
            std::thread::spawn(move || {
                let runtime = match enter_namespace(&namespace_file).and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())
                }) {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let root = Rng::new(seed);
                    for from in 1..=hosts {
                        for to in (1..=hosts).filter(|&to| to != from) {
                            let pair = match Pair::bind(subnet, from, to).await {
                                Ok(pair) => pair,
                                Err(error) => {
                                    let _ = ready_tx.send(Err(error));
                                    return;
                                }
                            };
                            let rng = root.fork((from * 16 + to) as u64);
                            tokio::spawn(pair.run(links.clone(), counts.clone(), rng));
                        }
                    }
                    let _ = ready_tx.send(Ok(()));
                    let _ = stopped.await;
                });
            })
        };
        let outcome = ready
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the relay did not start within 10 s".to_string())
            .and_then(|started| started);
        let relay = Relay {
            links,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        };
        outcome.map(|()| relay)
    }

    /// Sets the faults of the direction `from → to`.
    pub fn set(&self, from: usize, to: usize, faults: LinkFaults) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if faults.is_clean() {
            links.remove(&(from, to));
        } else {
            links.insert((from, to), faults);
        }
    }

    /// Every link clean again (datagrams already held back still go out).
    pub fn heal(&self) {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Moves this thread into the network namespace mounted at `file`; the
/// sockets it creates afterwards live there.
fn enter_namespace(file: &str) -> Result<(), String> {
    let namespace = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    rustix::thread::move_into_link_name_space(
        namespace.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("setns {file}: {e}"))
}

/// The two sockets of the link `from → to`.
struct Pair {
    from: usize,
    to: usize,
    /// Where node `from`'s datagrams arrive (rewritten by its firewall).
    listen: Arc<UdpSocket>,
    /// Where they leave for node `to`, as `from`'s alias.
    upstream: Arc<UdpSocket>,
    /// Node `to`'s real address.
    target: SocketAddr,
}

impl Pair {
    async fn bind(subnet: Ipv4Addr, from: usize, to: usize) -> Result<Pair, String> {
        let port = relay_port(from, to);
        let bind = |ip: Ipv4Addr| async move {
            UdpSocket::bind(SocketAddrV4::new(ip, port))
                .await
                .map(Arc::new)
                .map_err(|e| format!("relay socket {ip}:{port}: {e}"))
        };
        let o = subnet.octets();
        Ok(Pair {
            from,
            to,
            listen: bind(alias(subnet, to)).await?,
            upstream: bind(alias(subnet, from)).await?,
            target: SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(o[0], o[1], o[2], to as u8),
                PORT,
            )),
        })
    }

    /// Forwards both ways until the runtime stops.
    async fn run(self, links: Links, counts: Arc<RelayCounts>, mut rng: Rng) {
        let mut sender: Option<SocketAddr> = None;
        let mut outbound = vec![0u8; 65_536];
        let mut inbound = vec![0u8; 65_536];
        loop {
            tokio::select! {
                received = self.listen.recv_from(&mut outbound) => {
                    let Ok((length, source)) = received else { continue };
                    sender = Some(source);
                    let faults = link_faults(&links, self.from, self.to);
                    forward(&self.upstream, self.target, &outbound[..length], faults, &counts, &mut rng).await;
                }
                received = self.upstream.recv_from(&mut inbound) => {
                    let Ok((length, _)) = received else { continue };
                    let Some(sender) = sender else { continue };
                    let faults = link_faults(&links, self.to, self.from);
                    forward(&self.listen, sender, &inbound[..length], faults, &counts, &mut rng).await;
                }
            }
        }
    }
}

fn link_faults(links: &Links, from: usize, to: usize) -> LinkFaults {
    links
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(from, to))
        .copied()
        .unwrap_or_default()
}

/// Sends `datagram` to `to` through `socket` as `faults` say.
async fn forward(
    socket: &Arc<UdpSocket>,
    to: SocketAddr,
    datagram: &[u8],
    faults: LinkFaults,
    counts: &RelayCounts,
    rng: &mut Rng,
) {
    if faults.is_clean() {
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        let _ = socket.send_to(datagram, to).await;
        return;
    }
    let copies = if faults.duplicate > 0.0 && rng.chance(faults.duplicate) {
        counts.duplicated.fetch_add(1, Ordering::Relaxed);
        2
    } else {
        1
    };
    for _ in 0..copies {
        let mut bytes = datagram.to_vec();
        if faults.corrupt > 0.0 && rng.chance(faults.corrupt) && !bytes.is_empty() {
            let bit = rng.below(bytes.len() as u64 * 8);
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            counts.corrupted.fetch_add(1, Ordering::Relaxed);
        }
        let mut delay = faults.delay_ms;
        if faults.jitter_ms > 0 {
            delay += rng.below(faults.jitter_ms + 1);
        }
        if faults.reorder > 0.0 && rng.chance(faults.reorder) {
            delay += rng.between(10, 60);
        }
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
        if delay == 0 {
            let _ = socket.send_to(&bytes, to).await;
            continue;
        }
        counts.delayed.fetch_add(1, Ordering::Relaxed);
        let socket = socket.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let _ = socket.send_to(&bytes, to).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    /// A sending socket and a receiving one on 127.0.0.1.
    async fn sockets() -> (Arc<UdpSocket>, UdpSocket, SocketAddr) {
        let from = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let to = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = to.local_addr().unwrap();
        (from, to, address)
    }

    /// The datagrams that arrive within `limit`.
    async fn receive_all(socket: &UdpSocket, limit: Duration) -> Vec<Vec<u8>> {
        let mut received = Vec::new();
        let mut buffer = vec![0u8; 2048];
        while let Ok(Ok((length, _))) =
            tokio::time::timeout(limit, socket.recv_from(&mut buffer)).await
        {
            received.push(buffer[..length].to_vec());
        }
        received
    }

    fn datagram() -> Vec<u8> {
        (0..200u32).map(|i| (i * 7) as u8).collect()
    }

    #[test]
    fn a_clean_link_forwards_each_datagram_once_unchanged() {
        block_on(async {
            let (from, to, address) = sockets().await;
            let counts = RelayCounts::default();
            let mut rng = Rng::new(1);
            forward(
                &from,
                address,
                &datagram(),
                LinkFaults::default(),
                &counts,
                &mut rng,
            )
            .await;
            let received = receive_all(&to, Duration::from_millis(300)).await;
            assert_eq!(received, vec![datagram()]);
            assert_eq!(
                counts.render(),
                "forwarded 1, delayed 0, duplicated 0, corrupted 0"
            );
        });
    }

    #[test]
    fn duplication_sends_two_copies_and_corruption_flips_exactly_one_bit() {
        block_on(async {
            let (from, to, address) = sockets().await;
            let counts = RelayCounts::default();
            let mut rng = Rng::new(2);
            let duplicate = LinkFaults {
                duplicate: 1.0,
                ..LinkFaults::default()
            };
            forward(&from, address, &datagram(), duplicate, &counts, &mut rng).await;
            assert_eq!(
                receive_all(&to, Duration::from_millis(300)).await,
                vec![datagram(), datagram()]
            );
            let corrupt = LinkFaults {
                corrupt: 1.0,
                ..LinkFaults::default()
            };
            for _ in 0..20 {
                forward(&from, address, &datagram(), corrupt, &counts, &mut rng).await;
            }
            let received = receive_all(&to, Duration::from_millis(300)).await;
            assert_eq!(received.len(), 20);
            for copy in received {
                let flipped: u32 = copy
                    .iter()
                    .zip(datagram())
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum();
                assert_eq!(flipped, 1, "{copy:?}");
            }
            assert_eq!(counts.corrupted.load(Ordering::Relaxed), 20);
        });
    }

    #[test]
    fn a_delay_holds_every_datagram_back_at_least_that_long() {
        block_on(async {
            let (from, to, address) = sockets().await;
            let counts = RelayCounts::default();
            let mut rng = Rng::new(3);
            let slow = LinkFaults {
                delay_ms: 150,
                jitter_ms: 50,
                ..LinkFaults::default()
            };
            let sent = tokio::time::Instant::now();
            for _ in 0..5 {
                forward(&from, address, &datagram(), slow, &counts, &mut rng).await;
            }
            let mut buffer = vec![0u8; 2048];
            tokio::time::timeout(Duration::from_secs(5), to.recv_from(&mut buffer))
                .await
                .expect("the first datagram within 5 s")
                .unwrap();
            // The first one arrives no sooner than the delay (an upper bound
            // would depend on the machine's load).
            let first = sent.elapsed();
            assert!(first >= Duration::from_millis(150), "after {first:?}");
            let rest = receive_all(&to, Duration::from_millis(1000)).await;
            assert_eq!(rest.len(), 4);
            assert_eq!(counts.delayed.load(Ordering::Relaxed), 5);
        });
    }
}
