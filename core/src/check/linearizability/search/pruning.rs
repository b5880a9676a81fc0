//! The search's sound reductions (see the parent module): a write is not
//! linearized while it would cut a read off from the only write that
//! explains it, and a lookahead abandons a branch once a pending read can
//! no longer be satisfied.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Effect, HEAD, NONE, Pruning, Search};
use crate::check::history::{OpKind, Operation};
use crate::check::linearizability::values::{ValueId, mix};

impl Search<'_> {
    /// True if linearizing the write `operation` now dooms a `Get` that only
    /// it can explain.
    ///
    /// Such a `Get` must come after the write with no write in between. A
    /// completed write not yet linearized that completed before the `Get`
    /// was invoked would have to come in between: if one exists, this write
    /// cannot come now. Without this, a long write linearized too early is
    /// only found out at its reader, after every order of the operations in
    /// between was tried.
    pub(super) fn cuts_off_its_readers(&self, operation: u32) -> bool {
        /// How far to look for the earliest pending write completion.
        const LOOKAHEAD_ENTRIES: usize = 256;
        let Some(latest_reader) = self.latest_sole_reader[operation as usize] else {
            return false;
        };
        let mut entry = self.entries[HEAD as usize].next;
        for _ in 0..LOOKAHEAD_ENTRIES {
            if entry == NONE {
                return false;
            }
            let current = self.entries[entry as usize];
            let other = current.operation as usize;
            if current.is_return
                && current.operation != operation
                && !matches!(self.effects[other], Effect::Read { .. })
            {
                // Entries are in time order: this is the earliest completion
                // of a pending write.
                return self.completed_at[other]
                    .is_some_and(|completed_at| completed_at < latest_reader);
            }
            entry = current.next;
        }
        false
    }

    /// A sound lookahead: the return entry of a completed `Get` that can no
    /// longer read what it read from `state`, if the next entries show one.
    ///
    /// Every operation linearized before a `Get` has its call entry before the
    /// `Get`'s return entry (else the `Get` completed before it was invoked).
    /// So a `Get` that read `w` reads the value left by the last overwrite
    /// before it, grown by appends; that overwrite is either already
    /// linearized (the value is `state`) or a `Put` called before the `Get`'s
    /// return entry, or a `Delete`. And `state` is out of the question for a
    /// `Get` invoked after some overwrite not yet linearized completed: that
    /// overwrite must come between. Hence the `Get` can still succeed only if
    /// appends alone can turn one of the remaining candidates into `w`. The
    /// scan stops at the first `Delete` (after which missing, so any value, is
    /// a candidate) and after a bounded number of entries.
    pub(super) fn unsatisfiable_read(&mut self, state: ValueId) -> Option<u32> {
        /// How far to look, so a node costs a bounded amount of work.
        const LOOKAHEAD_ENTRIES: usize = 128;
        const MAX_PUTS: usize = 32;
        if self.pruning != Pruning::Full {
            return None;
        }
        let mut puts = [ValueId::MISSING; MAX_PUTS];
        let mut put_count = 0;
        // The completion time of the first overwrite met that is not yet
        // linearized: entries are in time order, so the earliest.
        let mut overwrite_completed_at: Option<u64> = None;
        let mut entry = self.entries[HEAD as usize].next;
        for _ in 0..LOOKAHEAD_ENTRIES {
            if entry == NONE {
                return None;
            }
            let current = self.entries[entry as usize];
            let operation = current.operation as usize;
            match (current.is_return, self.effects[operation]) {
                (false, Effect::Delete) => return None,
                (false, Effect::Set(value)) => {
                    if put_count == MAX_PUTS {
                        return None;
                    }
                    puts[put_count] = value;
                    put_count += 1;
                }
                (true, Effect::Set(_)) => {
                    overwrite_completed_at =
                        overwrite_completed_at.or(self.completed_at[operation]);
                }
                (true, Effect::Read { bytes, .. }) => {
                    let state_is_candidate = overwrite_completed_at
                        .is_none_or(|completed_at| self.invoked_at[operation] <= completed_at);
                    let reachable = (state_is_candidate
                        && self.can_grow_into(state, current.operation, bytes))
                        || puts[..put_count]
                            .iter()
                            .any(|&put| self.can_grow_into(put, current.operation, bytes));
                    if !reachable {
                        return Some(entry);
                    }
                }
                _ => {}
            }
            entry = current.next;
        }
        None
    }

    /// [`Values::can_grow_into`](crate::check::linearizability::values::Values::can_grow_into) for the value read by `operation`, memoized:
    /// the same state meets the same reads at many nodes.
    fn can_grow_into(&mut self, base: ValueId, operation: u32, target: Option<&[u8]>) -> bool {
        let hash = mix(base.as_u64() ^ (u64::from(operation) << 32));
        if let Some(&(_, _, _, answer)) =
            self.growth
                .find(hash, |&(_, known_base, known_operation, _)| {
                    known_base == base && known_operation == operation
                })
        {
            return answer;
        }
        let answer = self.values.can_grow_into(base, target);
        self.growth
            .insert_unique(hash, (hash, base, operation, answer), |&(hash, ..)| hash);
        answer
    }
}

/// For each operation: if it is a write, the latest invocation of a completed
/// `Get` whose only possible last write is this one.
///
/// The last write before a `Get` that read `v` is a `Put` of exactly `v` or an
/// `Append` of a suffix of `v` (a `Delete` leaves nothing to read). When a
/// single write of the key qualifies, it is that write.
pub(super) fn latest_sole_readers(operations: &[&Operation]) -> Vec<Option<u64>> {
    // Writers by the bytes a read must equal (puts) or end with (appends):
    // how many, and the last one.
    let mut puts: BTreeMap<&[u8], (usize, usize)> = BTreeMap::new();
    let mut appends: BTreeMap<&[u8], (usize, usize)> = BTreeMap::new();
    for (index, operation) in operations.iter().enumerate() {
        let (writers, bytes) = match &operation.kind {
            OpKind::Put(value) => (&mut puts, value),
            OpKind::Append(suffix) => (&mut appends, suffix),
            _ => continue,
        };
        let entry = writers.entry(bytes).or_insert((0, index));
        *entry = (entry.0 + 1, index);
    }
    let mut suffix_lengths: Vec<usize> = appends.keys().map(|suffix| suffix.len()).collect();
    suffix_lengths.sort_unstable();
    suffix_lengths.dedup();

    let mut latest = alloc::vec![None; operations.len()];
    for operation in operations {
        let Some(Some(value)) = operation.value_read() else {
            continue;
        };
        let mut count = 0;
        let mut writer = 0;
        if let Some(&(writers, last)) = puts.get(value) {
            (count, writer) = (writers, last);
        }
        for &length in suffix_lengths
            .iter()
            .take_while(|&&length| length <= value.len())
        {
            if let Some(&(writers, last)) = appends.get(&value[value.len() - length..]) {
                (count, writer) = (count + writers, last);
            }
        }
        if count == 1 {
            let slot: &mut Option<u64> = &mut latest[writer];
            *slot = (*slot).max(Some(operation.invoked_at));
        }
    }
    latest
}
