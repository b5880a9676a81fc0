//! Fault tests across real hosts: network namespaces, a nemesis, checked
//! histories (see `faults_support` and `docs/FAULTS.md`). They need root
//! (namespaces, iptables); without it they skip, or fail if `CI` is set.
//! They run one at a time (a lock), best with:
//!
//! ```sh
//! cargo test -p distribkv-native --test faults -- --test-threads=1 --nocapture
//! ```
//!
//! `DISTRIBKV_FAULT_SEED=N` replays a schedule, `DISTRIBKV_FAULT_SOAK_SECS=N`
//! runs the nemesis N seconds per cluster size (default 55).

mod faults_support;

/// The tests that build hosts; `--skip across_hosts::` leaves them out of a
/// workspace-wide `cargo test` (scripts/test-all.sh runs them on their own).
mod across_hosts {
    use super::faults_support::{scenario, targeted};

    #[test]
    fn three_nodes_under_a_nemesis() {
        scenario::nemesis_run("three_nodes_under_a_nemesis", 3, 4);
    }

    #[test]
    fn five_nodes_under_a_nemesis() {
        scenario::nemesis_run("five_nodes_under_a_nemesis", 5, 5);
    }

    #[test]
    fn acknowledged_writes_survive_kill_9_of_every_node_right_after_the_ack() {
        targeted::crash_right_after_acknowledgements(
            "acknowledged_writes_survive_kill_9_of_every_node_right_after_the_ack",
        );
    }

    #[test]
    fn recovery_figures() {
        targeted::recovery_figures("recovery_figures");
    }
}
