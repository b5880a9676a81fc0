//! The `--config` file of `server` and the flag values parsed from text.

use std::path::PathBuf;

use distribkv_core::raft::NodeId;

use super::argument_error;

/// The `--config` file: the flags of `server` as keys.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    /// `--id`.
    pub id: Option<NodeId>,
    /// `--peers`, as an array.
    pub peers: Option<Vec<String>>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--join`, as an array.
    pub join: Option<Vec<String>>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--certs`.
    pub certs: Option<PathBuf>,
    /// `--snapshot-every`.
    pub snapshot_every: Option<u64>,
    /// `--heartbeat-ms`.
    pub heartbeat_ms: Option<u64>,
    /// `--election-timeout-ms`, `"MIN-MAX"`.
    pub election_timeout_ms: Option<String>,
    /// `--lease-reads`.
    pub lease_reads: Option<bool>,
    /// `--metrics-addr`.
    pub metrics_addr: Option<String>,
    /// `--segment-size`.
    pub segment_size: Option<u64>,
    /// `--group-commit-interval-us`.
    pub group_commit_interval_us: Option<u64>,
    /// `--log-preallocate`.
    pub log_preallocate: Option<u64>,
    /// `--shards`.
    pub shards: Option<u32>,
    /// `--controller`, as an array of host ids.
    pub controller: Option<Vec<NodeId>>,
    /// `--group`, as a table: group id (a string key) = array of host ids.
    pub groups: Option<std::collections::BTreeMap<String, Vec<NodeId>>>,
    /// `--hibernate-after-ms`.
    pub hibernate_after_ms: Option<u64>,
    /// `--retire-after-ms`.
    pub retire_after_ms: Option<u64>,
    /// `--log-purge-after`.
    pub log_purge_after: Option<u64>,
    /// `--log-rewrite-limit`.
    pub log_rewrite_limit: Option<u64>,
}

impl ConfigFile {
    /// Reads and parses `path`; an unknown key or a wrong type is an error
    /// naming it.
    pub fn load(path: &std::path::Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// An election timeout range, `MIN-MAX` ms, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutRange(pub u64, pub u64);

impl std::fmt::Display for TimeoutRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Parses `MIN-MAX`; whether the range is usable is the core's rule,
/// checked with the rest in [`ServerArgs::config`](method@super::ServerArgs::config).
pub(super) fn parse_range(text: &str) -> Result<TimeoutRange, String> {
    let (min, max) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not MIN-MAX"))?;
    let min: u64 = min.trim().parse().map_err(|e| format!("{min:?}: {e}"))?;
    let max: u64 = max.trim().parse().map_err(|e| format!("{max:?}: {e}"))?;
    Ok(TimeoutRange(min, max))
}

/// Parses a list of host ids, `1,2,3`.
pub(super) fn parse_ids(flag: &str, text: &str) -> Result<Vec<NodeId>, clap::Error> {
    text.split(',')
        .map(|part| {
            part.trim().parse::<NodeId>().map_err(|_| {
                argument_error(format!(
                    "{flag}: {part:?} is not a host id (a list of ids is written 1,2,3)"
                ))
            })
        })
        .collect()
}
