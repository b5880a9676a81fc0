//! A cluster of `distribkv-native server` processes, one per host namespace,
//! and the commands the tests run from the clients' namespace.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::net::{self, Network};

/// The test binary's server and client.
pub const BINARY: &str = env!("CARGO_BIN_EXE_distribkv-native");

/// Every node listens on this UDP port of its own address.
pub const PORT: u16 = 7000;

/// Server options for every test: fast heartbeats and elections, as in the
/// loopback cluster tests.
pub const TIMING: [&str; 4] = ["--heartbeat-ms", "50", "--election-timeout-ms", "300-600"];

/// A node's line of `status --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Node id.
    pub id: usize,
    /// `leader`, `follower`, ...
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader it knows.
    pub leader: Option<usize>,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// Last log index.
    pub last_index: u64,
    /// Snapshot index.
    pub snapshot_index: u64,
    /// State machine fingerprint (16 hex digits).
    pub fingerprint: String,
}

impl Status {
    fn parse(line: &str) -> Option<Status> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let n = |k: &str| v[k].as_u64();
        Some(Status {
            id: n("id")? as usize,
            role: v["role"].as_str()?.to_string(),
            term: n("term")?,
            leader: n("leader").map(|l| l as usize),
            commit_index: n("commitIndex")?,
            applied_index: n("appliedIndex")?,
            last_index: n("lastIndex")?,
            snapshot_index: n("snapshotIndex")?,
            fingerprint: v["fingerprint"].as_str()?.to_string(),
        })
    }
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

/// A cluster in network namespaces. Dropping it kills every process, then
/// the namespaces go (see [`Network`]); on a panic (or with
/// `DISTRIBKV_FAULT_KEEP` set) the data and logs are kept, and on a panic
/// the last lines of each log printed.
pub struct NsCluster {
    /// The namespaces. Declared first: dropped after `drop` killed the nodes.
    pub net: Network,
    /// Certificates, data folders, logs. `None` once kept.
    root: Option<tempfile::TempDir>,
    /// `root`'s path.
    pub dir: PathBuf,
    /// The certificate folder.
    pub certs: PathBuf,
    /// The nodes, `nodes[id - 1]`.
    pub nodes: Vec<Node>,
    /// Server options after the common ones.
    pub extra_args: Vec<String>,
}

impl NsCluster {
    /// Creates `n` hosts, certificates valid for their addresses, and starts
    /// a server on each with `extra_args`.
    pub fn start(n: usize, extra_args: &[&str]) -> Result<NsCluster, String> {
        let net = Network::create(n)?;
        let root = tempfile::Builder::new()
            .prefix("distribkv-faults-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = root.path().to_path_buf();
        let certs = dir.join("certs");
        let mut certs_command = Command::new(BINARY);
        certs_command.args(["certs", "--out"]).arg(&certs);
        for host in &net.hosts {
            certs_command.args(["--host", &host.ip.to_string()]);
        }
        let output = certs_command.output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("certs: {output:?}"));
        }
        let nodes = (1..=n)
            .map(|id| Node {
                id,
                data_dir: dir.join(format!("node{id}")),
                log: dir.join(format!("node{id}.log")),
                process: None,
                paused: false,
            })
            .collect();
        let mut cluster = NsCluster {
            net,
            root: Some(root),
            dir,
            certs,
            nodes,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        for id in 1..=n {
            cluster.spawn(id);
        }
        Ok(cluster)
    }

    /// How many nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// `--peers` / `--cluster`: every node's address in id order.
    pub fn peers(&self) -> String {
        self.net
            .hosts
            .iter()
            .map(|host| format!("{}:{PORT}", host.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `id` (again) in its namespace, on its data folder.
    pub fn spawn(&mut self, id: usize) {
        let node = &self.nodes[id - 1];
        assert!(node.process.is_none(), "node {id} is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("the node's log file");
        let child = Network::command_in(self.net.host(id), BINARY)
            .arg("server")
            .args(["--id", &id.to_string(), "--peers", &self.peers()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--certs")
            .arg(&self.certs)
            .args(TIMING)
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
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

    /// kill -9 node `id`, and reaps it.
    pub fn kill(&mut self, id: usize) {
        let node = &mut self.nodes[id - 1];
        if let Some(mut child) = node.process.take() {
            if node.paused {
                net::signal(child.id(), Signal::CONT);
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
            net::signal(*pid, Signal::KILL);
        }
        for id in 1..=self.size() {
            self.kill(id);
        }
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: usize) {
        let node = &mut self.nodes[id - 1];
        if let Some(child) = &node.process {
            net::signal(child.id(), Signal::STOP);
            node.paused = true;
        }
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: usize) {
        let node = &mut self.nodes[id - 1];
        if let Some(child) = &node.process {
            net::signal(child.id(), Signal::CONT);
        }
        node.paused = false;
    }

    /// Undoes every fault: no firewall rules, every node running and resumed.
    pub fn heal_all(&mut self) -> Result<(), String> {
        self.net.heal()?;
        for id in 1..=self.size() {
            if self.nodes[id - 1].paused {
                self.resume(id);
            }
            if !self.is_running(id) {
                self.spawn(id);
            }
        }
        Ok(())
    }

    /// A `distribkv-native <subcommand> --cluster .. --certs ..` command in
    /// the clients' namespace.
    pub fn client_command(&self, subcommand: &str) -> Command {
        let mut command = Network::command_in(&self.net.clients, BINARY);
        command
            .arg(subcommand)
            .args(["--cluster", &self.peers()])
            .arg("--certs")
            .arg(&self.certs);
        command
    }

    /// The status of every node that answers (within 5 s each, in parallel).
    pub fn status(&self) -> Vec<Status> {
        let Ok(mut child) = self
            .client_command("status")
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            return Vec::new();
        };
        let mut stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = reader.join().unwrap_or_default();
        let mut statuses: Vec<Status> = text.lines().filter_map(Status::parse).collect();
        statuses.sort_by_key(|s| s.id);
        statuses
    }

    /// The leader a majority of the cluster agrees on (same term), if any.
    pub fn agreed_leader(&self, statuses: &[Status]) -> Option<usize> {
        let leader = statuses.iter().find(|s| s.role == "leader")?;
        let agreeing = statuses
            .iter()
            .filter(|s| s.leader == Some(leader.id) && s.term == leader.term)
            .count();
        (agreeing * 2 > self.size()).then_some(leader.id)
    }

    /// Waits up to `limit` for a leader a majority agrees on.
    pub fn wait_for_leader(&self, limit: Duration) -> Option<usize> {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.agreed_leader(&self.status()) {
                return Some(leader);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `limit` until every node answers, a leader is agreed on
    /// by all, nothing is left uncommitted, and every node has applied the
    /// same index with the same state fingerprint. Returns the statuses, or
    /// the last ones seen as the error.
    pub fn wait_converged(&self, limit: Duration) -> Result<Vec<Status>, String> {
        let started = Instant::now();
        loop {
            let statuses = self.status();
            if converged(&statuses, self.size()) {
                return Ok(statuses);
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "not converged within {limit:?}; last statuses:\n{}",
                    render_statuses(&statuses)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: usize, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.nodes[id - 1].log).unwrap_or_default();
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

/// True if `statuses` show one leader for all `size` nodes and identical,
/// fully applied state everywhere.
pub fn converged(statuses: &[Status], size: usize) -> bool {
    if statuses.len() != size {
        return false;
    }
    let Some(leader) = statuses.iter().find(|s| s.role == "leader") else {
        return false;
    };
    let first = &statuses[0];
    statuses.iter().all(|s| {
        s.leader == Some(leader.id)
            && s.term == leader.term
            && s.commit_index == s.applied_index
            && s.applied_index == first.applied_index
            && s.fingerprint == first.fingerprint
    }) && leader.last_index == leader.commit_index
}

/// One line per status.
pub fn render_statuses(statuses: &[Status]) -> String {
    if statuses.is_empty() {
        return "  (no node answered)".into();
    }
    statuses
        .iter()
        .map(|s| {
            format!(
                "  node {} {} term {} leader {:?} commit {} applied {} last {} snapshot {} fingerprint {}",
                s.id,
                s.role,
                s.term,
                s.leader,
                s.commit_index,
                s.applied_index,
                s.last_index,
                s.snapshot_index,
                s.fingerprint
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for NsCluster {
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
        if panicking || std::env::var_os(super::KEEP_VARIABLE).is_some() {
            let dir = self.keep_files().display().to_string();
            eprintln!("data folders, certificates and logs kept in {dir}");
        }
        // Then `net` drops: anything still in the namespaces is killed, the
        // namespaces and the route go.
    }
}
