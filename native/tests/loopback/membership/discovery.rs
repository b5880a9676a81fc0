//! Clients and `member` commands find the leader: one that started
//! before the leader was added follows it there, and discovery takes the
//! first answer that names the leader instead of waiting for a silent
//! member.

use super::*;

/// Node 4 (a spare) is added, and leads once the old leaders are removed
/// (each hands over to its most up-to-date voter, the highest id on a tie).
fn add_node_4_and_make_it_lead(cluster: &mut Cluster<Loopback>) {
    cluster.spawn(4);
    let address4 = cluster.hosts.address(4);
    member_ok(cluster, "add", &["4", &address4]);
    for _ in 0..2 {
        let (_, leader) = roles(cluster);
        if leader == 4 {
            break;
        }
        member_ok(cluster, "remove", &[&leader.to_string()]);
    }
    assert_eq!(roles(cluster).1, 4, "node 4 leads");
}

/// A client that started before a node was added follows the leadership
/// to it: the leader hint names a node whose address the client did not
/// know, and it asks the members it knows for the member list again
/// instead of trying the old members until it gives up with "outcome
/// unknown" (writes stalled for up to 17 s after a replacement).
#[test]
fn a_client_reaches_a_leader_added_after_it_started() {
    let mut cluster = cluster_with_spares(1);
    cluster.leader(Duration::from_secs(20));
    let first_three: Vec<String> = (1..=3).map(|id| cluster.hosts.address(id)).collect();
    let mut client = Command::new(BINARY)
        .args([
            "client",
            "--json",
            "--cluster",
            &first_three.join(","),
            "--certs",
        ])
        .arg(&cluster.certs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    let mut output = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut ask = |line: &str| {
        use std::io::{BufRead, Write};
        writeln!(input, "{line}").unwrap();
        let mut answer = String::new();
        output.read_line(&mut answer).unwrap();
        serde_json::from_str::<Value>(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
    };
    assert_eq!(ask("put before 1"), serde_json::json!({"ok": true}));

    add_node_4_and_make_it_lead(&mut cluster);

    // The client knew only nodes 1 to 3: its write is acknowledged, not
    // given up on.
    assert_eq!(ask("put after 2"), serde_json::json!({"ok": true}));
    assert_eq!(
        ask("get after"),
        serde_json::json!({"ok": true, "value": "2"})
    );
    let _ = client.kill();
    let _ = client.wait();
}

/// A `member` command follows the leader to a node added after it started:
/// `member promote 5` waits for learner 5 (not running yet) while node 4 is
/// added and made leader (the old leaders removed); once 5 runs and has
/// caught up, the command finds the leader it never knew and promotes it.
#[test]
fn a_member_command_reaches_a_leader_added_after_it_started() {
    let mut cluster = cluster_with_spares(2);
    cluster.leader(Duration::from_secs(20));
    let address5 = cluster.hosts.address(5);
    member_ok(&cluster, "add", &["5", &address5, "--learner"]);
    let promote = Command::new(BINARY)
        .args(["member", "promote", "--cluster", &cluster.initial_peers()])
        .arg("--certs")
        .arg(&cluster.certs)
        .arg("5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    add_node_4_and_make_it_lead(&mut cluster);

    cluster.spawn(5);
    let output = promote.wait_with_output().unwrap();
    assert!(
        output.status.success() && stdout(&output) == "OK\n",
        "member promote 5: {output:?}"
    );
    let (roles, leader) = roles(&cluster);
    assert_eq!(leader, 4);
    assert!(roles.contains(&(5, "voter".to_string())), "{roles:?}");
}

/// Discovery does not wait for a silent member: asked through a follower
/// and a member that is stopped (SIGSTOP), then dead (kill -9), `member
/// list` takes the follower's answer, which names the leader, and lists
/// every member well before the discovery timeout (2 s) that a silent
/// member used to hold every discovery for, unless the leader itself was
/// asked.
#[test]
fn discovery_does_not_wait_for_a_silent_member() {
    /// The client's discovery timeout (`DISCOVERY_TIMEOUT`).
    const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(2);
    let mut cluster = cluster_with_spares(0);
    let leader = cluster.leader(Duration::from_secs(20));
    let followers: Vec<usize> = (1..=3).filter(|&id| id != leader).collect();
    let (silent, answering) = (followers[0], followers[1]);
    let given = format!(
        "{},{}",
        cluster.hosts.address(silent),
        cluster.hosts.address(answering)
    );
    let list = |cluster: &Cluster<Loopback>| {
        let started = Instant::now();
        let output = Command::new(BINARY)
            .args(["member", "list", "--json", "--cluster", &given, "--certs"])
            .arg(&cluster.certs)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(output.status.success(), "member list: {output:?}");
        let listed: Vec<Value> = stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let ids: Vec<u64> = listed.iter().filter_map(|m| m["id"].as_u64()).collect();
        assert_eq!(ids, vec![1, 2, 3], "{listed:?}");
        let leaders: Vec<u64> = listed
            .iter()
            .filter(|m| m["leader"] == true)
            .filter_map(|m| m["id"].as_u64())
            .collect();
        assert_eq!(leaders, vec![leader as u64], "{listed:?}");
        took
    };
    for fault in ["stopped", "dead"] {
        if fault == "stopped" {
            cluster.pause(silent);
        } else {
            cluster.kill(silent);
        }
        let took = list(&cluster);
        assert!(
            took < DISCOVERY_TIMEOUT,
            "member list with node {silent} {fault} took {took:?}: discovery waited for it"
        );
    }
}
