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
