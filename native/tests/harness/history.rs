//! The checked workload of the multi-process tests: `client --json`
//! processes writing and reading against a cluster while their history is
//! recorded (the fault suite's [`Workload`]), the final read of every key
//! it touched, and the checks of the history (linearizable per key, every
//! acknowledged append in its key's final value exactly once).
//!
//! Both test binaries that include the harness (`loopback`, `faults`) hold
//! the fault suite's `workload` and `rng` modules at their root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use distribkv_core::check::{
    AppendCheckOptions, Budget, OpKind, Operation, Outcome, check_appends, check_linearizable,
};

use super::{BINARY, Cluster, Hosts, Loopback};
use crate::rng::Rng;
use crate::workload::{Pace, Recorder, Workload};

/// Starts `clients` `client --json` processes (with `extra` flags) where
/// the clients of `cluster` run, against every node, their operations
/// drawn from `rng`'s sub-streams at `pace`.
pub fn start_clients<H: Hosts>(
    cluster: &Cluster<H>,
    clients: usize,
    rng: &Rng,
    pace: Pace,
    extra: &[&str],
) -> Workload {
    let launch = cluster.hosts.clients_launcher();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let peers = cluster.peers();
    let certs: PathBuf = cluster.certs.clone();
    Workload::start(clients, rng, pace, move || {
        let mut command = launch(BINARY);
        command
            .args(["client", "--json", "--cluster", &peers, "--certs"])
            .arg(&certs)
            .args(&extra);
        command
    })
}

/// [`start_clients`] on the loopback interface, with operations drawn from
/// `seed`, each followed by a pause of up to 20 ms.
pub fn start_workload(
    cluster: &Cluster<Loopback>,
    clients: usize,
    seed: u64,
    extra: &[&str],
) -> Workload {
    start_clients(
        cluster,
        clients,
        &Rng::new(seed),
        Pace { max_think_ms: 20 },
        extra,
    )
}

/// How many of `operations` were acknowledged.
pub fn acknowledged(operations: &[Operation]) -> usize {
    operations
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Ok { .. }))
        .count()
}

/// Reads every key of `recorder`'s history once more through one `client
/// --json` process, recording the reads in the history: the final value
/// of each key that has one. An error names the key whose read failed.
pub fn read_finals<H: Hosts>(
    cluster: &Cluster<H>,
    recorder: &Recorder,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    let keys: BTreeSet<Vec<u8>> = recorder.operations().into_iter().map(|op| op.key).collect();
    let mut client = cluster.client_process();
    let mut finals = BTreeMap::new();
    for key in keys {
        let key = String::from_utf8(key).map_err(|e| format!("a key that is not text: {e}"))?;
        let id = recorder.invoke(0, &key, OpKind::Get);
        let answer = client
            .request(&format!("get {key}"), Duration::from_secs(30))
            .ok_or_else(|| format!("final read of {key}: no answer"))?;
        if answer["ok"] != true {
            return Err(format!("final read of {key}: {answer}"));
        }
        let value = answer["value"].as_str().map(|v| v.as_bytes().to_vec());
        recorder.complete(id, value.clone());
        if let Some(value) = value {
            finals.insert(key.into_bytes(), value);
        }
    }
    Ok(finals)
}

/// Checks a history whose keys were all read at the end (`finals`, from
/// [`read_finals`]): linearizable per key, and every acknowledged append
/// in its key's final value exactly once.
pub fn check_history(
    operations: &[Operation],
    finals: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), String> {
    check_linearizable(operations, Budget::default())
        .map_err(|error| format!("the history is not linearizable: {error}"))?;
    let options = AppendCheckOptions {
        reject_unexplained_text: true,
    };
    check_appends(operations, finals, options)
        .map_err(|error| format!("exactly-once appends: {error}"))
}
