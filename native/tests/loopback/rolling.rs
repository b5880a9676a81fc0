//! A rolling restart: every node of a cluster stopped (SIGTERM) and
//! started again in turn, the leader included, under a workload whose every
//! operation must succeed (the clients' own retries allowed) and whose
//! history must be linearizable.

use std::time::Duration;

use distribkv_core::check::{Budget, check_linearizable};

use super::harness::history::start_workload;
use super::harness::{self, Cluster, Loopback};
use super::workload::Ending;

#[test]
fn a_rolling_restart_of_every_node_fails_no_operation() {
    let mut cluster = Cluster::start(harness::one_at_a_time(), Loopback::new(3), &[]).unwrap();
    cluster.leader(Duration::from_secs(20));
    let mut workload = start_workload(&cluster, 4, 13, &[]);
    std::thread::sleep(Duration::from_secs(1));
    // Followers first, the leader last, as an operator would.
    let leader = cluster.leader(Duration::from_secs(20));
    let mut order: Vec<usize> = (1..=3).filter(|&id| id != leader).collect();
    order.push(leader);
    for id in order {
        let status = cluster.terminate(id);
        assert!(status.success(), "node {id} stops cleanly: {status:?}");
        std::thread::sleep(Duration::from_millis(500));
        cluster.spawn(id);
        // Caught up: it applied what the leader had committed when asked
        // (the workload keeps writing, so the nodes are never all equal).
        let leader = cluster.leader(Duration::from_secs(20));
        let committed = cluster
            .status_of(leader)
            .map_or(0, |status| status.commit_index);
        cluster.wait_applied(id, committed, Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_secs(1));
    workload.stop();
    let endings = workload.recorder.endings();
    let failed = endings
        .iter()
        .filter(|ending| **ending != Some(Ending::Ok))
        .count();
    assert!(endings.len() >= 50, "only {} operations", endings.len());
    assert_eq!(failed, 0, "{failed} of {} operations failed", endings.len());
    let operations = workload.recorder.operations();
    if let Err(error) = check_linearizable(&operations, Budget::default()) {
        panic!("the history is not linearizable: {error}");
    }
    cluster.wait_converged(Duration::from_secs(30)).unwrap();
}
