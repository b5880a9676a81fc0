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

use std::path::{Path, PathBuf};

use distribkv_core::raft::{Entry, HardState, LogIndex, Term};
use serde::{Deserialize, Serialize};

use super::error::Corruption;
use super::identity::Identity;

/// Version of every file format in this module, written in every new file;
/// bumped on any incompatible change (and the previous one kept readable).
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads.
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;

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

/// Path of log segment `number` in `dir`: `wal-<20 digits>.log`, so that the
/// names sort in log order.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:020}.log"))
}

/// Path of the snapshot at `index` and `term` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, point: SnapshotPoint) -> PathBuf {
    dir.join(format!("snap-{:020}-{:020}.snap", point.index, point.term))
}

/// What a file name in the data folder is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileName {
    /// The identity file.
    Identity,
    /// Log segment with this number.
    Segment(u64),
    /// Snapshot at this point.
    Snapshot(SnapshotPoint),
    /// A file left over by an interrupted atomic write.
    Temporary,
    /// Something this module did not write.
    Unknown,
}

/// Classifies a file name of the data folder.
pub(crate) fn parse_file_name(name: &str) -> FileName {
    if name == IDENTITY_FILE {
        return FileName::Identity;
    }
    if name.ends_with(TEMPORARY_SUFFIX) {
        return FileName::Temporary;
    }
    if let Some(number) = name
        .strip_prefix("wal-")
        .and_then(|rest| rest.strip_suffix(".log"))
        .and_then(parse_fixed_digits)
    {
        return FileName::Segment(number);
    }
    if let Some((index, term)) = name
        .strip_prefix("snap-")
        .and_then(|rest| rest.strip_suffix(".snap"))
        .and_then(|rest| rest.split_once('-'))
        && let (Some(index), Some(term)) = (parse_fixed_digits(index), parse_fixed_digits(term))
    {
        return FileName::Snapshot(SnapshotPoint { index, term });
    }
    FileName::Unknown
}

pub(crate) fn parse_fixed_digits(text: &str) -> Option<u64> {
    if text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

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
    /// The header's bytes.
    pub(crate) fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut bytes = [0u8; FILE_HEADER_LEN];
        bytes[0..8].copy_from_slice(&self.magic);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
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
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Corruption::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
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
}

impl RecordKind {
    pub(crate) fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Write),
            2 => Some(RecordKind::Checkpoint),
            3 => Some(RecordKind::Seal),
            4 => Some(RecordKind::GroupBatch),
            5 => Some(RecordKind::GroupCheckpoint),
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

/// Encodes one record's frame into `out` (cleared first).
pub(crate) fn encode_record<T: Serialize>(
    kind: RecordKind,
    payload: &T,
    out: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    out.clear();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    *out = postcard::to_extend(payload, std::mem::take(out))?;
    let length = out.len() - RECORD_HEADER_LEN;
    if length > MAX_RECORD_PAYLOAD {
        // The caller compares the length with the maximum; keep the frame
        // header consistent anyway.
        out[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    } else {
        out[4..8].copy_from_slice(&(length as u32).to_le_bytes());
    }
    out[8] = kind as u8;
    let crc = crc32c::crc32c(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What [`read_frame`] found at an offset.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// The end of the data, exactly at the offset.
    End,
    /// A record with a valid checksum; the next frame starts at `next`.
    Record {
        /// The record's kind.
        kind: RecordKind,
        /// The record's payload.
        payload: &'a [u8],
        /// Offset of the following frame.
        next: usize,
    },
    /// Not a valid record: torn or corrupt.
    Damaged(Corruption),
}

/// Reads the frame at `offset` in `data`, checking its checksum.
pub(crate) fn read_frame(data: &[u8], offset: usize) -> Frame<'_> {
    let available = data.len() - offset;
    if available == 0 {
        return Frame::End;
    }
    if available < RECORD_HEADER_LEN {
        return Frame::Damaged(Corruption::TruncatedRecord {
            needed: RECORD_HEADER_LEN as u64,
            available: available as u64,
        });
    }
    let length = read_u32(data, offset + 4) as usize;
    if length > MAX_RECORD_PAYLOAD {
        return Frame::Damaged(Corruption::RecordTooLarge {
            length: length as u64,
            maximum: MAX_RECORD_PAYLOAD as u64,
        });
    }
    let end = offset + RECORD_HEADER_LEN + length;
    if end > data.len() {
        return Frame::Damaged(Corruption::TruncatedRecord {
            needed: (RECORD_HEADER_LEN + length) as u64,
            available: available as u64,
        });
    }
    if crc32c::crc32c(&data[offset + 4..end]) != read_u32(data, offset) {
        return Frame::Damaged(Corruption::RecordChecksum);
    }
    let kind_byte = data[offset + 8];
    match RecordKind::from_byte(kind_byte) {
        Some(kind) => Frame::Record {
            kind,
            payload: &data[offset + RECORD_HEADER_LEN..end],
            next: end,
        },
        None => Frame::Damaged(Corruption::UnknownRecordKind(kind_byte)),
    }
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
        RecordKind::Checkpoint => Record::Checkpoint(decode_all(payload)?),
        RecordKind::Seal => Record::Seal(decode_all(payload)?),
        // Records of the multi-group log never belong in a single group's.
        RecordKind::GroupBatch | RecordKind::GroupCheckpoint => {
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

/// Size of a disk sector: written whole or not at all.
pub(crate) const SECTOR_SIZE: usize = 512;

/// Whether the damaged frame at `offset` is what an interrupted append
/// leaves: the record runs past the end of the file, or one of its sectors
/// (its bytes between two 512-byte boundaries of the file) reads as zeros,
/// as when a power cut let the file's length reach the disk but not all of
/// its data. A record whose bytes are all there, none of its sectors zero,
/// and whose checksum fails was damaged after it was written.
pub(crate) fn looks_torn(data: &[u8], offset: usize, problem: &Corruption) -> bool {
    match problem {
        Corruption::TruncatedRecord { .. } => true,
        Corruption::RecordChecksum | Corruption::RecordTooLarge { .. } => {
            let length = read_u32(data, offset + 4) as usize;
            let end = (offset + RECORD_HEADER_LEN)
                .saturating_add(length)
                .min(data.len());
            let mut start = offset;
            while start < end {
                let sector_end = ((start / SECTOR_SIZE + 1) * SECTOR_SIZE).min(end);
                if data[start..sector_end].iter().all(|&byte| byte == 0) {
                    return true;
                }
                start = sector_end;
            }
            false
        }
        _ => false,
    }
}

/// Whether a valid record frame starts anywhere after `offset` in `data`.
/// Used to tell a torn tail (nothing valid after the damage) from corruption
/// in the middle (valid records after the damage). Probes every byte offset,
/// because a damaged length field hides where the next frame starts; it only
/// runs on damaged data.
pub(crate) fn valid_record_after(data: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..data.len().saturating_sub(RECORD_HEADER_LEN - 1)).find(|&probe| {
        // Cheap tests first, so that the checksum is computed only for
        // frames that could be records.
        let length = read_u32(data, probe + 4) as usize;
        RecordKind::from_byte(data[probe + 8]).is_some()
            && length <= data.len() - probe - RECORD_HEADER_LEN
            && matches!(read_frame(data, probe), Frame::Record { .. })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_in_log_order() {
        let dir = Path::new("/data");
        let names: Vec<String> = [1u64, 9, 10, 200]
            .iter()
            .map(|&n| {
                segment_path(dir, n)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(parse_file_name(&names[2]), FileName::Segment(10));
        let point = SnapshotPoint { index: 77, term: 3 };
        let snapshot = snapshot_path(dir, point);
        assert_eq!(
            parse_file_name(&snapshot.file_name().unwrap().to_string_lossy()),
            FileName::Snapshot(point)
        );
        assert_eq!(parse_file_name("identity"), FileName::Identity);
        assert_eq!(parse_file_name("snap.tmp"), FileName::Temporary);
        assert_eq!(parse_file_name("wal-1.log"), FileName::Unknown);
        assert_eq!(parse_file_name("lost+found"), FileName::Unknown);
    }

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

    #[test]
    fn frames_round_trip_and_every_damage_is_seen() {
        let mut frame = Vec::new();
        let seal = Seal { next_segment: 5 };
        encode_record(RecordKind::Seal, &seal, &mut frame).unwrap();
        match read_frame(&frame, 0) {
            Frame::Record {
                kind,
                payload,
                next,
            } => {
                assert_eq!(kind, RecordKind::Seal);
                assert_eq!(next, frame.len());
                assert!(matches!(
                    decode_record(kind, payload, FORMAT_VERSION),
                    Ok(Record::Seal(Seal { next_segment: 5 }))
                ));
            }
            other => panic!("expected a record, got {other:?}"),
        }
        assert!(matches!(read_frame(&frame, frame.len()), Frame::End));
        for cut in 1..frame.len() {
            assert!(matches!(
                read_frame(&frame[..cut], 0),
                Frame::Damaged(Corruption::TruncatedRecord { .. })
            ));
        }
        for byte in 0..frame.len() {
            let mut damaged = frame.clone();
            damaged[byte] ^= 0x10;
            assert!(
                matches!(read_frame(&damaged, 0), Frame::Damaged(_)),
                "flip in byte {byte} went unnoticed"
            );
        }
    }

    #[test]
    fn only_a_cut_short_or_partly_zero_record_looks_torn() {
        let mut data = vec![0xEE; 500];
        let offset = data.len();
        let mut frame = Vec::new();
        let entries = [Entry {
            index: 1,
            term: 1,
            payload: distribkv_core::raft::Payload::Command(vec![0x5A; 100].into()),
        }];
        let record = WriteRecordRef {
            snapshot: None,
            hard_state: None,
            entries: &entries,
        };
        encode_record(RecordKind::Write, &record, &mut frame).unwrap();
        data.extend_from_slice(&frame);
        let damage = |data: &[u8]| match read_frame(data, offset) {
            Frame::Damaged(problem) => problem,
            other => panic!("expected damage, found {other:?}"),
        };

        // Cut short anywhere: torn.
        for end in offset + 1..data.len() {
            assert!(
                looks_torn(&data[..end], offset, &damage(&data[..end])),
                "cut at {end}"
            );
        }
        // Its bytes from a sector boundary (512) on read as zeros: torn.
        let mut zeroed = data.clone();
        zeroed[512..].fill(0);
        assert!(looks_torn(&zeroed, offset, &damage(&zeroed)));
        // A flipped bit anywhere else: not torn.
        for byte in offset..data.len() {
            for bit in 0..8 {
                let mut flipped = data.clone();
                flipped[byte] ^= 1 << bit;
                let problem = damage(&flipped);
                let torn = looks_torn(&flipped, offset, &problem);
                let in_length = (offset + 4..offset + 8).contains(&byte);
                assert!(
                    !torn || (in_length && matches!(problem, Corruption::TruncatedRecord { .. })),
                    "flip of bit {bit} at {byte} looks torn: {problem}"
                );
            }
        }
        // Unknown kinds and bad headers are never torn.
        assert!(!looks_torn(
            &data,
            offset,
            &Corruption::UnknownRecordKind(9)
        ));
    }

    #[test]
    fn a_valid_record_is_found_after_damage() {
        let mut frame = Vec::new();
        encode_record(RecordKind::Seal, &Seal { next_segment: 1 }, &mut frame).unwrap();
        let mut data = vec![0xAB; 17];
        data.extend_from_slice(&frame);
        assert_eq!(valid_record_after(&data, 0), Some(17));
        assert_eq!(valid_record_after(&data[..data.len() - 1], 0), None);
    }
}
