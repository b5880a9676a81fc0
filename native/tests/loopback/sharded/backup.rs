//! Backups of a sharded cluster: `snapshot save` while shards move and a
//! client appends holds every write acknowledged before it started;
//! `snapshot status` describes it shard by shard; `snapshot restore
//! --cluster` loads it into a new sharded cluster of another layout and
//! into a single group, and refuses a cluster that holds keys; damaged
//! files and a folder restore of a sharded backup are refused with the
//! reason.

use std::path::Path;
use std::process::Stdio;

use distribkv_native::backup::sharded::ShardedBackup;
use distribkv_native::cli::snapshot::ShardedSnapshotStatus;

use super::*;

fn snapshot(args: &[&str], file: &Path, rest: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("snapshot")
        .args(args)
        .arg(file)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `snapshot save --cluster <cluster> --certs <its certificates> FILE`.
fn save(cluster: &Cluster<Loopback>, file: &Path) -> Output {
    snapshot(
        &["save", "--cluster", &cluster.peers(), "--certs"],
        &cluster.certs,
        &[file.to_str().unwrap()],
    )
}

/// `snapshot restore FILE --cluster <cluster> --certs <its certificates>`.
fn load(cluster: &Cluster<Loopback>, file: &Path) -> Output {
    Command::new(BINARY)
        .args(["snapshot", "restore"])
        .arg(file)
        .args(["--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every `key{i}` holds `value{i}`.
fn assert_keys(cluster: &Cluster<Loopback>, keys: usize) {
    let script: String = (0..keys).map(|i| format!("get key{i}\n")).collect();
    let answers = cluster.client_json(&script);
    assert_eq!(answers.len(), keys);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["value"], format!("value{i}"), "key{i}: {answer}");
    }
}

#[test]
fn a_sharded_backup_taken_during_moves_loads_into_new_clusters() {
    let files = tempfile::tempdir().unwrap();
    let backup = files.path().join("sharded.snap");
    let keys = 200;
    let appended_before: String;
    let final_log: String;
    {
        let mut cluster = sharded_cluster();
        shard_ok(&cluster, &["join", "1", "1,2,3"]);
        shard_ok(&cluster, &["join", "2", "1,2,3"]);
        let mut script: String = (0..keys)
            .map(|i| format!("put key{i} value{i}\n"))
            .collect();
        script.extend((0..50).map(|i| format!("append log a{i},\n")));
        let answers = cluster.client_json(&script);
        assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
        appended_before = (0..50).map(|i| format!("a{i},")).collect();

        // A client keeps appending, and group 3's join moves shards, while
        // the backup is taken.
        let mut appender = cluster.client_process();
        let writer = std::thread::spawn(move || {
            for i in 0..300 {
                let answer =
                    appender.request(&format!("append log b{i},"), Duration::from_secs(20));
                assert!(answer.is_some_and(|a| a["ok"] == true), "append b{i}");
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        shard_ok(&cluster, &["join", "3", "1,2,3"]);
        let output = save(&cluster, &backup);
        assert!(output.status.success(), "save: {output:?}");
        assert!(
            stdout(&output).starts_with(&format!("OK: {SHARDS} shards (")),
            "{output:?}"
        );
        writer.join().unwrap();
        final_log = cluster.get("log").unwrap();

        // Once the moves are over, five values of 1 MiB in one shard: its
        // export takes two chunks. With a host down, the other replicas of
        // each group give its shards, to two saves at once.
        wait_for(Duration::from_secs(30), "the moves to end", || {
            settled(&show(&cluster))
        });
        let big: Vec<String> = (0..)
            .map(|i| format!("big{i}"))
            .filter(|k| shard_of(k.as_bytes(), SHARDS) == shard_of(b"big0", SHARDS))
            .take(5)
            .collect();
        let big_value = |i: usize| ((b'a' + i as u8) as char).to_string().repeat(1 << 20);
        let script: String = (big.iter().enumerate())
            .map(|(i, k)| format!("put {k} {}\n", big_value(i)))
            .collect();
        let answers = cluster.client_json(&script);
        assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
        cluster.kill(3);
        // Two saves at once (a host holds several exports): both whole.
        let degraded = files.path().join("degraded.snap");
        let also = files.path().join("also.snap");
        let other = std::thread::scope(|scope| {
            let other = scope.spawn(|| save(&cluster, &also));
            let output = save(&cluster, &degraded);
            assert!(output.status.success(), "save with host 3 down: {output:?}");
            other.join().unwrap()
        });
        assert!(other.status.success(), "a second save at once: {other:?}");
        let also = ShardedBackup::decode(&std::fs::read(&also).unwrap()).unwrap();
        let degraded = ShardedBackup::decode(&std::fs::read(&degraded).unwrap()).unwrap();
        assert_eq!(also.pairs().unwrap(), degraded.pairs().unwrap());
        let log = degraded
            .pairs()
            .unwrap()
            .into_iter()
            .find(|(k, _)| k.as_ref() == b"log")
            .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap());
        assert_eq!(log.as_deref(), Some(final_log.as_str()));
        let pairs: BTreeMap<_, _> = degraded.pairs().unwrap().into_iter().collect();
        assert_eq!(pairs.len(), keys + 1 + big.len());
        for (i, key) in big.iter().enumerate() {
            assert!(pairs[key.as_bytes()] == big_value(i).as_bytes(), "{key}");
        }
    }

    // Every write acknowledged before the save is in it, and the appended
    // key holds a value that the key had at some point after that.
    let saved = std::fs::read(&backup).unwrap();
    let decoded = ShardedBackup::decode(&saved).unwrap();
    assert_eq!(decoded.shards.len(), SHARDS as usize);
    let pairs: BTreeMap<String, String> = decoded
        .pairs()
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    for i in 0..keys {
        assert_eq!(pairs[&format!("key{i}")], format!("value{i}"));
    }
    let log = &pairs["log"];
    assert!(log.starts_with(&appended_before), "{log}");
    assert!(
        final_log.starts_with(log.as_str()),
        "{log} then {final_log}"
    );
    assert_eq!(pairs.len(), keys + 1);

    let output = snapshot(&["status"], &backup, &["--json"]);
    assert!(output.status.success(), "status: {output:?}");
    let status: ShardedSnapshotStatus = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!((status.kind.as_str(), status.shards), ("sharded", SHARDS));
    assert!(status.checksum_ok);
    assert_eq!(status.keys, keys as u64 + 1);
    assert_eq!(status.bytes, saved.len() as u64);
    assert!(status.per_shard.iter().all(|s| s.group != 0), "{status:?}");
    let text = stdout(&snapshot(&["status"], &backup, &[]));
    assert!(
        text.starts_with(&format!("sharded: {SHARDS} shards keys {}", keys + 1)),
        "{text}"
    );

    // Damaged, truncated; and a folder restore of a sharded backup.
    let mut damaged = saved.clone();
    damaged[saved.len() / 2] ^= 0x01;
    std::fs::write(files.path().join("damaged.snap"), &damaged).unwrap();
    std::fs::write(files.path().join("short.snap"), &saved[..saved.len() - 9]).unwrap();
    for (file, why) in [("damaged.snap", "checksum mismatch"), ("short.snap", "")] {
        let output = snapshot(&["status"], &files.path().join(file), &[]);
        assert_eq!(output.status.code(), Some(2), "{file}: {output:?}");
        assert!(stderr(&output).contains(why), "{file}: {output:?}");
    }
    // The damaged file's shards are listed, their keys not counted (not
    // shown as an empty backup).
    let output = snapshot(&["status"], &files.path().join("damaged.snap"), &[]);
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("sharded: {SHARDS} shards keys ? ")),
        "{text}"
    );
    assert!(text.contains("checksum BAD"), "{text}");
    assert_eq!(text.lines().count(), 1 + SHARDS as usize, "{text}");
    assert!(
        text.lines().skip(1).all(|l| l.ends_with(" keys ?")),
        "{text}"
    );
    let output = Command::new(BINARY)
        .args(["snapshot", "restore"])
        .arg(&backup)
        .args(["--id", "1", "--peers", "127.0.0.1:1", "--data-dir"])
        .arg(files.path().join("folder"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("a sharded cluster's backup")
            && stderr(&output).contains("--cluster"),
        "{output:?}"
    );
    assert!(!files.path().join("folder").exists());
    let output = Command::new(BINARY)
        .args(["snapshot", "restore"])
        .arg(&backup)
        .args(["--cluster", "127.0.0.1:1", "--id", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{output:?}"
    );

    // A new sharded cluster, another layout (one group owns every shard):
    // the load writes every key; a second load is refused.
    {
        let cluster = sharded_cluster();
        shard_ok(&cluster, &["join", "2", "1,2,3"]);
        // A damaged file is refused before anything is written.
        let output = load(&cluster, &files.path().join("damaged.snap"));
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(stderr(&output).contains("checksum mismatch"), "{output:?}");
        let output = load(&cluster, &backup);
        assert!(output.status.success(), "load: {output:?}");
        assert!(
            stdout(&output).starts_with(&format!("OK: {} keys of the sharded backup", keys + 1)),
            "{output:?}"
        );
        assert_keys(&cluster, keys);
        assert_eq!(cluster.get("log").as_deref(), Some(log.as_str()));
        let output = load(&cluster, &backup);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(
            stderr(&output).contains(&format!("the cluster holds {} keys", keys + 1)),
            "{output:?}"
        );
    }

    // A single group takes it too; and its own backup, saved, loads into
    // a sharded cluster.
    let single_backup = files.path().join("single.snap");
    {
        let cluster = Cluster::on_loopback(3, &[]);
        let output = load(&cluster, &backup);
        assert!(output.status.success(), "load: {output:?}");
        assert_keys(&cluster, keys);
        let output = save(&cluster, &single_backup);
        assert!(output.status.success(), "save: {output:?}");
    }
    let cluster = sharded_cluster();
    shard_ok(&cluster, &["join", "1", "1,2,3"]);
    let output = load(&cluster, &single_backup);
    assert!(
        output.status.success()
            && stdout(&output).contains(&format!("{} keys of the single-group backup", keys + 1)),
        "load: {output:?}"
    );
    assert_keys(&cluster, keys);
}
