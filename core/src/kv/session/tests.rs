use alloc::vec::Vec;

use super::*;
use crate::kv::codec::{Decoder, Encoder};

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

#[test]
fn last_seq_tombstones_refuse_what_the_dropped_session_reached() {
    let mut table = SessionTable::with_tombstones(Tombstones::LastSeq, 100, 1, 2);
    assert_eq!(table.admit(5, 3, 0), SessionCheck::Fresh, "opens");
    table.record(5, 3, Ok(()), 0);
    assert_eq!(table.admit(5, 3, 1), SessionCheck::Duplicate(Ok(())));
    assert_eq!(table.admit(6, 1, 2), SessionCheck::Fresh, "evicts 5");
    table.record(6, 1, Ok(()), 2);
    assert_eq!(table.dropped_through(5), Some(3));
    assert_eq!(table.admit(5, 3, 3), SessionCheck::Expired);
    assert_eq!(table.admit(5, 1, 3), SessionCheck::Expired);
    assert_eq!(table.dropped_opening(5), None, "not an opening table");
    assert_eq!(table.admit(5, 4, 4), SessionCheck::Fresh, "newer: reopens");
    table.record(5, 4, Ok(()), 4);
    // 6 is buried now; 5's tombstone stays until two newer drops.
    assert_eq!(table.tombstones().collect::<Vec<_>>(), [(5, 3), (6, 1)]);
    table.expire(1_000);
    assert_eq!(table.dropped_through(5), Some(4), "buried again, newest");
    assert_eq!(table.tombstones().collect::<Vec<_>>(), [(6, 1), (5, 4)]);
}

#[test]
fn the_session_codec_round_trips_both_kinds() {
    for kind in [Tombstones::Openings, Tombstones::LastSeq] {
        let limits = SessionLimits {
            ttl: 100,
            max_sessions: 2,
            max_dropped: 10,
        };
        let mut table = SessionTable::with_tombstones(kind, limits.ttl, limits.max_sessions, 10);
        for client in 1..=4 {
            table.register(client, client * 10, client);
            table.record(
                client,
                7,
                Err(ServiceError::Unavailable("j3".into())),
                client,
            );
        }
        table.register(9, 0, 5);
        table.record(
            9,
            2,
            Err(ServiceError::ValueTooLarge { size: 9, limit: 8 }),
            5,
        );
        assert!(table.tombstone_count() > 0);
        let mut e = Encoder::default();
        table.encode_into(&mut e);
        let bytes = e.finish();
        let mut d = Decoder::new(bytes.clone());
        let decoded = decode_sessions(&mut d, SessionLayout::CURRENT).unwrap();
        d.finish().unwrap();
        let restored = SessionTable::restore_with(kind, limits, table.next_sweep(), decoded);
        assert_eq!(restored, table);
        for cut in 0..bytes.len() {
            let mut d = Decoder::new(bytes.slice(..cut));
            assert!(decode_sessions(&mut d, SessionLayout::CURRENT).is_err());
        }
    }
}

#[test]
fn admit_with_applies_only_fresh_writes_and_records_them() {
    let mut table = SessionTable::with_tombstones(Tombstones::LastSeq, 100, 1, 2);
    let mut runs = 0;
    let mut apply = |result: Result<(), ServiceError>| {
        runs += 1;
        (runs, result)
    };
    assert_eq!(table.admit_with(5, 3, 0, || apply(Ok(()))), Ok(1), "opens");
    assert_eq!(
        table.get(5).map(|s| (s.last_seq, s.last_active)),
        Some((3, 0))
    );
    // A duplicate is answered from the session, not applied again.
    assert_eq!(
        table.admit_with(5, 3, 1, || apply(Ok(()))),
        Err(SessionCheck::Duplicate(Ok(())))
    );
    assert_eq!(
        table.admit_with(5, 4, 1, || apply(Err(ServiceError::Busy))),
        Ok(2)
    );
    assert_eq!(
        table.admit_with(5, 4, 2, || apply(Ok(()))),
        Err(SessionCheck::Duplicate(Err(ServiceError::Busy))),
        "a refusal is answered again"
    );
    // Older than the latest: stale, nothing recorded.
    assert_eq!(
        table.admit_with(5, 2, 2, || apply(Ok(()))),
        Err(SessionCheck::Stale)
    );
    assert_eq!(
        table.get(5).map(|s| (s.last_seq, s.last_active)),
        Some((4, 1))
    );
    // 6 evicts 5 (capacity 1): 5's writes up to 4 are refused as expired.
    assert_eq!(table.admit_with(6, 1, 2, || apply(Ok(()))), Ok(3));
    assert_eq!(
        table.admit_with(5, 4, 3, || apply(Ok(()))),
        Err(SessionCheck::Expired)
    );
    assert_eq!(
        table.admit_with(5, 1, 3, || apply(Ok(()))),
        Err(SessionCheck::Expired)
    );
    assert!(table.get(5).is_none(), "a refused retry opens nothing");
    assert_eq!(
        table.admit_with(5, 5, 4, || apply(Ok(()))),
        Ok(4),
        "newer: reopens"
    );
    assert_eq!(runs, 4, "applied once per fresh write only");
}

/// `admit_with` leaves the same table and gives the same outcomes as
/// `admit`, then the write, then `record`, over random writes of a few
/// clients through a small table (evictions, expiries, tombstones).
#[test]
fn admit_with_matches_admit_then_record() {
    for kind in [Tombstones::LastSeq, Tombstones::Openings] {
        let mut one = SessionTable::with_tombstones(kind, 40, 3, 4);
        let mut two = one.clone();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut now = 0;
        for _ in 0..20_000 {
            now += next(4);
            let client = next(6);
            let seq = next(12);
            let result = if next(5) == 0 {
                Err(ServiceError::Busy)
            } else {
                Ok(())
            };
            one.expire(now);
            two.expire(now);
            let expected = match one.admit(client, seq, now) {
                SessionCheck::Fresh => {
                    one.record(client, seq, result.clone(), now);
                    Ok(seq)
                }
                other => Err(other),
            };
            let got = two.admit_with(client, seq, now, || (seq, result));
            assert_eq!(got, expected, "client {client} seq {seq} at {now}");
            assert_eq!(one, two);
        }
        assert!(one.tombstone_count() > 0 || kind == Tombstones::Openings);
    }
}

/// A few dozen client ids spread over the whole range, as the sharded
/// service's clients draw them, and a few small ones.
fn scattered_ids() -> Vec<ClientId> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut ids: Vec<ClientId> = (0..40)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        })
        .collect();
    ids.extend([1, 2, 3, 17, 1_000]);
    ids
}

fn encoded(table: &SessionTable) -> bytes::Bytes {
    let mut e = Encoder::default();
    table.encode_into(&mut e);
    e.finish()
}

/// The hash table's order shows nowhere: tables fed the same sessions in
/// different orders encode alike, drop their sessions alike (several
/// expired at once go in client id order; eviction among sessions equally
/// idle takes the lowest client id) and leave the same tombstones in the
/// same order, which is the order a table sorted by client id gave.
#[test]
fn the_order_of_insertion_leaves_no_trace() {
    let ids = scattered_ids();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    // Sessions active at 0, 10, 20 or 30 (many ties).
    let active_at = |client: ClientId| client % 4 * 10;
    let mut shuffled = ids.clone();
    shuffled.reverse();
    shuffled.rotate_left(7);
    for kind in [Tombstones::LastSeq, Tombstones::Openings] {
        let fill = |order: &[ClientId]| {
            let mut table = SessionTable::with_tombstones(kind, 100, ids.len(), 1_000);
            for &client in order {
                table.register(client, !client, active_at(client));
                table.record(client, 1 + client % 5, Ok(()), active_at(client));
            }
            table
        };
        let mut tables = [fill(&ids), fill(&sorted), fill(&shuffled)];
        let bytes = encoded(&tables[0]);
        let debug = alloc::format!("{:?}", tables[0]);
        for table in &tables {
            assert_eq!(encoded(table), bytes);
            assert_eq!(alloc::format!("{table:?}"), debug);
            assert_eq!(table, &tables[0]);
        }
        // Sessions active at 0 and 10 are idle past the TTL at 111: they
        // expire at once, by client id.
        let expired: Vec<ClientId> = sorted
            .iter()
            .copied()
            .filter(|c| active_at(*c) <= 10)
            .collect();
        assert!(expired.len() > 10);
        // Every table is full: three openings evict the three least
        // recently active sessions, among those active at 20 the lowest
        // client ids first.
        let evicted: Vec<ClientId> = sorted
            .iter()
            .copied()
            .filter(|c| active_at(*c) == 20)
            .take(3)
            .collect();
        for table in &mut tables {
            table.expire(111);
            let mut filler = 100_000;
            while table.len() < ids.len() {
                table.register(filler, 0, 200);
                filler += 1;
            }
            for (client, now) in [(5, 112), (6, 113), (7, 114)] {
                table.register(client, !client, now);
            }
        }
        let tombstone_keys =
            |table: &SessionTable| -> Vec<u64> { table.tombstones().map(|(key, _)| key).collect() };
        let mut expected: Vec<u64> = expired.iter().chain(&evicted).copied().collect();
        if kind == Tombstones::Openings {
            // Keyed by the opening nonce.
            expected.iter_mut().for_each(|client| *client = !*client);
        }
        let bytes = encoded(&tables[0]);
        for table in &tables {
            assert_eq!(tombstone_keys(table), expected, "{kind:?}");
            assert_eq!(encoded(table), bytes);
            assert_eq!(table, &tables[0]);
        }
    }
}

#[test]
fn iter_yields_client_ids_ascending() {
    let ids = scattered_ids();
    let mut table = SessionTable::with_tombstones(Tombstones::LastSeq, 100, ids.len(), 10);
    for &client in &ids {
        table.register(client, 0, 0);
    }
    let listed: Vec<ClientId> = table.iter().map(|(client, _)| *client).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted);
}
