//! A sharded cluster of three server processes (`server --shards`): the
//! controller group and three shard groups on every host, the `shard`
//! commands, key routing for the client commands, and moves under a
//! workload whose history is checked (linearizable per key, every
//! acknowledged append present exactly once): a group joins and shards
//! move; a group's leader is killed in the middle of a move; every host is
//! killed, then loses power, and nothing acknowledged is lost; clients
//! read at followers (`--follower-reads`) while shards move; bad input
//! gets a clear error; a backup taken while shards move loads into new
//! clusters.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::Duration;

use distribkv_core::shard::shard_of;
use distribkv_native::cli::shard::{ShardStatusLine, ShowJson};
use serde_json::Value;

use super::harness::history::{acknowledged, check_history, read_finals, start_workload};
use super::harness::{BINARY, Cluster, Loopback, THREE_GROUPS_OF_8_SHARDS, stderr, stdout};
use super::workload::{APPEND_KEYS, MIXED_KEYS, Workload};

mod backup;
mod commands;
mod pinned;
mod retire;

/// Shards of the test clusters.
const SHARDS: u32 = 8;

/// Three hosts, each holding the controller and groups 1, 2 and 3.
fn sharded_cluster() -> Cluster<Loopback> {
    Cluster::on_loopback(3, &THREE_GROUPS_OF_8_SHARDS)
}

/// `shard VERB --cluster .. --certs .. ARGS...` (`args[0]` is the verb).
fn shard(cluster: &Cluster<Loopback>, args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(["shard", args[0], "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .args(&args[1..])
        .output()
        .unwrap()
}

/// `shard <args>` that must print `OK` and exit 0.
fn shard_ok(cluster: &Cluster<Loopback>, args: &[&str]) {
    let output = shard(cluster, args);
    assert!(
        output.status.success() && stdout(&output) == "OK\n",
        "shard {args:?}: {output:?}"
    );
}

/// `shard show --json`.
fn show(cluster: &Cluster<Loopback>) -> ShowJson {
    let output = shard(cluster, &["show", "--json"]);
    assert!(output.status.success(), "shard show: {output:?}");
    serde_json::from_str(stdout(&output).trim()).expect("shard show --json is one object")
}

/// `status --json`, one line per host and group.
fn status(cluster: &Cluster<Loopback>) -> Vec<ShardStatusLine> {
    let output = cluster.cli("status", &["--json"]);
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a status line"))
        .collect()
}

fn wait_for(limit: Duration, what: &str, condition: impl FnMut() -> bool) {
    crate::harness::wait_for(limit, Duration::from_millis(200), what, condition);
}

/// Every shard owned, nothing moving, every group's leader known.
fn settled(show: &ShowJson) -> bool {
    show.moving.is_empty()
        && show.shards.iter().all(|g| *g != 0)
        && show.groups.iter().all(|g| g.leader.is_some())
}

/// The shards of the workload's keys (its first minute), without repeats.
fn workload_shards() -> Vec<u32> {
    let mut keys: Vec<String> = APPEND_KEYS.iter().map(|k| format!("{k}.0")).collect();
    keys.extend(MIXED_KEYS.iter().map(|k| k.to_string()));
    let shards: BTreeSet<u32> = keys
        .iter()
        .map(|k| shard_of(k.as_bytes(), SHARDS))
        .collect();
    shards.into_iter().collect()
}

/// Stops the workload, reads every key once more, and checks the history:
/// enough acknowledged, linearizable, every acknowledged append exactly
/// once in its key's final value.
fn stop_and_check(cluster: &Cluster<Loopback>, mut workload: Workload, at_least: usize) {
    workload.stop();
    let finals = read_finals(cluster, &workload.recorder).unwrap_or_else(|e| panic!("{e}"));
    let operations = workload.recorder.operations();
    let acknowledged = acknowledged(&operations);
    assert!(
        acknowledged >= at_least,
        "only {acknowledged} of {} operations acknowledged",
        operations.len()
    );
    if let Err(error) = check_history(&operations, &finals) {
        panic!("{error}");
    }
}

#[test]
fn a_group_joins_and_shards_move_under_a_checked_workload() {
    let cluster = sharded_cluster();
    let initial = show(&cluster);
    assert_eq!(initial.num, 0);
    assert_eq!(initial.shards, vec![0; SHARDS as usize]);
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    wait_for(Duration::from_secs(20), "two groups settled", || {
        settled(&show(&cluster))
    });
    // Leadership moves on request (to spread the groups' leaders).
    for (group, host) in [("1", "2"), ("2", "3")] {
        shard_ok(&cluster, &["leader", group, host]);
    }
    let lines = status(&cluster);
    for (group, host) in [(1, 2), (2, 3)] {
        assert!(
            lines
                .iter()
                .all(|l| l.group != group || l.leader == Some(host)),
            "group {group} led by host {host}: {lines:?}"
        );
    }
    // The one-shot commands route by key.
    for key in ["alpha", "beta", "gamma", "delta"] {
        cluster.put(key, &format!("{key}-1"));
    }
    let output = cluster.cli("append", &["alpha", "+2"]);
    assert_eq!(stdout(&output), "OK\n", "{output:?}");
    assert_eq!(cluster.get("alpha").as_deref(), Some("alpha-1+2"));
    assert_eq!(cluster.get("missing"), None);

    let workload = start_workload(&cluster, 4, 21, &[]);
    std::thread::sleep(Duration::from_secs(2));
    // Group 3 joins: the controller gives it a share of the shards, which
    // move from groups 1 and 2 while the clients write.
    shard_ok(&cluster, &["join", "3", "1,2,3"]);
    std::thread::sleep(Duration::from_secs(1));
    // Then every shard the workload touches moves once more, one at a time.
    for shard in workload_shards() {
        let current = show(&cluster);
        let owner = current.shards[shard as usize];
        let target = if owner == 3 { 1 } else { owner + 1 };
        shard_ok(&cluster, &["move", &shard.to_string(), &target.to_string()]);
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_for(Duration::from_secs(30), "every move finished", || {
        settled(&show(&cluster))
    });
    std::thread::sleep(Duration::from_secs(1));
    stop_and_check(&cluster, workload, 60);

    let last = show(&cluster);
    assert!(last.num >= 4, "a configuration per change: {last:?}");
    for group in [1, 2, 3] {
        assert!(
            last.groups
                .iter()
                .any(|g| g.group == group && !g.shards.is_empty()),
            "group {group} owns shards: {last:?}"
        );
    }
    // The data moved with the shards.
    assert_eq!(cluster.get("alpha").as_deref(), Some("alpha-1+2"));
    assert_eq!(cluster.get("delta").as_deref(), Some("delta-1"));
    // Status: one line per host and group, every group with one leader.
    let lines = status(&cluster);
    assert_eq!(lines.len(), 3 * 4, "{lines:?}");
    for group in 0..=3 {
        let leaders: BTreeSet<_> = lines
            .iter()
            .filter(|l| l.group == group)
            .map(|l| l.leader)
            .collect();
        assert_eq!(leaders.len(), 1, "group {group}: {lines:?}");
    }
}

#[test]
fn a_group_leader_killed_during_a_move() {
    let mut cluster = sharded_cluster();
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    wait_for(Duration::from_secs(20), "two groups settled", || {
        settled(&show(&cluster))
    });
    let workload = start_workload(&cluster, 4, 22, &[]);
    std::thread::sleep(Duration::from_secs(2));
    let shards = workload_shards();
    let shard = shards[0];
    let before = show(&cluster);
    let from = before.shards[shard as usize];
    let to = if from == 1 { 2 } else { 1 };
    // Host 1 leads the sending group: the first host every command asks
    // (see below).
    shard_ok(&cluster, &["leader", &from.to_string(), "1"]);
    let leader = 1;
    // The move is taken by the controller; the sending group's leader
    // dies before (or while) it hands the shard over.
    shard_ok(&cluster, &["move", &shard.to_string(), &to.to_string()]);
    cluster.kill(leader);
    std::thread::sleep(Duration::from_secs(3));
    // The two survivors of each group finish the move.
    let survivors = cluster
        .peers()
        .split(',')
        .enumerate()
        .filter(|(index, _)| index + 1 != leader)
        .map(|(_, address)| address.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let show_survivors = || -> ShowJson {
        let output = Command::new(BINARY)
            .args([
                "shard",
                "show",
                "--json",
                "--cluster",
                &survivors,
                "--certs",
            ])
            .arg(&cluster.certs)
            .output()
            .unwrap();
        serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|_| panic!("{output:?}"))
    };
    wait_for(
        Duration::from_secs(30),
        "the move finished without the dead host",
        || {
            let now = show_survivors();
            now.shards[shard as usize] == to && now.moving.is_empty()
        },
    );
    // Asked of every host with the dead one first (host 1: the commands
    // ask the hosts in id order), the others' answers
    // count: the time spent waiting for the dead host once used up theirs,
    // so `status` and `shard show` read them as down too, and the check
    // of `shard join` let a group that no host runs in.
    let dead_first = {
        let mut addresses: Vec<String> = cluster.peers().split(',').map(String::from).collect();
        let dead = addresses.remove(leader - 1);
        addresses.insert(0, dead);
        addresses.join(",")
    };
    let ask = |args: &[&str]| {
        Command::new(BINARY)
            .args(args)
            .args(["--cluster", &dead_first, "--certs"])
            .arg(&cluster.certs)
            .output()
            .unwrap()
    };
    let output = ask(&["status", "--json"]);
    let lines: Vec<ShardStatusLine> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a status line"))
        .collect();
    for id in (1..=3u64).filter(|id| *id != leader as u64) {
        let answered = lines.iter().filter(|l| l.id == id).count();
        assert_eq!(answered, 4, "host {id} in `status`: {output:?}");
    }
    let output = ask(&["shard", "show", "--json"]);
    let now: ShowJson =
        serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|_| panic!("{output:?}"));
    assert!(
        now.groups.iter().all(|g| g.leader.is_some()) && now.moving.is_empty(),
        "{now:?}"
    );
    let output = ask(&["shard", "join", "4", "1,2,3"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("do not hold group 4"),
        "{output:?}"
    );
    cluster.spawn(leader);
    wait_for(
        Duration::from_secs(30),
        "the dead host back in every group",
        || {
            let lines = status(&cluster);
            lines.iter().filter(|l| l.id == leader as u64).count() == 4
                && lines.iter().all(|l| l.leader.is_some())
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    stop_and_check(&cluster, workload, 40);
}

/// The multi-group log files of host `id`'s data folder (`wal/mwal-*.log`).
fn host_log_segments(cluster: &Cluster<Loopback>, id: usize) -> Vec<String> {
    let wal = cluster.nodes[id - 1].data_dir.join("wal");
    let mut names: Vec<String> = std::fs::read_dir(&wal)
        .unwrap_or_else(|e| panic!("{}: {e}", wal.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("mwal-"))
        .collect();
    names.sort();
    names
}

/// Every host is killed (`kill -9`) at once, restarted, then its power is
/// cut (its multi-group log runs on the fault file system: unsynced writes
/// lost, torn or reordered) and it is restarted again, all under a checked
/// workload: every acknowledged write is found, every group recovers its
/// term, vote, log and snapshot, and each host keeps one log for all its
/// groups.
#[test]
fn every_acknowledged_write_survives_kill_9_and_power_cuts_of_every_host() {
    kill_9_and_power_cuts_lose_no_acknowledged_write(&[]);
}

/// The same with group commits at least 2 ms apart
/// (`--group-commit-interval-us`): writes wait for the next group commit,
/// and still none is acknowledged before the fsync that covers it.
#[test]
fn with_a_group_commit_interval_every_acknowledged_write_survives_too() {
    kill_9_and_power_cuts_lose_no_acknowledged_write(&["--group-commit-interval-us", "2000"]);
}

fn kill_9_and_power_cuts_lose_no_acknowledged_write(extra: &[&str]) {
    let mut args = THREE_GROUPS_OF_8_SHARDS.to_vec();
    args.extend_from_slice(&["--snapshot-every", "200", "--fault-power-cut", "any"]);
    args.extend_from_slice(extra);
    let mut cluster = Cluster::on_loopback(3, &args);
    for group in ["1", "2", "3"] {
        shard_ok(&cluster, &["join", group, "1,2,3"]);
    }
    wait_for(Duration::from_secs(20), "three groups settled", || {
        settled(&show(&cluster))
    });
    let workload = start_workload(&cluster, 6, 23, &[]);
    std::thread::sleep(Duration::from_secs(3));
    cluster.kill_all();
    for id in 1..=3 {
        let data_dir = &cluster.nodes[id - 1].data_dir;
        assert!(
            !data_dir.join("groups").exists(),
            "host {id} keeps no log per group"
        );
        assert!(
            !host_log_segments(&cluster, id).is_empty(),
            "host {id} has one multi-group log"
        );
    }
    for id in 1..=3 {
        cluster.spawn(id);
    }
    wait_for(Duration::from_secs(30), "settled after kill -9", || {
        settled(&show(&cluster))
    });
    std::thread::sleep(Duration::from_secs(3));
    cluster.power_cut_all();
    for id in 1..=3 {
        cluster.spawn(id);
    }
    wait_for(
        Duration::from_secs(30),
        "settled after the power cuts",
        || settled(&show(&cluster)),
    );
    std::thread::sleep(Duration::from_secs(2));
    stop_and_check(&cluster, workload, 60);
}

/// `--follower-reads` on a sharded cluster: every get goes to any replica
/// of the owning group, which serves it after a read index round with its
/// leader and checks ownership at that index. With the groups' leaders on
/// hosts 2 and 3, shards moving back and forth under the workload, the
/// history stays linearizable and every append lands exactly once.
#[test]
fn follower_reads_while_shards_move() {
    let cluster = sharded_cluster();
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    wait_for(Duration::from_secs(20), "two groups settled", || {
        settled(&show(&cluster))
    });
    for (group, host) in [("1", "2"), ("2", "3")] {
        shard_ok(&cluster, &["leader", group, host]);
    }
    // One-shot reads at followers, routed by key.
    cluster.put("alpha", "a-1");
    for _ in 0..5 {
        let output = cluster.cli("get", &["--follower-reads", "alpha"]);
        assert_eq!(stdout(&output), "a-1\n", "{output:?}");
    }
    let output = cluster.cli("get", &["--follower-reads", "missing"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");

    let workload = start_workload(&cluster, 4, 23, &["--follower-reads"]);
    std::thread::sleep(Duration::from_secs(2));
    // Every shard the workload touches moves to the other group and back.
    for round in 0..2 {
        for shard in workload_shards() {
            let owner = show(&cluster).shards[shard as usize];
            let target = if owner == 1 { 2 } else { 1 };
            shard_ok(&cluster, &["move", &shard.to_string(), &target.to_string()]);
            std::thread::sleep(Duration::from_millis(400 + 200 * round));
        }
    }
    wait_for(Duration::from_secs(30), "every move finished", || {
        settled(&show(&cluster))
    });
    std::thread::sleep(Duration::from_secs(1));
    stop_and_check(&cluster, workload, 60);
    assert_eq!(cluster.get("alpha").as_deref(), Some("a-1"));
}

/// A shard larger than a log entry may be (5 MiB of values against the
/// 4 MiB limit) moves in parts: once stuck for ever (its new owner could
/// not propose the insertion, and the shard's keys went unanswered), it
/// now arrives whole, with its sessions, and takes writes at once.
#[test]
fn a_shard_larger_than_a_log_entry_moves_in_parts() {
    let cluster = sharded_cluster();
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    let shard = shard_of(b"big0", SHARDS);
    let big: Vec<String> = (0..)
        .map(|i| format!("big{i}"))
        .filter(|k| shard_of(k.as_bytes(), SHARDS) == shard)
        .take(5)
        .collect();
    let big_value = |i: usize| ((b'a' + i as u8) as char).to_string().repeat(1 << 20);
    let mut script: String = (big.iter().enumerate())
        .map(|(i, k)| format!("put {k} {}\n", big_value(i)))
        .collect();
    let small = (0..)
        .map(|i| format!("small{i}"))
        .find(|k| shard_of(k.as_bytes(), SHARDS) == shard)
        .unwrap();
    script.push_str(&format!("append {small} once\n"));
    let answers = cluster.client_json(&script);
    assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
    let from = show(&cluster).shards[shard as usize];
    let to = if from == 1 { 2 } else { 1 };
    shard_ok(&cluster, &["move", &shard.to_string(), &to.to_string()]);
    wait_for(Duration::from_secs(30), "the big shard to arrive", || {
        let now = show(&cluster);
        now.shards[shard as usize] == to && now.moving.is_empty()
    });
    let script: String = big.iter().map(|k| format!("get {k}\n")).collect();
    for (i, answer) in cluster.client_json(&script).iter().enumerate() {
        assert!(
            answer["value"] == big_value(i).as_str(),
            "{} after the move",
            big[i]
        );
    }
    assert_eq!(cluster.get(&small).as_deref(), Some("once"));
    let output = cluster.cli("append", &[&small, "+after"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(cluster.get(&small).as_deref(), Some("once+after"));
}
