//! What the single-group and the multi-group logs share about segments:
//! the active segment they append to ([`ActiveSegment`]: frames buffered,
//! handed to the kernel, fsynced, the space ahead filled with zeros, and
//! the roll to the next segment), the scan of a segment at recovery
//! ([`scan_segment`]: header, frames, seal, zero or torn tail), and the
//! halt after a failure ([`Halt`]).
//!
//! # Zeros ahead of the records
//!
//! An fsync of a file that grew must also make its new blocks and length
//! durable: on ext4 that is a journal-less metadata write on every group
//! commit, about 40 % of the fsync's time and CPU on the machine measured
//! in docs/BENCHMARKS.md. So the active segment keeps
//! [`preallocate`](SegmentSizes::preallocate) bytes of zeros written
//! ahead of its last record (never past the segment size): most group
//! commits then overwrite blocks the file already has, and only one fsync
//! in that many bytes pays for new ones. A recovery reads zeros after the
//! last record (or after the seal) as the end of the segment, not as
//! damage, and writing resumes there; a sealed segment is cut to its seal.

use std::path::{Path, PathBuf};

use super::error::{Corruption, StorageError};
use super::file::{DataFile, Disk};
use super::format::{
    FILE_HEADER_LEN, FileHeader, Frame, RecordKind, Seal, encode_record, looks_torn, read_frame,
    valid_record_after,
};
use super::identity::Identity;

/// Where a log's segments live and how they are named.
#[derive(Clone, Debug)]
pub(crate) struct SegmentLayout {
    /// The data folder.
    pub dir: PathBuf,
    /// Whose log it is (in every segment header).
    pub identity: Identity,
    /// The segment header's magic bytes.
    pub magic: [u8; 8],
    /// The format version new segments are written in.
    pub version: u32,
    /// Segment `number`'s path in `dir`.
    pub path: fn(&Path, u64) -> PathBuf,
    /// The temporary name segment `number` is created under.
    pub temporary: fn(&Path, u64) -> PathBuf,
}

/// The sizes an [`ActiveSegment`] works with, from the storage's options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentSizes {
    /// Size a segment may reach before the next one is started.
    pub segment_size: u64,
    /// Bytes of frames gathered in memory before they go to the kernel.
    pub write_buffer_size: usize,
    /// Bytes of zeros kept written ahead of the last record (0: none).
    pub preallocate: u64,
}

impl SegmentLayout {
    /// Creates segment `number` atomically with its header (written under
    /// the temporary name, fsynced, renamed, folder fsynced), opened for
    /// appending.
    fn create(&self, number: u64, disk: &Disk) -> Result<DataFile, StorageError> {
        let path = (self.path)(&self.dir, number);
        let header = FileHeader {
            magic: self.magic,
            identity: self.identity,
            number,
        }
        .encode_in(self.version);
        disk.write_atomically(&path, &(self.temporary)(&self.dir, number), &[&header])?;
        disk.open_at(&path, FILE_HEADER_LEN as u64)
    }
}

/// The segment a log appends to.
///
/// Frames are gathered in memory and handed to the kernel once
/// `write_buffer_size` bytes are pending (or at [`flush`](Self::flush) and
/// [`sync`](Self::sync)); a flush that reaches past the zeros written
/// ahead writes `preallocate` more (see the module's documentation). A
/// full segment is sealed by [`roll`](Self::roll): the seal is fsynced
/// before the next segment exists, since a segment that is not the last
/// and lacks its seal is refused as damaged.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    layout: SegmentLayout,
    disk: Disk,
    file: DataFile,
    number: u64,
    /// Length of the segment, `pending` included.
    length: u64,
    /// Frames appended but not yet handed to the kernel.
    pending: Vec<u8>,
    /// Whether bytes were appended since the last fsync.
    unsynced: bool,
    /// Where the zeros written ahead end (at least the length handed to
    /// the kernel, once something was).
    allocated: u64,
    sizes: SegmentSizes,
}

impl ActiveSegment {
    /// Creates segment `number` and makes it the active one.
    pub(crate) fn create(
        layout: SegmentLayout,
        disk: Disk,
        number: u64,
        sizes: SegmentSizes,
    ) -> Result<ActiveSegment, StorageError> {
        let file = layout.create(number, &disk)?;
        Ok(ActiveSegment {
            layout,
            disk,
            file,
            number,
            length: FILE_HEADER_LEN as u64,
            pending: Vec::new(),
            unsynced: false,
            allocated: FILE_HEADER_LEN as u64,
            sizes,
        })
    }

    /// Goes on writing the existing segment `number` after its valid
    /// content, `length` bytes (whatever follows, zeros or a torn tail cut
    /// off by the recovery, is overwritten).
    pub(crate) fn reopen(
        layout: SegmentLayout,
        disk: Disk,
        number: u64,
        length: u64,
        sizes: SegmentSizes,
    ) -> Result<ActiveSegment, StorageError> {
        let file = disk.open_at(&(layout.path)(&layout.dir, number), length)?;
        Ok(ActiveSegment {
            layout,
            disk,
            file,
            number,
            length,
            pending: Vec::new(),
            unsynced: false,
            // Zeros may follow already; the first flush writes its own.
            allocated: length,
            sizes,
        })
    }

    /// The segment's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The segment's length in bytes, records not yet handed to the kernel included.
    pub(crate) fn length(&self) -> u64 {
        self.length
    }

    /// The size at which the segment is sealed and writing moves on.
    pub(crate) fn segment_size(&self) -> u64 {
        self.sizes.segment_size
    }

    /// Whether bytes were appended since the last fsync.
    pub(crate) fn is_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Whether a frame of `frame_length` bytes calls for a new segment
    /// first: it would pass the segment size, and the segment holds a
    /// record already (a record bigger than a segment gets one of its own).
    pub(crate) fn is_full_for(&self, frame_length: u64) -> bool {
        self.length > FILE_HEADER_LEN as u64 && self.length + frame_length > self.sizes.segment_size
    }

    /// Appends one encoded frame; returns its offset in the segment.
    pub(crate) fn push(&mut self, frame: &[u8]) -> Result<u64, StorageError> {
        let offset = self.length;
        self.pending.extend_from_slice(frame);
        self.length += frame.len() as u64;
        self.unsynced = true;
        if self.pending.len() >= self.sizes.write_buffer_size {
            self.flush()?;
        }
        Ok(offset)
    }

    /// Seals the segment durably, then creates the next one and makes it
    /// active. Returns the sealed segment's final length.
    pub(crate) fn roll(&mut self) -> Result<u64, StorageError> {
        let next = self.number + 1;
        let mut seal = Vec::new();
        encode_record(RecordKind::Seal, &Seal { next_segment: next }, &mut seal)
            .expect("a seal always encodes");
        self.pending.extend_from_slice(&seal);
        self.length += seal.len() as u64;
        // The roll may come right after a group commit, with nothing else
        // unsynced, so the seal itself calls for the fsync.
        self.unsynced = true;
        self.sync()?;
        let sealed_length = self.length;
        if self.sizes.preallocate > 0 {
            // The zeros after the seal go: a sealed segment is its records.
            // (A recovery reads zeros after a seal as its end too, in case
            // the power fails before this.)
            self.file.truncate(sealed_length)?;
        }
        self.file = self.layout.create(next, &self.disk)?;
        self.number = next;
        self.length = FILE_HEADER_LEN as u64;
        self.allocated = self.length;
        tracing::debug!(dir = %self.layout.dir.display(), segment = next, "started a new log segment");
        Ok(sealed_length)
    }

    /// Hands the pending bytes to the kernel. With `preallocate`, if they
    /// reach past the zeros written ahead, zeros are written first up to
    /// `preallocate` bytes after them (never past the segment size unless
    /// they do), so that the records themselves only ever overwrite blocks
    /// the file has: a full disk fails the zeros, never half a record.
    pub(crate) fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.sizes.preallocate == 0 {
            self.file.write_all(&self.pending)?;
        } else {
            let end = self.length;
            if end > self.allocated {
                let start = end - self.pending.len() as u64;
                let from = self.allocated.max(start);
                let target = end
                    .saturating_add(self.sizes.preallocate)
                    .min(self.sizes.segment_size.max(end));
                self.file
                    .write_at(from, &vec![0; (target - from) as usize])?;
                self.allocated = target;
            }
            self.file.overwrite(&self.pending)?;
        }
        self.pending.clear();
        Ok(())
    }

    /// Flushes, then fsyncs if anything was appended since the last fsync;
    /// returns whether it fsynced.
    pub(crate) fn sync(&mut self) -> Result<bool, StorageError> {
        self.flush()?;
        if !self.unsynced {
            return Ok(false);
        }
        self.file.sync_data()?;
        self.unsynced = false;
        Ok(true)
    }
}

/// A log's failure: after a failed write or fsync it refuses every later
/// call (on Linux a failed fsync may have dropped the dirty pages, so
/// retrying could report durable what is not).
#[derive(Debug, Default)]
pub(crate) struct Halt {
    cause: Option<String>,
}

impl Halt {
    /// Whether a failure halted the log.
    pub(crate) fn is_halted(&self) -> bool {
        self.cause.is_some()
    }

    /// `Err(Halted)` once halted.
    pub(crate) fn ensure_running(&self) -> Result<(), StorageError> {
        match &self.cause {
            Some(cause) => Err(StorageError::Halted {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Halts if `result` is an error; passes it on.
    pub(crate) fn on_error<T>(
        &mut self,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(error) = &result {
            tracing::error!(%error, "storage failed; refusing further writes");
            self.cause = Some(error.to_string());
        }
        result
    }
}

/// What [`scan_segment`] expects of a segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expected {
    /// Its number (from its name).
    pub number: u64,
    /// Whose log it is.
    pub identity: Identity,
    /// Whether it is the last segment (the only one whose tail may be torn).
    pub is_last: bool,
}

/// What a segment scan found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScannedSegment {
    /// Where its valid records end (zeros may follow; a torn tail was cut
    /// off there).
    pub length: u64,
    /// Whether it ends with a seal.
    pub sealed: bool,
}

/// A record met by [`scan_segment`], for its caller to apply.
pub(crate) struct ScannedRecord<'a> {
    /// The record's kind.
    pub kind: RecordKind,
    /// Its payload.
    pub payload: &'a [u8],
    /// Its frame's offset in the segment.
    pub offset: usize,
    /// Its frame's length.
    pub length: usize,
}

/// What the caller of [`scan_segment`] made of a record.
pub(crate) enum Applied {
    /// A record of the log's own, applied.
    Record,
    /// A seal naming `next_segment`.
    Seal(u64),
}

/// Checks the header of segment `number` at `path` (already decoded by the
/// caller, which knows its format versions), then walks its frames, giving
/// each record to `apply`. Refuses, with the file and offset: another
/// node's or cluster's header, a wrong number, a record after the seal, a
/// seal naming another successor, a segment other than the last without a
/// seal, any damage except the torn tail of the last segment (cut short,
/// or sectors reading as zeros, and nothing valid after it), which is cut
/// off with a warning. Zeros from where a record would start to the end
/// of the file are the end of the segment (the space written ahead of the
/// records, see the module's documentation), after a seal too; they are
/// left in place.
pub(crate) fn scan_segment(
    path: &Path,
    data: &[u8],
    header: &FileHeader,
    expected: Expected,
    disk: &Disk,
    mut apply: impl FnMut(ScannedRecord<'_>) -> Result<Applied, Corruption>,
) -> Result<ScannedSegment, StorageError> {
    let Expected {
        number,
        identity,
        is_last,
    } = expected;
    let corrupt = |offset: usize, problem| StorageError::CorruptSegment {
        path: path.to_owned(),
        offset: offset as u64,
        problem,
    };
    if header.identity != identity {
        return Err(StorageError::IdentityMismatch {
            path: path.to_owned(),
            expected: identity,
            found: header.identity,
        });
    }
    if header.number != number {
        return Err(corrupt(
            28,
            Corruption::WrongSegmentNumber {
                expected: number,
                found: header.number,
            },
        ));
    }
    let mut offset = FILE_HEADER_LEN;
    let mut sealed = false;
    loop {
        match read_frame(data, offset) {
            Frame::End => break,
            Frame::Damaged(_) if data[offset..].iter().all(|&byte| byte == 0) => break,
            Frame::Record { .. } | Frame::Damaged(_) if sealed => {
                return Err(corrupt(offset, Corruption::DataAfterSeal));
            }
            Frame::Record {
                kind,
                payload,
                next,
            } => {
                let record = ScannedRecord {
                    kind,
                    payload,
                    offset,
                    length: next - offset,
                };
                match apply(record).map_err(|problem| corrupt(offset, problem))? {
                    Applied::Record => {}
                    Applied::Seal(next_segment) if next_segment == number + 1 => sealed = true,
                    Applied::Seal(found) => {
                        return Err(corrupt(
                            offset,
                            Corruption::WrongSuccessor {
                                expected: number + 1,
                                found,
                            },
                        ));
                    }
                }
                offset = next;
            }
            Frame::Damaged(problem) => {
                // Only the end of the last segment can be torn, and only in
                // the way an interrupted append tears it (cut short, or some
                // sectors zero); a record whose checksum holds but whose kind
                // is unknown was written whole, by another version.
                if !is_last
                    || !looks_torn(data, offset, &problem)
                    || valid_record_after(data, offset).is_some()
                {
                    return Err(corrupt(offset, problem));
                }
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    dropped_bytes = data.len() - offset,
                    %problem,
                    "cutting off the torn tail of the write-ahead log"
                );
                disk.open_at(path, offset as u64)?.truncate(offset as u64)?;
                break;
            }
        }
    }
    if !is_last && !sealed {
        return Err(corrupt(data.len(), Corruption::UnsealedSegment));
    }
    Ok(ScannedSegment {
        length: offset as u64,
        sealed,
    })
}
