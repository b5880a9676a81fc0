//! `server` settings merged from the flags and the `--config` file: the
//! settings of a sharded host need `shards`, from either; the zeros written
//! ahead of the log, from either.

use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{
    BINARY, Cluster, free_port, make_certs, one_at_a_time, serve_then_stop, stderr, stdout,
};

#[test]
fn sharded_flags_with_shards_from_the_config_file_start_a_sharded_host() {
    let _one_at_a_time = one_at_a_time();
    let root = tempfile::tempdir().unwrap();
    let certs = root.path().join("certs");
    make_certs(&certs, &[]).unwrap();
    let file = root.path().join("host.toml");
    let peer = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &file,
        format!("peers = [\"{peer}\"]\nid = 1\nshards = 4\n\n[groups]\n1 = [1]\n"),
    )
    .unwrap();
    let log = root.path().join("host.log");
    let mut host = Command::new(BINARY)
        .arg("server")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(root.path().join("d"))
        .arg("--certs")
        .arg(&certs)
        .args(["--log-purge-after", "65536", "--hibernate-after-ms", "1000"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = serve_then_stop(
        &mut host,
        &log,
        "serving (sharded)",
        Duration::from_secs(20),
    );
    assert!(text.contains("shards=4"), "{text}");
}

#[test]
fn a_sharded_setting_without_shards_is_refused_naming_it_and_its_source() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("single.toml");
    let path = file.to_str().unwrap();
    let server = |args: &[&str]| -> Output {
        Command::new(BINARY)
            .args(["server", "--id", "1", "--peers", "127.0.0.1:1"])
            .args(["--data-dir", "/nonexistent/d", "--certs", "/nonexistent/c"])
            .args(args)
            .output()
            .unwrap()
    };
    // A flag, without and with a --config file that has no `shards`.
    std::fs::write(&file, "snapshot-every = 100\n").unwrap();
    for args in [&[][..], &["--config", path]] {
        let output = server(&[args, &["--log-purge-after", "65536"]].concat());
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(
            stderr(&output).contains(
                "--log-purge-after (on the command line) is only for a sharded host: \
                 give --shards too"
            ),
            "{output:?}"
        );
    }
    // A key of the file (not ignored by a server that is not sharded).
    std::fs::write(&file, "log-rewrite-limit = 8192\n").unwrap();
    let output = server(&["--config", path]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains(&format!(
            "`log-rewrite-limit` (in --config {path}) is only for a sharded host"
        )),
        "{output:?}"
    );
}

/// The bytes of the node's write-ahead log segments (`wal-*.log`), in all.
fn log_bytes(data_dir: &std::path::Path) -> u64 {
    crate::harness::files::segments(data_dir)
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
}

/// `--log-preallocate` (or `log-preallocate` in `--config`) sets the zeros
/// the log keeps written ahead of its last record: none with 0, the given
/// bytes otherwise, 1 MiB by default; a folder written with one setting
/// is read and written on with another, and keeps every write.
#[test]
fn the_zeros_ahead_of_the_log_come_from_the_flag_or_the_file() {
    let limit = Duration::from_secs(20);
    let mut cluster = Cluster::on_loopback(1, &["--log-preallocate", "0"]);
    let data_dir = cluster.nodes[0].data_dir.clone();
    let put = |cluster: &Cluster<_>, value: &str| {
        cluster.leader(limit);
        let output = cluster.cli("put", &["k", value]);
        assert_eq!(
            (output.status.code(), stdout(&output).as_str()),
            (Some(0), "OK\n"),
            "{output:?}"
        );
    };
    let get = |cluster: &Cluster<_>| {
        cluster.leader(limit);
        let output = cluster.cli("get", &["k"]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        stdout(&output)
    };

    // None: the segment holds its records and nothing after them.
    put(&cluster, "first");
    assert!(cluster.terminate(1).success());
    let bytes = log_bytes(&data_dir);
    assert!(
        (1..4096).contains(&bytes),
        "{bytes} bytes of log with no zeros ahead"
    );

    // 4096 bytes, from the file: the records written since are followed by
    // 4096 bytes of zeros, and the records before are still read.
    let file = cluster.dir.join("node.toml");
    std::fs::write(&file, "log-preallocate = 4096\n").unwrap();
    cluster.extra_args = vec!["--config".into(), file.to_str().unwrap().into()];
    cluster.spawn(1);
    assert_eq!(get(&cluster), "first\n");
    put(&cluster, "second");
    assert!(cluster.terminate(1).success());
    let with_zeros = log_bytes(&data_dir);
    assert!(
        (bytes + 4096..bytes + 8192).contains(&with_zeros),
        "{with_zeros} bytes of log, {bytes} before and 4096 of zeros ahead"
    );

    // The default: 1 MiB.
    cluster.extra_args.clear();
    cluster.spawn(1);
    assert_eq!(get(&cluster), "second\n");
    put(&cluster, "third");
    assert_eq!(get(&cluster), "third\n");
    assert!(cluster.terminate(1).success());
    let default = log_bytes(&data_dir);
    assert!(
        (1 << 20..(1 << 20) + 8192).contains(&default),
        "{default} bytes of log with 1 MiB of zeros ahead"
    );
}
