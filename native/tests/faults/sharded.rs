//! The sharded scenario: a sharded cluster across namespaces (3 hosts,
//! each holding the controller and shard groups 1, 2 and 3; 8 shards)
//! under partitions and kills injected while shards move.
//!
//! Each round of the seeded schedule starts a change of the configuration
//! (a move of one of the workload's shards to another group, or group 3
//! joining or leaving, which moves several), then at once a fault: kill -9
//! of the host leading the group that hands the shard over, or of another
//! host, or a partition that isolates one of them from the other hosts
//! (the clients still reach every host). The fault is held 2 to 4 s, then
//! healed (killed hosts restart on their data folders), and the next round
//! follows after a pause. Meanwhile clients run the fault suite's workload
//! (appends, puts, deletes and gets on keys spread over the shards), in
//! half of the seeds with follower reads (`client --follower-reads`). In
//! about half of the rounds a backup (`snapshot save`) is taken while the
//! fault is held; its keys are read into the history ([`super::backups`]).
//!
//! Checks, after the last fault is healed: every move finishes and every
//! group knows a leader within [`SETTLE_LIMIT`]; once the clients stop,
//! each group's replicas converge (one leader, the same applied index and
//! key count on every host); the final
//! value of every key is read; the history is linearizable per key, every
//! acknowledged append is in its key's final value exactly once, across
//! every move.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use distribkv_core::shard::shard_of;
use distribkv_native::cli::shard::{ShardStatusLine, ShowJson};

use super::NsCluster;
use super::backups::Backups;
use super::harness::history::{acknowledged, check_history, read_finals, start_clients};
use super::harness::{BINARY, THREE_GROUPS_OF_8_SHARDS, stdout};
use super::net::Network;
use super::rng::Rng;
use super::scenario::{follower_reads, replay_command};
use super::served::{METRICS_ARGS, Served};
use super::workload::{APPEND_KEYS, Ending, MIXED_KEYS, Pace};

/// Shards of the cluster.
const SHARDS: u32 = 8;
/// The shard groups every host holds.
const GROUPS: [u64; 3] = [1, 2, 3];
/// How long the faults go on by default (`DISTRIBKV_FAULT_SOAK_SECS`
/// overrides it, as for the other nemesis runs).
const DEFAULT_NEMESIS: Duration = Duration::from_secs(35);

/// How long after group 3 left the next rounds usually join it again:
/// before the servers retire it (`server --retire-after-ms`, 10 s by
/// default, counted from when it has handed every shard over).
const REJOIN_WITHIN: Duration = Duration::from_secs(7);
/// How long moves may take to finish, and groups to agree, after healing.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// How long one `shard` command may run before it is given up.
const SHARD_COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// `distribkv-native shard VERB --cluster .. --certs .. ARGS` on the
/// clients' host.
fn shard_command(cluster: &NsCluster, verb: &str, args: &[&str]) -> Command {
    let mut command = Network::command_in(&cluster.hosts.clients, BINARY);
    command
        .args(["shard", verb, "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .args(args)
        .stdin(Stdio::null());
    command
}

/// `shard show --json`, if some host answers.
fn show(cluster: &NsCluster) -> Option<ShowJson> {
    let output = shard_command(cluster, "show", &["--json"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    serde_json::from_str(stdout(&output).trim()).ok()
}

/// `status --json` of every host that answers: one line per host and group.
fn statuses(cluster: &NsCluster) -> Vec<ShardStatusLine> {
    let Ok(output) = cluster
        .client_command("status")
        .arg("--json")
        .stdin(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    stdout(&output)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Runs a `shard` command that must succeed (with retries: a command
/// refused while an election is under way is tried again).
fn shard_ok(cluster: &NsCluster, verb: &str, args: &[&str]) {
    let started = Instant::now();
    loop {
        let output = shard_command(cluster, verb, args).output().unwrap();
        if output.status.success() {
            return;
        }
        assert!(
            started.elapsed() < SHARD_COMMAND_LIMIT,
            "shard {verb} {args:?}: {output:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits for a `shard` command started in the background, killing it
/// after [`SHARD_COMMAND_LIMIT`]; whether it printed `OK`.
fn finish(mut child: Child, started: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < SHARD_COMMAND_LIMIT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Every shard owned, nothing moving, every group's leader known.
fn settled(show: &ShowJson) -> bool {
    show.moving.is_empty()
        && show.shards.iter().all(|g| *g != 0)
        && show.groups.iter().all(|g| g.leader.is_some())
}

/// Every group's replicas agree: three hosts answer for it, one leader,
/// the same applied index and the same number of keys (a group out of the
/// configuration `config` may instead be gone from every host: retired).
fn converged(lines: &[ShardStatusLine], config: Option<&ShowJson>) -> Result<(), String> {
    for group in std::iter::once(0).chain(GROUPS) {
        let replicas: Vec<&ShardStatusLine> = lines.iter().filter(|l| l.group == group).collect();
        // A group that left and was retired is gone from every host.
        let configured =
            group == 0 || config.is_none_or(|c| c.groups.iter().any(|g| g.group == group));
        if replicas.is_empty() && !configured {
            continue;
        }
        if replicas.len() != 3 {
            return Err(format!("group {group}: {} replicas answer", replicas.len()));
        }
        let leaders: BTreeSet<_> = replicas.iter().map(|l| l.leader).collect();
        let applied: BTreeSet<_> = replicas.iter().map(|l| l.applied_index).collect();
        let keys: BTreeSet<_> = replicas.iter().map(|l| l.keys).collect();
        if leaders.len() != 1 || leaders.contains(&None) {
            return Err(format!("group {group}: leaders {leaders:?}"));
        }
        if applied.len() != 1 || keys.len() != 1 {
            return Err(format!(
                "group {group}: applied indexes {applied:?}, key counts {keys:?}"
            ));
        }
    }
    Ok(())
}

/// The shards the workload's keys fall in (its first two minutes).
fn workload_shards() -> Vec<u32> {
    let mut keys: Vec<String> = MIXED_KEYS.iter().map(|k| k.to_string()).collect();
    for epoch in 0..2 {
        keys.extend(APPEND_KEYS.iter().map(|k| format!("{k}.{epoch}")));
    }
    let shards: BTreeSet<u32> = keys
        .iter()
        .map(|k| shard_of(k.as_bytes(), SHARDS))
        .collect();
    shards.into_iter().collect()
}

/// One fault of a round.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// kill -9 the host leading the group that hands the shard over.
    KillSender,
    /// kill -9 another host.
    KillOther,
    /// Isolate the sending group's leader from the other hosts.
    IsolateSender,
    /// Isolate another host.
    IsolateOther,
}

/// Runs the sharded scenario; panics with the seed, the rounds and every
/// finding on a violation.
pub fn sharded_run(test: &str) {
    let Some(serial) = super::prepare() else {
        return;
    };
    let seed = super::seed();
    let duration = match std::env::var(super::SOAK_VARIABLE) {
        Ok(_) => super::nemesis_duration(),
        Err(_) => DEFAULT_NEMESIS,
    };
    let reads_at_followers = follower_reads(seed, 4000);
    println!(
        "fault test {test}: 3 hosts, groups {GROUPS:?} and the controller on each, {SHARDS} shards, \
         4 clients, seed {seed}, reads {}\nreplay: {}",
        if reads_at_followers {
            "at followers (client --follower-reads)"
        } else {
            "at the leaders"
        },
        replay_command(seed, test)
    );
    let started = Instant::now();
    let mut cluster = super::start_cluster(
        serial,
        3,
        &[
            &THREE_GROUPS_OF_8_SHARDS[..],
            &["--snapshot-every", "200"],
            &METRICS_ARGS,
        ]
        .concat(),
    )
    .unwrap_or_else(|error| panic!("cannot set up the hosts: {error}"));
    shard_ok(&cluster, "join", &["1", "1,2,3"]);
    shard_ok(&cluster, "join", &["2", "1,2,3"]);
    wait_settled(&cluster, "two groups settled at the start");
    // Spread the leaders (best effort: a transfer may race an election).
    for (group, host) in [("1", "2"), ("2", "3")] {
        let _ = shard_command(&cluster, "leader", &[group, host]).output();
    }
    println!(
        "cluster ready after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let root = Rng::new(seed);
    let mut workload = start_clients(
        &cluster,
        4,
        &root.fork(4100),
        Pace { max_think_ms: 20 },
        if reads_at_followers {
            &["--follower-reads"]
        } else {
            &[]
        },
    );
    let recorder = workload.recorder.clone();
    std::thread::sleep(Duration::from_secs(2));

    let mut rng = root.fork(4200);
    let shards = workload_shards();
    let mut joined: BTreeSet<u64> = BTreeSet::from([1, 2]);
    // When group 3 last left: while it is out for less than REJOIN_WITHIN,
    // four rounds in five join it again, so joins and leaves
    // go on for the whole of a long run; a group that stays out longer is
    // retired (and later joins refused), which a run also covers.
    let mut left_at: Option<Instant> = None;
    let mut rounds = Vec::new();
    let mut served = Served::default();
    // Backups during the faults, drawn from a stream of their own (the
    // schedule of changes and faults is the same with or without them).
    let mut backup_rng = root.fork(4300);
    let mut backups = Backups::new();
    let nemesis_started = Instant::now();
    while nemesis_started.elapsed() < duration {
        let at = recorder.now() as f64 / 1e6;
        let before = show(&cluster);
        // The change: usually a move of a workload shard; sometimes group 3
        // joins or leaves (several shards move at once).
        let rejoin = left_at.is_some_and(|at| at.elapsed() < REJOIN_WITHIN);
        let draw = match rng.below(5) {
            4 if rejoin => 4,
            _ if rejoin => 0,
            draw => draw,
        };
        let (verb, args, sender): (&str, Vec<String>, Option<u64>) = match (&before, draw) {
            (Some(_), 0) if !joined.contains(&3) => {
                ("join", vec!["3".into(), "1,2,3".into()], None)
            }
            (Some(_), 0) => ("leave", vec!["3".into()], Some(3)),
            (Some(config), _) => {
                let shard = shards[rng.below(shards.len() as u64) as usize];
                let owner = config.shards[shard as usize];
                let others: Vec<u64> = joined.iter().copied().filter(|g| *g != owner).collect();
                let target = others[rng.below(others.len() as u64) as usize];
                (
                    "move",
                    vec![shard.to_string(), target.to_string()],
                    Some(owner),
                )
            }
            (None, _) => ("show", vec![], None),
        };
        let sender_leader = before.as_ref().and_then(|config| {
            let group = sender.unwrap_or(1);
            config
                .groups
                .iter()
                .find(|g| g.group == group)
                .and_then(|g| g.leader)
                .map(|l| l as usize)
        });
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let change_started = Instant::now();
        let change = shard_command(&cluster, verb, &arg_refs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        let fault = match rng.below(4) {
            0 => Fault::KillSender,
            1 => Fault::KillOther,
            2 => Fault::IsolateSender,
            _ => Fault::IsolateOther,
        };
        let sender_host = sender_leader.unwrap_or(1 + rng.below(3) as usize);
        let other = loop {
            let host = 1 + rng.below(3) as usize;
            if host != sender_host {
                break host;
            }
        };
        let victim = match fault {
            Fault::KillSender | Fault::IsolateSender => sender_host,
            Fault::KillOther | Fault::IsolateOther => other,
        };
        let killed = matches!(fault, Fault::KillSender | Fault::KillOther);
        if killed {
            cluster.kill(victim);
        } else {
            let rest: Vec<usize> = (1..=3).filter(|h| *h != victim).collect();
            cluster
                .hosts
                .cut_between(&[victim], &rest)
                .unwrap_or_else(|error| panic!("cannot partition: {error}"));
        }
        let backup = backup_rng
            .chance(0.5)
            .then(|| backups.start(&cluster, &recorder));
        let hold = Duration::from_millis(2_000 + rng.below(2_000));
        let ok = finish(change, change_started);
        if ok && verb == "join" {
            joined.insert(3);
            left_at = None;
        }
        if ok && verb == "leave" {
            joined.remove(&3);
            left_at = Some(change_started);
        }
        std::thread::sleep(hold.saturating_sub(change_started.elapsed()));
        cluster
            .hosts
            .heal()
            .unwrap_or_else(|error| panic!("cannot heal: {error}"));
        cluster.restore_all();
        let saved = backup.map(|pending| backups.finish(pending, &recorder));
        let line = format!(
            "  {at:>6.2}s – {:>6.2}s  {verb} {} ({}), then {} host {victim}{}{}",
            recorder.now() as f64 / 1e6,
            args.join(" "),
            if ok { "OK" } else { "not confirmed" },
            if killed { "kill -9 of" } else { "isolated" },
            match (fault, sender_leader) {
                (Fault::KillSender | Fault::IsolateSender, Some(_)) => {
                    " (the sending group's leader)"
                }
                _ => "",
            },
            saved.map(|s| format!("; {s}")).unwrap_or_default()
        );
        println!("{line}");
        rounds.push(line);
        std::thread::sleep(Duration::from_millis(800 + rng.below(1_200)));
        served.look(&cluster);
    }

    // Healed: the moves finish, the groups converge, the clients go on a
    // little, then the final reads and the checks.
    let story = || format!("seed {seed}\nrounds:\n{}", rounds.join("\n"));
    wait_settled(&cluster, "every move finished after healing");
    std::thread::sleep(Duration::from_secs(2));
    workload.stop();
    served.look(&cluster);
    println!("{}", served.render());
    println!("{}", backups.render());
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        match converged(&statuses(&cluster), show(&cluster).as_ref()) {
            Ok(()) => break,
            Err(why) if Instant::now() >= deadline => {
                panic!("the groups did not converge: {why}\n{}", story())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    let final_config = show(&cluster).expect("shard show after healing");
    let finals =
        read_finals(&cluster, &recorder).unwrap_or_else(|error| panic!("{error}\n{}", story()));
    let operations = recorder.operations();
    let endings = recorder.endings();
    let acknowledged = acknowledged(&operations);
    let unknown = endings
        .iter()
        .filter(|e| matches!(e, Some(Ending::Error | Ending::NoAnswer)))
        .count();
    println!(
        "{} operations, {acknowledged} acknowledged, {unknown} unknown; configuration {} \
         (groups {:?}), {} rounds; {:.1}s in all",
        operations.len(),
        final_config.num,
        final_config
            .groups
            .iter()
            .map(|g| (g.group, g.shards.len()))
            .collect::<Vec<_>>(),
        rounds.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        acknowledged >= 100,
        "only {acknowledged} operations acknowledged\n{}",
        story()
    );
    assert!(
        final_config.num >= 2 + rounds.len() as u64 / 3,
        "too few configurations took effect ({})\n{}",
        final_config.num,
        story()
    );
    if let Err(error) = check_history(&operations, &finals) {
        panic!("{error}\n{}", story());
    }
    let mut findings = Vec::new();
    served.check(reads_at_followers, &mut findings);
    backups.check(rounds.len(), &mut findings);
    assert!(findings.is_empty(), "{}\n{}", findings.join("\n"), story());
}

/// Waits until `shard show` reports every shard owned, none moving and
/// every group with a leader; panics after [`SETTLE_LIMIT`].
fn wait_settled(cluster: &NsCluster, what: &str) {
    let started = Instant::now();
    loop {
        let last = show(cluster);
        if last.as_ref().is_some_and(settled) {
            return;
        }
        assert!(
            started.elapsed() < SETTLE_LIMIT,
            "{what} within {SETTLE_LIMIT:?}; last: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
