//! The one harness of the multi-process tests: a cluster of
//! `distribkv-native server` processes on some [`Hosts`] (the loopback
//! interface, or one network namespace per node in the fault tests), the
//! client commands run against it, and what they print, parsed with the
//! types the program itself writes ([`StatusLine`] for `status --json`).
//!
//! - [`hosts`]: where nodes and clients run, and [`Loopback`];
//! - [`cluster`]: the server processes, their status, leaders, convergence;
//! - [`client`]: a `client --json` process driven line by line;
//! - [`history`]: the checked workload: its clients, the final reads, the
//!   checks of the history.

#![allow(dead_code)]

pub mod client;
pub mod cluster;
pub mod files;
pub mod history;
pub mod hosts;
pub mod status;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use client::ClientProcess;
pub use cluster::Cluster;
pub use distribkv_native::cli::status::StatusLine;
pub use hosts::{Hosts, Loopback};

/// The program under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_distribkv-native");

/// Server options of the sharded tests' hosts: 8 shards, and groups 1, 2
/// and 3 each on hosts 1, 2 and 3 (a test joins the ones it uses).
pub const THREE_GROUPS_OF_8_SHARDS: [&str; 8] = [
    "--shards", "8", "--group", "1=1,2,3", "--group", "2=1,2,3", "--group", "3=1,2,3",
];

/// Server options of every test cluster: fast heartbeats and elections.
pub const TIMING: [&str; 4] = ["--heartbeat-ms", "50", "--election-timeout-ms", "300-600"];

/// [`TIMING`]'s heartbeat interval, ms.
pub const FAST_HEARTBEAT_MS: u64 = 50;

/// [`TIMING`]'s shortest election timeout, ms.
pub const FAST_ELECTION_MIN_MS: u64 = 300;

/// Environment variable: keep a cluster's data folders, certificates and
/// logs even when its test passes (they are always kept when it fails).
pub const KEEP_VARIABLE: &str = "DISTRIBKV_FAULT_KEEP";

/// Environment variable: the servers' `RUST_LOG` (`info` without it), e.g.
/// `info,distribkv_native::transport=debug`; their logs are kept with
/// [`KEEP_VARIABLE`].
pub const SERVER_LOG_VARIABLE: &str = "DISTRIBKV_FAULT_RUST_LOG";

/// The right to run a cluster: one at a time per test binary. A few server
/// processes already keep a 2-core machine busy, and parallel clusters
/// would make each other's elections flaky.
#[derive(Debug)]
pub struct OneAtATime(MutexGuard<'static, ()>);

/// Waits for the right to run a cluster.
pub fn one_at_a_time() -> OneAtATime {
    static LOCK: Mutex<()> = Mutex::new(());
    OneAtATime(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A free UDP port on 127.0.0.1 (the socket is released at once).
pub fn free_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// A free TCP port on 127.0.0.1 (the socket is released at once).
pub fn free_port_tcp() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Writes a fresh CA with node and client certificates into `dir`, the node
/// certificate valid for `hosts` too.
pub fn make_certs(dir: &Path, hosts: &[String]) -> Result<(), String> {
    let mut command = Command::new(BINARY);
    command.args(["certs", "--out"]).arg(dir);
    for host in hosts {
        command.args(["--host", host]);
    }
    let output = command.output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("certs: {output:?}"))
    }
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Checks `condition` every `every` until it holds; panics with "`what`
/// within `limit`" if it does not hold within `limit`.
pub fn wait_for(limit: Duration, every: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(every);
    }
}

/// Waits until the log `child` writes to `log` contains `text` (panicking
/// with the log if the child exits first, or after `limit`), then stops it
/// with SIGTERM and checks that it exits with 0; returns the log as it was
/// when `text` appeared.
pub fn serve_then_stop(
    child: &mut Child,
    log: &std::path::Path,
    text: &str,
    limit: Duration,
) -> String {
    let mut seen = String::new();
    wait_for(limit, Duration::from_millis(50), text, || {
        seen = std::fs::read_to_string(log).unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited ({status}): {seen}");
        }
        seen.contains(text)
    });
    signal(child.id(), rustix::process::Signal::TERM);
    assert_eq!(wait_exit(child, Duration::from_secs(10)).code(), Some(0));
    seen
}

/// Waits for `child` to exit, killing it (and panicking) after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
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

/// A process's stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A process's stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
