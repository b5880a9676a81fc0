//! Test-only (feature `fault-injection`, never in a release build): a server
//! whose storage runs on a [`FaultFileSystem`] backed by its data folder, so
//! that a multi-process test can cut the power of one node or of all of
//! them.
//!
//! With the hidden flag `--fault-power-cut MODE`, every file and folder
//! operation of the node's storage goes through the model: what was
//! fsynced is in the real data folder, what was only written stays in the
//! process's memory. Then:
//!
//! - `kill -9` of the process is a power cut that drops everything
//!   unsynced ([`PowerCut::DropUnsynced`]);
//! - `SIGUSR1` cuts the power in `MODE` (`any`: one drawn at random; unsynced writes dropped, the last
//!   unsynced page of each file torn at a sector boundary, or unsynced
//!   writes and folder changes kept in part and out of order), writes what
//!   survived to the real folder, and ends the process at once with exit
//!   code [`POWER_CUT_EXIT`], before anything else runs.
//!
//! The next start, with or without the flag, recovers from what survived.

use std::io;
use std::path::Path;

use clap::ValueEnum;

use crate::server::ServerConfig;
use crate::storage::{FaultFileSystem, PowerCut, StorageOptions};

/// Exit code of a process whose power was cut by `SIGUSR1`.
pub const POWER_CUT_EXIT: i32 = 86;

/// What survives a power cut besides what was fsynced (`--fault-power-cut`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PowerCutMode {
    /// Everything not covered by an fsync is lost.
    Drop,
    /// The last unsynced page of each file is torn at a 512-byte boundary.
    Torn,
    /// Random prefixes of each file's unsynced writes and of each name's
    /// unsynced folder changes survive.
    Reorder,
    /// One of the three, drawn at each cut.
    Any,
}

impl PowerCutMode {
    /// The model's mode; `Any` draws one from `seed`.
    fn power_cut(self, seed: u64) -> PowerCut {
        match self {
            PowerCutMode::Drop => PowerCut::DropUnsynced,
            PowerCutMode::Torn => PowerCut::TornPage,
            PowerCutMode::Reorder => PowerCut::Reorder,
            PowerCutMode::Any => PowerCut::ALL[(seed % 3) as usize],
        }
    }
}

/// Puts the node's storage on a fault file system backed by its data
/// folder (created first if missing, durably: the test's power cuts are of
/// the node's files, not of the machine's folders above them).
pub fn install(config: &mut ServerConfig) -> io::Result<FaultFileSystem> {
    install_on(&config.data_dir, &mut config.storage)
}

/// [`install`] for any storage whose data folder is `dir` (a sharded
/// host's, for one).
pub fn install_on(dir: &Path, storage: &mut StorageOptions) -> io::Result<FaultFileSystem> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    let file_system = FaultFileSystem::backed_by(dir)?;
    storage.file_system = std::sync::Arc::new(file_system.clone());
    Ok(file_system)
}

/// Waits for `SIGUSR1`, then cuts the power of `file_system` in `mode` and
/// ends the process. Never returns (pending forever if the signal handler
/// cannot be installed: the flag is then a plain backed file system).
pub async fn cut_on_signal(file_system: FaultFileSystem, mode: PowerCutMode) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut user) = signal(SignalKind::user_defined1()) else {
        tracing::warn!("cannot install the SIGUSR1 handler; no power cut on signal");
        return std::future::pending().await;
    };
    user.recv().await;
    let seed = crate::transport::random_u64();
    let cut = mode.power_cut(seed);
    let unsynced = file_system.unsynced_bytes();
    match file_system.power_cut(cut, seed >> 2) {
        Ok(_) => crate::cli::note(format_args!(
            "power cut ({cut:?}, {unsynced} bytes unsynced): process ends"
        )),
        Err(error) => crate::cli::note(format_args!(
            "power cut ({cut:?}) failed: {error}; process ends"
        )),
    }
    std::process::exit(POWER_CUT_EXIT);
}
