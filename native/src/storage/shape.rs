//! The small in-memory index the storage keeps instead of the entries: the
//! shape of the log (snapshot point, last index, terms as runs) and, per
//! segment, the highest entry index that is still live in it.

use distribkv_core::raft::{Entry, HardState, LogIndex, PersistedState, Term, Write};

use super::error::InvalidWrite;
use super::format::{SnapshotMarker, SnapshotPoint};

/// A run of consecutive entries with the same term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TermRun {
    /// Index of the run's first entry.
    first_index: LogIndex,
    /// Term of every entry in the run.
    term: Term,
}

/// The shape of the stored log after every appended write, without the entries.
///
/// Invariants: the runs cover exactly `base() + 1 ..= last_index`, their
/// `first_index`es increase, and neighbouring runs have different terms. A
/// Raft log has few terms, so this stays tiny whatever the log's length.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogShape {
    /// The stored snapshot's point, if any.
    pub snapshot: Option<SnapshotPoint>,
    /// The stored term and vote.
    pub hard_state: HardState,
    /// Index of the last stored entry, or `base()` when there is none.
    last_index: LogIndex,
    /// Terms of the stored entries.
    runs: Vec<TermRun>,
}

impl LogShape {
    /// The shape of a recovered state.
    pub(crate) fn of(state: &PersistedState) -> LogShape {
        let mut shape = LogShape {
            snapshot: state.snapshot.as_ref().map(|s| SnapshotPoint {
                index: s.meta.index,
                term: s.meta.term,
            }),
            hard_state: state.hard_state,
            last_index: 0,
            runs: Vec::new(),
        };
        shape.last_index = shape.base();
        shape.extend(&state.entries);
        shape
    }

    /// Index the entries start after: the snapshot's, or 0.
    pub(crate) fn base(&self) -> LogIndex {
        self.snapshot.map_or(0, |s| s.index)
    }

    /// Index of the last stored entry, or `base()`.
    #[cfg(test)]
    pub(crate) fn last_index(&self) -> LogIndex {
        self.last_index
    }

    /// Term of the stored entry at `index`, if there is one.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index <= self.base() || index > self.last_index {
            return None;
        }
        let run = self.runs.partition_point(|run| run.first_index <= index);
        Some(self.runs[run - 1].term)
    }

    /// Checks that `write` follows the contract given the stored log,
    /// without changing anything.
    pub(crate) fn check(&self, write: &Write) -> Result<(), InvalidWrite> {
        check_write(write, self.last_index, |point| self.keeps_log_at(point))
    }

    /// Whether storing a snapshot at `point` keeps the entries after it: the
    /// rule on [`Write::snapshot`].
    pub(crate) fn keeps_log_at(&self, point: SnapshotPoint) -> bool {
        self.term_at(point.index) == Some(point.term)
    }

    /// Stores a snapshot: drops the entries it covers, or all of them.
    pub(crate) fn apply_snapshot(&mut self, marker: SnapshotMarker) {
        let index = marker.point.index;
        if marker.keeps_log {
            // `keeps_log` means some run holds `index`: the runs before
            // `after` start at or before it, so `after >= 1`.
            let after = self.runs.partition_point(|run| run.first_index <= index);
            if self
                .runs
                .get(after)
                .is_some_and(|next| next.first_index == index + 1)
            {
                self.runs.drain(..after);
            } else {
                self.runs.drain(..after - 1);
                self.runs[0].first_index = index + 1;
            }
            if index >= self.last_index {
                self.runs.clear();
            }
        } else {
            self.runs.clear();
            self.last_index = index;
        }
        self.snapshot = Some(marker.point);
        self.last_index = self.last_index.max(index);
    }

    /// Stores entries with truncate-then-append semantics (see [`Write::entries`]).
    /// `entries` were checked by [`check`](Self::check).
    pub(crate) fn apply_entries(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let base = self.base();
        let keep_below = first.index.max(base + 1);
        let runs = self
            .runs
            .partition_point(|run| run.first_index < keep_below);
        self.runs.truncate(runs);
        self.last_index = self.last_index.min(keep_below - 1);
        if first.index <= base {
            // The oracle clears the whole log in this case.
            self.runs.clear();
            self.last_index = base;
        }
        let after_base = entries.partition_point(|entry| entry.index <= base);
        self.extend(&entries[after_base..]);
    }

    fn extend(&mut self, entries: &[Entry]) {
        for entry in entries {
            debug_assert_eq!(entry.index, self.last_index + 1, "entries are consecutive");
            if self.runs.last().is_none_or(|run| run.term != entry.term) {
                self.runs.push(TermRun {
                    first_index: entry.index,
                    term: entry.term,
                });
            }
            self.last_index = entry.index;
        }
    }
}

/// The snapshot marker a write's record carries: where its snapshot is, and
/// whether the log is kept after it (`keeps_log_at`, the rule on
/// [`Write::snapshot`]).
pub(crate) fn snapshot_marker(
    write: &Write,
    keeps_log_at: impl FnOnce(SnapshotPoint) -> bool,
) -> Option<SnapshotMarker> {
    write.snapshot.as_ref().map(|snapshot| {
        let point = SnapshotPoint {
            index: snapshot.meta.index,
            term: snapshot.meta.term,
        };
        SnapshotMarker {
            point,
            keeps_log: keeps_log_at(point),
        }
    })
}

/// Checks that `write` follows the contract given a log whose last entry is
/// at `last_index` and that keeps its entries after a snapshot at a point
/// when `keeps_log_at` says so (the rule on [`Write::snapshot`]); the same
/// check for one group's log and for each group of the multi-group log.
pub(crate) fn check_write(
    write: &Write,
    last_index: LogIndex,
    keeps_log_at: impl Fn(SnapshotPoint) -> bool,
) -> Result<(), InvalidWrite> {
    let last_after_snapshot = match snapshot_marker(write, keeps_log_at) {
        Some(marker) if marker.keeps_log => last_index.max(marker.point.index),
        Some(marker) => marker.point.index,
        None => last_index,
    };
    let mut previous = 0;
    for (position, entry) in write.entries.iter().enumerate() {
        if entry.index == 0 || (position > 0 && entry.index != previous + 1) {
            return Err(InvalidWrite::EntriesNotConsecutive {
                previous,
                found: entry.index,
            });
        }
        previous = entry.index;
    }
    if let Some(first) = write.first_index()
        && first > last_after_snapshot + 1
    {
        return Err(InvalidWrite::EntriesLeaveGap {
            last: last_after_snapshot,
            first,
        });
    }
    Ok(())
}

/// One log segment as the index knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentLiveness {
    /// The segment's number.
    pub number: u64,
    /// Highest index of an entry written in this segment and not overwritten
    /// or dropped since; `None` when it holds no live entry. Conservative: an
    /// entry at or below the snapshot counts as dead by comparison with it.
    pub highest_live: Option<LogIndex>,
}

/// The segments on disk, oldest first, with what they still hold.
///
/// Entries written later always land in the same or a later segment, so the
/// segments holding no live entry and older than any that does are a prefix:
/// the part a snapshot lets us delete.
#[derive(Clone, Debug, Default)]
pub(crate) struct Segments {
    list: Vec<SegmentLiveness>,
}

impl Segments {
    /// Adds a new, empty segment at the end.
    pub(crate) fn push(&mut self, number: u64) {
        self.list.push(SegmentLiveness {
            number,
            highest_live: None,
        });
    }

    /// The segments, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SegmentLiveness> {
        self.list.iter()
    }

    /// Records that `first..=last` were written into the newest segment,
    /// replacing every stored entry from `first` on.
    pub(crate) fn record_entries(&mut self, first: LogIndex, last: LogIndex) {
        for segment in &mut self.list {
            segment.highest_live = match segment.highest_live {
                Some(highest) if highest >= first => first.checked_sub(1).filter(|&i| i > 0),
                other => other,
            };
        }
        if let Some(active) = self.list.last_mut() {
            active.highest_live = Some(active.highest_live.map_or(last, |h| h.max(last)));
        }
    }

    /// Records that every stored entry was dropped.
    pub(crate) fn drop_all_entries(&mut self) {
        for segment in &mut self.list {
            segment.highest_live = None;
        }
    }

    /// How many of the oldest segments (never the newest) hold no entry
    /// above `base`.
    pub(crate) fn deletable_prefix(&self, base: LogIndex) -> usize {
        let older = self.list.len().saturating_sub(1);
        self.list[..older]
            .iter()
            .take_while(|s| s.highest_live.is_none_or(|h| h <= base))
            .count()
    }

    /// Forgets the `count` oldest segments (deleted from disk).
    pub(crate) fn remove_prefix(&mut self, count: usize) {
        self.list.drain(..count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::raft::Payload;

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

    fn marker(index: LogIndex, term: Term, keeps_log: bool) -> SnapshotMarker {
        SnapshotMarker {
            point: SnapshotPoint { index, term },
            keeps_log,
        }
    }

    #[test]
    fn terms_are_found_through_runs() {
        let mut shape = LogShape::default();
        shape.apply_entries(&entries(1, &[1, 1, 2, 2, 2, 5]));
        assert_eq!(shape.last_index(), 6);
        let terms: Vec<_> = (0..=7).map(|i| shape.term_at(i)).collect();
        assert_eq!(
            terms,
            [
                None,
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(2),
                Some(5),
                None
            ]
        );
        shape.apply_entries(&entries(4, &[3, 3]));
        assert_eq!(shape.term_at(3), Some(2));
        assert_eq!(shape.term_at(4), Some(3));
        assert_eq!(shape.term_at(6), None);
        assert_eq!(shape.last_index(), 5);
    }

    #[test]
    fn snapshot_keeps_or_drops_the_log() {
        let mut shape = LogShape::default();
        shape.apply_entries(&entries(1, &[1, 1, 2, 2]));
        assert!(shape.keeps_log_at(SnapshotPoint { index: 3, term: 2 }));
        assert!(!shape.keeps_log_at(SnapshotPoint { index: 3, term: 1 }));
        shape.apply_snapshot(marker(3, 2, true));
        assert_eq!(shape.term_at(3), None);
        assert_eq!(shape.term_at(4), Some(2));
        assert_eq!(shape.last_index(), 4);

        shape.apply_snapshot(marker(9, 4, false));
        assert_eq!(shape.last_index(), 9);
        assert_eq!(shape.term_at(4), None);
        assert_eq!(shape.base(), 9);
    }

    #[test]
    fn snapshot_at_the_last_entry_leaves_an_empty_log() {
        let mut shape = LogShape::default();
        shape.apply_entries(&entries(1, &[1, 1]));
        shape.apply_snapshot(marker(2, 1, true));
        assert_eq!(shape.last_index(), 2);
        shape.apply_entries(&entries(3, &[1]));
        assert_eq!(shape.term_at(3), Some(1));
    }

    #[test]
    fn checks_refuse_gaps_and_unordered_entries() {
        let mut shape = LogShape::default();
        shape.apply_entries(&entries(1, &[1, 1]));
        let write = |first, terms: &[Term]| Write {
            seq: 1,
            entries: entries(first, terms),
            ..Write::default()
        };
        assert!(shape.check(&write(3, &[1])).is_ok());
        assert!(shape.check(&write(1, &[2])).is_ok());
        assert!(matches!(
            shape.check(&write(4, &[1])),
            Err(InvalidWrite::EntriesLeaveGap { last: 2, first: 4 })
        ));
        let mut shuffled = write(2, &[1, 1]);
        shuffled.entries[1].index = 5;
        assert!(matches!(
            shape.check(&shuffled),
            Err(InvalidWrite::EntriesNotConsecutive {
                previous: 2,
                found: 5
            })
        ));
    }

    #[test]
    fn segments_track_live_entries() {
        let mut segments = Segments::default();
        segments.push(1);
        segments.record_entries(1, 10);
        segments.push(2);
        segments.record_entries(11, 20);
        segments.push(3);
        // Overwrites 15.. from segment 3.
        segments.record_entries(15, 16);
        let live: Vec<_> = segments.iter().map(|s| s.highest_live).collect();
        assert_eq!(live, [Some(10), Some(14), Some(16)]);
        assert_eq!(segments.deletable_prefix(9), 0);
        assert_eq!(segments.deletable_prefix(10), 1);
        assert_eq!(segments.deletable_prefix(16), 2, "never the newest");
        segments.drop_all_entries();
        assert_eq!(segments.deletable_prefix(0), 2);
        segments.remove_prefix(2);
        let left: Vec<u64> = segments.iter().map(|s| s.number).collect();
        assert_eq!(left, [3]);
    }
}
