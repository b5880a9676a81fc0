//! Backups: a consistent snapshot of the state machine at a linearizable
//! point, fetched from the leader in chunks (a snapshot may be larger than
//! one message). The leader holds a snapshot larger than a chunk until its
//! last chunk is served: up to [`BACKUPS_HELD`] at once, so that backups
//! running together do not make each other start over (the one asked for
//! least recently gives way to a new one), and one not asked for in
//! [`BACKUP_IDLE_MS`] is dropped.

use crate::held::{Chunk, Held, Refused};
pub use crate::held::{HELD_AT_ONCE as BACKUPS_HELD, HELD_IDLE_MS as BACKUP_IDLE_MS};

use super::{Replica, ReplyTo};
use crate::kv::{BackupChunk, Reply, ServiceError};
use crate::raft::{LogIndex, Term};
use crate::time::Instant;

/// Bytes of one backup chunk.
pub const BACKUP_CHUNK_BYTES: usize = 4 << 20;

/// The snapshots backups are fetching, by index, each with that entry's
/// term.
pub(super) type HeldBackups = Held<LogIndex, Term>;

impl Replica {
    /// Serves a backup request: a new snapshot after a ReadIndex round, or
    /// a further chunk of the one held.
    pub(super) fn handle_backup(
        &mut self,
        now: Instant,
        from: ReplyTo,
        request: u64,
        index: Option<LogIndex>,
        offset: u64,
    ) {
        if !self.node.is_leader() {
            let error = self.not_leader();
            self.reply(from, request, Err(error));
            return;
        }
        let Some(index) = index else {
            // Served once the state machine has applied the read index.
            self.handle_read(now, from, request, super::clients::ReadPurpose::Backup);
            return;
        };
        let result = match self.backups.chunk(now, &index, offset, BACKUP_CHUNK_BYTES) {
            Ok((term, chunk)) => Ok(backup_chunk(index, term, chunk)),
            Err(Refused::NotHeld) => Err(ServiceError::Unavailable(alloc::format!(
                "the snapshot at index {index} is no longer held (fetched to its end, idle, given way to other backups, or the leader changed): start over"
            ))),
            Err(Refused::PastEnd { total }) => Err(ServiceError::Unavailable(alloc::format!(
                "offset {offset} is past the snapshot's {total} bytes"
            ))),
        };
        self.reply(from, request, result);
    }

    /// Takes the snapshot of a new backup (its read index is applied) and
    /// answers its first chunk.
    pub(super) fn start_backup(&mut self, to: ReplyTo, request: u64) {
        let applied = self.node.log().applied();
        let term = self.node.log().term_at(applied).unwrap_or(0);
        let data = self.store.snapshot();
        let now = self.node.now();
        let first = self
            .backups
            .take(now, applied, term, data, BACKUP_CHUNK_BYTES);
        self.reply(to, request, Ok(backup_chunk(applied, term, first)));
    }
}

fn backup_chunk(index: LogIndex, term: Term, chunk: Chunk) -> Reply {
    Reply::Backup(BackupChunk {
        index,
        term,
        total: chunk.total,
        offset: chunk.offset,
        data: chunk.data,
    })
}
