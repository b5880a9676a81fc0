//! The session table's search on every applied write:
//! `SessionTable::admit_with` for a fresh write of a known session, picked
//! at random, in [`Tombstones::LastSeq`] tables (the sharded service's):
//!
//! - `admit_with/tables/1/sessions/600` and `.../tables/1/sessions/5000`:
//!   one table, which stays in the cache;
//! - `admit_with/tables/256/sessions/600`: a random table of 256 each
//!   call, so the table is mostly out of the cache, like a loaded server's.
//!
//! Client ids are random 64-bit values (the sharded service's clients
//! draw their own); each call writes the next sequence number of the
//! whole run, so every write is fresh. The time per call includes drawing
//! the table and the session from a seeded [`Rng`] (a few ns).
//!
//! Run: `cargo bench -p distribkv-core --bench sessions`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use distribkv_core::kv::ClientId;
use distribkv_core::kv::session::{SessionTable, Tombstones};
use distribkv_core::rng::Rng;

/// The tombstones kept, as the services' default.
const MAX_DROPPED: usize = 100_000;

/// The id of session `index` of table `table`: a fixed mix of the two (the
/// SplitMix64 finalizer), so that the ids look random and need no list
/// that the benchmark would read besides the table.
fn client_id(table: usize, index: usize) -> ClientId {
    let mut z = ((table as u64) << 32 | index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `tables` tables of `sessions` sessions each, every session opened by a
/// write with sequence number 1 at log clock 1.
fn tables(tables: usize, sessions: usize) -> Vec<SessionTable> {
    (0..tables)
        .map(|table| {
            let mut sessions_table =
                SessionTable::with_tombstones(Tombstones::LastSeq, u64::MAX, sessions, MAX_DROPPED);
            for index in 0..sessions {
                sessions_table
                    .admit_with(client_id(table, index), 1, 1, || ((), Ok(())))
                    .expect("a new client's first write");
            }
            assert_eq!(sessions_table.len(), sessions);
            sessions_table
        })
        .collect()
}

fn admit_with(c: &mut Criterion) {
    let mut group = c.benchmark_group("admit_with");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (table_count, sessions) in [(1usize, 600usize), (1, 5_000), (256, 600)] {
        let mut all = tables(table_count, sessions);
        let id = BenchmarkId::new(format!("tables/{table_count}/sessions"), sessions);
        let mut rng = Rng::new(42);
        // Above every session's sequence number: each write is fresh.
        let mut seq = 1u64;
        group.bench_function(id, |b| {
            b.iter(|| {
                seq += 1;
                let table = rng.index(table_count);
                let client = client_id(table, rng.index(sessions));
                let admitted = all[table].admit_with(client, seq, seq, || ((), Ok(())));
                black_box(admitted).expect("a fresh write of a known session");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, admit_with);
criterion_main!(benches);
