//! One power cut and what must come back: the machine's layout, the
//! writes a cut may keep, recovery after a cut and its checks, and one more
//! write on the recovered storage.

use std::path::PathBuf;

use distribkv_core::raft::{PersistedState, Write};
use distribkv_native::storage::{
    FaultFileSystem, FaultInjector, FileSystemOperation, PowerCut, RaftStorage, StorageOptions,
};

use crate::power_cut_support::recovered_prefix;
use crate::support::{IDENTITY, entry};

/// The machine's root; the data folder is two levels below, so that
/// recovery creates folders too.
pub const ROOT: &str = "/machine";

pub fn data_dir() -> PathBuf {
    PathBuf::from(ROOT).join("node-2").join("data")
}

pub fn segment(number: u64) -> PathBuf {
    data_dir().join(format!("wal-{number:020}.log"))
}

/// Options on `fs`. Zeros are written ahead a quarter segment (at most
/// 4 KiB) at a time, so that cuts fall around several extensions of
/// every segment and around its cut to its seal.
pub fn options_on(
    fs: &FaultFileSystem,
    segment_size: u64,
    write_buffer_size: usize,
) -> StorageOptions {
    StorageOptions {
        segment_size,
        write_buffer_size,
        preallocate: (segment_size / 4).clamp(1, 4096),
        faults: FaultInjector::new(),
        file_system: std::sync::Arc::new(fs.clone()),
        ..StorageOptions::default()
    }
}

/// `options` on `fs`, with fresh fault switches.
pub fn with_file_system(options: &StorageOptions, fs: &FaultFileSystem) -> StorageOptions {
    StorageOptions {
        preallocate: options.preallocate,
        ..options_on(fs, options.segment_size, options.write_buffer_size)
    }
}

/// What a cut may leave: `states[n]` is the state after the first `n`
/// writes since the storage was opened; at least `acked` of them had been
/// acknowledged durable, and at most `appended` had been handed to the
/// storage.
pub struct Allowed<'a> {
    pub states: &'a [PersistedState],
    pub acked: usize,
    pub appended: usize,
}

/// Where a cut happened, for failure messages.
pub struct CutPoint<'a> {
    pub operation: u64,
    pub next: Option<&'a FileSystemOperation>,
    pub mode: PowerCut,
    pub seed: u64,
}

impl std::fmt::Display for CutPoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "power cut ({:?}, seed {}) ", self.mode, self.seed)?;
        match self.next {
            Some(next) => write!(f, "before operation {} ({next})", self.operation),
            None => write!(f, "after operation {}", self.operation),
        }
    }
}

/// Cuts the power of `fs`, recovers the data folder, and checks what
/// came back. Returns the storage, what it recovered, how many writes
/// that is, and the machine after the cut.
pub fn cut_and_recover(
    fs: &FaultFileSystem,
    point: &CutPoint,
    options: &StorageOptions,
    allowed: &Allowed,
) -> Result<(RaftStorage, PersistedState, usize, FaultFileSystem), String> {
    let after = fs
        .power_cut(point.mode, point.seed)
        .map_err(|e| format!("{point}: the model failed: {e}"))?;
    let options = with_file_system(options, &after);
    let (storage, recovered) = RaftStorage::open(data_dir(), IDENTITY, options)
        .map_err(|e| format!("{point}: recovery refused the folder: {e}"))?;
    let floor = &allowed.states[allowed.acked];
    if recovered.hard_state.term < floor.hard_state.term {
        return Err(format!(
            "{point}: the term went back from {} (acknowledged) to {}",
            floor.hard_state.term, recovered.hard_state.term
        ));
    }
    let n = recovered_prefix(allowed.states, allowed.acked, allowed.appended, &recovered).map_err(
        |lost| {
            format!(
                "{point}: {lost}: hard state {:?}, snapshot at {:?}, last index {}",
                recovered.hard_state,
                recovered.snapshot.as_ref().map(|s| s.meta.index),
                recovered.last_index(),
            )
        },
    )?;
    Ok((storage, recovered, n, after))
}

/// A write that follows `state`, for checking that a recovered storage
/// takes writes again.
pub fn next_write(state: &PersistedState, seq: u64) -> Write {
    let term = state
        .entries
        .last()
        .map_or(state.hard_state.term, |e| e.term)
        .max(state.hard_state.term)
        .max(1);
    Write {
        seq,
        entries: vec![entry(state.last_index() + 1, term, 50)],
        ..Write::default()
    }
}

/// After a cut and recovery: one more write, synced, must be there after
/// a clean restart.
pub fn check_it_writes_again(
    mut storage: RaftStorage,
    recovered: PersistedState,
    fs: &FaultFileSystem,
    options: &StorageOptions,
    point: &CutPoint,
) -> Result<(), String> {
    let write = next_write(&recovered, 1);
    storage
        .append(&write)
        .and_then(|()| storage.sync())
        .map_err(|e| format!("{point}: after recovery, a write failed: {e}"))?;
    drop(storage);
    let (_, reopened) = RaftStorage::open(data_dir(), IDENTITY, with_file_system(options, fs))
        .map_err(|e| format!("{point}: after recovery and one write, a restart failed: {e}"))?;
    let mut expected = recovered;
    expected.apply(&write);
    if reopened != expected {
        return Err(format!(
            "{point}: a write made after recovery is not there after a restart"
        ));
    }
    Ok(())
}
