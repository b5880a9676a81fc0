//! Helpers shared by the storage tests: identities, entries, and a model that
//! turns abstract steps into writes that follow the contract, keeping
//! `PersistedState::apply` as the oracle.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use distribkv_core::raft::{
    Entry, HardState, LogIndex, Membership, Payload, PersistedState, Snapshot, SnapshotMeta, Term,
    Write,
};
use distribkv_native::storage::{Identity, RaftStorage, StorageOptions};
use proptest::prelude::*;

#[path = "../harness/files.rs"]
mod files;
pub use files::{files_named, segments};

/// The identity most tests use.
pub const IDENTITY: Identity = Identity {
    node_id: 2,
    cluster_id: 0x00c0_ffee_d15c_0b01,
};

/// An entry whose payload is `size` bytes derived from its index and term.
pub fn entry(index: LogIndex, term: Term, size: usize) -> Entry {
    let payload = (0..size)
        .map(|i| (index as usize * 31 + term as usize * 7 + i) as u8)
        .collect::<Vec<u8>>();
    Entry {
        index,
        term,
        payload: Payload::Command(Bytes::from(payload)),
    }
}

/// A snapshot at `index` and `term` with a little data.
pub fn snapshot(index: LogIndex, term: Term, size: usize) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters([1, 2, 3]),
        },
        data: Bytes::from(vec![index as u8; size]),
    }
}

/// The workloads' snapshot at `index` in `term`: its content depends on
/// nothing else, as in Raft, where a group's snapshots at one point are
/// one state (the storage names snapshot files by group and point). A
/// group the multi-group workload removes and creates again starts over
/// at term 0 and may reach a point of its earlier life: with content
/// drawn at random there, a snapshot not yet acknowledged could replace
/// the file of one the durable log still refers to, which no Raft group
/// does.
pub fn snapshot_at(index: LogIndex, term: Term) -> Snapshot {
    snapshot(index, term, 16 + ((index * 7 + term * 13) % 113) as usize)
}

/// Opens `dir` with [`IDENTITY`] and `options`, panicking on error.
pub fn open(dir: &Path, options: &StorageOptions) -> (RaftStorage, PersistedState) {
    RaftStorage::open(dir, IDENTITY, options.clone()).expect("open storage")
}

/// The snapshot files in `dir`.
pub fn snapshots(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, "snap-", ".snap")
}

/// Copies every file of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// One abstract step of a scenario; [`Model::write_for`] turns the write
/// steps into contract-abiding writes.
#[derive(Clone, Debug)]
pub enum Step {
    /// Append `count` entries at the end, in a new term if `new_term`, with a
    /// new hard state too if `with_vote`.
    Append {
        count: usize,
        new_term: bool,
        with_vote: bool,
        size: usize,
    },
    /// A new leader overwrites the log from `back` entries before its end
    /// (possibly below the snapshot).
    Overwrite {
        back: u64,
        count: usize,
        size: usize,
    },
    /// A new term and vote only.
    Vote { new_term: bool, candidate: u64 },
    /// A snapshot at a stored entry (keeps the entries after it), then
    /// `then_append` more entries in the same write.
    SnapshotAtEntry { pick: usize, then_append: usize },
    /// A snapshot from the leader at an index around the end of the log, in
    /// a term no stored entry has (drops the whole log).
    SnapshotElsewhere { offset: i64 },
    /// A write with nothing in it.
    Empty,
    /// Sync (and compact).
    Sync,
    /// Sync, close, reopen: recovery must give exactly the model's state.
    Reopen,
    /// Close without sync: recovery must give the state after some prefix
    /// of the writes, no shorter than the last sync.
    Crash,
}

/// A strategy for [`Step`]s, writes being the most common.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1usize..6, any::<bool>(), any::<bool>(), 0usize..300).prop_map(
            |(count, new_term, with_vote, size)| Step::Append { count, new_term, with_vote, size }
        ),
        3 => (0u64..12, 1usize..4, 0usize..100)
            .prop_map(|(back, count, size)| Step::Overwrite { back, count, size }),
        2 => (any::<bool>(), 1u64..4).prop_map(|(new_term, candidate)| Step::Vote { new_term, candidate }),
        2 => (any::<usize>(), 0usize..3)
            .prop_map(|(pick, then_append)| Step::SnapshotAtEntry { pick, then_append }),
        1 => (-4i64..6).prop_map(|offset| Step::SnapshotElsewhere { offset }),
        1 => Just(Step::Empty),
        3 => Just(Step::Sync),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
    ]
}

/// What the writes should have produced, by the oracle.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// The oracle: every write applied with `PersistedState::apply`.
    pub state: PersistedState,
    /// Highest term used so far.
    pub max_term: Term,
    /// `seq` of the last write made.
    pub seq: u64,
}

impl Model {
    /// The write for a write step (`None` for the other steps); applies it
    /// to the oracle.
    pub fn write_for(&mut self, step: &Step) -> Option<Write> {
        self.seq += 1;
        let mut write = Write {
            seq: self.seq,
            ..Write::default()
        };
        match *step {
            Step::Append {
                count,
                new_term,
                with_vote,
                size,
            } => {
                if new_term || self.max_term == 0 {
                    self.max_term += 1;
                }
                let first = self.state.last_index() + 1;
                write.entries = (0..count as u64)
                    .map(|i| entry(first + i, self.max_term, size))
                    .collect();
                if with_vote {
                    write.hard_state = Some(HardState {
                        term: self.max_term,
                        voted_for: Some(1),
                    });
                }
            }
            Step::Overwrite { back, count, size } => {
                self.max_term += 1;
                let end = self.state.last_index() + 1;
                let first = end.saturating_sub(back).max(1);
                write.entries = (0..count as u64)
                    .map(|i| entry(first + i, self.max_term, size))
                    .collect();
            }
            Step::Vote {
                new_term,
                candidate,
            } => {
                if new_term {
                    self.max_term += 1;
                }
                write.hard_state = Some(HardState {
                    term: self.max_term,
                    voted_for: Some(candidate),
                });
            }
            Step::SnapshotAtEntry { pick, then_append } => {
                if self.state.entries.is_empty() {
                    return self.empty(write);
                }
                let at = &self.state.entries[pick % self.state.entries.len()];
                let (index, term) = (at.index, at.term);
                write.snapshot = Some(Box::new(snapshot_at(index, term)));
                let mut after = self.state.clone();
                after.apply(&write);
                let first = after.last_index() + 1;
                write.entries = (0..then_append as u64)
                    .map(|i| entry(first + i, self.max_term.max(1), 40))
                    .collect();
            }
            Step::SnapshotElsewhere { offset } => {
                self.max_term += 1;
                let index = (self.state.last_index() as i64 + offset).max(1) as u64;
                write.snapshot = Some(Box::new(snapshot_at(index, self.max_term)));
                write.hard_state = Some(HardState {
                    term: self.max_term,
                    voted_for: None,
                });
            }
            Step::Empty => return self.empty(write),
            Step::Sync | Step::Reopen | Step::Crash => {
                self.seq -= 1;
                return None;
            }
        }
        self.state.apply(&write);
        Some(write)
    }

    fn empty(&mut self, write: Write) -> Option<Write> {
        let write = Write {
            seq: write.seq,
            ..Write::default()
        };
        self.state.apply(&write);
        Some(write)
    }

    /// The next `seq`, for writes built by hand.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// `count` writes of one `size`-byte entry each, at indexes 1..=count, term 1.
pub fn simple_writes(count: u64, size: usize) -> Vec<Write> {
    (1..=count)
        .map(|i| Write {
            seq: i,
            hard_state: (i == 1).then_some(HardState {
                term: 1,
                voted_for: Some(1),
            }),
            entries: vec![entry(i, 1, size)],
            snapshot: None,
        })
        .collect()
}

/// The oracle's state after `writes`.
pub fn oracle(writes: &[Write]) -> PersistedState {
    let mut state = PersistedState::default();
    for write in writes {
        state.apply(write);
    }
    state
}

/// A data folder holding three entries and then a snapshot (index 2, term 1,
/// `size` bytes), synced; returns it with the snapshot file's path.
pub fn folder_with_snapshot(size: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path(), &StorageOptions::default());
    for write in simple_writes(3, 10) {
        storage.append(&write).unwrap();
    }
    storage
        .append(&Write {
            seq: 4,
            snapshot: Some(Box::new(snapshot(2, 1, size))),
            ..Write::default()
        })
        .unwrap();
    storage.sync().unwrap();
    drop(storage);
    let file = snapshots(dir.path()).pop().unwrap();
    (dir, file)
}

/// The format version in a storage file's header.
pub fn version_of(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// Sets the format version in a file's header (and the header's checksum).
pub fn set_version(path: &Path, version: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// Captures what `run` logs.
pub fn logs_of<T>(run: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (result, text)
}
