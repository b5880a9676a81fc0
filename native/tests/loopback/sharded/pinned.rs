//! A quiet group beside a busy one does not keep the multi-group log
//! growing: group 1 takes a tail of big values (more than
//! `--log-rewrite-limit`, fewer entries than `--snapshot-every`), then only
//! group 2 is written. The purge finds group 1 pinning the old segments;
//! once the log holds four times `--log-purge-after`
//! (`FORCE_SNAPSHOT_FACTOR`), the driver has the host snapshot it, and
//! every host's log stays within that however much group 2 writes, and
//! within twice `--log-purge-after` once group 1's snapshot is taken;
//! group 1's data is all there after every host is killed and started
//! again. Without the driver's `Host::snapshot_group` call the log keeps
//! everything written since group 1's first entry (3.5 MB).

use std::path::Path;
use std::time::Duration;

use distribkv_core::shard::shard_of;
use distribkv_native::storage::multi::FORCE_SNAPSHOT_FACTOR;

use super::super::harness::{Cluster, Loopback};
use super::{SHARDS, settled, shard_ok, show, wait_for};

const SEGMENT_SIZE: u64 = 128 << 10;
const PURGE_AFTER: u64 = 512 << 10;
const REWRITE_LIMIT: u64 = 128 << 10;
/// Group 1's keys and the size of their values: 240 KiB in all, above
/// the rewrite limit, under the purge threshold and `--snapshot-every`.
const QUIET_KEYS: usize = 40;
const QUIET_VALUE: usize = 6 << 10;
/// Group 2's keys, the size of their values (a tail of at most 100 entries
/// stays under the rewrite limit), and how many rounds over the keys.
const BUSY_KEYS: usize = 50;
const BUSY_VALUE: usize = 512;
const BUSY_ROUNDS: usize = 120;

/// The multi-group log's segment files on host `id`: (count, bytes).
fn segments(cluster: &Cluster<Loopback>, id: usize) -> (usize, u64) {
    let wal = cluster.nodes[id - 1].data_dir.join("wal");
    segments_in(&wal)
}

fn segments_in(wal: &Path) -> (usize, u64) {
    let mut found = (0, 0);
    for entry in std::fs::read_dir(wal).unwrap_or_else(|e| panic!("{}: {e}", wal.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("mwal-") && name.ends_with(".log") {
            found.0 += 1;
            found.1 += entry.metadata().map_or(0, |m| m.len());
        }
    }
    found
}

/// `count` keys `{prefix}-N` of shards that `group` owns.
fn keys_of(owners: &[u64], group: u64, prefix: &str, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|key| owners[shard_of(key.as_bytes(), SHARDS) as usize] == group)
        .take(count)
        .collect()
}

fn quiet_value(i: usize) -> String {
    format!("{i}-{}", "q".repeat(QUIET_VALUE))
}

fn busy_value(round: usize) -> String {
    format!("{round}-{}", "b".repeat(BUSY_VALUE))
}

#[test]
fn a_quiet_group_beside_a_busy_one_does_not_keep_the_log_growing() {
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
            "100",
            "--segment-size",
            &SEGMENT_SIZE.to_string(),
            "--log-purge-after",
            &PURGE_AFTER.to_string(),
            "--log-rewrite-limit",
            &REWRITE_LIMIT.to_string(),
        ],
    );
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    wait_for(Duration::from_secs(20), "two groups settled", || {
        let now = show(&cluster);
        settled(&now) && now.shards.contains(&1) && now.shards.contains(&2)
    });
    let owners = show(&cluster).shards;
    let quiet = keys_of(&owners, 1, "quiet", QUIET_KEYS);
    let busy = keys_of(&owners, 2, "busy", BUSY_KEYS);

    let script: String = quiet
        .iter()
        .enumerate()
        .map(|(i, key)| format!("put {key} {}\n", quiet_value(i)))
        .collect();
    let answers = cluster.client_json(&script);
    assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");

    // Group 2 alone writes about 3.5 MB, seven times the purge threshold:
    // the log grows to four times the threshold, then group 1 is
    // snapshotted and the log falls back under twice the threshold.
    let bound = 2 * PURGE_AFTER;
    let most = FORCE_SNAPSHOT_FACTOR * PURGE_AFTER;
    let mut largest = (0, 0);
    for rounds in (0..BUSY_ROUNDS).collect::<Vec<_>>().chunks(10) {
        let script: String = rounds
            .iter()
            .flat_map(|round| busy.iter().map(move |key| (round, key)))
            .map(|(round, key)| format!("put {key} {}\n", busy_value(*round)))
            .collect();
        let answers = cluster.client_json(&script);
        assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
        for id in 1..=3 {
            let (files, bytes) = segments(&cluster, id);
            largest = largest.max((bytes, files));
        }
    }
    eprintln!(
        "largest log seen: {} bytes in {} segments (at most {most}, then {bound})",
        largest.0, largest.1
    );
    // A sample may land just before a purge that was due.
    assert!(
        largest.0 <= most + PURGE_AFTER / 2,
        "a host's log held {} bytes in {} segments (at most {most})",
        largest.0,
        largest.1
    );
    // A purge runs after a commit: the last one may still be due.
    wait_for(Duration::from_secs(10), "every host's log bounded", || {
        (1..=3).all(|id| segments(&cluster, id).1 <= bound)
    });
    for id in 1..=3 {
        assert!(
            cluster
                .log_of(id)
                .contains("snapshotting a group whose log keeps old segments"),
            "host {id} snapshotted the pinning group: {}",
            cluster.log_tail(id, 20)
        );
    }

    // Every host killed and started again: group 1's data is all there.
    cluster.kill_all();
    for id in 1..=3 {
        cluster.spawn(id);
    }
    wait_for(Duration::from_secs(30), "the cluster back", || {
        settled(&show(&cluster))
    });
    let mut script: String = quiet.iter().map(|key| format!("get {key}\n")).collect();
    script.extend(busy.iter().map(|key| format!("get {key}\n")));
    let answers = cluster.client_json(&script);
    assert_eq!(answers.len(), quiet.len() + busy.len(), "{answers:?}");
    for (i, (key, answer)) in quiet.iter().zip(&answers).enumerate() {
        assert_eq!(answer["value"], quiet_value(i), "{key}");
    }
    for (key, answer) in busy.iter().zip(&answers[quiet.len()..]) {
        assert_eq!(answer["value"], busy_value(BUSY_ROUNDS - 1), "{key}");
    }
    for id in 1..=3 {
        let (files, bytes) = segments(&cluster, id);
        assert!(
            bytes <= bound,
            "host {id}: {bytes} bytes in {files} segments"
        );
    }
}
