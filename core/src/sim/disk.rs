//! The simulated disk of one node: writes become durable only when a sync
//! (an fsync covering every write issued before it started) completes; a
//! crash keeps what was synced plus a random prefix of the rest, as an
//! append-only log on a real disk would.

use alloc::vec::Vec;

use crate::raft::{LogIndex, PersistedState, Write};
use crate::rng::Rng;

/// A write the disk keeps until a sync covers it: its place in the
/// write stream.
pub(crate) trait Sequenced {
    /// The write's sequence number.
    fn seq(&self) -> u64;
}

impl Sequenced for Write {
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// The writes of one disk not yet synced, and the sync in progress: the
/// part of a simulated disk that does not depend on what it stores.
#[derive(Clone, Debug)]
pub(crate) struct Pending<W> {
    /// Written but not yet synced, in order.
    unsynced: Vec<W>,
    /// The sync in progress covers writes up to this seq.
    syncing: Option<u64>,
    /// Bumped on every crash, so a sync that was in progress is ignored.
    pub(crate) epoch: u64,
    /// Syncs completed.
    pub(crate) syncs: u64,
}

impl<W> Default for Pending<W> {
    fn default() -> Pending<W> {
        Pending {
            unsynced: Vec::new(),
            syncing: None,
            epoch: 0,
            syncs: 0,
        }
    }
}

impl<W: Sequenced> Pending<W> {
    /// Accepts a write; returns the seq a new sync should cover, if none is running.
    pub(crate) fn write(&mut self, write: W) -> Option<u64> {
        let seq = write.seq();
        self.unsynced.push(write);
        if self.syncing.is_none() {
            self.syncing = Some(seq);
            Some(seq)
        } else {
            None
        }
    }

    /// The sync covering `seq` finished (in `epoch`): hands `apply` the
    /// writes it made durable, and returns the seq now durable and the seq
    /// the next sync should cover if writes are waiting.
    pub(crate) fn synced(
        &mut self,
        epoch: u64,
        seq: u64,
        mut apply: impl FnMut(&W),
    ) -> Option<(u64, Option<u64>)> {
        if epoch != self.epoch || self.syncing != Some(seq) {
            return None;
        }
        let count = self.unsynced.iter().take_while(|w| w.seq() <= seq).count();
        for write in self.unsynced.drain(..count) {
            apply(&write);
        }
        self.syncs += 1;
        self.syncing = self.unsynced.last().map(Sequenced::seq);
        Some((seq, self.syncing))
    }

    /// The disk crashed: unsynced writes are lost, except a random prefix
    /// that happened to reach the platter (handed to `apply`). Returns how
    /// many writes were lost.
    pub(crate) fn crash(&mut self, rng: &mut Rng, mut apply: impl FnMut(&W)) -> usize {
        let survivors = rng.range_inclusive(0, self.unsynced.len() as u64) as usize;
        for write in self.unsynced.drain(..survivors) {
            apply(&write);
        }
        let lost = self.unsynced.len();
        self.unsynced.clear();
        self.syncing = None;
        self.epoch += 1;
        lost
    }
}

/// One node's stable storage.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// What survives a crash for sure.
    durable: PersistedState,
    /// What a sync has yet to make durable.
    pending: Pending<Write>,
}

impl Disk {
    /// Accepts a write; returns the seq a new sync should cover, if none is running.
    pub fn write(&mut self, write: Write) -> Option<u64> {
        self.pending.write(write)
    }

    /// The sync covering `seq` finished (in `epoch`): returns the seq now
    /// durable, and the seq the next sync should cover if writes are waiting.
    pub fn synced(&mut self, epoch: u64, seq: u64) -> Option<(u64, Option<u64>)> {
        let durable = &mut self.durable;
        self.pending
            .synced(epoch, seq, |write| durable.apply(write))
    }

    /// The node crashed: unsynced writes are lost, except a random prefix
    /// that happened to reach the platter. Returns how many writes were lost.
    pub fn crash(&mut self, rng: &mut Rng) -> usize {
        let durable = &mut self.durable;
        self.pending.crash(rng, |write| durable.apply(write))
    }

    /// What a restarting node reads back.
    pub fn persisted(&self) -> &PersistedState {
        &self.durable
    }

    /// Current epoch (changes on crash).
    pub fn epoch(&self) -> u64 {
        self.pending.epoch
    }

    /// Last durable log index.
    pub fn durable_last_index(&self) -> LogIndex {
        self.durable.last_index()
    }

    /// Writes waiting for a sync.
    pub fn unsynced(&self) -> usize {
        self.pending.unsynced.len()
    }

    /// Syncs completed so far.
    pub fn syncs(&self) -> u64 {
        self.pending.syncs
    }
}
