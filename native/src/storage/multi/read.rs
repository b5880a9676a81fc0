//! Reading a group's entries back from the multi-group log through its
//! index: one positioned read per record holding some of them.

use std::collections::BTreeMap;

use distribkv_core::raft::{Entry, LogIndex};
use distribkv_core::shard::GroupId;

use super::super::error::{Corruption, StorageError};
use super::super::format::{Frame, RecordKind, decode_all, read_frame};
use super::format::{Batch, GroupCheckpoint, Item, segment_path};
use super::index::Location;
use super::log::MultiStorage;

impl MultiStorage {
    /// Entries `low..high` of `group`, read back from the log through the
    /// index: one positioned read per record holding some of them.
    pub fn entries(
        &mut self,
        group: GroupId,
        low: LogIndex,
        high: LogIndex,
    ) -> Result<Vec<Entry>, StorageError> {
        let index = self
            .groups
            .get(&group)
            .ok_or(StorageError::UnknownGroup { group })?;
        let (first, last) = (index.base() + 1, index.last_index());
        if low > high || low < first || high > last + 1 {
            return Err(StorageError::EntriesUnavailable {
                group,
                first,
                last,
                low,
                high,
            });
        }
        let wanted: Vec<(LogIndex, Location)> = (low..high)
            .map(|i| (i, index.entry(i).expect("in range").location))
            .collect();
        let flushed = self.active.flush();
        self.halt.on_error(flushed)?;
        self.read_entries(group, &wanted)
    }

    /// Reads the entries at `wanted` (index, location) of `group`.
    pub(super) fn read_entries(
        &self,
        group: GroupId,
        wanted: &[(LogIndex, Location)],
    ) -> Result<Vec<Entry>, StorageError> {
        let mut entries = Vec::with_capacity(wanted.len());
        let mut position = 0;
        while position < wanted.len() {
            let location = wanted[position].1;
            let run = wanted[position..]
                .iter()
                .take_while(|(_, l)| *l == location)
                .count();
            let found = self.read_group_entries(group, location)?;
            for &(index, _) in &wanted[position..position + run] {
                let entry =
                    found
                        .get(&index)
                        .cloned()
                        .ok_or_else(|| StorageError::CorruptSegment {
                            path: segment_path(&self.dir, location.segment),
                            offset: location.offset,
                            problem: Corruption::EntryNotInRecord { group, index },
                        })?;
                entries.push(entry);
            }
            position += run;
        }
        Ok(entries)
    }

    /// Every entry of `group` in the record at `location`, the last copy of
    /// each index winning.
    fn read_group_entries(
        &self,
        group: GroupId,
        location: Location,
    ) -> Result<BTreeMap<LogIndex, Entry>, StorageError> {
        let path = segment_path(&self.dir, location.segment);
        let bytes = self
            .disk
            .read_at(&path, location.offset, location.length as usize)?;
        let corrupt = |problem| StorageError::CorruptSegment {
            path: path.clone(),
            offset: location.offset,
            problem,
        };
        let (kind, payload) = match read_frame(&bytes, 0) {
            Frame::Record { kind, payload, .. } => (kind, payload),
            Frame::Damaged(problem) => return Err(corrupt(problem)),
            Frame::End => {
                return Err(corrupt(Corruption::TruncatedRecord {
                    needed: location.length as u64,
                    available: 0,
                }));
            }
        };
        let mut found = BTreeMap::new();
        match kind {
            RecordKind::GroupBatch => {
                let batch: Batch = decode_all(payload).map_err(corrupt)?;
                for (item_group, item) in batch.items {
                    if let (true, Item::Write { entries, .. }) = (item_group == group, item) {
                        found.extend(entries.into_iter().map(|e| (e.index, e)));
                    }
                }
            }
            RecordKind::GroupCheckpoint => {
                let checkpoint: GroupCheckpoint = decode_all(payload).map_err(corrupt)?;
                if let Some(state) = checkpoint.groups.into_iter().find(|s| s.group == group) {
                    found.extend(state.rewritten.into_iter().map(|e| (e.index, e)));
                }
            }
            other => return Err(corrupt(Corruption::ForeignRecordKind(other as u8))),
        }
        Ok(found)
    }
}
