//! The leader's view of each follower (etcd's `tracker`): how far its log
//! matches, what to send next, and how replication to it is flowing.

use alloc::collections::VecDeque;

use super::types::LogIndex;
use crate::time::Instant;

/// How the leader is currently replicating to one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The follower's match point is unknown: send one AppendEntries, then
    /// wait for its answer (or the next heartbeat answer) before sending more.
    Probe {
        /// An AppendEntries is outstanding; do not send another.
        paused: bool,
    },
    /// The follower is known to match: stream entries optimistically, with at
    /// most `max_inflight_messages` AppendEntries outstanding.
    Replicate {
        /// Last index carried by each outstanding AppendEntries, in send order.
        inflight: VecDeque<LogIndex>,
    },
    /// The follower needs the snapshot: the entries it lacks were compacted away.
    Snapshot {
        /// Index of the snapshot being sent.
        index: LogIndex,
        /// Bytes the follower has confirmed.
        acked: u64,
        /// Bytes sent so far (`acked <= sent`).
        sent: u64,
        /// When the last chunk went out, for retransmission.
        sent_at: Instant,
    },
}

impl ProgressState {
    /// Short lowercase name (`probe`, `replicate`, `snapshot`).
    pub fn name(&self) -> &'static str {
        match self {
            ProgressState::Probe { .. } => "probe",
            ProgressState::Replicate { .. } => "replicate",
            ProgressState::Snapshot { .. } => "snapshot",
        }
    }
}

/// Replication progress of one follower.
///
/// Invariant: `match_index < next_index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to be durably replicated on the follower.
    pub match_index: LogIndex,
    /// Next index to send.
    pub next_index: LogIndex,
    /// Replication mode.
    pub state: ProgressState,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// Highest ReadIndex round the follower has answered.
    pub round_acked: u64,
}

impl Progress {
    /// Progress of a follower the new leader knows nothing about (§5.3:
    /// `nextIndex` starts just past the leader's last entry).
    pub(crate) fn new(last_index: LogIndex) -> Progress {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: ProgressState::Probe { paused: false },
            recent_active: false,
            round_acked: 0,
        }
    }

    /// Number of AppendEntries outstanding in the replicate state.
    pub fn inflight(&self) -> usize {
        match &self.state {
            ProgressState::Replicate { inflight } => inflight.len(),
            ProgressState::Probe { paused: true } => 1,
            _ => 0,
        }
    }

    /// Whether another AppendEntries may be sent now.
    pub(crate) fn can_send(&self, max_inflight: usize) -> bool {
        match &self.state {
            ProgressState::Probe { paused } => !paused,
            ProgressState::Replicate { inflight } => inflight.len() < max_inflight,
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Records that entries up to `last` were sent.
    pub(crate) fn sent_entries(&mut self, last: LogIndex) {
        match &mut self.state {
            ProgressState::Probe { paused } => *paused = true,
            ProgressState::Replicate { inflight } => {
                if last >= self.next_index {
                    inflight.push_back(last);
                    self.next_index = last + 1;
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// The follower matches through `index`. Returns whether anything changed.
    pub(crate) fn update_match(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
        }
        if index + 1 > self.next_index {
            self.next_index = index + 1;
        }
        match &mut self.state {
            ProgressState::Probe { .. } => self.become_replicate(),
            ProgressState::Replicate { inflight } => {
                while inflight.front().is_some_and(|&last| last <= index) {
                    inflight.pop_front();
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
        updated
    }

    /// The follower rejected an AppendEntries whose previous index was
    /// `rejected`; `probe_next` is where the hint says to try next. Returns
    /// false for a stale rejection (answering an older message), which is ignored.
    pub(crate) fn maybe_decrease_to(&mut self, rejected: LogIndex, probe_next: LogIndex) -> bool {
        match &self.state {
            ProgressState::Replicate { .. } => {
                if rejected <= self.match_index {
                    return false;
                }
                // The pipeline broke (a lost message or a follower that lost
                // unsynced entries): restart from just past the match point.
                self.next_index = (self.match_index + 1).max(probe_next.min(self.next_index));
                self.state = ProgressState::Probe { paused: false };
                true
            }
            ProgressState::Probe { .. } => {
                if self.next_index == 0 || rejected != self.next_index - 1 {
                    return false;
                }
                let next = probe_next.min(rejected).max(self.match_index + 1);
                if next == self.next_index {
                    // The follower rejects its own match point: it lost entries it
                    // had acknowledged (a broken disk). Probing again at once would
                    // loop; the next heartbeat answer retries.
                    return false;
                }
                self.next_index = next;
                self.state = ProgressState::Probe { paused: false };
                true
            }
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Switch to streaming entries.
    pub(crate) fn become_replicate(&mut self) {
        self.next_index = self.next_index.max(self.match_index + 1);
        self.state = ProgressState::Replicate {
            inflight: VecDeque::new(),
        };
    }

    /// Switch to probing at `next_index`.
    pub(crate) fn become_probe(&mut self) {
        self.next_index = self.next_index.max(self.match_index + 1);
        self.state = ProgressState::Probe { paused: false };
    }

    /// Switch to sending the snapshot at `index`.
    pub(crate) fn become_snapshot(&mut self, index: LogIndex, now: Instant) {
        self.state = ProgressState::Snapshot {
            index,
            acked: 0,
            sent: 0,
            sent_at: now,
        };
    }

    /// Lets a stalled flow move again: unpause a probe, or free the oldest
    /// in-flight slot of a full window (its message was probably lost).
    pub(crate) fn unstall(&mut self, max_inflight: usize) {
        match &mut self.state {
            ProgressState::Probe { paused } => *paused = false,
            ProgressState::Replicate { inflight } => {
                if inflight.len() >= max_inflight {
                    inflight.pop_front();
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_then_replicate_then_window() {
        let mut p = Progress::new(10);
        assert!(p.can_send(2));
        p.sent_entries(10);
        assert!(!p.can_send(2), "a probe waits for its answer");
        assert!(p.update_match(10));
        assert_eq!(p.state.name(), "replicate");
        p.sent_entries(12);
        p.sent_entries(15);
        assert_eq!(p.next_index, 16);
        assert!(!p.can_send(2), "window of 2 is full");
        p.update_match(12);
        assert!(p.can_send(2));
        assert_eq!(p.inflight(), 1);
    }

    #[test]
    fn rejections_in_each_state() {
        let cases = [
            // (state is replicate?, match, next, rejected, probe_next) -> (accepted, next)
            (false, 0, 11, 10, 4, true, 4),
            (false, 0, 11, 7, 4, false, 11), // stale: not our last probe
            (false, 3, 11, 10, 1, true, 4),  // never below match + 1
            (true, 5, 20, 4, 1, false, 20),  // stale: below match
            (true, 5, 20, 12, 9, true, 9),
            (true, 5, 20, 12, 30, true, 20),
        ];
        for (replicate, m, next, rejected, probe, accepted, expected_next) in cases {
            let mut p = Progress::new(next - 1);
            p.match_index = m;
            if replicate {
                p.become_replicate();
            }
            assert_eq!(p.maybe_decrease_to(rejected, probe), accepted, "{cases:?}");
            assert_eq!(p.next_index, expected_next);
            assert!(p.match_index < p.next_index);
        }
    }

    #[test]
    fn unstall_frees_one_slot() {
        let mut p = Progress::new(0);
        p.become_replicate();
        p.sent_entries(1);
        p.sent_entries(2);
        assert!(!p.can_send(2));
        p.unstall(2);
        assert!(p.can_send(2));
    }
}
