//! Backup files of a sharded cluster (`snapshot save` against sharded
//! hosts): every shard's data and client sessions, each taken from the
//! group that served it, at a linearizable point, with one checksum.
//!
//! # Format (version 1), little-endian
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `DKVSHRD\n` |
//! | 4 | format version, 1 |
//! | 4 | S: the cluster's number of shards |
//! | S times, shard 0 first | the shard's entry (below) |
//! | 4 | CRC-32C of every byte before it |
//!
//! A shard's entry:
//!
//! | bytes | content |
//! |---|---|
//! | 4 | the shard |
//! | 8 | the group it was taken from (0: no group owned it, and it is empty) |
//! | 8 | the configuration that group was in |
//! | 8 | the group's applied index when it was taken |
//! | 8 | length of the data |
//! | length | the shard's data and sessions, as the groups move a shard (`encode_shard`) |
//!
//! Written whole to a temporary file, fsynced and renamed over the target,
//! like a single group's backup; a file that is truncated, extended,
//! damaged, out of order or of another kind is refused with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use distribkv_core::kv::StoreLimits;
use distribkv_core::raft::LogIndex;
use distribkv_core::shard::group::decode_shard;
use distribkv_core::shard::host::MAX_SHARDS;
use distribkv_core::shard::{GroupId, ShardId};

use super::BackupError;

/// The first bytes of every sharded backup file.
pub const SHARDED_MAGIC: &[u8; 8] = b"DKVSHRD\n";
/// The format version written.
pub const SHARDED_VERSION: u32 = 1;
/// Bytes of the header (magic, version, number of shards).
const HEADER: usize = 8 + 4 + 4;
/// Bytes of a shard entry before its data.
const ENTRY: usize = 4 + 8 + 8 + 8 + 8;

/// One shard of a sharded backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardBackup {
    /// The shard.
    pub shard: ShardId,
    /// The group it was taken from (0: no group owned it; empty).
    pub group: GroupId,
    /// The configuration that group was in.
    pub config: u64,
    /// The group's applied index when it was taken.
    pub index: LogIndex,
    /// The shard's data and sessions (`encode_shard`; empty when no group
    /// owned the shard).
    pub data: Bytes,
}

impl ShardBackup {
    /// The shard's key-value pairs (none for a shard no group owned).
    pub fn pairs(&self) -> Result<BTreeMap<Bytes, Bytes>, BackupError> {
        if self.group == 0 && self.data.is_empty() {
            return Ok(BTreeMap::new());
        }
        decode_shard(self.data.clone(), &StoreLimits::default())
            .map(|(data, _sessions)| data)
            .map_err(|error| BackupError::Undecodable(format!("shard {}: {error}", self.shard)))
    }
}

/// A sharded cluster's backup: every shard, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedBackup {
    /// Shard `s` at index `s`.
    pub shards: Vec<ShardBackup>,
}

impl ShardedBackup {
    /// Whether `bytes` start like a sharded backup file.
    pub fn is_sharded(bytes: &[u8]) -> bool {
        bytes.starts_with(SHARDED_MAGIC)
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.shards.iter().map(|s| ENTRY + s.data.len()).sum();
        let mut bytes = Vec::with_capacity(HEADER + size + 4);
        bytes.extend_from_slice(SHARDED_MAGIC);
        bytes.extend_from_slice(&SHARDED_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(self.shards.len() as u32).to_le_bytes());
        for shard in &self.shards {
            bytes.extend_from_slice(&shard.shard.to_le_bytes());
            bytes.extend_from_slice(&shard.group.to_le_bytes());
            bytes.extend_from_slice(&shard.config.to_le_bytes());
            bytes.extend_from_slice(&shard.index.to_le_bytes());
            bytes.extend_from_slice(&(shard.data.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&shard.data);
        }
        super::seal(&mut bytes);
        bytes
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), BackupError> {
        super::write_file(path, &self.encode())
    }

    /// Parses a file's bytes; the checksum must match, and every shard's
    /// data must decode.
    pub fn decode(bytes: &[u8]) -> Result<ShardedBackup, BackupError> {
        let (backup, stored) = ShardedBackup::decode_unchecked(bytes)?;
        super::check_seal(bytes, stored)?;
        for shard in &backup.shards {
            shard.pairs()?;
        }
        Ok(backup)
    }

    /// Parses a file's layout without checking the checksum or the
    /// shards' data; returns the backup and the stored checksum.
    pub fn decode_unchecked(bytes: &[u8]) -> Result<(ShardedBackup, u32), BackupError> {
        let minimum = HEADER + 4;
        if !ShardedBackup::is_sharded(bytes) {
            return Err(BackupError::BadMagic);
        }
        if bytes.len() < minimum {
            return Err(BackupError::TooShort {
                bytes: bytes.len(),
                minimum,
            });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != SHARDED_VERSION {
            return Err(BackupError::Version(version));
        }
        let count = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if count == 0 || count > MAX_SHARDS {
            return Err(BackupError::Layout(format!(
                "{count} shards: a cluster has 1 to {MAX_SHARDS}"
            )));
        }
        let body = &bytes[..bytes.len() - 4];
        let mut at = HEADER;
        let mut shards = Vec::with_capacity(count as usize);
        for expected in 0..count {
            if body.len() - at < ENTRY {
                return Err(BackupError::Layout(format!(
                    "truncated: the entry of shard {expected} of {count} is cut short"
                )));
            }
            let u64_at =
                |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
            let shard = u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
            if shard != expected {
                return Err(BackupError::Layout(format!(
                    "shard {shard} where shard {expected} belongs: the entries are out of order"
                )));
            }
            let (group, config, index, length) = (
                u64_at(at + 4),
                u64_at(at + 12),
                u64_at(at + 20),
                u64_at(at + 28),
            );
            at += ENTRY;
            let left = (body.len() - at) as u64;
            if length > left {
                return Err(BackupError::Length {
                    announced: length,
                    held: left,
                });
            }
            let data = Bytes::copy_from_slice(&body[at..at + length as usize]);
            at += length as usize;
            shards.push(ShardBackup {
                shard,
                group,
                config,
                index,
                data,
            });
        }
        if at != body.len() {
            return Err(BackupError::Layout(format!(
                "extended: {} bytes after the last shard",
                body.len() - at
            )));
        }
        let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
        Ok((ShardedBackup { shards }, stored))
    }

    /// Every key-value pair, shard after shard.
    pub fn pairs(&self) -> Result<Vec<(Bytes, Bytes)>, BackupError> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(shard.pairs()?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::shard::group::{encode_shard, shard_sessions};

    fn backup() -> ShardedBackup {
        let limits = StoreLimits::default();
        let shards = (0..3)
            .map(|shard| {
                let data: BTreeMap<Bytes, Bytes> = (0..shard + 1)
                    .map(|i| (Bytes::from(format!("k{shard}-{i}")), Bytes::from("v")))
                    .collect();
                ShardBackup {
                    shard,
                    group: if shard == 2 { 0 } else { 1 + shard as u64 },
                    config: 7,
                    index: 100 + shard as u64,
                    data: if shard == 2 {
                        Bytes::new()
                    } else {
                        encode_shard(&data, &shard_sessions(&limits))
                    },
                }
            })
            .collect();
        ShardedBackup { shards }
    }

    #[test]
    fn a_backup_reads_back_with_its_pairs() {
        let backup = backup();
        let decoded = ShardedBackup::decode(&backup.encode()).unwrap();
        assert_eq!(decoded, backup);
        let keys: Vec<Bytes> = decoded
            .pairs()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["k0-0", "k1-0", "k1-1"].map(Bytes::from).to_vec());
    }

    #[test]
    fn every_damage_is_refused_with_its_reason() {
        let bytes = backup().encode();
        for cut in [0, 5, 15, 19, 30, bytes.len() - 5, bytes.len() - 1] {
            assert!(
                ShardedBackup::decode(&bytes[..cut]).is_err(),
                "cut at {cut} is caught"
            );
        }
        let mut longer = bytes.clone();
        longer.insert(bytes.len() - 4, 0);
        assert!(matches!(
            ShardedBackup::decode(&longer),
            Err(BackupError::Layout(message)) if message.contains("extended")
        ));
        for at in 8..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(
                ShardedBackup::decode(&damaged).is_err(),
                "a flip at {at} is caught"
            );
        }
        assert!(matches!(
            ShardedBackup::decode(b"DKVSNAP\nsomething else"),
            Err(BackupError::BadMagic)
        ));
    }

    #[test]
    fn shards_out_of_order_or_undecodable_data_are_refused_even_with_a_right_checksum() {
        let mut swapped = backup();
        swapped.shards.swap(0, 1);
        let error = ShardedBackup::decode(&swapped.encode()).unwrap_err();
        assert!(error.to_string().contains("out of order"), "{error}");
        let mut garbage = backup();
        garbage.shards[1].data = Bytes::from_static(b"\x09garbage");
        let error = ShardedBackup::decode(&garbage.encode()).unwrap_err();
        assert!(error.to_string().contains("shard 1"), "{error}");
        let none = ShardedBackup { shards: Vec::new() };
        let error = ShardedBackup::decode(&none.encode()).unwrap_err();
        assert!(error.to_string().contains("0 shards"), "{error}");
    }
}
