//! How long the linearizability checker takes on a realistic history:
//! 10,000 operations from 16 clients over 10 keys (and from 4 clients on a
//! single key), heavily overlapping, a mix of gets, appends of unique tokens,
//! puts and deletes.
//!
//! `cargo bench -p distribkv-core --features check --bench checker`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use distribkv_core::check::{Budget, OpKind, Operation, Outcome, check_linearizable};
use distribkv_core::rng::Rng;

const OPERATIONS: usize = 10_000;

/// An operation before the replay decides what its `Get` read.
struct Planned {
    operation: Operation,
    /// When it takes effect; between its invocation and its completion.
    takes_effect_at: u64,
    /// Recorded with an unknown outcome.
    unknown: bool,
    /// Never takes effect (only for unknown writes).
    lost: bool,
}

/// A history of `clients` clients over `keys` keys, recorded from a real
/// sequential execution: each client runs one
/// operation at a time, each operation takes effect at a random instant of
/// its interval, and the store applies them in that order. Operations last
/// 1 to 60 time units with gaps of 0 to 3 between a client's operations, so
/// each overlaps those of most other clients. `unknown_share` of the writes
/// end with an unknown outcome, half of which never took effect.
fn realistic_history(seed: u64, clients: u64, keys: u64, unknown_share: f64) -> Vec<Operation> {
    let mut rng = Rng::new(seed);
    let mut clock = vec![0u64; clients as usize];
    let mut sequence = vec![0u64; clients as usize];
    let mut planned = Vec::with_capacity(OPERATIONS);
    for id in 0..OPERATIONS as u64 {
        let client = rng.range(0, clients);
        let seq = &mut sequence[client as usize];
        *seq += 1;
        let key = format!("key{}", rng.range(0, keys)).into_bytes();
        let kind = match rng.range(0, 100) {
            0..45 => OpKind::Get,
            45..75 => OpKind::Append(format!("[c{client}.{seq}]").into_bytes()),
            75..95 => OpKind::Put(format!("v{client}.{seq}").into_bytes()),
            _ => OpKind::Delete,
        };
        let invoked_at = clock[client as usize] + rng.range_inclusive(0, 3);
        let completed_at = invoked_at + rng.range_inclusive(1, 60);
        clock[client as usize] = completed_at;
        let unknown = kind.is_write() && rng.chance(unknown_share);
        let lost = unknown && rng.chance(0.5);
        planned.push(Planned {
            takes_effect_at: rng.range_inclusive(invoked_at, completed_at),
            operation: Operation {
                id,
                client,
                key,
                kind,
                invoked_at,
                outcome: Outcome::Ok {
                    completed_at,
                    value: None,
                },
            },
            unknown,
            lost,
        });
    }
    planned.sort_by_key(|plan| (plan.takes_effect_at, plan.operation.id));
    let mut store: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut operations = Vec::with_capacity(OPERATIONS);
    for mut plan in planned {
        let operation = &mut plan.operation;
        if !plan.lost {
            match &operation.kind {
                OpKind::Get => {
                    if let Outcome::Ok { value, .. } = &mut operation.outcome {
                        *value = store.get(&operation.key).cloned();
                    }
                }
                OpKind::Append(token) => store
                    .entry(operation.key.clone())
                    .or_default()
                    .extend_from_slice(token),
                OpKind::Put(value) => {
                    store.insert(operation.key.clone(), value.clone());
                }
                OpKind::Delete => {
                    store.remove(&operation.key);
                }
            }
        }
        if plan.unknown {
            operation.outcome = Outcome::Unknown;
        }
        operations.push(plan.operation);
    }
    operations.sort_by_key(|operation| operation.id);
    operations
}

fn checker(c: &mut Criterion) {
    let cases = [
        ("check 10k ops, 16 clients, 10 keys", 16, 10, 0.0),
        (
            "check 10k ops, 16 clients, 10 keys, 2% unknown writes",
            16,
            10,
            0.02,
        ),
        ("check 10k ops, 4 clients, 1 key", 4, 1, 0.0),
    ];
    for (name, clients, keys, unknown_share) in cases {
        let history = realistic_history(42, clients, keys, unknown_share);
        let result = check_linearizable(&history, Budget::default())
            .unwrap_or_else(|error| panic!("{name}: the generated history must pass: {error}"));
        println!("{name}: {} search steps", result.steps);
        c.bench_function(name, |b| {
            b.iter(|| check_linearizable(black_box(&history), Budget::default()))
        });
    }
}

criterion_group!(benches, checker);
criterion_main!(benches);
