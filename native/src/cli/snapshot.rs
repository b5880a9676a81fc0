//! `distribkv-native snapshot save|status|restore`: backups (the contract
//! is in DESIGN.md, the file format in [`crate::backup`]).
//!
//! `save` asks the leader for a snapshot taken at a linearizable point (it
//! holds every write acknowledged before the command started), fetches it
//! in chunks and writes the file atomically. `restore` makes the data
//! folder of one node of a new cluster: the members (from `--peers`) and
//! the snapshot, which the node installs at its first start, whatever its
//! certificate folder.
//!
//! A sharded cluster's `save` exports every shard from its group
//! (module `sharded`), and its backup is restored by loading it into a running
//! cluster (`restore FILE --cluster ...`, module `load`), which also takes a
//! single group's backup.

mod load;
mod sharded;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::{Args, Subcommand};
use distribkv_core::kv::{ClientRequest, Reply, RequestBody, ServiceError};
use distribkv_core::raft::NodeId;
use serde::{Deserialize, Serialize};

use super::{CliError, ClusterArgs};
use crate::backup::sharded::ShardedBackup;
use crate::backup::{Backup, BackupError, RESTORE_FILE};
use crate::kv_client::KvTransport;
use crate::server::members::{MEMBERS_FILE, initial_membership, save_membership};

/// How long `save` keeps trying to reach a leader.
pub(super) const SAVE_TIMEOUT: Duration = Duration::from_secs(60);
/// One request's timeout.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `snapshot` arguments.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

/// The `snapshot` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a consistent snapshot of the cluster's data into FILE.
    Save(SaveArgs),
    /// Check a snapshot file and describe it.
    Status(StatusArgs),
    /// Make the data folder of node N of a new cluster from a snapshot file,
    /// or load it into a running cluster (--cluster).
    Restore(RestoreArgs),
}

/// `snapshot save` arguments.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The file to write (replaced atomically).
    pub file: PathBuf,
}

/// `snapshot status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// One JSON object instead of plain text.
    #[arg(long)]
    pub json: bool,
}

/// `snapshot restore` arguments: a new node's data folder (`--id`,
/// `--peers`, `--data-dir`), or a load into a running cluster
/// (`--cluster`).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["cluster", "id"])))]
pub struct RestoreArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// The node's id in the new cluster: its 1-based position in --peers.
    #[arg(long, value_name = "N", requires_all = ["peers", "data_dir"])]
    pub id: Option<NodeId>,
    /// Every member's address of the new cluster (HOST:PORT), in id order.
    #[arg(long, value_name = "ADDR,...", requires = "id")]
    pub peers: Option<String>,
    /// The data folder to create (it must not exist, or be empty).
    #[arg(long, value_name = "DIR", requires = "id")]
    pub data_dir: Option<PathBuf>,
    /// Instead of a data folder: load the backup (of a single group or of
    /// a sharded cluster) into this running cluster, which must hold no
    /// key yet, through the ordinary client. How a sharded cluster is
    /// restored.
    #[arg(long, value_name = "ADDR,...", conflicts_with_all = ["id", "peers", "data_dir"])]
    pub cluster: Option<String>,
    /// With --cluster: the folder with ca-cert.pem, client-cert.pem and
    /// client-key.pem.
    #[arg(
        long,
        value_name = "DIR",
        env = "DISTRIBKV_CERTS",
        requires = "cluster"
    )]
    pub certs: Option<PathBuf>,
}

/// What `snapshot status --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// The last log index the snapshot covers.
    pub index: u64,
    /// That entry's term.
    pub term: u64,
    /// Keys in the snapshot (0 when the checksum does not match).
    pub keys: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Whether the checksum matches.
    pub checksum_ok: bool,
}

/// Why a snapshot command failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file is refused.
    #[error("{file}: {source}")]
    File {
        /// The file.
        file: String,
        /// Why.
        source: BackupError,
    },
    /// No leader gave the snapshot.
    #[error("no leader gave a snapshot within {seconds} s: {last}")]
    NoLeader {
        /// The time tried.
        seconds: u64,
        /// The last error.
        last: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// A shard of a sharded cluster could not be fetched in time.
    #[error("shard {shard} could not be fetched within {seconds} s: {last}")]
    Incomplete {
        /// The time tried, in all.
        seconds: u64,
        /// The shard.
        shard: u32,
        /// The last reason.
        last: String,
    },
}

/// Runs a `snapshot` command; returns the exit code.
pub async fn run(args: &SnapshotArgs) -> Result<u8, CliError> {
    match &args.command {
        SnapshotCommand::Save(save) => {
            let started = Instant::now();
            let transport = match super::client::connect(&save.cluster).await? {
                super::client::Connected::Single(cluster) => cluster.transport(),
                super::client::Connected::Sharded(cluster) => {
                    let backup = sharded::fetch(cluster.clone()).await;
                    cluster.transport.close().await;
                    let backup = backup?;
                    backup
                        .save(&save.file)
                        .map_err(|source| file_error(&save.file, source))?;
                    let keys = backup.pairs().map_or(0, |pairs| pairs.len());
                    println!(
                        "OK: {} shards ({} keys, {} bytes) saved to {} in {:.1} s",
                        backup.shards.len(),
                        keys,
                        file_bytes(&save.file),
                        save.file.display(),
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(0);
                }
            };
            let backup = fetch(&transport).await;
            transport.close().await;
            let backup = backup?;
            backup
                .save(&save.file)
                .map_err(|source| file_error(&save.file, source))?;
            println!(
                "OK: snapshot at index {} (term {}, {} bytes) saved to {} in {:.1} s",
                backup.index,
                backup.term,
                file_bytes(&save.file),
                save.file.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        SnapshotCommand::Status(status) => print_status(status),
        SnapshotCommand::Restore(restore) => match &restore.cluster {
            Some(cluster) => {
                let Some(certs) = restore.certs.clone() else {
                    return Err(SnapshotError::Invalid(
                        "--cluster needs --certs (or DISTRIBKV_CERTS): the client's certificates"
                            .into(),
                    )
                    .into());
                };
                let cluster = ClusterArgs {
                    cluster: cluster.clone(),
                    certs,
                };
                load::load(&restore.file, &cluster).await
            }
            None => {
                restore_into(restore)?;
                Ok(0)
            }
        },
    }
}

pub(super) fn file_error(file: &Path, source: BackupError) -> SnapshotError {
    SnapshotError::File {
        file: file.display().to_string(),
        source,
    }
}

/// Fetches a snapshot from the leader, chunk by chunk, following the
/// leader through elections; a snapshot lost half-way starts over.
async fn fetch(transport: &KvTransport) -> Result<Backup, SnapshotError> {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    let servers = transport.servers().len();
    let mut server = 0;
    let mut last = String::from("no answer");
    'start_over: while Instant::now() < deadline {
        let mut data = BytesMut::new();
        let mut held: Option<(u64, u64, u64)> = None;
        loop {
            if Instant::now() >= deadline {
                break 'start_over;
            }
            let request = ClientRequest {
                id: 1,
                body: RequestBody::Backup {
                    index: held.map(|(index, _, _)| index),
                    offset: data.len() as u64,
                },
            };
            let answer =
                tokio::time::timeout(REQUEST_TIMEOUT, transport.request_to(server, request)).await;
            let result = match answer {
                Ok(Ok(response)) => response.result,
                Ok(Err(error)) => Err(ServiceError::Unavailable(error.to_string())),
                Err(_) => Err(ServiceError::Unavailable("no answer in time".into())),
            };
            match result {
                Ok(Reply::Backup(chunk)) => {
                    if held.is_some_and(|(index, _, _)| index != chunk.index)
                        || chunk.offset != data.len() as u64
                    {
                        continue 'start_over;
                    }
                    held = Some((chunk.index, chunk.term, chunk.total));
                    data.extend_from_slice(&chunk.data);
                    if data.len() as u64 >= chunk.total {
                        return Ok(Backup {
                            index: chunk.index,
                            term: chunk.term,
                            data: data.freeze(),
                        });
                    }
                    if chunk.data.is_empty() {
                        last = "an empty chunk before the end".into();
                        continue 'start_over;
                    }
                }
                Ok(other) => {
                    last = format!("unexpected answer {other:?}");
                    continue 'start_over;
                }
                Err(ServiceError::NotLeader {
                    leader_hint: Some(hint),
                }) if (hint as usize) <= servers && hint > 0 => {
                    server = hint as usize - 1;
                    last = format!("node {hint} leads");
                    continue 'start_over;
                }
                Err(error) => {
                    last = error.to_string();
                    server = (server + 1) % servers;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'start_over;
                }
            }
        }
    }
    Err(SnapshotError::NoLeader {
        seconds: SAVE_TIMEOUT.as_secs(),
        last,
    })
}

/// `snapshot status`: exit 0 for a sound file, 2 (with the reason on
/// stderr) for a corrupt one.
fn print_status(args: &StatusArgs) -> Result<u8, CliError> {
    let bytes = std::fs::read(&args.file).map_err(|source| {
        file_error(
            &args.file,
            BackupError::Io {
                path: args.file.display().to_string(),
                source,
            },
        )
    })?;
    if ShardedBackup::is_sharded(&bytes) {
        return print_sharded_status(args, &bytes);
    }
    let (backup, _) =
        Backup::decode_unchecked(&bytes).map_err(|source| file_error(&args.file, source))?;
    let checked = Backup::decode(&bytes).and_then(|backup| backup.store());
    let status = SnapshotStatus {
        index: backup.index,
        term: backup.term,
        keys: checked.as_ref().map_or(0, |store| store.len() as u64),
        bytes: bytes.len() as u64,
        checksum_ok: !matches!(checked, Err(BackupError::Checksum { .. })),
    };
    let text = format!(
        "index {} term {} keys {} bytes {} checksum {}",
        status.index,
        status.term,
        keys_text(status.keys, checked.is_ok()),
        status.bytes,
        if status.checksum_ok { "ok" } else { "BAD" }
    );
    emit(args.json, &status, &[text])?;
    match checked {
        Ok(_) => Ok(0),
        Err(source) => Err(file_error(&args.file, source).into()),
    }
}

/// What `snapshot status --json` prints for a sharded cluster's backup
/// (no `index` or `term`: each shard has its own, in `perShard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardedSnapshotStatus {
    /// Always `"sharded"`.
    pub kind: String,
    /// The cluster's number of shards.
    pub shards: u32,
    /// Keys in every shard (0 when the checksum does not match).
    pub keys: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Whether the checksum matches.
    pub checksum_ok: bool,
    /// Each shard: where it was taken from, and its keys.
    pub per_shard: Vec<ShardStatusLine>,
}

/// One shard of a [`ShardedSnapshotStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatusLine {
    /// The shard.
    pub shard: u32,
    /// The group it was taken from (0: no group owned it).
    pub group: u64,
    /// The configuration that group was in.
    pub config_num: u64,
    /// The group's applied index when it was taken.
    pub index: u64,
    /// Its keys (0 when the file does not check).
    pub keys: u64,
}

fn print_sharded_status(args: &StatusArgs, bytes: &[u8]) -> Result<u8, CliError> {
    let (backup, _) =
        ShardedBackup::decode_unchecked(bytes).map_err(|source| file_error(&args.file, source))?;
    let checked = ShardedBackup::decode(bytes);
    let keys_of = |shard: &crate::backup::sharded::ShardBackup| match &checked {
        Ok(_) => shard.pairs().map_or(0, |pairs| pairs.len() as u64),
        Err(_) => 0,
    };
    let per_shard: Vec<ShardStatusLine> = backup
        .shards
        .iter()
        .map(|shard| ShardStatusLine {
            shard: shard.shard,
            group: shard.group,
            config_num: shard.config,
            index: shard.index,
            keys: keys_of(shard),
        })
        .collect();
    let status = ShardedSnapshotStatus {
        kind: "sharded".into(),
        shards: backup.shards.len() as u32,
        keys: per_shard.iter().map(|s| s.keys).sum(),
        bytes: bytes.len() as u64,
        checksum_ok: !matches!(checked, Err(BackupError::Checksum { .. })),
        per_shard,
    };
    let counted = checked.is_ok();
    let mut text = vec![format!(
        "sharded: {} shards keys {} bytes {} checksum {}",
        status.shards,
        keys_text(status.keys, counted),
        status.bytes,
        if status.checksum_ok { "ok" } else { "BAD" }
    )];
    text.extend(status.per_shard.iter().map(|line| {
        format!(
            "shard {} group {} configuration {} index {} keys {}",
            line.shard,
            line.group,
            line.config_num,
            line.index,
            keys_text(line.keys, counted)
        )
    }));
    emit(args.json, &status, &text)?;
    match checked {
        Ok(_) => Ok(0),
        Err(source) => Err(file_error(&args.file, source).into()),
    }
}

/// Keys as the text output shows them: `?` when a file that does not check
/// could not be counted (`--json` has 0 there, with `checksumOk` false or
/// the error on stderr), so a damaged backup does not read as an empty one.
fn keys_text(keys: u64, counted: bool) -> String {
    if counted {
        keys.to_string()
    } else {
        "?".into()
    }
}

/// The size of the file just saved (what `snapshot status` reports).
fn file_bytes(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

/// Prints `status` as one JSON object, or as the `text` lines.
fn emit(json: bool, status: &impl Serialize, text: &[String]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, status)?;
        writeln!(stdout)?;
    } else {
        for line in text {
            writeln!(stdout, "{line}")?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// `snapshot restore`: the members file and the snapshot to install, in a
/// new data folder.
fn restore_into(args: &RestoreArgs) -> Result<(), CliError> {
    let (Some(id), Some(peers), Some(dir)) = (args.id, &args.peers, &args.data_dir) else {
        return Err(SnapshotError::Invalid(
            "restore needs --id, --peers and --data-dir (a new node's folder), or --cluster (a load into a running cluster)".into(),
        )
        .into());
    };
    let backup = Backup::load(&args.file).map_err(|source| file_error(&args.file, source))?;
    let store = backup
        .store()
        .map_err(|source| file_error(&args.file, source))?;
    let peers = crate::addr::parse_address_list(peers)?;
    if id == 0 || id as usize > peers.len() {
        return Err(SnapshotError::Invalid(format!(
            "--id {} is not a position in --peers (1 to {})",
            id,
            peers.len()
        ))
        .into());
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(SnapshotError::Invalid(format!(
            "{} is not empty: restore makes a new data folder",
            dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dir).map_err(|error| {
        SnapshotError::Invalid(format!("--data-dir {}: {error}", dir.display()))
    })?;
    save_membership(&dir.join(MEMBERS_FILE), &initial_membership(&peers))?;
    backup
        .save(&dir.join(RESTORE_FILE))
        .map_err(|source| file_error(&args.file, source))?;
    println!(
        "OK: {} holds the snapshot at index {} ({} keys) for node {} of a new cluster of {}; start it with `distribkv-native server --id {} --data-dir {} --certs DIR`",
        dir.display(),
        backup.index,
        store.len(),
        id,
        peers.len(),
        id,
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_that_cannot_be_made_is_named() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("snapshot");
        Backup {
            index: 3,
            term: 1,
            data: distribkv_core::kv::KvStore::new(Default::default()).snapshot(),
        }
        .save(&file)
        .unwrap();
        // The data folder's path is taken by a file.
        let taken = root.path().join("taken");
        std::fs::write(&taken, "not a folder").unwrap();
        let error = restore_into(&RestoreArgs {
            file,
            id: Some(1),
            peers: Some("127.0.0.1:1".into()),
            data_dir: Some(taken.clone()),
            cluster: None,
            certs: None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(&format!("--data-dir {}", taken.display())),
            "{error}"
        );
    }
}
