//! Listing a data folder's files by name, shared by the test binaries
//! (the harness's and, through `#[path]`, the storage suite's).

use std::fs;
use std::path::{Path, PathBuf};

/// The single-group log's segments (`wal-*.log`) in `dir`, oldest first
/// (their numbers are zero-padded, so the names sort in log order).
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "wal-", ".log")
}

/// The files in `dir` whose names start with `prefix` and end with
/// `suffix`, sorted by name.
pub fn files_named(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    found.sort();
    found
}
