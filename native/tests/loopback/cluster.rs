//! A real 3-node cluster of `distribkv-native server` processes on
//! 127.0.0.1: replication, crashes, restarts, snapshots, pauses.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::harness::{Cluster, make_certs, stderr, stdout};

const LEADER_LIMIT: Duration = Duration::from_secs(20);
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn put_get_append_delete_replicate_to_every_node() {
    let cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    cluster.put("greeting", "hello");
    let appended = cluster.cli("append", &["greeting", ", world"]);
    assert_eq!(stdout(&appended), "OK\n");
    assert_eq!(cluster.get("greeting").as_deref(), Some("hello, world"));
    cluster.put("gone", "soon");
    assert_eq!(stdout(&cluster.cli("delete", &["gone"])), "OK\n");
    assert_eq!(cluster.get("gone"), None);
    // Every node applied everything the leader committed.
    let leader = cluster.leader(LEADER_LIMIT);
    let commit = cluster.status_of(leader).unwrap().commit_index;
    for id in 1..=3 {
        let status = cluster.wait_applied(id, commit, CATCH_UP_LIMIT);
        assert_eq!(status.keys, 1, "node {id}: {status:?}");
    }
}

#[test]
fn a_killed_leader_is_replaced_and_catches_up_after_restart() {
    let mut cluster = Cluster::on_loopback(3, &[]);
    let leader = cluster.leader(LEADER_LIMIT);
    cluster.put("before", "1");
    cluster.kill(leader);
    let others: Vec<usize> = (1..=3).filter(|&id| id != leader).collect();
    let new_leader = cluster.leader(LEADER_LIMIT);
    assert!(others.contains(&new_leader), "{new_leader} leads");
    assert_ne!(new_leader, leader);
    for i in 0..20 {
        cluster.put(&format!("after{i}"), &i.to_string());
    }
    assert_eq!(cluster.get("before").as_deref(), Some("1"));
    let commit = cluster.status_of(new_leader).unwrap().commit_index;
    cluster.spawn(leader);
    let status = cluster.wait_applied(leader, commit, CATCH_UP_LIMIT);
    assert_eq!(status.keys, 21, "{status:?}");
    assert_eq!(status.role, "follower");
}

#[test]
fn every_acknowledged_write_survives_kill_9_of_all_nodes() {
    let mut cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    // A client streams writes; all three nodes die mid-stream.
    let mut client = cluster.client_process();
    for i in 0..400 {
        if !client.send(&format!("put key{i} value{i}"))
            || !client.send(&format!("append log <{i}>"))
        {
            break;
        }
    }
    let mut acknowledged_puts = Vec::new();
    let mut acknowledged_appends = Vec::new();
    for n in 0..800 {
        let Some(answer) = client.answer(Duration::from_secs(60)) else {
            break;
        };
        if answer["ok"] != true {
            break;
        }
        if n % 2 == 0 {
            acknowledged_puts.push(n / 2);
        } else {
            acknowledged_appends.push(n / 2);
        }
        if n == 150 {
            cluster.kill_all();
        }
    }
    drop(client);
    assert!(acknowledged_puts.len() >= 75, "{acknowledged_puts:?}");
    for id in 1..=3 {
        cluster.spawn(id);
    }
    cluster.leader(LEADER_LIMIT);
    let mut script = String::new();
    for i in &acknowledged_puts {
        script.push_str(&format!("get key{i}\n"));
    }
    script.push_str("get log\n");
    let answers = cluster.client_json(&script);
    for (i, answer) in acknowledged_puts.iter().zip(&answers) {
        assert_eq!(answer["value"], format!("value{i}"), "key{i}");
    }
    // Every acknowledged append is there exactly once, in order; an append
    // whose answer was lost in the crash may be there too.
    let log = answers.last().unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    for i in &acknowledged_appends {
        assert_eq!(log.matches(&format!("<{i}>")).count(), 1, "<{i}> in {log}");
    }
}

#[test]
fn a_node_far_behind_is_caught_up_with_a_snapshot() {
    let mut cluster = Cluster::on_loopback(3, &["--snapshot-every", "50"]);
    let leader = cluster.leader(LEADER_LIMIT);
    let behind = if leader == 3 { 2 } else { 3 };
    cluster.put("first", "1");
    let last_before = cluster.status_of(behind).unwrap().last_index;
    cluster.kill(behind);
    let mut script = String::new();
    for i in 0..300 {
        script.push_str(&format!("put k{i} v{i}\n"));
    }
    let answers = cluster.client_json(&script);
    assert!(answers.iter().all(|a| a["ok"] == true));
    let leader_status = cluster
        .status()
        .into_iter()
        .find(|s| s.role == "leader")
        .unwrap();
    assert!(
        leader_status.snapshot_index > last_before,
        "the leader compacted past the node's log: {leader_status:?}"
    );
    cluster.spawn(behind);
    let status = cluster.wait_applied(behind, leader_status.commit_index, CATCH_UP_LIMIT);
    // It could only have been caught up with a snapshot at least as recent
    // as the one the leader had when it came back.
    assert!(
        status.snapshot_index >= leader_status.snapshot_index,
        "{status:?}"
    );
    assert_eq!(status.keys, 301, "{status:?}");
}

#[test]
fn a_paused_leader_is_replaced_and_rejoins_after_sigcont() {
    let mut cluster = Cluster::on_loopback(3, &[]);
    let leader = cluster.leader(LEADER_LIMIT);
    cluster.put("x", "1");
    cluster.pause(leader);
    let others: Vec<usize> = (1..=3).filter(|&id| id != leader).collect();
    let new_leader = cluster.leader(LEADER_LIMIT);
    assert!(others.contains(&new_leader), "{new_leader} leads");
    cluster.put("x", "2");
    cluster.resume(leader);
    let commit = cluster.status_of(new_leader).unwrap().commit_index;
    let status = cluster.wait_applied(leader, commit, CATCH_UP_LIMIT);
    assert_ne!(status.role, "leader", "{status:?}");
    assert_eq!(cluster.get("x").as_deref(), Some("2"));
}

#[test]
fn sigterm_stops_a_node_cleanly_and_it_restarts_from_its_folder() {
    let mut cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    cluster.put("k", "v");
    for id in 1..=3 {
        let status = cluster.terminate(id);
        assert_eq!(status.code(), Some(0), "node {id}: {}", cluster.log_of(id));
    }
    assert!(cluster.log_of(1).contains("stopped"));
    for id in 1..=3 {
        cluster.spawn(id);
    }
    cluster.leader(LEADER_LIMIT);
    assert_eq!(cluster.get("k").as_deref(), Some("v"));
}

/// The active log segment of a data folder (the highest-numbered one).
fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    crate::harness::files::segments(dir)
        .pop()
        .expect("a segment")
}

#[test]
fn a_torn_wal_tail_is_repaired_and_a_corrupt_middle_record_is_refused() {
    let mut cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    let mut script = String::new();
    for i in 0..30 {
        script.push_str(&format!("put k{i} v{i}\n"));
    }
    cluster.client_json(&script);
    let leader = cluster.leader(LEADER_LIMIT);
    let victim = if leader == 3 { 2 } else { 3 };
    let commit = cluster.status()[0].commit_index;
    cluster.wait_applied(victim, commit, CATCH_UP_LIMIT);
    cluster.kill(victim);
    let data_dir = cluster.nodes[victim - 1].data_dir.clone();
    let segment = last_segment(&data_dir);

    // A torn tail: half a record at the end, as a crash mid-append leaves.
    let length = std::fs::metadata(&segment).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&[0x55, 0x01, 0x00, 0x00, 0x40, 0x00, 0x00])
        .unwrap();
    drop(file);
    cluster.spawn(victim);
    cluster.put("after-repair", "yes");
    let leader_commit = cluster
        .status()
        .into_iter()
        .find(|s| s.role == "leader")
        .unwrap()
        .commit_index;
    let status = cluster.wait_applied(victim, leader_commit, CATCH_UP_LIMIT);
    assert_eq!(status.keys, 31);
    let log = cluster.log_of(victim);
    assert!(log.contains("torn tail"), "{log}");

    // A damaged record in the middle: refused, naming file and offset.
    cluster.kill(victim);
    let mut bytes = std::fs::read(&segment).unwrap();
    assert!(bytes.len() as u64 > length);
    let middle = 40 + 20; // inside the first record after the 40-byte header
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();
    let output = cluster.server_command(victim).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let message = stderr(&output);
    assert!(
        message.contains(&segment.file_name().unwrap().to_string_lossy().into_owned())
            && message.contains("at byte"),
        "{message}"
    );
}

#[test]
fn garbage_datagrams_at_the_server_port_change_nothing() {
    let cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut noise = 0x1234_5678_9abc_def0u64;
    for round in 0..300 {
        let mut datagram = vec![0u8; 1 + (round * 37) % 1300];
        for byte in &mut datagram {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            *byte = noise as u8;
        }
        // Some look like QUIC long headers.
        if round % 3 == 0 {
            datagram[0] = 0xc0 | (datagram[0] & 0x0f);
        }
        for port in &cluster.hosts.ports {
            socket.send_to(&datagram, ("127.0.0.1", *port)).unwrap();
        }
    }
    cluster.put("still", "fine");
    assert_eq!(cluster.get("still").as_deref(), Some("fine"));
    assert_eq!(cluster.status().len(), 3);
}

#[test]
fn a_client_from_another_ca_is_refused_on_a_real_request() {
    let cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    let other = tempfile::tempdir().unwrap();
    make_certs(other.path(), &[]).unwrap();
    let started = Instant::now();
    let output = cluster
        .client_command_with_certs("put", other.path())
        .args(["intruder", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("certificate"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Our CA (so it trusts the servers) but a client certificate from another CA.
    let mixed = tempfile::tempdir().unwrap();
    std::fs::copy(
        cluster.certs.join("ca-cert.pem"),
        mixed.path().join("ca-cert.pem"),
    )
    .unwrap();
    for file in ["client-cert.pem", "client-key.pem"] {
        std::fs::copy(other.path().join(file), mixed.path().join(file)).unwrap();
    }
    let output = cluster
        .client_command_with_certs("get", mixed.path())
        .arg("intruder")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("refused this client's certificate"),
        "{}",
        stderr(&output)
    );
    assert_eq!(cluster.get("intruder"), None);
}
