//! An append-only list whose clones share what it held before: the
//! simulators' client histories, so that a fork of a long run (the page's
//! timeline checkpoints) costs the newest few operations, not all of them.
//!
//! The elements live in chunks of [`CHUNK`]; a full chunk is frozen behind
//! an [`Arc`] and shared by every clone. Changing an element of a shared
//! chunk (an operation completing after a fork) copies that chunk first,
//! so a clone never sees the other's changes.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ops::{Index, IndexMut};

/// Elements per chunk: a clone copies fewer than this many elements and one
/// pointer per full chunk.
pub const CHUNK: usize = 256;

/// An append-only list with cheap clones (see the module documentation).
/// Indexed like a slice; [`Chunked::iter`] walks it in order.
pub struct Chunked<T> {
    /// Full chunks of exactly [`CHUNK`] elements, shared by clones.
    full: Vec<Arc<Vec<T>>>,
    /// The elements after them, fewer than [`CHUNK`].
    tail: Vec<T>,
}

impl<T> Chunked<T> {
    /// An empty list.
    pub const fn new() -> Chunked<T> {
        Chunked {
            full: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.full.len() * CHUNK + self.tail.len()
    }

    /// True if it holds none.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.tail.is_empty()
    }

    /// Appends `value` at the end.
    pub fn push(&mut self, value: T) {
        if self.tail.capacity() == 0 {
            self.tail.reserve_exact(CHUNK);
        }
        self.tail.push(value);
        if self.tail.len() == CHUNK {
            self.full.push(Arc::new(core::mem::take(&mut self.tail)));
        }
    }

    /// The element at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&T> {
        match self.full.get(index / CHUNK) {
            Some(chunk) => chunk.get(index % CHUNK),
            None => self.tail.get(index - self.full.len() * CHUNK),
        }
    }

    /// The last element, if any.
    pub fn last(&self) -> Option<&T> {
        self.len().checked_sub(1).and_then(|last| self.get(last))
    }

    /// The first element, if any.
    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    /// Every element, in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            list: self,
            front: 0,
            back: self.len(),
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// The element at `index`, to change; a chunk shared with a clone is
    /// copied first.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let full = self.full.len() * CHUNK;
        match self.full.get_mut(index / CHUNK) {
            Some(chunk) => Arc::make_mut(chunk).get_mut(index % CHUNK),
            None => self.tail.get_mut(index - full),
        }
    }

    /// A copy of every element, in order.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }

    /// Every element, in order, copying only the chunks a clone shares.
    pub fn into_vec(self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.len());
        for chunk in self.full {
            all.extend(Arc::try_unwrap(chunk).unwrap_or_else(|shared| (*shared).clone()));
        }
        all.extend(self.tail);
        all
    }
}

impl<T> Clone for Chunked<T>
where
    T: Clone,
{
    /// Shares the full chunks and copies the rest.
    fn clone(&self) -> Chunked<T> {
        let mut tail = Vec::with_capacity(CHUNK);
        tail.extend_from_slice(&self.tail);
        Chunked {
            full: self.full.clone(),
            tail,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Chunked<T> {
    fn eq(&self, other: &Chunked<T>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for Chunked<T> {}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        let len = self.len();
        self.get(index)
            .unwrap_or_else(|| panic!("index {index} out of a list of {len}"))
    }
}

impl<T: Clone> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len();
        self.get_mut(index)
            .unwrap_or_else(|| panic!("index {index} out of a list of {len}"))
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Chunked<T> {
        let mut list = Chunked::new();
        for value in iter {
            list.push(value);
        }
        list
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The elements of a [`Chunked`], in order (from either end).
#[derive(Clone, Debug)]
pub struct Iter<'a, T> {
    list: &'a Chunked<T>,
    /// The next index from the front.
    front: usize,
    /// One past the next index from the back.
    back: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        if self.front == self.back {
            return None;
        }
        self.front += 1;
        self.list.get(self.front - 1)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.back - self.front;
        (left, Some(left))
    }

    fn nth(&mut self, n: usize) -> Option<&'a T> {
        self.front = self.front.saturating_add(n).min(self.back);
        self.next()
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        self.list.get(self.back)
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> core::iter::FusedIterator for Iter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn list(n: usize) -> Chunked<usize> {
        (0..n).collect()
    }

    #[test]
    fn holds_what_was_pushed_in_order_across_chunks() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let list = list(n);
            assert_eq!(list.len(), n);
            assert_eq!(list.is_empty(), n == 0);
            assert_eq!(list.to_vec(), (0..n).collect::<Vec<_>>());
            assert_eq!(list.clone().into_vec(), (0..n).collect::<Vec<_>>());
            assert_eq!(
                list.iter().rev().copied().collect::<Vec<_>>(),
                (0..n).rev().collect::<Vec<_>>()
            );
            assert_eq!(list.iter().len(), n);
            assert_eq!(list.last(), n.checked_sub(1).as_ref());
            assert_eq!(list.get(n), None);
            for i in (0..n).step_by(37) {
                assert_eq!(list[i], i);
                assert_eq!(list.iter().nth(i), Some(&i));
            }
        }
    }

    #[test]
    fn a_clone_shares_full_chunks_and_never_sees_the_others_changes() {
        let mut original = list(2 * CHUNK + 10);
        let mut fork = original.clone();
        assert!(Arc::ptr_eq(&original.full[0], &fork.full[0]));
        assert_eq!(original, fork);

        // A change to a shared chunk copies it, on either side.
        original[3] = 1_000;
        fork[CHUNK + 3] = 2_000;
        fork[2 * CHUNK + 1] = 3_000;
        fork.push(4_000);
        assert_eq!(original[3], 1_000);
        assert_eq!(fork[3], 3);
        assert_eq!(original[CHUNK + 3], CHUNK + 3);
        assert_eq!(fork[CHUNK + 3], 2_000);
        assert_eq!(original[2 * CHUNK + 1], 2 * CHUNK + 1);
        assert_eq!(original.len(), 2 * CHUNK + 10);
        assert_eq!(fork.len(), 2 * CHUNK + 11);
        assert_ne!(original, fork);
        // Only the changed chunks were copied.
        assert!(!Arc::ptr_eq(&original.full[0], &fork.full[0]));
        assert!(!Arc::ptr_eq(&original.full[1], &fork.full[1]));
        let mut again = original.clone();
        again.push(5);
        assert!(Arc::ptr_eq(&original.full[1], &again.full[1]));
    }

    #[test]
    fn out_of_range_is_none_or_a_clear_panic() {
        let mut list = list(CHUNK + 2);
        assert_eq!(list.get(CHUNK + 2), None);
        assert_eq!(list.get_mut(usize::MAX), None);
        let text = std::panic::catch_unwind(|| list[CHUNK + 2])
            .expect_err("out of range")
            .downcast::<alloc::string::String>()
            .expect("a message");
        assert_eq!(
            *text,
            alloc::format!("index {} out of a list of {}", CHUNK + 2, CHUNK + 2)
        );
        let empty: Chunked<u8> = Chunked::default();
        assert_eq!(
            (empty.first(), empty.last(), empty.iter().next()),
            (None, None, None)
        );
        assert_eq!(
            alloc::format!("{:?}", Chunked::from_iter(vec![1, 2])),
            "[1, 2]"
        );
    }

    /// What can be done to one of several lists forked from each other.
    #[derive(Clone, Debug)]
    enum Op {
        Push(usize, u32),
        Set(usize, usize, u32),
        Fork(usize),
        Drop(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (any::<usize>(), any::<u32>()).prop_map(|(l, v)| Op::Push(l, v)),
            3 => (any::<usize>(), any::<usize>(), any::<u32>()).prop_map(|(l, i, v)| Op::Set(l, i, v)),
            1 => any::<usize>().prop_map(Op::Fork),
            1 => any::<usize>().prop_map(Op::Drop),
        ]
    }

    proptest::proptest! {
        /// Lists forked from each other, pushed to and changed in any
        /// order, each hold what a plain vector given the same calls holds.
        #[test]
        fn forks_behave_as_independent_vectors(ops in proptest::collection::vec(op(), 1..600)) {
            let mut lists: Vec<(Chunked<u32>, Vec<u32>)> = vec![(Chunked::new(), Vec::new())];
            for op in ops {
                let n = lists.len();
                match op {
                    Op::Push(l, v) => {
                        // Long runs of pushes, so chunks fill and freeze.
                        let (list, model) = &mut lists[l % n];
                        for k in 0..(v % 97) {
                            list.push(v.wrapping_add(k));
                            model.push(v.wrapping_add(k));
                        }
                    }
                    Op::Set(l, i, v) => {
                        let (list, model) = &mut lists[l % n];
                        if !model.is_empty() {
                            let i = i % model.len();
                            list[i] = v;
                            model[i] = v;
                        }
                    }
                    Op::Fork(l) => {
                        let copy = lists[l % n].clone();
                        lists.push(copy);
                    }
                    Op::Drop(l) => {
                        if n > 1 {
                            lists.swap_remove(l % n);
                        }
                    }
                }
                for (list, model) in &lists {
                    proptest::prop_assert_eq!(list.len(), model.len());
                    proptest::prop_assert_eq!(list.last(), model.last());
                }
            }
            for (list, model) in lists {
                proptest::prop_assert!(list.iter().eq(model.iter()));
                proptest::prop_assert!(list.iter().rev().eq(model.iter().rev()));
                proptest::prop_assert_eq!(list.into_vec(), model);
            }
        }
    }
}
