//! The key-value state machine: data plus client sessions, driven by
//! committed log entries, with a snapshot format of its own.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

use super::codec::{DecodeError, Decoder, Encoder};
use super::command::{ClientId, Command, MAX_KEY_BYTES, MAX_VALUE_BYTES, Operation, ServiceError};
use super::session::{
    SessionCheck, SessionLayout, SessionLimits, SessionTable, Tombstones, decode_sessions,
};
use crate::raft::{Entry, LogIndex, Payload};

/// Size limits and session policy of the state machine. Every replica of a
/// cluster must use the same values (they decide what applying does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Largest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes, also after an append.
    pub max_value_bytes: usize,
    /// Sessions idle longer than this (log clock, ms) expire.
    pub session_ttl_ms: u64,
    /// Most open sessions.
    pub max_sessions: usize,
    /// Tombstones kept of dropped sessions' openings, so that a retried
    /// first write of a dropped session is refused instead of applied again.
    pub max_dropped_sessions: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_key_bytes: MAX_KEY_BYTES,
            max_value_bytes: MAX_VALUE_BYTES,
            session_ttl_ms: 60 * 60 * 1000,
            max_sessions: 100_000,
            max_dropped_sessions: 100_000,
        }
    }
}

impl StoreLimits {
    /// The session table's share of the limits.
    pub fn session_limits(&self) -> SessionLimits {
        SessionLimits {
            ttl: self.session_ttl_ms,
            max_sessions: self.max_sessions,
            max_dropped: self.max_dropped_sessions,
        }
    }
}

/// What applying one entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A no-op or membership entry.
    Nothing,
    /// A session was opened by a bare registration ([`Command::Register`],
    /// in logs of earlier versions).
    Registered(ClientId),
    /// A write in a session (the first one opens it, [`Command::Open`]): its
    /// result (the stored one, for a duplicate).
    Write {
        /// Session.
        client: ClientId,
        /// Sequence number.
        seq: u64,
        /// Outcome.
        result: Result<(), ServiceError>,
        /// Whether it had already been applied (a retry).
        duplicate: bool,
    },
    /// A write whose session is unknown (expired) or whose sequence number is stale.
    Refused {
        /// Session.
        client: ClientId,
        /// Sequence number.
        seq: u64,
        /// Why.
        error: ServiceError,
    },
    /// A command that does not decode (never produced by a correct replica):
    /// skipped identically everywhere.
    Undecodable,
}

/// The replicated key-value state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvStore {
    data: BTreeMap<Bytes, Bytes>,
    sessions: SessionTable,
    /// The log clock (ms): the time the leaders measured between their own
    /// commands, summed. Drives session expiry.
    clock: u64,
    /// The term of the latest command applied, and its leader's clock then:
    /// the next command of the same term moves the log clock by the time
    /// its leader measured since. A command of a new term moves it by
    /// nothing: two leaders' clocks have different origins (and a leader
    /// whose clock runs far ahead must not expire every session at once).
    clock_term: u64,
    clock_at: u64,
    limits: StoreLimits,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"DKVS";
/// Version 2 records each session's opening nonce; version 3 the tombstones
/// of dropped openings. Versions 1 (no nonce) and 2 (no tombstones) are
/// still read.
const SNAPSHOT_VERSION: u8 = 3;

impl KvStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> KvStore {
        KvStore {
            data: BTreeMap::new(),
            sessions: SessionTable::new(
                limits.session_ttl_ms,
                limits.max_sessions,
                limits.max_dropped_sessions,
            ),
            clock: 0,
            clock_term: 0,
            clock_at: 0,
            limits,
        }
    }

    /// Applies a committed entry.
    pub fn apply_entry(&mut self, entry: &Entry) -> Applied {
        self.apply_in_term(entry.index, entry.term, &entry.payload)
    }

    /// Applies the committed entry at `index`, as if every command came
    /// from one leader (term 0): the log clock follows the commands' `at`.
    pub fn apply(&mut self, index: LogIndex, payload: &Payload) -> Applied {
        self.apply_in_term(index, 0, payload)
    }

    /// Applies the committed entry at `index` of term `term`.
    pub fn apply_in_term(&mut self, index: LogIndex, term: u64, payload: &Payload) -> Applied {
        let Payload::Command(bytes) = payload else {
            return Applied::Nothing;
        };
        let Ok(command) = Command::decode(bytes.clone()) else {
            return Applied::Undecodable;
        };
        match command {
            Command::Register { at } => {
                self.advance_clock(term, at);
                self.sessions.register(index, 0, self.clock);
                Applied::Registered(index)
            }
            Command::Open {
                nonce,
                at,
                operation,
            } => {
                self.advance_clock(term, at);
                match self.sessions.opened_by(nonce) {
                    // A retried opening: the write is the session's first.
                    Some(client) => self.apply_write(client, 1, operation),
                    // A retried opening of a session since dropped: it was
                    // applied once, it must not be again.
                    None if let Some(client) = self.sessions.dropped_opening(nonce) => {
                        Applied::Refused {
                            client,
                            seq: 1,
                            error: ServiceError::SessionExpired,
                        }
                    }
                    None => {
                        self.sessions.register(index, nonce, self.clock);
                        self.apply_write(index, 1, operation)
                    }
                }
            }
            Command::Write {
                client,
                seq,
                at,
                operation,
            } => {
                self.advance_clock(term, at);
                self.apply_write(client, seq, operation)
            }
        }
    }

    /// Applies write `seq` of session `client`, unless it is a duplicate,
    /// stale, or the session is unknown.
    fn apply_write(&mut self, client: ClientId, seq: u64, operation: Operation) -> Applied {
        match self.sessions.check(client, seq) {
            SessionCheck::Unknown | SessionCheck::Expired => Applied::Refused {
                client,
                seq,
                error: ServiceError::SessionExpired,
            },
            SessionCheck::Stale => Applied::Refused {
                client,
                seq,
                error: ServiceError::StaleSequence,
            },
            SessionCheck::Duplicate(result) => Applied::Write {
                client,
                seq,
                result,
                duplicate: true,
            },
            SessionCheck::Fresh => {
                let result = self.write(operation);
                self.sessions
                    .record(client, seq, result.clone(), self.clock);
                Applied::Write {
                    client,
                    seq,
                    result,
                    duplicate: false,
                }
            }
        }
    }

    /// Moves the log clock by what the command's leader measured since its
    /// previous command (nothing for a new term's first one; see `clock_term`).
    fn advance_clock(&mut self, term: u64, at: u64) {
        if term == self.clock_term {
            self.clock = self.clock.saturating_add(at.saturating_sub(self.clock_at));
            self.clock_at = self.clock_at.max(at);
        } else if term > self.clock_term {
            self.clock_term = term;
            self.clock_at = at;
        }
        self.sessions.expire(self.clock);
    }

    /// Applies a write. Its key and value were checked against the limits
    /// before it reached the log ([`Operation::validate`], by the replica);
    /// what an append makes is checked here.
    fn write(&mut self, operation: Operation) -> Result<(), ServiceError> {
        match operation {
            Operation::Put { key, value } => {
                self.data.insert(key, value);
            }
            Operation::Append { key, value } => {
                let current = self.data.get(&key).map_or(0, Bytes::len);
                let size = current + value.len();
                if size > self.limits.max_value_bytes {
                    return Err(ServiceError::ValueTooLarge {
                        size,
                        limit: self.limits.max_value_bytes,
                    });
                }
                let mut joined = BytesMut::with_capacity(size);
                if let Some(old) = self.data.get(&key) {
                    joined.extend_from_slice(old);
                }
                joined.extend_from_slice(&value);
                self.data.insert(key, joined.freeze());
            }
            Operation::Delete { key } => {
                self.data.remove(&key);
            }
            Operation::Get { .. } => {}
        }
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.data.get(key)
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.data.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The session table.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// The log clock, ms (see `advance_clock`).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The limits the store applies.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// Serializes data and sessions.
    pub fn snapshot(&self) -> Bytes {
        let size: usize = self
            .data
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
            + 32 * self.sessions.len()
            + 64;
        let mut e = Encoder::with_capacity(size);
        e.raw(SNAPSHOT_MAGIC).u8(SNAPSHOT_VERSION);
        e.varint(self.clock).varint(self.sessions.next_sweep());
        e.varint(self.clock_term).varint(self.clock_at);
        self.sessions.encode_into(&mut e);
        e.varint(self.data.len() as u64);
        for (key, value) in &self.data {
            e.bytes(key).bytes(value);
        }
        e.finish()
    }

    /// Rebuilds a store from [`KvStore::snapshot`] output.
    pub fn restore(snapshot: Bytes, limits: StoreLimits) -> Result<KvStore, DecodeError> {
        let mut d = Decoder::new(snapshot);
        if d.raw(4)?.as_ref() != SNAPSHOT_MAGIC {
            return Err(DecodeError::Invalid("snapshot magic"));
        }
        let version = d.u8()?;
        if !(1..=SNAPSHOT_VERSION).contains(&version) {
            return Err(DecodeError::Invalid("snapshot version"));
        }
        let clock = d.varint()?;
        let next_sweep = d.varint()?;
        let (clock_term, clock_at) = if version >= 3 {
            (d.varint()?, d.varint()?)
        } else {
            (0, 0)
        };
        let layout = SessionLayout {
            nonces: version >= 2,
            tombstones: version >= 3,
        };
        let sessions = decode_sessions(&mut d, layout)?;
        let key_count = d.varint()?;
        let mut data = BTreeMap::new();
        for _ in 0..key_count {
            let key = d.bytes()?;
            let value = d.bytes()?;
            data.insert(key, value);
        }
        d.finish()?;
        Ok(KvStore {
            data,
            sessions: SessionTable::restore_with(
                Tombstones::Openings,
                limits.session_limits(),
                next_sweep,
                sessions,
            ),
            clock,
            clock_term,
            clock_at,
            limits,
        })
    }

    /// A fingerprint of data and sessions, for comparing replicas.
    pub fn fingerprint(&self) -> u64 {
        let mut hash = crate::hash::Fnv::new();
        hash.write(&self.snapshot());
        hash.finish()
    }

    /// Keys and values as owned pairs (for tests and displays).
    pub fn to_vec(&self) -> Vec<(Bytes, Bytes)> {
        self.data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
