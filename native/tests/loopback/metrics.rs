//! `server --metrics-addr`: `/metrics` parses as the Prometheus text
//! format, has every metric of the contract and its counters move with
//! the load; `/livez` is 200 while the node runs; `/readyz` is 503 on a
//! node cut off from the leader and 200 again once it hears from one.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use super::harness::{self, Cluster, Loopback};

/// Every metric name of the contract, as its samples are named.
const CONTRACT: [&str; 17] = [
    "distribkv_server_has_leader",
    "distribkv_server_is_leader",
    "distribkv_server_leader_changes_seen_total",
    "distribkv_server_proposals_committed_total",
    "distribkv_server_proposals_applied_total",
    "distribkv_server_proposals_pending",
    "distribkv_server_proposals_failed_total",
    "distribkv_server_term",
    "distribkv_server_commit_index",
    "distribkv_server_applied_index",
    "distribkv_disk_wal_fsync_duration_seconds_count",
    "distribkv_disk_snapshot_save_duration_seconds_count",
    "distribkv_network_peer_sent_bytes_total",
    "distribkv_network_peer_received_bytes_total",
    "distribkv_network_peer_round_trip_time_seconds_count",
    "distribkv_client_requests_total",
    "distribkv_server_follower_reads_served_total",
];

/// `GET path` on `port`: the status code and the body.
pub(super) fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(
        path != "/metrics" || head.contains("text/plain; version=0.0.4"),
        "{head}"
    );
    Some((status, body.to_string()))
}

/// Parses the Prometheus text format 0.0.4: `# HELP`/`# TYPE` lines, and
/// samples `name{label="value",...} number`, each of a family declared by
/// a `# TYPE` line before it. Returns the sum of each name's samples.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut families: Vec<(String, String)> = Vec::new();
    let mut sums = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.push((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("a number in {line:?}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                for label in labels.split(',') {
                    let (key, quoted) = label.split_once('=').expect("label=value");
                    assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(quoted.starts_with('"') && quoted.ends_with('"'), "{line}");
                }
                name
            }
            None => series,
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let declared = families.iter().any(|(family, kind)| match kind.as_str() {
            "histogram" => [
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ]
            .contains(&name.to_string()),
            _ => family == name,
        });
        assert!(declared, "{name} has no # TYPE line before it");
        *sums.entry(name.to_string()).or_insert(0.0) += value;
    }
    sums
}

fn wait_for(limit: Duration, what: &str, condition: impl FnMut() -> bool) {
    harness::wait_for(limit, Duration::from_millis(100), what, condition);
}

#[test]
fn metrics_parse_and_move_and_readyz_fails_on_a_node_cut_off_from_the_leader() {
    let mut cluster: Cluster<Loopback> =
        Cluster::start(harness::one_at_a_time(), Loopback::new(3), &[]).unwrap();
    let leader = cluster.leader(Duration::from_secs(20));
    let follower = if leader == 1 { 2 } else { 1 };
    let port = harness::free_port_tcp();

    // The follower again, serving its metrics.
    cluster.terminate(follower);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&cluster.nodes[follower - 1].log)
        .unwrap();
    let child = cluster
        .server_command(follower)
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    cluster.nodes[follower - 1].process = Some(child);
    wait_for(Duration::from_secs(20), "/readyz answers 200", || {
        get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });
    assert_eq!(get(port, "/livez").unwrap().0, 200);
    assert_eq!(get(port, "/nowhere").unwrap().0, 404);

    let (status, body) = get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    let before = parse(&body);
    for name in CONTRACT
        .iter()
        .filter(|n| !n.contains("peer") && !n.contains("client"))
    {
        assert!(before.contains_key(*name), "{name} missing from:\n{body}");
    }
    assert_eq!(before["distribkv_server_has_leader"], 1.0);
    assert_eq!(before["distribkv_server_is_leader"], 0.0);

    for i in 0..20 {
        cluster.put(&format!("k{i}"), "v");
    }
    // Requests answered by this node count too.
    let _ = cluster.status();
    std::thread::sleep(Duration::from_millis(1500));
    let (_, body) = get(port, "/metrics").unwrap();
    let after = parse(&body);
    for name in CONTRACT {
        assert!(after.contains_key(name), "{name} missing from:\n{body}");
    }
    for name in [
        "distribkv_server_proposals_committed_total",
        "distribkv_server_proposals_applied_total",
        "distribkv_server_commit_index",
        "distribkv_disk_wal_fsync_duration_seconds_count",
        "distribkv_network_peer_received_bytes_total",
        "distribkv_network_peer_sent_bytes_total",
        "distribkv_client_requests_total",
    ] {
        assert!(
            after[name] > before.get(name).copied().unwrap_or(0.0),
            "{name} did not move: {} then {}",
            before.get(name).copied().unwrap_or(0.0),
            after[name]
        );
    }
    assert!(after["distribkv_server_proposals_applied_total"] >= 20.0);

    // Reads at the leader only (the default): this follower serves none.
    let reads = |extra: &[&str]| {
        let mut args = vec![
            "--clients",
            "8",
            "--duration",
            "1",
            "--reads",
            "1.0",
            "--json",
        ];
        args.extend_from_slice(extra);
        let bench = cluster.cli("bench", &args);
        assert_eq!(bench.status.code(), Some(0), "{bench:?}");
        let summary: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&bench.stdout).trim()).unwrap();
        assert!(summary["ops"].as_u64().unwrap() > 0, "{summary}");
        assert_eq!(summary["errors"], 0, "{summary}");
    };
    reads(&[]);
    std::thread::sleep(Duration::from_millis(500));
    let served = |body: &str| parse(body)["distribkv_server_follower_reads_served_total"];
    assert_eq!(served(&get(port, "/metrics").unwrap().1), 0.0);
    // `--follower-reads` spreads them over every node: this one serves its
    // share.
    reads(&["--follower-reads"]);
    std::thread::sleep(Duration::from_millis(500));
    let count = served(&get(port, "/metrics").unwrap().1);
    assert!(count > 0.0, "the follower served no read: {count}");

    // Cut off from the leader (the two others stopped): not ready, still live.
    let others: Vec<usize> = (1..=3).filter(|&id| id != follower).collect();
    for &id in &others {
        cluster.pause(id);
    }
    wait_for(Duration::from_secs(15), "/readyz answers 503", || {
        get(port, "/readyz").is_some_and(|(status, _)| status == 503)
    });
    assert_eq!(get(port, "/livez").unwrap().0, 200);
    let cut_off = parse(&get(port, "/metrics").unwrap().1);
    assert_eq!(cut_off["distribkv_server_has_leader"], 0.0);
    for &id in &others {
        cluster.resume(id);
    }
    wait_for(Duration::from_secs(20), "/readyz answers 200 again", || {
        get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });
}
