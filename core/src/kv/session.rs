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
//!
//! The sharded service ([`crate::shard`]) names its clients differently:
//! a client draws its own id and numbers all its writes in one sequence,
//! and a shard's session is opened by whichever write of the client
//! reaches that shard first, at any sequence number. There, a dropped
//! session leaves a tombstone of its client and its latest sequence
//! number ([`Tombstones::LastSeq`]); [`SessionTable::admit`] refuses a
//! write of an unknown session whose sequence number is at most that
//! (it is from the dropped session's time: it, or a later write, was
//! applied) and opens a session for a newer one (a client's sequence
//! numbers only grow, so that write was never applied here).
//!
//! One codec ([`SessionTable::encode_into`], [`decode_sessions`]) writes
//! the sessions and tombstones of every table: in the key-value snapshot,
//! in a moving shard and in the shard controller's snapshot; it is in
//! `session/codec.rs`.
//!
//! The live sessions are a hash table keyed by client id, so that the
//! lookup on every applied write is one probe, with a fixed hasher
//! ([`FxBuildHasher`]: no seed, nothing random). Its iteration order is
//! arbitrary (it depends on the table's history, such as its growth), and
//! nothing replicated follows it: wherever an order shows, it is restored
//! by client id. [`SessionTable::iter`] and so the snapshot encoding sort
//! the sessions, [`SessionTable::expire`] drops the idle ones in client id
//! order (that order is the order of their tombstones), the least recently
//! used session is the minimum of a total order (last activity, then client
//! id), and the `Debug` output lists the sessions by client id. Equality
//! does not depend on an order.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

use super::command::{ClientId, ServiceError};

mod codec;

pub use codec::{DecodedSessions, SessionLayout, SessionLimits, decode_sessions};

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

impl Session {
    /// Classifies a write `seq` of this session's client: the latest
    /// applied again ([`SessionCheck::Duplicate`], answered from its
    /// result), older ([`SessionCheck::Stale`]) or newer
    /// ([`SessionCheck::Fresh`]).
    fn check(&self, seq: u64) -> SessionCheck {
        if seq == self.last_seq && seq != 0 {
            SessionCheck::Duplicate(self.last_result.clone())
        } else if seq <= self.last_seq {
            SessionCheck::Stale
        } else {
            SessionCheck::Fresh
        }
    }
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
    /// No such session, and a dropped session of this client had already
    /// reached this sequence number: the write, or a later one, was
    /// applied, so it must not be again ([`SessionTable::admit`] only).
    Expired,
}

/// What a dropped session leaves behind (a table keeps one kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tombstones {
    /// The opening nonce of a dropped session, and the session it opened
    /// (the key-value service, whose sessions are opened by [`Command::Open`](super::Command::Open)).
    Openings,
    /// A dropped session's client and latest sequence number (the sharded
    /// service and the shard controller, whose clients name themselves).
    LastSeq,
}

/// All open sessions.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTable {
    /// The live sessions. Hashed: iterating it gives an arbitrary order,
    /// so whatever needs an order sorts by client id (see the module doc).
    sessions: HashMap<ClientId, Session, FxBuildHasher>,
    /// The session each non-zero nonce opened (derived from `sessions`).
    opened_by: BTreeMap<u64, ClientId>,
    /// Tombstones, by `kind`: the session each dropped session's nonce
    /// had opened ([`Tombstones::Openings`]), or each dropped client's
    /// latest sequence number ([`Tombstones::LastSeq`]).
    dropped: BTreeMap<u64, u64>,
    /// The keys of `dropped`, oldest drop first (`dropped.len() <= max_dropped`).
    dropped_order: VecDeque<u64>,
    kind: Tombstones,
    ttl: u64,
    max_sessions: usize,
    max_dropped: usize,
    next_sweep: u64,
}

impl SessionTable {
    /// An empty table whose sessions expire after `ttl` ms of log clock,
    /// holding at most `max_sessions` (at least 1) and the tombstones of
    /// the latest `max_dropped` dropped ones.
    /// Tombstones are of openings ([`Tombstones::Openings`]).
    pub fn new(ttl: u64, max_sessions: usize, max_dropped: usize) -> SessionTable {
        SessionTable::with_tombstones(Tombstones::Openings, ttl, max_sessions, max_dropped)
    }

    /// An empty table keeping tombstones of `kind`; otherwise as [`SessionTable::new`].
    pub fn with_tombstones(
        kind: Tombstones,
        ttl: u64,
        max_sessions: usize,
        max_dropped: usize,
    ) -> SessionTable {
        SessionTable {
            sessions: HashMap::with_hasher(FxBuildHasher),
            opened_by: BTreeMap::new(),
            dropped: BTreeMap::new(),
            dropped_order: VecDeque::new(),
            kind,
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
            // Client ids are unique, so (last activity, client id) has one
            // minimum whatever the order of the scan.
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
        match self.kind {
            Tombstones::Openings => self.dropped.get(&nonce).copied(),
            Tombstones::LastSeq => None,
        }
    }

    /// The latest sequence number of `client`'s dropped session, while its
    /// tombstone is kept ([`Tombstones::LastSeq`] tables only).
    pub fn dropped_through(&self, client: ClientId) -> Option<u64> {
        match self.kind {
            Tombstones::LastSeq => self.dropped.get(&client).copied(),
            Tombstones::Openings => None,
        }
    }

    /// The kind of tombstones kept.
    pub fn tombstone_kind(&self) -> Tombstones {
        self.kind
    }

    /// Tombstones of dropped sessions, oldest drop first: (nonce, session)
    /// for [`Tombstones::Openings`], (client, latest sequence number) for
    /// [`Tombstones::LastSeq`].
    pub fn tombstones(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.dropped_order
            .iter()
            .map(|key| (*key, self.dropped[key]))
    }

    fn remove(&mut self, client: ClientId) {
        let Some(session) = self.sessions.remove(&client) else {
            return;
        };
        if session.nonce != 0 {
            self.opened_by.remove(&session.nonce);
        }
        match self.kind {
            Tombstones::Openings if session.nonce != 0 => self.bury(session.nonce, client),
            Tombstones::Openings => {}
            Tombstones::LastSeq => self.bury(client, session.last_seq),
        }
    }

    /// Keeps the tombstone `key` → `value` (forgetting the oldest beyond
    /// `max_dropped`); a key buried again becomes the newest.
    fn bury(&mut self, key: u64, value: u64) {
        if self.max_dropped == 0 {
            return;
        }
        if self.dropped.insert(key, value).is_some() {
            self.dropped_order.retain(|k| *k != key);
        }
        self.dropped_order.push_back(key);
        while self.dropped_order.len() > self.max_dropped {
            let oldest = self.dropped_order.pop_front().expect("over the limit");
            self.dropped.remove(&oldest);
        }
    }

    /// Classifies a write `seq` of `client`.
    pub fn check(&self, client: ClientId, seq: u64) -> SessionCheck {
        match self.sessions.get(&client) {
            None => SessionCheck::Unknown,
            Some(session) => session.check(seq),
        }
    }

    /// For a write `seq` of a client with no session, in a
    /// [`Tombstones::LastSeq`] table: [`SessionCheck::Expired`] if its
    /// dropped session had reached `seq`, otherwise its session is opened
    /// at log clock `now` (whatever `seq` is).
    fn open_for_write(&mut self, client: ClientId, seq: u64, now: u64) -> Result<(), SessionCheck> {
        if self.dropped_through(client).is_some_and(|last| seq <= last) {
            return Err(SessionCheck::Expired);
        }
        self.register(client, 0, now);
        Ok(())
    }

    /// Classifies a write `seq` of `client` in a [`Tombstones::LastSeq`]
    /// table, opening a session at log clock `now` for the write of an
    /// unknown client that is newer than its dropped session (or that has
    /// none): then [`SessionCheck::Fresh`], never [`SessionCheck::Unknown`].
    /// [`SessionCheck::Expired`] for a write of an unknown client that its
    /// dropped session had reached.
    pub fn admit(&mut self, client: ClientId, seq: u64, now: u64) -> SessionCheck {
        match self.check(client, seq) {
            SessionCheck::Unknown => match self.open_for_write(client, seq, now) {
                Ok(()) => SessionCheck::Fresh,
                Err(expired) => expired,
            },
            known => known,
        }
    }

    /// [`SessionTable::admit`] and [`SessionTable::record`] with one search
    /// of the table for a known client (every write but a session's first):
    /// `apply` runs only for a write that `admit` would find
    /// [`SessionCheck::Fresh`], and the result it returns for the session
    /// is recorded at `now`; its value is returned. Otherwise nothing
    /// changes and the check is returned
    /// ([`SessionCheck::Duplicate`], [`SessionCheck::Stale`] or
    /// [`SessionCheck::Expired`]). The same outcomes and the same table as
    /// `admit`, then `apply`, then `record` for a fresh write.
    pub fn admit_with<T>(
        &mut self,
        client: ClientId,
        seq: u64,
        now: u64,
        apply: impl FnOnce() -> (T, Result<(), ServiceError>),
    ) -> Result<T, SessionCheck> {
        let session = match self.sessions.get_mut(&client) {
            Some(session) => match session.check(seq) {
                SessionCheck::Fresh => session,
                refused => return Err(refused),
            },
            None => {
                self.open_for_write(client, seq, now)?;
                self.sessions
                    .get_mut(&client)
                    .expect("a session just registered")
            }
        };
        let (value, result) = apply();
        session.last_seq = seq;
        session.last_result = result;
        session.last_active = now;
        Ok(value)
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
        let mut idle: Vec<ClientId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.last_active.saturating_add(ttl) < now)
            .map(|(id, _)| *id)
            .collect();
        // The order of removal is the order of the tombstones: by client
        // id, not the hash table's.
        idle.sort_unstable();
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

    /// Every session, by client id. Sorts a list of them first: for
    /// snapshots and other rare paths, not for every write.
    pub fn iter(&self) -> impl Iterator<Item = (&ClientId, &Session)> {
        let mut sessions: Vec<(&ClientId, &Session)> = self.sessions.iter().collect();
        sessions.sort_unstable_by_key(|(client, _)| **client);
        sessions.into_iter()
    }

    /// Time-to-live and capacity.
    pub fn limits(&self) -> (u64, usize) {
        (self.ttl, self.max_sessions)
    }

    /// Number of tombstones kept.
    pub fn tombstone_count(&self) -> usize {
        self.dropped_order.len()
    }

    /// Where the next expiry scan is due (log clock, ms), for snapshots.
    pub fn next_sweep(&self) -> u64 {
        self.next_sweep
    }
}

/// Lists the sessions by client id, as the table did when it was ordered,
/// so that state dumps are the same on every replica and run.
impl fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTable")
            .field("sessions", &SessionsById(self))
            .field("opened_by", &self.opened_by)
            .field("dropped", &self.dropped)
            .field("dropped_order", &self.dropped_order)
            .field("kind", &self.kind)
            .field("ttl", &self.ttl)
            .field("max_sessions", &self.max_sessions)
            .field("max_dropped", &self.max_dropped)
            .field("next_sweep", &self.next_sweep)
            .finish()
    }
}

/// The sessions of a table as a map by client id, for `Debug`.
struct SessionsById<'a>(&'a SessionTable);

impl fmt::Debug for SessionsById<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests;
