//! Property tests: histories recorded from a real sequential execution are
//! accepted, the same histories with a read that nothing can explain are
//! rejected, and on small random histories the checker agrees with a brute
//! force enumeration of every order.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::tests::assert_valid_witness;
use super::*;
use crate::check::history::{OpKind, Operation, Outcome};
use crate::rng::Rng;

const KEYS: [&[u8]; 3] = [b"k0", b"k1", b"k2"];
const PIECES: [&[u8]; 3] = [b"a", b"b", b"c"];

/// One operation of a generated execution.
#[derive(Clone, Debug)]
struct Step {
    key: usize,
    /// 0-3 get, 4-5 append, 6-7 put, 8 delete, 9 a write that never took
    /// effect (recorded with an unknown outcome).
    kind: u8,
    piece: usize,
    /// How long before its linearization point the operation was invoked.
    before: u64,
    /// How long after its linearization point it completed.
    after: u64,
    /// Recorded with an unknown outcome (it still took effect).
    unknown: bool,
}

fn steps(max_len: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0..KEYS.len(),
        0..10u8,
        0..PIECES.len(),
        0..40u64,
        0..40u64,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(key, kind, piece, before, after, unknown)| Step {
            key,
            kind,
            piece,
            before,
            after,
            unknown,
        });
    prop::collection::vec(step, 1..max_len)
}

/// Runs the steps in order on a real store, operation `i` taking effect at
/// time `10 * (i + 5)`, and records what the clients saw. With up to 40 time
/// units either side, each operation overlaps up to eight others.
fn execute(steps: &[Step]) -> Vec<Operation> {
    let mut store: BTreeMap<&[u8], Vec<u8>> = BTreeMap::new();
    let mut operations = Vec::new();
    for (id, step) in (0u64..).zip(steps) {
        let point = 10 * (id + 5);
        let key = KEYS[step.key];
        let piece = PIECES[step.piece].to_vec();
        let mut value = None;
        let mut took_effect = true;
        let kind = match step.kind {
            0..=3 => {
                value = store.get(key).cloned();
                OpKind::Get
            }
            4 | 5 => {
                store.entry(key).or_default().extend_from_slice(&piece);
                OpKind::Append(piece)
            }
            6 | 7 => {
                store.insert(key, piece.clone());
                OpKind::Put(piece)
            }
            8 => {
                store.remove(key);
                OpKind::Delete
            }
            _ => {
                took_effect = false;
                if step.piece % 2 == 0 {
                    OpKind::Append(piece)
                } else {
                    OpKind::Put(piece)
                }
            }
        };
        let outcome = if step.unknown || !took_effect {
            Outcome::Unknown
        } else {
            Outcome::Ok {
                completed_at: point + step.after,
                value,
            }
        };
        operations.push(Operation {
            id,
            client: id % 16,
            key: key.to_vec(),
            kind,
            invoked_at: point - step.before,
            outcome,
        });
    }
    operations
}

proptest! {
    #[test]
    fn real_executions_are_linearizable(steps in steps(60)) {
        let operations = execute(&steps);
        let result = check_linearizable(&operations, Budget::default());
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
        assert_valid_witness(&operations, &result.unwrap().witness);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_rejected(steps in steps(60), pick in any::<prop::sample::Index>()) {
        let mut operations = execute(&steps);
        let reads: Vec<usize> = (0..operations.len())
            .filter(|&index| operations[index].value_read().is_some())
            .collect();
        prop_assume!(!reads.is_empty());
        let mutated = &mut operations[reads[pick.index(reads.len())]];
        // No write ever writes a "Z".
        let Outcome::Ok { value, .. } = &mut mutated.outcome else { unreachable!() };
        value.get_or_insert_with(Vec::new).push(b'Z');
        let (mutated_id, mutated_key) = (mutated.id, mutated.key.clone());

        let result = check_linearizable(&operations, Budget::default());
        let Err(CheckError::NotLinearizable(violation)) = result else {
            return Err(TestCaseError::fail(format!("accepted a read of \"Z\": {result:?}")));
        };
        prop_assert_eq!(&violation.key, &mutated_key);
        prop_assert!(
            violation.candidates.iter().any(|candidate| candidate.id == mutated_id),
            "#{} is not among the candidates of\n{}", mutated_id, violation
        );
    }

    #[test]
    fn a_read_of_a_later_write_is_rejected(steps in steps(60), pick in any::<prop::sample::Index>()) {
        let mut operations = execute(&steps);
        let written: Vec<(Vec<u8>, Vec<u8>)> = operations
            .iter()
            .filter_map(|operation| match &operation.kind {
                OpKind::Put(value) | OpKind::Append(value) => Some((operation.key.clone(), value.clone())),
                _ => None,
            })
            .collect();
        prop_assume!(!written.is_empty());
        let (key, value) = written[pick.index(written.len())].clone();
        // Every other operation is invoked at 10 or later: this read
        // completed before any write existed.
        let early = Operation {
            id: operations.len() as u64,
            client: 99,
            key: key.clone(),
            kind: OpKind::Get,
            invoked_at: 0,
            outcome: Outcome::Ok { completed_at: 1, value: Some(value) },
        };
        let early_id = early.id;
        operations.push(early);

        let result = check_linearizable(&operations, Budget::default());
        let Err(CheckError::NotLinearizable(violation)) = result else {
            return Err(TestCaseError::fail(format!("accepted a read from the future: {result:?}")));
        };
        prop_assert_eq!(&violation.key, &key);
        prop_assert_eq!(violation.blocked.id, early_id);
        prop_assert!(violation.prefix.is_empty());
    }

    #[test]
    fn small_random_histories_agree_with_brute_force(
        specs in prop::collection::vec(
            (0..2usize, 0..4u8, 0..READS.len(), 0..20u64, 0..15u64, prop::bool::weighted(0.25)),
            0..7,
        )
    ) {
        let operations = random_history(&specs);
        let expected = brute_force_linearizable(&operations);
        let result = check_linearizable(&operations, Budget::default());
        prop_assert_eq!(result.is_ok(), expected, "{:?}\n{:?}", operations, result);
        if let Ok(linearizable) = result {
            assert_valid_witness(&operations, &linearizable.witness);
        }
    }
}

proptest! {
    #[test]
    fn pruning_never_changes_the_verdict(
        steps in steps(40),
        stale in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..3),
    ) {
        full_and_report_pruning_agree(&steps, &stale, false, 1 << 40)?;
    }

    /// The same with most appends writing a suffix of their own, as the
    /// sweeps' clients do, so that a read's value forces which appends
    /// build it (the lookahead of `Search::growth`).
    #[test]
    fn pruning_never_changes_the_verdict_with_unique_appends(
        steps in steps(30),
        stale in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..3),
    ) {
        full_and_report_pruning_agree(&steps, &stale, true, 1 << 18)?;
    }
}

/// The search's verdict is the same with every pruning as with only those
/// that keep reports readable, on one key (so everything overlaps), some
/// reads replaced by what another read saw (sometimes still linearizable,
/// sometimes a stale read). With `unique_appends`, two appends in three
/// append a suffix no other operation writes. A case either search gives up
/// on within `max_steps` is left out.
fn full_and_report_pruning_agree(
    steps: &[Step],
    stale: &[(prop::sample::Index, prop::sample::Index)],
    unique_appends: bool,
    max_steps: u64,
) -> Result<(), TestCaseError> {
    {
        let mut operations = execute(steps);
        for operation in &mut operations {
            operation.key = KEYS[0].to_vec();
            if let OpKind::Append(suffix) = &mut operation.kind
                && unique_appends
                && operation.id % 3 != 0
            {
                *suffix = format!("[{}]", operation.id).into_bytes();
            }
        }
        let mut store: Option<Vec<u8>> = None;
        for operation in &mut operations {
            match &operation.kind {
                OpKind::Put(value) if operation.is_completed() => store = Some(value.clone()),
                OpKind::Append(suffix) if operation.is_completed() => {
                    store.get_or_insert_with(Vec::new).extend_from_slice(suffix)
                }
                OpKind::Delete if operation.is_completed() => store = None,
                OpKind::Get => {
                    if let Outcome::Ok { value, .. } = &mut operation.outcome {
                        *value = store.clone();
                    }
                }
                _ => {}
            }
        }
        let reads: Vec<usize> = (0..operations.len())
            .filter(|&index| operations[index].value_read().is_some())
            .collect();
        prop_assume!(!reads.is_empty());
        for (target, source) in stale {
            let value = operations[reads[source.index(reads.len())]]
                .value_read()
                .unwrap()
                .map(<[u8]>::to_vec);
            if let Outcome::Ok { value: read, .. } =
                &mut operations[reads[target.index(reads.len())]].outcome
            {
                *read = value;
            }
        }
        let mut checked: Vec<&Operation> = operations
            .iter()
            .filter(|operation| operation.is_completed() || operation.kind.is_write())
            .collect();
        checked.sort_by_key(|operation| (operation.invoked_at, operation.id));
        // A history whose appends all differ can take either search very
        // long (the memo never meets a value twice): such a case is left out
        // rather than waited for.
        let verdict = |pruning| match search::search_key(&checked, pruning, &mut 0, max_steps) {
            search::KeyVerdict::Linearizable { .. } => Some(true),
            search::KeyVerdict::NotLinearizable { .. } => Some(false),
            search::KeyVerdict::GaveUp => None,
        };
        let (full, report) = (
            verdict(search::Pruning::Full),
            verdict(search::Pruning::ForReport),
        );
        prop_assume!(full.is_some() && report.is_some());
        prop_assert_eq!(full, report, "{:?}", operations);
    }
    Ok(())
}

/// Values a random `Get` may claim to have read.
const READS: [Option<&[u8]>; 7] = [
    None,
    Some(b""),
    Some(b"a"),
    Some(b"b"),
    Some(b"ab"),
    Some(b"ba"),
    Some(b"aa"),
];

/// A random history, linearizable or not: `(key, kind, value, invoked_at,
/// duration, unknown)` per operation.
fn random_history(specs: &[(usize, u8, usize, u64, u64, bool)]) -> Vec<Operation> {
    (0u64..)
        .zip(specs)
        .map(|(id, &(key, kind, value, invoked_at, duration, unknown))| {
            let piece = if value % 2 == 0 {
                b"a".to_vec()
            } else {
                b"b".to_vec()
            };
            let (kind, read) = match kind {
                0 => (OpKind::Get, READS[value].map(<[u8]>::to_vec)),
                1 => (OpKind::Append(piece), None),
                2 => (OpKind::Put(piece), None),
                _ => (OpKind::Delete, None),
            };
            Operation {
                id,
                client: id,
                key: KEYS[key].to_vec(),
                kind,
                invoked_at,
                outcome: if unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Ok {
                        completed_at: invoked_at + duration,
                        value: read,
                    }
                },
            }
        })
        .collect()
}

/// Tries every subset of the unknown-outcome writes and every order of the
/// chosen operations.
fn brute_force_linearizable(operations: &[Operation]) -> bool {
    let relevant: Vec<&Operation> = operations
        .iter()
        .filter(|operation| operation.is_completed() || operation.kind.is_write())
        .collect();
    let unknown: Vec<usize> = (0..relevant.len())
        .filter(|&index| !relevant[index].is_completed())
        .collect();
    (0..1u32 << unknown.len()).any(|mask| {
        let chosen: Vec<&Operation> = (0..relevant.len())
            .filter(
                |&index| match unknown.iter().position(|&other| other == index) {
                    Some(bit) => mask & (1 << bit) != 0,
                    None => true,
                },
            )
            .map(|index| relevant[index])
            .collect();
        some_order_works(&chosen, &mut Vec::new(), &mut BTreeMap::new())
    })
}

fn some_order_works<'a>(
    remaining: &[&'a Operation],
    placed: &mut Vec<&'a Operation>,
    store: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) -> bool {
    if remaining.is_empty() {
        return true;
    }
    for (index, &operation) in remaining.iter().enumerate() {
        // Real time: nothing placed before may have been invoked after this completed.
        let respects_real_time = placed.iter().all(|earlier| {
            operation
                .completed_at()
                .is_none_or(|completed_at| completed_at >= earlier.invoked_at)
        });
        if !respects_real_time {
            continue;
        }
        let saved = store.get(&operation.key).cloned();
        let allowed = match &operation.kind {
            OpKind::Put(value) => {
                store.insert(operation.key.clone(), value.clone());
                true
            }
            OpKind::Append(suffix) => {
                store
                    .entry(operation.key.clone())
                    .or_default()
                    .extend_from_slice(suffix);
                true
            }
            OpKind::Delete => {
                store.remove(&operation.key);
                true
            }
            OpKind::Get => operation.value_read() == Some(saved.as_deref()),
        };
        if allowed {
            let mut rest = remaining.to_vec();
            rest.remove(index);
            placed.push(operation);
            let works = some_order_works(&rest, placed, store);
            placed.pop();
            if works {
                return true;
            }
        }
        match saved {
            Some(value) => store.insert(operation.key.clone(), value),
            None => store.remove(&operation.key),
        };
    }
    false
}

/// The oracle comparison above is only meaningful if random histories are
/// often linearizable and often not; this also runs it on a fixed sample.
#[test]
fn random_histories_are_a_fair_mix() {
    let mut rng = Rng::new(7);
    let (mut linearizable, mut not) = (0, 0);
    for _ in 0..1_000 {
        let count = rng.range(1, 7) as usize;
        let specs: Vec<_> = (0..count)
            .map(|_| {
                (
                    rng.index(2),
                    rng.range(0, 4) as u8,
                    rng.index(READS.len()),
                    rng.range(0, 20),
                    rng.range(0, 15),
                    rng.chance(0.25),
                )
            })
            .collect();
        let operations = random_history(&specs);
        let expected = brute_force_linearizable(&operations);
        let result = check_linearizable(&operations, Budget::default());
        assert_eq!(result.is_ok(), expected, "{operations:?}\n{result:?}");
        if expected {
            linearizable += 1;
        } else {
            not += 1;
        }
    }
    assert!(
        linearizable > 200 && not > 200,
        "{linearizable} linearizable, {not} not"
    );
}
