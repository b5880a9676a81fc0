//! `server` settings merged from the flags and the `--config` file: the
//! settings of a sharded host need `shards`, from either.

use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{BINARY, free_port, make_certs, one_at_a_time, serve_then_stop, stderr};

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
