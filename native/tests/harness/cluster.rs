//! A cluster of `distribkv-native server` processes, one per host, and the
//! client commands run against it from the clients' host; watching it
//! through `status --json` is in `status.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use rustix::process::Signal;

use super::{
    BINARY, ClientProcess, Hosts, KEEP_VARIABLE, OneAtATime, SERVER_LOG_VARIABLE, TIMING,
    make_certs, signal, stdout, wait_exit,
};

/// Exit code of a server whose power was cut (`cli::power_cut`).
pub const POWER_CUT_EXIT: i32 = distribkv_native::cli::power_cut::POWER_CUT_EXIT;

fn libc_sigusr1() -> i32 {
    Signal::USR1.as_raw()
}

/// One node's process and files.
#[derive(Debug)]
pub struct Node {
    /// 1-based id (= host number).
    pub id: usize,
    /// Data folder.
    pub data_dir: PathBuf,
    /// The server's stderr, appended across restarts.
    pub log: PathBuf,
    /// The running server, if any.
    pub process: Option<Child>,
    /// Whether it is SIGSTOPped.
    pub paused: bool,
}

/// A cluster on `H`. Dropping it kills every process (then `hosts` drops);
/// if the test panicked (or with [`KEEP_VARIABLE`] set) the data folders,
/// certificates and logs are kept, and on a panic the last lines of each
/// log are printed.
pub struct Cluster<H: Hosts> {
    /// Where the nodes run. Dropped after [`Drop`] killed the nodes.
    pub hosts: H,
    /// Certificates, data folders, logs. `None` once kept.
    root: Option<tempfile::TempDir>,
    /// `root`'s path.
    pub dir: PathBuf,
    /// The certificate folder.
    pub certs: PathBuf,
    /// The nodes, `nodes[id - 1]`.
    pub nodes: Vec<Node>,
    /// Server options after the common ones ([`TIMING`], left out if these
    /// set `--heartbeat-ms`).
    pub extra_args: Vec<String>,
    /// The first members, nodes `1..=members` (`--peers`); the other hosts
    /// are spare machines that join with `--join` (see
    /// [`Cluster::start_with_spares`]).
    pub members: usize,
    /// The ids of the members now, in the order they joined: nodes
    /// `1..=members` at the start; a test that changes the membership keeps
    /// it up to date. Leader agreement, convergence and
    /// [`Cluster::restore_all`] are about these nodes only.
    pub current: Vec<usize>,
    _one_at_a_time: OneAtATime,
}

impl<H: Hosts> Cluster<H> {
    /// Makes certificates valid for the hosts and starts a server on each,
    /// with `extra_args`.
    pub fn start(
        one_at_a_time: OneAtATime,
        hosts: H,
        extra_args: &[&str],
    ) -> Result<Cluster<H>, String> {
        let members = hosts.size();
        Cluster::start_with_spares(one_at_a_time, hosts, members, extra_args)
    }

    /// Like [`Cluster::start`], but only nodes `1..=members` form the
    /// cluster and start; the other hosts are spare machines, started with
    /// [`Cluster::spawn`] as nodes that `--join` the first members. Client
    /// commands list every host in `--cluster` (a spare's id is its
    /// position there, as the client's leader hints need).
    pub fn start_with_spares(
        one_at_a_time: OneAtATime,
        hosts: H,
        members: usize,
        extra_args: &[&str],
    ) -> Result<Cluster<H>, String> {
        let mut cluster = Cluster::create(one_at_a_time, hosts, members, extra_args)?;
        for id in 1..=members {
            cluster.spawn(id);
        }
        Ok(cluster)
    }

    /// The cluster's certificates and folders, with no node started yet
    /// (for data folders made another way, such as `snapshot restore`).
    pub fn create(
        one_at_a_time: OneAtATime,
        hosts: H,
        members: usize,
        extra_args: &[&str],
    ) -> Result<Cluster<H>, String> {
        let root = tempfile::Builder::new()
            .prefix("distribkv-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = root.path().to_path_buf();
        let certs = dir.join("certs");
        make_certs(&certs, &hosts.certificate_hosts())?;
        let nodes = (1..=hosts.size())
            .map(|id| Node {
                id,
                data_dir: dir.join(format!("node{id}")),
                log: dir.join(format!("node{id}.log")),
                process: None,
                paused: false,
            })
            .collect();
        let cluster = Cluster {
            hosts,
            root: Some(root),
            dir,
            certs,
            nodes,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            members,
            current: (1..=members).collect(),
            _one_at_a_time: one_at_a_time,
        };
        Ok(cluster)
    }

    /// How many nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// `--peers` / `--cluster`: every node's address in id order.
    pub fn peers(&self) -> String {
        (1..=self.size())
            .map(|id| self.hosts.address(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The first members' addresses, in id order.
    pub fn initial_peers(&self) -> String {
        (1..=self.members)
            .map(|id| self.hosts.address(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s server command line, on its host: a first member's
    /// (`--peers`) or a spare machine's (`--listen` and `--join`).
    pub fn server_command(&self, id: usize) -> Command {
        let node = &self.nodes[id - 1];
        let mut command = self.hosts.on_node(id, BINARY);
        command.arg("server").args(["--id", &id.to_string()]);
        if id <= self.members {
            command.args(["--peers", &self.initial_peers()]);
        } else {
            command.args(["--listen", &self.hosts.address(id)]);
            command.args(["--join", &self.initial_peers()]);
        }
        command
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--certs")
            .arg(&self.certs)
            .args(self.timing())
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var(SERVER_LOG_VARIABLE).unwrap_or_else(|_| "info".to_string()),
            );
        command
    }

    /// [`TIMING`], unless the extra arguments set the timing themselves.
    fn timing(&self) -> &'static [&'static str] {
        if self.extra_args.iter().any(|a| a == "--heartbeat-ms") {
            &[]
        } else {
            &TIMING
        }
    }

    /// Starts node `id` (again) on its data folder, appending to its log.
    pub fn spawn(&mut self, id: usize) {
        let node = &self.nodes[id - 1];
        assert!(node.process.is_none(), "node {id} is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("the node's log file");
        let child = self
            .server_command(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn a server");
        let node = &mut self.nodes[id - 1];
        node.process = Some(child);
        node.paused = false;
    }

    /// True if node `id` has a process (paused or not).
    pub fn is_running(&self, id: usize) -> bool {
        self.nodes[id - 1].process.is_some()
    }

    /// Node `id`'s process id.
    pub fn pid(&self, id: usize) -> u32 {
        self.nodes[id - 1].process.as_ref().expect("running").id()
    }

    /// kill -9 node `id`, and reaps it.
    pub fn kill(&mut self, id: usize) {
        let node = &mut self.nodes[id - 1];
        if let Some(mut child) = node.process.take() {
            if node.paused {
                signal(child.id(), Signal::CONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// kill -9 every node, as close together as possible, then reaps them.
    pub fn kill_all(&mut self) {
        let pids: Vec<u32> = self
            .nodes
            .iter()
            .filter_map(|n| n.process.as_ref().map(Child::id))
            .collect();
        for pid in &pids {
            signal(*pid, Signal::KILL);
        }
        for id in 1..=self.size() {
            self.kill(id);
        }
    }

    /// Cuts the power of node `id`, which must run a `--fault-power-cut`
    /// server: SIGUSR1, then waits for it to exit. Its exit status must say
    /// so ([`POWER_CUT_EXIT`]), or show the signal's default action (the
    /// signal came before the handler was installed, which is a power cut
    /// too: the process dies with its unsynced writes).
    pub fn power_cut(&mut self, id: usize) {
        self.power_cut_all_of(&[id]);
    }

    /// Cuts the power of every running node, as close together as possible.
    pub fn power_cut_all(&mut self) {
        let ids: Vec<usize> = (1..=self.size())
            .filter(|&id| self.is_running(id))
            .collect();
        self.power_cut_all_of(&ids);
    }

    fn power_cut_all_of(&mut self, ids: &[usize]) {
        use std::os::unix::process::ExitStatusExt as _;
        for &id in ids {
            let node = &self.nodes[id - 1];
            if let Some(child) = &node.process {
                signal(child.id(), Signal::USR1);
                if node.paused {
                    signal(child.id(), Signal::CONT);
                }
            }
        }
        for &id in ids {
            let node = &mut self.nodes[id - 1];
            node.paused = false;
            let Some(mut child) = node.process.take() else {
                continue;
            };
            let status = wait_exit(&mut child, Duration::from_secs(10));
            assert!(
                status.code() == Some(POWER_CUT_EXIT) || status.signal() == Some(libc_sigusr1()),
                "node {id} did not end with a power cut: {status:?} (is it a --fault-power-cut server?)"
            );
        }
    }

    /// SIGTERM to node `id`, then waits for it to exit; its exit status.
    pub fn terminate(&mut self, id: usize) -> ExitStatus {
        let mut child = self.nodes[id - 1].process.take().expect("running");
        signal(child.id(), Signal::TERM);
        wait_exit(&mut child, Duration::from_secs(10))
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: usize) {
        let node = &mut self.nodes[id - 1];
        if let Some(child) = &node.process {
            signal(child.id(), Signal::STOP);
            node.paused = true;
        }
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: usize) {
        let node = &mut self.nodes[id - 1];
        if let Some(child) = &node.process {
            signal(child.id(), Signal::CONT);
        }
        node.paused = false;
    }

    /// Every current member running and resumed again.
    pub fn restore_all(&mut self) {
        for id in self.current.clone() {
            if self.nodes[id - 1].paused {
                self.resume(id);
            }
            if !self.is_running(id) {
                self.spawn(id);
            }
        }
    }

    /// `distribkv-native <subcommand> --cluster .. --certs <certs>` on the
    /// clients' host.
    pub fn client_command_with_certs(&self, subcommand: &str, certs: &Path) -> Command {
        let mut command = self.hosts.on_clients(BINARY);
        command
            .arg(subcommand)
            .args(["--cluster", &self.peers()])
            .arg("--certs")
            .arg(certs);
        command
    }

    /// `distribkv-native <subcommand> --cluster .. --certs ..` on the
    /// clients' host, with the cluster's client certificate.
    pub fn client_command(&self, subcommand: &str) -> Command {
        self.client_command_with_certs(subcommand, &self.certs)
    }

    /// Runs a client command with `args` after `--cluster` and `--certs`.
    pub fn cli(&self, subcommand: &str, args: &[&str]) -> Output {
        self.client_command(subcommand)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `put KEY VALUE`, which must print `OK`.
    pub fn put(&self, key: &str, value: &str) {
        let output = self.cli("put", &[key, value]);
        assert_eq!(stdout(&output), "OK\n", "put {key}: {output:?}");
        assert!(output.status.success());
    }

    /// `get KEY`: the value, or `None` for a missing key (exit 1).
    pub fn get(&self, key: &str) -> Option<String> {
        let output = self.cli("get", &[key]);
        match output.status.code() {
            Some(0) => Some(stdout(&output).trim_end_matches('\n').to_string()),
            Some(1) => None,
            _ => panic!("get {key}: {output:?}"),
        }
    }

    /// A `client --json` process on the clients' host.
    pub fn client_process(&self) -> ClientProcess {
        let mut command = self.client_command("client");
        command.arg("--json");
        ClientProcess::spawn(command)
    }

    /// Runs `client --json` with `script` on stdin; its answers.
    pub fn client_json(&self, script: &str) -> Vec<serde_json::Value> {
        let mut child = self
            .client_command("client")
            .arg("--json")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let script = script.to_string();
        // Written from a thread: a long script would fill the pipe while
        // the answers fill the other one.
        let writer = std::thread::spawn(move || input.write_all(script.as_bytes()));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(output.status.success(), "client: {output:?}");
        stdout(&output)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Node `id`'s whole log.
    pub fn log_of(&self, id: usize) -> String {
        std::fs::read_to_string(&self.nodes[id - 1].log).unwrap_or_default()
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: usize, lines: usize) -> String {
        let log = self.log_of(id);
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Keeps the data folders, certificates and logs after the test; returns where.
    pub fn keep_files(&mut self) -> &Path {
        if let Some(root) = self.root.take() {
            let _ = root.keep();
        }
        &self.dir
    }
}

impl Cluster<super::Loopback> {
    /// `nodes` nodes on 127.0.0.1 with `extra_args`, once no other cluster
    /// of this test binary runs.
    pub fn on_loopback(nodes: usize, extra_args: &[&str]) -> Cluster<super::Loopback> {
        let one_at_a_time = super::one_at_a_time();
        Cluster::start(one_at_a_time, super::Loopback::new(nodes), extra_args)
            .unwrap_or_else(|error| panic!("cannot start a cluster: {error}"))
    }
}

impl<H: Hosts> Drop for Cluster<H> {
    fn drop(&mut self) {
        for id in 1..=self.size() {
            self.kill(id);
        }
        let panicking = std::thread::panicking();
        if panicking {
            for id in 1..=self.size() {
                eprintln!("---- node {id} log (last lines) ----");
                eprintln!("{}", self.log_tail(id, 30));
            }
        }
        if panicking || std::env::var_os(KEEP_VARIABLE).is_some() {
            let dir = self.keep_files().display().to_string();
            eprintln!("data folders, certificates and logs kept in {dir}");
        }
    }
}
