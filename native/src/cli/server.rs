//! `distribkv-native server`.

use std::path::PathBuf;

use clap::Args;
use distribkv_core::raft::NodeId;

use super::CliError;
use crate::server::{ServerConfig, Timing};
use crate::storage::StorageOptions;

/// `server` arguments. Everything after `--certs` is optional tuning.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// This node's 1-based position in --peers.
    #[arg(long, value_name = "N")]
    pub id: NodeId,
    /// Every member's address (HOST:PORT) in id order, comma-separated; this
    /// node listens on its own.
    #[arg(long, value_name = "ADDR,...")]
    pub peers: String,
    /// Data folder (created if missing); it belongs to this node id and
    /// cluster from then on.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Folder with ca-cert.pem, node-cert.pem and node-key.pem.
    #[arg(long, value_name = "DIR")]
    pub certs: PathBuf,
    /// Take a snapshot and compact the log every N applied entries (0: never).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Leader heartbeat interval, ms.
    #[arg(long, value_name = "MS", default_value_t = Timing::default().heartbeat_ms)]
    pub heartbeat_ms: u64,
    /// Election timeout range, ms (drawn uniformly from MIN to MAX).
    #[arg(long, value_name = "MIN-MAX", default_value = "500-1000", value_parser = parse_range)]
    pub election_timeout_ms: (u64, u64),
    /// Serve linearizable reads from a leader lease instead of a ReadIndex
    /// heartbeat round. Faster, but it assumes the nodes' clocks run at
    /// rates within 10% of each other; off by default.
    #[arg(long)]
    pub lease_reads: bool,
    /// Log segment size, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub segment_size: u64,
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (min, max) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not MIN-MAX"))?;
    let min: u64 = min.trim().parse().map_err(|e| format!("{min:?}: {e}"))?;
    let max: u64 = max.trim().parse().map_err(|e| format!("{max:?}: {e}"))?;
    if min == 0 || max <= min {
        return Err(format!("{text:?}: need 0 < MIN < MAX"));
    }
    Ok((min, max))
}

impl ServerArgs {
    /// The validated server configuration.
    pub fn config(&self) -> Result<ServerConfig, CliError> {
        let peers = crate::addr::parse_address_list(&self.peers)?;
        let (election_min_ms, election_max_ms) = self.election_timeout_ms;
        Ok(ServerConfig {
            id: self.id,
            peers,
            data_dir: self.data_dir.clone(),
            certs_dir: self.certs.clone(),
            snapshot_every: self.snapshot_every,
            lease_reads: self.lease_reads,
            timing: Timing {
                heartbeat_ms: self.heartbeat_ms,
                election_min_ms,
                election_max_ms,
            },
            storage: StorageOptions {
                segment_size: self.segment_size,
                ..StorageOptions::default()
            },
        })
    }
}

/// Runs a server until SIGINT or SIGTERM.
pub async fn run(args: &ServerArgs) -> Result<(), CliError> {
    let config = args.config()?;
    if config.timing.heartbeat_ms == 0
        || config.timing.heartbeat_ms >= config.timing.election_min_ms
    {
        return Err(CliError::Demo(format!(
            "--heartbeat-ms {} must be between 1 and the minimum election timeout {}",
            config.timing.heartbeat_ms, config.timing.election_min_ms
        )));
    }
    crate::server::run(config, shutdown_signal(), |_| {}).await?;
    Ok(())
}

/// Completes at the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}
