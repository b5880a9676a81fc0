//! Backups: `snapshot save` from a running cluster, `snapshot status`,
//! `snapshot restore` into the data folders of a new cluster (another CA,
//! other addresses) that starts with every key; damaged files refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use distribkv_native::cli::snapshot::SnapshotStatus;

use super::harness::{self, BINARY, Cluster, Hosts, Loopback, stderr, stdout};

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_saved_snapshot_restores_a_new_cluster_with_every_key_and_damage_is_refused() {
    let files = tempfile::tempdir().unwrap();
    let keys = 300;
    {
        let cluster = Cluster::start(harness::one_at_a_time(), Loopback::new(3), &[]).unwrap();
        cluster.leader(Duration::from_secs(20));
        let script: String = (0..keys)
            .map(|i| format!("put key{i} value{i}\n"))
            .collect();
        let answers = cluster.client_json(&script);
        assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
        let output = cluster.cli("snapshot", &[]);
        assert_eq!(output.status.code(), Some(2), "snapshot needs a subcommand");
        let output = Command::new(BINARY)
            .args(["snapshot", "save", "--cluster", &cluster.peers(), "--certs"])
            .arg(&cluster.certs)
            .arg(files.path().join("backup.snap"))
            .output()
            .unwrap();
        assert!(output.status.success(), "save: {output:?}");
        assert!(stdout(&output).starts_with("OK"), "{output:?}");
    }

    let output = run(
        &["snapshot", "status", "backup.snap", "--json"],
        files.path(),
    );
    assert!(output.status.success(), "status: {output:?}");
    let status: SnapshotStatus = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert!(status.checksum_ok);
    assert_eq!(status.keys, keys);
    assert!(status.index >= keys, "{status:?}");
    let saved = std::fs::read(files.path().join("backup.snap")).unwrap();
    assert_eq!(status.bytes, saved.len() as u64);

    // Truncated, damaged, or not a snapshot: refused, exit 2, a message.
    std::fs::write(files.path().join("short.snap"), &saved[..saved.len() - 7]).unwrap();
    let mut damaged = saved.clone();
    damaged[saved.len() / 2] ^= 0x01;
    std::fs::write(files.path().join("damaged.snap"), &damaged).unwrap();
    std::fs::write(files.path().join("other.snap"), b"just some text\n").unwrap();
    for (file, why) in [
        ("short.snap", "truncated"),
        ("damaged.snap", "checksum mismatch"),
        ("other.snap", "not a distribKV snapshot file"),
        ("missing.snap", "No such file"),
    ] {
        let output = run(&["snapshot", "status", file], files.path());
        assert_eq!(output.status.code(), Some(2), "{file}: {output:?}");
        assert!(stderr(&output).contains(why), "{file}: {}", stderr(&output));
        let output = run(
            &[
                "snapshot",
                "restore",
                file,
                "--id",
                "1",
                "--peers",
                "127.0.0.1:1",
                "--data-dir",
                "refused",
            ],
            files.path(),
        );
        assert_eq!(output.status.code(), Some(2), "{file}: {output:?}");
        assert!(stderr(&output).contains(why), "{file}: {}", stderr(&output));
        assert!(!files.path().join("refused").exists());
    }
    let damaged_status = run(
        &["snapshot", "status", "damaged.snap", "--json"],
        files.path(),
    );
    let damaged_status: SnapshotStatus =
        serde_json::from_str(stdout(&damaged_status).trim()).unwrap();
    assert!(!damaged_status.checksum_ok);
    // In text, its keys are not counted rather than shown as none.
    let damaged_text = run(&["snapshot", "status", "damaged.snap"], files.path());
    let damaged_text = stdout(&damaged_text);
    assert!(
        damaged_text.contains(" keys ? ") && damaged_text.contains("checksum BAD"),
        "{damaged_text}"
    );

    // A new cluster: other certificates, other ports, folders from restore.
    let mut cluster = Cluster::create(harness::one_at_a_time(), Loopback::new(3), 3, &[]).unwrap();
    let backup = files.path().join("backup.snap");
    for id in 1..=3 {
        let output = Command::new(BINARY)
            .arg("snapshot")
            .arg("restore")
            .arg(&backup)
            .args(["--id", &id.to_string(), "--peers", &cluster.initial_peers()])
            .arg("--data-dir")
            .arg(&cluster.nodes[id - 1].data_dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "restore {id}: {output:?}");
    }
    let output = Command::new(BINARY)
        .args(["snapshot", "restore"])
        .arg(&backup)
        .args([
            "--id",
            "1",
            "--peers",
            &cluster.initial_peers(),
            "--data-dir",
        ])
        .arg(&cluster.nodes[0].data_dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a used folder is refused");
    let output = Command::new(BINARY)
        .args(["snapshot", "restore"])
        .arg(&backup)
        .args([
            "--id",
            "4",
            "--peers",
            &cluster.initial_peers(),
            "--data-dir",
        ])
        .arg(files.path().join("node4"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "--id 4 of 3: {output:?}");
    for id in 1..=3 {
        cluster.spawn(id);
    }
    cluster.leader(Duration::from_secs(20));
    let script: String = (0..keys).map(|i| format!("get key{i}\n")).collect();
    let answers = cluster.client_json(&script);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["value"], format!("value{i}"), "key{i}: {answer}");
    }
    cluster.put("new", "write");
    assert_eq!(cluster.get("new").as_deref(), Some("write"));
    let statuses = cluster.wait_converged(Duration::from_secs(20)).unwrap();
    assert!(statuses.iter().all(|s| s.keys == keys + 1), "{statuses:?}");
    let _ = cluster.hosts.address(1);
}
