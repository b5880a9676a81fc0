//! The names of the files in a data folder: log segments, snapshots, the
//! identity file and leftovers of interrupted writes.

use std::path::{Path, PathBuf};

use super::{IDENTITY_FILE, SnapshotPoint, TEMPORARY_SUFFIX};

/// Path of log segment `number` in `dir`: `wal-<20 digits>.log`, so that the
/// names sort in log order.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:020}.log"))
}

/// Path of the snapshot at `index` and `term` in `dir`.
pub(crate) fn snapshot_path(dir: &Path, point: SnapshotPoint) -> PathBuf {
    dir.join(format!("snap-{:020}-{:020}.snap", point.index, point.term))
}

/// What a file name in the data folder is. `S` names a snapshot: its point
/// here, a group and its point in the multi-group log (`MultiFileName`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileName<S = SnapshotPoint> {
    /// The identity file.
    Identity,
    /// Log segment with this number.
    Segment(u64),
    /// A snapshot.
    Snapshot(S),
    /// A file left over by an interrupted atomic write.
    Temporary,
    /// Something this module did not write.
    Unknown,
}

/// Classifies a file name of the data folder.
pub(crate) fn parse_file_name(name: &str) -> FileName {
    if name == IDENTITY_FILE {
        return FileName::Identity;
    }
    if name.ends_with(TEMPORARY_SUFFIX) {
        return FileName::Temporary;
    }
    if let Some(number) = name
        .strip_prefix("wal-")
        .and_then(|rest| rest.strip_suffix(".log"))
        .and_then(parse_fixed_digits)
    {
        return FileName::Segment(number);
    }
    if let Some((index, term)) = name
        .strip_prefix("snap-")
        .and_then(|rest| rest.strip_suffix(".snap"))
        .and_then(|rest| rest.split_once('-'))
        && let (Some(index), Some(term)) = (parse_fixed_digits(index), parse_fixed_digits(term))
    {
        return FileName::Snapshot(SnapshotPoint { index, term });
    }
    FileName::Unknown
}

/// Whether `name` is a segment or snapshot of a single-group log.
pub(crate) fn is_log_file(name: &str) -> bool {
    matches!(
        parse_file_name(name),
        FileName::Segment(_) | FileName::Snapshot(_)
    )
}

pub(crate) fn parse_fixed_digits(text: &str) -> Option<u64> {
    if text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_in_log_order() {
        let dir = Path::new("/data");
        let names: Vec<String> = [1u64, 9, 10, 200]
            .iter()
            .map(|&n| {
                segment_path(dir, n)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(parse_file_name(&names[2]), FileName::Segment(10));
        let point = SnapshotPoint { index: 77, term: 3 };
        let snapshot = snapshot_path(dir, point);
        assert_eq!(
            parse_file_name(&snapshot.file_name().unwrap().to_string_lossy()),
            FileName::Snapshot(point)
        );
        assert_eq!(parse_file_name("identity"), FileName::Identity);
        assert_eq!(parse_file_name("snap.tmp"), FileName::Temporary);
        assert_eq!(parse_file_name("wal-1.log"), FileName::Unknown);
        assert_eq!(parse_file_name("lost+found"), FileName::Unknown);
    }
}
