//! Golden-file scenarios of the sharded service: each
//! `core/testdata/shard/*.txt` file is a script of commands run against a
//! sharded simulated cluster, each followed by the exact output expected:
//! every change of a group's configuration or shard status on every host,
//! every shard push and acknowledgement delivered, and what the command
//! prints. Regenerate with `DISTRIBKV_REWRITE=1 cargo test -p
//! distribkv-core --features sim --test shard_scenarios` and review the diff.
//!
//! Commands: `config seed=N layout=lab|small`, `join G ...`, `leave G ...`,
//! `move SHARD G`, `query`, `put K V`, `append K V`, `get K`, `crash H`,
//! `restart H`, `crash-leader G`, `run MS`, `shards`, `check`.
#![cfg(feature = "sim")]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use distribkv_core::shard::ControllerOp;
use distribkv_core::sim::sharded::{ShardedConfig, ShardedSim};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/shard")
}

struct Scenario {
    config: ShardedConfig,
    sim: Option<ShardedSim>,
}

impl Scenario {
    fn sim(&mut self) -> &mut ShardedSim {
        if self.sim.is_none() {
            let mut sim = ShardedSim::new(self.config.clone()).expect("valid configuration");
            sim.enable_trace();
            self.sim = Some(sim);
        }
        self.sim.as_mut().expect("built")
    }

    fn run(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        let numbers = |from: usize| -> Vec<u64> {
            words[from..]
                .iter()
                .map(|w| w.parse().expect("a number"))
                .collect()
        };
        let mut out = String::new();
        let printed = match words[0] {
            "config" => {
                for pair in &words[1..] {
                    let (k, v) = pair.split_once('=').expect("key=value");
                    match k {
                        "seed" => self.config.seed = v.parse().expect("seed"),
                        "layout" if v == "lab" => {
                            self.config = ShardedConfig {
                                seed: self.config.seed,
                                ..ShardedConfig::lab(0)
                            }
                        }
                        "layout" => {
                            self.config = ShardedConfig {
                                seed: self.config.seed,
                                ..ShardedConfig::small(0)
                            }
                        }
                        _ => panic!("unknown config key {k}"),
                    }
                }
                String::new()
            }
            "join" => format!("{:?}", self.sim().join(&numbers(1))),
            "leave" => format!("{:?}", self.sim().leave(&numbers(1))),
            "move" => {
                let n = numbers(1);
                let op = ControllerOp::Move {
                    shard: n[0] as u32,
                    group: n[1],
                };
                format!("{:?}", self.sim().controller(op))
            }
            "query" => match self.sim().query() {
                Ok(c) => format!("config {}: shards {:?}", c.num, c.shards),
                Err(e) => format!("{e:?}"),
            },
            "put" => format!("{:?}", self.sim().put(words[1], words[2])),
            "append" => format!("{:?}", self.sim().append(words[1], words[2])),
            "get" => format!("{:?}", self.sim().get(words[1])),
            "crash" => {
                self.sim().crash(numbers(1)[0]);
                String::new()
            }
            "restart" => {
                self.sim().restart(numbers(1)[0]);
                String::new()
            }
            "crash-leader" => {
                let group = numbers(1)[0];
                let sim = self.sim();
                match sim.leader_of(group) {
                    Some(host) => {
                        sim.crash(host);
                        String::new()
                    }
                    None => String::from("no leader"),
                }
            }
            "run" => {
                self.sim().run_for(numbers(1)[0]);
                String::new()
            }
            "shards" => {
                let held = self.sim().held_shards();
                held.iter()
                    .map(|(g, s)| format!("group {g} holds {s:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            "check" => {
                let sim = self.sim();
                let mut problems = sim.violations();
                problems.extend(sim.check_history());
                if problems.is_empty() {
                    String::from("ok")
                } else {
                    problems.join("\n")
                }
            }
            other => panic!("unknown command {other}"),
        };
        if let Some(sim) = &mut self.sim {
            for line in sim.take_trace() {
                writeln!(out, "{line}").unwrap();
            }
        }
        if !printed.is_empty() {
            writeln!(out, "{printed}").unwrap();
        }
        out
    }
}

#[test]
fn golden_shard_scenarios() {
    common::golden::check_dir(&testdata(), || {
        let mut scenario = Scenario {
            config: ShardedConfig::lab(1),
            sim: None,
        };
        move |command: &str| scenario.run(command)
    });
}
