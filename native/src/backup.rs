//! Backup files (`snapshot save`, `snapshot status`, `snapshot restore`):
//! one consistent snapshot of the state machine, with a checksum.
//!
//! # Format (version 1), little-endian
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `DKVSNAP\n` |
//! | 4 | format version, 1 |
//! | 8 | index: the last log entry the snapshot covers |
//! | 8 | that entry's term |
//! | 8 | length of the data |
//! | length | the state machine's snapshot (the KV store's own encoding) |
//! | 4 | CRC-32C of every byte before it |
//!
//! A file is written whole to a temporary file, fsynced and renamed over
//! the target ([`crate::fsutil::write_atomically`]): a crash leaves the old
//! file or the new one. A file that is truncated, extended, damaged or of
//! another kind is refused with a message that says which.

use std::path::Path;

pub mod sharded;

use bytes::Bytes;
use distribkv_core::kv::{KvStore, StoreLimits};
use distribkv_core::raft::{LogIndex, Term};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"DKVSNAP\n";
/// The format version written.
pub const VERSION: u32 = 1;
/// Header bytes before the data.
const HEADER: usize = 8 + 4 + 8 + 8 + 8;
/// The largest index and term a backup may stand at. A cluster's never
/// come near it; a file past it is forged or corrupt, and the log that
/// goes on from it would overflow.
pub const MAX_POSITION: u64 = i64::MAX as u64;
/// The file name, in a data folder, of a snapshot to install at the
/// node's first start (written by `snapshot restore`).
pub const RESTORE_FILE: &str = "restore.snapshot";

/// A backup: the snapshot and where it stands in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The last log entry the snapshot covers.
    pub index: LogIndex,
    /// That entry's term.
    pub term: Term,
    /// The state machine's snapshot.
    pub data: Bytes,
}

/// Why a backup file is refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file cannot be read or written.
    #[error("{source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Shorter than a header and a checksum.
    #[error("truncated: {bytes} bytes, a snapshot file has at least {minimum}")]
    TooShort {
        /// Its size.
        bytes: usize,
        /// The least size of a valid file.
        minimum: usize,
    },
    /// Not a snapshot file.
    #[error("not a distribKV snapshot file (it does not start with the snapshot magic)")]
    BadMagic,
    /// A sharded cluster's backup where a single group's is needed.
    #[error(
        "a sharded cluster's backup: it makes no single node's data folder; load it into a running cluster with `snapshot restore FILE --cluster ADDR,...`"
    )]
    Sharded,
    /// A sharded backup's entries do not follow its layout.
    #[error("{0}")]
    Layout(String),
    /// Another format version.
    #[error("snapshot format version {0} is not supported (this program reads version {VERSION})")]
    Version(u32),
    /// The length in the header does not match the file.
    #[error(
        "truncated or extended: the header announces {announced} data bytes, the file holds {held}"
    )]
    Length {
        /// Data bytes the header announces.
        announced: u64,
        /// Data bytes the file holds.
        held: u64,
    },
    /// The checksum does not match.
    #[error(
        "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt"
    )]
    Checksum {
        /// The stored CRC-32C.
        stored: u32,
        /// The CRC-32C of the content.
        computed: u32,
    },
    /// The index or term is past [`MAX_POSITION`].
    #[error(
        "index {index} or term {term} is past {MAX_POSITION}: no cluster's log gets there (the file is forged or corrupt)"
    )]
    OutOfRange {
        /// The index in the header.
        index: LogIndex,
        /// The term in the header.
        term: Term,
    },
    /// The data does not decode as a state machine.
    #[error("the snapshot's data does not decode: {0}")]
    Undecodable(String),
}

/// Appends the CRC-32C of every byte so far (a backup file's last field).
fn seal(bytes: &mut Vec<u8>) {
    let checksum = crc32c::crc32c(bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
}

/// Whether `stored`, the checksum at the end of `bytes`, is theirs.
fn check_seal(bytes: &[u8], stored: u32) -> Result<(), BackupError> {
    let computed = crc32c::crc32c(&bytes[..bytes.len() - 4]);
    if stored != computed {
        return Err(BackupError::Checksum { stored, computed });
    }
    Ok(())
}

/// Writes a backup file atomically.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    crate::fsutil::write_atomically(path, bytes).map_err(|source| BackupError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl Backup {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER + self.data.len() + 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.index.to_le_bytes());
        bytes.extend_from_slice(&self.term.to_le_bytes());
        bytes.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&self.data);
        seal(&mut bytes);
        bytes
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), BackupError> {
        write_file(path, &self.encode())
    }

    /// Parses a file's bytes; the checksum must match.
    pub fn decode(bytes: &[u8]) -> Result<Backup, BackupError> {
        let (backup, stored) = Backup::decode_unchecked(bytes)?;
        check_seal(bytes, stored)?;
        if backup.index > MAX_POSITION || backup.term > MAX_POSITION {
            return Err(BackupError::OutOfRange {
                index: backup.index,
                term: backup.term,
            });
        }
        Ok(backup)
    }

    /// Parses a file's bytes without checking the checksum; returns the
    /// backup and the stored checksum (for `snapshot status`).
    pub fn decode_unchecked(bytes: &[u8]) -> Result<(Backup, u32), BackupError> {
        let minimum = HEADER + 4;
        if sharded::ShardedBackup::is_sharded(bytes) {
            return Err(BackupError::Sharded);
        }
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            if bytes.len() < minimum && MAGIC.starts_with(&bytes[..bytes.len().min(8)]) {
                return Err(BackupError::TooShort {
                    bytes: bytes.len(),
                    minimum,
                });
            }
            return Err(BackupError::BadMagic);
        }
        if bytes.len() < minimum {
            return Err(BackupError::TooShort {
                bytes: bytes.len(),
                minimum,
            });
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(BackupError::Version(version));
        }
        let (index, term, announced) = (u64_at(12), u64_at(20), u64_at(28));
        let held = (bytes.len() - minimum) as u64;
        if announced != held {
            return Err(BackupError::Length { announced, held });
        }
        let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
        let data = Bytes::copy_from_slice(&bytes[HEADER..bytes.len() - 4]);
        Ok((Backup { index, term, data }, stored))
    }

    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Backup, BackupError> {
        let bytes = std::fs::read(path).map_err(|source| BackupError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Backup::decode(&bytes)
    }

    /// The key-value store the snapshot holds.
    pub fn store(&self) -> Result<KvStore, BackupError> {
        KvStore::restore(self.data.clone(), StoreLimits::default())
            .map_err(|error| BackupError::Undecodable(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_damage_is_refused_with_its_reason() {
        let backup = Backup {
            index: 42,
            term: 3,
            data: KvStore::new(StoreLimits::default()).snapshot(),
        };
        let bytes = backup.encode();
        assert_eq!(Backup::decode(&bytes).unwrap(), backup);
        assert!(matches!(
            Backup::decode(&bytes[..bytes.len() - 1]),
            Err(BackupError::Length { .. })
        ));
        assert!(matches!(
            Backup::decode(&bytes[..10]),
            Err(BackupError::TooShort { .. })
        ));
        assert!(matches!(
            Backup::decode(b"hello world, not a snapshot at all"),
            Err(BackupError::BadMagic)
        ));
        for at in 12..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(
                Backup::decode(&damaged).is_err(),
                "a flip at {at} is caught"
            );
        }
    }

    #[test]
    fn an_index_or_term_no_log_reaches_is_refused() {
        let data = KvStore::new(StoreLimits::default()).snapshot();
        let at = |index, term| Backup {
            index,
            term,
            data: data.clone(),
        };
        let edge = at(MAX_POSITION, MAX_POSITION);
        assert_eq!(Backup::decode(&edge.encode()).unwrap(), edge);
        for (index, term) in [(u64::MAX, 1), (5, u64::MAX), (MAX_POSITION + 1, 1)] {
            assert!(
                matches!(
                    Backup::decode(&at(index, term).encode()),
                    Err(BackupError::OutOfRange { .. })
                ),
                "index {index} term {term}"
            );
        }
    }
}
