//! Durable storage of a sharded host: one multi-group write-ahead log
//! ([`MultiStorage`], the raft-engine model) for every group the host
//! holds, and the conversion of data folders written with one log per group.
//!
//! The host emits one [`HostWrite`]
//! per step holding every group's writes; the
//! [`MultiStorageWorker`](crate::storage::multi::MultiStorageWorker) appends
//! each as one record and makes every step queued meanwhile durable with
//! **one** fsync, whatever the number of groups, then reports the last
//! step's `seq` (fed back as `HostInput::Persisted(seq)`).
//!
//! # Files
//!
//! ```text
//! DATA_DIR/sharded      marks the folder as a sharded host's (its content: the host id)
//! DATA_DIR/wal/         the multi-group log: identity, mwal-*.log segments, gsnap-*.snap snapshots
//! ```
//!
//! # Folders of the one-log-per-group layout
//!
//! Earlier sharded servers kept one single-group log per group, in
//! `DATA_DIR/groups/controller/` and `DATA_DIR/groups/group-<id>/`. Such a
//! folder is converted when the server opens it, without losing what it
//! holds and safely against a crash at any point:
//!
//! 1. whatever an interrupted conversion left in `wal/` is deleted, then
//!    every group's recovered state (snapshot, term and vote, entries) is
//!    written to a new multi-group log in `wal/` and fsynced;
//! 2. the file `DATA_DIR/groups-converted` is written atomically: from then
//!    on `wal/` is the truth;
//! 3. the old files are deleted (each folder fsynced), then that marker.
//!
//! A crash before step 2 redoes the conversion from the old files; a crash
//! after it only finishes deleting them. A folder in `groups/` whose name is
//! not a group's is refused, naming it, and nothing is changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use distribkv_core::raft::{PersistedState, Write};
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::{CONTROLLER, HostWrite};

use crate::storage::multi::{MultiStorage, MultiStorageOptions};
use crate::storage::{Disk, Identity, RaftStorage, StorageError};

/// The file marking a data folder as a sharded host's.
pub const SHARDED_MARKER: &str = "sharded";

/// The multi-group log's folder, in the data folder.
pub const WAL_DIR: &str = "wal";

/// The folder of the one-log-per-group layout, in the data folder.
pub const LEGACY_DIR: &str = "groups";

/// Written once a conversion's log is durable (see the module docs).
pub const CONVERTED_MARKER: &str = "groups-converted";

/// Most bytes of entries per record written by a conversion.
const CONVERSION_CHUNK: usize = 8 << 20;

/// Why a sharded host's storage cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum HostStoreError {
    /// The log (or an old group folder being converted) failed or is damaged.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// `groups/` holds a folder that is no group's.
    #[error(
        "{path} is not a group's folder (expected controller or group-<id>); \
         nothing was converted: move it out of the data folder and start again"
    )]
    UnknownGroupFolder {
        /// The folder.
        path: PathBuf,
    },
}

/// The folder of `group` in the one-log-per-group layout under `data_dir`.
pub fn legacy_group_dir(data_dir: &Path, group: GroupId) -> PathBuf {
    let name = if group == CONTROLLER {
        "controller".to_string()
    } else {
        format!("group-{group}")
    };
    data_dir.join(LEGACY_DIR).join(name)
}

fn parse_legacy_name(name: &str) -> Option<GroupId> {
    match name {
        "controller" => Some(CONTROLLER),
        _ => name
            .strip_prefix("group-")
            .and_then(|id| id.parse().ok())
            .filter(|&id| id != CONTROLLER && format!("group-{id}") == name),
    }
}

/// Opens (creating it if new) the multi-group log of the sharded host whose
/// data folder is `data_dir`, converting a folder of the one-log-per-group
/// layout first (see the module docs), and returns it with the state of
/// every group it holds. Groups in `held` that the log does not know start
/// empty, except groups the log retired (their group left the service and
/// their replica here was dropped, see `shard::host`): those are not
/// started again, whatever the configuration says ([`MultiStorage::retired`]
/// lists them). Groups the log holds that are no longer in `held` are kept
/// (a warning names them), so that a mistaken configuration loses nothing.
pub fn open(
    data_dir: &Path,
    identity: Identity,
    options: MultiStorageOptions,
    held: &BTreeSet<GroupId>,
) -> Result<(MultiStorage, BTreeMap<GroupId, PersistedState>), HostStoreError> {
    let disk = Disk::new(
        options.storage.file_system.clone(),
        options.storage.faults.clone(),
    );
    disk.create_folder(data_dir)?;
    convert_legacy(data_dir, identity, &options, &disk)?;
    let (storage, mut states) = MultiStorage::open(data_dir.join(WAL_DIR), identity, options)?;
    let unheld: Vec<GroupId> = states
        .keys()
        .copied()
        .filter(|g| !held.contains(g))
        .collect();
    if !unheld.is_empty() {
        tracing::warn!(
            groups = ?unheld,
            "the log holds groups this host is not configured to hold; their data is kept"
        );
    }
    let retired: Vec<GroupId> = storage.retired().filter(|g| held.contains(g)).collect();
    if !retired.is_empty() {
        tracing::info!(
            groups = ?retired,
            "groups retired here (they left the service) are not started again"
        );
    }
    for group in held {
        if !storage.retired().any(|g| g == *group) {
            states.entry(*group).or_default();
        }
    }
    Ok((storage, states))
}

/// Converts `data_dir/groups/` into the multi-group log, or finishes
/// deleting it after a conversion; does nothing without it.
fn convert_legacy(
    data_dir: &Path,
    identity: Identity,
    options: &MultiStorageOptions,
    disk: &Disk,
) -> Result<(), HostStoreError> {
    let names = disk.list(data_dir)?;
    let has = |name: &str| names.iter().any(|n| n == name);
    if !has(LEGACY_DIR) {
        return Ok(());
    }
    let legacy = data_dir.join(LEGACY_DIR);
    let marker = data_dir.join(CONVERTED_MARKER);
    let marker_temporary = data_dir.join(format!("{CONVERTED_MARKER}.tmp"));
    let mut subfolders = Vec::new();
    let mut folders: Vec<(GroupId, PathBuf)> = Vec::new();
    for name in disk.list(&legacy)? {
        let path = legacy.join(&name);
        let group = name
            .to_str()
            .and_then(parse_legacy_name)
            .ok_or_else(|| HostStoreError::UnknownGroupFolder { path: path.clone() })?;
        if !disk.list(&path)?.is_empty() {
            folders.push((group, path.clone()));
        }
        subfolders.push(path);
    }
    if !folders.is_empty() && !has(CONVERTED_MARKER) {
        if has(&format!("{CONVERTED_MARKER}.tmp")) {
            disk.remove(&marker_temporary)?;
        }
        write_converted_log(data_dir, identity, options, disk, &folders)?;
        disk.write_atomically(
            &marker,
            &marker_temporary,
            &[b"the groups/ folder was converted into wal/; its files are being deleted\n"],
        )?;
    }
    // The converted log is durable: the old files go (listed again: opening
    // an old log may have removed temporary files, or sealed its last
    // segment and started another).
    for (_, folder) in &folders {
        for file in disk.list(folder)? {
            disk.remove(&folder.join(file))?;
        }
        disk.sync_dir(folder)?;
    }
    for folder in &subfolders {
        disk.remove_empty_dir(folder)?;
    }
    disk.sync_dir(&legacy)?;
    disk.remove_empty_dir(&legacy)?;
    if has(CONVERTED_MARKER) || !folders.is_empty() {
        disk.remove(&marker)?;
    }
    disk.sync_dir(data_dir)?;
    if folders.is_empty() {
        return Ok(());
    }
    tracing::info!(
        dir = %data_dir.display(),
        groups = folders.len(),
        "deleted the one-log-per-group files after their conversion"
    );
    Ok(())
}

/// Step 1 of a conversion: every old group folder's state into a new log
/// in `wal/`, fsynced.
fn write_converted_log(
    data_dir: &Path,
    identity: Identity,
    options: &MultiStorageOptions,
    disk: &Disk,
    folders: &[(GroupId, PathBuf)],
) -> Result<(), HostStoreError> {
    let wal = data_dir.join(WAL_DIR);
    disk.create_folder(&wal)?;
    // What an interrupted conversion wrote; the old files still hold it all.
    let leftovers = disk.list(&wal)?;
    for name in &leftovers {
        disk.remove(&wal.join(name))?;
    }
    if !leftovers.is_empty() {
        disk.sync_dir(&wal)?;
    }
    let (mut log, _) = MultiStorage::open(&wal, identity, options.clone())?;
    let mut seq = 0;
    for (group, folder) in folders {
        let (storage, state) = RaftStorage::open(folder, identity, options.storage.clone())?;
        drop(storage);
        let (term, entries) = (state.hard_state.term, state.entries.len());
        for write in converted_writes(state) {
            seq += 1;
            log.append(&HostWrite {
                seq,
                writes: vec![(*group, write)],
            })?;
        }
        tracing::info!(group, term, entries, folder = %folder.display(), "converted a group's log");
    }
    log.sync()?;
    Ok(())
}

/// The writes that rebuild `state` in an empty log: the snapshot and the
/// hard state first, then the entries in records of bounded size.
fn converted_writes(state: PersistedState) -> Vec<Write> {
    let mut writes = vec![Write {
        seq: 0,
        snapshot: state.snapshot.map(Box::new),
        hard_state: Some(state.hard_state),
        entries: Vec::new(),
    }];
    let mut bytes = 0;
    for entry in state.entries {
        if bytes >= CONVERSION_CHUNK {
            writes.push(Write::default());
            bytes = 0;
        }
        bytes += entry.size();
        writes
            .last_mut()
            .expect("one write at least")
            .entries
            .push(entry);
    }
    for (seq, write) in writes.iter_mut().enumerate() {
        write.seq = seq as u64 + 1;
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::parse_legacy_name;

    #[test]
    fn legacy_folder_names() {
        assert_eq!(parse_legacy_name("controller"), Some(0));
        assert_eq!(parse_legacy_name("group-7"), Some(7));
        assert_eq!(parse_legacy_name("group-0"), None);
        assert_eq!(parse_legacy_name("group-07"), None);
        assert_eq!(parse_legacy_name("group-"), None);
        assert_eq!(parse_legacy_name("notes"), None);
    }
}
