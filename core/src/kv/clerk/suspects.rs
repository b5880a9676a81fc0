//! Servers a clerk suspects of being unreachable, each until a deadline:
//! shared by the single-group clerk and the sharded routing clerk.

use alloc::vec::Vec;

use crate::raft::NodeId;
use crate::time::Instant;

/// Servers that recently failed to answer (an attempt timed out, or the
/// driver could not reach them), each with the end of its suspicion.
#[derive(Clone, Debug, Default)]
pub(crate) struct Suspects(Vec<(NodeId, Instant)>);

impl Suspects {
    /// Whether `server` is suspected at `now`.
    pub(crate) fn contains(&self, now: Instant, server: NodeId) -> bool {
        self.0
            .iter()
            .any(|&(suspect, until)| suspect == server && now < until)
    }

    /// Suspects `server` until `until` (replacing an earlier suspicion),
    /// and forgets the suspicions that ended by `now`.
    pub(crate) fn add(&mut self, now: Instant, server: NodeId, until: Instant) {
        self.0
            .retain(|&(suspect, end)| suspect != server && now < end);
        self.0.push((server, until));
    }

    /// `server` answered: no longer suspected.
    pub(crate) fn clear(&mut self, server: NodeId) {
        self.0.retain(|&(suspect, _)| suspect != server);
    }
}
