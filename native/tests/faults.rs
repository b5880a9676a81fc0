//! Fault tests across real hosts: network namespaces, a nemesis, checked
//! histories (see `faults_support` and `docs/FAULTS.md`). They need root
//! (namespaces, iptables); without it they skip, or fail if `CI` is set.
//!
//! ```sh
//! cargo test -p distribkv-native --test faults -- --test-threads=1 --nocapture
//! ```

mod faults_support;

use faults_support::scenario::nemesis_run;

#[test]
fn three_nodes_under_a_nemesis() {
    nemesis_run("three_nodes_under_a_nemesis", 3, 4);
}

#[test]
fn five_nodes_under_a_nemesis() {
    nemesis_run("five_nodes_under_a_nemesis", 5, 5);
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_node_right_after_the_ack() {
    faults_support::targeted::crash_right_after_acknowledgements(
        "acknowledged_writes_survive_kill_9_of_every_node_right_after_the_ack",
    );
}

#[test]
fn recovery_figures() {
    faults_support::targeted::recovery_figures("recovery_figures");
}
