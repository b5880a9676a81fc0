//! Which server the routing clerk asks, and for how long: leader hints,
//! guesses and their probe timeout, suspected servers.

use super::{CONTROLLER_SLOT, Current, ShardClerk};
use crate::raft::NodeId;
use crate::shard::{GroupId, ShardConfig};
use crate::time::Instant;

impl ShardClerk {
    /// The driver could not send attempt `attempt` to host `to` (it is
    /// unreachable, or the connection was lost with the request in
    /// flight): `to` is suspected for `retry_ms`, and the operation moves
    /// on to another server after the back-off. The outcome stays unknown
    /// until some server answers. Ignored unless `attempt` is the attempt
    /// in flight.
    pub fn handle_unreachable(&mut self, now: Instant, to: NodeId, attempt: u64) {
        let Some(current) = &self.current else {
            return;
        };
        if current.attempt != attempt || attempt == 0 {
            return;
        }
        self.suspect(now, to);
        self.next_server(now);
        self.back_off(now);
    }

    /// How long the attempt to `slot` waits for an answer: `retry_ms` for
    /// a follower read or a leader that rests on a sign, else (a guess)
    /// `probe_ms`.
    pub(super) fn attempt_timeout(&self, slot: GroupId) -> u64 {
        if self.is_follower_read() || self.known.contains(&slot) {
            self.config.retry_ms
        } else {
            self.config.probe_ms.min(self.config.retry_ms)
        }
    }

    /// Routes by `config` from now on. A group whose servers changed
    /// keeps its leader index, but as a guess.
    pub(super) fn adopt(&mut self, config: ShardConfig) {
        let old = self.cached.take();
        self.known.retain(|slot| {
            *slot == CONTROLLER_SLOT
                || old.as_ref().and_then(|c| c.groups.get(slot)) == config.groups.get(slot)
        });
        self.cached = Some(config);
    }

    /// The position, among the owning group's servers, of a follower
    /// read's server (not while it refreshes its configuration).
    fn read_position(&self) -> Option<usize> {
        match &self.current {
            Some(Current {
                read_server: Some(server),
                refreshing: false,
                ..
            }) => Some(*server),
            _ => None,
        }
    }

    /// The position, among `slot`'s servers (not reduced modulo their
    /// number), of the one the current attempt goes to: a follower read's
    /// server, else the slot's leader candidate.
    pub(super) fn position(&self, slot: GroupId) -> usize {
        self.read_position()
            .unwrap_or_else(|| self.leaders.get(&slot).copied().unwrap_or(0))
    }

    /// Moves the current attempt on to the next server: the next server
    /// of a follower read, else the slot's next leader candidate (a
    /// guess). The next one in order that is not suspected, if any other
    /// is not; else simply the next one.
    pub(super) fn next_server(&mut self, now: Instant) {
        let slot = self.slot();
        let read_server = self.read_position();
        let from = self.position(slot);
        let servers = self.servers(slot);
        let n = servers.len();
        let step = (1..n)
            .find(|step| !self.is_suspect(now, servers[from.wrapping_add(*step) % n]))
            .unwrap_or(1);
        let to = from.wrapping_add(step);
        if read_server.is_some() {
            if let Some(Current {
                read_server: Some(server),
                ..
            }) = &mut self.current
            {
                *server = to;
            }
            return;
        }
        self.leaders.insert(slot, to);
        self.known.remove(&slot);
    }

    /// Points the slot's leader index at `hint` if it is one of its
    /// servers, else at the next server. A follower read goes to `hint`
    /// instead (the server asked knew no leader, or lost it), else to the
    /// next server.
    pub(super) fn follow(&mut self, now: Instant, slot: GroupId, hint: Option<NodeId>) {
        let servers = self.servers(slot);
        let position = hint.and_then(|h| servers.iter().position(|s| *s == h));
        if self.is_follower_read() {
            match (position, &mut self.current) {
                (
                    Some(p),
                    Some(Current {
                        read_server: Some(server),
                        ..
                    }),
                ) => *server = p,
                _ => self.next_server(now),
            }
            return;
        }
        let current = self.leaders.get(&slot).copied().unwrap_or(0);
        match position {
            Some(p) if p != current % servers.len() => {
                self.leaders.insert(slot, p);
                self.known.insert(slot);
            }
            _ => self.next_server(now),
        }
    }

    /// Whether host `server` failed to answer recently (see `suspects`).
    pub(super) fn is_suspect(&self, now: Instant, server: NodeId) -> bool {
        self.suspects.contains(now, server)
    }

    /// Host `server` failed to answer: suspected for `retry_ms`.
    pub(super) fn suspect(&mut self, now: Instant, server: NodeId) {
        let until = Instant(now.as_millis() + self.config.retry_ms);
        self.suspects.add(now, server, until);
    }
}
