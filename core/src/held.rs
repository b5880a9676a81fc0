//! Snapshots fetched chunk by chunk (a single group's backups, a sharded
//! host's shard exports): several held at once, so that backups running
//! together do not make each other start over, and none kept for ever.
//!
//! A snapshot larger than a chunk is held from its first chunk until its
//! last is served; up to [`HELD_AT_ONCE`] are held, a new one taking the
//! place of the one asked for least recently, and [`Held::drop_idle`]
//! drops those not asked for in [`HELD_IDLE_MS`].

use alloc::vec::Vec;
use bytes::Bytes;

use crate::time::Instant;

/// Snapshots held at once (each a copy of a state machine or a shard).
pub const HELD_AT_ONCE: usize = 4;

/// A snapshot not asked for this long is dropped, in milliseconds.
pub const HELD_IDLE_MS: u64 = 60_000;

/// One chunk of a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Chunk {
    /// Where it starts.
    pub(crate) offset: u64,
    /// The snapshot's size, bytes.
    pub(crate) total: u64,
    /// The chunk.
    pub(crate) data: Bytes,
}

/// Why a chunk was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No snapshot is held under the key (fetched to its end, idle, given
    /// way to others, or never taken).
    NotHeld,
    /// The offset is past the snapshot's `total` bytes.
    PastEnd {
        /// The snapshot's size.
        total: u64,
    },
}

/// Snapshots by key `K`, each with what its chunks carry besides the
/// bytes (`M`), and when it was last asked for.
#[derive(Clone, Debug)]
pub(crate) struct Held<K, M> {
    held: Vec<(K, M, Bytes, Instant)>,
}

impl<K, M> Default for Held<K, M> {
    fn default() -> Self {
        Held { held: Vec::new() }
    }
}

impl<K: PartialEq, M: Clone> Held<K, M> {
    /// The first chunk of a new snapshot, `data`; it is held if more
    /// follow, in place of the one asked for least recently if
    /// [`HELD_AT_ONCE`] are held. A second snapshot under the same key (two
    /// backups that took the same one) is held as well: each fetch lets one
    /// go at its end, and the other's stays.
    pub(crate) fn take(
        &mut self,
        now: Instant,
        key: K,
        meta: M,
        data: Bytes,
        size: usize,
    ) -> Chunk {
        let first = chunk(&data, 0, size);
        if !is_last(&first) {
            if self.held.len() >= HELD_AT_ONCE
                && let Some(oldest) = (0..self.held.len()).min_by_key(|i| self.held[*i].3)
            {
                self.held.swap_remove(oldest);
            }
            self.held.push((key, meta, data, now));
        }
        first
    }

    /// The chunk of up to `size` bytes at `offset` of the snapshot under
    /// `key`, with its `M`; the snapshot is let go once its last chunk is
    /// served.
    pub(crate) fn chunk(
        &mut self,
        now: Instant,
        key: &K,
        offset: u64,
        size: usize,
    ) -> Result<(M, Chunk), Refused> {
        let i = self
            .held
            .iter()
            .position(|(k, _, _, _)| k == key)
            .ok_or(Refused::NotHeld)?;
        let (_, meta, data, used) = &mut self.held[i];
        let total = data.len() as u64;
        if offset > total {
            return Err(Refused::PastEnd { total });
        }
        let answer = (meta.clone(), chunk(data, offset, size));
        *used = now;
        if is_last(&answer.1) {
            self.held.swap_remove(i);
        }
        Ok(answer)
    }

    /// Drops the snapshots not asked for in [`HELD_IDLE_MS`].
    pub(crate) fn drop_idle(&mut self, now: Instant) {
        self.held.retain(|(_, _, _, used)| {
            now.as_millis().saturating_sub(used.as_millis()) < HELD_IDLE_MS
        });
    }
}

fn is_last(chunk: &Chunk) -> bool {
    chunk.offset + chunk.data.len() as u64 >= chunk.total
}

/// The chunk of up to `size` bytes of `data` at `offset` (at most its length).
fn chunk(data: &Bytes, offset: u64, size: usize) -> Chunk {
    let start = offset as usize;
    let end = start.saturating_add(size).min(data.len());
    Chunk {
        offset,
        total: data.len() as u64,
        data: data.slice(start..end),
    }
}
