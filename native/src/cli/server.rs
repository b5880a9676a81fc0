//! `distribkv-native server`: its flags, turned into the core's
//! configuration and checked by the core's rules; a bad flag is reported
//! like any other argument error.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory};
use distribkv_core::raft::{ConfigError, NodeId};

use super::{Cli, CliError};
use crate::server::{
    DEFAULT_ELECTION_MAX_MS, DEFAULT_ELECTION_MIN_MS, DEFAULT_HEARTBEAT_MS, ServerConfig,
    ValidConfig,
};

/// `server` arguments. Everything after `--certs` is optional tuning.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// This node's id: its 1-based position in --peers for the first
    /// members, the id it is added with (`member add`) for a node that joins.
    #[arg(long, value_name = "N")]
    pub id: NodeId,
    /// A new cluster: every member's address (HOST:PORT) in id order,
    /// comma-separated; this node listens on its own. Not needed after the
    /// first start (the data folder knows the members).
    #[arg(long, value_name = "ADDR,...", conflicts_with = "join")]
    pub peers: Option<String>,
    /// The address to listen on (HOST:PORT), for a node that joins.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Join an existing cluster: members to ask, comma-separated. The node
    /// waits as a non-member until it is added (`member add`), then
    /// catches up.
    #[arg(long, value_name = "ADDR,...", requires = "listen")]
    pub join: Option<String>,
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
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_HEARTBEAT_MS)]
    pub heartbeat_ms: u64,
    /// Election timeout range, ms (drawn uniformly from MIN to MAX).
    #[arg(
        long,
        value_name = "MIN-MAX",
        default_value_t = TimeoutRange(DEFAULT_ELECTION_MIN_MS, DEFAULT_ELECTION_MAX_MS),
        value_parser = parse_range,
    )]
    pub election_timeout_ms: TimeoutRange,
    /// Serve linearizable reads from a leader lease instead of a ReadIndex
    /// heartbeat round. Faster, but it assumes the nodes' clocks run at
    /// rates within 10% of each other; off by default.
    #[arg(long)]
    pub lease_reads: bool,
    /// Serve the metrics (GET /metrics, Prometheus text format) and the
    /// health checks (GET /livez, GET /readyz) over HTTP on HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Log segment size, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub segment_size: u64,
}

/// An election timeout range, `MIN-MAX` ms, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutRange(pub u64, pub u64);

impl std::fmt::Display for TimeoutRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Parses `MIN-MAX`; whether the range is usable is the core's rule,
/// checked with the rest in [`ServerArgs::config`].
fn parse_range(text: &str) -> Result<TimeoutRange, String> {
    let (min, max) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not MIN-MAX"))?;
    let min: u64 = min.trim().parse().map_err(|e| format!("{min:?}: {e}"))?;
    let max: u64 = max.trim().parse().map_err(|e| format!("{max:?}: {e}"))?;
    Ok(TimeoutRange(min, max))
}

impl ServerArgs {
    /// The server configuration, checked once by the core's rules. A flag
    /// that breaks one is reported as an argument error of `server` (exit
    /// code 2), naming the flag.
    pub fn config(&self) -> Result<ValidConfig, clap::Error> {
        let parse_list = |flag: &str, list: &Option<String>| match list {
            Some(list) => crate::addr::parse_address_list(list)
                .map_err(|error| argument_error(format!("{flag}: {error}"))),
            None => Ok(Vec::new()),
        };
        let peers = parse_list("--peers", &self.peers)?;
        let join = parse_list("--join", &self.join)?;
        let count = peers.len();
        let mut config =
            ServerConfig::new(self.id, peers, self.data_dir.clone(), self.certs.clone());
        config.join = join;
        config.metrics_addr = match &self.metrics_addr {
            Some(text) => Some(
                crate::addr::parse_address(text)
                    .map_err(|error| argument_error(format!("--metrics-addr: {error}")))?
                    .addr,
            ),
            None => None,
        };
        config.listen = match &self.listen {
            Some(listen) => Some(
                crate::addr::parse_address(listen)
                    .map_err(|error| argument_error(format!("--listen: {error}")))?,
            ),
            None => None,
        };
        let raft = &mut config.replica.raft;
        raft.heartbeat_interval = self.heartbeat_ms;
        raft.election_timeout_min = self.election_timeout_ms.0;
        raft.election_timeout_max = self.election_timeout_ms.1;
        raft.lease_reads = self.lease_reads;
        config.replica.snapshot_every = self.snapshot_every;
        config.storage.segment_size = self.segment_size;
        config.validate().map_err(|error| {
            argument_error(match error {
                ConfigError::ZeroId if count == 0 => "--id 0: node ids start at 1".to_string(),
                ConfigError::ZeroId | ConfigError::NotAMember(_) => {
                    format!(
                        "--id {} is not a position in --peers (1 to {count})",
                        self.id
                    )
                }
                ConfigError::HeartbeatInterval { .. } => {
                    format!("--heartbeat-ms {}: {error}", self.heartbeat_ms)
                }
                ConfigError::ElectionTimeout { .. } => {
                    format!(
                        "--election-timeout-ms {}: {error}",
                        self.election_timeout_ms
                    )
                }
                other => other.to_string(),
            })
        })
    }
}

/// An argument error of `server`.
fn argument_error(message: String) -> clap::Error {
    let mut command = Cli::command();
    command.build();
    let server = command
        .find_subcommand_mut("server")
        // Invariant: `server` is a subcommand of `Cli`.
        .expect("the server subcommand");
    server.error(ErrorKind::ValueValidation, message)
}

/// Runs a server until SIGINT or SIGTERM.
pub async fn run(config: ValidConfig) -> Result<(), CliError> {
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
