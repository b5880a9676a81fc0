//! Backups taken while a fault is held (the sharded scenario): `snapshot
//! save` of the whole cluster runs from the clients' host while a host is
//! down or cut off and shards move; every key of the history is recorded
//! as a read invoked when the save starts and completed, with the value
//! the file holds, when it ends. The history's check then holds the
//! backups to what a read is held to: every write acknowledged before the
//! save started is in the file, and no value is older than that.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use distribkv_core::check::OpKind;
use distribkv_native::backup::sharded::ShardedBackup;

use super::NsCluster;
use super::harness::BINARY;
use super::net::Network;
use super::workload::{Ending, Recorder};

/// The history's client id of the backups' reads.
const BACKUP_CLIENT: u64 = 9_000;
/// How long a save may run (the command gives up after 60 s).
const SAVE_LIMIT: Duration = Duration::from_secs(75);

/// The backups of a run.
pub struct Backups {
    dir: tempfile::TempDir,
    taken: usize,
    failed: Vec<String>,
    keys_read: usize,
    slowest: Duration,
}

/// A save under way.
pub struct Pending {
    child: Child,
    file: PathBuf,
    reads: Vec<(String, u64)>,
    started: Instant,
}

impl Backups {
    /// No backup yet; files go to a temporary folder.
    pub fn new() -> Backups {
        Backups {
            dir: tempfile::tempdir().expect("a temporary folder"),
            taken: 0,
            failed: Vec::new(),
            keys_read: 0,
            slowest: Duration::ZERO,
        }
    }

    /// Starts `snapshot save` on the clients' host, and a read of every
    /// key the history holds so far.
    pub fn start(&mut self, cluster: &NsCluster, recorder: &Recorder) -> Pending {
        let keys: BTreeSet<String> = recorder
            .operations()
            .into_iter()
            .map(|op| String::from_utf8_lossy(&op.key).into_owned())
            .collect();
        let file = self
            .dir
            .path()
            .join(format!("backup{}.snap", self.taken + self.failed.len()));
        let reads = keys
            .into_iter()
            .map(|key| {
                let id = recorder.invoke(BACKUP_CLIENT, &key, OpKind::Get);
                (key, id)
            })
            .collect();
        let child = Network::command_in(&cluster.hosts.clients, BINARY)
            .args(["snapshot", "save", "--cluster", &cluster.peers(), "--certs"])
            .arg(&cluster.certs)
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("snapshot save starts");
        Pending {
            child,
            file,
            reads,
            started: Instant::now(),
        }
    }

    /// Waits for a save; completes its reads with the file's values, or
    /// leaves their outcome unknown if it failed. Returns a word for the
    /// round's line.
    pub fn finish(&mut self, mut pending: Pending, recorder: &Recorder) -> &'static str {
        let status = loop {
            match pending.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if pending.started.elapsed() < SAVE_LIMIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    let _ = pending.child.kill();
                    break None;
                }
            }
        };
        let output = pending.child.wait_with_output().ok();
        let values = match status {
            Some(status) if status.success() => std::fs::read(&pending.file)
                .map_err(|e| e.to_string())
                .and_then(|bytes| ShardedBackup::decode(&bytes).map_err(|e| e.to_string()))
                .and_then(|backup| backup.pairs().map_err(|e| e.to_string())),
            Some(status) => Err(format!(
                "exit {status}: {}",
                output
                    .as_ref()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
                    .trim()
            )),
            None => Err(format!("no end within {} s", SAVE_LIMIT.as_secs())),
        };
        self.slowest = self.slowest.max(pending.started.elapsed());
        match values {
            Ok(pairs) => {
                let values: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect();
                for (key, id) in pending.reads {
                    recorder.complete(id, values.get(key.as_bytes()).cloned());
                    self.keys_read += 1;
                }
                self.taken += 1;
                "backup saved"
            }
            Err(why) => {
                for (_, id) in pending.reads {
                    recorder.fail(id, Ending::Error);
                }
                self.failed.push(why);
                "backup FAILED"
            }
        }
    }

    /// One line for the report.
    pub fn render(&self) -> String {
        format!(
            "backups: {} saved ({} keys read from them into the history), {} failed; the slowest took {:.1} s",
            self.taken,
            self.keys_read,
            self.failed.len(),
            self.slowest.as_secs_f64()
        )
    }

    /// Every save must succeed, a single host being down or cut off at a
    /// time, and some must have been taken.
    pub fn check(&self, rounds: usize, findings: &mut Vec<String>) {
        for why in &self.failed {
            findings.push(format!("a backup failed during a single fault: {why}"));
        }
        if rounds >= 4 && self.taken == 0 {
            findings.push(format!("no backup was taken in {rounds} rounds"));
        }
    }
}
