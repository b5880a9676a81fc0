//! Which server the clerk asks next: leader guesses at random among the
//! servers not suspected of being unreachable, the suspicions themselves,
//! member discovery and the back-off before a resend.

use super::{Clerk, ClerkOutput};
use crate::raft::NodeId;
use crate::time::Instant;

impl Clerk {
    /// Moves the current operation to another server: a follower read to
    /// any other one, anything else to the next leader guess (a guess:
    /// see [`ClerkConfig::probe_timeout`](super::ClerkConfig::probe_timeout)). Any other server at random, so
    /// that a dead one is not retried in a fixed cycle; one that is not
    /// suspected of being unreachable if there is any.
    pub(super) fn next_server(&mut self, now: Instant) {
        let n = self.config.servers.len();
        if n <= 1 {
            return;
        }
        let read_server = self.current.as_ref().and_then(|c| c.read_server);
        let from = read_server.unwrap_or(self.leader);
        let trusted = |clerk: &Clerk, at: usize| {
            at != from && !clerk.is_suspect(now, clerk.config.servers[at])
        };
        let trusted_count = (0..n).filter(|&at| trusted(self, at)).count();
        let to = if trusted_count == 0 {
            (from + 1 + self.rng.index(n - 1)) % n
        } else {
            let pick = self.rng.index(trusted_count);
            (0..n)
                .filter(|&at| trusted(self, at))
                .nth(pick)
                .unwrap_or(from)
        };
        match self.current.as_mut().and_then(|c| c.read_server.as_mut()) {
            Some(server) => *server = to,
            None => {
                self.leader = to;
                self.leader_known = false;
            }
        }
    }

    /// Whether `server` failed to answer recently (see `suspects`).
    pub(super) fn is_suspect(&self, now: Instant, server: NodeId) -> bool {
        self.suspects.contains(now, server)
    }

    /// `server` failed to answer: suspected for an attempt timeout.
    pub(super) fn suspect(&mut self, now: Instant, server: NodeId) {
        self.suspects
            .add(now, server, now + self.config.attempt_timeout);
    }

    /// Asks for the member list because a leader hint named `hint`, a
    /// server the clerk does not know, unless a request is outstanding or
    /// the last one was less than an attempt timeout ago.
    pub(super) fn maybe_discover(&mut self, now: Instant, hint: NodeId) {
        if self.discovering.is_some() || now < self.next_discovery_at {
            return;
        }
        self.discovering = Some(hint);
        self.next_discovery_at = now + self.config.attempt_timeout;
        self.outputs.push_back(ClerkOutput::Discover { hint });
    }

    pub(super) fn back_off(&mut self, now: Instant) {
        if let Some(current) = &mut self.current {
            current.resend_at = Some(now + self.config.retry_backoff);
        }
    }
}
