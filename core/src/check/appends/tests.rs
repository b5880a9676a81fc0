use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::check::history::Outcome;

/// A compact operation: `(id, client, key, kind, invoked_at, completed_at)`,
/// with `None` for an unknown outcome.
fn write(
    id: u64,
    key: &str,
    kind: OpKind,
    invoked_at: u64,
    completed_at: Option<u64>,
) -> Operation {
    Operation {
        id,
        client: id % 3,
        key: key.as_bytes().to_vec(),
        kind,
        invoked_at,
        outcome: match completed_at {
            Some(completed_at) => Outcome::Ok {
                completed_at,
                value: None,
            },
            None => Outcome::Unknown,
        },
    }
}

fn append(
    id: u64,
    key: &str,
    token: &str,
    invoked_at: u64,
    completed_at: Option<u64>,
) -> Operation {
    write(
        id,
        key,
        OpKind::Append(token.as_bytes().to_vec()),
        invoked_at,
        completed_at,
    )
}

fn finals(values: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    values
        .iter()
        .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
        .collect()
}

fn lost(key: &str, token: &str, operation: u64) -> AppendViolation {
    AppendViolation::Lost {
        key: key.as_bytes().to_vec(),
        token: token.as_bytes().to_vec(),
        operation,
        client: operation % 3,
    }
}

fn duplicated(
    key: &str,
    token: &str,
    count: usize,
    operation: u64,
    acknowledged: bool,
) -> AppendViolation {
    AppendViolation::Duplicated {
        key: key.as_bytes().to_vec(),
        token: token.as_bytes().to_vec(),
        count,
        operation,
        client: operation % 3,
        acknowledged,
    }
}

fn unexplained(key: &str, offset: usize, text: &str) -> AppendViolation {
    AppendViolation::UnexplainedText {
        key: key.as_bytes().to_vec(),
        offset,
        text: text.as_bytes().to_vec(),
    }
}

/// `(name, history, final values, options, expected violations)`.
type Case = (
    &'static str,
    Vec<Operation>,
    BTreeMap<Vec<u8>, Vec<u8>>,
    AppendCheckOptions,
    Vec<AppendViolation>,
);

#[test]
fn final_values_are_checked_against_the_appends() {
    let strict = AppendCheckOptions {
        reject_unexplained_text: true,
    };
    let lenient = AppendCheckOptions::default();
    let two_appends = vec![
        append(1, "x", "[a]", 0, Some(10)),
        append(2, "x", "[b]", 5, Some(15)),
    ];
    let cases: Vec<Case> = vec![
        (
            "every token once",
            two_appends.clone(),
            finals(&[("x", "[b][a]")]),
            strict,
            vec![],
        ),
        (
            "a lost acknowledged append",
            two_appends.clone(),
            finals(&[("x", "[b]")]),
            strict,
            vec![lost("x", "[a]", 1)],
        ),
        (
            "a missing key loses everything",
            two_appends.clone(),
            finals(&[]),
            strict,
            vec![lost("x", "[a]", 1), lost("x", "[b]", 2)],
        ),
        (
            "a doubled append",
            two_appends.clone(),
            finals(&[("x", "[a][b][a]")]),
            strict,
            vec![duplicated("x", "[a]", 2, 1, true)],
        ),
        (
            "an unknown append may be absent or present once",
            vec![
                append(1, "x", "[a]", 0, Some(10)),
                append(2, "x", "[b]", 5, None),
                append(3, "x", "[c]", 6, None),
            ],
            finals(&[("x", "[a][c]")]),
            strict,
            vec![],
        ),
        (
            "an unknown append applied twice",
            vec![append(1, "x", "[a]", 0, None)],
            finals(&[("x", "[a][a]")]),
            strict,
            vec![duplicated("x", "[a]", 2, 1, false)],
        ),
        (
            "foreign text, strict",
            two_appends.clone(),
            finals(&[("x", "[a]zz[b]")]),
            strict,
            vec![unexplained("x", 3, "zz")],
        ),
        (
            "foreign text, lenient",
            two_appends.clone(),
            finals(&[("x", "[a]zz[b]")]),
            lenient,
            vec![],
        ),
        (
            "a key nobody wrote",
            vec![],
            finals(&[("y", "ghost")]),
            strict,
            vec![unexplained("y", 0, "ghost")],
        ),
        (
            "a put value before the tokens is explained",
            vec![
                write(1, "x", OpKind::Put(b"base".to_vec()), 0, Some(5)),
                append(2, "x", "[a]", 10, Some(20)),
            ],
            finals(&[("x", "base[a]")]),
            strict,
            vec![],
        ),
        (
            "a put value after a token is not",
            vec![
                write(1, "x", OpKind::Put(b"base".to_vec()), 0, Some(5)),
                append(2, "x", "[a]", 10, Some(20)),
            ],
            finals(&[("x", "[a]base")]),
            strict,
            vec![unexplained("x", 3, "base")],
        ),
        (
            "appends invoked before a put completed may be overwritten",
            vec![
                append(1, "x", "[a]", 0, Some(10)),
                write(2, "x", OpKind::Put(b"p".to_vec()), 5, Some(12)),
                append(3, "x", "[b]", 12, Some(20)),
                append(4, "x", "[c]", 13, Some(20)),
            ],
            finals(&[("x", "p[b]")]),
            strict,
            vec![lost("x", "[c]", 4)],
        ),
        (
            "a delete of unknown outcome may overwrite anything",
            vec![
                append(1, "x", "[a]", 0, Some(10)),
                write(2, "x", OpKind::Delete, 50, None),
                append(3, "x", "[b]", 60, Some(70)),
            ],
            finals(&[]),
            strict,
            vec![],
        ),
        (
            "keys are independent",
            vec![
                append(1, "x", "[a]", 0, Some(10)),
                append(2, "y", "[a]", 0, Some(10)),
            ],
            finals(&[("x", "[a]"), ("y", "[a][a]")]),
            strict,
            vec![duplicated("y", "[a]", 2, 2, true)],
        ),
        (
            "a token is counted without overlapping itself",
            vec![append(1, "x", "aa", 0, Some(10))],
            finals(&[("x", "aaa")]),
            strict,
            vec![unexplained("x", 2, "a")],
        ),
    ];
    for (name, operations, final_values, options, expected) in cases {
        let result = check_appends(&operations, &final_values, options);
        if expected.is_empty() {
            assert_eq!(result, Ok(()), "{name}");
        } else {
            assert_eq!(
                result,
                Err(AppendCheckError::Violations(expected)),
                "{name}"
            );
        }
    }
}

#[test]
fn workload_bugs_are_reported_as_such() {
    let reused = check_appends(
        &[
            append(4, "x", "[a]", 0, Some(1)),
            append(2, "x", "[a]", 0, Some(1)),
        ],
        &finals(&[]),
        AppendCheckOptions::default(),
    );
    assert_eq!(
        reused,
        Err(AppendCheckError::ReusedToken {
            key: b"x".to_vec(),
            token: b"[a]".to_vec(),
            first: 2,
            second: 4,
        })
    );
    let empty = check_appends(
        &[append(3, "x", "", 0, Some(1))],
        &finals(&[]),
        AppendCheckOptions::default(),
    );
    assert_eq!(empty, Err(AppendCheckError::EmptyToken { operation: 3 }));
}

#[test]
fn violations_render_with_key_token_count_and_operation() {
    let error = AppendCheckError::Violations(vec![
        lost("x", "[a]", 1),
        duplicated("x", "[b]", 3, 2, false),
        unexplained("y", 4, "zz"),
    ]);
    assert_eq!(
        error.to_string(),
        "3 append violations:\n  \
         key \"x\": acknowledged append #1 (client 1) of \"[a]\" is missing from the final value\n  \
         key \"x\": token \"[b]\" of unacknowledged append #2 (client 2) appears 3 times in the final value\n  \
         key \"y\": text \"zz\" at byte 4 of the final value was written by no append or put"
    );
}
