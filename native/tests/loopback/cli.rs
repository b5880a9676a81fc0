//! The command line contract: output formats, exit codes, bad input.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::harness::{
    BINARY, Cluster, StatusLine, free_port, make_certs, one_at_a_time, serve_then_stop, signal,
    stderr, stdout, wait_exit, wait_for,
};

mod server_config;

const LEADER_LIMIT: Duration = Duration::from_secs(20);

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BINARY).args(args).output().unwrap()
}

#[test]
fn one_shot_commands_client_status_and_bench_print_the_contract_formats() {
    let cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);

    let put = cluster.cli("put", &["k", "hello world"]);
    assert_eq!(
        (put.status.code(), stdout(&put).as_str()),
        (Some(0), "OK\n")
    );
    let append = cluster.cli("append", &["k", "!"]);
    assert_eq!(
        (append.status.code(), stdout(&append).as_str()),
        (Some(0), "OK\n")
    );
    let get = cluster.cli("get", &["k"]);
    assert_eq!(
        (get.status.code(), stdout(&get).as_str()),
        (Some(0), "hello world!\n")
    );
    let missing = cluster.cli("get", &["nothing-here"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).is_empty());
    let delete = cluster.cli("delete", &["k"]);
    assert_eq!(
        (delete.status.code(), stdout(&delete).as_str()),
        (Some(0), "OK\n")
    );
    // Deleting a missing key is fine too.
    assert_eq!(cluster.cli("delete", &["k"]).status.code(), Some(0));

    // Line client, JSON: exactly one answer per command, in order.
    let big = "x".repeat((1 << 20) + 1);
    let input = format!(
        "put a 1\nappend a 2 3\nget a\nget b\n\nfrobnicate a\nput a\nput big {big}\ndelete a\nget a\n"
    );
    let answers: Vec<String> = cluster
        .client_json(&input)
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(answers.len(), 9, "{answers:?}");
    assert_eq!(answers[0], r#"{"ok":true}"#);
    assert_eq!(answers[1], r#"{"ok":true}"#);
    assert_eq!(answers[2], r#"{"ok":true,"value":"12 3"}"#);
    assert_eq!(answers[3], r#"{"ok":true,"value":null}"#);
    assert!(answers[4].contains(r#""ok":false"#) && answers[4].contains("unknown command"));
    assert!(answers[5].contains(r#""ok":false"#) && answers[5].contains("missing VALUE"));
    assert!(answers[6].contains(r#""ok":false"#) && answers[6].contains("exceeds the limit"));
    assert_eq!(answers[7], r#"{"ok":true}"#);
    assert_eq!(answers[8], r#"{"ok":true,"value":null}"#);

    // Line client, plain text.
    let mut child = cluster
        .client_command("client")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"put p v\nget p\nget q\nbad\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<String> = stdout(&output).lines().map(String::from).collect();
    assert_eq!(lines[..3], ["OK", "v", "(nil)"]);
    assert!(lines[3].starts_with("ERROR "), "{lines:?}");

    // Status: one JSON object per node with the contract's fields.
    let status = cluster.cli("status", &["--json"]);
    assert_eq!(status.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&status)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["id"], i as u64 + 1);
        for field in ["role", "term", "leader", "commitIndex", "appliedIndex"] {
            assert!(line.get(field).is_some(), "{field} in {line}");
        }
        let fingerprint = line["fingerprint"].as_str().unwrap();
        assert!(
            fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
    }
    // Each line reads as the status type; nodes that applied the same
    // entries hold the same state.
    let statuses: Vec<StatusLine> = stdout(&status)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for a in &statuses {
        for b in &statuses {
            if a.applied_index == b.applied_index {
                assert_eq!(a.fingerprint, b.fingerprint, "{a:?} {b:?}");
            }
        }
    }
    // The membership, readiness, and the followers' lag as the leader sees it.
    for line in &statuses {
        assert_eq!(line.voters, [1, 2, 3], "{line:?}");
        assert!(line.learners.is_empty(), "{line:?}");
    }
    let leader = statuses
        .iter()
        .find(|s| s.role == "leader")
        .expect("a leader");
    assert!(leader.ready, "{leader:?}");
    let followers: Vec<u64> = leader.followers.iter().map(|f| f.id).collect();
    assert_eq!(followers.len(), 2, "{leader:?}");
    assert!(!followers.contains(&leader.id));
    let plain = cluster.cli("status", &[]);
    assert_eq!(stdout(&plain).lines().count(), 3);
    assert!(stdout(&plain).contains("voters 1,2,3"), "{plain:?}");

    // Bench: one JSON object with the contract's fields.
    let bench = cluster.cli(
        "bench",
        &[
            "--clients",
            "4",
            "--duration",
            "1",
            "--json",
            "--reads",
            "0.5",
        ],
    );
    assert_eq!(bench.status.code(), Some(0), "{bench:?}");
    let summary: serde_json::Value = serde_json::from_str(stdout(&bench).trim()).unwrap();
    for field in ["ops", "seconds", "opsPerSec", "p50Ms", "p99Ms", "errors"] {
        assert!(summary.get(field).is_some(), "{field} in {summary}");
    }
    assert!(summary["ops"].as_u64().unwrap() > 0);
    assert_eq!(summary["errors"], 0);
    assert!(summary["rate"].is_null(), "closed loop: {summary}");
    let text = cluster.cli("bench", &["--clients", "2", "--duration", "0.5"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(stdout(&text).contains("p99"), "{}", stdout(&text));

    // At a fixed rate: 4 clients share 200 slots a second, so a second
    // holds at most 200 operations (a closed loop of 4 clients on loopback
    // does thousands), and a cluster this idle keeps up with most of them.
    let paced = cluster.cli(
        "bench",
        &[
            "--clients",
            "4",
            "--duration",
            "1",
            "--rate",
            "200",
            "--json",
        ],
    );
    assert_eq!(paced.status.code(), Some(0), "{paced:?}");
    let summary: serde_json::Value = serde_json::from_str(stdout(&paced).trim()).unwrap();
    let ops = summary["ops"].as_u64().unwrap();
    assert!((100..=200).contains(&ops), "{summary}");
    assert_eq!(summary["rate"], 200.0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    for bad in ["0", "-5", "fast"] {
        let refused = cluster.cli("bench", &[&format!("--rate={bad}"), "--duration", "1"]);
        assert_eq!(refused.status.code(), Some(2), "--rate {bad}: {refused:?}");
        assert!(
            stderr(&refused).contains("--rate"),
            "--rate {bad}: {}",
            stderr(&refused)
        );
    }
}

/// `--follower-reads` (issue 14, item 3): reads go to any node, followers
/// included, and still see the latest acknowledged write; `bench` reads
/// that way without errors.
#[test]
fn follower_reads_from_the_command_line_see_the_latest_write() {
    let cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    for round in 0..6 {
        let value = format!("v{round}");
        let put = cluster.cli("put", &["k", &value]);
        assert_eq!(put.status.code(), Some(0), "{put:?}");
        // Each one-shot client picks its node at random.
        let get = cluster.cli("get", &["--follower-reads", "k"]);
        assert_eq!(
            (get.status.code(), stdout(&get)),
            (Some(0), format!("{value}\n")),
            "round {round}"
        );
    }
    let missing = cluster.cli("get", &["--follower-reads", "nothing-here"]);
    assert_eq!(missing.status.code(), Some(1));
    let mut child = cluster
        .client_command("client")
        .arg("--follower-reads")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"put f 1\nget f\nappend f 2\nget f\nget f\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let lines: Vec<String> = stdout(&output).lines().map(String::from).collect();
    assert_eq!(lines, ["OK", "1", "OK", "12", "12"]);
    let bench = cluster.cli(
        "bench",
        &[
            "--clients",
            "8",
            "--duration",
            "1",
            "--json",
            "--reads",
            "1.0",
            "--follower-reads",
        ],
    );
    assert_eq!(bench.status.code(), Some(0), "{bench:?}");
    let summary: serde_json::Value = serde_json::from_str(stdout(&bench).trim()).unwrap();
    assert!(summary["ops"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    // The shard commands tell a single-group cluster apart (exit 2).
    let show = Command::new(BINARY)
        .args(["shard", "show", "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .output()
        .unwrap();
    assert_eq!(show.status.code(), Some(2), "{show:?}");
    assert!(
        stderr(&show).contains("this cluster is not sharded"),
        "{show:?}"
    );
}

#[test]
fn bad_arguments_get_clear_errors_and_exit_2() {
    let missing = run(&["get", "k"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--cluster"),
        "{}",
        stderr(&missing)
    );
    let unknown = run(&["frobnicate"]);
    assert_eq!(unknown.status.code(), Some(2));
    let not_a_number = run(&[
        "server",
        "--id",
        "one",
        "--peers",
        "a:1",
        "--data-dir",
        "d",
        "--certs",
        "c",
    ]);
    assert_eq!(not_a_number.status.code(), Some(2));
    let slow_heartbeat = run(&[
        "server",
        "--id",
        "1",
        "--peers",
        "127.0.0.1:1",
        "--data-dir",
        "d",
        "--certs",
        "c",
        "--heartbeat-ms",
        "600",
    ]);
    assert_eq!(slow_heartbeat.status.code(), Some(2));
    assert!(
        stderr(&slow_heartbeat).contains("--heartbeat-ms 600")
            && stderr(&slow_heartbeat).contains("below the minimum election timeout 500 ms"),
        "{}",
        stderr(&slow_heartbeat)
    );
    let no_value = run(&["put", "--cluster", "127.0.0.1:1", "--certs", "c", "k"]);
    assert_eq!(no_value.status.code(), Some(2));
    let bad_list = run(&[
        "get",
        "--cluster",
        "nonsense",
        "--certs",
        "/nonexistent",
        "k",
    ]);
    assert_eq!(bad_list.status.code(), Some(2));
    assert!(
        stderr(&bad_list).contains("HOST:PORT"),
        "{}",
        stderr(&bad_list)
    );
}

#[test]
fn an_oversized_key_is_refused_before_it_is_sent() {
    let key = "k".repeat(4097);
    // No cluster at that address: the refusal comes before any connection.
    let started = Instant::now();
    let output = run(&[
        "put",
        "--cluster",
        "127.0.0.1:9",
        "--certs",
        "/nonexistent",
        &key,
        "v",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("key of 4097 bytes exceeds the limit of 4096"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        stderr(&output).matches("exceeds the limit").count(),
        1,
        "the error is printed once: {}",
        stderr(&output)
    );
}

#[test]
fn a_cluster_that_never_answers_is_named_with_the_addresses_tried() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path(), &[]).unwrap();
    let (a, b) = (free_port(), free_port());
    let cluster = format!("127.0.0.1:{a},127.0.0.1:{b}");
    let output = Command::new(BINARY)
        .args(["put", "--cluster", &cluster, "--certs"])
        .arg(certs.path())
        .args(["k", "v"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("no node of the cluster answered")
            && message.contains(&format!("127.0.0.1:{a}, 127.0.0.1:{b}")),
        "{message}"
    );
    // The same from the environment instead of the flags.
    let output = Command::new(BINARY)
        .args(["get", "k"])
        .env("DISTRIBKV_CLUSTER", &cluster)
        .env("DISTRIBKV_CERTS", certs.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no node of the cluster answered"));
    // `bench` says so at once, instead of running its clients' timeouts
    // for the whole duration.
    let output = Command::new(BINARY)
        .args([
            "bench",
            "--duration",
            "120",
            "--cluster",
            &cluster,
            "--certs",
        ])
        .arg(certs.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains(&format!("no server answered at {cluster}"))
            && stdout(&output).is_empty(),
        "{output:?}"
    );
}

#[test]
fn an_unreadable_certificate_folder_is_named() {
    let client = run(&[
        "get",
        "--cluster",
        "127.0.0.1:9",
        "--certs",
        "/nonexistent/certs",
        "k",
    ]);
    assert_eq!(client.status.code(), Some(2));
    assert!(
        stderr(&client).contains("/nonexistent/certs/ca-cert.pem"),
        "{}",
        stderr(&client)
    );
    let data = tempfile::tempdir().unwrap();
    let server = Command::new(BINARY)
        .args([
            "server",
            "--id",
            "1",
            "--peers",
            "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
        ])
        .arg("--data-dir")
        .arg(data.path().join("d"))
        .args(["--certs", "/nonexistent/certs"])
        .output()
        .unwrap();
    assert_eq!(server.status.code(), Some(1));
    assert!(
        stderr(&server).contains("/nonexistent/certs"),
        "{}",
        stderr(&server)
    );
    let bad_id = Command::new(BINARY)
        .args([
            "server",
            "--id",
            "4",
            "--peers",
            "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
        ])
        .args(["--data-dir", "/nonexistent/d", "--certs", "/nonexistent/c"])
        .output()
        .unwrap();
    // A flag that breaks one of the core's rules is an argument error.
    assert_eq!(bad_id.status.code(), Some(2));
    assert!(stderr(&bad_id).contains("--id 4"), "{}", stderr(&bad_id));

    // The cluster's CA with another cluster's node certificate: refused
    // at start, for a single-group server and a sharded host alike.
    let (ours, theirs, mixed) = (
        data.path().join("ours"),
        data.path().join("theirs"),
        data.path().join("mixed"),
    );
    make_certs(&ours, &[]).unwrap();
    make_certs(&theirs, &[]).unwrap();
    std::fs::create_dir(&mixed).unwrap();
    std::fs::copy(ours.join("ca-cert.pem"), mixed.join("ca-cert.pem")).unwrap();
    for file in ["node-cert.pem", "node-key.pem"] {
        std::fs::copy(theirs.join(file), mixed.join(file)).unwrap();
    }
    let log = data.path().join("foreign.log");
    for sharded in [&[][..], &["--shards", "4"]] {
        let mut foreign = Command::new(BINARY)
            .args(["server", "--id", "1", "--peers", "127.0.0.1:1"])
            .arg("--data-dir")
            .arg(data.path().join("foreign"))
            .arg("--certs")
            .arg(&mixed)
            .args(sharded)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut foreign, Duration::from_secs(10));
        let message = std::fs::read_to_string(&log).unwrap();
        assert_eq!(status.code(), Some(1), "{message}");
        assert!(
            message.contains("node-cert.pem") && message.contains("ca-cert.pem did not issue it"),
            "{message}"
        );
    }
}

/// Runs `server --id id` on `folder` until it serves, then stops it.
fn initialise_folder(id: usize, folder: &std::path::Path, certs: &std::path::Path, peers: &str) {
    let log = folder.with_extension("log");
    let mut child = Command::new(BINARY)
        .args(["server", "--id", &id.to_string(), "--peers", peers])
        .arg("--data-dir")
        .arg(folder)
        .arg("--certs")
        .arg(certs)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    serve_then_stop(&mut child, &log, "serving", Duration::from_secs(10));
}

#[test]
fn a_data_folder_of_another_node_or_cluster_is_refused() {
    let _one_at_a_time = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let certs = root.path().join("certs");
    make_certs(&certs, &[]).unwrap();
    let peers = format!(
        "127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
        free_port(),
        free_port(),
        free_port()
    );
    let folder = root.path().join("node2");
    initialise_folder(2, &folder, &certs, &peers);

    let as_node_1 = Command::new(BINARY)
        .args(["server", "--id", "1", "--peers", &peers])
        .arg("--data-dir")
        .arg(&folder)
        .arg("--certs")
        .arg(&certs)
        .output()
        .unwrap();
    assert_eq!(as_node_1.status.code(), Some(1));
    let message = stderr(&as_node_1);
    assert!(
        message.contains("belongs to node 2") && message.contains("this server is node 1"),
        "{message}"
    );

    let other_certs = root.path().join("other-certs");
    make_certs(&other_certs, &[]).unwrap();
    let other_cluster = Command::new(BINARY)
        .args(["server", "--id", "2", "--peers", &peers])
        .arg("--data-dir")
        .arg(&folder)
        .arg("--certs")
        .arg(&other_certs)
        .output()
        .unwrap();
    assert_eq!(other_cluster.status.code(), Some(1));
    assert!(
        stderr(&other_cluster).contains("belongs to node 2 of cluster"),
        "{}",
        stderr(&other_cluster)
    );

    // A second server on the folder of a running one is refused before it
    // recovers (and writes) anything there. The first is started with
    // other --peers: they are ignored, it listens where its members say.
    let log = root.path().join("node2-again.log");
    let other_peers = format!(
        "127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
        free_port(),
        free_port(),
        free_port()
    );
    let mut running = Command::new(BINARY)
        .args(["server", "--id", "2", "--peers", &other_peers])
        .arg("--data-dir")
        .arg(&folder)
        .arg("--certs")
        .arg(&certs)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        "the first server serves",
        || std::fs::read_to_string(&log).unwrap().contains("serving"),
    );
    let second = Command::new(BINARY)
        .args(["server", "--id", "2", "--peers", &peers])
        .arg("--data-dir")
        .arg(&folder)
        .arg("--certs")
        .arg(&certs)
        .output()
        .unwrap();
    let seen = serve_then_stop(&mut running, &log, "serving", Duration::from_secs(10));
    let own = peers.split(',').nth(1).unwrap();
    assert!(
        seen.contains("--peers ignored") && seen.contains(&format!("serving node=2 addr={own}")),
        "{seen}"
    );
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    assert!(
        stderr(&second).contains("is in use by another running server")
            && !stderr(&second).contains("recovered"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn certs_keeps_the_default_hosts_and_adds_the_given_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let output = Command::new(BINARY)
        .args(["certs", "--out"])
        .arg(&out)
        .args(["--host", "node1.example", "--host", "10.1.2.3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    for host in ["localhost", "127.0.0.1", "::1", "node1.example", "10.1.2.3"] {
        assert!(text.contains(host), "{host} in {text}");
    }
    // Never overwrites a CA.
    let again = Command::new(BINARY)
        .args(["certs", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
}

#[test]
fn demo_prints_working_commands_and_stops_cleanly_on_sigint() {
    let _one_at_a_time = one_at_a_time();
    let mut demo = Command::new(BINARY)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(demo.stdout.take().unwrap()));
    let mut put = None;
    let mut folder = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("folder: ") {
            folder = Some(rest.split_whitespace().next().unwrap().to_string());
        }
        if line.trim_start().contains(" put ") {
            put = Some(line.trim().to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let put: Vec<String> = put
        .expect("a put command")
        .split_whitespace()
        .map(String::from)
        .collect();
    let started = Instant::now();
    loop {
        let output = Command::new(&put[0]).args(&put[1..]).output().unwrap();
        if output.status.success() {
            assert_eq!(stdout(&output), "OK\n");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{output:?}");
    }
    signal(demo.id(), Signal::INT);
    assert_eq!(
        wait_exit(&mut demo, Duration::from_secs(15)).code(),
        Some(0)
    );
    assert!(
        !std::path::Path::new(&folder.unwrap()).exists(),
        "the folder is removed"
    );
}

/// Every `client`, `put` or `get` first asks whether the cluster is sharded,
/// a request a single-group server cannot decode; it answers so, and that
/// is no warning in its log (the fault suite's servers logged one per
/// client start), nor is the client closing its other connections before
/// their handshake ends.
#[test]
fn starting_clients_leave_no_warnings_in_the_servers_logs() {
    let cluster = Cluster::on_loopback(3, &[]);
    cluster.leader(LEADER_LIMIT);
    for round in 0..3 {
        cluster.put("k", &round.to_string());
        assert_eq!(cluster.get("k"), Some(round.to_string()));
    }
    for id in 1..=3 {
        let log = cluster.log_of(id);
        let warned: Vec<&str> = log
            .lines()
            .filter(|line| {
                line.contains("WARN")
                    && (line.contains("undecodable")
                        || line.contains("refused a connection during the handshake"))
            })
            .collect();
        assert!(warned.is_empty(), "node {id} warned: {warned:#?}");
    }
}
