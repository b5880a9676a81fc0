//! The hosted groups by id: a vector sorted by group id, with a direct
//! index from id to position when the ids are dense enough (the usual
//! case: the controller numbers groups from 1), else searched by
//! bisection. Every client request, Raft message, acknowledgement and
//! drain looks its group up (about 300 times per round of 64 writes over
//! 16 groups): a B-tree's search (or a bisection) took about 70
//! instructions there with 17 groups, the index takes a few. Groups are
//! added only when the host is built and removed only when one retires,
//! so keeping the vector sorted and the index built costs nothing per
//! step.

use super::*;

/// The groups a host holds, in id order (the B-tree map's order and API
/// subset the host uses).
#[derive(Clone, Debug)]
pub(super) struct GroupMap<V = Box<Hosted>> {
    groups: Vec<(GroupId, V)>,
    /// `index[id]` is the position of group `id` plus one (0: not held);
    /// empty when the ids are too sparse for it (see `DENSE_SLACK`).
    index: Vec<u32>,
}

/// The index is kept while the highest id is below this many slots per
/// group held plus [`DENSE_EXTRA`]: at most 32 bytes of index per group
/// (and 4 KiB for a host of few groups).
const DENSE_SLACK: usize = 8;
const DENSE_EXTRA: usize = 1024;

impl<V> GroupMap<V> {
    /// The groups of `sorted`, which is in strictly increasing id order.
    pub(super) fn from_sorted(sorted: Vec<(GroupId, V)>) -> GroupMap<V> {
        let mut map = GroupMap {
            groups: sorted,
            index: Vec::new(),
        };
        map.reindex();
        map
    }

    fn reindex(&mut self) {
        let Some(&(last, _)) = self.groups.last() else {
            self.index = Vec::new();
            return;
        };
        let limit = self.groups.len() * DENSE_SLACK + DENSE_EXTRA;
        if last >= limit as u64 {
            self.index = Vec::new();
            return;
        }
        self.index.clear();
        self.index.resize(last as usize + 1, 0);
        for (at, (group, _)) in self.groups.iter().enumerate() {
            self.index[*group as usize] = at as u32 + 1;
        }
    }

    #[inline]
    fn position(&self, group: GroupId) -> Result<usize, usize> {
        if !self.index.is_empty() {
            // `try_from`, not `as`: on a 32-bit target a large id must not
            // wrap onto a small one's slot.
            let slot = usize::try_from(group).ok().and_then(|g| self.index.get(g));
            return match slot {
                Some(&at) if at > 0 => Ok(at as usize - 1),
                // Absent: bisect for the insertion point (rare).
                _ => self.groups.binary_search_by_key(&group, |(g, _)| *g),
            };
        }
        self.groups.binary_search_by_key(&group, |(g, _)| *g)
    }

    #[inline]
    pub(super) fn get(&self, group: &GroupId) -> Option<&V> {
        let at = self.position(*group).ok()?;
        Some(&self.groups[at].1)
    }

    #[inline]
    pub(super) fn get_mut(&mut self, group: &GroupId) -> Option<&mut V> {
        let at = self.position(*group).ok()?;
        Some(&mut self.groups[at].1)
    }

    #[inline]
    pub(super) fn contains_key(&self, group: &GroupId) -> bool {
        self.position(*group).is_ok()
    }

    pub(super) fn remove(&mut self, group: &GroupId) -> Option<V> {
        let at = self.position(*group).ok()?;
        let (_, hosted) = self.groups.remove(at);
        self.reindex();
        Some(hosted)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&GroupId, &V)> {
        self.groups.iter().map(|(g, v)| (g, v))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&GroupId, &mut V)> {
        self.groups.iter_mut().map(|(g, v)| (&*g, v))
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &GroupId> {
        self.groups.iter().map(|(g, _)| g)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.groups.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::GroupMap;
    use alloc::vec::Vec;

    fn check(ids: &[u64]) {
        let mut map = GroupMap::from_sorted(ids.iter().map(|&g| (g, g.wrapping_mul(10))).collect());
        let mut held: Vec<u64> = ids.to_vec();
        for probe in [0, 1, 2, 99, 100, 101, 5000, u64::MAX - 1, u64::MAX] {
            assert_eq!(
                map.get(&probe).copied(),
                held.contains(&probe).then_some(probe.wrapping_mul(10))
            );
            assert_eq!(map.contains_key(&probe), held.contains(&probe));
        }
        for &id in ids.iter().rev().step_by(2) {
            assert_eq!(map.remove(&id), Some(id.wrapping_mul(10)));
            assert_eq!(map.remove(&id), None);
            held.retain(|g| *g != id);
            for &g in ids {
                assert_eq!(
                    map.get(&g).copied(),
                    held.contains(&g).then_some(g.wrapping_mul(10))
                );
            }
            assert_eq!(map.keys().copied().collect::<Vec<_>>(), held);
        }
        if let Some(v) = map.get_mut(&held[0]) {
            *v += 1;
        }
        assert_eq!(map.values().next(), Some(&(held[0].wrapping_mul(10) + 1)));
    }

    #[test]
    fn dense_and_sparse_ids_find_the_same_groups() {
        // Dense (indexed), dense with a hole, sparse (bisected), and mixed.
        check(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        check(&[0, 100, 101]);
        check(&[0, 7, 1 << 40, u64::MAX - 1]);
        check(&[3, 5000, 5001, 9000]);
    }
}
