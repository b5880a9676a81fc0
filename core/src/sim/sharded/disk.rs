//! One simulated disk per host: unsynced host writes are lost on a crash
//! (but a random prefix).

use super::*;

/// One host's stable storage: each group's persisted state, plus host
/// writes not yet synced.
#[derive(Clone, Debug, Default)]
pub(super) struct HostDisk {
    pub(super) durable: BTreeMap<GroupId, PersistedState>,
    pub(super) unsynced: Vec<HostWrite>,
    pub(super) syncing: Option<u64>,
    pub(super) epoch: u64,
    pub(super) syncs: u64,
}

impl HostDisk {
    pub(super) fn write(&mut self, write: HostWrite) -> Option<u64> {
        let seq = write.seq;
        self.unsynced.push(write);
        if self.syncing.is_none() {
            self.syncing = Some(seq);
            Some(seq)
        } else {
            None
        }
    }

    pub(super) fn synced(&mut self, epoch: u64, seq: u64) -> Option<(u64, Option<u64>)> {
        if epoch != self.epoch || self.syncing != Some(seq) {
            return None;
        }
        let count = self.unsynced.iter().take_while(|w| w.seq <= seq).count();
        for write in self.unsynced.drain(..count) {
            apply(&mut self.durable, &write);
        }
        self.syncs += 1;
        self.syncing = self.unsynced.last().map(|w| w.seq);
        Some((seq, self.syncing))
    }

    pub(super) fn crash(&mut self, rng: &mut Rng) {
        let survivors = rng.range_inclusive(0, self.unsynced.len() as u64) as usize;
        for write in self.unsynced.drain(..survivors) {
            apply(&mut self.durable, &write);
        }
        self.unsynced.clear();
        self.syncing = None;
        self.epoch += 1;
    }
}

pub(super) fn apply(durable: &mut BTreeMap<GroupId, PersistedState>, write: &HostWrite) {
    for (group, w) in &write.writes {
        durable.entry(*group).or_default().apply(w);
    }
}
