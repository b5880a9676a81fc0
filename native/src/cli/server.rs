//! `distribkv-native server`: its flags, turned into the core's
//! configuration and checked by the core's rules; a bad flag is reported
//! like any other argument error. The `--config` file is read in
//! `server/config_file.rs`, the flags of a sharded host in
//! `server/sharded.rs`.

mod config_file;
mod sharded;

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory};
use distribkv_core::raft::{ConfigError, NodeId};

use super::{Cli, CliError};
use crate::server::{
    DEFAULT_ELECTION_MAX_MS, DEFAULT_ELECTION_MIN_MS, DEFAULT_HEARTBEAT_MS, ServerConfig,
    ValidConfig,
};

use config_file::parse_range;
pub use config_file::{ConfigFile, TimeoutRange};

/// The longest `--group-commit-interval-us`: 100 ms.
const MAX_COMMIT_INTERVAL_US: u64 = 100_000;

/// The most `--log-preallocate`: 1 GiB.
const MAX_PREALLOCATE: u64 = 1 << 30;

/// The bounds of `--segment-size`: 4 KiB to 1 GiB (a restart reads a
/// segment whole).
const SEGMENT_SIZES: std::ops::RangeInclusive<u64> = 4096..=1 << 30;

/// `server` arguments. Everything after `--certs` is optional tuning; each
/// flag can come from `--config` instead (a flag overrides the file).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// A TOML file with the server's flags as keys (`id`, `peers` as an
    /// array of strings, `data-dir`, `certs`, `metrics-addr`,
    /// `snapshot-every`, ...); a flag on the command line overrides it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id: its 1-based position in --peers for the first
    /// members, the id it is added with (`member add`) for a node that joins.
    #[arg(long, value_name = "N")]
    pub id: Option<NodeId>,
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
    #[arg(long, value_name = "ADDR,...")]
    pub join: Option<String>,
    /// Data folder (created if missing); it belongs to this node id and
    /// cluster from then on.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Folder with ca-cert.pem, node-cert.pem and node-key.pem.
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// Take a snapshot and compact the log every N applied entries (0:
    /// never) [default: 10000].
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Leader heartbeat interval, ms [default: 100].
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// Election timeout range, ms (drawn uniformly from MIN to MAX)
    /// [default: 500-1000].
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_range)]
    pub election_timeout_ms: Option<TimeoutRange>,
    /// Serve linearizable reads from a leader lease instead of a ReadIndex
    /// heartbeat round. Faster, but it assumes the nodes' clocks run at
    /// rates within 10% of each other; off by default.
    #[arg(long)]
    pub lease_reads: bool,
    /// Serve the metrics (GET /metrics, Prometheus text format) and the
    /// health checks (GET /livez, GET /readyz) over HTTP on HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Log segment size, bytes, 4096 to 1073741824 [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    pub segment_size: Option<u64>,
    /// Start group commits (fsyncs of the log) at least this many
    /// microseconds apart, 0 to 100000: writes arriving meanwhile join the
    /// next one, so a steady load takes fewer fsyncs (less CPU and disk
    /// work) for at most this much more latency. 0: each group commit
    /// starts as soon as the last ends [default: 0].
    #[arg(long, value_name = "MICROS")]
    pub group_commit_interval_us: Option<u64>,
    /// Keep this many bytes of zeros written ahead of the log's last
    /// record (never past --segment-size), 0 to 1073741824, so that a
    /// group commit's fsync overwrites blocks the file has instead of
    /// growing it. 0: none, for copy-on-write file systems (btrfs, ZFS),
    /// where overwriting zeros gains nothing [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub log_preallocate: Option<u64>,
    /// A sharded host: the number of shards of the key space. With it,
    /// --peers lists every host, and the process holds replicas of the
    /// controller group and of the shard groups that name it. The flags
    /// below marked "Sharded" need it (here or in --config).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Sharded: the hosts of the controller group [default: every host].
    #[arg(long, value_name = "ID,...")]
    pub controller: Option<String>,
    /// Sharded: a shard group and its hosts, `GID=ID,ID,...` (repeatable;
    /// give every host the same list).
    #[arg(long = "group", value_name = "GID=ID,...")]
    pub groups: Vec<String>,
    /// Sharded: a group with no traffic for this long stops its timers and
    /// heartbeats until it is needed again (0: never) [default: 0].
    #[arg(long, value_name = "MS")]
    pub hibernate_after_ms: Option<u64>,
    /// Sharded: a group that left (`shard leave`) and handed every shard
    /// over is retired this long afterwards: its replicas and their logs
    /// are removed from every host, and its id cannot join again; until
    /// then it may join again (0: never retire) [default: 10000].
    #[arg(long, value_name = "MS")]
    pub retire_after_ms: Option<u64>,
    /// Sharded: the multi-group log purges old segments once they hold
    /// this many bytes (at least 4096) [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub log_purge_after: Option<u64>,
    /// Sharded: a group whose live entries in the segments a purge would
    /// delete exceed this many bytes (at least 4096) is not copied forward:
    /// it keeps them until its next snapshot, which the host takes once the
    /// log holds four times --log-purge-after [default: 65536].
    #[arg(long, value_name = "BYTES")]
    pub log_rewrite_limit: Option<u64>,
    /// Test-only: run the storage on the fault file system and cut the
    /// power in MODE on SIGUSR1 (see `cli::power_cut`).
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_name = "MODE", hide = true)]
    pub fault_power_cut: Option<super::power_cut::PowerCutMode>,
}

/// What a `server` command starts, from its flags and `--config` file.
#[derive(Debug)]
pub enum ServerSetup {
    /// A server of one Raft group.
    Single(ValidConfig),
    /// A sharded host (`--shards`): replicas of the controller and of
    /// shard groups.
    Sharded(crate::shard::ShardedServerConfig),
}

impl ServerArgs {
    /// The `--config` file, or an empty one without the flag.
    fn config_file(&self) -> Result<ConfigFile, clap::Error> {
        match &self.config {
            Some(path) => {
                ConfigFile::load(path).map_err(|e| argument_error(format!("--config {e}")))
            }
            None => Ok(ConfigFile::default()),
        }
    }

    /// What `server` starts: a sharded host if `--shards` is given (on the
    /// command line or in the `--config` file), else a server of one
    /// group; its configuration checked once by the core's rules. A flag
    /// that breaks one is reported as an argument error of `server` (exit
    /// code 2), naming the flag; so is a sharded host's setting given
    /// without `shards` in the flags or the file. The `--config` file is read once, here: what `run` starts is made
    /// from one reading of it.
    pub fn setup(&self) -> Result<ServerSetup, clap::Error> {
        let file = self.config_file()?;
        if self.shards.is_some() || file.shards.is_some() {
            Ok(ServerSetup::Sharded(self.sharded_config_in(&file)?))
        } else {
            Ok(ServerSetup::Single(self.config_in(&file)?))
        }
    }

    /// The single-group configuration from the flags and `file` (the
    /// `--config` file, read by the caller).
    fn config_in(&self, file: &ConfigFile) -> Result<ValidConfig, clap::Error> {
        self.refuse_sharded_settings_without_shards(file)?;
        let id = self.id.or(file.id).ok_or_else(|| required("--id"))?;
        // Members above MAX_MEMBER_ID are refused by `member add` and not
        // reached by clients: a node started with such an id (alone, or
        // waiting to be added with --join) could never serve one.
        if id > distribkv_core::kv::MAX_MEMBER_ID {
            return Err(argument_error(format!(
                "--id {id}: node ids are 1 to {}",
                distribkv_core::kv::MAX_MEMBER_ID
            )));
        }
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .ok_or_else(|| required("--data-dir"))?;
        let certs = self
            .certs
            .clone()
            .or(file.certs.clone())
            .ok_or_else(|| required("--certs"))?;
        for (flag, path) in [("--data-dir", &data_dir), ("--certs", &certs)] {
            if path.as_os_str().is_empty() {
                return Err(argument_error(format!(
                    "{flag}: the folder's path is empty"
                )));
            }
        }
        let parse_list = |flag: &str, list: Option<String>| match list {
            Some(list) => crate::addr::parse_address_list(&list)
                .map_err(|error| argument_error(format!("{flag}: {error}"))),
            None => Ok(Vec::new()),
        };
        let peers = parse_list(
            "--peers",
            self.peers
                .clone()
                .or(file.peers.as_ref().map(|p| p.join(","))),
        )?;
        let join = parse_list(
            "--join",
            self.join
                .clone()
                .or(file.join.as_ref().map(|p| p.join(","))),
        )?;
        if !peers.is_empty() && !join.is_empty() {
            return Err(argument_error(
                "--peers (a new cluster) and --join (an existing one) exclude each other".into(),
            ));
        }
        let parse_one = |flag: &str, text: Option<String>| match text {
            Some(text) => crate::addr::parse_address(&text)
                .map(Some)
                .map_err(|error| argument_error(format!("{flag}: {error}"))),
            None => Ok(None),
        };
        let listen = parse_one("--listen", self.listen.clone().or(file.listen.clone()))?;
        if !join.is_empty() && listen.is_none() {
            return Err(required("--listen (with --join)"));
        }
        let metrics_addr = parse_one(
            "--metrics-addr",
            self.metrics_addr.clone().or(file.metrics_addr.clone()),
        )?;
        let election_timeout = match (self.election_timeout_ms, file.election_timeout_ms.clone()) {
            (Some(range), _) => range,
            (None, Some(text)) => parse_range(&text)
                .map_err(|e| argument_error(format!("--election-timeout-ms: {e}")))?,
            (None, None) => TimeoutRange(DEFAULT_ELECTION_MIN_MS, DEFAULT_ELECTION_MAX_MS),
        };
        let heartbeat_ms = self
            .heartbeat_ms
            .or(file.heartbeat_ms)
            .unwrap_or(DEFAULT_HEARTBEAT_MS);
        let count = peers.len();
        let mut config = ServerConfig::new(id, peers, data_dir, certs);
        config.join = join;
        config.listen = listen;
        config.metrics_addr = metrics_addr.map(|address| address.addr);
        let raft = &mut config.replica.raft;
        raft.heartbeat_interval = heartbeat_ms;
        raft.election_timeout_min = election_timeout.0;
        raft.election_timeout_max = election_timeout.1;
        raft.lease_reads = self.lease_reads || file.lease_reads.unwrap_or(false);
        config.replica.snapshot_every = self
            .snapshot_every
            .or(file.snapshot_every)
            .unwrap_or(10_000);
        if let Some(size) = bounded(
            "segment-size",
            self.segment_size,
            file.segment_size,
            (SEGMENT_SIZES, "1 GiB"),
        )? {
            config.storage.segment_size = size;
        }
        if let Some(micros) = bounded(
            "group-commit-interval-us",
            self.group_commit_interval_us,
            file.group_commit_interval_us,
            (0..=MAX_COMMIT_INTERVAL_US, "100 ms"),
        )? {
            config.storage.commit_interval = std::time::Duration::from_micros(micros);
        }
        if let Some(bytes) = bounded(
            "log-preallocate",
            self.log_preallocate,
            file.log_preallocate,
            (0..=MAX_PREALLOCATE, "1 GiB"),
        )? {
            config.storage.preallocate = bytes;
        }
        config.validate().map_err(|error| {
            argument_error(match error {
                ConfigError::ZeroId if count == 0 => "--id 0: node ids start at 1".to_string(),
                ConfigError::ZeroId | ConfigError::NotAMember(_) => {
                    format!("--id {id} is not a position in --peers (1 to {count})")
                }
                ConfigError::HeartbeatInterval { .. } => {
                    format!("--heartbeat-ms {heartbeat_ms}: {error}")
                }
                ConfigError::ElectionTimeout { .. } => {
                    format!("--election-timeout-ms {election_timeout}: {error}")
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

/// The error for a flag given neither on the command line nor in the
/// `--config` file.
fn required(flag: &str) -> clap::Error {
    argument_error(format!(
        "{flag} is required (on the command line or in --config)"
    ))
}

/// Runs a server until SIGINT or SIGTERM.
pub async fn run(args: &ServerArgs) -> Result<(), CliError> {
    let config = match args.setup()? {
        ServerSetup::Sharded(config) => {
            #[cfg(feature = "fault-injection")]
            if let Some(mode) = args.fault_power_cut {
                return run_sharded_with_power_cuts(config, mode).await;
            }
            crate::shard::run(config, shutdown_signal(), |_| {}).await?;
            return Ok(());
        }
        ServerSetup::Single(config) => config,
    };
    #[cfg(feature = "fault-injection")]
    if let Some(mode) = args.fault_power_cut {
        return run_with_power_cuts(config, mode).await;
    }
    crate::server::run(config, shutdown_signal(), |_| {}).await?;
    Ok(())
}

/// Runs a server whose storage is on the fault file system, until SIGINT,
/// SIGTERM or a power cut (SIGUSR1), which ends the process.
#[cfg(feature = "fault-injection")]
async fn run_with_power_cuts(
    config: ValidConfig,
    mode: super::power_cut::PowerCutMode,
) -> Result<(), CliError> {
    let mut config = ServerConfig::clone(&config);
    let file_system = super::power_cut::install(&mut config).map_err(|error| {
        CliError::Io(std::io::Error::new(
            error.kind(),
            format!(
                "fault file system on {}: {error}",
                config.data_dir.display()
            ),
        ))
    })?;
    tracing::warn!(
        ?mode,
        "storage on the fault file system (test build): SIGUSR1 cuts the power"
    );
    let config = config
        .validate()
        .map_err(|error| argument_error(error.to_string()))?;
    let shutdown = async {
        tokio::select! {
            () = shutdown_signal() => {}
            () = super::power_cut::cut_on_signal(file_system, mode) => {}
        }
    };
    crate::server::run(config, shutdown, |_| {}).await?;
    Ok(())
}

/// [`run_with_power_cuts`] for a sharded host: its multi-group log on the
/// fault file system.
#[cfg(feature = "fault-injection")]
async fn run_sharded_with_power_cuts(
    mut config: crate::shard::ShardedServerConfig,
    mode: super::power_cut::PowerCutMode,
) -> Result<(), CliError> {
    let file_system =
        super::power_cut::install_on(&config.data_dir, &mut config.storage).map_err(|error| {
            CliError::Io(std::io::Error::new(
                error.kind(),
                format!(
                    "fault file system on {}: {error}",
                    config.data_dir.display()
                ),
            ))
        })?;
    tracing::warn!(
        ?mode,
        "sharded storage on the fault file system (test build): SIGUSR1 cuts the power"
    );
    let shutdown = async {
        tokio::select! {
            () = shutdown_signal() => {}
            () = super::power_cut::cut_on_signal(file_system, mode) => {}
        }
    };
    crate::shard::run(config, shutdown, |_| {}).await?;
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

/// The value of the flag `--NAME`, or else of the key `NAME` of the
/// `--config` file, if either gives one: within `bounds.0` (whose end is
/// named as `bounds.1`), checked once whichever gave it, the error naming
/// that source.
fn bounded(
    name: &str,
    flag: Option<u64>,
    file: Option<u64>,
    bounds: (std::ops::RangeInclusive<u64>, &str),
) -> Result<Option<u64>, clap::Error> {
    let (value, source) = match (flag, file) {
        (Some(value), _) => (value, format!("--{name} {value}")),
        (None, Some(value)) => (value, format!("{name} = {value} in --config")),
        (None, None) => return Ok(None),
    };
    let (range, end) = bounds;
    if value < *range.start() {
        return Err(argument_error(format!(
            "{source}: at least {}",
            range.start()
        )));
    }
    if value > *range.end() {
        return Err(argument_error(format!(
            "{source}: at most {} ({end})",
            range.end()
        )));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    fn config_of(args: &[&str]) -> Result<crate::server::ValidConfig, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Server(server) = cli.command else {
            panic!("a server command");
        };
        match server.setup()? {
            super::ServerSetup::Single(config) => Ok(config),
            super::ServerSetup::Sharded(_) => panic!("{args:?} is not sharded"),
        }
    }

    /// The configuration of node 1 of a one-node cluster, with `extra` flags.
    fn one_node_with(extra: &[&str]) -> Result<crate::server::ValidConfig, clap::Error> {
        let mut args = vec![
            "distribkv-native",
            "server",
            "--id",
            "1",
            "--peers",
            "127.0.0.1:7001",
            "--data-dir",
            "d",
            "--certs",
            "c",
        ];
        args.extend_from_slice(extra);
        config_of(&args)
    }

    #[test]
    fn the_config_file_gives_the_flags_and_flags_override_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.toml");
        std::fs::write(
            &file,
            "# a cluster\npeers = [\"127.0.0.1:7001\", \"127.0.0.1:7002\", \"127.0.0.1:7003\"]\n\
             id = 2\ndata-dir = \"data2\"\ncerts = \"certs\"\nsnapshot-every = 500\n\
             election-timeout-ms = \"300-600\"\nheartbeat-ms = 50\nmetrics-addr = \"127.0.0.1:9100\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = config_of(&["distribkv-native", "server", "--config", path]).unwrap();
        assert_eq!(config.id(), 2);
        assert_eq!(config.peers.len(), 3);
        assert_eq!(config.replica.snapshot_every, 500);
        assert_eq!(config.replica.raft.election_timeout_min, 300);
        assert_eq!(config.data_dir, std::path::PathBuf::from("data2"));
        assert_eq!(config.metrics_addr.unwrap().port(), 9100);
        let config = config_of(&[
            "distribkv-native",
            "server",
            "--config",
            path,
            "--id",
            "3",
            "--data-dir",
            "data3",
            "--snapshot-every",
            "7",
        ])
        .unwrap();
        assert_eq!(
            (config.id(), config.replica.snapshot_every),
            (3, 7),
            "flags override the file"
        );
        assert_eq!(config.data_dir, std::path::PathBuf::from("data3"));

        std::fs::write(&file, "id = 1\npeer = [\"a:1\"]\n").unwrap();
        let error = config_of(&["distribkv-native", "server", "--config", path]).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
        std::fs::write(&file, "id = \"one\"\n").unwrap();
        assert!(config_of(&["distribkv-native", "server", "--config", path]).is_err());
        let error = config_of(&[
            "distribkv-native",
            "server",
            "--data-dir",
            "d",
            "--certs",
            "c",
        ])
        .unwrap_err();
        assert!(error.to_string().contains("--id is required"), "{error}");
    }

    #[test]
    fn a_node_id_no_client_could_reach_is_refused() {
        // Alone (no --peers) or joining, any id passed the core's checks,
        // and the node ran where no client reaches it (ids above 65535).
        let with_id = |id: &str, extra: &[&str]| {
            let mut args = vec![
                "distribkv-native",
                "server",
                "--id",
                id,
                "--data-dir",
                "d",
                "--certs",
                "c",
            ];
            args.extend_from_slice(extra);
            config_of(&args)
        };
        let joining = ["--join", "127.0.0.1:7001", "--listen", "127.0.0.1:7004"];
        assert_eq!(with_id("65535", &joining).unwrap().id(), 65_535);
        for extra in [&joining[..], &["--listen", "127.0.0.1:7004"][..], &[][..]] {
            for id in ["65536", "18446744073709551615"] {
                let error = with_id(id, extra).unwrap_err().to_string();
                assert!(
                    error.contains(&format!("--id {id}: node ids are 1 to 65535")),
                    "{extra:?}: {error}"
                );
            }
        }
    }

    #[test]
    fn an_empty_folder_path_in_the_config_file_is_refused_naming_its_flag() {
        // clap refuses an empty value on the command line; the file's
        // was taken as is, and failed later without naming its key.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        for (key, flag, other) in [
            ("data-dir", "--data-dir", "--certs"),
            ("certs", "--certs", "--data-dir"),
        ] {
            std::fs::write(&file, format!("{key} = \"\"\n")).unwrap();
            let error = config_of(&[
                "distribkv-native",
                "server",
                "--id",
                "1",
                "--peers",
                "127.0.0.1:7001",
                other,
                "x",
                "--config",
                file.to_str().unwrap(),
            ])
            .unwrap_err()
            .to_string();
            assert!(
                error.contains(&format!("{flag}: the folder's path is empty")),
                "{error}"
            );
        }
    }

    #[test]
    fn an_election_timeout_too_long_for_the_clock_is_refused() {
        // Beyond a day, the deadlines derived from the timeout (CheckQuorum's
        // is twice the minimum plus a heartbeat) could overflow.
        let config = one_node_with(&["--election-timeout-ms", "1000-86400000"]).unwrap();
        assert_eq!(config.replica.raft.election_timeout_max, 86_400_000);
        for (range, heartbeat) in [
            ("1000-86400001", "100"),
            ("1000-18446744073709551615", "100"),
            ("18446744073709551000-18446744073709551615", "1"),
            (
                "18446744073709551000-18446744073709551615",
                "18446744073709550000",
            ),
        ] {
            let error =
                one_node_with(&["--election-timeout-ms", range, "--heartbeat-ms", heartbeat])
                    .unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("--election-timeout-ms {range}"))
                    && error.to_string().contains("longest allowed, 86400000 ms"),
                "{range}: {error}"
            );
        }
    }

    #[test]
    fn the_segment_size_comes_from_the_flag_or_the_file_and_is_bounded() {
        assert_eq!(one_node_with(&[]).unwrap().storage.segment_size, 64 << 20);
        for (flag, bytes) in [
            ("4096", 4096),
            ("131072", 128 << 10),
            ("1073741824", 1 << 30),
        ] {
            let config = one_node_with(&["--segment-size", flag]).unwrap();
            assert_eq!(config.storage.segment_size, bytes, "{flag}");
        }
        for (bad, expected) in [
            ("0", "--segment-size 0: at least 4096"),
            ("4095", "--segment-size 4095: at least 4096"),
            (
                "1073741825",
                "--segment-size 1073741825: at most 1073741824 (1 GiB)",
            ),
            ("-1", "--segment-size"),
            ("big", "--segment-size"),
        ] {
            let error = one_node_with(&[&format!("--segment-size={bad}")]).unwrap_err();
            assert!(error.to_string().contains(expected), "{bad}: {error}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let path = file.to_str().unwrap();
        std::fs::write(&file, "segment-size = 1048576\n").unwrap();
        assert_eq!(
            one_node_with(&["--config", path])
                .unwrap()
                .storage
                .segment_size,
            1 << 20
        );
        std::fs::write(&file, "segment-size = 100\n").unwrap();
        let error = one_node_with(&["--config", path]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("segment-size = 100 in --config: at least 4096"),
            "{error}"
        );
    }

    #[test]
    fn the_zeros_ahead_of_the_log_come_from_the_flag_or_the_file_and_are_bounded() {
        assert_eq!(one_node_with(&[]).unwrap().storage.preallocate, 1 << 20);
        for (flag, bytes) in [("0", 0), ("4096", 4096), ("1073741824", 1 << 30)] {
            let config = one_node_with(&["--log-preallocate", flag]).unwrap();
            assert_eq!(config.storage.preallocate, bytes, "{flag}");
        }
        for bad in ["1073741825", "-1", "1MiB", ""] {
            let error = one_node_with(&[&format!("--log-preallocate={bad}")]).unwrap_err();
            assert!(
                error.to_string().contains("--log-preallocate"),
                "{bad}: {error}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let path = file.to_str().unwrap();
        std::fs::write(&file, "log-preallocate = 0\n").unwrap();
        assert_eq!(
            one_node_with(&["--config", path])
                .unwrap()
                .storage
                .preallocate,
            0
        );
        // The flag overrides the file.
        let config = one_node_with(&["--config", path, "--log-preallocate", "8192"]).unwrap();
        assert_eq!(config.storage.preallocate, 8192);
        std::fs::write(&file, "log-preallocate = 2147483648\n").unwrap();
        let error = one_node_with(&["--config", path]).unwrap_err();
        assert!(
            error.to_string().contains("log-preallocate = 2147483648"),
            "{error}"
        );
    }

    #[test]
    fn the_group_commit_interval_comes_from_the_flag_or_the_file_and_is_bounded() {
        let config = one_node_with(&[]).unwrap();
        assert_eq!(config.storage.commit_interval, std::time::Duration::ZERO);
        let config = one_node_with(&["--group-commit-interval-us", "1500"]).unwrap();
        assert_eq!(
            config.storage.commit_interval,
            std::time::Duration::from_micros(1500)
        );
        for bad in ["100001", "-1", "soon"] {
            let error = one_node_with(&[&format!("--group-commit-interval-us={bad}")]).unwrap_err();
            assert!(
                error.to_string().contains("--group-commit-interval-us"),
                "{bad}: {error}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let path = file.to_str().unwrap();
        std::fs::write(&file, "group-commit-interval-us = 2000\n").unwrap();
        let config = one_node_with(&["--config", path]).unwrap();
        assert_eq!(
            config.storage.commit_interval,
            std::time::Duration::from_millis(2)
        );
        std::fs::write(&file, "group-commit-interval-us = 250000\n").unwrap();
        let error = one_node_with(&["--config", path]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("group-commit-interval-us = 250000"),
            "{error}"
        );
    }
}
