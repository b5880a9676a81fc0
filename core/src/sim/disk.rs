//! The simulated disk of one node: writes become durable only when a sync
//! (an fsync covering every write issued before it started) completes; a
//! crash keeps what was synced plus a random prefix of the rest, as an
//! append-only log on a real disk would.

use alloc::vec::Vec;

use crate::raft::{LogIndex, PersistedState, Write};
use crate::rng::Rng;

/// One node's stable storage.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// What survives a crash for sure.
    durable: PersistedState,
    /// Written but not yet synced, in order.
    unsynced: Vec<Write>,
    /// The sync in progress covers writes up to this seq.
    syncing: Option<u64>,
    /// Bumped on every crash, so a sync that was in progress is ignored.
    epoch: u64,
    /// Syncs completed.
    syncs: u64,
}

impl Disk {
    /// Accepts a write; returns the seq a new sync should cover, if none is running.
    pub fn write(&mut self, write: Write) -> Option<u64> {
        let seq = write.seq;
        self.unsynced.push(write);
        if self.syncing.is_none() {
            self.syncing = Some(seq);
            Some(seq)
        } else {
            None
        }
    }

    /// The sync covering `seq` finished (in `epoch`): returns the seq now
    /// durable, and the seq the next sync should cover if writes are waiting.
    pub fn synced(&mut self, epoch: u64, seq: u64) -> Option<(u64, Option<u64>)> {
        if epoch != self.epoch || self.syncing != Some(seq) {
            return None;
        }
        let count = self.unsynced.iter().take_while(|w| w.seq <= seq).count();
        for write in self.unsynced.drain(..count) {
            self.durable.apply(&write);
        }
        self.syncs += 1;
        self.syncing = self.unsynced.last().map(|w| w.seq);
        Some((seq, self.syncing))
    }

    /// The node crashed: unsynced writes are lost, except a random prefix
    /// that happened to reach the platter. Returns how many writes were lost.
    pub fn crash(&mut self, rng: &mut Rng) -> usize {
        let survivors = rng.range_inclusive(0, self.unsynced.len() as u64) as usize;
        for write in self.unsynced.drain(..survivors) {
            self.durable.apply(&write);
        }
        let lost = self.unsynced.len();
        self.unsynced.clear();
        self.syncing = None;
        self.epoch += 1;
        lost
    }

    /// What a restarting node reads back.
    pub fn persisted(&self) -> &PersistedState {
        &self.durable
    }

    /// Current epoch (changes on crash).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Last durable log index.
    pub fn durable_last_index(&self) -> LogIndex {
        self.durable.last_index()
    }

    /// Writes waiting for a sync.
    pub fn unsynced(&self) -> usize {
        self.unsynced.len()
    }

    /// Syncs completed so far.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }
}
