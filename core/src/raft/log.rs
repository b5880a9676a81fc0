//! The in-memory Raft log: a compacted prefix (described by the latest
//! snapshot) followed by the entries after it.
//!
//! Invariants: `snapshot.index <= applied <= commit <= last_index()`, and
//! `entries[i].index == snapshot.index + 1 + i`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::types::{Entry, LogIndex, Membership, NodeId, Payload, SnapshotMeta, Term};

/// The log of one node.
#[derive(Clone, Debug)]
pub struct RaftLog {
    /// The compacted prefix: everything up to `snapshot.index` lives in the snapshot.
    snapshot: SnapshotMeta,
    /// Entries after the snapshot, consecutive.
    entries: VecDeque<Entry>,
    /// Highest index known to be committed (`snapshot.index <= commit <= last_index`).
    commit: LogIndex,
    /// Highest index handed to the application (`snapshot.index <= applied <= commit`).
    applied: LogIndex,
    /// The membership entries among `entries`, by index (usually none), so
    /// that the current membership is found without scanning the log.
    memberships: Vec<(LogIndex, Membership)>,
}

impl RaftLog {
    /// A log restored from a snapshot (or the empty prefix) and the entries after it.
    ///
    /// Entries that do not follow the snapshot consecutively are dropped from
    /// the first gap on; the caller reports how many were kept.
    pub(crate) fn restore(snapshot: SnapshotMeta, entries: Vec<Entry>) -> RaftLog {
        let mut log = RaftLog {
            commit: snapshot.index,
            applied: snapshot.index,
            snapshot,
            entries: VecDeque::with_capacity(entries.len()),
            memberships: Vec::new(),
        };
        for entry in entries {
            if entry.index <= log.snapshot.index {
                continue;
            }
            if entry.index != log.last_index() + 1 || entry.term < log.last_term() {
                break;
            }
            log.push(entry);
        }
        log
    }

    /// The snapshot describing the compacted prefix.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// Index of the first entry still held (snapshot index + 1).
    pub fn first_index(&self) -> LogIndex {
        self.snapshot.index + 1
    }

    /// Index of the last entry (or of the snapshot when the log is empty).
    pub fn last_index(&self) -> LogIndex {
        self.snapshot.index + self.entries.len() as u64
    }

    /// Term of the last entry (or of the snapshot).
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    /// Highest committed index.
    pub fn commit(&self) -> LogIndex {
        self.commit
    }

    /// Highest index handed to the application.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Term of the entry at `index`, if it is known (held, or the snapshot's last).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize)
    }

    /// Entries in `from..=to` that are held, in order.
    pub fn entries(&self, from: LogIndex, to: LogIndex) -> impl Iterator<Item = &Entry> + '_ {
        let start = from.max(self.first_index());
        let end = to.min(self.last_index());
        let offset = self.snapshot.index + 1;
        let range = if start > end {
            0..0
        } else {
            (start - offset) as usize..(end - offset + 1) as usize
        };
        self.entries.range(range)
    }

    /// Whether a log ending at `(last_index, last_term)` is at least as
    /// up-to-date as this one (§5.4.1).
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Whether the entry at `index` has term `term` (true for anything covered
    /// by the snapshot, which is committed and therefore matches any leader's log).
    pub fn matches(&self, index: LogIndex, term: Term) -> bool {
        if index < self.snapshot.index {
            return true;
        }
        self.term_at(index) == Some(term)
    }

    /// Appends one entry at the end. The caller guarantees `entry.index == last_index() + 1`.
    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log entries are consecutive"
        );
        if let Payload::Membership(membership) = &entry.payload {
            self.memberships.push((entry.index, (**membership).clone()));
        }
        self.entries.push_back(entry);
    }

    /// Drops every entry at or after `index`. Never drops committed entries:
    /// the caller checks `index > commit` (Leader Completeness guarantees it
    /// for any message from a legitimate leader).
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        debug_assert!(index > self.commit, "committed entries are never truncated");
        let keep = index.saturating_sub(self.first_index()) as usize;
        self.entries.truncate(keep);
        self.memberships.retain(|(at, _)| *at < index);
    }

    /// Raises the commit index to `index` (never lowers it, never past the last index).
    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        let index = index.min(self.last_index());
        if index > self.commit {
            self.commit = index;
            true
        } else {
            false
        }
    }

    /// Marks entries up to `index` as handed to the application.
    pub(crate) fn applied_to(&mut self, index: LogIndex) {
        debug_assert!(index <= self.commit, "only committed entries are applied");
        self.applied = self.applied.max(index);
    }

    /// Replaces the prefix up to `meta.index` by a snapshot. Keeps the entries
    /// after it if the log holds `meta.index` with `meta.term`, else drops them all.
    pub(crate) fn install_snapshot(&mut self, meta: SnapshotMeta) {
        let index = meta.index;
        if self.term_at(index) == Some(meta.term) && index <= self.last_index() {
            let drop = (index - self.snapshot.index) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.snapshot = meta;
        self.memberships.retain(|(at, _)| *at > index);
        if self.entries.is_empty() {
            self.memberships.clear();
        }
        self.commit = self.commit.max(index);
        self.applied = self.applied.max(index);
    }

    /// Largest index `j <= index` whose term is `<= term`, and that term:
    /// the probe position for fast back-off (etcd's `findConflictByTerm`).
    /// `None` when the answer lies in the compacted prefix, where terms are
    /// no longer known.
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> Option<(LogIndex, Term)> {
        let mut index = index.min(self.last_index());
        loop {
            match self.term_at(index) {
                Some(t) if t <= term => return Some((index, t)),
                Some(_) if index > self.snapshot.index => index -= 1,
                _ => return None,
            }
        }
    }

    /// The latest membership in the log (uncommitted ones included, as
    /// membership takes effect when appended), or the snapshot's.
    pub fn membership(&self) -> &Membership {
        self.memberships
            .last()
            .map_or(&self.snapshot.membership, |(_, m)| m)
    }

    /// Index of the latest membership entry still in the log, if any.
    pub fn last_membership_index(&self) -> Option<LogIndex> {
        self.memberships.last().map(|(index, _)| *index)
    }

    /// The latest committed membership: the one a node's removal counts in
    /// (an uncommitted one may still be truncated away).
    pub fn committed_membership(&self) -> &Membership {
        self.memberships
            .iter()
            .rev()
            .find(|(at, _)| *at <= self.commit)
            .map_or(&self.snapshot.membership, |(_, m)| m)
    }

    /// Whether `id` is a voter of the latest committed membership or of
    /// any later one in the log (the latest included): the memberships a
    /// new leader may still commit or truncate away.
    pub fn is_voter_since_commit(&self, id: NodeId) -> bool {
        self.committed_membership().is_voter(id)
            || self
                .memberships
                .iter()
                .any(|(at, m)| *at > self.commit && m.is_voter(id))
    }

    /// The membership in effect at `index` (for snapshot metadata).
    pub fn membership_at(&self, index: LogIndex) -> Membership {
        self.memberships
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map_or(&self.snapshot.membership, |(_, m)| m)
            .clone()
    }

    /// The removals made by the membership entries still in the log: each
    /// removed id with the index of the entry that removed it, in log order.
    /// (A removed id stays removed: ids are never reused.)
    pub fn removals(&self) -> impl Iterator<Item = (NodeId, LogIndex)> + '_ {
        let before = core::iter::once(&self.snapshot.membership)
            .chain(self.memberships.iter().map(|(_, m)| m));
        before
            .zip(self.memberships.iter())
            .flat_map(|(before, (at, after))| {
                after
                    .removed
                    .iter()
                    .filter(|&&id| !before.is_removed(id))
                    .map(move |&id| (id, *at))
            })
    }

    /// Index of the entry that removed `id`, if it is in the log; the
    /// snapshot's index if the removal was compacted into it.
    pub fn removal_index(&self, id: NodeId) -> Option<LogIndex> {
        if self.snapshot.membership.is_removed(id) {
            return Some(self.snapshot.index);
        }
        self.removals()
            .find(|&(removed, _)| removed == id)
            .map(|(_, at)| at)
    }

    /// Number of entries held in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entries are held (everything is in the snapshot).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn entry(index: LogIndex, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    fn log_with_terms(snapshot: (LogIndex, Term), terms: &[Term]) -> RaftLog {
        let meta = SnapshotMeta {
            index: snapshot.0,
            term: snapshot.1,
            membership: Membership::default(),
        };
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| entry(snapshot.0 + 1 + i as u64, t))
            .collect();
        RaftLog::restore(meta, entries)
    }

    #[test]
    fn indexes_and_terms() {
        let log = log_with_terms((0, 0), &[1, 1, 2]);
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (1, 3, 2)
        );
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(4), None);
        let compacted = log_with_terms((10, 3), &[3, 4]);
        assert_eq!(compacted.term_at(9), None);
        assert_eq!(compacted.term_at(10), Some(3));
        assert_eq!(compacted.last_index(), 12);
        assert_eq!(compacted.commit(), 10);
    }

    #[test]
    fn restore_stops_at_a_gap() {
        let meta = SnapshotMeta::default();
        let log = RaftLog::restore(meta, vec![entry(1, 1), entry(2, 1), entry(4, 1)]);
        assert_eq!(log.last_index(), 2);
    }

    #[test]
    fn up_to_date_rule() {
        // §5.4.1: compare last terms, then lengths.
        let log = log_with_terms((0, 0), &[1, 2, 2]);
        let cases = [
            ((3, 2), true),
            ((2, 2), false),
            ((1, 3), true),
            ((10, 1), false),
            ((4, 2), true),
        ];
        for ((index, term), expected) in cases {
            assert_eq!(
                log.is_up_to_date(index, term),
                expected,
                "({index}, {term})"
            );
        }
    }

    #[test]
    fn entries_range_is_clamped() {
        let log = log_with_terms((5, 1), &[1, 2, 3]);
        let got: Vec<u64> = log.entries(0, 100).map(|e| e.index).collect();
        assert_eq!(got, vec![6, 7, 8]);
        let got: Vec<u64> = log.entries(7, 7).map(|e| e.index).collect();
        assert_eq!(got, vec![7]);
        assert_eq!(log.entries(9, 20).count(), 0);
    }

    #[test]
    fn conflict_search_skips_whole_terms() {
        // Leader's log: terms 1 1 1 4 4 5 5 6 6 6 (Figure 7's leader)
        let log = log_with_terms((0, 0), &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
        let cases = [
            // (index, term) -> (index, term)
            ((10, 6), (10, 6)),
            ((10, 3), (3, 1)),
            ((6, 4), (5, 4)),
            ((20, 5), (7, 5)),
            ((10, 0), (0, 0)),
        ];
        for ((index, term), expected) in cases {
            assert_eq!(
                log.find_conflict_by_term(index, term),
                Some(expected),
                "({index}, {term})"
            );
        }
        let compacted = log_with_terms((5, 4), &[5, 5, 6]);
        assert_eq!(compacted.find_conflict_by_term(8, 5), Some((7, 5)));
        assert_eq!(compacted.find_conflict_by_term(8, 4), Some((5, 4)));
        assert_eq!(
            compacted.find_conflict_by_term(8, 2),
            None,
            "below the snapshot: unknown"
        );
        assert_eq!(
            compacted.find_conflict_by_term(3, 9),
            None,
            "inside the compacted prefix"
        );
    }

    #[test]
    fn install_snapshot_keeps_matching_suffix() {
        let mut log = log_with_terms((0, 0), &[1, 1, 2, 2]);
        log.install_snapshot(SnapshotMeta {
            index: 2,
            term: 1,
            membership: Membership::default(),
        });
        assert_eq!(
            (log.first_index(), log.last_index(), log.commit()),
            (3, 4, 2)
        );
        let mut log = log_with_terms((0, 0), &[1, 1, 2, 2]);
        log.install_snapshot(SnapshotMeta {
            index: 3,
            term: 3,
            membership: Membership::default(),
        });
        assert_eq!(
            (log.first_index(), log.last_index(), log.applied()),
            (4, 3, 3)
        );
    }

    #[test]
    fn truncate_and_commit() {
        let mut log = log_with_terms((0, 0), &[1, 1, 1, 1]);
        assert!(log.commit_to(2));
        assert!(!log.commit_to(1));
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        assert!(!log.commit_to(10), "commit never passes the last index");
        assert_eq!(log.commit(), 2);
    }
}
