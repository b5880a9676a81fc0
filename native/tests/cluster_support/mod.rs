//! A real cluster of `distribkv-native server` processes on 127.0.0.1, for
//! the multi-process tests. Ports are picked at run time; every process is
//! killed when the [`Cluster`] is dropped, also when a test panics (and the
//! servers' logs are printed then).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_distribkv-native");

/// The cluster tests run one at a time: three servers each already keep a
/// 2-core machine busy, and parallel clusters would make elections flaky.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn serialize() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A free UDP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// Writes a fresh CA with node and client certificates into `dir`.
pub fn make_certs(dir: &Path) {
    let output = Command::new(BINARY)
        .args(["certs", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "certs: {output:?}");
}

/// Sends `signal` (a name like "STOP") to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A node's status line from `status --json`.
#[derive(Debug, Clone)]
pub struct Status {
    pub id: u64,
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    pub keys: u64,
}

impl Status {
    fn parse(line: &str) -> Status {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
        Status {
            id: n("id"),
            role: v["role"].as_str().unwrap().to_string(),
            term: n("term"),
            leader: v["leader"].as_u64(),
            commit_index: n("commitIndex"),
            applied_index: n("appliedIndex"),
            last_index: n("lastIndex"),
            snapshot_index: n("snapshotIndex"),
            keys: n("keys"),
        }
    }
}

pub struct Node {
    pub id: usize,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub process: Option<Child>,
}

pub struct Cluster {
    pub root: tempfile::TempDir,
    pub certs: PathBuf,
    pub nodes: Vec<Node>,
    pub extra_args: Vec<String>,
    _serial: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts `n` nodes with fast test timings and `extra_args`.
    pub fn start(n: usize, extra_args: &[&str]) -> Cluster {
        let serial = serialize();
        let root = tempfile::tempdir().unwrap();
        let certs = root.path().join("certs");
        make_certs(&certs);
        let nodes = (1..=n)
            .map(|id| Node {
                id,
                port: free_port(),
                data_dir: root.path().join(format!("node{id}")),
                log: root.path().join(format!("node{id}.log")),
                process: None,
            })
            .collect();
        let mut cluster = Cluster {
            root,
            certs,
            nodes,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            _serial: serial,
        };
        for id in 1..=n {
            cluster.spawn(id);
        }
        cluster
    }

    pub fn peers(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&mut self, id: usize) -> &mut Node {
        &mut self.nodes[id - 1]
    }

    /// The server command line of node `id`.
    pub fn server_command(&self, id: usize) -> Command {
        let node = &self.nodes[id - 1];
        let mut command = Command::new(BINARY);
        command
            .arg("server")
            .args(["--id", &id.to_string(), "--peers", &self.peers()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--certs")
            .arg(&self.certs)
            .args(["--heartbeat-ms", "50", "--election-timeout-ms", "300-600"])
            .args(&self.extra_args)
            .env("RUST_LOG", "info");
        command
    }

    /// Starts node `id` (again), appending to its log.
    pub fn spawn(&mut self, id: usize) {
        assert!(self.nodes[id - 1].process.is_none(), "node {id} runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.nodes[id - 1].log)
            .unwrap();
        let child = self
            .server_command(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[id - 1].process = Some(child);
    }

    /// kill -9.
    pub fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.nodes[id - 1].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns its status.
    pub fn terminate(&mut self, id: usize) -> std::process::ExitStatus {
        let mut child = self.nodes[id - 1].process.take().expect("running");
        signal(child.id(), "TERM");
        wait_exit(&mut child, Duration::from_secs(10))
    }

    pub fn pid(&self, id: usize) -> u32 {
        self.nodes[id - 1].process.as_ref().expect("running").id()
    }

    /// Runs a client command with `--cluster` and `--certs` inserted.
    pub fn cli(&self, command: &str, args: &[&str]) -> Output {
        self.cli_with_certs(command, args, &self.certs)
    }

    pub fn cli_with_certs(&self, command: &str, args: &[&str], certs: &Path) -> Output {
        Command::new(BINARY)
            .arg(command)
            .args(["--cluster", &self.peers()])
            .arg("--certs")
            .arg(certs)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `client --json` with `input` on stdin; returns the answer lines.
    pub fn client_json(&self, input: &str) -> Vec<serde_json::Value> {
        let mut child = Command::new(BINARY)
            .args(["client", "--json", "--cluster", &self.peers()])
            .arg("--certs")
            .arg(&self.certs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "client: {output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Puts and checks `OK`.
    pub fn put(&self, key: &str, value: &str) {
        let output = self.cli("put", &[key, value]);
        assert_eq!(stdout(&output), "OK\n", "put {key}: {output:?}");
        assert!(output.status.success());
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let output = self.cli("get", &[key]);
        match output.status.code() {
            Some(0) => Some(stdout(&output).trim_end_matches('\n').to_string()),
            Some(1) => None,
            _ => panic!("get {key}: {output:?}"),
        }
    }

    /// The status of every node that answers.
    pub fn status(&self) -> Vec<Status> {
        let output = self.cli("status", &["--json"]);
        stdout(&output).lines().map(Status::parse).collect()
    }

    /// Waits until a leader is known to a majority, of those in `among`; returns its id.
    pub fn wait_for_leader(&self, among: &[usize], limit: Duration) -> usize {
        let started = Instant::now();
        loop {
            let statuses = self.status();
            if let Some(leader) = statuses
                .iter()
                .find(|s| s.role == "leader" && among.contains(&(s.id as usize)))
            {
                let agreeing = statuses
                    .iter()
                    .filter(|s| s.leader == Some(leader.id) && s.term == leader.term)
                    .count();
                if agreeing * 2 > self.nodes.len() {
                    return leader.id as usize;
                }
            }
            assert!(
                started.elapsed() < limit,
                "no leader among {among:?} after {limit:?}: {statuses:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until node `id` has applied at least `index`.
    pub fn wait_applied(&self, id: usize, index: u64, limit: Duration) -> Status {
        let started = Instant::now();
        loop {
            if let Some(status) = self.status().into_iter().find(|s| s.id == id as u64)
                && status.applied_index >= index
            {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "node {id} did not apply {index} within {limit:?}: {:?}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_of(&self, id: usize) -> String {
        std::fs::read_to_string(&self.nodes[id - 1].log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.process.take() {
                // A stopped process must be continued to die of SIGKILL
                // promptly on every kernel; harmless otherwise.
                let _ = Command::new("kill")
                    .args(["-CONT", &child.id().to_string()])
                    .status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node {} log (last lines) ----", node.id);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits for `child` to exit, killing it after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
