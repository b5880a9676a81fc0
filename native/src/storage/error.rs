//! What can go wrong in stable storage, by origin: the operating system, a
//! damaged file, a folder of another node, a write that breaks the contract,
//! or an earlier failure that stopped the storage.

use std::io;
use std::path::PathBuf;

use distribkv_core::raft::LogIndex;

use super::identity::Identity;

/// An error of the durable storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call on a file or folder failed. After a failed
    /// write or fsync the storage is halted (see [`StorageError::Halted`]).
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase (`"fsync"`, `"write to"`, ...).
        action: &'static str,
        /// The file or folder it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A log segment is damaged at a place recovery must not repair: not a
    /// torn tail at the very end of the last segment.
    #[error("corrupt log segment {} at byte {offset}: {problem}", path.display())]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte offset in the file where the damage starts.
        offset: u64,
        /// What is wrong there.
        problem: Corruption,
    },

    /// A file of the data folder is in a format version newer than this
    /// build reads: it was written by a newer distribKV.
    #[error(
        "{} is in data format version {found}, written by a newer distribKV; this build reads versions 1 to {supported}: run the newer version on this folder, or rebuild the node (member remove, then add it again under a new id)",
        path.display()
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },

    /// A snapshot file is damaged.
    #[error("corrupt snapshot {} at byte {offset}: {problem}", path.display())]
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// Byte offset in the file where the damaged part starts: 0 for the
        /// header, 40 for the length field, 52 for the content (whose
        /// checksum covers the rest of the file).
        offset: u64,
        /// What is wrong with it.
        problem: Corruption,
    },

    /// The identity file of the data folder is damaged.
    #[error("corrupt identity file {}: {problem}", path.display())]
    CorruptIdentity {
        /// The identity file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Corruption,
    },

    /// The data folder (or one file in it) belongs to another node or cluster.
    #[error("{} belongs to {found}, but this server is {expected}", path.display())]
    IdentityMismatch {
        /// The file whose recorded identity differs.
        path: PathBuf,
        /// The identity the caller opened the folder with.
        expected: Identity,
        /// The identity recorded in the file.
        found: Identity,
    },

    /// The data folder holds log or snapshot files but no identity file, so it
    /// cannot be told whose data it is.
    #[error("{} holds log or snapshot files but no identity file {}", dir.display(), path.display())]
    MissingIdentity {
        /// The data folder.
        dir: PathBuf,
        /// Where the identity file should be.
        path: PathBuf,
    },

    /// A log segment between two present ones is missing.
    #[error("log segment {} is missing: later segments exist", path.display())]
    MissingSegment {
        /// The missing file.
        path: PathBuf,
    },

    /// The first segment on disk is not the first ever written, yet no
    /// checkpoint record restates what the deleted segments held, or one
    /// names an older segment as the first its compaction kept.
    #[error(
        "log segments before {} are missing, and no checkpoint says a compaction deleted them",
        path.display()
    )]
    MissingLogPrefix {
        /// The first segment present.
        path: PathBuf,
    },

    /// The folder holds snapshot files but no log segment at all. The
    /// segment being appended to is never deleted, and a snapshot is only
    /// written while one exists: the log that refers to the snapshot was
    /// lost.
    #[error(
        "{} holds snapshot {} but no log segment: the log was lost",
        dir.display(),
        path.display()
    )]
    MissingLog {
        /// The data folder.
        dir: PathBuf,
        /// A snapshot file in it.
        path: PathBuf,
    },

    /// The snapshot the log refers to is not in the folder.
    #[error("snapshot {} referenced by the log is missing", path.display())]
    MissingSnapshot {
        /// The expected snapshot file.
        path: PathBuf,
    },

    /// The recovered log entries do not follow each other: an entry is
    /// missing, which means log data was lost.
    #[error("log in {} has a gap: expected entry {expected}, found entry {found}", dir.display())]
    LogGap {
        /// The data folder.
        dir: PathBuf,
        /// The index that should come next.
        expected: LogIndex,
        /// The index that came instead.
        found: LogIndex,
    },

    /// The recovered entries of one group of a multi-group log do not
    /// follow each other.
    #[error("log of group {group} in {} has a gap: expected entry {expected}, found entry {found}", dir.display())]
    GroupLogGap {
        /// The data folder.
        dir: PathBuf,
        /// The group.
        group: u64,
        /// The index that should come next.
        expected: LogIndex,
        /// The index that came instead.
        found: LogIndex,
    },

    /// One group's write in a multi-group step breaks the contract on
    /// [`Write`](distribkv_core::raft::Write). Nothing of the step was
    /// stored and the storage stays usable.
    #[error("write {seq} refused: group {group}'s write {group_seq}: {problem}")]
    InvalidGroupWrite {
        /// The step's `seq`.
        seq: u64,
        /// The group.
        group: u64,
        /// The group's write's own `seq`.
        group_seq: u64,
        /// Which rule it breaks.
        problem: InvalidWrite,
    },

    /// A read named a group the log does not hold.
    #[error("no group {group} in this log")]
    UnknownGroup {
        /// The group asked for.
        group: u64,
    },

    /// A read asked for entries the group's log does not hold.
    #[error("group {group} holds entries {first}..={last}, not {low}..{high}")]
    EntriesUnavailable {
        /// The group.
        group: u64,
        /// First entry held.
        first: LogIndex,
        /// Last entry held.
        last: LogIndex,
        /// Start of the range asked for.
        low: LogIndex,
        /// End (exclusive) of the range asked for.
        high: LogIndex,
    },

    /// A write breaks the contract documented on
    /// [`Write`](distribkv_core::raft::Write). Nothing of it was stored and the
    /// storage stays usable.
    #[error("write {seq} refused: {problem}")]
    InvalidWrite {
        /// The refused write's `seq`.
        seq: u64,
        /// Which rule it breaks.
        problem: InvalidWrite,
    },

    /// The storage worker's thread could not be started.
    #[error("cannot start the storage thread: {0}")]
    SpawnWorker(#[source] io::Error),

    /// A write or fsync failed earlier; the storage refuses all further
    /// writes, because after a failed fsync the kernel may have dropped dirty
    /// pages and retrying could acknowledge data that is not on disk.
    #[error("storage halted after an earlier failure: {cause}")]
    Halted {
        /// The earlier failure, rendered.
        cause: String,
    },
}

/// How a file's content is damaged.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// The file is shorter than its fixed header.
    #[error("file is {length} bytes, shorter than the {expected}-byte header")]
    TruncatedHeader {
        /// Length of the file.
        length: u64,
        /// Length of the header.
        expected: u64,
    },
    /// The file does not start with the expected magic bytes.
    #[error("bad magic bytes {found:02x?}, expected {expected:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 8],
        /// The bytes expected.
        expected: [u8; 8],
    },
    /// The file was written in a format version this build cannot read.
    #[error("format version {found}, but this build reads version {supported}")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The header's checksum does not match its content.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// A segment's header names another position than its file name.
    #[error("header says segment {found}, file name says segment {expected}")]
    WrongSegmentNumber {
        /// The number in the file name.
        expected: u64,
        /// The number in the header.
        found: u64,
    },
    /// A record extends past the end of the file.
    #[error("record needs {needed} bytes but only {available} remain")]
    TruncatedRecord {
        /// Bytes the record's frame announces (header included).
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A record announces a length beyond the largest record ever written.
    #[error("record length {length} exceeds the maximum {maximum}")]
    RecordTooLarge {
        /// The announced payload length.
        length: u64,
        /// The largest allowed payload length.
        maximum: u64,
    },
    /// A record's checksum does not match its content.
    #[error("record checksum mismatch")]
    RecordChecksum,
    /// A snapshot's checksum does not match its content.
    #[error("snapshot content checksum mismatch (it covers the rest of the file)")]
    SnapshotChecksum,
    /// A record with a valid checksum has a kind this build does not know.
    #[error("unknown record kind {0}")]
    UnknownRecordKind(u8),
    /// A record with a valid checksum belongs to the other kind of log (a
    /// multi-group record in a single group's segment, or the reverse).
    #[error("record kind {0} does not belong in this kind of log segment")]
    ForeignRecordKind(u8),
    /// A multi-group record writes to (or creates) a group that an earlier
    /// record retired.
    #[error("record writes to group {0}, which an earlier record retired")]
    RetiredGroupWrite(u64),
    /// A record the index points to does not hold the entry it should.
    #[error("record does not hold entry {index} of group {group}")]
    EntryNotInRecord {
        /// The group.
        group: u64,
        /// The entry's index.
        index: LogIndex,
    },
    /// A record or snapshot with a valid checksum cannot be decoded.
    #[error("cannot decode content: {0}")]
    Undecodable(#[source] postcard::Error),
    /// A record follows the seal record that closes a segment.
    #[error("data after the segment's seal record")]
    DataAfterSeal,
    /// A seal record names another successor than the next segment.
    #[error("seal record names segment {found} as successor, expected {expected}")]
    WrongSuccessor {
        /// The segment that should follow.
        expected: u64,
        /// The segment the seal names.
        found: u64,
    },
    /// A segment that is not the last one ends without a seal record, so
    /// records at its end were lost.
    #[error("segment ends without a seal record although a later segment exists")]
    UnsealedSegment,
    /// A snapshot file's length field disagrees with the file's length.
    #[error("snapshot content is {found} bytes, header announces {expected}")]
    WrongSnapshotLength {
        /// Length announced by the header.
        expected: u64,
        /// Length present in the file.
        found: u64,
    },
    /// A file of fixed length (the identity file) holds more than its content.
    #[error("file is {length} bytes, but holds only its {expected}-byte header")]
    TrailingBytes {
        /// Length of the file.
        length: u64,
        /// Length of its content.
        expected: u64,
    },
    /// A snapshot file holds another snapshot than its name says.
    #[error("file holds the snapshot at index {index} term {term}, its name says otherwise")]
    WrongSnapshot {
        /// Index found inside.
        index: LogIndex,
        /// Term found inside.
        term: u64,
    },
}

/// Which rule of the write contract a write breaks.
#[derive(Debug, thiserror::Error)]
pub enum InvalidWrite {
    /// Writes must come in increasing `seq` order.
    #[error("seq does not follow the previous write's seq {previous}")]
    SeqNotIncreasing {
        /// The `seq` of the write appended before.
        previous: u64,
    },
    /// The entries of one write must have consecutive indexes, starting at 1 or later.
    #[error("entry index {found} does not follow index {previous}")]
    EntriesNotConsecutive {
        /// The index before (0 for the first entry).
        previous: LogIndex,
        /// The index found.
        found: LogIndex,
    },
    /// The first entry must not leave a hole after the stored log.
    #[error("first entry {first} leaves a gap after the last stored entry {last}")]
    EntriesLeaveGap {
        /// Index of the last stored entry (after the write's snapshot).
        last: LogIndex,
        /// Index of the write's first entry.
        first: LogIndex,
    },
    /// The write, encoded, exceeds the largest record the log accepts.
    #[error("encoded write is {bytes} bytes, more than the maximum record size {maximum}")]
    TooLarge {
        /// Encoded size.
        bytes: u64,
        /// Maximum record payload size.
        maximum: u64,
    },
    /// The write could not be encoded.
    #[error("cannot encode: {0}")]
    Unencodable(#[source] postcard::Error),
    /// The group was retired from this log: it takes no writes any more.
    #[error("the group was retired from this log")]
    GroupRetired,
}

impl StorageError {
    /// Builds the [`StorageError::Io`] for `action` on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
