//! The shard exports backups are fetching from this host, chunk by chunk
//! (see "Backups" in the host's documentation).
//!
//! An export larger than a chunk is held until its last chunk is served,
//! so that several backups, or one backup with several shards on this
//! host, can fetch at once: up to [`EXPORTS_HELD`] are held, the one used
//! least recently giving way to a new one, and one unused for
//! [`EXPORT_IDLE_MS`] is dropped (a backup that stopped half way does not
//! keep a shard's copy in memory). A chunk of an export no longer held is
//! refused with [`KvError::Busy`]: the backup starts that shard over.

use alloc::vec::Vec;
use bytes::Bytes;

use super::messages::{EXPORT_CHUNK_BYTES, ExportChunk};
use crate::raft::LogIndex;
use crate::shard::group::KvError;
use crate::shard::{GroupId, ShardId};
use crate::time::Instant;

/// Exports held at once per host (each a copy of a shard's data).
pub const EXPORTS_HELD: usize = 4;

/// An export not asked for this long is dropped, in milliseconds.
pub const EXPORT_IDLE_MS: u64 = 60_000;

/// One shard's export, taken at a read index.
#[derive(Clone, Debug)]
pub(super) struct HeldExport {
    pub(super) group: GroupId,
    pub(super) shard: ShardId,
    pub(super) config: u64,
    pub(super) index: LogIndex,
    pub(super) data: Bytes,
}

/// The exports held, with when each was last asked for.
#[derive(Clone, Debug, Default)]
pub(super) struct HeldExports {
    held: Vec<(HeldExport, Instant)>,
}

impl HeldExports {
    /// A new export's first chunk; the export is held if more follow.
    pub(super) fn take(&mut self, now: Instant, export: HeldExport) -> ExportChunk {
        let first = chunk(&export, 0).expect("offset 0 is within any export");
        if !is_last(&first) {
            if self.held.len() >= EXPORTS_HELD {
                let oldest = (0..self.held.len())
                    .min_by_key(|i| self.held[*i].1)
                    .expect("held is full");
                self.held.swap_remove(oldest);
            }
            self.held.push((export, now));
        }
        first
    }

    /// The chunk at `offset` of the export of `shard` taken at `index` by
    /// `group`; the export is let go once its last chunk is served.
    pub(super) fn chunk(
        &mut self,
        now: Instant,
        group: GroupId,
        shard: ShardId,
        index: LogIndex,
        offset: u64,
    ) -> Result<ExportChunk, KvError> {
        let i = self
            .held
            .iter()
            .position(|(h, _)| h.group == group && h.shard == shard && h.index == index)
            .ok_or(KvError::Busy)?;
        let answer = chunk(&self.held[i].0, offset)?;
        if is_last(&answer) {
            self.held.swap_remove(i);
        } else {
            self.held[i].1 = now;
        }
        Ok(answer)
    }

    /// Drops the exports not asked for in [`EXPORT_IDLE_MS`].
    pub(super) fn drop_idle(&mut self, now: Instant) {
        self.held
            .retain(|(_, used)| now.as_millis().saturating_sub(used.as_millis()) < EXPORT_IDLE_MS);
    }
}

fn is_last(chunk: &ExportChunk) -> bool {
    chunk.offset + chunk.data.len() as u64 >= chunk.total
}

/// The chunk of an export that starts at `offset`.
fn chunk(held: &HeldExport, offset: u64) -> Result<ExportChunk, KvError> {
    let total = held.data.len() as u64;
    if offset > total {
        return Err(KvError::Busy);
    }
    let start = offset as usize;
    let end = (start + EXPORT_CHUNK_BYTES).min(held.data.len());
    Ok(ExportChunk {
        shard: held.shard,
        config: held.config,
        index: held.index,
        total,
        offset,
        data: held.data.slice(start..end),
    })
}
