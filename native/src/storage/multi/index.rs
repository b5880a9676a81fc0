//! The per-group in-memory index (raft-engine's memtable): for every
//! group, its snapshot point, hard state, and for each live entry its term,
//! its size and where on disk its latest copy lies. Reading a group's
//! entries costs one positioned read per record holding them; checking a
//! write costs a lookup.

use std::collections::VecDeque;

use distribkv_core::raft::{Entry, HardState, LogIndex, Term, Write};

use super::super::error::InvalidWrite;
use super::super::format::{SnapshotMarker, SnapshotPoint};
use super::super::shape::check_write;

/// Where a record lies: a segment and the frame's byte range in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// The segment's number.
    pub segment: u64,
    /// Offset of the record's frame in the segment.
    pub offset: u64,
    /// Length of the frame (header and payload).
    pub length: u32,
}

/// One live entry, as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryMeta {
    /// Its term.
    pub term: Term,
    /// Its approximate size ([`Entry::size`]).
    pub size: u32,
    /// The record holding its latest copy.
    pub location: Location,
}

/// One group's index.
///
/// Invariant: `entries[i]` describes entry `base() + 1 + i`; the entries
/// are consecutive from the snapshot on.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupIndex {
    /// Its snapshot point.
    pub snapshot: Option<SnapshotPoint>,
    /// Its term and vote.
    pub hard_state: HardState,
    /// Its live entries, from `base() + 1`.
    pub entries: VecDeque<EntryMeta>,
}

impl GroupIndex {
    /// The index the entries start after.
    pub(crate) fn base(&self) -> LogIndex {
        self.snapshot.map_or(0, |s| s.index)
    }

    /// Index of the last entry (or `base()`).
    pub(crate) fn last_index(&self) -> LogIndex {
        self.base() + self.entries.len() as u64
    }

    /// The entry at `index`, if live.
    pub(crate) fn entry(&self, index: LogIndex) -> Option<&EntryMeta> {
        let base = self.base();
        if index <= base {
            return None;
        }
        self.entries.get((index - base - 1) as usize)
    }

    /// The rule on [`Write::snapshot`]: the log is kept after `point` if it
    /// holds an entry there with that term.
    pub(crate) fn keeps_log_at(&self, point: SnapshotPoint) -> bool {
        self.entry(point.index)
            .is_some_and(|e| e.term == point.term)
    }

    /// Checks `write` against this log without changing anything.
    pub(crate) fn check(&self, write: &Write) -> Result<(), InvalidWrite> {
        check_write(write, self.last_index(), |point| self.keeps_log_at(point))
    }

    /// Stores a snapshot marker: drops the entries it covers, or all.
    pub(crate) fn apply_snapshot(&mut self, marker: SnapshotMarker) {
        let index = marker.point.index;
        if marker.keeps_log {
            let covered = (index.saturating_sub(self.base()) as usize).min(self.entries.len());
            self.entries.drain(..covered);
        } else {
            self.entries.clear();
        }
        self.snapshot = Some(marker.point);
    }

    /// Stores entries with truncate-then-append semantics; they were checked.
    pub(crate) fn apply_entries(&mut self, entries: &[Entry], location: Location) {
        let Some(first) = entries.first() else {
            return;
        };
        let base = self.base();
        if first.index <= base {
            self.entries.clear();
        } else {
            self.entries.truncate((first.index - base - 1) as usize);
        }
        for entry in entries.iter().filter(|e| e.index > base) {
            self.entries.push_back(EntryMeta {
                term: entry.term,
                size: entry.size() as u32,
                location,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::raft::Payload;

    const HERE: Location = Location {
        segment: 1,
        offset: 40,
        length: 10,
    };

    fn entries(first: LogIndex, terms: &[Term]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry {
                index: first + i as u64,
                term,
                payload: Payload::Noop,
            })
            .collect()
    }

    #[test]
    fn entries_truncate_and_snapshots_keep_or_drop_the_log() {
        let mut index = GroupIndex::default();
        index.apply_entries(&entries(1, &[1, 1, 2, 2]), HERE);
        assert_eq!(index.last_index(), 4);
        index.apply_entries(&entries(3, &[3]), HERE);
        assert_eq!(index.last_index(), 3);
        assert_eq!(index.entry(3).unwrap().term, 3);
        let point = SnapshotPoint { index: 2, term: 1 };
        assert!(index.keeps_log_at(point));
        index.apply_snapshot(SnapshotMarker {
            point,
            keeps_log: true,
        });
        assert_eq!((index.base(), index.last_index()), (2, 3));
        assert!(index.entry(2).is_none());
        index.apply_snapshot(SnapshotMarker {
            point: SnapshotPoint { index: 9, term: 4 },
            keeps_log: false,
        });
        assert_eq!((index.base(), index.last_index()), (9, 9));
        // Entries below the snapshot: only those after it are kept.
        index.apply_entries(&entries(8, &[4, 4, 4]), HERE);
        assert_eq!(index.last_index(), 10);
    }

    #[test]
    fn checks_refuse_gaps_and_disorder() {
        let mut index = GroupIndex::default();
        index.apply_entries(&entries(1, &[1, 1]), HERE);
        let write = |first, terms: &[Term]| Write {
            seq: 1,
            entries: entries(first, terms),
            ..Write::default()
        };
        assert!(index.check(&write(3, &[1])).is_ok());
        assert!(index.check(&write(1, &[2])).is_ok());
        assert!(matches!(
            index.check(&write(4, &[1])),
            Err(InvalidWrite::EntriesLeaveGap { last: 2, first: 4 })
        ));
        let mut shuffled = write(2, &[1, 1]);
        shuffled.entries[1].index = 7;
        assert!(index.check(&shuffled).is_err());
    }
}
