//! Exactly-once client sessions (§6.3 of the dissertation).
//!
//! A session remembers the latest sequence number applied for a client and
//! that write's result. A retried write (same client, same sequence number)
//! is answered with the stored result instead of being applied again. The
//! table is part of the state machine: it is in snapshots and identical on
//! every replica. Sessions expire by a deterministic rule driven by the log:
//! each command carries the leader's clock, and a session not used for `ttl`
//! of that clock is dropped; beyond `max_sessions`, the least recently used
//! session is dropped when a new one is opened.
//!
//! A session is opened by its client's first write, and remembers the
//! client's nonce for that opening, so that a retried opening is recognised
//! like any retried write. A session can be dropped (expired or evicted)
//! while its client still retries that first write, its answer lost: the
//! retry must then not open a second session and apply the write again. So
//! the table remembers the nonces of dropped sessions (tombstones, the
//! newest `max_dropped` of them) and refuses such a retry as expired; the
//! client learns that the outcome is unknown. A tombstone is forgotten only
//! after `max_dropped` newer sessions were dropped (100,000 by default), so
//! a retry would have to outlast that many to be applied twice.

use alloc::collections::{BTreeMap, VecDeque};

use super::command::{ClientId, ServiceError};

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Latest sequence number applied (0: none yet).
    pub last_seq: u64,
    /// Result of that write.
    pub last_result: Result<(), ServiceError>,
    /// Log clock (ms) of the session's latest activity.
    pub last_active: u64,
    /// The client's nonce for the opening ([`Command::Open`](super::Command::Open));
    /// 0 for a session opened by a bare registration.
    pub nonce: u64,
}

/// What the table says about a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    /// A new write: apply it.
    Fresh,
    /// Already applied: answer with this result.
    Duplicate(Result<(), ServiceError>),
    /// Older than the latest applied write: its answer was already given.
    Stale,
    /// No such session.
    Unknown,
}

/// All open sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTable {
    sessions: BTreeMap<ClientId, Session>,
    /// The session each non-zero nonce opened (derived from `sessions`).
    opened_by: BTreeMap<u64, ClientId>,
    /// Tombstones: the session each dropped session's nonce had opened.
    dropped: BTreeMap<u64, ClientId>,
    /// The nonces in `dropped`, oldest drop first (`dropped.len() <= max_dropped`).
    dropped_order: VecDeque<u64>,
    ttl: u64,
    max_sessions: usize,
    max_dropped: usize,
    next_sweep: u64,
}

impl SessionTable {
    /// An empty table whose sessions expire after `ttl` ms of log clock,
    /// holding at most `max_sessions` (at least 1) and the tombstones of
    /// the latest `max_dropped` dropped ones.
    pub fn new(ttl: u64, max_sessions: usize, max_dropped: usize) -> SessionTable {
        SessionTable {
            sessions: BTreeMap::new(),
            opened_by: BTreeMap::new(),
            dropped: BTreeMap::new(),
            dropped_order: VecDeque::new(),
            ttl,
            max_sessions: max_sessions.max(1),
            max_dropped,
            next_sweep: 0,
        }
    }

    /// Opens session `client` at log clock `now` for the opening `nonce` (0:
    /// none), evicting the least recently used one if the table is full.
    pub fn register(&mut self, client: ClientId, nonce: u64, now: u64) {
        while self.sessions.len() >= self.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(id, s)| (s.last_active, **id))
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.remove(id),
                None => break,
            }
        }
        self.sessions.insert(
            client,
            Session {
                last_seq: 0,
                last_result: Ok(()),
                last_active: now,
                nonce,
            },
        );
        if nonce != 0 {
            self.opened_by.insert(nonce, client);
        }
    }

    /// The live session the opening `nonce` opened.
    pub fn opened_by(&self, nonce: u64) -> Option<ClientId> {
        self.opened_by.get(&nonce).copied()
    }

    /// The session a dropped session's opening `nonce` had opened, while
    /// its tombstone is kept: a retry of that opening must not be applied.
    pub fn dropped_opening(&self, nonce: u64) -> Option<ClientId> {
        self.dropped.get(&nonce).copied()
    }

    /// Tombstones of dropped sessions, oldest drop first: (nonce, session).
    pub fn tombstones(&self) -> impl Iterator<Item = (u64, ClientId)> + '_ {
        self.dropped_order
            .iter()
            .map(|nonce| (*nonce, self.dropped[nonce]))
    }

    fn remove(&mut self, client: ClientId) {
        if let Some(session) = self.sessions.remove(&client)
            && session.nonce != 0
        {
            self.opened_by.remove(&session.nonce);
            self.bury(session.nonce, client);
        }
    }

    /// Keeps the tombstone of a dropped opening (forgetting the oldest).
    fn bury(&mut self, nonce: u64, client: ClientId) {
        if self.max_dropped == 0 {
            return;
        }
        if self.dropped.insert(nonce, client).is_none() {
            self.dropped_order.push_back(nonce);
        }
        while self.dropped_order.len() > self.max_dropped {
            let oldest = self.dropped_order.pop_front().expect("over the limit");
            self.dropped.remove(&oldest);
        }
    }

    /// Classifies a write `seq` of `client`.
    pub fn check(&self, client: ClientId, seq: u64) -> SessionCheck {
        match self.sessions.get(&client) {
            None => SessionCheck::Unknown,
            Some(s) if seq == s.last_seq && seq != 0 => {
                SessionCheck::Duplicate(s.last_result.clone())
            }
            Some(s) if seq <= s.last_seq => SessionCheck::Stale,
            Some(_) => SessionCheck::Fresh,
        }
    }

    /// Records that write `seq` of `client` was applied with `result`.
    pub fn record(
        &mut self,
        client: ClientId,
        seq: u64,
        result: Result<(), ServiceError>,
        now: u64,
    ) {
        if let Some(session) = self.sessions.get_mut(&client) {
            session.last_seq = seq;
            session.last_result = result;
            session.last_active = now;
        }
    }

    /// Drops sessions idle for longer than the TTL. Cheap to call on every
    /// command: it scans only every quarter TTL of log clock.
    pub fn expire(&mut self, now: u64) {
        if now < self.next_sweep {
            return;
        }
        let ttl = self.ttl;
        let idle: alloc::vec::Vec<ClientId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.last_active.saturating_add(ttl) < now)
            .map(|(id, _)| *id)
            .collect();
        for client in idle {
            self.remove(client);
        }
        self.next_sweep = now.saturating_add((ttl / 4).max(1));
    }

    /// The session of `client`.
    pub fn get(&self, client: ClientId) -> Option<&Session> {
        self.sessions.get(&client)
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session, by client id.
    pub fn iter(&self) -> impl Iterator<Item = (&ClientId, &Session)> {
        self.sessions.iter()
    }

    /// Time-to-live and capacity.
    pub fn limits(&self) -> (u64, usize) {
        (self.ttl, self.max_sessions)
    }

    /// Number of tombstones kept.
    pub fn tombstone_count(&self) -> usize {
        self.dropped_order.len()
    }

    pub(crate) fn next_sweep(&self) -> u64 {
        self.next_sweep
    }

    pub(crate) fn restore(
        ttl: u64,
        max_sessions: usize,
        max_dropped: usize,
        next_sweep: u64,
        sessions: BTreeMap<ClientId, Session>,
        tombstones: impl IntoIterator<Item = (u64, ClientId)>,
    ) -> SessionTable {
        let opened_by = sessions
            .iter()
            .filter(|(_, s)| s.nonce != 0)
            .map(|(id, s)| (s.nonce, *id))
            .collect();
        let mut table = SessionTable {
            sessions,
            opened_by,
            dropped: BTreeMap::new(),
            dropped_order: VecDeque::new(),
            ttl,
            max_sessions: max_sessions.max(1),
            max_dropped,
            next_sweep,
        };
        for (nonce, client) in tombstones {
            table.bury(nonce, client);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_stale_and_unknown() {
        let mut table = SessionTable::new(1000, 10, 10);
        assert_eq!(table.check(5, 1), SessionCheck::Unknown);
        table.register(5, 0, 0);
        assert_eq!(table.check(5, 1), SessionCheck::Fresh);
        table.record(5, 1, Ok(()), 1);
        assert_eq!(table.check(5, 1), SessionCheck::Duplicate(Ok(())));
        assert_eq!(table.check(5, 2), SessionCheck::Fresh);
        table.record(5, 2, Err(ServiceError::Busy), 2);
        assert_eq!(
            table.check(5, 2),
            SessionCheck::Duplicate(Err(ServiceError::Busy))
        );
        assert_eq!(table.check(5, 1), SessionCheck::Stale);
    }

    #[test]
    fn expiry_follows_the_log_clock() {
        let mut table = SessionTable::new(100, 10, 10);
        table.register(1, 0, 0);
        table.register(2, 0, 50);
        table.expire(100);
        assert_eq!(table.len(), 2);
        table.expire(140);
        assert!(table.get(1).is_none(), "idle for 140 > ttl");
        assert!(table.get(2).is_some());
        table.record(2, 1, Ok(()), 140);
        table.expire(239);
        assert!(table.get(2).is_some(), "activity renews the session");
    }

    #[test]
    fn an_opening_is_known_by_its_nonce_while_its_session_lives() {
        let mut table = SessionTable::new(100, 2, 2);
        table.register(7, 42, 0);
        assert_eq!(table.opened_by(42), Some(7));
        table.register(8, 43, 10);
        table.register(9, 44, 20);
        assert_eq!(table.opened_by(42), None, "evicted with its session");
        assert_eq!(table.dropped_opening(42), Some(7), "a tombstone stays");
        table.expire(200);
        assert_eq!(table.opened_by(43), None, "expired with its session");
        assert_eq!(table.opened_by(44), None);
        assert!(table.is_empty());
        // Two tombstones are kept: the oldest (42) is forgotten.
        assert_eq!(table.dropped_opening(42), None);
        assert_eq!(table.dropped_opening(43), Some(8));
        assert_eq!(table.dropped_opening(44), Some(9));
        let tombstones: alloc::vec::Vec<_> = table.tombstones().collect();
        assert_eq!(tombstones, [(43, 8), (44, 9)]);
    }

    #[test]
    fn capacity_evicts_least_recently_active() {
        let mut table = SessionTable::new(u64::MAX, 2, 2);
        table.register(1, 0, 10);
        table.register(2, 0, 5);
        table.register(3, 0, 20);
        assert!(table.get(2).is_none());
        assert!(table.get(1).is_some() && table.get(3).is_some());
    }
}
