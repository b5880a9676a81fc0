//! The flags of a sharded host (`server --shards`): the hosts of the
//! controller group and of every shard group, on top of a single group's.

use distribkv_core::raft::NodeId;

use super::config_file::parse_ids;
use super::{ConfigFile, ServerArgs, argument_error, required};

impl ServerArgs {
    /// Refuses a setting only a sharded host takes (`--controller`,
    /// `--group`, `--hibernate-after-ms`, `--retire-after-ms`,
    /// `--log-purge-after`, `--log-rewrite-limit`, or their keys in the
    /// `--config` file) when neither the flags nor the file give `shards`,
    /// naming the first such setting and where it came from. Checked once
    /// the flags and the file are merged, so `shards` may come from the
    /// file and the other settings from the command line, or the reverse.
    pub(super) fn refuse_sharded_settings_without_shards(
        &self,
        file: &ConfigFile,
    ) -> Result<(), clap::Error> {
        if self.shards.is_some() || file.shards.is_some() {
            return Ok(());
        }
        let flags = [
            ("--controller", self.controller.is_some()),
            ("--group", !self.groups.is_empty()),
            ("--hibernate-after-ms", self.hibernate_after_ms.is_some()),
            ("--retire-after-ms", self.retire_after_ms.is_some()),
            ("--log-purge-after", self.log_purge_after.is_some()),
            ("--log-rewrite-limit", self.log_rewrite_limit.is_some()),
        ];
        let keys = [
            ("controller", file.controller.is_some()),
            ("groups", file.groups.is_some()),
            ("hibernate-after-ms", file.hibernate_after_ms.is_some()),
            ("retire-after-ms", file.retire_after_ms.is_some()),
            ("log-purge-after", file.log_purge_after.is_some()),
            ("log-rewrite-limit", file.log_rewrite_limit.is_some()),
        ];
        let from_flag = flags
            .iter()
            .find(|(_, given)| *given)
            .map(|(flag, _)| format!("{flag} (on the command line)"));
        let from_file = || {
            let (key, _) = keys.iter().find(|(_, given)| *given)?;
            // A key was read, so there is a --config file.
            let path = self.config.as_deref()?.display();
            Some(format!("`{key}` (in --config {path})"))
        };
        match from_flag.or_else(from_file) {
            Some(setting) => Err(argument_error(format!(
                "{setting} is only for a sharded host: give --shards too \
                 (on the command line, or `shards` in --config)"
            ))),
            None => Ok(()),
        }
    }

    /// The configuration of a sharded host (`--shards`), checked, from
    /// the flags and `file` (the `--config` file, read by the caller).
    pub(super) fn sharded_config_in(
        &self,
        file: &ConfigFile,
    ) -> Result<crate::shard::ShardedServerConfig, clap::Error> {
        if self.join.is_some() || file.join.is_some() || self.listen.is_some() {
            return Err(argument_error(
                "--join and --listen are for single-group clusters; a sharded cluster's hosts are all in --peers".into(),
            ));
        }
        if self.lease_reads || file.lease_reads == Some(true) {
            return Err(argument_error(
                "--lease-reads is not supported by sharded hosts (their timers are coalesced)"
                    .into(),
            ));
        }
        // Invariant: called when the flags or the file give `shards`.
        let shards = self
            .shards
            .or(file.shards)
            .ok_or_else(|| required("--shards"))?;
        let max = distribkv_core::shard::host::MAX_SHARDS;
        if shards == 0 || shards > max {
            return Err(argument_error(format!("--shards {shards}: 1 to {max}")));
        }
        let single = self.config_in(file)?;
        let id = single.id();
        if single.peers.is_empty() {
            return Err(required("--peers (every host, in id order)"));
        }
        let controller = match (&self.controller, &file.controller) {
            (Some(text), _) => parse_ids("--controller", text)?,
            (None, Some(ids)) => ids.clone(),
            (None, None) => (1..=single.peers.len() as NodeId).collect(),
        };
        let mut groups = std::collections::BTreeMap::new();
        if !self.groups.is_empty() {
            for text in &self.groups {
                let (group, ids) = text.split_once('=').ok_or_else(|| {
                    argument_error(format!("--group {text}: expected GID=ID,ID,..."))
                })?;
                let group: distribkv_core::shard::GroupId = group.trim().parse().map_err(|_| {
                    argument_error(format!("--group {text}: {group:?} is not a group id"))
                })?;
                let ids = parse_ids(&format!("--group {group}"), ids)?;
                if groups.insert(group, ids).is_some() {
                    return Err(argument_error(format!("--group {group} is given twice")));
                }
            }
        } else if let Some(table) = &file.groups {
            for (group, ids) in table {
                let parsed: distribkv_core::shard::GroupId = group.parse().map_err(|_| {
                    argument_error(format!("--config groups: {group:?} is not a group id"))
                })?;
                groups.insert(parsed, ids.clone());
            }
        }
        let mut host = distribkv_core::shard::host::HostConfig::new(id, shards, controller);
        host.raft = single.replica.raft.clone();
        host.snapshot_every = single.replica.snapshot_every;
        host.hibernate_after_ms = self
            .hibernate_after_ms
            .or(file.hibernate_after_ms)
            .unwrap_or(0);
        if let Some(ms) = self.retire_after_ms.or(file.retire_after_ms) {
            host.retire_after_ms = ms;
        }
        let storage = single.storage.clone();
        let defaults = crate::shard::LogPurge::default();
        let log_purge = crate::shard::LogPurge {
            purge_after: self
                .log_purge_after
                .or(file.log_purge_after)
                .unwrap_or(defaults.purge_after),
            rewrite_limit: self
                .log_rewrite_limit
                .or(file.log_rewrite_limit)
                .unwrap_or(defaults.rewrite_limit),
        };
        crate::shard::ShardedServerConfig {
            peers: single.peers.clone(),
            groups,
            data_dir: single.data_dir.clone(),
            certs_dir: single.certs_dir.clone(),
            metrics_addr: single.metrics_addr,
            host,
            storage,
            log_purge,
        }
        .validate()
        .map_err(|error| argument_error(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn sharded_config_of(args: &[&str]) -> Result<crate::shard::ShardedServerConfig, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Server(server) = cli.command else {
            panic!("a server command");
        };
        match server.setup()? {
            super::super::ServerSetup::Sharded(config) => Ok(config),
            super::super::ServerSetup::Single(_) => panic!("{args:?} is sharded"),
        }
    }

    /// The hosts' addresses a sharded host reports (`Describe`), which
    /// clients parse back to find every host: IPv6 ones keep their
    /// brackets (written `::1:7002` they parsed as nothing, and a client
    /// of an IPv6 cluster knew only the hosts given to it).
    #[test]
    fn the_hosts_addresses_reported_parse_back() {
        let config = sharded_config_of(&[
            "distribkv-native",
            "server",
            "--id",
            "1",
            "--peers",
            "[::1]:7001,127.0.0.1:7002,localhost:7003",
            "--data-dir",
            "d",
            "--certs",
            "c",
            "--shards",
            "4",
            "--group",
            "1=1",
        ])
        .unwrap();
        let reported = crate::shard::host_addresses(&config);
        assert_eq!(
            reported,
            vec![
                (1, "[::1]:7001".to_string()),
                (2, "127.0.0.1:7002".to_string()),
                (3, "localhost:7003".to_string()),
            ]
        );
        for ((_, text), peer) in reported.iter().zip(&config.peers) {
            assert_eq!(crate::addr::parse_address(text).unwrap().addr, peer.addr);
        }
    }

    /// Host 3 of three, four shards, the controller group on hosts 1 and
    /// 2, and `groups` (more flags).
    fn host_3_of_3(groups: &[&str]) -> Result<crate::shard::ShardedServerConfig, clap::Error> {
        let mut args = vec![
            "distribkv-native",
            "server",
            "--id",
            "3",
            "--peers",
            "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
            "--data-dir",
            "d",
            "--certs",
            "c",
            "--shards",
            "4",
            "--controller",
            "1,2",
        ];
        args.extend_from_slice(groups);
        sharded_config_of(&args)
    }

    #[test]
    fn the_sharded_config_file_and_flags_make_the_host() {
        let root = env!("CARGO_MANIFEST_DIR");
        let file = format!("{root}/../scripts/sharded-cluster.toml");
        let config = sharded_config_of(&[
            "distribkv-native",
            "server",
            "--config",
            &file,
            "--id",
            "2",
            "--data-dir",
            "d2",
        ])
        .unwrap();
        assert_eq!(config.host.id, 2);
        assert_eq!(config.host.shards, 12);
        assert_eq!(config.host.controller, vec![1, 2, 3]);
        assert_eq!(config.groups.len(), 3);
        assert_eq!(config.held_groups().len(), 4, "the controller and 3 groups");
        // Flags: host 3 holds only the groups that name it.
        let config = host_3_of_3(&[
            "--group",
            "1=1,2,3",
            "--group",
            "2=1,2",
            "--hibernate-after-ms",
            "500",
            "--retire-after-ms",
            "2000",
        ])
        .unwrap();
        assert_eq!(config.host.hibernate_after_ms, 500);
        assert_eq!(config.log_purge, crate::shard::LogPurge::default());
        let purging = host_3_of_3(&[
            "--group",
            "1=1,2,3",
            "--log-purge-after",
            "65536",
            "--log-rewrite-limit",
            "4096",
        ])
        .unwrap();
        assert_eq!(
            purging.log_purge,
            crate::shard::LogPurge {
                purge_after: 65536,
                rewrite_limit: 4096
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sharded.toml");
        std::fs::write(
            &file,
            "peers = [\"127.0.0.1:1\"]\nid = 1\ndata-dir = \"d\"\ncerts = \"c\"\nshards = 4\n\
             log-purge-after = 1048576\nlog-rewrite-limit = 65536\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let from_file = sharded_config_of(&["distribkv-native", "server", "--config", path]);
        assert_eq!(
            from_file.unwrap().log_purge,
            crate::shard::LogPurge {
                purge_after: 1 << 20,
                rewrite_limit: 64 << 10
            }
        );
        let overridden = sharded_config_of(&[
            "distribkv-native",
            "server",
            "--config",
            path,
            "--log-rewrite-limit",
            "8192",
        ]);
        assert_eq!(
            overridden.unwrap().log_purge.rewrite_limit,
            8192,
            "the flag wins, `shards` from the file"
        );
        for (flag, value) in [("--log-purge-after", "4095"), ("--log-rewrite-limit", "0")] {
            let error = host_3_of_3(&["--group", "1=1,2,3", flag, value]).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("{flag} {value}: at least 4096 bytes")),
                "{error}"
            );
        }
        assert_eq!(config.host.retire_after_ms, 2000);
        assert_eq!(
            config.held_groups().into_iter().collect::<Vec<_>>(),
            vec![1],
            "not a controller server, not in group 2"
        );
        let error = host_3_of_3(&["--group", "1=1,2"]).unwrap_err();
        assert!(
            error.to_string().contains("host 3 holds no group"),
            "{error}"
        );
        let error = sharded_config_of(&[
            "distribkv-native",
            "server",
            "--id",
            "1",
            "--peers",
            "127.0.0.1:1",
            "--data-dir",
            "d",
            "--certs",
            "c",
            "--shards",
            "4",
            "--group",
            "1=1",
            "--group",
            "1=1",
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("--group 1 is given twice"),
            "{error}"
        );
    }

    /// `server` parsed and its single-group configuration made (what
    /// `run` does for a server that is not a sharded host).
    fn single_config_of(args: &[&str]) -> Result<crate::server::ValidConfig, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Server(server) = cli.command else {
            panic!("a server command");
        };
        match server.setup()? {
            super::super::ServerSetup::Single(config) => Ok(config),
            super::super::ServerSetup::Sharded(_) => panic!("{args:?} is not sharded"),
        }
    }

    #[test]
    fn the_number_of_shards_is_bounded_from_the_flag_or_the_file() {
        let base = [
            "distribkv-native",
            "server",
            "--id",
            "1",
            "--peers",
            "127.0.0.1:1",
            "--data-dir",
            "d",
            "--certs",
            "c",
        ];
        for (shards, ok) in [("1", true), ("65536", true), ("0", false), ("65537", false)] {
            let outcome = sharded_config_of(&[&base[..], &["--shards", shards]].concat());
            match outcome {
                Ok(config) => assert!(ok && config.host.shards.to_string() == shards),
                Err(error) => assert!(
                    !ok && error
                        .to_string()
                        .contains(&format!("--shards {shards}: 1 to 65536")),
                    "{shards}: {error}"
                ),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.toml");
        std::fs::write(&file, "shards = 0\n").unwrap();
        let error = sharded_config_of(&[&base[..], &["--config", file.to_str().unwrap()]].concat())
            .unwrap_err();
        assert!(
            error.to_string().contains("--shards 0: 1 to 65536"),
            "{error}"
        );
    }

    #[test]
    fn a_sharded_setting_needs_shards_from_the_flags_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.toml");
        let path = file.to_str().unwrap();
        let base = ["distribkv-native", "server", "--config", path];
        // `shards` in the file, the sharded flags on the command line.
        std::fs::write(
            &file,
            "peers = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\nid = 1\ndata-dir = \"d\"\n\
             certs = \"c\"\nshards = 4\n",
        )
        .unwrap();
        let config = sharded_config_of(
            &[
                &base[..],
                &["--log-purge-after", "65536", "--controller", "1"],
                &["--group", "1=1,2", "--hibernate-after-ms", "300"],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(config.log_purge.purge_after, 65536);
        assert_eq!(config.host.controller, vec![1]);
        assert_eq!(config.host.hibernate_after_ms, 300);
        assert_eq!(config.groups.len(), 1);
        // No `shards` anywhere: each sharded flag is refused, named.
        std::fs::write(
            &file,
            "peers = [\"127.0.0.1:1\"]\nid = 1\ndata-dir = \"d\"\ncerts = \"c\"\n",
        )
        .unwrap();
        for flag in [
            &["--controller", "1"][..],
            &["--group", "1=1"],
            &["--hibernate-after-ms", "300"],
            &["--retire-after-ms", "300"],
            &["--log-purge-after", "65536"],
            &["--log-rewrite-limit", "8192"],
        ] {
            let error = single_config_of(&[&base[..], flag].concat()).unwrap_err();
            assert_eq!(error.exit_code(), 2);
            assert!(
                error.to_string().contains(&format!(
                    "{} (on the command line) is only for a sharded host: give --shards too",
                    flag[0]
                )),
                "{flag:?}: {error}"
            );
        }
        // ... and so is each sharded key of the file.
        for key in [
            "controller = [1]",
            "hibernate-after-ms = 300",
            "retire-after-ms = 300",
            "log-purge-after = 65536",
            "log-rewrite-limit = 8192",
            "[groups]\n1 = [1]",
        ] {
            std::fs::write(
                &file,
                format!("peers = [\"127.0.0.1:1\"]\nid = 1\ndata-dir = \"d\"\n{key}\n"),
            )
            .unwrap();
            let error = single_config_of(&base).unwrap_err();
            let name = key
                .trim_start_matches('[')
                .split([' ', ']'])
                .next()
                .unwrap();
            assert!(
                error.to_string().contains(&format!(
                    "`{name}` (in --config {path}) is only for a sharded host"
                )),
                "{key}: {error}"
            );
        }
        // `shards` on the command line, a sharded key in the file.
        let config =
            sharded_config_of(&[&base[..], &["--certs", "c", "--shards", "4"]].concat()).unwrap();
        assert_eq!(config.host.shards, 4);
        assert_eq!(config.held_groups().len(), 2, "the controller and group 1");
    }
}
