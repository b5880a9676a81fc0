//! What the recovery of both logs (one group's, and the multi-group one)
//! starts with, the same for each: the data folder's files sorted by kind,
//! its identity file checked (or written into a fresh folder), and the files
//! of interrupted writes removed; and what it ends with: the snapshots the
//! log no longer refers to removed, and the folder synced if it changed. The
//! file names and the identity file's magic bytes are each log's own.

use std::path::{Path, PathBuf};

use super::error::{Corruption, StorageError};
use super::file::{Disk, parent_of};
use super::format::{FILE_HEADER_LEN, FileHeader, FileName, IDENTITY_FILE, TEMPORARY_SUFFIX};
use super::identity::Identity;

/// A kind of data folder: how its files are named and its identity file
/// starts.
pub(crate) struct FolderKind<S> {
    /// Classifies a file name.
    pub parse: fn(&str) -> FileName<S>,
    /// The magic bytes of the identity file.
    pub identity_magic: [u8; 8],
    /// The folder's name in the log line written when one is initialised.
    pub label: &'static str,
    /// Whether a name is a segment or snapshot of the other kind of log:
    /// a folder holding one without an identity file is refused as well,
    /// never initialised as a new, empty folder over the other log's data.
    pub foreign: fn(&str) -> bool,
}

/// The files of a data folder, by kind, each kind sorted.
#[derive(Debug)]
pub(crate) struct Listing<S> {
    /// The segments' numbers.
    pub segments: Vec<u64>,
    /// The snapshots.
    pub snapshots: Vec<S>,
}

/// Opens the data folder `dir` of `identity` for recovery: creates it when
/// missing, checks its identity file or initialises a fresh folder, and
/// removes what interrupted writes left. Returns the segments and snapshots
/// (snapshots sorted by `snapshot_order`) and whether the folder changed, in
/// which case the caller syncs it once its own removals are done.
pub(crate) fn open_folder<S, K: Ord>(
    dir: &Path,
    identity: Identity,
    kind: &FolderKind<S>,
    snapshot_order: impl FnMut(&S) -> K,
    disk: &Disk,
) -> Result<(Listing<S>, bool), StorageError> {
    disk.create_folder(dir)?;
    let mut listing = Listing {
        segments: Vec::new(),
        snapshots: Vec::new(),
    };
    let mut has_identity = false;
    let mut has_foreign_log = false;
    let mut snapshot_file = None;
    let mut temporaries = Vec::new();
    for name in disk.list(dir)? {
        let Some(name) = name.to_str() else {
            continue;
        };
        match (kind.parse)(name) {
            FileName::Identity => has_identity = true,
            FileName::Segment(number) => listing.segments.push(number),
            FileName::Snapshot(snapshot) => {
                listing.snapshots.push(snapshot);
                snapshot_file.get_or_insert_with(|| dir.join(name));
            }
            FileName::Temporary => temporaries.push(dir.join(name)),
            FileName::Unknown if (kind.foreign)(name) => has_foreign_log = true,
            FileName::Unknown => {
                tracing::debug!(file = %dir.join(name).display(), "ignoring a file storage did not write");
            }
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable_by_key(snapshot_order);
    temporaries.sort_unstable();

    if !has_identity {
        let identity_temporary = dir.join(format!("{IDENTITY_FILE}{TEMPORARY_SUFFIX}"));
        if has_foreign_log {
            return Err(StorageError::MissingIdentity {
                dir: dir.to_owned(),
                path: dir.join(IDENTITY_FILE),
            });
        }
        initialise(dir, identity, kind, &listing, &identity_temporary, disk)?;
        // The new identity file was written through its temporary name,
        // perhaps over one left by an earlier start; it is gone now.
        temporaries.retain(|path| *path != identity_temporary);
    } else {
        check_identity(dir, identity, kind.identity_magic, disk)?;
    }
    // Started empty, such a folder would also lose its snapshots, removed
    // as referred to by no log.
    if listing.segments.is_empty()
        && let Some(path) = snapshot_file
    {
        return Err(StorageError::MissingLog {
            dir: dir.to_owned(),
            path,
        });
    }

    let mut changed_folder = false;
    for temporary in &temporaries {
        tracing::warn!(file = %temporary.display(), "removing a file left by an interrupted write");
        disk.remove(temporary)?;
        changed_folder = true;
    }
    Ok((listing, changed_folder))
}

/// Writes the identity file into a fresh folder; refuses a folder that holds
/// log files without one.
fn initialise<S>(
    dir: &Path,
    identity: Identity,
    kind: &FolderKind<S>,
    listing: &Listing<S>,
    temporary: &Path,
    disk: &Disk,
) -> Result<(), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    if !listing.segments.is_empty() || !listing.snapshots.is_empty() {
        return Err(StorageError::MissingIdentity {
            dir: dir.to_owned(),
            path,
        });
    }
    tracing::info!(dir = %dir.display(), %identity, "initialising a new {}", kind.label);
    let header = FileHeader {
        magic: kind.identity_magic,
        identity,
        number: 0,
    }
    .encode();
    disk.write_atomically(&path, temporary, &[&header])?;
    // The folder may have been created by an earlier start that stopped
    // before it got here: make its entry in the parent durable.
    disk.sync_dir(parent_of(dir))
}

/// Checks that the identity file names `identity`.
fn check_identity(
    dir: &Path,
    identity: Identity,
    magic: [u8; 8],
    disk: &Disk,
) -> Result<(), StorageError> {
    let path = dir.join(IDENTITY_FILE);
    let bytes = disk.read(&path)?;
    let corrupt = |problem| StorageError::CorruptIdentity {
        path: path.clone(),
        problem,
    };
    let header = FileHeader::decode(&bytes, magic).map_err(corrupt)?;
    // The file is written whole, header only: anything after it is damage
    // (another file's bytes), not a newer kind of identity.
    if bytes.len() != FILE_HEADER_LEN {
        return Err(corrupt(Corruption::TrailingBytes {
            length: bytes.len() as u64,
            expected: FILE_HEADER_LEN as u64,
        }));
    }
    if header.identity != identity {
        return Err(StorageError::IdentityMismatch {
            path,
            expected: identity,
            found: header.identity,
        });
    }
    Ok(())
}

/// Removes the snapshots of `listing` that `current` rejects (older ones are
/// superseded by a durable newer one; newer ones belong to a write that never
/// became durable), then syncs the folder if anything in it changed.
pub(crate) fn remove_stale_snapshots<S>(
    dir: &Path,
    listing: &Listing<S>,
    current: impl Fn(&S) -> bool,
    path_of: impl Fn(&S) -> PathBuf,
    mut changed_folder: bool,
    disk: &Disk,
) -> Result<(), StorageError> {
    for snapshot in &listing.snapshots {
        if !current(snapshot) {
            let path = path_of(snapshot);
            tracing::info!(file = %path.display(), "removing a snapshot the log no longer refers to");
            disk.remove(&path)?;
            changed_folder = true;
        }
    }
    if changed_folder {
        disk.sync_dir(dir)?;
    }
    Ok(())
}
