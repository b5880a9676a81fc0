//! One nemesis run: start a cluster, run clients, inject the schedule, heal,
//! check, report.
//!
//! The checks, after the last fault is healed and the clients stopped:
//!
//! 1. the cluster converges within [`CONVERGE_LIMIT`]: one leader known to
//!    all current members (after replacements: the new member set, which
//!    every member's configuration must list as its voters, no learner
//!    left), nothing uncommitted, every member applied the same index and holds
//!    the same state (`fingerprint` of `status --json`);
//! 2. the final value of every key is read (these reads join the history);
//! 3. the history is linearizable (the core's checker, per key; an error
//!    answer or a missing one is an unknown outcome);
//! 4. every acknowledged append is in its key's final value exactly once
//!    (unless a put or delete may have overwritten it), no append is there
//!    twice, and no text is there that no operation wrote;
//! 5. in particular, nothing acknowledged before an all-nodes crash is
//!    missing afterwards.
//!
//! A failure panics with the seed, the schedule, what was injected when,
//! and every finding; the cluster's files are kept (see `NsCluster`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distribkv_core::check::{
    AppendCheckOptions, Budget, OpKind, Operation, Outcome, check_appends, check_linearizable,
};

use distribkv_native::server::{
    DEFAULT_ELECTION_MAX_MS, DEFAULT_ELECTION_MIN_MS, DEFAULT_HEARTBEAT_MS,
};

use super::harness::history::start_clients;
use super::harness::status::render_statuses;
use super::harness::{ClientProcess, FAST_ELECTION_MIN_MS, FAST_HEARTBEAT_MS, StatusLine};
use super::nemesis::{Fault, Planned, inject, plan, render_plan, replacements};
use super::rng::Rng;
use super::served::{METRICS_ARGS, Served};
use super::workload::{Ending, Pace, Recorder, is_append_only};

/// How long the cluster may take to elect a leader at the start.
pub const LEADER_LIMIT: Duration = Duration::from_secs(30);
/// How long the cluster may take to converge after the last fault.
pub const CONVERGE_LIMIT: Duration = Duration::from_secs(60);
/// Workload before the first fault and after the last one.
const SETTLE: Duration = Duration::from_secs(3);

/// One injected fault, as it happened.
#[derive(Debug, Clone)]
pub struct Injected {
    /// The planned fault.
    pub fault: Fault,
    /// What was done (the leader resolved).
    pub description: String,
    /// When it started, µs on the history's clock.
    pub started: u64,
    /// When it was healed, µs on the history's clock.
    pub healed: u64,
}

/// What a failing run prints: kept up to date as the run goes, printed by
/// `Drop` if the test panics before the checks (an `expect` in the middle).
struct Journal {
    header: String,
    timeline: Arc<Mutex<Vec<String>>>,
    done: bool,
}

impl Journal {
    fn note(&self, line: String) {
        self.timeline.lock().unwrap().push(line);
    }

    fn render(&self) -> String {
        format!(
            "{}\nfaults injected (times since the clients started):\n{}",
            self.header,
            self.timeline.lock().unwrap().join("\n")
        )
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.done {
            eprintln!("{}", self.render());
        }
    }
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// The command line that replays a seed.
pub fn replay_command(seed: u64, test: &str) -> String {
    format!(
        "{}={seed} cargo test -p distribkv-native --test faults -- --test-threads=1 --nocapture {test}",
        super::SEED_VARIABLE
    )
}

/// Environment variable: run the nemesis servers with their default timing
/// (heartbeat 100 ms, election timeout 500-1000 ms) instead of the harness's
/// fast one; the soak in docs/FAULTS.md does.
pub const DEFAULT_TIMING_VARIABLE: &str = "DISTRIBKV_FAULT_DEFAULT_TIMING";

/// Environment variable: `on` or `off` forces the servers' lease reads
/// (`server --lease-reads`); without it the seed decides, so that about
/// half of the runs serve reads from the leader's lease (and the replay
/// command of a seed reproduces its choice).
pub const LEASE_READS_VARIABLE: &str = "DISTRIBKV_FAULT_LEASE_READS";

/// Whether the servers of the run with `seed` serve lease reads.
pub fn lease_reads(seed: u64) -> bool {
    match std::env::var(LEASE_READS_VARIABLE).as_deref() {
        Ok("on") => true,
        Ok("off") => false,
        Ok(other) => panic!("{LEASE_READS_VARIABLE}={other:?}: expected on or off"),
        Err(_) => Rng::new(seed).fork(3000).next_u64() % 2 == 1,
    }
}

/// Environment variable: `on` or `off` forces the clients' follower reads
/// (`client --follower-reads`: any node serves a read, after a ReadIndex
/// round with its leader); without it the seed decides, so that about half
/// of the runs read at followers.
pub const FOLLOWER_READS_VARIABLE: &str = "DISTRIBKV_FAULT_FOLLOWER_READS";

/// Whether the clients of the run with `seed` read at followers, drawn from
/// the seed's generator `stream` (each scenario its own, so that the
/// choices of its older seeds stay as they were).
pub fn follower_reads(seed: u64, stream: u64) -> bool {
    match std::env::var(FOLLOWER_READS_VARIABLE).as_deref() {
        Ok("on") => true,
        Ok("off") => false,
        Ok(other) => panic!("{FOLLOWER_READS_VARIABLE}={other:?}: expected on or off"),
        Err(_) => Rng::new(seed).fork(stream).next_u64() % 2 == 1,
    }
}

/// What the servers of a nemesis run store their data on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The real file system: kill -9 keeps what was written (the page
    /// cache), and fsync is real.
    Real,
    /// The fault file system backed by the data folder
    /// (`--fault-power-cut any`): the nemesis also cuts the power of one
    /// node or of all of them, dropping, tearing or reordering what was
    /// not fsynced; kill -9 drops it.
    PowerCutModel,
}

/// Runs the nemesis test on `nodes` nodes with `clients` clients; panics
/// with the full story on any violation. `test` names the test function
/// (for the replay command).
pub fn nemesis_run(test: &str, nodes: usize, clients: usize, storage: Storage) {
    let Some(serial) = super::prepare() else {
        return;
    };
    let seed = super::seed();
    let duration = super::nemesis_duration();
    let root = Rng::new(seed);
    let mut plan_rng = root.fork(1000 + nodes as u64);
    let power_cuts = storage == Storage::PowerCutModel;
    let schedule = plan(&mut plan_rng, nodes, duration, power_cuts);
    let default_timing = std::env::var_os(DEFAULT_TIMING_VARIABLE).is_some();
    let lease_reads = lease_reads(seed);
    let reads_at_followers = follower_reads(seed, 3100);
    let check_quorum_ms = check_quorum_ms(default_timing);
    let header = format!(
        "fault test {test}: {nodes} nodes, {clients} clients, seed {seed}\n\
         storage: {storage:?}, reads: {}, {}, timing: {} (CheckQuorum {check_quorum_ms} ms)\nreplay: {}\nschedule:\n{}",
        if lease_reads {
            "lease (server --lease-reads)"
        } else {
            "ReadIndex"
        },
        if reads_at_followers {
            "at any node (client --follower-reads)"
        } else {
            "at the leader"
        },
        if default_timing {
            "the servers' defaults"
        } else {
            "fast (harness TIMING)"
        },
        replay_command(seed, test),
        render_plan(&schedule)
    );
    println!("{header}");
    let mut journal = Journal {
        header,
        timeline: Arc::new(Mutex::new(Vec::new())),
        done: false,
    };

    let started = Instant::now();
    let mut server_args = vec!["--snapshot-every", "200"];
    server_args.extend(METRICS_ARGS);
    let heartbeat = DEFAULT_HEARTBEAT_MS.to_string();
    let election = format!("{DEFAULT_ELECTION_MIN_MS}-{DEFAULT_ELECTION_MAX_MS}");
    if default_timing {
        server_args.extend([
            "--heartbeat-ms",
            &heartbeat,
            "--election-timeout-ms",
            &election,
        ]);
    }
    if power_cuts {
        server_args.extend(["--fault-power-cut", "any"]);
    }
    if lease_reads {
        server_args.push("--lease-reads");
    }
    let spares = replacements(&schedule);
    let mut cluster = super::start_cluster_with_spares(serial, nodes, spares, &server_args)
        .unwrap_or_else(|error| panic!("cannot set up the hosts: {error}"));
    println!(
        "hosts: {} in namespaces {}-*, clients in {}",
        cluster.hosts.subnet,
        cluster.hosts.bridge.trim_end_matches("-br"),
        cluster.hosts.clients.name
    );
    let first_leader = cluster
        .wait_for_leader(LEADER_LIMIT)
        .unwrap_or_else(|| panic!("no leader within {LEADER_LIMIT:?}"));
    println!(
        "leader {first_leader} after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let mut workload = start_clients(
        &cluster,
        clients,
        &root.fork(2000 + nodes as u64),
        Pace { max_think_ms: 20 },
        if reads_at_followers {
            &["--follower-reads"]
        } else {
            &[]
        },
    );
    let recorder = workload.recorder.clone();
    std::thread::sleep(SETTLE);

    let mut injected = Vec::new();
    let mut served = Served::default();
    for planned in &schedule {
        let Planned { fault, hold, quiet } = planned;
        let (description, at) = inject(&mut cluster, fault, &|| recorder.now())
            .unwrap_or_else(|error| panic!("cannot inject {fault}: {error}"));
        std::thread::sleep(*hold);
        cluster
            .hosts
            .heal()
            .unwrap_or_else(|error| panic!("cannot heal after {fault}: {error}"));
        cluster.restore_all();
        let healed = recorder.now();
        let line = format!(
            "  {:>7.2}s – {:>7.2}s  {description}",
            seconds(at),
            seconds(healed)
        );
        println!("{line}");
        journal.note(line);
        injected.push(Injected {
            fault: fault.clone(),
            description,
            started: at,
            healed,
        });
        std::thread::sleep(*quiet);
        served.look(&cluster);
    }
    std::thread::sleep(SETTLE);
    workload.stop();
    let stopped = recorder.now();
    served.look(&cluster);
    println!("{}", served.render());

    let mut findings = Vec::new();
    let converge_started = Instant::now();
    let converged = cluster.wait_converged(CONVERGE_LIMIT);
    let converge_time = converge_started.elapsed();
    match &converged {
        Ok(statuses) => {
            println!(
                "converged {:.1}s after the clients stopped:\n{}",
                converge_time.as_secs_f64(),
                render_statuses(statuses)
            );
            check_members(&cluster.current, statuses, &mut findings);
        }
        Err(error) => findings.push(format!("convergence: {error}")),
    }

    let mut final_client = cluster.client_command("client");
    final_client.arg("--json");
    let finals = read_final_values(&recorder, final_client, &mut findings);
    let operations = recorder.operations();
    check_history(&operations, &finals, &injected, &mut findings);
    served.check(reads_at_followers, &mut findings);

    let report = render_report(
        &operations,
        &recorder.endings(),
        &injected,
        stopped,
        converge_time,
        check_quorum_ms,
    );
    let relay = format!("relay: {}", cluster.hosts.relay().counts.render());
    let report = format!("{report}\n{relay}");
    if findings.is_empty() {
        journal.done = true;
        println!(
            "{report}\nall checks passed ({} nodes, seed {seed}) in {:.0}s",
            nodes,
            started.elapsed().as_secs_f64()
        );
    } else {
        // The message below carries the journal; Drop need not print it again.
        journal.done = true;
        panic!(
            "{}\n{report}\nFAILED ({} findings):\n{}",
            journal.render(),
            findings.len(),
            findings.join("\n")
        );
    }
}

/// After replacements: every member's latest configuration has exactly the
/// members the nemesis left (the removed ones gone, the added ones voters,
/// no learner left behind).
fn check_members(current: &[usize], statuses: &[StatusLine], findings: &mut Vec<String>) {
    let mut expected: Vec<u64> = current.iter().map(|&id| id as u64).collect();
    expected.sort_unstable();
    let before = findings.len();
    for status in statuses {
        let mut voters = status.voters.clone();
        voters.sort_unstable();
        if voters != expected || !status.learners.is_empty() {
            findings.push(format!(
                "members: node {} has voters {:?} and learners {:?}, expected voters {:?}",
                status.id, voters, status.learners, expected
            ));
        }
    }
    if findings.len() == before {
        println!("members: every node has voters {expected:?}");
    }
}

/// Reads every key once through a fresh client; the reads join the history
/// as client 0's. Returns the final values (missing keys left out).
pub fn read_final_values(
    recorder: &Recorder,
    command: std::process::Command,
    findings: &mut Vec<String>,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut client = ClientProcess::spawn(command);
    let mut finals = BTreeMap::new();
    let keys: std::collections::BTreeSet<Vec<u8>> = recorder
        .operations()
        .into_iter()
        .map(|operation| operation.key)
        .collect();
    for key in keys {
        let key = String::from_utf8(key).expect("the workload's keys are text");
        let id = recorder.invoke(0, &key, OpKind::Get);
        let answer = client.request(&format!("get {key}"), Duration::from_secs(30));
        match answer {
            Some(answer) if answer["ok"] == true => {
                let value = answer["value"].as_str().map(|v| v.as_bytes().to_vec());
                recorder.complete(id, value.clone());
                if let Some(value) = value {
                    finals.insert(key.as_bytes().to_vec(), value);
                }
            }
            other => {
                recorder.fail(id, Ending::Error);
                findings.push(format!("final read of {key} failed: {other:?}"));
            }
        }
    }
    finals
}

/// Runs checks 3 to 5 of the module documentation.
fn check_history(
    operations: &[Operation],
    finals: &BTreeMap<Vec<u8>, Vec<u8>>,
    injected: &[Injected],
    findings: &mut Vec<String>,
) {
    let checking = Instant::now();
    match check_linearizable(operations, Budget::default()) {
        Ok(linearizable) => println!(
            "linearizable: {} operations checked in {:.2}s ({} search steps)",
            operations.len(),
            checking.elapsed().as_secs_f64(),
            linearizable.steps
        ),
        Err(error) => findings.push(format!("linearizability: {error}")),
    }
    let options = AppendCheckOptions {
        reject_unexplained_text: true,
    };
    match check_appends(operations, finals, options) {
        Ok(()) => println!("appends: every acknowledged append present exactly once, none twice"),
        Err(error) => findings.push(format!("appends: {error}")),
    }
    for crash in injected.iter().filter(|i| i.fault.is_whole_cluster_down()) {
        let mut acknowledged = 0;
        let mut missing = Vec::new();
        for operation in operations {
            let (OpKind::Append(token), Outcome::Ok { completed_at, .. }) =
                (&operation.kind, &operation.outcome)
            else {
                continue;
            };
            if *completed_at >= crash.started || !is_append_only(&operation.key) {
                continue;
            }
            acknowledged += 1;
            let present = finals
                .get(&operation.key)
                .is_some_and(|value| contains(value, token));
            if !present {
                missing.push(operation.to_string());
            }
        }
        if missing.is_empty() {
            println!(
                "{} at {:.2}s: all {acknowledged} appends acknowledged before it are present",
                crash.fault.kind(),
                seconds(crash.started)
            );
        } else {
            findings.push(format!(
                "{} at {:.2}s: {} of {acknowledged} acknowledged appends lost:\n  {}",
                crash.fault.kind(),
                seconds(crash.started),
                missing.len(),
                missing.join("\n  ")
            ));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first acknowledged write invoked at or after `after` (µs): how long
/// after `after` it was acknowledged.
pub fn first_write_after(operations: &[Operation], after: u64) -> Option<u64> {
    operations
        .iter()
        .filter(|op| op.kind.is_write() && op.invoked_at >= after)
        .filter_map(|op| op.completed_at())
        .min()
        .map(|completed| completed - after)
}

/// The short report: operations and their outcomes, and per fault the
/// writes acknowledged while it lasted and how long until writes were
/// acknowledged again.
fn render_report(
    operations: &[Operation],
    endings: &[Option<Ending>],
    injected: &[Injected],
    stopped: u64,
    converge_time: Duration,
    check_quorum_ms: u64,
) -> String {
    let mut report = String::new();
    let count = |ending: Ending| endings.iter().filter(|e| **e == Some(ending)).count();
    let writes = operations.iter().filter(|op| op.kind.is_write()).count();
    let _ = writeln!(
        report,
        "operations: {} ({} writes, {} reads) over {:.0}s: {} ok, {} error answers (unknown), {} without answer (unknown)",
        operations.len(),
        writes,
        operations.len() - writes,
        seconds(stopped),
        count(Ending::Ok),
        count(Ending::Error),
        count(Ending::NoAnswer)
    );
    let _ = writeln!(
        report,
        "faults: {} injected; per fault: writes acknowledged while it lasted, first write acknowledged after it started (invoked after it started) and after it was healed",
        injected.len()
    );
    for fault in injected {
        let during = operations
            .iter()
            .filter(|op| op.kind.is_write())
            .filter_map(|op| op.completed_at())
            .filter(|&at| at >= fault.started && at <= fault.healed)
            .count();
        let show = |value: Option<u64>| {
            value.map_or("never".to_string(), |micros| {
                format!("{:.2}s", seconds(micros))
            })
        };
        let beyond = if beyond_the_timing(fault, check_quorum_ms) {
            format!(
                " [a round trip of at least CheckQuorum's {check_quorum_ms} ms: writes wait for the heal]"
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            report,
            "  {:>7.2}s +{:>4.1}s {:<15} {:>4} writes during; after start {:>6}; after heal {:>6}  ({}){beyond}",
            seconds(fault.started),
            seconds(fault.healed - fault.started),
            fault.fault.kind(),
            during,
            show(first_write_after(operations, fault.started)),
            show(first_write_after(operations, fault.healed)),
            fault.description
        );
    }
    let _ = writeln!(
        report,
        "{}",
        recovery_by_kind(operations, injected, check_quorum_ms)
    );
    let _ = write!(
        report,
        "convergence after the clients stopped: {:.1}s",
        converge_time.as_secs_f64()
    );
    report
}

/// How long a leader of the run's servers goes without hearing a majority
/// before CheckQuorum deposes it: the core's rule
/// ([`Config::check_quorum_timeout`](distribkv_core::raft::Config::check_quorum_timeout))
/// on the run's timing (700 ms on the harness's fast one, 1.2 s on the
/// servers' defaults).
pub fn check_quorum_ms(default_timing: bool) -> u64 {
    let mut config = distribkv_core::raft::Config::new(1, [1]);
    (config.heartbeat_interval, config.election_timeout_min) = if default_timing {
        (DEFAULT_HEARTBEAT_MS, DEFAULT_ELECTION_MIN_MS)
    } else {
        (FAST_HEARTBEAT_MS, FAST_ELECTION_MIN_MS)
    };
    config.check_quorum_timeout()
}

/// Whether `fault` slows every link so much that no write can commit
/// before the heal, whatever the servers do: the answers to the leader's
/// messages come back a round trip (two delays) late, at least
/// CheckQuorum's window, so the leader steps down; and every election
/// round then needs a round trip longer than the election timeout (the
/// harness's fast timing: 300–600 ms), so none finishes (Raft's timing
/// requirement, broadcast time well below the election timeout). Only 500
/// ms links on the fast timing (a 1 s round trip against 700 ms) are that
/// slow; on the servers' defaults (1.2 s) the leader rides them out. When
/// only the leader's links are slowed, it steps down the same way, but the
/// other nodes, between them at full speed, elect a new leader at once.
pub fn beyond_the_timing(fault: &Injected, check_quorum_ms: u64) -> bool {
    match fault.fault {
        Fault::SlowLinks {
            target: None,
            delay_ms,
            ..
        } => 2 * delay_ms >= check_quorum_ms,
        _ => false,
    }
}

/// Per kind of fault (a one-way fault on the leader apart from one on a
/// follower, slowed links beyond the timing apart from the others): how
/// many, and the median and worst time to the first write acknowledged
/// after it started and after it was healed.
fn recovery_by_kind(
    operations: &[Operation],
    injected: &[Injected],
    check_quorum_ms: u64,
) -> String {
    let mut kinds: BTreeMap<String, (Vec<u64>, Vec<u64>, usize)> = BTreeMap::new();
    for fault in injected {
        let mut label = fault.fault.kind().to_string();
        if let Fault::OneWay { deaf, .. } = fault.fault {
            label.push_str(if deaf {
                " (hears nobody)"
            } else {
                " (nobody hears)"
            });
        }
        if fault.description.contains("(the leader)") {
            label.push_str(", leader");
        }
        if beyond_the_timing(fault, check_quorum_ms) {
            label.push_str(", beyond the timing");
        }
        let entry = kinds.entry(label).or_default();
        entry.2 += 1;
        if let Some(after) = first_write_after(operations, fault.started) {
            entry.0.push(after);
        }
        if let Some(after) = first_write_after(operations, fault.healed) {
            entry.1.push(after);
        }
    }
    let show = |times: &mut Vec<u64>| {
        if times.is_empty() {
            return "-".to_string();
        }
        times.sort_unstable();
        format!(
            "{:.2}s / {:.2}s",
            seconds(times[times.len() / 2]),
            seconds(times[times.len() - 1])
        )
    };
    let mut text = String::from(
        "recovery per kind: faults, first write acknowledged after the start and after the heal (median / worst)",
    );
    for (label, (after_start, after_heal, count)) in &mut kinds {
        let _ = write!(
            text,
            "\n  {label:<34} {count:>4}   after start {:>15}   after heal {:>15}",
            show(after_start),
            show(after_heal)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::harness::TIMING;
    use super::super::nemesis::Target;
    use super::*;

    fn slowed(target: Option<Target>, delay_ms: u64, description: &str) -> Injected {
        Injected {
            fault: Fault::SlowLinks {
                target,
                delay_ms,
                jitter_ms: 0,
            },
            description: description.to_string(),
            started: 0,
            healed: 0,
        }
    }

    #[test]
    fn only_links_whose_round_trip_outlasts_check_quorum_are_beyond_the_timing() {
        // The numbers are the harness's timing flags and the servers' defaults.
        assert_eq!(TIMING[1], FAST_HEARTBEAT_MS.to_string());
        assert!(TIMING[3].starts_with(&format!("{FAST_ELECTION_MIN_MS}-")));
        let (fast, default) = (check_quorum_ms(false), check_quorum_ms(true));
        assert_eq!((fast, default), (700, 1200));

        let every = slowed(None, 500, "every link slow: 500 ms + up to 0 ms");
        assert!(beyond_the_timing(&every, fast));
        assert!(!beyond_the_timing(&every, default));
        let leaders = slowed(
            Some(Target::Leader),
            500,
            "links of node 2 (the leader) slow: 500 ms + up to 0 ms",
        );
        // The leader steps down, and the others elect one between them.
        assert!(!beyond_the_timing(&leaders, fast));
        // The leader still hears the other follower.
        let followers = slowed(
            Some(Target::Node(3)),
            500,
            "links of node 3 slow: 500 ms + up to 0 ms",
        );
        assert!(!beyond_the_timing(&followers, fast));
        // A 600 ms round trip stays inside 700 ms.
        let shorter = slowed(None, 300, "every link slow: 300 ms + up to 100 ms");
        assert!(!beyond_the_timing(&shorter, fast));
        let other = Injected {
            fault: Fault::CrashAll,
            ..every
        };
        assert!(!beyond_the_timing(&other, fast));
    }
}
