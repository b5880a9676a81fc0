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

use bytes::Bytes;

use super::messages::{EXPORT_CHUNK_BYTES, ExportChunk};
use crate::held::Held;
pub use crate::held::{HELD_AT_ONCE as EXPORTS_HELD, HELD_IDLE_MS as EXPORT_IDLE_MS};
use crate::raft::LogIndex;
use crate::shard::group::KvError;
use crate::shard::{GroupId, ShardId};
use crate::time::Instant;

/// One shard's export, taken at a read index.
#[derive(Clone, Debug)]
pub(super) struct HeldExport {
    pub(super) group: GroupId,
    pub(super) shard: ShardId,
    pub(super) config: u64,
    pub(super) index: LogIndex,
    pub(super) data: Bytes,
}

/// The exports held, by group, shard and index.
#[derive(Clone, Debug, Default)]
pub(super) struct HeldExports {
    held: Held<(GroupId, ShardId, LogIndex), HeldExport>,
}

impl HeldExports {
    /// A new export's first chunk; the export is held if more follow.
    pub(super) fn take(&mut self, now: Instant, export: HeldExport) -> ExportChunk {
        let first = chunk(&export, 0).expect("offset 0 is within any export");
        if !is_last(&first) {
            let key = (export.group, export.shard, export.index);
            self.held.insert(now, key, export);
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
        let key = (group, shard, index);
        let held = self.held.get(now, &key).ok_or(KvError::Busy)?;
        let answer = chunk(held, offset)?;
        if is_last(&answer) {
            self.held.remove(&key);
        }
        Ok(answer)
    }

    /// Drops the exports not asked for in [`EXPORT_IDLE_MS`].
    pub(super) fn drop_idle(&mut self, now: Instant) {
        self.held.drop_idle(now);
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
