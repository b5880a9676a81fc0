//! Snapshots fetched chunk by chunk (a single group's backups, a sharded
//! host's shard exports): several held at once, so that backups running
//! together do not make each other start over, and none kept for ever.

use alloc::vec::Vec;

use crate::time::Instant;

/// Snapshots held at once (each a copy of a state machine or a shard).
pub const HELD_AT_ONCE: usize = 4;

/// A snapshot not asked for this long is dropped, in milliseconds.
pub const HELD_IDLE_MS: u64 = 60_000;

/// Up to [`HELD_AT_ONCE`] values by key, each with when it was last asked
/// for: a new one takes the place of the one asked for least recently, and
/// [`Held::drop_idle`] drops those idle for [`HELD_IDLE_MS`].
#[derive(Clone, Debug)]
pub(crate) struct Held<K, V> {
    held: Vec<(K, V, Instant)>,
}

impl<K, V> Default for Held<K, V> {
    fn default() -> Self {
        Held { held: Vec::new() }
    }
}

impl<K: PartialEq, V> Held<K, V> {
    /// Holds `value` under `key`, in place of the one asked for least
    /// recently if [`HELD_AT_ONCE`] are held. A second value under the same
    /// key (two backups that took the same snapshot) is held as well: each
    /// fetch lets one go at its end, and the other's stays.
    pub(crate) fn insert(&mut self, now: Instant, key: K, value: V) {
        if self.held.len() >= HELD_AT_ONCE
            && let Some(oldest) = (0..self.held.len()).min_by_key(|i| self.held[*i].2)
        {
            self.held.swap_remove(oldest);
        }
        self.held.push((key, value, now));
    }

    /// The value under `key`, now counted as asked for.
    pub(crate) fn get(&mut self, now: Instant, key: &K) -> Option<&V> {
        let entry = self.held.iter_mut().find(|(k, _, _)| k == key)?;
        entry.2 = now;
        Some(&entry.1)
    }

    /// Lets a value under `key` go.
    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(i) = self.held.iter().position(|(k, _, _)| k == key) {
            self.held.swap_remove(i);
        }
    }

    /// Drops the values not asked for in [`HELD_IDLE_MS`].
    pub(crate) fn drop_idle(&mut self, now: Instant) {
        self.held
            .retain(|(_, _, used)| now.as_millis().saturating_sub(used.as_millis()) < HELD_IDLE_MS);
    }
}
