//! Membership from the command line on a real cluster of server
//! processes, under a workload whose history is checked for
//! linearizability: a node joins and waits until it is added, `member add`
//! brings it in as a learner and promotes it once caught up, the leader is
//! removed (it hands over first, stops, and refuses to start again), a dead
//! machine is replaced by a new one, clients and `member` commands follow
//! a leader added after they started, and bad input gets a clear error.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use distribkv_core::check::{Budget, check_linearizable};
use serde_json::Value;

use super::harness::history::{acknowledged, start_workload};
use super::harness::{self, BINARY, Cluster, Hosts, Loopback, stderr, stdout, wait_exit};
use super::workload::Workload;

mod discovery;

/// A 3-node cluster on 127.0.0.1 with room for `spares` more machines.
fn cluster_with_spares(spares: usize) -> Cluster<Loopback> {
    Cluster::start_with_spares(harness::one_at_a_time(), Loopback::new(3 + spares), 3, &[])
        .expect("start the cluster")
}

/// `member <verb> --cluster .. --certs .. <args>`.
fn member(cluster: &Cluster<Loopback>, verb: &str, args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(["member", verb, "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `member <verb>` that must print `OK` and exit 0.
fn member_ok(cluster: &Cluster<Loopback>, verb: &str, args: &[&str]) {
    let output = member(cluster, verb, args);
    assert!(
        output.status.success() && stdout(&output) == "OK\n",
        "member {verb} {args:?}: {output:?}"
    );
}

/// `member <verb>` that must fail with exit 2 and a message containing `why`.
fn member_refused(cluster: &Cluster<Loopback>, verb: &str, args: &[&str], why: &str) {
    let output = member(cluster, verb, args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "member {verb} {args:?}: {output:?}"
    );
    assert!(
        stderr(&output).contains(why),
        "member {verb} {args:?}: expected {why:?} in {:?}",
        stderr(&output)
    );
}

/// `member list --json`, one object per member.
fn members(cluster: &Cluster<Loopback>) -> Vec<Value> {
    let output = member(cluster, "list", &["--json"]);
    assert!(output.status.success(), "member list: {output:?}");
    stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `(id, role)` of every member, and the leader's id.
fn roles(cluster: &Cluster<Loopback>) -> (Vec<(u64, String)>, u64) {
    let list = members(cluster);
    let leader = list
        .iter()
        .find(|m| m["leader"] == true)
        .and_then(|m| m["id"].as_u64())
        .expect("a leader answers member list");
    let roles = list
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (roles, leader)
}

fn voters(ids: &[u64]) -> Vec<(u64, String)> {
    ids.iter().map(|&id| (id, "voter".to_string())).collect()
}

/// Stops the workload and checks its history: linearizable, and enough of
/// it acknowledged to mean something.
fn stop_and_check(mut workload: Workload, at_least: usize) {
    workload.stop();
    let operations = workload.recorder.operations();
    let acknowledged = acknowledged(&operations);
    assert!(
        acknowledged >= at_least,
        "only {acknowledged} of {} operations acknowledged",
        operations.len()
    );
    if let Err(error) = check_linearizable(&operations, Budget::default()) {
        panic!("the history is not linearizable: {error}");
    }
}

/// Waits until `workload` has `more` acknowledged operations beyond those it
/// had: the clients are running (their start can take seconds on a loaded
/// machine), or still make progress after a change.
fn wait_for_progress(workload: &Workload, more: usize, what: &str) {
    let so_far = || acknowledged(&workload.recorder.operations());
    let target = so_far() + more;
    wait_for(Duration::from_secs(60), what, || so_far() >= target);
}

fn wait_for(limit: Duration, what: &str, condition: impl FnMut() -> bool) {
    harness::wait_for(limit, Duration::from_millis(100), what, condition);
}

#[test]
fn nodes_join_get_promoted_and_the_leader_is_removed_under_a_checked_workload() {
    let mut cluster = cluster_with_spares(2);
    cluster.leader(Duration::from_secs(20));
    let workload = start_workload(&cluster, 4, 11, &[]);
    wait_for_progress(&workload, 20, "the workload running");

    // A node that joins waits, and says so, until it is added.
    cluster.spawn(4);
    wait_for(Duration::from_secs(20), "node 4 says it waits", || {
        cluster.log_of(4).contains("waiting to be added")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        cluster.nodes[3]
            .process
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none()
    );
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 3]));

    // `member add`: a learner first, a voter once caught up.
    let address4 = cluster.hosts.address(4);
    member_ok(&cluster, "add", &["4", &address4]);
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 3, 4]));
    assert!(cluster.log_of(4).contains("added to the cluster"));

    // `--learner`, then `promote`.
    cluster.spawn(5);
    let address5 = cluster.hosts.address(5);
    member_ok(&cluster, "add", &["5", &address5, "--learner"]);
    let (list, _) = roles(&cluster);
    assert_eq!(list[4], (5, "learner".to_string()));
    member_refused(&cluster, "add", &["5", &address5], "already a member");
    member_ok(&cluster, "promote", &["5"]);
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 3, 4, 5]));

    // Removing the leader: it hands over first, learns it was removed and
    // stops by itself (exit 0).
    let (_, leader) = roles(&cluster);
    member_ok(&cluster, "remove", &[&leader.to_string()]);
    let (list, new_leader) = roles(&cluster);
    assert_ne!(new_leader, leader);
    assert!(list.iter().all(|(id, _)| *id != leader), "{list:?}");
    let node = &mut cluster.nodes[leader as usize - 1];
    let mut process = node.process.take().unwrap();
    let status = wait_exit(&mut process, Duration::from_secs(20));
    assert!(status.success(), "the removed node exits 0: {status:?}");

    // Started again on its data folder, it refuses (exit 2), and its id is
    // never reused.
    let mut restarted = cluster
        .server_command(leader as usize)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut restarted, Duration::from_secs(20));
    let mut message = String::new();
    std::io::Read::read_to_string(&mut restarted.stderr.take().unwrap(), &mut message).unwrap();
    assert_eq!(status.code(), Some(2), "{message}");
    assert!(
        message.contains("was removed from the cluster"),
        "{message}"
    );
    let address = cluster.hosts.address(leader as usize);
    member_refused(
        &cluster,
        "add",
        &[&leader.to_string(), &address],
        &format!("node {leader} was removed; ids are never reused"),
    );

    wait_for_progress(
        &workload,
        30,
        "the workload going on after the leader's removal",
    );
    stop_and_check(workload, 50);
    let remaining: Vec<u64> = (1..=5).filter(|&id| id != leader).collect();
    assert_eq!(roles(&cluster).0, voters(&remaining));

    // A client that knows one member learns the others from the
    // configuration.
    let one = cluster.hosts.address(remaining[0] as usize);
    let client = |args: &[&str]| {
        Command::new(BINARY)
            .args(args)
            .args(["--cluster", &one, "--certs"])
            .arg(&cluster.certs)
            .output()
            .unwrap()
    };
    let status = client(&["status", "--json"]);
    assert!(status.status.success(), "{status:?}");
    let ids: Vec<u64> = stdout(&status)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, remaining, "{status:?}");
    for (args, expected) in [
        (&["put", "learned", "yes"][..], "OK\n"),
        (&["get", "learned"][..], "yes\n"),
    ] {
        let output = client(args);
        assert_eq!(stdout(&output), expected, "{args:?}: {output:?}");
    }
}

#[test]
fn a_dead_machine_is_replaced_under_a_checked_workload() {
    let mut cluster = cluster_with_spares(1);
    cluster.leader(Duration::from_secs(20));
    cluster.put("before", "1");
    let workload = start_workload(&cluster, 4, 12, &[]);
    wait_for_progress(&workload, 20, "the workload running");

    // Machine 3 dies for good: kill -9, its disk gone.
    cluster.kill(3);
    std::fs::remove_dir_all(&cluster.nodes[2].data_dir).unwrap();

    // A new machine joins and is added, then the dead one is removed.
    cluster.spawn(4);
    let address4 = cluster.hosts.address(4);
    member_ok(&cluster, "add", &["4", &address4]);
    member_ok(&cluster, "remove", &["3"]);
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 4]));
    wait_for_progress(&workload, 30, "the workload going on after the replacement");
    stop_and_check(workload, 50);

    // The new machine holds everything, and the cluster still has a
    // quorum without node 1.
    cluster.kill(1);
    assert_eq!(cluster.get("before").as_deref(), Some("1"));
    cluster.put("after", "2");
    assert_eq!(cluster.get("after").as_deref(), Some("2"));
}

/// The way back from storage corruption (docs/FAULTS.md): a node whose log
/// is damaged refuses to start, naming the file and offset; it is removed,
/// its folder wiped, and it comes back as a new member under a new id,
/// never under its old one, while a checked workload runs.
#[test]
fn a_node_with_a_corrupt_log_is_rebuilt_under_a_new_id_under_a_checked_workload() {
    let mut cluster = cluster_with_spares(1);
    let leader = cluster.leader(Duration::from_secs(20));
    cluster.put("before", "1");
    let workload = start_workload(&cluster, 4, 13, &[]);
    wait_for_progress(&workload, 20, "the workload running");

    // A follower's disk rots: a bit of its first log record flips.
    let victim = if leader == 3 { 2 } else { 3 };
    cluster.kill(victim);
    let old_dir = cluster.nodes[victim - 1].data_dir.clone();
    let segment = old_dir.join(format!("wal-{:020}.log", 1));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[40 + 20] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let mut refused = cluster
        .server_command(victim)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut refused, Duration::from_secs(20));
    let mut message = String::new();
    std::io::Read::read_to_string(&mut refused.stderr.take().unwrap(), &mut message).unwrap();
    assert_eq!(status.code(), Some(1), "{message}");
    assert!(
        message.contains("wal-00000000000000000001.log") && message.contains("at byte"),
        "{message}"
    );

    // Removed, wiped, and back as node 4 on the same (emptied) folder.
    member_ok(&cluster, "remove", &[&victim.to_string()]);
    std::fs::remove_dir_all(&old_dir).unwrap();
    cluster.nodes[3].data_dir = old_dir;
    cluster.spawn(4);
    let address4 = cluster.hosts.address(4);
    member_ok(&cluster, "add", &["4", &address4]);
    let survivors: Vec<u64> = (1..=3u64).filter(|&id| id != victim as u64).collect();
    assert_eq!(roles(&cluster).0, voters(&[survivors[0], survivors[1], 4]));
    wait_for_progress(&workload, 30, "the workload going on after the rebuild");
    stop_and_check(workload, 50);

    // The rebuilt node holds everything: the cluster keeps a quorum
    // without one of the old members.
    cluster.kill(survivors[0] as usize);
    assert_eq!(cluster.get("before").as_deref(), Some("1"));
    cluster.put("after", "2");
    assert_eq!(cluster.get("after").as_deref(), Some("2"));
}

/// One change at a time: while `member add` waits for its learner to
/// catch up, every other change is refused with a clear message, also
/// after the leader changes and after the waiting command is interrupted
/// (the cluster records the learner being added). Running the same `member
/// add` again takes over the wait; `member remove` of the learner abandons
/// it.
#[test]
fn a_change_waits_for_the_member_being_added() {
    let mut cluster = cluster_with_spares(2);
    cluster.leader(Duration::from_secs(20));
    let address4 = cluster.hosts.address(4);
    let address5 = cluster.hosts.address(5);
    let in_progress = "a membership change is in progress";

    // Node 4 is not running: `member add 4` adds it and waits.
    let mut adding = Command::new(BINARY)
        .args(["member", "add", "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .args(["4", &address4])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let being_added = |cluster: &Cluster<Loopback>| {
        members(cluster)
            .iter()
            .any(|m| m["id"] == 4 && m["role"] == "learner" && m["promoting"] == true)
    };
    wait_for(Duration::from_secs(20), "node 4 being added", || {
        being_added(&cluster)
    });
    member_refused(&cluster, "add", &["5", &address5, "--learner"], in_progress);
    member_refused(&cluster, "add", &["5", &address5], in_progress);
    member_refused(&cluster, "remove", &["3"], in_progress);

    // The leader dies: its successor knows a member is being added.
    let (_, leader) = roles(&cluster);
    cluster.kill(leader as usize);
    wait_for(Duration::from_secs(20), "a new leader", || {
        members(&cluster)
            .iter()
            .any(|m| m["leader"] == true && m["id"] != leader)
    });
    member_refused(&cluster, "remove", &["3"], in_progress);
    cluster.spawn(leader as usize);

    // The waiting command is interrupted: the mark stays.
    let _ = adding.kill();
    let _ = adding.wait();
    assert!(being_added(&cluster));
    member_refused(&cluster, "add", &["5", &address5, "--learner"], in_progress);

    // The same `member add` again takes over the wait; node 4 runs now.
    cluster.spawn(4);
    member_ok(&cluster, "add", &["4", &address4]);
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 3, 4]));
    assert!(!being_added(&cluster));

    // Interrupted again (node 5 never runs): `member remove 5` abandons it,
    // and changes are taken again.
    let mut adding = Command::new(BINARY)
        .args(["member", "add", "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .args(["5", &address5])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(20), "node 5 being added", || {
        members(&cluster)
            .iter()
            .any(|m| m["id"] == 5 && m["promoting"] == true)
    });
    let _ = adding.kill();
    let _ = adding.wait();
    member_refused(&cluster, "promote", &["4"], "already a voter");
    member_ok(&cluster, "remove", &["5"]);
    member_ok(&cluster, "remove", &["4"]);
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 3]));

    // Node 4, a removed follower, learns that its removal is committed
    // (the leader's last heartbeat to it) and stops by itself.
    let mut process = cluster.nodes[3].process.take().unwrap();
    let status = wait_exit(&mut process, Duration::from_secs(20));
    assert!(status.success(), "the removed node exits 0: {status:?}");
    assert!(
        cluster
            .log_of(4)
            .contains("removal from the cluster is committed"),
        "{}",
        cluster.log_tail(4, 20)
    );
}

/// Ids are permanent: a removed follower stops by itself, and its id is
/// refused by `member add`, with or without `--learner`, also once the
/// removal is only in a snapshot (the removed ids are part of the
/// replicated configuration).
#[test]
fn a_removed_id_is_never_reused() {
    let mut cluster = Cluster::start_with_spares(
        harness::one_at_a_time(),
        Loopback::new(3),
        3,
        &["--snapshot-every", "4"],
    )
    .expect("start the cluster");
    let leader = cluster.leader(Duration::from_secs(20));
    let victim = if leader == 3 { 2 } else { 3 };
    member_ok(&cluster, "remove", &[&victim.to_string()]);
    let mut process = cluster.nodes[victim - 1].process.take().unwrap();
    let status = wait_exit(&mut process, Duration::from_secs(20));
    assert!(status.success(), "the removed node exits 0: {status:?}");

    // Snapshots cover the removal, and the members restart from them.
    for i in 0..12 {
        cluster.put(&format!("k{i}"), "v");
    }
    let remaining: Vec<u64> = (1..=3).filter(|&id| id != victim as u64).collect();
    for &id in &remaining {
        cluster.kill(id as usize);
    }
    for &id in &remaining {
        cluster.spawn(id as usize);
    }
    cluster.leader(Duration::from_secs(20));

    let address = cluster.hosts.address(victim);
    let refusal = format!("node {victim} was removed; ids are never reused");
    let id = victim.to_string();
    for args in [
        &[id.as_str(), address.as_str()][..],
        &[id.as_str(), address.as_str(), "--learner"],
    ] {
        member_refused(&cluster, "add", args, &refusal);
    }
    member_refused(&cluster, "promote", &[&victim.to_string()], "not a learner");
    assert_eq!(roles(&cluster).0, voters(&remaining));
}

#[test]
fn bad_membership_input_gets_a_clear_error() {
    let cluster = cluster_with_spares(0);
    cluster.leader(Duration::from_secs(20));
    member_refused(
        &cluster,
        "add",
        &["0", "127.0.0.1:1"],
        "node ids start at 1",
    );
    member_refused(&cluster, "add", &["7", "no-such-host.invalid:1"], "address");
    member_refused(&cluster, "add", &["7", "127.0.0.1"], "address");
    member_refused(&cluster, "add", &["2", "127.0.0.1:1"], "already a member");
    // Clients keep a slot per id up to the highest: a huge id is refused.
    for id in ["65536", "18446744073709551615"] {
        member_refused(
            &cluster,
            "add",
            &[id, "127.0.0.1:1", "--learner"],
            &format!("node ids are at most 65535, not {id}"),
        );
    }
    let address1 = cluster.peers().split(',').next().unwrap().to_string();
    member_refused(
        &cluster,
        "add",
        &["7", &address1],
        &format!("address {address1} is already node 1's"),
    );
    member_refused(&cluster, "promote", &["9"], "not a learner");
    member_refused(&cluster, "promote", &["1"], "already a voter");
    member_refused(&cluster, "remove", &["9"], "not a member");
    member_refused(&cluster, "remove", &["x"], "invalid value");
    assert_eq!(roles(&cluster).0, voters(&[1, 2, 3]));
}
