//! Recovery after each single fault that stops writes, with the servers'
//! default timing (heartbeat 100 ms, election timeout 500–1000 ms).
//!
//! Three clients write (and read) all the time while each fault below hits
//! the leader in turn, is held [`HOLD`], healed, and followed by
//! [`QUIET`]. From the recorded history, a fault's *recovery* is the time
//! from the fault being in place to the acknowledgement of the first write
//! invoked after that: how long a client that came along at the worst
//! moment waited. The goal is [`RECOVERY_GOAL`]; every recovery must stay
//! within it plus [`RECOVERY_MARGIN`] (a split vote costs one more
//! election timeout, and a loaded CI machine slows everything), and the
//! history must be linearizable. docs/FAULTS.md records the figures.
//!
//! `DISTRIBKV_RECOVERY_ROUNDS=N` runs the list N times (default 1) for the
//! median and worst figures; `DISTRIBKV_RECOVERY_ONLY=TEXT` keeps only the
//! faults whose description contains TEXT (for example `slow`, `hears
//! nobody`), to look at one kind with the servers' logs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use distribkv_core::check::{Budget, Operation, check_linearizable};
use distribkv_native::server::{
    DEFAULT_ELECTION_MAX_MS, DEFAULT_ELECTION_MIN_MS, DEFAULT_HEARTBEAT_MS,
};

use super::harness::history::start_clients;
use super::nemesis::{Fault, Target, inject};
use super::rng::Rng;
use super::scenario::{LEADER_LIMIT, first_write_after, replay_command};
use super::workload::Pace;

/// How long a single fault may stop writes for, with the default timing
/// (issue 12's goal; the figures in docs/FAULTS.md stay below it).
pub const RECOVERY_GOAL: Duration = Duration::from_secs(2);
/// What the test allows above the goal before it fails.
pub const RECOVERY_MARGIN: Duration = Duration::from_millis(500);
/// How long each fault is held: longer than any recovery.
const HOLD: Duration = Duration::from_millis(2500);
/// The pause after healing, before the next fault.
const QUIET: Duration = Duration::from_millis(1500);
/// Environment variable: how many times the list of faults runs.
const ROUNDS_VARIABLE: &str = "DISTRIBKV_RECOVERY_ROUNDS";
/// Environment variable: keep only the faults whose description contains it.
const ONLY_VARIABLE: &str = "DISTRIBKV_RECOVERY_ONLY";

/// The faults: each aimed at the leader (the ones that stop writes), then
/// every link slowed.
fn single_faults() -> Vec<Fault> {
    let leader = Target::Leader;
    vec![
        Fault::OneWay {
            target: leader,
            deaf: true,
        },
        Fault::OneWay {
            target: leader,
            deaf: false,
        },
        Fault::IsolateLeader,
        Fault::KillRestart { target: leader },
        Fault::Pause { target: leader },
        Fault::PowerCut { target: leader },
        Fault::CrashAll,
        Fault::PowerCutAll,
        // Every node-to-node link 500 ms slower each way (the clients'
        // links are not slowed): a write needs two slow traversals, leader
        // to follower and back, so 1 s is the floor; the leader must not
        // be deposed meanwhile (docs/FAULTS.md).
        Fault::SlowLinks {
            target: None,
            delay_ms: 500,
            jitter_ms: 0,
        },
    ]
}

/// How long every node stays down in an all-node crash or power cut (the
/// nemesis draws 0.3 to 1.5 s).
const WHOLE_CLUSTER_DOWN: Duration = Duration::from_millis(1000);
/// The pause after an all-node restart, before the next fault.
const WHOLE_CLUSTER_QUIET: Duration = Duration::from_millis(4000);

/// Wall-clock time of day, UTC, `HH:MM:SS.mmm`: what the servers' log lines
/// carry, to read a sample beside them.
fn wall_clock() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        since_epoch.subsec_millis()
    )
}

/// One fault as injected.
struct Sample {
    fault: String,
    description: String,
    /// Every link slowed: writes go on, only slower (see [`first_write_wait`]).
    slowed: bool,
    /// When it was in place (an all-node fault: when every node had been
    /// restarted), µs of the history.
    at: u64,
    /// The same moment on the wall clock, UTC (see [`wall_clock`]).
    wall: String,
}

/// Slowed links stop no write: each write just takes longer (two slow
/// traversals, leader to follower and back). What a client that came along
/// then waits is the wait of the first write invoked after the links
/// slowed, from its own invocation, µs. Counting from the fault instead
/// would add the time until one of the test's three clients was free to
/// invoke a write: each was busy with an operation the slow links had
/// slowed too (a read's heartbeat round, or a write sent just before),
/// which stretched that figure to 1.5 to 2.5 s where every write took 1 s.
fn first_write_wait(operations: &[Operation], after: u64) -> Option<u64> {
    operations
        .iter()
        .filter(|op| op.kind.is_write() && op.invoked_at >= after)
        .min_by_key(|op| op.invoked_at)
        .and_then(|op| Some(op.completed_at()? - op.invoked_at))
}

/// See the module documentation.
pub fn recovery_after_single_faults(test: &str) {
    let Some(serial) = super::prepare() else {
        return;
    };
    let seed = super::seed();
    let rounds: usize = std::env::var(ROUNDS_VARIABLE)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1);
    let only = std::env::var(ONLY_VARIABLE)
        .ok()
        .filter(|text| !text.is_empty());
    println!(
        "{test}: seed {seed}, {rounds} round(s), replay: {}",
        replay_command(seed, test)
    );
    let heartbeat = DEFAULT_HEARTBEAT_MS.to_string();
    let election = format!("{DEFAULT_ELECTION_MIN_MS}-{DEFAULT_ELECTION_MAX_MS}");
    let args = [
        "--heartbeat-ms",
        &heartbeat,
        "--election-timeout-ms",
        &election,
        "--fault-power-cut",
        "any",
    ];
    let mut cluster = super::start_cluster(serial, 3, &args)
        .unwrap_or_else(|error| panic!("cannot set up the hosts: {error}"));
    cluster
        .wait_for_leader(LEADER_LIMIT)
        .unwrap_or_else(|| panic!("no leader within {LEADER_LIMIT:?}"));

    let mut workload = start_clients(
        &cluster,
        3,
        &Rng::new(seed).fork(4000),
        Pace { max_think_ms: 5 },
        &[],
    );
    let recorder = workload.recorder.clone();
    std::thread::sleep(Duration::from_secs(1));

    let started = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let faults = single_faults().into_iter().filter(|fault| {
            only.as_ref()
                .is_none_or(|text| fault.to_string().contains(text.as_str()))
        });
        for fault in faults {
            cluster
                .wait_for_leader(LEADER_LIMIT)
                .unwrap_or_else(|| panic!("no leader before {fault}"));
            let (description, injected_at) = inject(&mut cluster, &fault, &|| recorder.now())
                .unwrap_or_else(|error| panic!("cannot inject {fault}: {error}"));
            let whole_cluster = fault.is_whole_cluster_down();
            let mut wall = wall_clock();
            std::thread::sleep(if whole_cluster {
                WHOLE_CLUSTER_DOWN
            } else {
                HOLD
            });
            cluster
                .hosts
                .heal()
                .unwrap_or_else(|error| panic!("cannot heal after {fault}: {error}"));
            // Every node down: writes cannot resume before the restart, so
            // recovery counts from there.
            let restart_wall = wall_clock();
            cluster.restore_all();
            let (description, at) = if whole_cluster {
                wall = restart_wall;
                (format!("{description}, restarted all"), recorder.now())
            } else {
                (description, injected_at)
            };
            samples.push(Sample {
                fault: fault.to_string(),
                description,
                slowed: matches!(fault, Fault::SlowLinks { .. }),
                at,
                wall,
            });
            std::thread::sleep(if whole_cluster {
                WHOLE_CLUSTER_QUIET
            } else {
                QUIET
            });
        }
    }
    workload.stop();
    let operations = recorder.operations();

    let mut findings = Vec::new();
    if let Err(error) = check_linearizable(&operations, Budget::default()) {
        findings.push(format!("linearizability: {error}"));
    }
    let mut by_fault: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut over_goal = 0;
    for sample in &samples {
        let recovery = if sample.slowed {
            first_write_wait(&operations, sample.at)
        } else {
            first_write_after(&operations, sample.at)
        }
        .map(Duration::from_micros);
        println!(
            "  {:>7.2}s  {}  {:<70} {} {}",
            sample.at as f64 / 1e6,
            sample.wall,
            sample.description,
            if sample.slowed {
                "the first write invoked then waited"
            } else {
                "first write acknowledged after"
            },
            recovery.map_or("never".into(), |r| format!("{:.2}s", r.as_secs_f64()))
        );
        match recovery {
            Some(recovery) if recovery <= RECOVERY_GOAL => {}
            Some(recovery) if recovery <= RECOVERY_GOAL + RECOVERY_MARGIN => {
                println!("  (over the {RECOVERY_GOAL:?} goal, within the margin)");
                over_goal += 1;
            }
            other => findings.push(format!(
                "{} at {:.2}s: writes stopped for {} (goal {RECOVERY_GOAL:?}, margin {RECOVERY_MARGIN:?})",
                sample.description,
                sample.at as f64 / 1e6,
                other.map_or("ever".into(), |r| format!("{:.2}s", r.as_secs_f64()))
            )),
        }
        if let Some(recovery) = recovery {
            by_fault.entry(&sample.fault).or_default().push(recovery);
        }
    }
    let mut table = String::from("recovery to the first acknowledged write (median / worst):");
    for (fault, times) in &mut by_fault {
        times.sort();
        table.push_str(&format!(
            "\n  {fault:<28} {:.2}s / {:.2}s ({} samples)",
            times[times.len() / 2].as_secs_f64(),
            times[times.len() - 1].as_secs_f64(),
            times.len()
        ));
    }
    println!("{table}");
    if findings.is_empty() {
        println!(
            "{test}: {} faults, {over_goal} over the {RECOVERY_GOAL:?} goal, none over it by more than {RECOVERY_MARGIN:?}; {} operations linearizable ({:.0}s)",
            samples.len(),
            operations.len(),
            started.elapsed().as_secs_f64()
        );
    } else {
        panic!(
            "{test} FAILED (seed {seed}; replay: {}):\n{table}\n{}",
            replay_command(seed, test),
            findings.join("\n")
        );
    }
}
