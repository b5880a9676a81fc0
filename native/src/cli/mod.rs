//! The command line: `certs`, `server`, the one-shot commands, `client`,
//! `status`, `bench` and `demo` (the contract is in DESIGN.md).
//!
//! Exit codes: 0 success; 1 a `get` of a missing key, or a server, `certs`
//! or `demo` that failed; 2 a client-side error (the outcome of a write is
//! then unknown unless the message says it was refused) and bad arguments
//! (flags of `server` included: they are checked by the core's rules before
//! the server starts).

use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use distribkv_core::kv::Operation;

pub mod bench;
pub mod client;
pub mod demo;
pub mod member;
#[cfg(feature = "fault-injection")]
pub mod power_cut;
pub mod server;
pub mod shard;
pub mod snapshot;
pub mod status;

/// distribKV: a linearizable key-value store replicated with Raft, over QUIC.
#[derive(Debug, Parser)]
#[command(name = "distribkv-native", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the server's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a cluster CA and node and client certificates into a folder.
    Certs(CertsArgs),
    /// Run one node of a cluster.
    Server(server::ServerArgs),
    /// Set KEY to VALUE.
    Put(KeyValueArgs),
    /// Print the value of KEY (exit 1, printing nothing, if it is missing).
    Get(KeyArgs),
    /// Append VALUE to the value of KEY (a missing key counts as empty).
    Append(KeyValueArgs),
    /// Remove KEY.
    Delete(KeyArgs),
    /// Read commands from stdin, one per line, and answer each with one line.
    Client(client::ClientArgs),
    /// Print the status of every reachable node, one line each.
    Status(status::StatusArgs),
    /// Closed-loop load: N concurrent clients for a while, then latency figures.
    Bench(bench::BenchArgs),
    /// List, add, promote or remove the cluster's members.
    Member(member::MemberArgs),
    /// Save, check and restore backups.
    Snapshot(snapshot::SnapshotArgs),
    /// Show a sharded cluster's shards; join or leave a group; move a shard.
    Shard(shard::ShardArgs),
    /// Start a local 3-node cluster in a temporary folder until interrupted.
    Demo(demo::DemoArgs),
}

impl Command {
    /// Whether the command runs a node (`server`, `demo`) or makes
    /// certificates: it logs at info and a failure exits 1, where a client
    /// command's exits 2.
    pub fn is_node(&self) -> bool {
        matches!(
            self,
            Command::Server(_) | Command::Demo(_) | Command::Certs(_)
        )
    }
}

/// Runs `command`; returns the exit code.
pub async fn run(command: &Command) -> Result<u8, CliError> {
    match command {
        Command::Certs(args) => certs(args).map(|()| 0),
        Command::Server(args) => server::run(args).await.map(|()| 0),
        Command::Put(args) => {
            client::one_shot(&args.cluster, ReadArgs::default(), args.put()).await
        }
        Command::Get(args) => client::one_shot(&args.cluster, args.reads, args.get()).await,
        Command::Append(args) => {
            client::one_shot(&args.cluster, ReadArgs::default(), args.append()).await
        }
        Command::Delete(args) => client::one_shot(&args.cluster, args.reads, args.delete()).await,
        Command::Client(args) => client::line_client(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Member(args) => member::run(args).await,
        Command::Snapshot(args) => snapshot::run(args).await,
        Command::Shard(args) => shard::run(args).await,
        Command::Demo(args) => demo::run(args).await.map(|()| 0),
    }
}

/// `certs` arguments.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Folder to write the certificates into (created if needed; existing
    /// certificate files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A name or IP address the node certificate is valid for, in addition
    /// to localhost, 127.0.0.1 and ::1 (repeatable).
    #[arg(long = "host", value_name = "NAME_OR_IP")]
    pub hosts: Vec<String>,
}

/// Where the cluster is and how to authenticate to it.
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// Addresses of the cluster's nodes, HOST:PORT, comma-separated, in id
    /// order (the same list as the servers' --peers), so that a node's
    /// "the leader is node N" hint points at the right address.
    #[arg(long, value_name = "ADDR,...", env = "DISTRIBKV_CLUSTER")]
    pub cluster: String,
    /// Folder with ca-cert.pem, client-cert.pem and client-key.pem.
    #[arg(long, value_name = "DIR", env = "DISTRIBKV_CERTS")]
    pub certs: PathBuf,
}

/// How a client's reads are routed.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ReadArgs {
    /// Let any node serve reads, followers included: a follower asks the
    /// leader for a read index and answers from its own state once it has
    /// applied that far. On a sharded cluster, a read goes to any replica
    /// of the group owning the key, which checks ownership at that index.
    /// As linearizable as a read at the leader; spreads reads over every
    /// node. Off by default.
    #[arg(long)]
    pub follower_reads: bool,
}

/// Arguments of `get` and `delete`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Read routing (for `get`).
    #[command(flatten)]
    pub reads: ReadArgs,
    /// The key.
    pub key: String,
}

impl KeyArgs {
    fn key(&self) -> Bytes {
        Bytes::copy_from_slice(self.key.as_bytes())
    }

    /// `get KEY`.
    pub fn get(&self) -> Operation {
        Operation::Get { key: self.key() }
    }

    /// `delete KEY`.
    pub fn delete(&self) -> Operation {
        Operation::Delete { key: self.key() }
    }
}

/// Arguments of `put` and `append`.
#[derive(Debug, Args)]
pub struct KeyValueArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The key.
    pub key: String,
    /// The value (one starting with `-` is taken as it is, as `-5` or
    /// `-x`; the options go before the key or after the value).
    #[arg(allow_hyphen_values = true)]
    pub value: String,
}

impl KeyValueArgs {
    fn key_value(&self) -> (Bytes, Bytes) {
        let bytes = |text: &str| Bytes::copy_from_slice(text.as_bytes());
        (bytes(&self.key), bytes(&self.value))
    }

    /// `put KEY VALUE`.
    pub fn put(&self) -> Operation {
        let (key, value) = self.key_value();
        Operation::Put { key, value }
    }

    /// `append KEY VALUE`.
    pub fn append(&self) -> Operation {
        let (key, value) = self.key_value();
        Operation::Append { key, value }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad argument that only shows once it is checked against the rest
    /// (exit code 2, printed the way clap prints any argument error).
    #[error("{0}")]
    Arguments(#[from] clap::Error),
    /// A bad address list.
    #[error("{0}")]
    Address(#[from] crate::addr::AddressError),
    /// Certificates could not be loaded or generated.
    #[error("{0}")]
    Certificates(#[from] crate::tls::CertError),
    /// The client transport could not start.
    #[error("{0}")]
    Transport(#[from] crate::transport::ClientError),
    /// An operation failed.
    #[error("{0}")]
    Operation(#[from] crate::kv_client::KvError),
    /// No node answered.
    #[error("no node of the cluster answered")]
    NoNodeReachable,
    /// Reading stdin or writing stdout failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A JSON line could not be written.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The server failed.
    #[error("{0}")]
    Server(#[from] crate::server::ServerError),
    /// The benchmark failed.
    #[error("{0}")]
    Bench(#[from] bench::BenchError),
    /// The demo failed.
    #[error("{0}")]
    Demo(#[from] demo::DemoError),
    /// A membership command failed.
    #[error("{0}")]
    Member(#[from] member::MemberError),
    /// A snapshot command failed.
    #[error("{0}")]
    Snapshot(#[from] snapshot::SnapshotError),
    /// A sharded server failed.
    #[error("{0}")]
    ShardServer(#[from] crate::shard::ShardServerError),
    /// A shard command failed.
    #[error("{0}")]
    Shard(String),
}

impl CliError {
    /// Whether writing the output failed because its reader went away
    /// (`| head`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(error) if error.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The exit code: 2 for a client-side error and for a server that
    /// refused to start on what it was given (a removed id), 1 for a node
    /// that failed.
    pub fn exit_code(&self, is_node: bool) -> u8 {
        match self {
            CliError::Server(error) if error.is_refusal() => 2,
            CliError::ShardServer(error) if error.is_refusal() => 2,
            _ if is_node => 1,
            _ => 2,
        }
    }
}

/// Runs `certs`: prints where the files went and the cluster id.
pub fn certs(args: &CertsArgs) -> Result<(), CliError> {
    let mut hosts: Vec<String> = crate::tls::DEFAULT_NODE_HOSTS
        .iter()
        .map(|h| h.to_string())
        .collect();
    for host in &args.hosts {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    let generated = crate::tls::generate(&args.out, &hosts)?;
    println!(
        "wrote the CA, node and client certificates of cluster {} into {}",
        generated.cluster_id,
        args.out.display()
    );
    println!("node certificate valid for: {}", hosts.join(", "));
    Ok(())
}

/// Writes one line to standard error, ignoring a failure (a closed pipe):
/// a diagnostic that cannot be shown is not worth a panic.
pub fn note(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `put` and `append` take a value starting with `-` as it is, and
    /// still read the options after it.
    #[test]
    fn a_value_may_start_with_a_hyphen() {
        for (args, value, certs) in [
            (
                &["put", "--cluster", "a:1", "--certs", "d", "k", "-5"][..],
                "-5",
                "d",
            ),
            (
                &["append", "--cluster", "a:1", "k", "-x", "--certs", "c"],
                "-x",
                "c",
            ),
            (
                &["put", "--cluster", "a:1", "--certs", "d", "k", "--", "-y"],
                "-y",
                "d",
            ),
        ] {
            let cli = Cli::try_parse_from(std::iter::once(&"distribkv-native").chain(args))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let (Command::Put(kv) | Command::Append(kv)) = cli.command else {
                panic!("{args:?}: not a put or an append");
            };
            assert_eq!((kv.key.as_str(), kv.value.as_str()), ("k", value));
            assert_eq!(kv.cluster.certs, PathBuf::from(certs), "{args:?}");
        }
    }
}
