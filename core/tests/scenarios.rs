//! Golden-file scenario tests: each `core/testdata/*.txt` file is a script
//! of commands run against a simulated cluster, each followed by the exact
//! output expected (every message delivered or lost, every role and commit
//! change, and what the command prints). A change in behaviour shows as a
//! diff. Regenerate with `DISTRIBKV_REWRITE=1 cargo test -p distribkv-core
//! --features sim --test scenarios` and review the diff.
//!
//! File format: blocks separated by blank lines; a block is a command line
//! (lines starting with `#` before it are comments), a line `----`, and the
//! expected output.
//!
//! Commands:
//! - `config key=value ...` before anything else: `nodes`, `seed`, `latency=a..b`,
//!   `disk=a..b`, `election=a..b`, `heartbeat`, `prevote`, `checkquorum`,
//!   `lease`, `max-entries`, `snapshot-every`, `chunk`, `client-timeout`,
//!   `followerreads` (clients read from any node)
//! - `campaign N`, `crash N`, `restart N`, `partition 1 2 | 3 4 5` (`c2` puts
//!   client 2 in a group; unlisted clients reach every node), `heal`,
//!   `cut A B`, `restore A B`, `cut-client C N` (client C no longer reaches
//!   node N), `drop-rate P`, `transfer N`, `snapshot N`,
//!   `delay KIND MS` (hold the Raft messages of that kind now in flight back)
//! - `add-node`, `add-learner N`, `add-voter N`, `remove N`, `membership`
//! - `propose N TEXT` (raw entry at node N), `propose-many N COUNT [PREFIX]`, `put K V`, `append K V`, `get K`, `delete K`
//!   (from an idle client), `client N put K V` (and `append`, `get`, `delete`: from client N)
//! - `run MS` (advance time, timers fire), `step [N]` (next N events),
//!   `stabilize` (deliver messages and finish disk syncs; no timer fires)
//! - `state`, `log N`, `history`, `check` (the safety checkers), `linearizability`
//!   (the client history so far)
#![cfg(feature = "sim")]

mod common;

use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::raft::{MembershipChange, NodeId};
use distribkv_core::sim::{Endpoint, OpStatus, Sim, SimConfig, trace};

struct Scenario {
    config: SimConfig,
    sim: Option<Sim>,
    trace_seq: u64,
}

fn parse_range(value: &str) -> (u64, u64) {
    match value.split_once("..") {
        Some((a, b)) => (
            a.parse().expect("range start"),
            b.parse().expect("range end"),
        ),
        None => {
            let v = value.parse().expect("number");
            (v, v)
        }
    }
}

impl Scenario {
    fn new() -> Scenario {
        let mut config = SimConfig {
            nodes: 3,
            seed: 1,
            disk_latency: (0, 0),
            snapshot_every: 0,
            trace_capacity: 100_000,
            ..SimConfig::default()
        };
        config.raft.election_timeout_min = 10_000;
        config.raft.election_timeout_max = 20_000;
        config.raft.heartbeat_interval = 100;
        config.network.latency = (1, 1);
        Scenario {
            config,
            sim: None,
            trace_seq: 0,
        }
    }

    fn sim(&mut self) -> &mut Sim {
        if self.sim.is_none() {
            self.sim = Some(Sim::new(self.config.clone()));
        }
        self.sim.as_mut().expect("just built")
    }

    fn configure(&mut self, args: &[&str]) -> String {
        assert!(
            self.sim.is_none(),
            "config must come before the first other command"
        );
        for arg in args {
            let (key, value) = arg.split_once('=').expect("key=value");
            let c = &mut self.config;
            match key {
                "nodes" => c.nodes = value.parse().unwrap(),
                "seed" => c.seed = value.parse().unwrap(),
                "latency" => c.network.latency = parse_range(value),
                "disk" => c.disk_latency = parse_range(value),
                "election" => {
                    (c.raft.election_timeout_min, c.raft.election_timeout_max) = parse_range(value)
                }
                "heartbeat" => c.raft.heartbeat_interval = value.parse().unwrap(),
                "prevote" => c.raft.pre_vote = value.parse().unwrap(),
                "checkquorum" => c.raft.check_quorum = value.parse().unwrap(),
                "lease" => c.raft.lease_reads = value.parse().unwrap(),
                "max-entries" => c.raft.max_entries_per_message = value.parse().unwrap(),
                "snapshot-every" => c.snapshot_every = value.parse().unwrap(),
                "chunk" => c.raft.snapshot_chunk_bytes = value.parse().unwrap(),
                "client-timeout" => c.client_attempt_timeout = value.parse().unwrap(),
                "followerreads" => c.follower_reads = value.parse().unwrap(),
                other => panic!("unknown config key {other}"),
            }
        }
        String::from("ok")
    }

    /// Runs one command; returns the trace it produced followed by its own output.
    fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = |i: usize| -> NodeId { words[i].parse().expect("node id") };
        let mut out = String::new();
        let printed = match words[0] {
            "config" => return self.configure(&words[1..]),
            "campaign" => result(self.sim().campaign(id(1))),
            "crash" => result(self.sim().crash(id(1))),
            "restart" => result(self.sim().restart(id(1))),
            "heal" => {
                self.sim().heal();
                String::new()
            }
            "partition" if line.contains(" c") => {
                let groups: Vec<Vec<Endpoint>> = line["partition".len()..]
                    .split('|')
                    .map(|g| g.split_whitespace().map(parse_endpoint).collect())
                    .collect();
                self.sim().partition_endpoints(groups);
                String::new()
            }
            "partition" => {
                let groups: Vec<Vec<NodeId>> = line["partition".len()..]
                    .split('|')
                    .map(|g| {
                        g.split_whitespace()
                            .map(|w| w.parse().expect("node id"))
                            .collect()
                    })
                    .collect();
                result(self.sim().partition(&groups))
            }
            "delay" => {
                let count = self
                    .sim()
                    .delay_in_flight(words[1], words[2].parse().expect("ms"));
                format!("{count} delayed")
            }
            "client" => {
                let number: u64 = words[1].parse().expect("client number");
                while (self.sim().client_count() as u64) < number {
                    self.sim().add_client();
                }
                let key = Bytes::copy_from_slice(words[3].as_bytes());
                let value = || Bytes::copy_from_slice(words[4].as_bytes());
                let operation = match words[2] {
                    "put" => Operation::Put {
                        key,
                        value: value(),
                    },
                    "append" => Operation::Append {
                        key,
                        value: value(),
                    },
                    "get" => Operation::Get { key },
                    "delete" => Operation::Delete { key },
                    other => panic!("unknown operation {other}"),
                };
                match self.sim().invoke(Some(number), operation) {
                    Ok(op) => format!("op {op}"),
                    Err(e) => format!("error: {e}"),
                }
            }
            "cut" => result(self.sim().cut_link(id(1), id(2))),
            "cut-client" => result(
                self.sim()
                    .cut_client(words[1].parse().expect("client number"), id(2)),
            ),
            "restore" => result(self.sim().restore_link(id(1), id(2))),
            "drop-rate" => result(self.sim().set_drop_rate(words[1].parse().unwrap())),
            "transfer" => result(self.sim().transfer_leadership(id(1))),
            "snapshot" => result(self.sim().snapshot(id(1))),
            "add-node" => match self.sim().add_node() {
                Ok(id) => format!("node {id} started"),
                Err(e) => format!("error: {e}"),
            },
            "add-learner" => result(
                self.sim()
                    .change_membership(MembershipChange::AddLearner(id(1))),
            ),
            "add-voter" => result(
                self.sim()
                    .change_membership(MembershipChange::AddVoter(id(1))),
            ),
            "remove" => result(
                self.sim()
                    .change_membership(MembershipChange::Remove(id(1))),
            ),
            "membership" => {
                let m = self.sim().membership();
                format!("voters {:?} learners {:?}", m.voters, m.learners)
            }
            "propose" => {
                let text = words[2..].join(" ");
                match self.sim().propose(id(1), Bytes::from(text)) {
                    Ok((index, term)) => format!("appended at {index}/{term}"),
                    Err(e) => format!("error: {e}"),
                }
            }
            "propose-many" => {
                let count: u64 = words[2].parse().unwrap();
                let prefix = words.get(3).copied().unwrap_or("e");
                let commands = (1..=count)
                    .map(|i| Bytes::from(format!("{prefix}{i}")))
                    .collect();
                match self.sim().propose_many(id(1), commands) {
                    Ok(appended) => match appended.last() {
                        Some((index, term)) => {
                            format!("appended {count} entries, last at {index}/{term}")
                        }
                        None => String::from("nothing appended"),
                    },
                    Err(e) => format!("error: {e}"),
                }
            }
            "put" => format!("op {}", self.sim().put(words[1], words[2])),
            "append" => format!("op {}", self.sim().append(words[1], words[2])),
            "get" => format!("op {}", self.sim().get(words[1])),
            "delete" => format!("op {}", self.sim().delete(words[1])),
            "run" => {
                let ms = words[1].parse().unwrap();
                self.sim().run_for(ms);
                String::new()
            }
            "step" => {
                let n = words.get(1).map_or(1, |w| w.parse().unwrap());
                for _ in 0..n {
                    if self.sim().step().is_none() {
                        break;
                    }
                }
                String::new()
            }
            "stabilize" => {
                self.sim().stabilize(100_000);
                String::new()
            }
            "state" => self.state(),
            "log" => self.log(id(1)),
            "history" => self.history(),
            "linearizability" => match self.sim().check_linearizability() {
                Ok(_) => String::from("linearizable"),
                Err(e) => format!("NOT linearizable: {e}"),
            },
            "check" => {
                let violations = self.sim().violations().to_vec();
                if violations.is_empty() {
                    String::from("safety: ok")
                } else {
                    violations.join("\n")
                }
            }
            other => panic!("unknown command {other}"),
        };
        let new_lines: Vec<(u64, String)> = self
            .sim
            .as_ref()
            .unwrap()
            .trace_since(self.trace_seq)
            .map(|l| (l.seq, format!("{:>6} {}", format!("{}", l.at), render(l))))
            .collect();
        if let Some((seq, _)) = new_lines.last() {
            self.trace_seq = *seq;
        }
        for (_, text) in new_lines {
            writeln!(out, "{text}").unwrap();
        }
        if !printed.is_empty() {
            writeln!(out, "{printed}").unwrap();
        }
        if out.is_empty() {
            out.push_str("ok\n");
        }
        out.trim_end().to_string()
    }

    fn state(&mut self) -> String {
        let sim = self.sim();
        let mut out = String::new();
        for id in 1..=sim.node_count() as NodeId {
            match sim.replica(id) {
                None => writeln!(out, "{id}: down").unwrap(),
                Some(replica) => {
                    let node = replica.node();
                    let log = node.log();
                    writeln!(
                        out,
                        "{id}: {} term={} vote={} leader={} commit={} applied={} last={} snapshot={}",
                        node.role().name(),
                        node.term(),
                        node.voted_for().map_or(String::from("-"), |v| v.to_string()),
                        node.leader().map_or(String::from("-"), |v| v.to_string()),
                        log.commit(),
                        log.applied(),
                        log.last_index(),
                        log.snapshot().index
                    )
                    .unwrap();
                }
            }
        }
        out
    }

    fn log(&mut self, id: NodeId) -> String {
        let sim = self.sim();
        let Some(replica) = sim.replica(id) else {
            return format!("{id}: down");
        };
        let log = replica.node().log();
        let entries: Vec<String> = log
            .entries(log.first_index(), log.last_index())
            .map(trace::describe_entry)
            .collect();
        format!(
            "{id}: snapshot={}/{} commit={} [{}]",
            log.snapshot().index,
            log.snapshot().term,
            log.commit(),
            entries.join(", ")
        )
    }

    fn history(&mut self) -> String {
        let sim = self.sim();
        let mut out = String::new();
        for entry in sim.history() {
            let status = match entry.status() {
                OpStatus::Ok => match entry.value() {
                    Some(v) => format!("ok {}", String::from_utf8_lossy(v)),
                    None => String::from("ok"),
                },
                other => String::from(other.name()),
            };
            writeln!(
                out,
                "op {} client {} {} {}: {} ({} attempts, {}..{})",
                entry.id,
                entry.client,
                entry.operation.name(),
                String::from_utf8_lossy(entry.operation.key()),
                status,
                entry.attempts,
                entry.invoked_at,
                entry
                    .completed_at
                    .map_or(String::from("-"), |t| format!("{t}"))
            )
            .unwrap();
        }
        out
    }
}

fn render(line: &distribkv_core::sim::TraceLine) -> String {
    match (line.kind, line.endpoint) {
        ("deliver", _)
        | ("drop", _)
        | ("partition", _)
        | ("heal", _)
        | ("cut", _)
        | ("restore", _) => line.text(),
        (_, Some(endpoint)) => format!("{endpoint}: {}", line.text()),
        (_, None) => line.text(),
    }
}

/// `3` is node 3, `c2` is client 2.
fn parse_endpoint(word: &str) -> Endpoint {
    match word.strip_prefix('c') {
        Some(number) => Endpoint::Client(number.parse().expect("client number")),
        None => Endpoint::Node(word.parse().expect("node id")),
    }
}

fn result<E: std::fmt::Display>(r: Result<(), E>) -> String {
    match r {
        Ok(()) => String::new(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn golden_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    common::golden::check_dir(&dir, || {
        let mut scenario = Scenario::new();
        move |command: &str| scenario.run(command)
    });
}
