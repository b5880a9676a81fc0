//! The shard commands' answers to bad input, and `status`, `/metrics`,
//! `bench` and a group's leave, per group.

use super::*;

#[test]
fn shard_commands_refuse_bad_input_clearly() {
    let cluster = sharded_cluster();
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    let refused = |args: &[&str], why: &str| {
        let output: Output = shard(&cluster, args);
        assert_eq!(output.status.code(), Some(2), "shard {args:?}: {output:?}");
        assert!(
            stderr(&output).contains(why),
            "shard {args:?}: expected {why:?} in {:?}",
            stderr(&output)
        );
    };
    refused(
        &["move", "8", "1"],
        "shard 8 does not exist (shards are 0 to 7)",
    );
    refused(
        &["move", "0", "5"],
        "group 5 is not in the configuration (groups: 1)",
    );
    refused(&["join", "0", "1"], "group 0 is the controller's");
    refused(
        &["move", "0", "0"],
        "group 0 is the controller's, which owns no shard",
    );
    refused(
        &["leave", "0"],
        "group 0 is the controller's, which owns no shard",
    );
    // A shard already where it is asked to go: nothing to do, and no new
    // configuration.
    let before = show(&cluster);
    let output = shard(&cluster, &["move", "0", "1"]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).starts_with("OK: shard 0 is already in group 1"),
        "{output:?}"
    );
    assert_eq!(show(&cluster).num, before.num);
    refused(
        &["join", "2", "1,9"],
        "host 9 is not a host of this cluster",
    );
    refused(&["join", "2", "1,x"], "\"x\" is not a host id");
    refused(
        &["join", "1", "1,2,3"],
        "cannot join group 1: it is already in the configuration",
    );
    refused(&["leave", "7"], "group 7 is not in the configuration");
    refused(&["leave", "1"], "group 1 is the last group");
    refused(&["join", "2", "1,1"], "a host is listed twice");
    // No host runs group 4: joining it would strand the shards it is given.
    refused(&["join", "4", "1,2,3"], "hosts 1,2,3 do not hold group 4");
    refused(&["move", "x", "1"], "invalid value 'x' for '<SHARD>'");
    refused(&["move", "-1", "1"], "unexpected argument '-1'");
    refused(&["join", "2"], "required arguments were not provided");
    refused(
        &["leader", "1", "9"],
        "host 9 is not a host of this cluster",
    );
    refused(&["leader", "5", "1"], "no host holds group 5");
    // Membership commands are for single-group clusters.
    let output = Command::new(BINARY)
        .args(["member", "list", "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("this cluster is sharded"),
        "{output:?}"
    );
    // A second host on the data folder of a running one does not start.
    let output = Command::new(BINARY)
        .args([
            "server",
            "--id",
            "1",
            "--peers",
            &cluster.peers(),
            "--certs",
        ])
        .arg(&cluster.certs)
        .arg("--data-dir")
        .arg(&cluster.nodes[0].data_dir)
        .args(THREE_GROUPS_OF_8_SHARDS)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("it is in use by another running server"),
        "{output:?}"
    );
    // A server started with flags that contradict themselves does not start.
    let dir = tempfile::tempdir().unwrap();
    let server = |args: &[&str]| {
        Command::new(BINARY)
            .args([
                "server",
                "--id",
                "1",
                "--peers",
                "127.0.0.1:1,127.0.0.1:2",
                "--certs",
            ])
            .arg(&cluster.certs)
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let output = server(&["--shards", "4", "--group", "0=1,2"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("group 0 is the controller's"),
        "{output:?}"
    );
    let output = server(&["--shards", "4", "--group", "1=1,3"]);
    assert!(
        stderr(&output).contains("names host 3, which is not a position in --peers"),
        "{output:?}"
    );
    let output = server(&["--shards", "4", "--group", "1=1;2"]);
    assert!(stderr(&output).contains("is not a host id"), "{output:?}");
    for (flags, why) in [
        (&["--group", "1"][..], "--group 1: expected GID=ID,ID,..."),
        (&["--group", "x=1,2"], "\"x\" is not a group id"),
        (
            &["--group", "1=1,2", "--group", "1=2,1"],
            "--group 1 is given twice",
        ),
        (&["--group", "1=1,1"], "--group 1 must list distinct hosts"),
        (
            &["--controller", "1,5", "--group", "1=1,2"],
            "--controller names host 5",
        ),
        (
            &["--group", "1=1,2", "--log-purge-after", "100"],
            "--log-purge-after 100: at least 4096 bytes",
        ),
        (
            &["--group", "1=1,2", "--log-rewrite-limit", "0"],
            "--log-rewrite-limit 0: at least 4096 bytes",
        ),
        (
            &["--group", "1=1,2", "--log-rewrite-limit", "8MiB"],
            "invalid value '8MiB' for '--log-rewrite-limit",
        ),
    ] {
        let output = server(&[&["--shards", "4"][..], flags].concat());
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        assert!(stderr(&output).contains(why), "{flags:?}: {output:?}");
    }
    let output = server(&["--shards", "0", "--group", "1=1,2"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("--shards 0: 1 to 65536"),
        "{output:?}"
    );
    let output = server(&["--group", "1=1,2"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("--group (on the command line) is only for a sharded host"),
        "{output:?}"
    );
    // A folder of the one-log-per-group layout with a folder that is no
    // group's is refused (exit 2), naming it, before anything is converted.
    let stray = dir.path().join("groups").join("notes");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("todo.txt"), b"keep").unwrap();
    let output = server(&["--shards", "4", "--group", "1=1,2"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains(&format!("{} is not a group's folder", stray.display()))
            && stderr(&output).contains("move it out of the data folder"),
        "{output:?}"
    );
    assert!(!dir.path().join("wal").exists(), "nothing converted");
    // Addresses where no host answers are told apart from a cluster that
    // is not sharded.
    let plain = Command::new(BINARY)
        .args(["shard", "show", "--cluster", "127.0.0.1:1", "--certs"])
        .arg(&cluster.certs)
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(2), "{plain:?}");
    assert!(
        stderr(&plain).contains("no host answered at 127.0.0.1:1"),
        "{plain:?}"
    );
}

/// `group="G"` samples of `name` in a `/metrics` body, by group.
fn per_group(body: &str, name: &str) -> BTreeMap<u64, f64> {
    body.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix("{group=\"")?;
            let (group, value) = rest.split_once("\"} ")?;
            Some((group.parse().ok()?, value.parse().ok()?))
        })
        .collect()
}

#[test]
fn status_metrics_bench_and_leave_per_group() {
    let mut cluster = sharded_cluster();
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    shard_ok(&cluster, &["join", "2", "1,2,3"]);
    wait_for(Duration::from_secs(20), "two groups settled", || {
        settled(&show(&cluster))
    });
    // Host 1 again, serving its metrics.
    let port = super::super::harness::free_port_tcp();
    cluster.terminate(1);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&cluster.nodes[0].log)
        .unwrap();
    let child = cluster
        .server_command(1)
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    cluster.nodes[0].process = Some(child);
    wait_for(Duration::from_secs(20), "/readyz answers 200", || {
        super::super::metrics::get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });

    // `bench` routes by key: no errors, and every group that owns shards
    // holds some of its keys afterwards.
    let output = cluster.cli(
        "bench",
        &[
            "--clients",
            "4",
            "--duration",
            "1",
            "--keys",
            "64",
            "--json",
        ],
    );
    assert!(output.status.success(), "bench: {output:?}");
    let summary: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert!(summary["ops"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    // `bench --follower-reads`, reads only, with host 1 leading neither
    // data group: host 1's replicas answer some of the reads, which its
    // per-group follower-read counter shows (a bench that ignored the
    // option would send every read to hosts 2 and 3, the leaders).
    for (group, host) in [("1", "2"), ("2", "3")] {
        shard_ok(&cluster, &["leader", group, host]);
    }
    let followed = |body: &str| -> f64 {
        let served = per_group(body, "distribkv_group_follower_reads_served_total");
        [1, 2].iter().filter_map(|g| served.get(g)).sum()
    };
    let (_, body) = super::super::metrics::get(port, "/metrics").unwrap();
    let before = followed(&body);
    let with_reads = cluster.cli(
        "bench",
        &[
            "--clients",
            "2",
            "--duration",
            "1",
            "--keys",
            "64",
            "--reads",
            "1",
            "--follower-reads",
            "--json",
        ],
    );
    assert!(with_reads.status.success(), "bench: {with_reads:?}");
    let summary: Value = serde_json::from_str(stdout(&with_reads).trim()).unwrap();
    assert!(summary["ops"].as_u64().unwrap() > 20, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    let lines = status(&cluster);
    assert!(
        lines
            .iter()
            .filter(|l| l.id == 1 && (l.group == 1 || l.group == 2))
            .all(|l| l.role == "follower"),
        "host 1 leads no data group: {lines:?}"
    );
    wait_for(
        Duration::from_secs(5),
        "/metrics: host 1 served follower reads",
        || {
            let (_, body) = super::super::metrics::get(port, "/metrics").unwrap();
            followed(&body) > before
        },
    );
    // The host-wide counter is the sum over its groups.
    let (_, body) = super::super::metrics::get(port, "/metrics").unwrap();
    let by_group: f64 = per_group(&body, "distribkv_group_follower_reads_served_total")
        .values()
        .sum();
    let total: f64 = body
        .lines()
        .find_map(|line| line.strip_prefix("distribkv_server_follower_reads_served_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no distribkv_server_follower_reads_served_total in {body}"));
    assert_eq!(total, by_group, "{body}");
    let lines = status(&cluster);
    for group in [1, 2] {
        let keys: u64 = lines
            .iter()
            .filter(|l| l.group == group && l.id == 1)
            .map(|l| l.keys)
            .sum();
        assert!(keys > 0, "group {group} got bench keys: {lines:?}");
    }
    // `status`: one text line per host and group.
    let text = stdout(&cluster.cli("status", &[]));
    assert_eq!(text.lines().count(), 3 * 4, "{text}");
    for host in 1..=3 {
        for group in ["controller:", "group 1:", "group 2:", "group 3:"] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("host {host} ")) && l.contains(group)),
                "host {host} {group}\n{text}"
            );
        }
    }
    // The metrics: per group, every group led, the 8 shards served by
    // groups 1 and 2, and group 1's commit index moved with the bench.
    let (_, body) = super::super::metrics::get(port, "/metrics").unwrap();
    let has_leader = per_group(&body, "distribkv_group_has_leader");
    assert_eq!(
        has_leader,
        BTreeMap::from([(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]),
        "{body}"
    );
    let serving = per_group(&body, "distribkv_group_shards_serving");
    assert_eq!(
        serving.get(&1).copied().unwrap_or(0.0) + serving[&2],
        8.0,
        "{body}"
    );
    assert_eq!(serving.get(&3).copied().unwrap_or(0.0), 0.0, "{body}");
    let commit = per_group(&body, "distribkv_group_commit_index");
    assert!(commit[&1] > 10.0 && commit[&2] > 10.0, "{body}");
    for name in [
        "distribkv_group_is_leader",
        "distribkv_group_term",
        "distribkv_group_applied_index",
    ] {
        assert_eq!(per_group(&body, name).len(), 4, "{name}:\n{body}");
    }

    // Group 2 leaves while a client writes: its shards and data go to
    // group 1, the writes go on, and the last group cannot leave.
    cluster.put("kept", "before");
    let workload = start_workload(&cluster, 2, 33, &[]);
    std::thread::sleep(Duration::from_secs(1));
    shard_ok(&cluster, &["leave", "2"]);
    wait_for(Duration::from_secs(30), "group 2's shards moved", || {
        let show = show(&cluster);
        settled(&show) && show.shards.iter().all(|g| *g == 1)
    });
    std::thread::sleep(Duration::from_secs(1));
    stop_and_check(&cluster, workload, 20);
    assert_eq!(cluster.get("kept").as_deref(), Some("before"));
    let output = shard(&cluster, &["leave", "1"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("group 1 is the last group"),
        "{output:?}"
    );
    let output = shard(&cluster, &["leave", "2"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("group 2 is not in the configuration (groups: 1)"),
        "{output:?}"
    );
    assert!(show(&cluster).shards.iter().all(|g| *g == 1));
    wait_for(
        Duration::from_secs(10),
        "/metrics: group 2 serves nothing",
        || {
            let (_, body) = super::super::metrics::get(port, "/metrics").unwrap();
            let serving = per_group(&body, "distribkv_group_shards_serving");
            serving.get(&2).copied().unwrap_or(0.0) == 0.0 && serving[&1] == 8.0
        },
    );
}
