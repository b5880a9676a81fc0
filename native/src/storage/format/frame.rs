//! Record frames: encoding one, reading one back with its checksum
//! checked, and telling what an interrupted append leaves (a torn tail)
//! from damage done after a record was written.

use serde::Serialize;

use super::{MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, RecordKind, read_u32};
use crate::storage::error::Corruption;

/// Encodes one record's frame into `out` (cleared first).
pub(crate) fn encode_record<T: Serialize>(
    kind: RecordKind,
    payload: &T,
    out: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    out.clear();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    postcard::serialize_with_flavor(payload, crate::encoding::BufFlavor(out))?;
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

/// Size of a disk sector: written whole or not at all.
pub(crate) const SECTOR_SIZE: usize = 512;

/// Whether the damaged frame at `offset` is what an interrupted append
/// leaves: the record runs past the end of the file, or one of its sectors
/// (its bytes between two 512-byte boundaries of the file) reads as zeros,
/// as when a power cut let the file's length reach the disk but not all of
/// its data. A record whose bytes are all there, none of its sectors zero,
/// and whose checksum fails was damaged after it was written.
///
/// A sector is written whole or not at all, so an unwritten one reads as
/// zeros to its end (or to the end of the file), past the record's end
/// too: zeros followed by data in the same sector were damage. This is
/// also what keeps a zeroed length field, which makes the record seem a
/// few zero bytes long, from passing a whole record for a torn one.
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
                let sector_end = (start / SECTOR_SIZE + 1) * SECTOR_SIZE;
                if data[start..sector_end.min(data.len())]
                    .iter()
                    .all(|&byte| byte == 0)
                {
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
    use distribkv_core::raft::Entry;

    use super::super::{FORMAT_VERSION, Record, Seal, WriteRecordRef, decode_record};
    use super::*;

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
    fn a_record_holds_postcards_encoding_of_its_payload() {
        let entries = [
            Entry {
                index: 7,
                term: 2,
                payload: distribkv_core::raft::Payload::Command(vec![0xA5; 300].into()),
            },
            Entry {
                index: 8,
                term: 2,
                payload: distribkv_core::raft::Payload::Noop,
            },
        ];
        let record = WriteRecordRef {
            snapshot: None,
            hard_state: None,
            entries: &entries,
        };
        // A buffer holding an older frame: cleared first.
        let mut frame = vec![0xEE; 1000];
        encode_record(RecordKind::Write, &record, &mut frame).unwrap();
        assert_eq!(
            &frame[RECORD_HEADER_LEN..],
            postcard::to_allocvec(&record).unwrap().as_slice()
        );
        assert!(matches!(
            read_frame(&frame, 0),
            Frame::Record { kind: RecordKind::Write, next, .. } if next == frame.len()
        ));
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
        // Zeros over its start, its other bytes in that sector still there:
        // a sector is written whole, so not torn, even though the zeroed
        // length field makes the record seem nine zero bytes long.
        let mut zeroed = data.clone();
        zeroed[offset..offset + RECORD_HEADER_LEN].fill(0);
        assert!(!looks_torn(&zeroed, offset, &damage(&zeroed)));
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
