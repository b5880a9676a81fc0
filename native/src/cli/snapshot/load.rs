//! `snapshot restore FILE --cluster ADDR,...`: loads a backup, of a single
//! group or of a sharded cluster, into a running cluster of either kind
//! that holds no key yet, through the ordinary client (puts routed by
//! key, each applied exactly once). This is how a sharded cluster is
//! restored (start the new hosts and join their groups, then load), and
//! how data moves between a single group and a sharded cluster.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use distribkv_core::kv::Operation;

use super::{SnapshotError, file_error};
use crate::backup::sharded::ShardedBackup;
use crate::backup::{Backup, BackupError};
use crate::cli::client::Connected;
use crate::cli::{CliError, ClusterArgs};
use crate::kv_client::ValidOperation;

/// Sessions writing at once.
const WRITERS: usize = 128;

/// A backup's key-value pairs.
type Pairs = Vec<(Bytes, Bytes)>;

/// The pairs a backup file holds, and what kind of backup it is.
fn pairs_of(file: &Path) -> Result<(Pairs, &'static str), SnapshotError> {
    let bytes = std::fs::read(file).map_err(|source| {
        file_error(
            file,
            BackupError::Io {
                path: file.display().to_string(),
                source,
            },
        )
    })?;
    if ShardedBackup::is_sharded(&bytes) {
        let backup = ShardedBackup::decode(&bytes).map_err(|e| file_error(file, e))?;
        let pairs = backup.pairs().map_err(|e| file_error(file, e))?;
        Ok((pairs, "sharded"))
    } else {
        let backup = Backup::decode(&bytes).map_err(|e| file_error(file, e))?;
        let store = backup.store().map_err(|e| file_error(file, e))?;
        Ok((store.to_vec(), "single-group"))
    }
}

/// Keys the cluster holds: the most any replica of each group reports,
/// summed over the groups (`None`: no server answered).
async fn keys_held(connected: &Connected) -> Option<u64> {
    match connected {
        Connected::Single(cluster) => {
            let transport = cluster.transport();
            let mut most = None;
            for index in 0..transport.servers().len() {
                if let Ok(status) = crate::kv_client::node_status(&transport, index).await {
                    most = Some(most.unwrap_or(0).max(status.keys));
                }
            }
            most
        }
        Connected::Sharded(cluster) => {
            let mut by_group = std::collections::BTreeMap::<u64, u64>::new();
            let mut answered = false;
            for (_, description) in cluster.describe_all().await {
                let Some(description) = description else {
                    continue;
                };
                answered = true;
                for group in description.groups.iter().filter(|g| g.group != 0) {
                    let most = by_group.entry(group.group).or_default();
                    *most = (*most).max(group.keys);
                }
            }
            answered.then(|| by_group.values().sum())
        }
    }
}

/// Runs `snapshot restore FILE --cluster ...`.
pub(super) async fn load(file: &Path, cluster: &ClusterArgs) -> Result<u8, CliError> {
    let started = Instant::now();
    let (pairs, kind) = pairs_of(file)?;
    // Every pair must be a valid put before anything is written.
    let mut puts = VecDeque::with_capacity(pairs.len());
    for (key, value) in pairs {
        puts.push_back(ValidOperation::new(Operation::Put { key, value })?);
    }
    let total = puts.len();
    let connected = crate::cli::client::connect(cluster).await?;
    let outcome = load_into(&connected, puts).await;
    connected.close().await;
    outcome?;
    println!(
        "OK: {total} keys of the {kind} backup {} loaded into the cluster in {:.1} s",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

async fn load_into(connected: &Connected, puts: VecDeque<ValidOperation>) -> Result<(), CliError> {
    match keys_held(connected).await {
        None => {
            return Err(SnapshotError::Invalid(
                "no server of the cluster answered (are the servers running, and are the \
                 certificates the cluster's?)"
                    .into(),
            )
            .into());
        }
        Some(0) => {}
        Some(held) => {
            let keys = if held == 1 { "key" } else { "keys" };
            return Err(SnapshotError::Invalid(format!(
                "the cluster holds {held} {keys}: a backup is loaded into a cluster that holds \
                 none (start a new one)"
            ))
            .into());
        }
    }
    let queue = Arc::new(Mutex::new(puts));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let queue = queue.clone();
        let mut session = connected.session();
        writers.push(tokio::spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some(put) = next else {
                    return Ok(());
                };
                let key = String::from_utf8_lossy(put.operation().key()).into_owned();
                if let Err(error) = session.execute(put).await {
                    return Err(SnapshotError::Invalid(format!(
                        "the put of key {key:?} failed: {error} (the keys written so far stay; \
                         load again into a new cluster)"
                    )));
                }
            }
        }));
    }
    let mut first_error = None;
    for writer in writers {
        match writer.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
                // The others stop at the next key.
                queue.lock().unwrap_or_else(PoisonError::into_inner).clear();
            }
            Err(join) => {
                first_error
                    .get_or_insert(SnapshotError::Invalid(format!("a writer failed: {join}")));
            }
        }
    }
    match first_error {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}
