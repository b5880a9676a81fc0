//! The search for one key: Wing & Gong's algorithm with Lowe's memo, as in
//! Porcupine.
//!
//! Every operation has a call entry (at its invocation) and, if it completed,
//! a return entry (at its completion) in one time-ordered list. An operation
//! can be linearized next exactly when its call entry comes before the first
//! return entry still in the list: every operation that returned earlier is
//! already linearized. The search linearizes such an operation if the model
//! allows it, lifts its entries out of the list and starts again from the
//! head; when it meets a return entry instead, no extension exists and it
//! backtracks. A configuration (linearized set, state) met twice is skipped
//! the second time, which is what makes the search practical.
//!
//! On a key written by many clients at once, plain WGL tries every order of
//! the concurrent writes before a read rules them out. Three sound reductions
//! keep that in check:
//!
//! - a `Get` that reads the current state is linearized at once and alone
//!   (see [`Search::start_of_node`]);
//! - a lookahead abandons a branch as soon as a pending read can no longer be
//!   satisfied ([`Search::unsatisfiable_read`]);
//! - a write is not linearized while a write that must come after it would
//!   hide it from a read that only it can explain
//!   ([`Search::cuts_off_its_readers`]).
//!
//! The lookahead also follows the appends a read's value still needs: when
//! the bytes after a candidate's value can only be the suffixes of certain
//! appends, in order, those appends must still be to come
//! ([`Search::growth`]).
//!
//! The last two can blame a write rather than the read a person would blame,
//! so a violation's report comes from a second search without them
//! ([`Pruning::ForReport`]). With all of them, a key with up to about eight
//! clients whose operations overlap heavily checks in linear time; beyond a
//! dozen such clients on a single key the search can exhaust its budget.
//!
//! Operations with an unknown outcome have no return entry: they may take
//! effect at any moment after their call, or never, so the search succeeds as
//! soon as every completed operation is linearized. Two sound reductions keep
//! them cheap:
//!
//! - completed candidates are tried before unknown ones, so a history in which
//!   unknown writes never took effect is usually decided without them;
//! - an unknown operation is never directly followed by a `Put` or `Delete`:
//!   the overwrite would hide its effect, and the same linearization without
//!   the unknown operation is explored anyway. (Whether the last linearized
//!   operation is unknown is part of the memo's configuration for this reason.)

use alloc::vec::Vec;
use hashbrown::HashTable;

mod pruning;

use pruning::{Appender, ForcedStep, Growth, latest_sole_readers, suffix_hash};

use super::values::{ValueId, Values};
use super::visited::{LinearizedSet, Visited};
use crate::check::history::{OpKind, Operation};

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;

/// What an operation does to the model state.
#[derive(Clone, Copy, Debug)]
enum Effect<'a> {
    /// Set the value (a `Put`).
    Set(ValueId),
    /// Append these bytes.
    Append(&'a [u8]),
    /// Remove the key.
    Delete,
    /// A completed `Get`: allowed only if the state is `expected`, which holds
    /// `bytes` (`None`: missing).
    Read {
        expected: ValueId,
        bytes: Option<&'a [u8]>,
    },
}

impl Effect<'_> {
    fn is_overwrite(self) -> bool {
        matches!(self, Effect::Set(_) | Effect::Delete)
    }
}

#[derive(Clone, Copy, Debug)]
struct ListEntry {
    /// Index of the operation in the key's operations.
    operation: u32,
    is_return: bool,
    /// For a call entry: its operation's return entry, or `NONE` if the
    /// outcome is unknown.
    return_entry: u32,
    previous: u32,
    /// `NONE` at the end of the list.
    next: u32,
}

/// How hard the search prunes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pruning {
    /// Every sound reduction, including the two lookaheads
    /// ([`Search::unsatisfiable_read`], [`Search::cuts_off_its_readers`]).
    /// Fastest, but a dead end it finds early makes a poor report: the
    /// lookaheads blame an operation before the one a person would.
    Full,
    /// Without the lookaheads: slower, but a violation is reported at the
    /// operation that actually fails (a stale read rather than the write it
    /// should have seen).
    ForReport,
}

/// Which candidates the search is trying at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Only this `Get`, which reads the current state: if linearizing it
    /// leads nowhere, nothing else at this node can (see [`Search::start_of_node`]).
    Forced,
    /// Completed operations, in list order.
    Completed,
    /// Operations with an unknown outcome, in list order.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    call_entry: u32,
    previous_state: ValueId,
    phase: Phase,
}

/// How the search of one key ended.
#[derive(Debug)]
pub(super) enum KeyVerdict {
    /// One valid linearization, as indices into the key's operations.
    Linearizable { order: Vec<u32> },
    /// No linearization exists. The longest linearizable prefix the search
    /// found, the completed operation it could not then include, and the
    /// value after the prefix.
    NotLinearizable {
        prefix: Vec<u32>,
        blocked: u32,
        value_after_prefix: Option<Vec<u8>>,
    },
    /// The step budget ran out.
    GaveUp,
}

/// The search state for one key.
struct Search<'a> {
    values: Values<'a>,
    effects: Vec<Effect<'a>>,
    is_completed: Vec<bool>,
    invoked_at: Vec<u64>,
    completed_at: Vec<Option<u64>>,
    /// For a write: the latest invocation of a completed `Get` that only this
    /// write can have been the last write before (see [`Search::cuts_off_its_readers`]).
    latest_sole_reader: Vec<Option<u64>>,
    pruning: Pruning,
    /// Memo of [`Search::growth`]: `(hash, base, read, answer)`.
    growth: HashTable<(u64, ValueId, u32, Growth)>,
    /// The appends each [`Growth::Unless`] in `growth` needs still to come.
    forced_appends: Vec<u32>,
    /// Every non-empty append suffix of the key, by [`suffix_hash`].
    appenders: HashTable<Appender<'a>>,
    /// The lengths of those suffixes, ascending, each once.
    suffix_lengths: Vec<usize>,
    /// Memo of [`Search::forced_step`]: `(hash, read, byte offset, step)`.
    forced: HashTable<(u64, u32, usize, ForcedStep)>,
    /// `entries[HEAD]` is a sentinel; the others are call and return entries
    /// in time order, calls before returns at equal times (so operations
    /// whose intervals touch count as concurrent).
    entries: Vec<ListEntry>,
}

impl<'a> Search<'a> {
    fn new(operations: &[&'a Operation], pruning: Pruning) -> Search<'a> {
        let count = u32::try_from(operations.len()).expect("fewer than 2^32 operations per key");
        let mut values = Values::new();
        let mut effects = Vec::with_capacity(operations.len());
        let mut is_completed = Vec::with_capacity(operations.len());
        let mut events = Vec::with_capacity(operations.len() * 2);
        for (index, operation) in (0..count).zip(operations) {
            let effect = match &operation.kind {
                OpKind::Put(value) => Effect::Set(values.intern_literal(value)),
                OpKind::Append(suffix) => Effect::Append(suffix),
                OpKind::Delete => Effect::Delete,
                OpKind::Get => match operation.value_read() {
                    Some(Some(value)) => Effect::Read {
                        expected: values.intern_literal(value),
                        bytes: Some(value),
                    },
                    Some(None) => Effect::Read {
                        expected: ValueId::MISSING,
                        bytes: None,
                    },
                    None => unreachable!("invariant: Gets with an unknown outcome are left out"),
                },
            };
            effects.push(effect);
            is_completed.push(operation.is_completed());
            events.push((operation.invoked_at, false, index));
            if let Some(completed_at) = operation.completed_at() {
                events.push((completed_at, true, index));
            }
        }
        // `false < true`: calls before returns at equal times.
        events.sort_unstable();
        let mut appenders: HashTable<Appender<'a>> = HashTable::new();
        for (index, effect) in (0..count).zip(&effects) {
            if let Effect::Append(suffix) = *effect
                && !suffix.is_empty()
            {
                let hash = suffix_hash(suffix);
                match appenders.find_mut(hash, |known| known.suffix == suffix) {
                    Some(known) => (known.writers, known.last) = (known.writers + 1, index),
                    None => {
                        let appender = Appender {
                            hash,
                            suffix,
                            writers: 1,
                            last: index,
                        };
                        appenders.insert_unique(hash, appender, |known| known.hash);
                    }
                }
            }
        }
        let mut suffix_lengths: Vec<usize> = appenders
            .iter()
            .map(|appender| appender.suffix.len())
            .collect();
        suffix_lengths.sort_unstable();
        suffix_lengths.dedup();

        let mut entries = Vec::with_capacity(events.len() + 1);
        entries.push(ListEntry {
            operation: NONE,
            is_return: false,
            return_entry: NONE,
            previous: NONE,
            next: if events.is_empty() { NONE } else { 1 },
        });
        let mut return_entries = alloc::vec![NONE; operations.len()];
        let last = events.len() as u32;
        for (position, &(_, is_return, operation)) in (1..).zip(&events) {
            if is_return {
                return_entries[operation as usize] = position;
            }
            entries.push(ListEntry {
                operation,
                is_return,
                return_entry: NONE,
                previous: position - 1,
                next: if position == last { NONE } else { position + 1 },
            });
        }
        for entry in &mut entries[1..] {
            if !entry.is_return {
                entry.return_entry = return_entries[entry.operation as usize];
            }
        }
        Search {
            values,
            effects,
            is_completed,
            invoked_at: operations
                .iter()
                .map(|operation| operation.invoked_at)
                .collect(),
            completed_at: operations
                .iter()
                .map(|operation| operation.completed_at())
                .collect(),
            latest_sole_reader: match pruning {
                Pruning::Full => latest_sole_readers(operations),
                Pruning::ForReport => alloc::vec![None; operations.len()],
            },
            pruning,
            growth: HashTable::new(),
            forced_appends: Vec::new(),
            appenders,
            suffix_lengths,
            forced: HashTable::new(),
            entries,
        }
    }

    fn unlink(&mut self, entry: u32) {
        let ListEntry { previous, next, .. } = self.entries[entry as usize];
        self.entries[previous as usize].next = next;
        if next != NONE {
            self.entries[next as usize].previous = previous;
        }
    }

    /// Puts back an entry unlinked last (dancing links: its own `previous`
    /// and `next` still name its old neighbours).
    fn relink(&mut self, entry: u32) {
        let ListEntry { previous, next, .. } = self.entries[entry as usize];
        self.entries[previous as usize].next = entry;
        if next != NONE {
            self.entries[next as usize].previous = entry;
        }
    }

    fn lift(&mut self, call_entry: u32) {
        self.unlink(call_entry);
        let return_entry = self.entries[call_entry as usize].return_entry;
        if return_entry != NONE {
            self.unlink(return_entry);
        }
    }

    fn unlift(&mut self, call_entry: u32) {
        let return_entry = self.entries[call_entry as usize].return_entry;
        if return_entry != NONE {
            self.relink(return_entry);
        }
        self.relink(call_entry);
    }

    /// The state after `operation`, or `None` if the model forbids it here.
    fn apply(&mut self, state: ValueId, operation: u32) -> Option<ValueId> {
        if self.cuts_off_its_readers(operation) {
            return None;
        }
        match self.effects[operation as usize] {
            Effect::Set(value) => Some(value),
            Effect::Delete => Some(ValueId::MISSING),
            Effect::Append(suffix) => Some(self.values.append(state, operation, suffix)),
            Effect::Read { expected, .. } => (state == expected).then_some(state),
        }
    }

    /// Where the scan of a node starts: straight at a dead end that the
    /// lookahead found (met in the last phase, it backtracks), or at a `Get`
    /// that reads `state` (the only candidate worth trying), or at the head.
    ///
    /// Reads go first and alone: if any linearization continues from here, one
    /// continues with a candidate `Get` that reads the current state. Move that
    /// `Get` to the front: it reads the same value, nothing else sees a
    /// different state, and no real-time order breaks, since no operation
    /// still to linearize completed before a candidate was invoked. (If that
    /// leaves an unknown operation directly before an overwrite, drop it, as
    /// in the normal form below.)
    fn start_of_node(&mut self, state: ValueId, linearized: &LinearizedSet) -> (u32, Phase) {
        if let Some(dead_end) = self.unsatisfiable_read(state, linearized) {
            return (dead_end, Phase::Unknown);
        }
        let mut entry = self.entries[HEAD as usize].next;
        while entry != NONE {
            let current = self.entries[entry as usize];
            if current.is_return {
                break;
            }
            if let Effect::Read { expected, .. } = self.effects[current.operation as usize] {
                if expected == state {
                    return (entry, Phase::Forced);
                }
            }
            entry = current.next;
        }
        (self.entries[HEAD as usize].next, Phase::Completed)
    }
}

/// Searches for a linearization of one key's operations, which must all be
/// completed or be writes, counting each step in `steps` and giving up once
/// `steps` reaches `max_steps`.
pub(super) fn search_key(
    operations: &[&Operation],
    pruning: Pruning,
    steps: &mut u64,
    max_steps: u64,
) -> KeyVerdict {
    let mut search = Search::new(operations, pruning);
    let mut remaining_completed = search.is_completed.iter().filter(|&&done| done).count();
    let mut remaining_unknown = operations.len() - remaining_completed;
    if remaining_completed == 0 {
        return KeyVerdict::Linearizable { order: Vec::new() };
    }
    let mut linearized = LinearizedSet::new(operations.len());
    let mut visited = Visited::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut state = ValueId::MISSING;
    let mut after_unknown = false;

    // The longest prefix met at a dead end, kept incrementally: `best[..shared]`
    // equals the operations of `stack[..shared]`.
    let mut best: Vec<u32> = Vec::new();
    let mut shared = 0;
    let mut best_blocked = NONE;
    let mut best_state = ValueId::MISSING;

    let (mut entry, mut phase) = search.start_of_node(state, &linearized);
    loop {
        if *steps >= max_steps {
            return KeyVerdict::GaveUp;
        }
        *steps += 1;
        // Invariant: while a completed operation is not linearized, its return
        // entry is in the list, so the scan meets it before the end.
        let current = search.entries[entry as usize];
        if !current.is_return {
            let operation = current.operation;
            let completed = search.is_completed[operation as usize];
            let effect = search.effects[operation as usize];
            let eligible = match phase {
                Phase::Forced => true,
                Phase::Completed => completed,
                Phase::Unknown => !completed,
            } && !(after_unknown && effect.is_overwrite());
            if eligible {
                if let Some(next_state) = search.apply(state, operation) {
                    linearized.insert(operation as usize);
                    if visited.insert(&linearized, next_state, u8::from(!completed)) {
                        stack.push(Frame {
                            call_entry: entry,
                            previous_state: state,
                            phase,
                        });
                        state = next_state;
                        after_unknown = !completed;
                        search.lift(entry);
                        if completed {
                            remaining_completed -= 1;
                            if remaining_completed == 0 {
                                let order = stack
                                    .iter()
                                    .map(|frame| {
                                        search.entries[frame.call_entry as usize].operation
                                    })
                                    .collect();
                                return KeyVerdict::Linearizable { order };
                            }
                        } else {
                            remaining_unknown -= 1;
                        }
                        (entry, phase) = search.start_of_node(state, &linearized);
                        continue;
                    }
                    linearized.remove(operation as usize);
                }
            }
            if phase != Phase::Forced {
                entry = current.next;
                continue;
            }
            // The forced `Get` leads to a configuration already explored: this
            // node is a dead end too.
        } else if phase == Phase::Completed && remaining_unknown > 0 {
            // Every completed candidate was tried: now the unknown ones.
            phase = Phase::Unknown;
            entry = search.entries[HEAD as usize].next;
            continue;
        }

        // A dead end: every candidate was tried, or the lookahead showed that
        // none can succeed, or the forced read failed.
        if best_blocked == NONE || stack.len() > best.len() {
            best.truncate(shared);
            best.extend(
                stack[shared..]
                    .iter()
                    .map(|frame| search.entries[frame.call_entry as usize].operation),
            );
            shared = stack.len();
            best_blocked = current.operation;
            best_state = state;
        }
        // Backtrack, through every node whose only choice was a forced read.
        loop {
            let Some(frame) = stack.pop() else {
                return KeyVerdict::NotLinearizable {
                    prefix: best,
                    blocked: best_blocked,
                    value_after_prefix: search.values.bytes(best_state),
                };
            };
            shared = shared.min(stack.len());
            let operation = search.entries[frame.call_entry as usize].operation;
            linearized.remove(operation as usize);
            search.unlift(frame.call_entry);
            if search.is_completed[operation as usize] {
                remaining_completed += 1;
            } else {
                remaining_unknown += 1;
            }
            state = frame.previous_state;
            after_unknown = stack.last().is_some_and(|below| {
                let below_operation = search.entries[below.call_entry as usize].operation;
                !search.is_completed[below_operation as usize]
            });
            if frame.phase != Phase::Forced {
                entry = search.entries[frame.call_entry as usize].next;
                phase = frame.phase;
                break;
            }
        }
    }
}
