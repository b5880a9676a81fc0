//! The key-value state machine: data plus client sessions, driven by
//! committed log entries, with a snapshot format of its own.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

use super::codec::{DecodeError, Decoder, Encoder};
use super::command::{ClientId, Command, MAX_KEY_BYTES, MAX_VALUE_BYTES, Operation, ServiceError};
use super::session::{Session, SessionCheck, SessionTable};
use crate::raft::{LogIndex, Payload};

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
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_key_bytes: MAX_KEY_BYTES,
            max_value_bytes: MAX_VALUE_BYTES,
            session_ttl_ms: 60 * 60 * 1000,
            max_sessions: 100_000,
        }
    }
}

/// What applying one entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A no-op or membership entry.
    Nothing,
    /// A session was opened.
    Registered(ClientId),
    /// A write in a session: its result (the stored one, for a duplicate).
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
    /// Largest leader clock seen in the log (ms).
    clock: u64,
    limits: StoreLimits,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"DKVS";
const SNAPSHOT_VERSION: u8 = 1;

impl KvStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> KvStore {
        KvStore {
            data: BTreeMap::new(),
            sessions: SessionTable::new(limits.session_ttl_ms, limits.max_sessions),
            clock: 0,
            limits,
        }
    }

    /// Applies the committed entry at `index`.
    pub fn apply(&mut self, index: LogIndex, payload: &Payload) -> Applied {
        let Payload::Command(bytes) = payload else {
            return Applied::Nothing;
        };
        let Ok(command) = Command::decode(bytes.clone()) else {
            return Applied::Undecodable;
        };
        match command {
            Command::Register { at } => {
                self.advance_clock(at);
                self.sessions.register(index, self.clock);
                Applied::Registered(index)
            }
            Command::Write {
                client,
                seq,
                at,
                operation,
            } => {
                self.advance_clock(at);
                match self.sessions.check(client, seq) {
                    SessionCheck::Unknown => Applied::Refused {
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
        }
    }

    fn advance_clock(&mut self, at: u64) {
        self.clock = self.clock.max(at);
        self.sessions.expire(self.clock);
    }

    fn write(&mut self, operation: Operation) -> Result<(), ServiceError> {
        operation.validate(self.limits.max_key_bytes, self.limits.max_value_bytes)?;
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

    /// The log clock (largest leader time seen, ms).
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
        e.varint(self.sessions.len() as u64);
        for (client, session) in self.sessions.iter() {
            e.varint(*client)
                .varint(session.last_seq)
                .varint(session.last_active);
            match &session.last_result {
                Ok(()) => {
                    e.u8(0);
                }
                Err(ServiceError::ValueTooLarge { size, limit }) => {
                    e.u8(1).varint(*size as u64).varint(*limit as u64);
                }
                Err(ServiceError::KeyTooLarge { size, limit }) => {
                    e.u8(2).varint(*size as u64).varint(*limit as u64);
                }
                Err(_) => {
                    e.u8(3);
                }
            }
        }
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
        if d.u8()? != SNAPSHOT_VERSION {
            return Err(DecodeError::Invalid("snapshot version"));
        }
        let clock = d.varint()?;
        let next_sweep = d.varint()?;
        let session_count = d.varint()?;
        let mut sessions = BTreeMap::new();
        for _ in 0..session_count {
            let client = d.varint()?;
            let last_seq = d.varint()?;
            let last_active = d.varint()?;
            let last_result = match d.u8()? {
                0 => Ok(()),
                1 => Err(ServiceError::ValueTooLarge {
                    size: d.varint()? as usize,
                    limit: d.varint()? as usize,
                }),
                2 => Err(ServiceError::KeyTooLarge {
                    size: d.varint()? as usize,
                    limit: d.varint()? as usize,
                }),
                3 => Err(ServiceError::Busy),
                _ => return Err(DecodeError::Invalid("session result")),
            };
            sessions.insert(
                client,
                Session {
                    last_seq,
                    last_result,
                    last_active,
                },
            );
        }
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
            sessions: SessionTable::restore(
                limits.session_ttl_ms,
                limits.max_sessions,
                next_sweep,
                sessions,
            ),
            clock,
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
mod tests {
    use super::*;

    fn write(client: ClientId, seq: u64, operation: Operation) -> Payload {
        Payload::Command(
            Command::Write {
                client,
                seq,
                at: seq,
                operation,
            }
            .encode(),
        )
    }

    fn put(k: &str, v: &str) -> Operation {
        Operation::Put {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
        }
    }

    fn append(k: &str, v: &str) -> Operation {
        Operation::Append {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
        }
    }

    fn register() -> Payload {
        Payload::Command(Command::Register { at: 0 }.encode())
    }

    #[test]
    fn put_append_delete() {
        let mut store = KvStore::new(StoreLimits::default());
        assert_eq!(store.apply(1, &register()), Applied::Registered(1));
        store.apply(2, &write(1, 1, append("x", "a")));
        assert_eq!(
            store.get(b"x").map(|v| &v[..]),
            Some(&b"a"[..]),
            "append to a missing key"
        );
        store.apply(3, &write(1, 2, append("x", "b")));
        assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"ab"[..]));
        store.apply(4, &write(1, 3, put("x", "z")));
        assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"z"[..]));
        store.apply(
            5,
            &write(
                1,
                4,
                Operation::Delete {
                    key: Bytes::from_static(b"x"),
                },
            ),
        );
        assert_eq!(store.get(b"x"), None);
    }

    #[test]
    fn retried_append_is_applied_once() {
        let mut store = KvStore::new(StoreLimits::default());
        store.apply(1, &register());
        let first = store.apply(2, &write(1, 1, append("x", "a")));
        let retry = store.apply(3, &write(1, 1, append("x", "a")));
        assert!(matches!(
            first,
            Applied::Write {
                duplicate: false,
                ..
            }
        ));
        assert!(matches!(
            retry,
            Applied::Write {
                duplicate: true,
                result: Ok(()),
                ..
            }
        ));
        assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"a"[..]));
        let unknown = store.apply(4, &write(99, 1, append("x", "a")));
        assert!(matches!(
            unknown,
            Applied::Refused {
                error: ServiceError::SessionExpired,
                ..
            }
        ));
        assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"a"[..]));
    }

    #[test]
    fn append_past_the_value_limit_is_refused_everywhere_alike() {
        let limits = StoreLimits {
            max_value_bytes: 3,
            ..StoreLimits::default()
        };
        let mut store = KvStore::new(limits);
        store.apply(1, &register());
        store.apply(2, &write(1, 1, append("x", "ab")));
        let refused = store.apply(3, &write(1, 2, append("x", "cd")));
        assert!(matches!(
            refused,
            Applied::Write {
                result: Err(ServiceError::ValueTooLarge { size: 4, limit: 3 }),
                ..
            }
        ));
        assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"ab"[..]));
    }

    #[test]
    fn snapshot_round_trip_keeps_sessions() {
        let mut store = KvStore::new(StoreLimits::default());
        store.apply(1, &register());
        store.apply(2, &write(1, 1, append("k", "v")));
        store.apply(3, &write(1, 2, put("other", "")));
        let restored =
            KvStore::restore(store.snapshot(), StoreLimits::default()).expect("valid snapshot");
        assert_eq!(restored, store);
        let mut restored = restored;
        let retry = restored.apply(4, &write(1, 2, put("other", "")));
        assert!(
            matches!(
                retry,
                Applied::Write {
                    duplicate: true,
                    ..
                }
            ),
            "sessions survive the snapshot"
        );
    }

    #[test]
    fn corrupt_snapshots_are_errors() {
        let mut store = KvStore::new(StoreLimits::default());
        store.apply(1, &register());
        store.apply(2, &write(1, 1, put("k", "v")));
        let good = store.snapshot();
        for cut in 0..good.len() {
            assert!(
                KvStore::restore(good.slice(..cut), StoreLimits::default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = good.to_vec();
        bad[0] = b'X';
        assert!(KvStore::restore(Bytes::from(bad), StoreLimits::default()).is_err());
    }

    #[test]
    fn undecodable_commands_are_skipped() {
        let mut store = KvStore::new(StoreLimits::default());
        assert_eq!(
            store.apply(1, &Payload::Command(Bytes::from_static(b"junk"))),
            Applied::Undecodable
        );
        assert_eq!(store.apply(2, &Payload::Noop), Applied::Nothing);
    }
}
