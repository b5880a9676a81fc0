//! `distribkv-native demo`: a local 3-node cluster in a temporary folder.
//!
//! The three nodes are child processes of this one (this same binary with
//! `server`), on free UDP ports of 127.0.0.1, so each can be killed and
//! restarted on its own to watch the cluster survive. Interrupting the demo
//! stops them and removes the folder.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use tokio::process::{Child, Command};

use super::CliError;

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// First UDP port of the three nodes (default: free ports picked at random).
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u16>,
}

fn demo_error(what: &str, error: impl std::fmt::Display) -> CliError {
    CliError::Demo(format!("{what}: {error}"))
}

/// A free UDP port on 127.0.0.1 (the socket is released at once).
fn free_port() -> std::io::Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

fn spawn_node(exe: &Path, id: usize, peers: &str, root: &Path) -> Result<Child, CliError> {
    let log = std::fs::File::create(root.join(format!("node{id}.log")))
        .map_err(|e| demo_error("cannot create a log file", e))?;
    Command::new(exe)
        .arg("server")
        .args(["--id", &id.to_string()])
        .args(["--peers", peers])
        .arg("--data-dir")
        .arg(root.join(format!("node{id}")))
        .arg("--certs")
        .arg(root.join("certs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| demo_error("cannot start a node", e))
}

/// Runs the demo until SIGINT or SIGTERM.
pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    let root = tempfile::Builder::new()
        .prefix("distribkv-demo-")
        .tempdir()
        .map_err(|e| demo_error("cannot create a temporary folder", e))?;
    let certs = root.path().join("certs");
    let hosts: Vec<String> = crate::tls::DEFAULT_NODE_HOSTS
        .iter()
        .map(|h| h.to_string())
        .collect();
    crate::tls::generate(&certs, &hosts)?;
    let ports: Vec<u16> = match args.base_port {
        Some(base) => (0..3).map(|i| base + i).collect(),
        None => (0..3)
            .map(|_| free_port())
            .collect::<Result<_, _>>()
            .map_err(|e| demo_error("cannot find a free port", e))?,
    };
    let peers = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe().map_err(|e| demo_error("cannot find this program", e))?;
    let mut children = Vec::new();
    for id in 1..=3 {
        children.push(spawn_node(&exe, id, &peers, root.path())?);
    }
    let exe = exe.display();
    let dir = root.path().display();
    let certs = certs.display();
    println!("distribKV demo: 3 nodes on {peers}");
    println!("folder: {dir} (certs/, node1..3/ data, node1..3.log)");
    for (id, child) in children.iter().enumerate() {
        println!("  node {} pid {}", id + 1, child.id().unwrap_or(0));
    }
    println!();
    println!("Try:");
    println!("  {exe} put    --cluster {peers} --certs {certs} greeting hello");
    println!("  {exe} get    --cluster {peers} --certs {certs} greeting");
    println!("  {exe} append --cluster {peers} --certs {certs} greeting ', world'");
    println!("  {exe} client --cluster {peers} --certs {certs}");
    println!("  {exe} status --cluster {peers} --certs {certs}");
    println!("  {exe} bench  --cluster {peers} --certs {certs} --clients 16 --duration 5");
    println!("Kill a node (kill -9 PID) and the other two keep serving; restart it with:");
    println!("  {exe} server --id N --peers {peers} --data-dir {dir}/nodeN --certs {certs}");
    println!("Press Ctrl-C to stop the demo.");

    let mut exited = Vec::new();
    tokio::select! {
        () = super::server::shutdown_signal() => {}
        () = watch(&mut children, &mut exited) => {}
    }
    println!("stopping the demo");
    for child in &children {
        if let Some(pid) = child
            .id()
            .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    for child in &mut children {
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    Ok(())
}

/// Reports nodes that exit by themselves; returns when all three have.
async fn watch(children: &mut [Child], exited: &mut Vec<usize>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (index, child) in children.iter_mut().enumerate() {
            if exited.contains(&index) {
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("node {} exited: {status}", index + 1);
                exited.push(index);
            }
        }
        if exited.len() == children.len() {
            return;
        }
    }
}
