//! Hand-written histories, each a small story with a known answer.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::check::history::{OpKind, Operation, Outcome};

fn operation(id: u64, key: &str, kind: OpKind, invoked_at: u64, completed_at: u64) -> Operation {
    Operation {
        id,
        client: id * 10,
        key: key.as_bytes().to_vec(),
        kind,
        invoked_at,
        outcome: Outcome::Ok {
            completed_at,
            value: None,
        },
    }
}

pub(super) fn put(
    id: u64,
    key: &str,
    value: &str,
    invoked_at: u64,
    completed_at: u64,
) -> Operation {
    operation(
        id,
        key,
        OpKind::Put(value.as_bytes().to_vec()),
        invoked_at,
        completed_at,
    )
}

pub(super) fn append(
    id: u64,
    key: &str,
    suffix: &str,
    invoked_at: u64,
    completed_at: u64,
) -> Operation {
    operation(
        id,
        key,
        OpKind::Append(suffix.as_bytes().to_vec()),
        invoked_at,
        completed_at,
    )
}

pub(super) fn delete(id: u64, key: &str, invoked_at: u64, completed_at: u64) -> Operation {
    operation(id, key, OpKind::Delete, invoked_at, completed_at)
}

/// A completed `Get` that read `value` (`None`: missing).
pub(super) fn get(
    id: u64,
    key: &str,
    value: Option<&str>,
    invoked_at: u64,
    completed_at: u64,
) -> Operation {
    let mut read = operation(id, key, OpKind::Get, invoked_at, completed_at);
    read.outcome = Outcome::Ok {
        completed_at,
        value: value.map(|value| value.as_bytes().to_vec()),
    };
    read
}

/// The same operation, with an unknown outcome.
pub(super) fn unknown(mut operation: Operation) -> Operation {
    operation.outcome = Outcome::Unknown;
    operation
}

/// Checks a witness independently of the search: every completed operation
/// (and no unknown `Get`) appears once under its own key, the order respects
/// real time, and replaying it on the model reproduces every read.
pub(super) fn assert_valid_witness(
    operations: &[Operation],
    witness: &BTreeMap<Vec<u8>, Vec<u64>>,
) {
    let by_id: BTreeMap<u64, &Operation> = operations.iter().map(|op| (op.id, op)).collect();
    let mut seen = BTreeMap::new();
    for (key, order) in witness {
        let mut value: Option<Vec<u8>> = None;
        for (position, id) in order.iter().enumerate() {
            let operation = by_id[id];
            assert_eq!(&operation.key, key, "#{id} is under the wrong key");
            assert!(seen.insert(*id, ()).is_none(), "#{id} appears twice");
            for later in &order[position + 1..] {
                let later = by_id[later];
                assert!(
                    later
                        .completed_at()
                        .is_none_or(|done| done >= operation.invoked_at),
                    "#{} completed before #{id} was invoked but comes after it",
                    later.id
                );
            }
            match &operation.kind {
                OpKind::Put(new) => value = Some(new.clone()),
                OpKind::Append(suffix) => {
                    value.get_or_insert_with(Vec::new).extend_from_slice(suffix)
                }
                OpKind::Delete => value = None,
                OpKind::Get => {
                    let read = operation
                        .value_read()
                        .expect("unknown Gets are never in a witness");
                    assert_eq!(
                        read,
                        value.as_deref(),
                        "#{id} reads a value the witness does not give"
                    );
                }
            }
        }
    }
    for operation in operations {
        if operation.is_completed() {
            assert!(
                seen.contains_key(&operation.id),
                "completed #{} is missing",
                operation.id
            );
        }
    }
}

enum Expect {
    /// Linearizable; if not empty, the witness of the key "x" must be exactly this.
    Linearizable(&'static [u64]),
    /// Not linearizable; the violation names this key and blocked operation.
    Violation { key: &'static str, blocked: u64 },
}

#[test]
fn hand_written_histories() {
    use Expect::{Linearizable as Ok, Violation as Bad};
    let cases: Vec<(&str, Vec<Operation>, Expect)> = vec![
        ("empty history", vec![], Ok(&[])),
        (
            "a read sees the write before it",
            vec![put(1, "x", "a", 0, 10), get(2, "x", Some("a"), 20, 30)],
            Ok(&[1, 2]),
        ),
        (
            "a read before any write sees nothing",
            vec![get(1, "x", None, 0, 10), put(2, "x", "a", 20, 30)],
            Ok(&[1, 2]),
        ),
        (
            "a stale read",
            vec![
                put(1, "x", "a", 0, 10),
                put(2, "x", "b", 20, 30),
                get(3, "x", Some("a"), 40, 50),
            ],
            Bad {
                key: "x",
                blocked: 3,
            },
        ),
        (
            "a lost write",
            vec![put(1, "x", "a", 0, 10), get(2, "x", None, 20, 30)],
            Bad {
                key: "x",
                blocked: 2,
            },
        ),
        (
            "a doubled append",
            vec![
                append(1, "x", "a", 0, 10),
                append(2, "x", "b", 0, 10),
                get(3, "x", Some("aab"), 20, 30),
            ],
            Bad {
                key: "x",
                blocked: 3,
            },
        ),
        (
            "a read of a value never written",
            vec![put(1, "x", "a", 0, 10), get(2, "x", Some("z"), 5, 30)],
            Bad {
                key: "x",
                blocked: 2,
            },
        ),
        (
            "a read that sees a write invoked after it completed",
            vec![get(1, "x", Some("a"), 0, 10), put(2, "x", "a", 20, 30)],
            Bad {
                key: "x",
                blocked: 1,
            },
        ),
        (
            "a read concurrent with a write may see it",
            vec![put(1, "x", "a", 0, 10), get(2, "x", Some("a"), 5, 15)],
            Ok(&[1, 2]),
        ),
        (
            "a read concurrent with a write may miss it",
            vec![put(1, "x", "a", 0, 10), get(2, "x", None, 5, 15)],
            Ok(&[2, 1]),
        ),
        (
            "intervals that touch are concurrent",
            vec![put(1, "x", "a", 0, 10), get(2, "x", None, 10, 20)],
            Ok(&[2, 1]),
        ),
        (
            "a read invoked as a write completes may precede it",
            vec![
                put(1, "x", "a", 0, 10),
                put(2, "x", "b", 15, 20),
                get(3, "x", Some("a"), 20, 30),
                get(4, "x", Some("b"), 31, 40),
            ],
            Ok(&[1, 3, 2, 4]),
        ),
        (
            "three concurrent appends, one order explains the read",
            vec![
                append(1, "x", "a", 0, 100),
                append(2, "x", "b", 0, 100),
                append(3, "x", "c", 0, 100),
                get(4, "x", Some("bca"), 110, 120),
            ],
            Ok(&[2, 3, 1, 4]),
        ),
        (
            "concurrent puts ordered by the reads",
            vec![
                put(1, "x", "1", 0, 50),
                put(2, "x", "2", 0, 50),
                get(3, "x", Some("2"), 10, 20),
                get(4, "x", Some("1"), 60, 70),
            ],
            Ok(&[2, 3, 1, 4]),
        ),
        (
            "concurrent reads disagree with every order",
            vec![
                put(1, "x", "1", 0, 50),
                put(2, "x", "2", 0, 50),
                get(3, "x", Some("2"), 60, 70),
                get(4, "x", Some("1"), 60, 70),
                get(5, "x", Some("2"), 80, 90),
            ],
            Bad {
                key: "x",
                blocked: 4,
            },
        ),
        (
            "an unknown put that took effect",
            vec![
                put(1, "x", "a", 0, 5),
                unknown(put(2, "x", "b", 6, 0)),
                get(3, "x", Some("b"), 10, 20),
            ],
            Ok(&[1, 2, 3]),
        ),
        (
            "an unknown put that never took effect",
            vec![
                put(1, "x", "a", 0, 5),
                unknown(put(2, "x", "b", 6, 0)),
                get(3, "x", Some("a"), 10, 20),
            ],
            Ok(&[1, 3]),
        ),
        (
            "an unknown put that took effect late",
            vec![
                put(1, "x", "a", 0, 5),
                unknown(put(2, "x", "b", 6, 0)),
                get(3, "x", Some("a"), 10, 20),
                get(4, "x", Some("b"), 30, 40),
            ],
            Ok(&[1, 3, 2, 4]),
        ),
        (
            "an unknown put cannot take effect before it is invoked",
            vec![
                get(1, "x", Some("b"), 0, 10),
                unknown(put(2, "x", "b", 20, 0)),
            ],
            Bad {
                key: "x",
                blocked: 1,
            },
        ),
        (
            "an unknown put that took effect cannot be undone",
            vec![
                put(1, "x", "a", 0, 5),
                unknown(put(2, "x", "b", 6, 0)),
                get(3, "x", Some("b"), 10, 12),
                get(4, "x", Some("a"), 20, 22),
            ],
            Bad {
                key: "x",
                blocked: 4,
            },
        ),
        (
            "an unknown put after a completed put (it hides nothing)",
            vec![
                unknown(put(1, "x", "p", 0, 0)),
                put(2, "x", "q", 1, 5),
                get(3, "x", Some("p"), 10, 12),
            ],
            Ok(&[2, 1, 3]),
        ),
        (
            "an unknown delete followed by an append",
            vec![
                put(1, "x", "a", 0, 5),
                unknown(delete(2, "x", 6, 0)),
                append(3, "x", "b", 7, 9),
                get(4, "x", Some("b"), 10, 12),
            ],
            Ok(&[1, 2, 3, 4]),
        ),
        (
            "unknown appends in the order the read shows",
            vec![
                unknown(append(1, "x", "a", 0, 0)),
                unknown(append(2, "x", "b", 0, 0)),
                unknown(append(3, "x", "c", 0, 0)),
                get(4, "x", Some("ca"), 10, 12),
            ],
            Ok(&[3, 1, 4]),
        ),
        (
            "an unknown get constrains nothing",
            vec![
                put(1, "x", "a", 0, 5),
                unknown(get(2, "x", Some("zzz"), 6, 0)),
                get(3, "x", Some("a"), 10, 20),
            ],
            Ok(&[1, 3]),
        ),
        (
            "a delete makes the key missing",
            vec![
                put(1, "x", "a", 0, 5),
                delete(2, "x", 10, 15),
                get(3, "x", None, 20, 25),
            ],
            Ok(&[1, 2, 3]),
        ),
        (
            "a read after a delete sees the old value",
            vec![
                put(1, "x", "a", 0, 5),
                delete(2, "x", 10, 15),
                get(3, "x", Some("a"), 20, 25),
            ],
            Bad {
                key: "x",
                blocked: 3,
            },
        ),
        (
            "an append after a delete starts from empty",
            vec![
                put(1, "x", "a", 0, 5),
                delete(2, "x", 10, 15),
                append(3, "x", "b", 20, 25),
                get(4, "x", Some("b"), 30, 35),
            ],
            Ok(&[1, 2, 3, 4]),
        ),
        (
            "an empty append creates the key",
            vec![append(1, "x", "", 0, 5), get(2, "x", None, 10, 15)],
            Bad {
                key: "x",
                blocked: 2,
            },
        ),
        (
            "an empty value is not a missing key",
            vec![append(1, "x", "", 0, 5), get(2, "x", Some(""), 10, 15)],
            Ok(&[1, 2]),
        ),
        (
            "keys are independent",
            vec![
                put(1, "x", "a", 0, 10),
                get(2, "y", None, 20, 30),
                get(3, "x", Some("a"), 20, 30),
            ],
            Ok(&[1, 3]),
        ),
        (
            "a violation is reported on its own key",
            vec![
                put(1, "x", "a", 0, 10),
                get(2, "y", Some("a"), 20, 30),
                get(3, "x", Some("a"), 20, 30),
            ],
            Bad {
                key: "y",
                blocked: 2,
            },
        ),
    ];
    for (name, operations, expected) in cases {
        let result = check_linearizable(&operations, Budget::default());
        match (expected, result) {
            (Expect::Linearizable(order), Result::Ok(linearizable)) => {
                assert_valid_witness(&operations, &linearizable.witness);
                if !order.is_empty() {
                    assert_eq!(linearizable.witness[&b"x"[..]], order, "{name}: witness");
                }
            }
            (Expect::Violation { key, blocked }, Err(CheckError::NotLinearizable(violation))) => {
                assert_eq!(violation.key, key.as_bytes(), "{name}: key");
                assert_eq!(
                    violation.blocked.id, blocked,
                    "{name}: blocked operation\n{violation}"
                );
                assert!(
                    violation
                        .candidates
                        .iter()
                        .any(|candidate| candidate.id == blocked),
                    "{name}: the blocked operation is a candidate"
                );
            }
            (Expect::Linearizable(_), other) => {
                panic!("{name}: expected linearizable, got {other:?}")
            }
            (Expect::Violation { .. }, other) => {
                panic!("{name}: expected a violation, got {other:?}")
            }
        }
    }
}

#[test]
fn a_violation_reads_like_a_bug_report() {
    let operations = vec![
        put(1, "x", "a", 0, 10),
        put(2, "x", "b", 20, 30),
        get(3, "x", Some("a"), 40, 50),
        unknown(append(4, "x", "c", 45, 0)),
        get(5, "y", None, 0, 1),
    ];
    let Err(error) = check_linearizable(&operations, Budget::default()) else {
        panic!("a stale read passed");
    };
    let CheckError::NotLinearizable(violation) = &error else {
        panic!("expected a violation, got {error:?}");
    };
    assert_eq!(violation.operations_on_key, 4);
    let prefix: Vec<u64> = violation
        .prefix
        .iter()
        .map(|operation| operation.id)
        .collect();
    assert_eq!(prefix, [1, 2]);
    assert_eq!(violation.value_after_prefix.as_deref(), Some(&b"b"[..]));
    assert_eq!(
        error.to_string(),
        "key \"x\" is not linearizable (4 operations on it)\n  \
         longest linearizable prefix found: 2 operations, leaving the value \"b\"\n    \
         #1 client 10: put(\"x\", \"a\") invoked at 0, completed at 10\n    \
         #2 client 20: put(\"x\", \"b\") invoked at 20, completed at 30\n  \
         it cannot be extended to include #3 client 30: get(\"x\") -> \"a\" invoked at 40, completed at 50, \
         which must precede every operation invoked after it completed\n  \
         operations that could come next:\n    \
         #3 client 30: get(\"x\") -> \"a\" invoked at 40, completed at 50: reads \"a\", the value is \"b\""
    );
}

#[test]
fn malformed_histories_are_refused_before_any_search() {
    let mut value_on_write = put(2, "x", "a", 0, 10);
    value_on_write.outcome = Outcome::Ok {
        completed_at: 10,
        value: Some(b"a".to_vec()),
    };
    let cases = [
        (
            vec![put(1, "x", "a", 0, 10), get(1, "x", Some("a"), 20, 30)],
            MalformedHistory::DuplicateId { id: 1 },
        ),
        (
            vec![put(1, "x", "a", 10, 5)],
            MalformedHistory::CompletedBeforeInvoked {
                id: 1,
                invoked_at: 10,
                completed_at: 5,
            },
        ),
        (
            vec![value_on_write],
            MalformedHistory::ValueOnWrite { id: 2 },
        ),
    ];
    for (operations, expected) in cases {
        assert_eq!(
            check_linearizable(&operations, Budget::default()),
            Err(CheckError::MalformedHistory(expected))
        );
    }
}

/// `count` puts all concurrent, then two reads after them all that disagree:
/// the search must try every subset of puts (up to the memo) before it can
/// say no.
fn hopeless_puts(count: u64) -> Vec<Operation> {
    let values = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    let mut operations: Vec<Operation> = (0..count)
        .map(|id| put(id, "x", values[id as usize], 0, 100))
        .collect();
    operations.push(get(count, "x", Some("a"), 200, 300));
    operations.push(get(count + 1, "x", Some("b"), 200, 300));
    operations
}

#[test]
fn a_small_budget_gives_up_explicitly() {
    let result = check_linearizable(&hopeless_puts(12), Budget::steps(10_000));
    let Err(CheckError::GaveUp(gave_up)) = result else {
        panic!("expected to give up, got {result:?}");
    };
    assert_eq!(gave_up.key, b"x");
    assert_eq!(gave_up.operations_on_key, 14);
    assert_eq!(gave_up.steps, 10_000);
    assert!(
        gave_up
            .to_string()
            .starts_with("gave up after 10000 search steps on key \"x\"")
    );
}

#[test]
fn the_memo_makes_exhaustive_searches_finish() {
    let result = check_linearizable(&hopeless_puts(12), Budget::UNLIMITED);
    assert!(
        matches!(result, Err(CheckError::NotLinearizable(_))),
        "{result:?}"
    );
}

#[test]
fn unknown_writes_nobody_observed_cost_nothing() {
    // Forty appends that timed out and were never applied, interleaved with
    // reads: without care this explores every subset of them at every read.
    let mut operations = Vec::new();
    let mut value = alloc::string::String::new();
    for round in 0..40u64 {
        let at = round * 100;
        operations.push(unknown(append(
            round * 3,
            "x",
            &alloc::format!("[u{round}]"),
            at,
            0,
        )));
        let token = alloc::format!("[k{round}]");
        operations.push(append(round * 3 + 1, "x", &token, at + 10, at + 20));
        value.push_str(&token);
        operations.push(get(round * 3 + 2, "x", Some(&value), at + 30, at + 40));
    }
    let linearizable = check_linearizable(&operations, Budget::steps(100_000)).unwrap();
    assert_valid_witness(&operations, &linearizable.witness);
    assert!(linearizable.steps < 1_000, "{} steps", linearizable.steps);
}

/// A history of the sharded sweep (seed 7,009,552 of `DISTRIBKV_SHARD_ROUNDS=20`):
/// four appends, a `Put` whose outcome the client never learned (it took
/// effect), four more appends lost the same way, then three clients
/// appending and reading. Every read shows the `Put` and the appends after
/// it in order, so an append linearized before the `Put` dooms them all;
/// without the lookahead on the appends a read still needs, the search
/// tried every order of the appends before the `Put` and gave up after ten
/// million steps.
#[test]
fn appends_a_read_still_needs_are_not_spent_before_its_put() {
    let operations = vec![
        append(3, "x", "[c3.2]", 24570, 24625),
        append(8, "x", "[c3.7]", 25088, 25146),
        append(13, "x", "[c3.12]", 25764, 25820),
        append(22, "x", "[c3.21]", 27104, 27156),
        unknown(put(23, "x", "(p3.22)", 27156, 0)),
        unknown(append(31, "x", "[c3.30]", 31648, 0)),
        append(34, "x", "[c3.33]", 34450, 34498),
        unknown(append(38, "x", "[c3.37]", 35018, 0)),
        unknown(append(44, "x", "[c3.43]", 36309, 0)),
        append(46, "x", "[c3.44]", 36919, 36963),
        append(52, "x", "[c2.3]", 61434, 61477),
        append(56, "x", "[c1.8]", 61535, 62110),
        append(57, "x", "[c2.5]", 61538, 61658),
        append(58, "x", "[c3.46]", 61592, 61812),
        unknown(append(62, "x", "[c3.49]", 61910, 0)),
        append(64, "x", "[c1.10]", 62236, 62357),
        append(74, "x", "[c3.53]", 63051, 63104),
        append(75, "x", "[c2.10]", 63068, 63117),
        append(81, "x", "[c2.13]", 63242, 63280),
        append(84, "x", "[c1.14]", 63310, 63362),
        append(87, "x", "[c1.15]", 63362, 63400),
        append(89, "x", "[c3.59]", 63399, 63469),
        get(
            97,
            "x",
            Some(
                "(p3.22)[c3.30][c3.33][c3.37][c3.43][c3.44][c2.3][c2.5][c3.46][c3.49][c1.8][c1.10][c3.53][c2.10][c2.13][c1.14][c1.15][c3.59]",
            ),
            63533,
            63605,
        ),
        get(
            99,
            "x",
            Some(
                "(p3.22)[c3.30][c3.33][c3.37][c3.43][c3.44][c2.3][c2.5][c3.46][c3.49][c1.8][c1.10][c3.53][c2.10][c2.13][c1.14][c1.15][c3.59]",
            ),
            63585,
            63641,
        ),
        get(
            103,
            "x",
            Some(
                "(p3.22)[c3.30][c3.33][c3.37][c3.43][c3.44][c2.3][c2.5][c3.46][c3.49][c1.8][c1.10][c3.53][c2.10][c2.13][c1.14][c1.15][c3.59]",
            ),
            63658,
            63732,
        ),
        append(104, "x", "[c1.21]", 63682, 63730),
        append(109, "x", "[c2.23]", 63778, 63830),
        get(
            110,
            "x",
            Some(
                "(p3.22)[c3.30][c3.33][c3.37][c3.43][c3.44][c2.3][c2.5][c3.46][c3.49][c1.8][c1.10][c3.53][c2.10][c2.13][c1.14][c1.15][c3.59][c1.21][c2.23]",
            ),
            63782,
            63854,
        ),
        append(111, "x", "[c3.66]", 63803, 63852),
        get(
            118,
            "x",
            Some(
                "(p3.22)[c3.30][c3.33][c3.37][c3.43][c3.44][c2.3][c2.5][c3.46][c3.49][c1.8][c1.10][c3.53][c2.10][c2.13][c1.14][c1.15][c3.59][c1.21][c2.23][c3.66]",
            ),
            63943,
            64010,
        ),
        append(119, "x", "[c3.69]", 63951, 64002),
        append(120, "x", "[c3.70]", 64002, 64051),
        append(130, "x", "[c2.30]", 64156, 64203),
        append(131, "x", "[c3.74]", 64187, 64233),
        append(135, "x", "[c1.30]", 64242, 64291),
        append(137, "x", "[c3.76]", 64283, 64323),
        append(150, "x", "[c2.37]", 64513, 64565),
        append(151, "x", "[c1.35]", 64531, 64582),
        append(154, "x", "[c1.36]", 64582, 64632),
        append(160, "x", "[c1.38]", 64683, 64726),
        get(
            173,
            "x",
            Some(
                "(p3.22)[c3.30][c3.33][c3.37][c3.43][c3.44][c2.3][c2.5][c3.46][c3.49][c1.8][c1.10][c3.53][c2.10][c2.13][c1.14][c1.15][c3.59][c1.21][c2.23][c3.66][c3.69][c3.70][c2.30][c3.74][c1.30][c3.76][c2.37][c1.35][c1.36][c1.38]",
            ),
            65205,
            65247,
        ),
    ];
    let linearizable = check_linearizable(&operations, Budget::DEFAULT).unwrap();
    assert_valid_witness(&operations, &linearizable.witness);
    assert!(linearizable.steps < 10_000, "{} steps", linearizable.steps);
}
