//! The bytes on disk: file names, the common file header, record frames and
//! record payloads. Integers are little-endian; checksums are CRC32C.
//!
//! ```text
//! file header (40 bytes, every segment, snapshot and identity file):
//!   0  magic    [u8; 8]   "dkvwal\r\n" | "dkvsnap\n" | "dkvnode\n"
//!   8  version  u32       FORMAT_VERSION (OLDEST_FORMAT_VERSION.. are read)
//!  12  node_id  u64
//!  20  cluster  u64
//!  28  number   u64       segment number | snapshot index | 0
//!  36  crc      u32       CRC32C of bytes 0..36
//!
//! record frame (9 bytes + payload):
//!   0  crc      u32       CRC32C of bytes 4..9 and of the payload
//!   4  length   u32       payload length, at most MAX_RECORD_PAYLOAD
//!   8  kind     u8        RecordKind
//!   9  payload  [u8; length], postcard
//! ```
//!
//! Versions: 1 encoded [`Membership`](distribkv_core::raft::Membership)
//! (in log entries and snapshots) as voters and learners only, or, in
//! folders written while the members' addresses were being added, with
//! addresses and removed ids too (see [`super::legacy`]); 2 adds a version
//! step and the learner being promoted. A file is read in its own version;
//! new files are written in [`FORMAT_VERSION`], and a version-1 segment
//! that was still being appended to is sealed at startup, so that no file
//! mixes versions. A file of a version above [`FORMAT_VERSION`] is refused
//! ([`StorageError::NewerFormat`](super::StorageError::NewerFormat)).
//! Version 3 of the multi-group log's segments ([`super::multi`]) marks
//! that they may hold group retire records; version 3 of a single group's
//! segments ([`SEGMENT_VERSION`]) that their checkpoints name the first
//! segment kept (so that recovery tells a deleted segment from a lost
//! one). Snapshot and identity files are still written in version 2.
//!
//! File names are in [`names`], record frames (writing, reading, and telling
//! a torn tail from corruption) in [`frame`].

mod frame;
mod names;

pub(crate) use frame::{Frame, encode_record, looks_torn, read_frame, valid_record_after};
pub(crate) use names::{
    FileName, is_log_file, parse_file_name, parse_fixed_digits, segment_path, snapshot_path,
};

use distribkv_core::raft::{Entry, HardState, LogIndex, Term};
use serde::{Deserialize, Serialize};

use super::error::Corruption;
use super::identity::Identity;

/// Version of every file format in this module, written in every new file;
/// bumped on any incompatible change (and the previous one kept readable).
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads.
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
/// Version of a single group's log segments, written in every new one: 3
/// adds [`Checkpoint::first_kept`].
pub(crate) const SEGMENT_VERSION: u32 = 3;

/// Magic bytes opening a log segment.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"dkvwal\r\n";
/// Magic bytes opening a snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"dkvsnap\n";
/// Magic bytes opening the identity file.
pub(crate) const IDENTITY_MAGIC: [u8; 8] = *b"dkvnode\n";

/// Length of [`FileHeader`] on disk.
pub(crate) const FILE_HEADER_LEN: usize = 40;
/// Length of a record frame's header on disk.
pub(crate) const RECORD_HEADER_LEN: usize = 9;
/// Largest record payload written or accepted (256 MiB).
pub(crate) const MAX_RECORD_PAYLOAD: usize = 256 << 20;

/// Name of the identity file in the data folder.
pub(crate) const IDENTITY_FILE: &str = "identity";
/// Suffix of files being written, removed at recovery.
pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";

/// The header every file of the data folder starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileHeader {
    /// Which kind of file.
    pub magic: [u8; 8],
    /// Whose data.
    pub identity: Identity,
    /// Segment number, snapshot index, or 0.
    pub number: u64,
}

impl FileHeader {
    /// The header's bytes, in [`FORMAT_VERSION`].
    pub(crate) fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        self.encode_in(FORMAT_VERSION)
    }

    /// The header's bytes, naming format `version`.
    pub(crate) fn encode_in(&self, version: u32) -> [u8; FILE_HEADER_LEN] {
        let mut bytes = [0u8; FILE_HEADER_LEN];
        bytes[0..8].copy_from_slice(&self.magic);
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.identity.node_id.to_le_bytes());
        bytes[20..28].copy_from_slice(&self.identity.cluster_id.to_le_bytes());
        bytes[28..36].copy_from_slice(&self.number.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[0..36]);
        bytes[36..40].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads the header at the start of `bytes`, which must open with `magic`.
    pub(crate) fn decode(bytes: &[u8], magic: [u8; 8]) -> Result<FileHeader, Corruption> {
        FileHeader::decode_versioned(bytes, magic).map(|(header, _)| header)
    }

    /// [`FileHeader::decode`], and the format version the file is in.
    pub(crate) fn decode_versioned(
        bytes: &[u8],
        magic: [u8; 8],
    ) -> Result<(FileHeader, u32), Corruption> {
        FileHeader::decode_up_to(bytes, magic, FORMAT_VERSION)
    }

    /// [`FileHeader::decode_versioned`] for a kind of file whose newest
    /// version is `newest` (the multi-group log's segments are a version
    /// ahead of the other files).
    pub(crate) fn decode_up_to(
        bytes: &[u8],
        magic: [u8; 8],
        newest: u32,
    ) -> Result<(FileHeader, u32), Corruption> {
        if bytes.len() < FILE_HEADER_LEN {
            return Err(Corruption::TruncatedHeader {
                length: bytes.len() as u64,
                expected: FILE_HEADER_LEN as u64,
            });
        }
        let found: [u8; 8] = bytes[0..8].try_into().expect("slice of 8 bytes");
        if found != magic {
            return Err(Corruption::BadMagic {
                found,
                expected: magic,
            });
        }
        if crc32c::crc32c(&bytes[0..36]) != read_u32(bytes, 36) {
            return Err(Corruption::HeaderChecksum);
        }
        let version = read_u32(bytes, 8);
        if !(OLDEST_FORMAT_VERSION..=newest).contains(&version) {
            return Err(Corruption::UnsupportedVersion {
                found: version,
                supported: newest,
            });
        }
        let header = FileHeader {
            magic,
            identity: Identity {
                node_id: read_u64(bytes, 12),
                cluster_id: read_u64(bytes, 20),
            },
            number: read_u64(bytes, 28),
        };
        Ok((header, version))
    }
}

/// Reads the little-endian `u32` at `offset`; the caller checked the length.
pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

/// Reads the little-endian `u64` at `offset`; the caller checked the length.
pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// The kinds of record in a log segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordKind {
    /// One [`Write`](distribkv_core::raft::Write): [`WriteRecord`].
    Write = 1,
    /// A restatement of the snapshot and hard state: [`Checkpoint`].
    Checkpoint = 2,
    /// The last record of a full segment: [`Seal`].
    Seal = 3,
    /// One step's writes of many groups, in a multi-group log
    /// ([`multi`](super::multi)).
    GroupBatch = 4,
    /// A restatement of every group's state, in a multi-group log.
    GroupCheckpoint = 5,
    /// Groups retired for good, in a multi-group log.
    GroupRetire = 6,
}

impl RecordKind {
    pub(crate) fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Write),
            2 => Some(RecordKind::Checkpoint),
            3 => Some(RecordKind::Seal),
            4 => Some(RecordKind::GroupBatch),
            5 => Some(RecordKind::GroupCheckpoint),
            6 => Some(RecordKind::GroupRetire),
            _ => None,
        }
    }
}

/// A snapshot's position: the index and term of the last entry it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotPoint {
    /// Index of the last covered entry.
    pub index: LogIndex,
    /// Term of that entry.
    pub term: Term,
}

/// A write's snapshot, as recorded in the log (the snapshot's data is in its
/// own file). `keeps_log` is the outcome of the rule on
/// [`Write::snapshot`](distribkv_core::raft::Write::snapshot), resolved when
/// the write was appended, so that replay does not depend on entries that
/// may live in segments deleted since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotMarker {
    /// Where the snapshot ends.
    pub point: SnapshotPoint,
    /// Whether the stored log had an entry at `point` with its term, so that
    /// only entries up to `point.index` are dropped; otherwise the whole log is.
    pub keeps_log: bool,
}

/// One write, as encoded (borrowing the entries).
#[derive(Serialize)]
pub(crate) struct WriteRecordRef<'a> {
    /// The write's snapshot, if any.
    pub snapshot: Option<SnapshotMarker>,
    /// The write's hard state, if any.
    pub hard_state: Option<HardState>,
    /// The write's entries.
    pub entries: &'a [Entry],
}

/// One write, as decoded. Same layout as [`WriteRecordRef`].
#[derive(Debug, Deserialize)]
pub(crate) struct WriteRecord {
    /// The write's snapshot, if any.
    pub snapshot: Option<SnapshotMarker>,
    /// The write's hard state, if any.
    pub hard_state: Option<HardState>,
    /// The write's entries.
    pub entries: Vec<Entry>,
}

/// Restates the current snapshot and hard state, so that older segments can
/// be deleted. Replaying it sets both and drops entries at or below the
/// snapshot; it never drops entries above it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The current snapshot, if any.
    pub snapshot: Option<SnapshotPoint>,
    /// The current term and vote.
    pub hard_state: HardState,
    /// The number of the oldest segment kept: the compaction that wrote
    /// this checkpoint deletes only segments below it, so a folder whose
    /// first segment is above it lost segments it still needed. 0 in a
    /// checkpoint of a segment older than version 3, which did not say.
    pub first_kept: u64,
}

/// A [`Checkpoint`] as segments before version 3 wrote it.
#[derive(Clone, Copy, Debug, Deserialize)]
struct CheckpointV2 {
    snapshot: Option<SnapshotPoint>,
    hard_state: HardState,
}

/// Closes a full segment and names its successor. A segment that is not the
/// last one must end with a seal; this is how a segment that lost its tail
/// is told apart from one that was simply finished.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Seal {
    /// Number of the segment that follows.
    pub next_segment: u64,
}

/// A decoded record.
#[derive(Debug)]
pub(crate) enum Record {
    /// See [`WriteRecord`].
    Write(WriteRecord),
    /// See [`Checkpoint`].
    Checkpoint(Checkpoint),
    /// See [`Seal`].
    Seal(Seal),
}

/// Decodes a record's payload, written in format `version`; the whole
/// payload must be used.
pub(crate) fn decode_record(
    kind: RecordKind,
    payload: &[u8],
    version: u32,
) -> Result<Record, Corruption> {
    Ok(match kind {
        RecordKind::Write if version < FORMAT_VERSION => {
            Record::Write(super::legacy::decode_write_v1(payload)?)
        }
        RecordKind::Write => Record::Write(decode_all(payload)?),
        RecordKind::Checkpoint if version < SEGMENT_VERSION => {
            let CheckpointV2 {
                snapshot,
                hard_state,
            } = decode_all(payload)?;
            Record::Checkpoint(Checkpoint {
                snapshot,
                hard_state,
                first_kept: 0,
            })
        }
        RecordKind::Checkpoint => Record::Checkpoint(decode_all(payload)?),
        RecordKind::Seal => Record::Seal(decode_all(payload)?),
        // Records of the multi-group log never belong in a single group's.
        RecordKind::GroupBatch | RecordKind::GroupCheckpoint | RecordKind::GroupRetire => {
            return Err(Corruption::ForeignRecordKind(kind as u8));
        }
    })
}

/// Decodes a whole payload: every byte must be used.
pub(crate) fn decode_all<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, Corruption> {
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(Corruption::Undecodable(
            postcard::Error::DeserializeBadEncoding,
        )),
        Err(e) => Err(Corruption::Undecodable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let header = FileHeader {
            magic: SEGMENT_MAGIC,
            identity: Identity {
                node_id: 3,
                cluster_id: 0xfeed,
            },
            number: 42,
        };
        let bytes = header.encode();
        assert_eq!(FileHeader::decode(&bytes, SEGMENT_MAGIC).unwrap(), header);
        assert!(matches!(
            FileHeader::decode(&bytes, SNAPSHOT_MAGIC),
            Err(Corruption::BadMagic { .. })
        ));
        assert!(matches!(
            FileHeader::decode(&bytes[..39], SEGMENT_MAGIC),
            Err(Corruption::TruncatedHeader { .. })
        ));
        let mut damaged = bytes;
        damaged[25] ^= 1;
        assert!(matches!(
            FileHeader::decode(&damaged, SEGMENT_MAGIC),
            Err(Corruption::HeaderChecksum)
        ));
        let mut future = bytes;
        future[8] = FORMAT_VERSION as u8 + 1;
        let crc = crc32c::crc32c(&future[0..36]);
        future[36..40].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            FileHeader::decode(&future, SEGMENT_MAGIC),
            Err(Corruption::UnsupportedVersion { found, .. }) if found == FORMAT_VERSION + 1
        ));
        let mut old = future;
        old[8] = OLDEST_FORMAT_VERSION as u8;
        let crc = crc32c::crc32c(&old[0..36]);
        old[36..40].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            FileHeader::decode_versioned(&old, SEGMENT_MAGIC).unwrap(),
            (header, OLDEST_FORMAT_VERSION)
        );
    }
}
