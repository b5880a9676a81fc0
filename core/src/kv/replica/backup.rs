//! Backups: a consistent snapshot of the state machine at a linearizable
//! point, fetched from the leader in chunks (a snapshot may be larger than
//! one message). The leader holds a snapshot larger than a chunk until its
//! last chunk is served: up to [`BACKUPS_HELD`] at once, so that backups
//! running together do not make each other start over (the one asked for
//! least recently gives way to a new one), and one not asked for in
//! [`BACKUP_IDLE_MS`] is dropped.

use bytes::Bytes;

use crate::held::Held;
pub use crate::held::{HELD_AT_ONCE as BACKUPS_HELD, HELD_IDLE_MS as BACKUP_IDLE_MS};

use super::{Replica, ReplyTo};
use crate::kv::{BackupChunk, Reply, ServiceError};
use crate::raft::{LogIndex, Term};
use crate::time::Instant;

/// Bytes of one backup chunk.
pub const BACKUP_CHUNK_BYTES: usize = 4 << 20;

/// The snapshot a backup is fetching.
#[derive(Clone, Debug)]
pub(super) struct Backup {
    index: LogIndex,
    term: Term,
    data: Bytes,
}

/// The snapshots backups are fetching, by index.
pub(super) type HeldBackups = Held<LogIndex, Backup>;

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
        let result = match self.backups.get(now, &index) {
            Some(backup) => chunk(backup, offset),
            None => Err(ServiceError::Unavailable(alloc::format!(
                "the snapshot at index {index} is no longer held (fetched to its end, idle, given way to other backups, or the leader changed): start over"
            ))),
        };
        if result.as_ref().is_ok_and(is_last) {
            self.backups.remove(&index);
        }
        self.reply(from, request, result);
    }

    /// Takes the snapshot of a new backup (its read index is applied) and
    /// answers its first chunk.
    pub(super) fn start_backup(&mut self, to: ReplyTo, request: u64) {
        let applied = self.node.log().applied();
        let backup = Backup {
            index: applied,
            term: self.node.log().term_at(applied).unwrap_or(0),
            data: self.store.snapshot(),
        };
        let result = chunk(&backup, 0);
        if !result.as_ref().is_ok_and(is_last) {
            let now = self.node.now();
            self.backups.insert(now, backup.index, backup);
        }
        self.reply(to, request, result);
    }
}

/// Whether `reply` is the last chunk of its snapshot.
fn is_last(reply: &Reply) -> bool {
    matches!(reply, Reply::Backup(c) if c.offset + c.data.len() as u64 >= c.total)
}

fn chunk(backup: &Backup, offset: u64) -> Result<Reply, ServiceError> {
    let total = backup.data.len() as u64;
    if offset > total {
        return Err(ServiceError::Unavailable(alloc::format!(
            "offset {offset} is past the snapshot's {total} bytes"
        )));
    }
    let start = offset as usize;
    let end = (start + BACKUP_CHUNK_BYTES).min(backup.data.len());
    Ok(Reply::Backup(BackupChunk {
        index: backup.index,
        term: backup.term,
        total,
        offset,
        data: backup.data.slice(start..end),
    }))
}
