//! The set of operations linearized so far, and the memo of search
//! configurations already explored.
//!
//! The search linearizes operations roughly in invocation order, so its set of
//! linearized operations is almost always "every operation up to some index,
//! plus a few after it". The memo stores exactly that shape: the number of
//! leading full words, then the words up to the last non-zero one. This is a
//! canonical form (two sets are equal if and only if their forms are), and
//! its size follows the concurrency of the history rather than its length.

use alloc::vec::Vec;
use hashbrown::HashTable;

use super::values::{ValueId, mix};

/// A set of operation indices, with an incrementally maintained hash.
#[derive(Clone, Debug)]
pub(super) struct LinearizedSet {
    words: Vec<u64>,
    /// Invariant: `words[..full_words]` are all ones, and
    /// `words[full_words]` (if any) is not.
    full_words: usize,
    /// Invariant: `words[end_words..]` are all zero, and
    /// `words[end_words - 1]` (if any) is not.
    end_words: usize,
    /// XOR of [`element_hash`] over the members.
    hash: u64,
}

/// A random-looking 64-bit value per index (Zobrist hashing).
fn element_hash(index: usize) -> u64 {
    mix((index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15))
}

impl LinearizedSet {
    /// An empty set of indices below `capacity`.
    pub(super) fn new(capacity: usize) -> LinearizedSet {
        LinearizedSet {
            words: alloc::vec![0; capacity.div_ceil(64)],
            full_words: 0,
            end_words: 0,
            hash: 0,
        }
    }

    /// Adds `index`, which must not be a member.
    pub(super) fn insert(&mut self, index: usize) {
        let word = index / 64;
        let bit = 1u64 << (index % 64);
        debug_assert_eq!(self.words[word] & bit, 0, "inserting a member");
        self.words[word] |= bit;
        self.hash ^= element_hash(index);
        self.end_words = self.end_words.max(word + 1);
        while self.full_words < self.words.len() && self.words[self.full_words] == u64::MAX {
            self.full_words += 1;
        }
    }

    /// True if `index` is a member.
    pub(super) fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1u64 << (index % 64)) != 0
    }

    /// Removes `index`, which must be a member.
    pub(super) fn remove(&mut self, index: usize) {
        let word = index / 64;
        let bit = 1u64 << (index % 64);
        debug_assert_ne!(self.words[word] & bit, 0, "removing a non-member");
        self.words[word] &= !bit;
        self.hash ^= element_hash(index);
        self.full_words = self.full_words.min(word);
        while self.end_words > 0 && self.words[self.end_words - 1] == 0 {
            self.end_words -= 1;
        }
    }

    /// The words after the leading full ones, up to the last non-zero one.
    fn window(&self) -> &[u64] {
        &self.words[self.full_words..self.end_words.max(self.full_words)]
    }
}

#[derive(Clone, Copy, Debug)]
struct Configuration {
    hash: u64,
    state: ValueId,
    /// The search's extra context (see [`Visited::insert`]).
    context: u8,
    full_words: usize,
    window_start: usize,
    window_len: usize,
}

/// Configurations `(linearized set, state, context)` the search has reached.
#[derive(Debug, Default)]
pub(super) struct Visited {
    configurations: HashTable<Configuration>,
    /// The windows of all configurations, end to end.
    windows: Vec<u64>,
}

impl Visited {
    /// Records a configuration; false if it was already recorded.
    ///
    /// `context` is whatever else, beyond the set and the state, decides
    /// which continuations the search explores from there.
    pub(super) fn insert(&mut self, set: &LinearizedSet, state: ValueId, context: u8) -> bool {
        let hash = mix(set.hash ^ mix(state.as_u64() ^ (u64::from(context) << 40)));
        let window = set.window();
        let windows = &self.windows;
        let found = self.configurations.find(hash, |configuration| {
            configuration.hash == hash
                && configuration.state == state
                && configuration.context == context
                && configuration.full_words == set.full_words
                && windows[configuration.window_start..][..configuration.window_len] == *window
        });
        if found.is_some() {
            return false;
        }
        let window_start = self.windows.len();
        self.windows.extend_from_slice(window);
        self.configurations.insert_unique(
            hash,
            Configuration {
                hash,
                state,
                context,
                full_words: set.full_words,
                window_start,
                window_len: window.len(),
            },
            |configuration| configuration.hash,
        );
        true
    }

    /// How many configurations are recorded.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.configurations.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_are_recognised_whatever_the_insertion_order() {
        let mut visited = Visited::default();
        let mut forward = LinearizedSet::new(200);
        for index in 0..130 {
            forward.insert(index);
        }
        forward.insert(150);
        let mut backward = LinearizedSet::new(200);
        backward.insert(150);
        for index in (0..131).rev() {
            backward.insert(index);
        }
        backward.remove(130);
        assert_eq!(forward.full_words, 2);
        assert_eq!(forward.window(), backward.window());

        assert!(visited.insert(&forward, ValueId::MISSING, 0));
        assert!(
            !visited.insert(&backward, ValueId::MISSING, 0),
            "same set, same state"
        );
        assert!(
            visited.insert(&backward, ValueId::MISSING, 1),
            "other context"
        );
        backward.remove(150);
        assert!(visited.insert(&backward, ValueId::MISSING, 0), "other set");
        backward.insert(150);
        assert!(!visited.insert(&backward, ValueId::MISSING, 0));
        assert_eq!(visited.len(), 3);
    }

    #[test]
    fn removing_keeps_the_canonical_form() {
        let mut set = LinearizedSet::new(128);
        for index in 0..128 {
            set.insert(index);
        }
        assert_eq!((set.full_words, set.end_words), (2, 2));
        assert!(set.window().is_empty());
        set.remove(3);
        assert_eq!((set.full_words, set.end_words), (0, 2));
        for index in 4..128 {
            set.remove(index);
        }
        assert_eq!((set.full_words, set.end_words), (0, 1));
        assert_eq!(set.window(), &[0b111]);
        for index in 0..3 {
            set.remove(index);
        }
        assert_eq!((set.full_words, set.end_words, set.hash), (0, 0, 0));
    }
}
