//! Rebalancing: the deterministic spread of shards over groups that Join
//! and Leave apply.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::GroupId;

/// Spreads the shards of `shards` (owner per shard) over `groups` as evenly
/// as possible while moving as few as possible. Deterministic.
///
/// Each group gets `⌊S/G⌋` shards, and the `S mod G` groups that already
/// hold the most (ties: lower group id) get one more. Shards of groups not
/// in `groups` (or of group 0) and the surplus of groups above their target
/// (their highest-numbered shards) are handed, lowest shard first, to the
/// groups below their target, lowest group id first. A shard moves only if
/// its group left or holds more than its target, which is the least any
/// even assignment can move.
pub fn rebalance(shards: &mut [GroupId], groups: &[GroupId]) {
    if groups.is_empty() {
        shards.iter_mut().for_each(|g| *g = 0);
        return;
    }
    let mut load: BTreeMap<GroupId, usize> = groups.iter().map(|g| (*g, 0)).collect();
    for g in shards.iter() {
        if let Some(n) = load.get_mut(g) {
            *n += 1;
        }
    }
    let base = shards.len() / groups.len();
    let extra = shards.len() % groups.len();
    let mut by_load: Vec<(usize, GroupId)> = load.iter().map(|(g, n)| (*n, *g)).collect();
    by_load.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let target: BTreeMap<GroupId, usize> = by_load
        .iter()
        .enumerate()
        .map(|(rank, (_, g))| (*g, base + usize::from(rank < extra)))
        .collect();
    // Free the shards of departed groups and the surplus of loaded groups.
    let mut held: BTreeMap<GroupId, usize> = BTreeMap::new();
    let mut free = Vec::new();
    for (s, g) in shards.iter_mut().enumerate() {
        match target.get(g) {
            Some(t) => {
                let h = held.entry(*g).or_insert(0);
                if *h < *t {
                    *h += 1;
                } else {
                    free.push(s);
                    *g = 0;
                }
            }
            None => {
                free.push(s);
                *g = 0;
            }
        }
    }
    let mut free = free.into_iter();
    for (g, t) in &target {
        let h = held.get(g).copied().unwrap_or(0);
        for _ in h..*t {
            if let Some(s) = free.next() {
                shards[s] = *g;
            }
        }
    }
}
