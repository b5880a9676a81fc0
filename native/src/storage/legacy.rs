//! Reading what format version 1 wrote.
//!
//! Version 1 encoded a [`Membership`] (in log entries and in snapshots)
//! in one of two layouts, under the same version number:
//!
//! - voters and learners only (every release before the members' addresses
//!   joined the replicated configuration);
//! - voters, learners, addresses and removed ids (folders written while that
//!   change was on the main branch, before the version step).
//!
//! postcard is not self-describing, so a version-1 payload is decoded in
//! the first layout and, if that does not use exactly the whole payload,
//! in the second one. Both are turned into today's [`Membership`] (no
//! learner being promoted: version 1 had no such mark).

use bytes::Bytes;
use distribkv_core::raft::{
    Entry, HardState, LogIndex, Membership, NodeId, Payload, Snapshot, SnapshotMeta, Term,
};
use serde::Deserialize;

use super::error::Corruption;
use super::format::{SnapshotMarker, WriteRecord, decode_all};

/// A version-1 membership, in either layout.
trait OldMembership {
    fn upgrade(self) -> Membership;
}

/// The first layout: voters and learners.
#[derive(Deserialize)]
struct MembershipV1 {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
}

impl OldMembership for MembershipV1 {
    fn upgrade(self) -> Membership {
        let mut membership = Membership::with_voters(self.voters);
        membership.learners = self.learners;
        membership
    }
}

/// The second layout: with addresses and removed ids.
#[derive(Deserialize)]
struct MembershipV1Addressed {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
    addresses: Vec<(NodeId, String)>,
    removed: Vec<NodeId>,
}

impl OldMembership for MembershipV1Addressed {
    fn upgrade(self) -> Membership {
        let mut membership = Membership::with_voters(self.voters);
        membership.learners = self.learners;
        membership.addresses = self.addresses;
        membership.removed = self.removed;
        membership
    }
}

#[derive(Deserialize)]
enum PayloadOf<M> {
    Noop,
    Command(Bytes),
    Membership(M),
}

#[derive(Deserialize)]
struct EntryOf<M> {
    index: LogIndex,
    term: Term,
    payload: PayloadOf<M>,
}

impl<M: OldMembership> EntryOf<M> {
    fn upgrade(self) -> Entry {
        Entry {
            index: self.index,
            term: self.term,
            payload: match self.payload {
                PayloadOf::Noop => Payload::Noop,
                PayloadOf::Command(data) => Payload::Command(data),
                PayloadOf::Membership(m) => Payload::Membership(Box::new(m.upgrade())),
            },
        }
    }
}

#[derive(Deserialize)]
struct WriteRecordOf<M> {
    snapshot: Option<SnapshotMarker>,
    hard_state: Option<HardState>,
    entries: Vec<EntryOf<M>>,
}

impl<M: OldMembership> WriteRecordOf<M> {
    fn upgrade(self) -> WriteRecord {
        WriteRecord {
            snapshot: self.snapshot,
            hard_state: self.hard_state,
            entries: self.entries.into_iter().map(EntryOf::upgrade).collect(),
        }
    }
}

#[derive(Deserialize)]
struct SnapshotMetaOf<M> {
    index: LogIndex,
    term: Term,
    membership: M,
}

#[derive(Deserialize)]
struct SnapshotOf<M> {
    meta: SnapshotMetaOf<M>,
    data: Bytes,
}

impl<M: OldMembership> SnapshotOf<M> {
    fn upgrade(self) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: self.meta.index,
                term: self.meta.term,
                membership: self.meta.membership.upgrade(),
            },
            data: self.data,
        }
    }
}

/// Decodes a version-1 write record, in either layout.
pub(crate) fn decode_write_v1(payload: &[u8]) -> Result<WriteRecord, Corruption> {
    match decode_all::<WriteRecordOf<MembershipV1>>(payload) {
        Ok(record) => Ok(record.upgrade()),
        Err(first) => decode_all::<WriteRecordOf<MembershipV1Addressed>>(payload)
            .map(WriteRecordOf::upgrade)
            .map_err(|_| first),
    }
}

/// Decodes a version-1 snapshot file's payload, in either layout.
pub(crate) fn decode_snapshot_v1(payload: &[u8]) -> Result<Snapshot, Corruption> {
    match decode_all::<SnapshotOf<MembershipV1>>(payload) {
        Ok(snapshot) => Ok(snapshot.upgrade()),
        Err(first) => decode_all::<SnapshotOf<MembershipV1Addressed>>(payload)
            .map(SnapshotOf::upgrade)
            .map_err(|_| first),
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    /// The second version-1 layout, as main's storage encoded it before the
    /// version step (the current `Membership` without `promoting`).
    #[derive(Serialize)]
    struct Addressed {
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
        addresses: Vec<(NodeId, String)>,
        removed: Vec<NodeId>,
    }

    #[derive(Serialize)]
    enum PayloadOut {
        #[allow(dead_code)]
        Noop,
        Command(Bytes),
        Membership(Addressed),
    }

    #[derive(Serialize)]
    struct EntryOut {
        index: LogIndex,
        term: Term,
        payload: PayloadOut,
    }

    #[derive(Serialize)]
    struct RecordOut {
        snapshot: Option<SnapshotMarker>,
        hard_state: Option<HardState>,
        entries: Vec<EntryOut>,
    }

    #[test]
    fn both_version_1_layouts_decode() {
        let addressed = || Addressed {
            voters: vec![1, 2],
            learners: vec![3],
            addresses: vec![(1, "h1:1".into()), (2, "h2:1".into()), (3, "h3:1".into())],
            removed: vec![7],
        };
        let record = RecordOut {
            snapshot: None,
            hard_state: Some(HardState {
                term: 4,
                voted_for: None,
            }),
            entries: vec![
                EntryOut {
                    index: 9,
                    term: 4,
                    payload: PayloadOut::Membership(addressed()),
                },
                EntryOut {
                    index: 10,
                    term: 4,
                    payload: PayloadOut::Command(Bytes::from_static(b"x")),
                },
            ],
        };
        let bytes = postcard::to_allocvec(&record).unwrap();
        let decoded = decode_write_v1(&bytes).unwrap();
        let Payload::Membership(membership) = &decoded.entries[0].payload else {
            panic!("{decoded:?}");
        };
        let mut expected = Membership::with_voters([1, 2]);
        expected.learners = vec![3];
        expected.addresses = addressed().addresses;
        expected.removed = vec![7];
        assert_eq!(**membership, expected);
        assert_eq!(decoded.entries[1].index, 10);

        // The first layout (voters and learners only).
        let first = (
            None::<SnapshotMarker>,
            None::<HardState>,
            vec![(9u64, 4u64, 2u8, vec![1u64, 2], vec![3u64])],
        );
        let bytes = postcard::to_allocvec(&first).unwrap();
        let decoded = decode_write_v1(&bytes).unwrap();
        let mut expected = Membership::with_voters([1, 2]);
        expected.learners = vec![3];
        assert_eq!(
            decoded.entries[0].payload,
            Payload::Membership(Box::new(expected))
        );
        assert!(decode_write_v1(&bytes[..bytes.len() - 1]).is_err());
    }
}
