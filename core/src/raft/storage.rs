//! What the driver persists: the write stream the node emits, and the state a
//! node restarts from.
//!
//! # The contract
//!
//! The node emits [`Write`]s through [`Output::Persist`](super::Output::Persist),
//! numbered by `seq` in increasing order. The driver applies them to stable
//! storage **in order**, and once every write up to some `seq` is durable
//! (fsynced) it tells the node with
//! [`Input::Persisted(seq)`](super::Input::Persisted). Acknowledging `seq`
//! acknowledges every earlier write too, so a driver may batch many writes into
//! one fsync (group commit).
//!
//! The driver may send messages as soon as it polls them: the node itself holds
//! back every message that depends on durable state (a granted vote, a
//! successful append answer, a finished snapshot install) until the write it
//! depends on is acknowledged, and a leader counts its own log toward the
//! commit quorum only up to its durable index. A crash loses at most the
//! writes that were not yet acknowledged, and nothing that depended on them
//! ever left the node.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::types::{Entry, HardState, LogIndex, Snapshot};

/// One unit of work for stable storage. Apply the parts in field order:
/// `snapshot`, then `hard_state`, then `entries`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Write {
    /// Position in the write stream; acknowledge with `Input::Persisted(seq)`.
    pub seq: u64,
    /// Store this snapshot, replacing any older one. Then drop every stored
    /// entry at or below `snapshot.meta.index`; if the stored log has no entry
    /// at that index with that term, drop the whole stored log.
    pub snapshot: Option<Box<Snapshot>>,
    /// Store this term and vote, replacing the previous ones.
    pub hard_state: Option<HardState>,
    /// Drop every stored entry at or after `entries[0].index`, then append
    /// `entries` (consecutive indexes). Empty means no change to the log.
    pub entries: Vec<Entry>,
}

impl Write {
    /// Whether the write carries nothing (never emitted by the node).
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.hard_state.is_none() && self.entries.is_empty()
    }

    /// Index of the first entry this write replaces or appends, if any.
    pub fn first_index(&self) -> Option<LogIndex> {
        self.entries.first().map(|e| e.index)
    }
}

/// Everything a node needs to restart: what stable storage held when it came back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PersistedState {
    /// Last durable term and vote.
    pub hard_state: HardState,
    /// Latest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Durable entries after the snapshot, consecutive, starting at
    /// `snapshot.meta.index + 1` (or 1 without a snapshot).
    pub entries: Vec<Entry>,
}

impl PersistedState {
    /// Applies one write to this in-memory image of stable storage, with the
    /// semantics documented on [`Write`]. Drivers and the simulator's disk
    /// model use it so that they agree with the node on what a write means.
    pub fn apply(&mut self, write: &Write) {
        if let Some(snapshot) = &write.snapshot {
            let index = snapshot.meta.index;
            let keep = self
                .entries
                .iter()
                .position(|e| e.index == index && e.term == snapshot.meta.term);
            match keep {
                Some(pos) => {
                    self.entries.drain(..=pos);
                }
                None => self.entries.clear(),
            }
            self.snapshot = Some(Snapshot::clone(snapshot));
        }
        if let Some(hard_state) = write.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(first) = write.entries.first() {
            let first_index = first.index;
            let base = self.snapshot.as_ref().map_or(0, |s| s.meta.index);
            if first_index <= base {
                // Entries already covered by the snapshot: keep only the tail.
                self.entries.clear();
                self.entries
                    .extend(write.entries.iter().filter(|e| e.index > base).cloned());
            } else {
                // Entries are consecutive: cut at the position of `first_index`.
                let keep = match self.entries.first() {
                    Some(head) => {
                        (first_index.saturating_sub(head.index) as usize).min(self.entries.len())
                    }
                    None => 0,
                };
                self.entries.truncate(keep);
                self.entries.extend(write.entries.iter().cloned());
            }
        }
    }

    /// Index of the last stored entry (or of the snapshot, or 0).
    pub fn last_index(&self) -> LogIndex {
        self.entries
            .last()
            .map(|e| e.index)
            .or_else(|| self.snapshot.as_ref().map(|s| s.meta.index))
            .unwrap_or(0)
    }
}
