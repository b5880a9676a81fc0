//! Scenarios aimed at one property each, and the measured recovery figures.
//!
//! - [`crash_right_after_acknowledgements`]: bursts of acknowledged appends,
//!   each followed at once by kill -9 of every node while the cluster is
//!   idle: a node that acknowledged a write it still held in memory loses
//!   it, and the check finds it missing. The nemesis's all-nodes crash hits
//!   a cluster that is always busy, where the next write often flushes the
//!   previous one before the crash; this scenario leaves no such luck.
//! - [`recovery_figures`]: time from isolating the leader to a new leader
//!   serving writes, and time for a restarted node to catch up a 10,000-entry
//!   log.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use distribkv_core::check::{AppendCheckOptions, OpKind, check_appends};

use super::NsCluster;
use super::harness::ClientProcess;
use super::harness::status::render_statuses;
use super::rng::Rng;
use super::scenario::{LEADER_LIMIT, read_final_values, replay_command};
use super::workload::{Ending, Recorder};

/// Rounds of "burst of appends, then kill -9 every node".
const CRASH_ROUNDS: usize = 5;
/// Concurrent clients in each burst.
const BURST_CLIENTS: u64 = 3;

/// How every node goes down in [`crash_right_after_acknowledgements`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// kill -9 on the real file system: what was written survives.
    Kill9,
    /// A power cut of `--fault-power-cut any` servers: what was not fsynced
    /// is dropped, torn or kept in part, in a mode drawn per node and cut.
    PowerCut,
}

/// See the module documentation. Panics with every lost append.
pub fn crash_right_after_acknowledgements(test: &str, crash: Crash) {
    let Some(serial) = super::prepare() else {
        return;
    };
    let seed = super::seed();
    let mut rng = Rng::new(seed).fork(3000);
    println!(
        "{test}: seed {seed}, replay: {}",
        replay_command(seed, test)
    );
    let server_args: &[&str] = match crash {
        Crash::Kill9 => &[],
        Crash::PowerCut => &["--fault-power-cut", "any"],
    };
    let mut cluster = super::start_cluster(serial, 3, server_args)
        .unwrap_or_else(|error| panic!("cannot set up the hosts: {error}"));
    let recorder = Recorder::new();
    let key = "crash";
    let mut findings = Vec::new();
    let mut acknowledged_total = 0;
    for round in 1..=CRASH_ROUNDS {
        cluster
            .wait_for_leader(LEADER_LIMIT)
            .unwrap_or_else(|| panic!("round {round}: no leader within {LEADER_LIMIT:?}"));
        let burst = rng.between(10, 40);
        let acknowledged = std::thread::scope(|scope| {
            let workers: Vec<_> = (1..=BURST_CLIENTS)
                .map(|client| {
                    let recorder = &recorder;
                    let command = cluster.client_command("client");
                    scope.spawn(move || {
                        let mut command = command;
                        command.arg("--json");
                        let mut process = ClientProcess::spawn(command);
                        let mut acknowledged = 0;
                        for i in 1..=burst {
                            let token = format!("[r{round}.c{client}.{i}]");
                            let id =
                                recorder.invoke(client, key, OpKind::Append(token.clone().into()));
                            let answer = process
                                .request(&format!("append {key} {token}"), Duration::from_secs(20));
                            match answer {
                                Some(answer) if answer["ok"] == true => {
                                    recorder.complete(id, None);
                                    acknowledged += 1;
                                }
                                Some(_) => recorder.fail(id, Ending::Error),
                                None => {
                                    recorder.fail(id, Ending::NoAnswer);
                                    break;
                                }
                            }
                        }
                        acknowledged
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(0))
                .sum::<u64>()
        });
        acknowledged_total += acknowledged;
        // Every node dies within milliseconds of the last acknowledgement.
        let pause = rng.below(20);
        std::thread::sleep(Duration::from_millis(pause));
        let how = match crash {
            Crash::Kill9 => {
                cluster.kill_all();
                "killed"
            }
            Crash::PowerCut => {
                cluster.power_cut_all();
                "powered off"
            }
        };
        println!(
            "round {round}: {acknowledged} appends acknowledged, every node {how} {pause} ms after the last"
        );
        for id in 1..=cluster.size() {
            cluster.spawn(id);
        }
    }
    cluster
        .wait_for_leader(LEADER_LIMIT)
        .unwrap_or_else(|| panic!("no leader after the last crash within {LEADER_LIMIT:?}"));
    let mut reader = cluster.client_command("client");
    reader.arg("--json");
    let finals = read_final_values(&recorder, reader, &mut findings);
    let options = AppendCheckOptions {
        reject_unexplained_text: true,
    };
    if let Err(error) = check_appends(&recorder.operations(), &finals, options) {
        findings.push(error.to_string());
    }
    if findings.is_empty() {
        println!(
            "{test}: all {acknowledged_total} acknowledged appends survived {CRASH_ROUNDS} crashes ({crash:?}) of every node"
        );
    } else {
        panic!(
            "{test} FAILED (seed {seed}; replay: {}): {acknowledged_total} appends acknowledged over {CRASH_ROUNDS} crashes of every node\n{}",
            replay_command(seed, test),
            findings.join("\n")
        );
    }
}

/// A summary of durations: `min / median / max (n samples)`.
fn summary(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort();
    format!(
        "min {:.2}s, median {:.2}s, max {:.2}s ({} samples)",
        samples[0].as_secs_f64(),
        samples[samples.len() / 2].as_secs_f64(),
        samples[samples.len() - 1].as_secs_f64(),
        samples.len()
    )
}

/// Rounds of leader isolation.
const ISOLATION_ROUNDS: usize = 7;
/// Entries written while a node is down, for the catch-up figure.
const CATCH_UP_ENTRIES: usize = 10_000;
/// Writers for those entries.
const CATCH_UP_WRITERS: usize = 8;

/// Measures and prints the recovery figures; panics only if the cluster
/// does not recover at all within generous bounds.
pub fn recovery_figures(test: &str) {
    let Some(serial) = super::prepare() else {
        return;
    };
    // No snapshots: the catch-up figure is about replicating a log.
    let mut cluster = super::start_cluster(serial, 3, &["--snapshot-every", "0"])
        .unwrap_or_else(|error| panic!("cannot set up the hosts: {error}"));

    // 1. Isolate the leader; time until a write invoked after that is
    // acknowledged, and until a majority knows a new leader.
    let (answers_tx, answers) = channel::<(Instant, Instant)>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let mut command = cluster.client_command("client");
        command.arg("--json");
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut process = ClientProcess::spawn(command);
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let invoked = Instant::now();
                if !process.send(&format!("put isolation {i}")) {
                    break;
                }
                if let Some(answer) = process.answer(Duration::from_secs(20))
                    && answer["ok"] == true
                {
                    let _ = answers_tx.send((invoked, Instant::now()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut to_write = Vec::new();
    let mut to_leader = Vec::new();
    for round in 1..=ISOLATION_ROUNDS {
        let leader = cluster
            .wait_for_leader(LEADER_LIMIT)
            .unwrap_or_else(|| panic!("round {round}: no leader"));
        std::thread::sleep(Duration::from_millis(500));
        let others: Vec<usize> = (1..=cluster.size()).filter(|&id| id != leader).collect();
        while answers.try_recv().is_ok() {}
        cluster
            .hosts
            .cut_between(&[leader], &others)
            .unwrap_or_else(|e| panic!("{e}"));
        // From the moment every rule is in place (the first one already
        // deafens the leader, so this errs towards shorter figures by the
        // few milliseconds the others take).
        let isolated = Instant::now();
        let mut elected = None;
        let mut served = None;
        while served.is_none() || elected.is_none() {
            assert!(
                isolated.elapsed() < Duration::from_secs(30),
                "round {round}: no new leader serving writes within 30 s"
            );
            if elected.is_none() {
                let statuses = cluster.status();
                if cluster
                    .agreed_leader(&statuses)
                    .is_some_and(|new| new != leader)
                {
                    elected = Some(isolated.elapsed());
                }
            }
            while let Ok((invoked, acknowledged)) = answers.try_recv() {
                if invoked >= isolated && served.is_none() {
                    served = Some(acknowledged - isolated);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let (elected, served) = (elected.unwrap(), served.unwrap());
        println!(
            "isolation round {round}: leader {leader} isolated; a new leader known to a majority after {:.2}s, first write acknowledged after {:.2}s",
            elected.as_secs_f64(),
            served.as_secs_f64()
        );
        to_leader.push(elected);
        to_write.push(served);
        cluster.hosts.heal().unwrap_or_else(|e| panic!("{e}"));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = writer.join();

    // 2. A node misses CATCH_UP_ENTRIES entries, then restarts.
    let leader = cluster.wait_for_leader(LEADER_LIMIT).expect("a leader");
    let behind = if leader == 1 { 2 } else { 1 };
    cluster.kill(behind);
    let writing = Instant::now();
    let per_writer = CATCH_UP_ENTRIES / CATCH_UP_WRITERS;
    let writers: Vec<_> = (0..CATCH_UP_WRITERS)
        .map(|w| {
            let mut command = cluster.client_command("client");
            command
                .arg("--json")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            std::thread::spawn(move || {
                let mut child = command.spawn().expect("a client");
                let mut input = child.stdin.take().expect("piped");
                let mut script = String::new();
                for i in 0..per_writer {
                    script.push_str(&format!("put w{w}.{} {i}\n", i % 50));
                }
                input.write_all(script.as_bytes()).expect("the script");
                drop(input);
                let output = child.wait_with_output().expect("the answers");
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .filter(|l| l.contains("\"ok\":true"))
                    .count()
            })
        })
        .collect();
    let written: usize = writers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let write_time = writing.elapsed();
    let statuses = cluster.status();
    let target = statuses
        .iter()
        .map(|s| s.commit_index)
        .max()
        .expect("statuses");
    println!(
        "{written} puts acknowledged in {:.1}s while node {behind} was down; commit index {target}",
        write_time.as_secs_f64()
    );
    assert!(
        written >= CATCH_UP_ENTRIES * 99 / 100,
        "only {written} puts acknowledged"
    );
    let catch_up = time_until_applied(&mut cluster, behind, target);
    println!(
        "node {behind} restarted: serving after {:.2}s, applied up to {target} after {:.2}s (log replication, no snapshot; status polls of {:.2}s)",
        catch_up.serving.as_secs_f64(),
        catch_up.applied.as_secs_f64(),
        catch_up.poll.as_secs_f64()
    );
    // 3. The same node restarts on its own full log.
    cluster.kill(behind);
    let replay = time_until_applied(&mut cluster, behind, target);
    println!(
        "node {behind} restarted on its own {target}-entry log: serving after {:.2}s, applied it all after {:.2}s",
        replay.serving.as_secs_f64(),
        replay.applied.as_secs_f64()
    );
    println!(
        "{test} figures (status polls take {:.2}s, which bounds their resolution):\n  \
         leader isolated -> new leader known to a majority: {}\n  \
         leader isolated -> first write acknowledged: {}\n  \
         node restarted after missing {written} entries -> serving {:.2}s, caught up {:.2}s\n  \
         node restarted on its own {target}-entry log -> serving {:.2}s, all applied {:.2}s",
        catch_up.poll.as_secs_f64(),
        summary(&mut to_leader),
        summary(&mut to_write),
        catch_up.serving.as_secs_f64(),
        catch_up.applied.as_secs_f64(),
        replay.serving.as_secs_f64(),
        replay.applied.as_secs_f64()
    );
}

/// How long a restarted node took.
struct Restart {
    /// From spawn to "serving" in its log (recovery from its own disk).
    serving: Duration,
    /// From spawn to `applied >= index` in its status.
    applied: Duration,
    /// How long one status poll took, on average.
    poll: Duration,
}

/// Starts node `id` and times it: until it logs "serving", and until it
/// reports `applied >= index`. The status polls only start once it serves:
/// a QUIC handshake begun before its socket exists waits a whole
/// retransmission timeout (about 1 s), which would swamp the figure.
fn time_until_applied(cluster: &mut NsCluster, id: usize, index: u64) -> Restart {
    let log = cluster.nodes[id - 1].log.clone();
    let offset = std::fs::metadata(&log).map_or(0, |m| m.len()) as usize;
    let started = Instant::now();
    cluster.spawn(id);
    let serving = loop {
        let text = std::fs::read(&log).unwrap_or_default();
        if text.len() > offset && String::from_utf8_lossy(&text[offset..]).contains(" serving ") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node {id} did not serve within 60 s:\n{}",
            cluster.log_tail(id, 20)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut polls = Vec::new();
    loop {
        let poll = Instant::now();
        let statuses = cluster.status();
        polls.push(poll.elapsed());
        if statuses
            .iter()
            .any(|s| s.id == id as u64 && s.applied_index >= index)
        {
            return Restart {
                serving,
                applied: started.elapsed(),
                poll: polls.iter().sum::<Duration>() / polls.len() as u32,
            };
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "node {id} did not apply {index} within 120 s:\n{}",
            render_statuses(&statuses)
        );
    }
}
