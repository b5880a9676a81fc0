//! Snapshot files: `snap-<index>-<term>.snap`, written atomically.
//!
//! ```text
//!   0  file header (40 bytes, magic "dkvsnap\n", number = snapshot index)
//!  40  length   u64    payload length
//!  48  crc      u32    CRC32C of the payload
//!  52  payload  [u8; length], postcard of the Snapshot (meta and data)
//! ```

use std::path::{Path, PathBuf};

use distribkv_core::raft::Snapshot;

use super::error::{Corruption, StorageError};
use super::file::Disk;
use super::format::{
    FILE_HEADER_LEN, FORMAT_VERSION, FileHeader, SNAPSHOT_MAGIC, SnapshotPoint, TEMPORARY_SUFFIX,
    read_u32, read_u64, snapshot_path,
};
use super::identity::Identity;

/// Length of the fixed part before the payload.
const PREFIX_LEN: usize = FILE_HEADER_LEN + 12;

/// Encodes a snapshot into the payload of its file.
pub(crate) fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(snapshot)
}

/// Writes the snapshot at `point`, encoded by [`encode_snapshot`], durably
/// into `dir` (temporary file, fsync, rename, fsync of the folder).
pub(crate) fn write_snapshot(
    dir: &Path,
    identity: Identity,
    point: SnapshotPoint,
    payload: &[u8],
    disk: &Disk,
) -> Result<PathBuf, StorageError> {
    let path = snapshot_path(dir, point);
    let temporary = dir.join(format!("snap{TEMPORARY_SUFFIX}"));
    write_snapshot_file(&path, &temporary, identity, point, payload, disk)?;
    Ok(path)
}

/// Writes the snapshot at `point`, encoded by [`encode_snapshot`], durably
/// at `path` through `temporary` (in the same folder).
pub(crate) fn write_snapshot_file(
    path: &Path,
    temporary: &Path,
    identity: Identity,
    point: SnapshotPoint,
    payload: &[u8],
    disk: &Disk,
) -> Result<(), StorageError> {
    let header = FileHeader {
        magic: SNAPSHOT_MAGIC,
        identity,
        number: point.index,
    }
    .encode();
    let mut prefix = [0u8; 12];
    prefix[0..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    prefix[8..12].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    disk.write_atomically(path, temporary, &[&header, &prefix, payload])
}

/// Reads and checks the snapshot file for `point` in `dir`.
pub(crate) fn read_snapshot(
    dir: &Path,
    identity: Identity,
    point: SnapshotPoint,
    disk: &Disk,
) -> Result<Snapshot, StorageError> {
    read_snapshot_file(&snapshot_path(dir, point), identity, point, disk)
}

/// Reads and checks the snapshot file at `path`, which must hold the
/// snapshot at `point`.
pub(crate) fn read_snapshot_file(
    path: &Path,
    identity: Identity,
    point: SnapshotPoint,
    disk: &Disk,
) -> Result<Snapshot, StorageError> {
    let path = path.to_owned();
    let bytes = match disk.read(&path) {
        Ok(bytes) => bytes,
        Err(StorageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(StorageError::MissingSnapshot { path });
        }
        Err(e) => return Err(e),
    };
    // The offset is where the damaged part starts: the header, the length
    // field, or the content its checksum covers.
    let corrupt = |offset: usize, problem| StorageError::CorruptSnapshot {
        path: path.clone(),
        offset: offset as u64,
        problem,
    };
    let (header, version) = match FileHeader::decode_versioned(&bytes, SNAPSHOT_MAGIC) {
        Ok(decoded) => decoded,
        Err(Corruption::UnsupportedVersion { found, supported }) if found > supported => {
            return Err(StorageError::NewerFormat {
                path,
                found,
                supported,
            });
        }
        Err(problem) => return Err(corrupt(0, problem)),
    };
    if header.identity != identity {
        return Err(StorageError::IdentityMismatch {
            path,
            expected: identity,
            found: header.identity,
        });
    }
    if bytes.len() < PREFIX_LEN {
        return Err(corrupt(
            FILE_HEADER_LEN,
            Corruption::TruncatedHeader {
                length: bytes.len() as u64,
                expected: PREFIX_LEN as u64,
            },
        ));
    }
    let length = read_u64(&bytes, FILE_HEADER_LEN);
    let payload = &bytes[PREFIX_LEN..];
    if payload.len() as u64 != length {
        return Err(corrupt(
            FILE_HEADER_LEN,
            Corruption::WrongSnapshotLength {
                expected: length,
                found: payload.len() as u64,
            },
        ));
    }
    if crc32c::crc32c(payload) != read_u32(&bytes, FILE_HEADER_LEN + 8) {
        return Err(corrupt(PREFIX_LEN, Corruption::SnapshotChecksum));
    }
    let decoded = if version < FORMAT_VERSION {
        super::legacy::decode_snapshot_v1(payload)
    } else {
        super::format::decode_all::<Snapshot>(payload)
    };
    let snapshot = decoded.map_err(|problem| corrupt(PREFIX_LEN, problem))?;
    if snapshot.meta.index != point.index
        || snapshot.meta.term != point.term
        || header.number != point.index
    {
        return Err(corrupt(
            PREFIX_LEN,
            Corruption::WrongSnapshot {
                index: snapshot.meta.index,
                term: snapshot.meta.term,
            },
        ));
    }
    Ok(snapshot)
}
