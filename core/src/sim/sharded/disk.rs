//! One simulated disk per host: unsynced host writes are lost on a crash
//! (but a random prefix).

use super::*;
use crate::sim::disk::{Pending, Sequenced};

/// One host's stable storage: each group's persisted state, plus host
/// writes not yet synced.
#[derive(Clone, Debug, Default)]
pub(super) struct HostDisk {
    pub(super) durable: BTreeMap<GroupId, PersistedState>,
    /// Groups whose replica the host retired (`HostOutput::Retired`): the
    /// tombstone is durable at once here (a real log makes it durable with
    /// the next fsync; losing it is safe, see `shard::host`).
    pub(super) retired: BTreeSet<GroupId>,
    pub(super) pending: Pending<HostWrite>,
}

impl Sequenced for HostWrite {
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl HostDisk {
    pub(super) fn write(&mut self, write: HostWrite) -> Option<u64> {
        self.pending.write(write)
    }

    pub(super) fn synced(&mut self, epoch: u64, seq: u64) -> Option<(u64, Option<u64>)> {
        let durable = &mut self.durable;
        self.pending
            .synced(epoch, seq, |write| apply(durable, write))
    }

    pub(super) fn crash(&mut self, rng: &mut Rng) {
        let durable = &mut self.durable;
        self.pending.crash(rng, |write| apply(durable, write));
        self.forget_retired();
    }

    /// Stores the tombstone of a retired group and drops its state.
    pub(super) fn retire(&mut self, group: GroupId) {
        self.retired.insert(group);
        self.forget_retired();
    }

    /// Writes of a retired group that were still pending when it retired
    /// are dropped with it (a real log refuses them after the tombstone).
    pub(super) fn forget_retired(&mut self) {
        let retired = &self.retired;
        self.durable.retain(|group, _| !retired.contains(group));
    }
}

pub(super) fn apply(durable: &mut BTreeMap<GroupId, PersistedState>, write: &HostWrite) {
    for (group, w) in &write.writes {
        durable.entry(*group).or_default().apply(w);
    }
}
