//! Unit tests of the key-value state machine.

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

fn open(nonce: u64, operation: Operation) -> Payload {
    Payload::Command(
        Command::Open {
            nonce,
            at: 0,
            operation,
        }
        .encode(),
    )
}

#[test]
fn the_first_write_opens_the_session_and_a_retried_opening_is_applied_once() {
    let mut store = KvStore::new(StoreLimits::default());
    let first = store.apply(1, &open(42, append("x", "a")));
    assert_eq!(
        first,
        Applied::Write {
            client: 1,
            seq: 1,
            result: Ok(()),
            duplicate: false
        },
        "session 1, the entry's index"
    );
    // The same opening retried (another leader proposed it again).
    let retry = store.apply(2, &open(42, append("x", "a")));
    assert!(matches!(
        retry,
        Applied::Write {
            client: 1,
            duplicate: true,
            ..
        }
    ));
    assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"a"[..]));
    store.apply(3, &write(1, 2, append("x", "b")));
    // A late copy of the opening after the client moved on: stale.
    let late = store.apply(4, &open(42, append("x", "a")));
    assert!(matches!(
        late,
        Applied::Refused {
            error: ServiceError::StaleSequence,
            ..
        }
    ));
    // Another client's opening is a session of its own.
    let other = store.apply(5, &open(43, append("x", "c")));
    assert!(matches!(other, Applied::Write { client: 5, .. }));
    assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"abc"[..]));
    assert_eq!(store.sessions().len(), 2);
}

#[test]
fn an_opening_is_recognised_after_a_snapshot_and_old_snapshots_still_load() {
    let mut store = KvStore::new(StoreLimits::default());
    store.apply(1, &open(42, append("x", "a")));
    let mut restored =
        KvStore::restore(store.snapshot(), StoreLimits::default()).expect("valid snapshot");
    assert_eq!(restored, store);
    let retry = restored.apply(2, &open(42, append("x", "a")));
    assert!(matches!(
        retry,
        Applied::Write {
            duplicate: true,
            ..
        }
    ));
    // A version-1 snapshot (sessions without a nonce) of the same state.
    let mut v1 = Encoder::default();
    v1.raw(SNAPSHOT_MAGIC).u8(1).varint(0).varint(0).varint(1);
    v1.varint(1).varint(1).varint(0).u8(0);
    v1.varint(1).bytes(b"x").bytes(b"a");
    let old = KvStore::restore(v1.finish(), StoreLimits::default()).expect("a v1 snapshot");
    assert_eq!(old.get(b"x").map(|v| &v[..]), Some(&b"a"[..]));
    assert_eq!(old.sessions().get(1).map(|s| s.nonce), Some(0));
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

fn open_at(nonce: u64, at: u64, operation: Operation) -> Payload {
    Payload::Command(
        Command::Open {
            nonce,
            at,
            operation,
        }
        .encode(),
    )
}

fn entry(index: LogIndex, term: u64, payload: Payload) -> Entry {
    Entry {
        index,
        term,
        payload,
    }
}

#[test]
fn a_retried_opening_of_a_dropped_session_is_refused_not_applied_again() {
    let limits = StoreLimits {
        session_ttl_ms: 100,
        max_sessions: 1,
        ..StoreLimits::default()
    };
    let mut store = KvStore::new(limits);
    // Client A opens its session with an append; its answer is lost.
    store.apply_entry(&entry(1, 1, open_at(41, 0, append("x", "a"))));
    // Client B opens one too, evicting A's (one session at most).
    store.apply_entry(&entry(2, 1, open_at(42, 10, put("y", "b"))));
    assert!(store.sessions().get(1).is_none(), "A's session was evicted");
    // A retries its opening: it must not open a second session.
    let retry = store.apply_entry(&entry(3, 1, open_at(41, 20, append("x", "a"))));
    assert_eq!(
        retry,
        Applied::Refused {
            client: 1,
            seq: 1,
            error: ServiceError::SessionExpired
        }
    );
    assert_eq!(store.get(b"x").map(|v| &v[..]), Some(&b"a"[..]));
    // The tombstone survives a snapshot.
    let restored = KvStore::restore(store.snapshot(), limits).unwrap();
    assert_eq!(restored.sessions().dropped_opening(41), Some(1));
    assert_eq!(restored, store);
}

#[test]
fn a_leader_whose_clock_runs_far_ahead_does_not_expire_every_session() {
    let limits = StoreLimits {
        session_ttl_ms: 1_000,
        ..StoreLimits::default()
    };
    let mut store = KvStore::new(limits);
    store.apply_entry(&entry(1, 1, open_at(41, 5_000, put("x", "a"))));
    store.apply_entry(&entry(2, 1, open_at(42, 5_400, put("y", "b"))));
    assert_eq!(store.clock(), 400, "the term's leader measured 400 ms");
    // A new leader whose clock reads an hour ahead: its first command does
    // not move the log clock, the next ones move it by what it measures.
    store.apply_entry(&entry(3, 2, open_at(43, 3_605_000, put("z", "c"))));
    assert_eq!(store.clock(), 400);
    assert_eq!(store.sessions().len(), 3, "nobody expired");
    store.apply_entry(&entry(4, 2, open_at(44, 3_605_700, put("w", "d"))));
    assert_eq!(store.clock(), 1_100);
    assert!(store.sessions().get(1).is_none(), "idle for 1,100 ms > TTL");
    assert!(store.sessions().get(2).is_some(), "idle for 700 ms");
}
