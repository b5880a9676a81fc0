//! A group that left is retired: group 2 joins, group 1 leaves while the
//! clients write; once group 1 has handed its shards over and the
//! retirement delay has passed, its replicas are gone from every host's
//! `status`, its snapshot files are deleted from every host's
//! log, a restarted host does not bring it back, and its id cannot join
//! again. The workload's history is checked as in the other sharded tests.

use std::time::Duration;

use super::super::harness::{Cluster, Loopback, stderr};
use super::{
    SHARDS, settled, shard, shard_ok, show, start_workload, status, stop_and_check, wait_for,
};

/// Group 1's snapshot files (`wal/gsnap-<group 1>-*.snap`) on host `id`.
fn group_1_snapshots(cluster: &Cluster<Loopback>, id: usize) -> usize {
    let wal = cluster.nodes[id - 1].data_dir.join("wal");
    let prefix = format!("gsnap-{:020}-", 1);
    std::fs::read_dir(&wal)
        .unwrap_or_else(|e| panic!("{}: {e}", wal.display()))
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .count()
}

#[test]
fn a_group_that_left_is_retired_from_every_host_and_stays_gone() {
    let mut cluster = Cluster::on_loopback(
        3,
        &[
            "--shards",
            &SHARDS.to_string(),
            "--group",
            "1=1,2,3",
            "--group",
            "2=1,2,3",
            "--snapshot-every",
            "20",
            "--retire-after-ms",
            "2000",
        ],
    );
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    wait_for(Duration::from_secs(20), "group 1 settled", || {
        settled(&show(&cluster))
    });
    let workload = start_workload(&cluster, 4, 23, &[]);
    // Enough writes for group 1 to snapshot (every 20 entries).
    wait_for(Duration::from_secs(30), "group 1 snapshotted", || {
        (1..=3).all(|id| group_1_snapshots(&cluster, id) > 0)
    });
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    std::thread::sleep(Duration::from_secs(1));
    shard_ok(&cluster, &["leave", "1"]);
    wait_for(Duration::from_secs(30), "group 2 owns every shard", || {
        let now = show(&cluster);
        settled(&now) && now.shards.iter().all(|g| *g == 2)
    });
    // Writes continue while group 1 waits out its retirement delay.
    wait_for(
        Duration::from_secs(30),
        "group 1 gone from every host's status",
        || {
            let lines = status(&cluster);
            lines.len() == 3 * 2 && lines.iter().all(|l| l.group != 1)
        },
    );
    wait_for(
        Duration::from_secs(10),
        "group 1's snapshot files deleted",
        || (1..=3).all(|id| group_1_snapshots(&cluster, id) == 0),
    );
    std::thread::sleep(Duration::from_secs(1));
    stop_and_check(&cluster, workload, 40);

    // Its id cannot join again: its replicas are gone.
    let output = shard(&cluster, &["join", "1", "1,2,3"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("do not hold group 1")
            && stderr(&output).contains("after it left and was retired"),
        "{}",
        stderr(&output)
    );

    // A restart (with the same --group flags) does not bring it back.
    cluster.kill(2);
    cluster.spawn(2);
    wait_for(Duration::from_secs(30), "host 2 back", || {
        let lines = status(&cluster);
        lines.iter().filter(|l| l.id == 2).count() == 2 && lines.iter().all(|l| l.leader.is_some())
    });
    let lines = status(&cluster);
    assert!(lines.iter().all(|l| l.group != 1), "{lines:?}");
    assert!(
        cluster.log_of(2).contains("not started again"),
        "{}",
        cluster.log_tail(2, 20)
    );
    cluster.put("retire-check", "after");
    assert_eq!(cluster.get("retire-check").as_deref(), Some("after"));
}
