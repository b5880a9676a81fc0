//! Fault tests across real "hosts": a cluster of `distribkv-native server`
//! processes, one per Linux network namespace on a shared bridge, clients
//! in a namespace of their own, and a nemesis that partitions, drops,
//! kills, pauses, crashes and replaces them on a seeded schedule while concurrent
//! clients record a history for the core's checkers. See `docs/FAULTS.md`.
//!
//! They need root (namespaces, iptables); without it they skip, or fail if
//! `CI` is set. They run one at a time (a lock), best with:
//!
//! ```sh
//! cargo test -p distribkv-native --test faults -- --test-threads=1 --nocapture
//! ```
//!
//! `DISTRIBKV_FAULT_SEED=N` replays a schedule, `DISTRIBKV_FAULT_SOAK_SECS=N`
//! runs the nemesis N seconds per cluster size (default 55).
//!
//! - [`net`]: the hosts: namespaces, bridge, addresses, firewall rules,
//!   cleanup;
//! - the servers on them are the harness's [`harness::Cluster`], the same
//!   as the loopback tests';
//! - [`relay`]: the user-space UDP relay on every link (delay, jitter,
//!   reordering, duplication, bit flips on the wire);
//! - [`workload`]: client processes and the recorded history;
//! - [`nemesis`]: the seeded fault schedule and its injection;
//! - [`scenario`]: a whole nemesis run, its checks and its report;
//! - [`targeted`]: crashes right after acknowledgements, recovery figures;
//! - [`recovery`]: writes stop for at most a bound after each single fault,
//!   with the servers' default timing;
//! - [`sharded`]: a sharded cluster under partitions and kills during
//!   shard moves;
//! - [`served`]: whether followers answered reads, from the servers'
//!   metrics;
//! - [`backups`]: backups taken during the sharded scenario's faults, their
//!   keys read into the history.

mod backups;
#[path = "../harness/mod.rs"]
mod harness;

mod nemesis;
mod net;
mod recovery;
mod relay;
mod rng;
mod scenario;
mod served;
mod sharded;
mod targeted;
mod workload;

use std::time::Duration;

use harness::{Cluster, OneAtATime};
use net::Network;

/// Environment variable: the seed of the workload and the fault schedule.
pub const SEED_VARIABLE: &str = "DISTRIBKV_FAULT_SEED";
/// Environment variable: run the nemesis this many seconds per cluster size.
pub const SOAK_VARIABLE: &str = "DISTRIBKV_FAULT_SOAK_SECS";

/// How long the nemesis runs per cluster size by default.
pub const DEFAULT_NEMESIS: Duration = Duration::from_secs(55);

/// A cluster of server processes, one per network namespace.
pub type NsCluster = Cluster<Network>;

/// Creates `nodes` hosts and starts a server on each with `extra_args`.
pub fn start_cluster(
    one_at_a_time: OneAtATime,
    nodes: usize,
    extra_args: &[&str],
) -> Result<NsCluster, String> {
    start_cluster_with_spares(one_at_a_time, nodes, 0, extra_args)
}

/// Like [`start_cluster`], with `spares` more hosts, empty at the start:
/// the machines that replace removed members (nodes `nodes + 1..`).
pub fn start_cluster_with_spares(
    one_at_a_time: OneAtATime,
    nodes: usize,
    spares: usize,
    extra_args: &[&str],
) -> Result<NsCluster, String> {
    let network = Network::create(nodes + spares)?;
    Cluster::start_with_spares(one_at_a_time, network, nodes, extra_args)
}

/// Takes the one-at-a-time lock if this machine can run the tests (they
/// share iptables and the CPU). `None` means skip (a reason was printed).
/// Under `CI` it panics instead of skipping: a CI machine that cannot run
/// them is misconfigured.
pub fn prepare() -> Option<OneAtATime> {
    let guard = harness::one_at_a_time();
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

/// The tests that build hosts; `--skip across_hosts::` leaves them out of a
/// workspace-wide `cargo test` (scripts/test-all.sh runs them on their own).
mod across_hosts {
    use super::scenario::{self, Storage};
    use super::targeted::{self, Crash};

    /// Its servers run on the power-cut model, so its nemesis also cuts the
    /// power of one node and of all of them.
    #[test]
    fn three_nodes_under_a_nemesis() {
        scenario::nemesis_run("three_nodes_under_a_nemesis", 3, 4, Storage::PowerCutModel);
    }

    /// Its servers run on the real file system.
    #[test]
    fn five_nodes_under_a_nemesis() {
        scenario::nemesis_run("five_nodes_under_a_nemesis", 5, 5, Storage::Real);
    }

    #[test]
    fn acknowledged_writes_survive_kill_9_of_every_node_right_after_the_ack() {
        targeted::crash_right_after_acknowledgements(
            "acknowledged_writes_survive_kill_9_of_every_node_right_after_the_ack",
            Crash::Kill9,
        );
    }

    #[test]
    fn acknowledged_writes_survive_a_power_cut_of_every_node_right_after_the_ack() {
        targeted::crash_right_after_acknowledgements(
            "acknowledged_writes_survive_a_power_cut_of_every_node_right_after_the_ack",
            Crash::PowerCut,
        );
    }

    #[test]
    fn writes_recover_within_the_bound_after_each_single_fault() {
        super::recovery::recovery_after_single_faults(
            "writes_recover_within_the_bound_after_each_single_fault",
        );
    }

    #[test]
    fn sharded_cluster_under_partitions_and_kills_during_moves() {
        super::sharded::sharded_run("sharded_cluster_under_partitions_and_kills_during_moves");
    }

    #[test]
    fn recovery_figures() {
        targeted::recovery_figures("recovery_figures");
    }
}
