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

/// The highest `--base-port`: the third node listens two ports above it.
const MAX_BASE_PORT: i64 = u16::MAX as i64 - 2;

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// First UDP port of the three nodes (default: free ports picked at random).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..=MAX_BASE_PORT))]
    pub base_port: Option<u16>,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The temporary folder could not be made.
    #[error("cannot create a temporary folder: {0}")]
    Folder(std::io::Error),
    /// No free UDP port was found.
    #[error("cannot find a free port: {0}")]
    Port(std::io::Error),
    /// This program's own path is unknown, so it cannot start the nodes.
    #[error("cannot find this program: {0}")]
    Program(std::io::Error),
    /// A node's log file could not be created.
    #[error("cannot create a log file: {0}")]
    Log(std::io::Error),
    /// A node could not be started.
    #[error("cannot start a node: {0}")]
    Spawn(std::io::Error),
}

/// A free UDP port on 127.0.0.1 (the socket is released at once).
fn free_port() -> std::io::Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}

fn spawn_node(exe: &Path, id: usize, peers: &str, root: &Path) -> Result<Child, CliError> {
    let log = std::fs::File::create(root.join(format!("node{id}.log"))).map_err(DemoError::Log)?;
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
        .map_err(|e| DemoError::Spawn(e).into())
}

/// Runs the demo until SIGINT or SIGTERM.
pub async fn run(args: &DemoArgs) -> Result<(), CliError> {
    let root = tempfile::Builder::new()
        .prefix("distribkv-demo-")
        .tempdir()
        .map_err(DemoError::Folder)?;
    // The node certificate is valid for the default hosts, 127.0.0.1 among them.
    crate::tls::generate(&root.path().join("certs"), &[])?;
    let peers = peer_list(args.base_port)?;
    let exe = std::env::current_exe().map_err(DemoError::Program)?;
    let mut children = (1..=3)
        .map(|id| spawn_node(&exe, id, &peers, root.path()))
        .collect::<Result<Vec<_>, _>>()?;
    print_instructions(&exe, root.path(), &peers, &children);
    let mut exited = Vec::new();
    tokio::select! {
        () = super::server::shutdown_signal() => {}
        () = watch(&mut children, &mut exited) => {}
    }
    println!("stopping the demo");
    stop(&mut children).await;
    Ok(())
}

/// `--peers` of the three nodes: from `base_port` on, or free ports.
fn peer_list(base_port: Option<u16>) -> Result<String, DemoError> {
    let ports: Vec<u16> = match base_port {
        Some(base) => (0..3).map(|i| base + i).collect(),
        None => (0..3)
            .map(|_| free_port())
            .collect::<Result<_, _>>()
            .map_err(DemoError::Port)?,
    };
    Ok(ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Says where everything is and how to use, break and restart the cluster.
fn print_instructions(exe: &Path, root: &Path, peers: &str, children: &[Child]) {
    let certs = root.join("certs");
    let (exe, dir, certs) = (exe.display(), root.display(), certs.display());
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
}

/// SIGTERM to every node, then SIGKILL to those still running after 5 s.
async fn stop(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child
            .id()
            .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    for child in children {
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
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
                crate::cli::note(format_args!("node {} exited: {status}", index + 1));
                exited.push(index);
            }
        }
        if exited.len() == children.len() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    fn base_port(port: &str) -> Result<Option<u16>, clap::Error> {
        let cli = Cli::try_parse_from(["distribkv-native", "demo", "--base-port", port])?;
        let Command::Demo(demo) = cli.command else {
            panic!("a demo command");
        };
        Ok(demo.base_port)
    }

    #[test]
    fn the_base_port_leaves_room_for_three_nodes() {
        assert_eq!(base_port("7000").unwrap(), Some(7000));
        assert_eq!(base_port("65533").unwrap(), Some(65533));
        assert_eq!(
            super::peer_list(Some(65533)).unwrap(),
            "127.0.0.1:65533,127.0.0.1:65534,127.0.0.1:65535"
        );
        // Port 0 would make each node pick a port nobody else knows.
        for bad in ["0", "65534", "65535", "65536", "x"] {
            let error = base_port(bad).unwrap_err().to_string();
            assert!(error.contains("--base-port"), "{bad}: {error}");
        }
    }
}
