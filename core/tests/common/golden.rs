//! The golden-file runner of the scenario tests (`scenarios.rs` for one
//! Raft group, `shard_scenarios.rs` for the sharded service): a file is
//! blocks separated by blank lines, each a command (after optional `#`
//! comment lines) followed by `----` and the output it must print. The
//! runner replays every command and compares; with `DISTRIBKV_REWRITE=1` it
//! writes the files back with the new outputs, for review as a diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Runs one file through `run` (one call per command, in order); returns
/// the file as read and as it should read.
pub fn run_file(path: &Path, mut run: impl FnMut(&str) -> String) -> (String, String) {
    let original = std::fs::read_to_string(path).expect("readable test file");
    let mut rewritten = String::new();
    for block in original.split("\n\n") {
        let block = block.trim_matches('\n');
        if block.is_empty() {
            continue;
        }
        let (head, _) = block.split_once("\n----").unwrap_or((block, ""));
        let mut command = None;
        for line in head.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                rewritten.push_str(line);
                rewritten.push('\n');
            } else {
                assert!(command.is_none(), "one command per block: {head}");
                command = Some(line.to_string());
            }
        }
        let Some(command) = command else {
            rewritten.push('\n');
            continue;
        };
        let output = run(&command);
        let output = output.trim_end_matches('\n');
        if output.is_empty() {
            writeln!(rewritten, "{command}\n----\n").unwrap();
        } else {
            writeln!(rewritten, "{command}\n----\n{output}\n").unwrap();
        }
    }
    (original, rewritten)
}

/// Runs every `*.txt` file of `dir`, each with a fresh scenario from
/// `scenario` (whose function runs one command), and fails with the first
/// difference of each file that changed; rewrites them instead with
/// `DISTRIBKV_REWRITE=1`.
pub fn check_dir<F: FnMut(&str) -> String>(dir: &Path, mut scenario: impl FnMut() -> F) {
    let rewrite = std::env::var_os("DISTRIBKV_REWRITE").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    let mut failures = Vec::new();
    for path in files {
        let (original, rewritten) = run_file(&path, scenario());
        if rewrite {
            if original != rewritten {
                std::fs::write(&path, &rewritten).expect("writable scenario file");
            }
        } else if original.trim_end() != rewritten.trim_end() {
            let diff = first_difference(&original, &rewritten);
            failures.push(format!("{}: {diff}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "scenario output changed (review, then regenerate with DISTRIBKV_REWRITE=1):\n{}",
        failures.join("\n")
    );
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (number, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e}\n  actual:   {a}", number + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines, got {}",
        expected.lines().count(),
        actual.lines().count()
    )
}
