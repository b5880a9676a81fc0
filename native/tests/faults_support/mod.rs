//! Fault tests across real "hosts": a cluster of `distribkv-native server`
//! processes, one per Linux network namespace on a shared bridge, clients
//! in a namespace of their own, and a nemesis that partitions, drops,
//! kills, pauses and crashes them on a seeded schedule while concurrent
//! clients record a history for the core's checkers. See `docs/FAULTS.md`.
//!
//! - [`net`]: namespaces, bridge, addresses, firewall rules, cleanup;
//! - [`cluster`]: the servers in their namespaces, `status`, convergence;
//! - [`workload`]: client processes and the recorded history;
//! - [`nemesis`]: the seeded fault schedule and its injection;
//! - [`scenario`]: a whole nemesis run, its checks and its report;
//! - [`targeted`]: crashes right after acknowledgements, recovery figures.

#![allow(dead_code)]

pub mod cluster;
pub mod nemesis;
pub mod net;
pub mod rng;
pub mod scenario;
pub mod targeted;
pub mod workload;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The fault tests run one at a time: they share iptables and the CPU, and
/// two clusters at once would make each other's elections flaky.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Environment variable: the seed of the workload and the fault schedule.
pub const SEED_VARIABLE: &str = "DISTRIBKV_FAULT_SEED";
/// Environment variable: run the nemesis this many seconds per cluster size.
pub const SOAK_VARIABLE: &str = "DISTRIBKV_FAULT_SOAK_SECS";

/// Environment variable: keep the data folders and logs even on success.
pub const KEEP_VARIABLE: &str = "DISTRIBKV_FAULT_KEEP";

/// How long the nemesis runs per cluster size by default.
pub const DEFAULT_NEMESIS: Duration = Duration::from_secs(55);

/// Takes the one-at-a-time lock if this machine can run the tests. `None`
/// means skip (a reason was printed). Under `CI` it panics instead of
/// skipping: a CI machine that cannot run them is misconfigured.
pub fn prepare() -> Option<MutexGuard<'static, ()>> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match net::probe() {
        Ok(()) => Some(guard),
        Err(why) if std::env::var_os("CI").is_some() => panic!(
            "the fault tests cannot run here: {why}; they need root, `ip netns` and iptables \
             (CI is set, so this is a failure rather than a skip)"
        ),
        Err(why) => {
            eprintln!(
                "skipping the fault tests: {why}; they need root, `ip netns` and iptables \
                 (set CI to make this a failure)"
            );
            None
        }
    }
}

/// The seed: `DISTRIBKV_FAULT_SEED`, or a random one.
pub fn seed() -> u64 {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VARIABLE}={text:?} is not a number")),
        Err(_) => rng::random_seed(),
    }
}

/// How long the nemesis runs: `DISTRIBKV_FAULT_SOAK_SECS`, or the default.
pub fn nemesis_duration() -> Duration {
    match std::env::var(SOAK_VARIABLE) {
        Ok(text) => Duration::from_secs(
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SOAK_VARIABLE}={text:?} is not a number of seconds")),
        ),
        Err(_) => DEFAULT_NEMESIS,
    }
}
