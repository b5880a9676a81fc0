//! The search's sound reductions (see the parent module): a write is not
//! linearized while it would cut a read off from the only write that
//! explains it, and a lookahead abandons a branch once a pending read can
//! no longer be satisfied.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{Effect, HEAD, NONE, Pruning, Search};
use crate::check::history::{OpKind, Operation};
use crate::check::linearizability::values::{ValueId, mix};
use crate::check::linearizability::visited::LinearizedSet;
use crate::hash::Fnv;

/// The operations that append one suffix.
#[derive(Clone, Copy, Debug)]
pub(super) struct Appender<'a> {
    /// [`suffix_hash`] of `suffix`.
    pub(super) hash: u64,
    pub(super) suffix: &'a [u8],
    /// How many operations append it.
    pub(super) writers: u32,
    /// The last of them.
    pub(super) last: u32,
}

/// The hash of an append suffix in [`Search::appenders`]: FNV-1a, so that
/// the suffixes of every length at one offset hash in one pass.
pub(super) fn suffix_hash(suffix: &[u8]) -> u64 {
    mix(Fnv::new().write(suffix).finish())
}

/// What must come next when a `Get`'s value is built by appends from a byte
/// offset on (see [`Search::forced_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ForcedStep {
    /// The value ends here.
    End,
    /// No append's suffix comes next in the value: appends cannot build it.
    Impossible,
    /// Only this append can come next, and the value goes on at `next`.
    Append { operation: u32, next: usize },
    /// Several appends could come next: nothing is forced from here on.
    Open,
}

/// What [`Search::growth`] found for a base value and a `Get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Growth {
    /// Appends cannot turn the base into the value read.
    Never,
    /// They can, unless one of the appends `forced_appends[start..start + len]`
    /// (which must all come after the base) is linearized already.
    Unless { start: u32, len: u8 },
}

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
    pub(super) fn unsatisfiable_read(
        &mut self,
        state: ValueId,
        linearized: &LinearizedSet,
    ) -> Option<u32> {
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
                    let read = current.operation;
                    let reachable = (state_is_candidate
                        && self.can_still_grow_into(state, read, bytes, linearized))
                        || puts[..put_count]
                            .iter()
                            .any(|&put| self.can_still_grow_into(put, read, bytes, linearized));
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

    /// True if appends not yet linearized can still turn `base` into `target`,
    /// the value the `Get` `read` read: `target` starts with `base`, and the
    /// appends the rest forces are all still to come (see
    /// [`Search::growth`]).
    fn can_still_grow_into(
        &mut self,
        base: ValueId,
        read: u32,
        target: Option<&[u8]>,
        linearized: &LinearizedSet,
    ) -> bool {
        match self.growth(base, read, target) {
            Growth::Never => false,
            Growth::Unless { start, len } => self.forced_appends
                [start as usize..start as usize + len as usize]
                .iter()
                .all(|&operation| !linearized.contains(operation as usize)),
        }
    }

    /// Whether appends can turn `base` into `target` (the value the `Get`
    /// `read` read), and which appends must then still be to come; memoized
    /// per base and `Get`, so that a node pays one lookup and a few bit tests.
    ///
    /// Between the base (the current state, or a `Put` not yet linearized)
    /// and the `Get`, only appends change the value, so the bytes after the
    /// base are their suffixes end to end, and each of those appends comes
    /// after the base: it is not linearized yet. Where exactly one
    /// operation's suffix fits at an offset, that append is forced; the walk
    /// follows forced appends until the value ends, or more than one fits
    /// (nothing more is forced), or none does (appends cannot build it), or a
    /// forced append was invoked after the `Get` returned, or it has
    /// followed a few.
    fn growth(&mut self, base: ValueId, read: u32, target: Option<&[u8]>) -> Growth {
        /// How many forced appends to follow, so a node costs a bounded
        /// amount of work: an append spent too early is usually among the
        /// first a read still needs.
        const MAX_FORCED: usize = 8;
        let hash = mix(base.as_u64() ^ (u64::from(read) << 32));
        if let Some(&(_, _, _, answer)) =
            self.growth.find(hash, |&(_, known_base, known_read, _)| {
                known_base == base && known_read == read
            })
        {
            return answer;
        }
        let start = self.forced_appends.len() as u32;
        let mut answer = Growth::Unless { start, len: 0 };
        if !self.values.can_grow_into(base, target) {
            answer = Growth::Never;
        } else if let Some(target) = target {
            let mut from = self.values.len(base);
            for len in 0..MAX_FORCED as u8 {
                match self.forced_step(read, target, from) {
                    ForcedStep::End | ForcedStep::Open => break,
                    ForcedStep::Impossible => {
                        answer = Growth::Never;
                        break;
                    }
                    ForcedStep::Append { operation, next } => {
                        self.forced_appends.push(operation);
                        answer = Growth::Unless {
                            start,
                            len: len + 1,
                        };
                        from = next;
                    }
                }
            }
            if answer == Growth::Never {
                self.forced_appends.truncate(start as usize);
            }
        }
        self.growth
            .insert_unique(hash, (hash, base, read, answer), |&(hash, ..)| hash);
        answer
    }

    /// What must come at byte `from` of `target`, the value the `Get` `read`
    /// read, if appends build it from there; memoized per `Get` and offset.
    fn forced_step(&mut self, read: u32, target: &[u8], from: usize) -> ForcedStep {
        let hash = mix((from as u64) ^ (u64::from(read) << 40) ^ 0xF0_4CED);
        if let Some(&(_, _, _, step)) = self.forced.find(hash, |&(_, known_read, known_from, _)| {
            known_read == read && known_from == from
        }) {
            return step;
        }
        let step = if from >= target.len() {
            ForcedStep::End
        } else {
            let mut fitting = 0;
            let mut fits = None;
            let mut hasher = Fnv::new();
            let mut hashed = from;
            for &length in self
                .suffix_lengths
                .iter()
                .take_while(|&&length| from + length <= target.len())
            {
                let end = from + length;
                hasher.write(&target[hashed..end]);
                hashed = end;
                let bytes = &target[from..end];
                if let Some(appender) = self
                    .appenders
                    .find(mix(hasher.finish()), |known| known.suffix == bytes)
                {
                    fitting += appender.writers;
                    fits = Some((appender.last, end));
                }
            }
            match fits {
                None => ForcedStep::Impossible,
                Some(_) if fitting > 1 => ForcedStep::Open,
                Some((operation, next)) => {
                    let returned = self.completed_at[read as usize];
                    if returned
                        .is_some_and(|returned| self.invoked_at[operation as usize] > returned)
                    {
                        ForcedStep::Impossible
                    } else {
                        ForcedStep::Append { operation, next }
                    }
                }
            }
        };
        self.forced
            .insert_unique(hash, (hash, read, from, step), |&(hash, ..)| hash);
        step
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
