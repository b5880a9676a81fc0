//! "Hosts" as Linux network namespaces on one bridge, and the firewall rules
//! that cut them apart.
//!
//! # Topology
//!
//! ```text
//!   dkf<pid>-<k>-br      a namespace holding only the bridge br0
//!     br0 ── p1 ═══ eth0  dkf<pid>-<k>-n1   198.18.X.1   node 1
//!         ── p2 ═══ eth0  dkf<pid>-<k>-n2   198.18.X.2   node 2
//!         ── ...
//!         ── pc ═══ eth0  dkf<pid>-<k>-c    198.18.X.250 the clients
//! ```
//!
//! Every interface is created inside a namespace this suite created (a veth
//! pair is made in the bridge's namespace with its other end put straight
//! into the host's), so the short names `br0`, `p1`, `eth0` cannot clash
//! with anything: the machine's own namespace never holds any of them. The
//! namespaces' names carry the test process id (`dkf<pid>-`), which is how
//! a later run recognises the leftovers of a crashed one.
//!
//! The addresses are one /24 of 198.18.0.0/15, the range RFC 2544 sets
//! aside for benchmarking. In the machine's own namespace the /24 gets a
//! blackhole route (protocol number [`range::ROUTE_PROTO`], metric = the
//! process id), so that even by mistake nothing there sends to those
//! addresses through the default route. A machine that already routes any
//! part of the range, or has an address in it, is refused ([`range`]).
//!
//! # Faults
//!
//! Faults are iptables rules in the INPUT chain of a host's namespace,
//! matching UDP (QUIC) by source address: "host `to` hears nothing from
//! host `from`" is one rule in `to`'s namespace, so one-way cuts, partitions
//! and bridges are sets of such rules, and random loss is one rule with
//! `-m statistic --mode random`. Healing flushes the chains. The clients'
//! namespace is never cut off by a partition.
//!
//! Beside them, every node-to-node datagram goes through a user-space relay
//! ([`super::relay`]) that delays, reorders, duplicates or corrupts them on
//! the nemesis' order: `iptables -t nat` in each node's namespace steers
//! them there, and a node seen through the relay has a second address,
//! `198.18.X.(100 + k)`, which the rules above match too.
//!
//! # Cleanup
//!
//! Dropping a [`Network`] kills every process still inside its namespaces
//! (SIGCONT then SIGKILL), deletes the namespaces (which deletes their
//! interfaces) and removes the route, also while a test panics. Processes,
//! namespaces and routes left by a run that was killed outright are removed
//! at the start of the next one ([`leftovers::clean_stale`]), and only
//! those: names and routes of this suite whose owner process is gone.

mod leftovers;
mod range;

use std::net::Ipv4Addr;

use super::relay::{self, LinkFaults, Relay};
use leftovers::clean_stale;
use range::{ROUTE_PROTO, pick_subnet};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Every node listens on this UDP port of its own address.
pub const PORT: u16 = 7000;

/// The last octet of the clients' address.
const CLIENT_OCTET: u8 = 250;

/// One namespace with one address.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Its name (`ip netns`).
    pub name: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
}

/// The namespaces of one test: hosts and clients on one bridge.
#[derive(Debug)]
pub struct Network {
    /// The namespace holding the bridge.
    pub bridge: String,
    /// Host `i` (1-based) is `hosts[i - 1]`.
    pub hosts: Vec<Namespace>,
    /// Where the clients run.
    pub clients: Namespace,
    /// The /24 in use, e.g. `198.18.7.0/24`.
    pub subnet: String,
    /// Set once the blackhole route is in place.
    route_added: bool,
    /// Namespaces created, in creation order.
    created: Vec<String>,
    /// The relay on every node-to-node link (see [`super::relay`]); `None`
    /// only while the network is being built.
    pub relay: Option<Relay>,
}

/// Runs a command; its stdout, or an error naming the command and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(failure(program, args, &output))
    }
}

fn failure(program: &str, args: &[&str], output: &Output) -> String {
    format!(
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// The names of the machine's network namespaces.
pub fn namespaces() -> Result<Vec<String>, String> {
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// The processes inside namespace `name`.
fn processes_in(name: &str) -> Vec<u32> {
    run("ip", &["netns", "pids", name])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Kills every process in namespace `name` (continuing stopped ones so that
/// they die at once) and waits up to two seconds for them to be gone.
fn kill_processes_in(name: &str) {
    let started = Instant::now();
    loop {
        let pids = processes_in(name);
        if pids.is_empty() || started.elapsed() > Duration::from_secs(2) {
            return;
        }
        for pid in pids {
            signal(pid, rustix::process::Signal::CONT);
            signal(pid, rustix::process::Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn delete_namespace(name: &str) {
    for _ in 0..20 {
        if run("ip", &["netns", "del", name]).is_ok() {
            return;
        }
        if !namespaces().unwrap_or_default().iter().any(|n| n == name) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("warning: could not delete network namespace {name}");
}

impl Network {
    /// Creates the bridge, `hosts` host namespaces and the clients'
    /// namespace. On error, whatever was created is removed again.
    pub fn create(hosts: usize) -> Result<Network, String> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        assert!((1..=9).contains(&hosts), "1 to 9 hosts");
        clean_stale();
        let pid = std::process::id();
        let prefix = format!("dkf{pid}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let bridge = format!("{prefix}-br");
        let host_names: Vec<String> = (1..=hosts).map(|i| format!("{prefix}-n{i}")).collect();
        let client_name = format!("{prefix}-c");
        let existing = namespaces()?;
        for name in std::iter::once(&bridge)
            .chain(&host_names)
            .chain(std::iter::once(&client_name))
        {
            if existing.contains(name) {
                return Err(format!(
                    "network namespace {name} already exists; the fault tests refuse to touch it"
                ));
            }
        }
        let base = pick_subnet(pid)?;
        let octets = base.octets();
        let address = |last: u8| Ipv4Addr::new(octets[0], octets[1], octets[2], last);
        let mut network = Network {
            bridge,
            hosts: host_names
                .into_iter()
                .enumerate()
                .map(|(i, name)| Namespace {
                    name,
                    ip: address(i as u8 + 1),
                })
                .collect(),
            clients: Namespace {
                name: client_name,
                ip: address(CLIENT_OCTET),
            },
            subnet: format!("{base}/24"),
            route_added: false,
            created: Vec::new(),
            relay: None,
        };
        // From here on, dropping `network` undoes what was done.
        network.build()?;
        network.start_relay(base)?;
        Ok(network)
    }

    /// Adds or deletes (`action`) the blackhole route that guards the test
    /// range in the machine's own namespace, tagged with this process's id.
    fn guard_route(&self, action: &str) -> Result<(), String> {
        let metric = std::process::id().to_string();
        run(
            "ip",
            &[
                "route",
                action,
                "blackhole",
                &self.subnet,
                "proto",
                ROUTE_PROTO,
                "metric",
                &metric,
            ],
        )
        .map(drop)
    }

    fn build(&mut self) -> Result<(), String> {
        self.guard_route("add")?;
        self.route_added = true;
        let bridge = self.bridge.clone();
        self.add_namespace(&bridge)?;
        ip_in(&bridge, &["link", "add", "br0", "type", "bridge"])?;
        ip_in(&bridge, &["link", "set", "br0", "up"])?;
        let members: Vec<(String, Namespace)> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| (format!("p{}", i + 1), host.clone()))
            .chain(std::iter::once(("pc".to_string(), self.clients.clone())))
            .collect();
        for (port, member) in members {
            self.add_namespace(&member.name)?;
            ip_in(
                &bridge,
                &[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    &member.name,
                ],
            )?;
            ip_in(&bridge, &["link", "set", &port, "master", "br0", "up"])?;
            let cidr = format!("{}/24", member.ip);
            ip_in(&member.name, &["addr", "add", &cidr, "dev", "eth0"])?;
            ip_in(&member.name, &["link", "set", "eth0", "up"])?;
            ip_in(&member.name, &["link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Gives the clients' namespace the relay's aliases, starts the relay
    /// there, and steers every node-to-node datagram through it.
    fn start_relay(&mut self, base: Ipv4Addr) -> Result<(), String> {
        let hosts = self.hosts.len();
        for k in 1..=hosts {
            let cidr = format!("{}/24", relay::alias(base, k));
            ip_in(&self.clients.name, &["addr", "add", &cidr, "dev", "eth0"])?;
        }
        self.relay = Some(Relay::start(
            &self.clients.name,
            base,
            hosts,
            super::rng::random_seed(),
        )?);
        for from in 1..=hosts {
            for to in (1..=hosts).filter(|&to| to != from) {
                let destination = self.host(to).ip.to_string();
                let port = PORT.to_string();
                let relay_at =
                    format!("{}:{}", relay::alias(base, to), relay::relay_port(from, to));
                self.iptables(
                    from,
                    &[
                        "-t",
                        "nat",
                        "-A",
                        "OUTPUT",
                        "-p",
                        "udp",
                        "-d",
                        &destination,
                        "--dport",
                        &port,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        &relay_at,
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// The relay.
    pub fn relay(&self) -> &Relay {
        self.relay.as_ref().expect("started with the network")
    }

    /// Sets the relay's faults on the links `from → to` for every `from`
    /// in `a` and `to` in `b` (both directions if `both_ways`).
    pub fn slow_links(&self, a: &[usize], b: &[usize], faults: LinkFaults, both_ways: bool) {
        for &x in a {
            for &y in b.iter().filter(|&&y| y != x) {
                self.relay().set(x, y, faults);
                if both_ways {
                    self.relay().set(y, x, faults);
                }
            }
        }
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        run("ip", &["netns", "add", name])?;
        self.created.push(name.to_string());
        Ok(())
    }

    /// `hosts[id - 1]`.
    pub fn host(&self, id: usize) -> &Namespace {
        &self.hosts[id - 1]
    }

    /// Runs `iptables` in host `id`'s namespace.
    fn iptables(&self, id: usize, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["netns", "exec", &self.host(id).name, "iptables", "-w"];
        full.extend_from_slice(args);
        run("ip", &full).map(drop)
    }

    /// Host `to` hears nothing (UDP) from the hosts `from`.
    pub fn block(&self, to: usize, from: &[usize]) -> Result<(), String> {
        let from: Vec<usize> = from.iter().copied().filter(|&f| f != to).collect();
        if from.is_empty() {
            return Ok(());
        }
        // A node's own address, and its alias through the relay.
        let base = self.clients.ip;
        let sources = from
            .iter()
            .flat_map(|&f| [self.host(f).ip, relay::alias(base, f)])
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.iptables(
            to,
            &["-A", "INPUT", "-p", "udp", "-s", &sources, "-j", "DROP"],
        )
    }

    /// Cuts every link between the groups `a` and `b`, both ways.
    pub fn cut_between(&self, a: &[usize], b: &[usize]) -> Result<(), String> {
        for &x in a {
            self.block(x, b)?;
        }
        for &y in b {
            self.block(y, a)?;
        }
        Ok(())
    }

    /// Host `id` drops each UDP datagram from the rest of the test range
    /// (peers and clients) with probability `probability`.
    pub fn lose_randomly(&self, id: usize, probability: f64) -> Result<(), String> {
        let p = format!("{probability:.3}");
        self.iptables(
            id,
            &[
                "-A",
                "INPUT",
                "-p",
                "udp",
                "-s",
                &self.subnet,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
        )
    }

    /// Removes every fault rule of every host, and every fault of the relay.
    pub fn heal(&self) -> Result<(), String> {
        for id in 1..=self.hosts.len() {
            self.iptables(id, &["-F", "INPUT"])?;
        }
        if let Some(relay) = &self.relay {
            relay.heal();
        }
        Ok(())
    }

    /// A command that runs `program` inside namespace `namespace`
    /// (`ip netns exec` execs it, so the child's pid is the program's).
    pub fn command_in(namespace: &Namespace, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &namespace.name, program]);
        command
    }
}

impl crate::harness::Hosts for Network {
    fn size(&self) -> usize {
        self.hosts.len()
    }

    fn address(&self, id: usize) -> String {
        format!("{}:{PORT}", self.host(id).ip)
    }

    fn certificate_hosts(&self) -> Vec<String> {
        self.hosts.iter().map(|host| host.ip.to_string()).collect()
    }

    fn on_node(&self, id: usize, program: &str) -> Command {
        Network::command_in(self.host(id), program)
    }

    fn on_clients(&self, program: &str) -> Command {
        Network::command_in(&self.clients, program)
    }

    fn clients_launcher(&self) -> crate::harness::hosts::Launcher {
        let clients = self.clients.clone();
        Box::new(move |program| Network::command_in(&clients, program))
    }
}

/// Runs `ip <args>` inside namespace `name`.
fn ip_in(name: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["-n", name];
    full.extend_from_slice(args);
    run("ip", &full)
}

impl Drop for Network {
    fn drop(&mut self) {
        // The relay's sockets live in the clients' namespace.
        self.relay = None;
        for name in self.created.iter().rev() {
            kill_processes_in(name);
        }
        for name in self.created.iter().rev() {
            delete_namespace(name);
        }
        if self.route_added
            && let Err(error) = self.guard_route("del")
        {
            eprintln!("warning: {error}");
        }
    }
}

/// Why this machine cannot run the fault tests, if it cannot: not root, no
/// `ip netns`, no `iptables` inside a namespace.
pub fn probe() -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root".into());
    }
    run("ip", &["netns", "list"]).map_err(|e| format!("`ip netns` is unusable: {e}"))?;
    let name = format!("dkf{}-probe", std::process::id());
    if namespaces()?.contains(&name) {
        return Err(format!("network namespace {name} already exists"));
    }
    run("ip", &["netns", "add", &name]).map_err(|e| format!("`ip netns add` is unusable: {e}"))?;
    let checked = run(
        "ip",
        &["netns", "exec", &name, "iptables", "-w", "-S", "INPUT"],
    )
    .map_err(|e| format!("iptables is unusable in a namespace: {e}"))
    .and_then(|_| {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &name,
                "iptables",
                "-w",
                "-A",
                "INPUT",
                "-p",
                "udp",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                "0.5",
                "-j",
                "DROP",
            ],
        )
        .map_err(|e| format!("iptables' statistic match is unusable: {e}"))
    });
    delete_namespace(&name);
    checked.map(drop)
}
