//! The bytes of a multi-group log: file names and record payloads. Frames,
//! headers and snapshot files are those of the single-group log
//! ([`super::super::format`]).
//!
//! ```text
//! group batch (kind 4): one step of the host, every group's part tagged
//!   items: [(group u64, item)]        item = Write { snapshot marker?, hard state?, entries }
//!                                          | Create | Remove
//! group checkpoint (kind 5): the state of every group, before old segments go
//!   first_kept: u64                   segments below it may be deleted
//!   groups: [{ group, snapshot point?, hard state, rewritten entries }]
//! group retire (kind 6): groups retired for good (tombstones)
//!   groups: [u64]                     their state is dropped; no later record may write to them
//! seal (kind 3): as in the single-group log
//! ```
//!
//! Segments are written in format version [`MULTI_SEGMENT_VERSION`] (3):
//! it was stepped when the retire record (kind 6) came, so that a build
//! that does not know it refuses the segment as written by a newer version
//! rather than as damaged. Version 2 segments, and version 1 ones (never
//! written by a multi-group log in practice), are read the same way, retire
//! records included: builds before the step wrote them under version 2.
//! Snapshot and identity files are those of the single-group log, in its
//! version.

use std::path::{Path, PathBuf};

use distribkv_core::raft::{Entry, HardState};
use distribkv_core::shard::GroupId;
use serde::{Deserialize, Serialize};

use super::super::format::{
    FileName, IDENTITY_FILE, SnapshotMarker, SnapshotPoint, TEMPORARY_SUFFIX, parse_fixed_digits,
};

/// Format version of the segments of a multi-group log (one numbering with
/// the single-group files', which stay in
/// [`FORMAT_VERSION`](super::super::format::FORMAT_VERSION)): 3 may hold
/// retire records. Versions from
/// [`OLDEST_FORMAT_VERSION`](super::super::format::OLDEST_FORMAT_VERSION)
/// up to it are read.
pub(crate) const MULTI_SEGMENT_VERSION: u32 = 3;

/// Magic bytes opening a segment of a multi-group log.
pub(crate) const MULTI_SEGMENT_MAGIC: [u8; 8] = *b"dkvmwal\n";
/// Magic bytes opening the identity file of a multi-group data folder (not
/// the single-group one's, so that neither kind of storage ever opens the
/// other's folder).
pub(crate) const MULTI_IDENTITY_MAGIC: [u8; 8] = *b"dkvmnode";

/// Path of segment `number`: `mwal-<20 digits>.log`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("mwal-{number:020}.log"))
}

/// Path of the temporary file a new segment is written under.
pub(crate) fn segment_temporary(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("mwal-{number:020}.log{TEMPORARY_SUFFIX}"))
}

/// Path of `group`'s snapshot at `point`.
pub(crate) fn snapshot_path(dir: &Path, group: GroupId, point: SnapshotPoint) -> PathBuf {
    dir.join(format!(
        "gsnap-{group:020}-{:020}-{:020}.snap",
        point.index, point.term
    ))
}

/// Path of the temporary file a snapshot is written under.
pub(crate) fn snapshot_temporary(dir: &Path) -> PathBuf {
    dir.join(format!("gsnap{TEMPORARY_SUFFIX}"))
}

/// What a file name in a multi-group data folder is: a snapshot is named by
/// its group and point.
pub(crate) type MultiFileName = FileName<(GroupId, SnapshotPoint)>;

/// Classifies a file name.
pub(crate) fn parse_file_name(name: &str) -> MultiFileName {
    if name == IDENTITY_FILE {
        return MultiFileName::Identity;
    }
    if name.ends_with(TEMPORARY_SUFFIX) {
        return MultiFileName::Temporary;
    }
    if let Some(number) = name
        .strip_prefix("mwal-")
        .and_then(|rest| rest.strip_suffix(".log"))
        .and_then(parse_fixed_digits)
    {
        return MultiFileName::Segment(number);
    }
    if let Some(rest) = name
        .strip_prefix("gsnap-")
        .and_then(|rest| rest.strip_suffix(".snap"))
    {
        let mut parts = rest.split('-').map(parse_fixed_digits);
        if let (Some(Some(group)), Some(Some(index)), Some(Some(term)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            return MultiFileName::Snapshot((group, SnapshotPoint { index, term }));
        }
    }
    MultiFileName::Unknown
}

/// Whether `name` is a segment or snapshot of a multi-group log.
pub(crate) fn is_log_file(name: &str) -> bool {
    matches!(
        parse_file_name(name),
        MultiFileName::Segment(_) | MultiFileName::Snapshot(_)
    )
}

/// One group's part of a step, as encoded (borrowing the entries).
#[derive(Debug, Serialize)]
pub(crate) enum ItemRef<'a> {
    /// A [`Write`](distribkv_core::raft::Write) of the group (its `seq` is
    /// not stored: the host's step is acknowledged as a whole).
    Write {
        /// The write's snapshot (data in the group's snapshot file).
        snapshot: Option<SnapshotMarker>,
        /// The write's hard state.
        hard_state: Option<HardState>,
        /// The write's entries.
        entries: &'a [Entry],
    },
    /// The group exists from here on, empty.
    Create,
    /// The group is gone: its state is dropped.
    Remove,
}

/// One group's part of a step, as decoded. Same layout as [`ItemRef`].
#[derive(Debug, Deserialize)]
pub(crate) enum Item {
    /// See [`ItemRef::Write`].
    Write {
        /// The write's snapshot.
        snapshot: Option<SnapshotMarker>,
        /// The write's hard state.
        hard_state: Option<HardState>,
        /// The write's entries.
        entries: Vec<Entry>,
    },
    /// See [`ItemRef::Create`].
    Create,
    /// See [`ItemRef::Remove`].
    Remove,
}

/// A step's record, as encoded.
#[derive(Debug, Serialize)]
pub(crate) struct BatchRef<'a> {
    /// Every group's part, in the order the host produced them.
    pub items: Vec<(GroupId, ItemRef<'a>)>,
}

/// A step's record, as decoded.
#[derive(Debug, Deserialize)]
pub(crate) struct Batch {
    /// See [`BatchRef::items`].
    pub items: Vec<(GroupId, Item)>,
}

/// One group's state in a [`GroupCheckpoint`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GroupState {
    /// The group.
    pub group: GroupId,
    /// Its snapshot point.
    pub snapshot: Option<SnapshotPoint>,
    /// Its term and vote.
    pub hard_state: HardState,
    /// Its live entries that were in the segments about to be deleted,
    /// copied here ("rewritten", as raft-engine's purge does), by index.
    pub rewritten: Vec<Entry>,
}

/// The state of every group at one point of the log, written (and
/// fsynced) before the segments below `first_kept` are deleted. Replaying
/// it sets the set of groups (a group not listed is dropped), each group's
/// snapshot point and hard state, drops each group's entries at or below
/// its snapshot, and puts the rewritten entries back in place by index
/// (never truncating what follows them).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GroupCheckpoint {
    /// The oldest segment kept; older ones are deleted once this record is durable.
    pub first_kept: u64,
    /// Every group, by id.
    pub groups: Vec<GroupState>,
}

/// Groups retired for good: their state is dropped, and no later record
/// may write to them. Written when a group retires, and again (every
/// tombstone) before each checkpoint, so that deleting old segments never
/// loses one.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct GroupRetire {
    /// The retired groups.
    pub groups: Vec<GroupId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let dir = Path::new("/d");
        let name = |p: PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            parse_file_name(&name(segment_path(dir, 12))),
            MultiFileName::Segment(12)
        );
        let point = SnapshotPoint { index: 9, term: 2 };
        assert_eq!(
            parse_file_name(&name(snapshot_path(dir, 77, point))),
            MultiFileName::Snapshot((77, point))
        );
        assert_eq!(
            parse_file_name(&name(segment_temporary(dir, 3))),
            MultiFileName::Temporary
        );
        assert_eq!(parse_file_name("identity"), MultiFileName::Identity);
        assert_eq!(
            parse_file_name("wal-00000000000000000001.log"),
            MultiFileName::Unknown
        );
        assert_eq!(parse_file_name("gsnap-1-2-3.snap"), MultiFileName::Unknown);
    }
}
