//! The shard exports backups are fetching from this host, chunk by chunk
//! (see "Backups" in the host's documentation), held by the rule of
//! [`crate::held`]: up to [`EXPORTS_HELD`], each until its last chunk is
//! served or [`EXPORT_IDLE_MS`] unused. A chunk of an export no longer
//! held is refused with [`KvError::Busy`]: the backup starts that shard
//! over.

use bytes::Bytes;

use super::messages::{EXPORT_CHUNK_BYTES, ExportChunk};
use crate::held::{Chunk, Held};
pub use crate::held::{HELD_AT_ONCE as EXPORTS_HELD, HELD_IDLE_MS as EXPORT_IDLE_MS};
use crate::raft::LogIndex;
use crate::shard::group::KvError;
use crate::shard::{GroupId, ShardId};
use crate::time::Instant;

/// The exports held, by group, shard and index, each with the
/// configuration it was taken in.
#[derive(Clone, Debug, Default)]
pub(super) struct HeldExports {
    held: Held<(GroupId, ShardId, LogIndex), u64>,
}

impl HeldExports {
    /// The first chunk of `data`, the export of `shard` that `group` took
    /// at `index` in configuration `config`; held if more chunks follow.
    pub(super) fn take(
        &mut self,
        now: Instant,
        (group, shard, index): (GroupId, ShardId, LogIndex),
        config: u64,
        data: Bytes,
    ) -> ExportChunk {
        let key = (group, shard, index);
        let first = self.held.take(now, key, config, data, EXPORT_CHUNK_BYTES);
        export_chunk(shard, config, index, first)
    }

    /// The chunk at `offset` of the export of `shard` taken at `index` by
    /// `group`.
    pub(super) fn chunk(
        &mut self,
        now: Instant,
        group: GroupId,
        shard: ShardId,
        index: LogIndex,
        offset: u64,
    ) -> Result<ExportChunk, KvError> {
        let key = (group, shard, index);
        let (config, chunk) = self
            .held
            .chunk(now, &key, offset, EXPORT_CHUNK_BYTES)
            .map_err(|_| KvError::Busy)?;
        Ok(export_chunk(shard, config, index, chunk))
    }

    /// Drops the exports not asked for in [`EXPORT_IDLE_MS`].
    pub(super) fn drop_idle(&mut self, now: Instant) {
        self.held.drop_idle(now);
    }
}

fn export_chunk(shard: ShardId, config: u64, index: LogIndex, chunk: Chunk) -> ExportChunk {
    ExportChunk {
        shard,
        config,
        index,
        total: chunk.total,
        offset: chunk.offset,
        data: chunk.data,
    }
}
