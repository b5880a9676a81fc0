//! One randomized sharded seed of the sweep.

use super::*;
use crate::shard::controller::ControllerError;

/// What one sharded seed did and found.
#[derive(Clone, Debug, Default)]
pub struct ShardedReport {
    /// Safety violations, history failures and liveness failures.
    pub failures: Vec<String>,
    /// The faults and configuration changes, in order, for the replay log.
    pub actions: Vec<String>,
    /// Client operations recorded.
    pub operations: usize,
    /// Configurations made.
    pub configurations: u64,
    /// Workload writes refused because their session had been dropped
    /// (their outcome unknown): the seed exercised expiry and eviction.
    pub expired_sessions: u64,
    /// Workload gets answered by a replica that was not its group's
    /// leader (follower reads; 0 unless the seed turned them on).
    pub follower_reads: u64,
    /// Groups retired (they left, handed every shard over, and their
    /// replicas were dropped from every host).
    pub retired: u64,
    /// Attempts the clients gave up after an unanswered probe (0 unless
    /// the seed gave the clerks a probe shorter than their retry).
    pub probes_expired: u64,
    /// Shard exports answered in full and read into the history (0
    /// unless the seed takes backups).
    pub exports: u64,
    /// Parts of shards moving in parts delivered (0 unless the seed makes
    /// the parts smaller than its shards).
    pub shard_parts: u64,
}

impl ShardedReport {
    /// Whether the seed passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One randomized sharded run: the [`ShardedConfig::small`] layout (hosts
/// holding replicas of several groups), a random network (loss,
/// duplication, long delays), a workload of appends, gets and puts, and
/// `rounds` rounds of random joins, leaves, moves, host crashes and
/// restarts, partitions and one-way cuts. Then everything heals: the
/// groups must settle on the latest configuration, every client operation
/// must finish, and the history must be linearizable with every append
/// applied exactly once.
pub fn run_sharded_seed(seed: u64, rounds: u32) -> ShardedReport {
    let mut report = ShardedReport::default();
    let mut rng = Rng::new(seed ^ 0x5A4D_ED00);
    let mut config = ShardedConfig::small(seed);
    config.network.drop_rate = [0.0, 0.02, 0.1][rng.index(3)];
    config.network.duplicate_rate = [0.0, 0.05][rng.index(2)];
    config.network.long_delay_rate = [0.0, 0.01][rng.index(2)];
    config.network.long_delay = (100, 1000);
    config.host.snapshot_every = [20, 200][rng.index(2)];
    config.host.hibernate_after_ms = [0, 300][rng.index(2)];
    // More knobs, from a generator of their own (the draws above stay
    // what they were). A third of the seeds keep one or two sessions per
    // shard, or let them expire after a few hundred ms of log clock, so
    // that retries arrive after their session was dropped: the tombstones
    // must refuse them. Half the seeds give every host its own clock (an
    // offset of up to two seconds, a rate within the drift bound with a
    // tenth to spare).
    let mut more = Rng::new(seed ^ 0x5E55_10D5);
    if more.chance(0.35) {
        let limits = &mut config.host.limits;
        match more.index(3) {
            0 => limits.max_sessions = 1,
            1 => limits.max_sessions = 2,
            _ => limits.session_ttl_ms = more.range_inclusive(200, 800),
        }
    }
    if more.chance(0.5) {
        let max = NodeClock::max_rate_ppm(config.host.raft.max_clock_drift_percent) * 9 / 10;
        config.clocks = (0..config.hosts)
            .map(|_| NodeClock {
                offset: more.range(0, 2_000),
                rate_ppm: more.range_inclusive(0, 2 * max as u64) as i64 - max,
            })
            .collect();
    }
    // Two seeds in five send the workload's gets to any replica of the
    // owning group (follower reads), from a generator of their own.
    config.follower_reads = Rng::new(seed ^ 0xF011_0E2D).chance(0.4);
    // Two seeds in five retire a group that left after a few hundred ms
    // (the default, 10 s, outlasts most runs): its replicas must go from
    // every host while the faults go on, and a later Join of its id is
    // refused.
    let mut retiring = Rng::new(seed ^ 0x2E71_2E00);
    if retiring.chance(0.4) {
        config.host.retire_after_ms = retiring.range_inclusive(300, 1_500);
    }
    // Two seeds in five give the routing clerks the native client's shape
    // of timing, from a generator of their own: a server tried on a guess
    // is given up on after a probe shorter than the retry that a known
    // leader gets (the core's default makes the two equal, so the probe
    // path, its suspicions and the late answers it leaves behind are only
    // run here).
    let mut timing = Rng::new(seed ^ 0x7E0B_E5ED);
    if timing.chance(0.4) {
        let retry = timing.range_inclusive(100, 400);
        config.clerk_timing = (retry, timing.range_inclusive(20, retry / 2));
    }
    // Two seeds in five take backups: after every round, one shard's
    // export is asked of a replica, and its keys are read into the
    // history (see `ShardedSim::probe_export`). From a generator of its
    // own: the other seeds run as they did before (the seeds pinned in
    // `tests/shard_sweep.rs` among them).
    let exporting = Rng::new(seed ^ 0xBAC0_0E2B).chance(0.4);
    // Two seeds in five move shards larger than a few dozen bytes in
    // parts (the default part, 1 MiB, is never reached here), 1, 2 or 4
    // of them sent ahead of the new owner's progress, from a generator of
    // their own.
    let mut parts = Rng::new(seed ^ 0x5A27_0B18);
    if parts.chance(0.4) {
        config.host.shard_part_bytes = [8, 40, 200][parts.index(3)];
        config.host.shard_parts_in_flight = [1, 2, 4][parts.index(3)];
    }
    let limits = config.host.limits;
    let clocks = config.clocks.clone();
    let groups: Vec<GroupId> = config.host.groups.keys().copied().collect();
    let hosts = config.hosts;
    let shards = config.host.shards;
    let mut sim = match ShardedSim::new(config) {
        Ok(sim) => sim,
        Err(e) => {
            report.failures.push(format!("cannot build: {e}"));
            return report;
        }
    };
    let mut joined: BTreeSet<GroupId> = BTreeSet::new();
    let first = groups[rng.index(groups.len())];
    if sim.join(&[first]).is_ok() {
        joined.insert(first);
    }
    report.actions.push(format!(
        "join {first} (drop {}, duplicate {}, long delays {}, snapshot every {}, hibernate after {} ms, retire after {} ms, {} sessions per shard, session ttl {} ms, follower reads {}, exports {exporting}, shard parts of {} bytes ({} in flight), clerk retry and probe {:?} ms, clocks {:?})",
        sim.config.network.drop_rate,
        sim.config.network.duplicate_rate,
        sim.config.network.long_delay_rate,
        sim.config.host.snapshot_every,
        sim.config.host.hibernate_after_ms,
        sim.config.host.retire_after_ms,
        limits.max_sessions,
        limits.session_ttl_ms,
        sim.config.follower_reads,
        sim.config.host.shard_part_bytes,
        sim.config.host.shard_parts_in_flight,
        sim.config.clerk_timing,
        clocks
            .iter()
            .map(|c| (c.offset, c.rate_ppm))
            .collect::<Vec<_>>()
    ));
    sim.start_workload();
    for _ in 0..rounds {
        let action = rng.index(10);
        let text = match action {
            0 | 1 => {
                let candidates: Vec<GroupId> = groups
                    .iter()
                    .copied()
                    .filter(|g| !joined.contains(g))
                    .collect();
                if candidates.is_empty() {
                    String::from("nothing")
                } else {
                    let g = candidates[rng.index(candidates.len())];
                    let r = sim.join(&[g]);
                    if r == Ok(ControllerReply::Done) {
                        joined.insert(g);
                    }
                    format!("join {g}: {r:?}")
                }
            }
            2 => {
                if joined.len() < 2 {
                    String::from("nothing")
                } else {
                    let list: Vec<GroupId> = joined.iter().copied().collect();
                    let g = list[rng.index(list.len())];
                    let r = sim.leave(&[g]);
                    match &r {
                        Ok(ControllerReply::Done) => {
                            joined.remove(&g);
                        }
                        Ok(ControllerReply::Refused(ControllerError::LastGroup(last))) => {
                            // `joined` overstates when a timed-out leave took
                            // effect; the refusal must name the only group.
                            let latest = sim.query();
                            let only = latest
                                .as_ref()
                                .map(|c| c.groups.keys().copied().collect::<Vec<GroupId>>());
                            if *last != g || only.as_ref().is_ok_and(|o| *o != [g]) {
                                report.failures.push(format!(
                                    "leave {g} refused as the last group's ({last}) \
                                     while the groups are {only:?}"
                                ));
                            }
                            if let Ok(only) = only {
                                joined = only.into_iter().collect();
                            }
                        }
                        _ => {}
                    }
                    format!("leave {g}: {r:?}")
                }
            }
            3 => {
                let list: Vec<GroupId> = joined.iter().copied().collect();
                if list.is_empty() {
                    String::from("nothing")
                } else {
                    let g = list[rng.index(list.len())];
                    let shard = rng.index(shards as usize) as u32;
                    let r = sim.controller(ControllerOp::Move { shard, group: g });
                    format!("move {shard} to {g}: {r:?}")
                }
            }
            4 | 5 => {
                let id = rng.range_inclusive(1, hosts);
                sim.crash(id);
                format!("crash {id}")
            }
            6 => {
                let down: Vec<NodeId> = (1..=hosts).filter(|h| !sim.is_up(*h)).collect();
                match down.first() {
                    Some(id) => {
                        sim.restart(*id);
                        format!("restart {id}")
                    }
                    None => String::from("nothing"),
                }
            }
            7 => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                for h in 1..=hosts {
                    if rng.chance(0.5) {
                        a.push(Endpoint::Node(h));
                    } else {
                        b.push(Endpoint::Node(h));
                    }
                }
                let text = format!("partition {a:?} | {b:?}");
                sim.network_mut().partition(vec![a, b]);
                text
            }
            8 => {
                let from = rng.range_inclusive(1, hosts);
                let to = rng.range_inclusive(1, hosts);
                sim.network_mut()
                    .cut_link(Endpoint::Node(from), Endpoint::Node(to));
                format!("cut {from}->{to}")
            }
            _ => {
                sim.network_mut().heal();
                String::from("heal")
            }
        };
        report
            .actions
            .push(format!("t={} {text}", sim.now().as_millis()));
        if exporting {
            sim.probe_export();
        }
        let pause = rng.range_inclusive(200, 800);
        sim.run_for(pause);
    }
    // Heal everything; the service must settle and finish every operation.
    sim.network_mut().heal();
    for id in 1..=hosts {
        let link = sim.network_mut().cut_links().cloned().collect::<Vec<_>>();
        for (a, b) in link {
            sim.network_mut().restore_link(a, b);
        }
        sim.restart(id);
    }
    sim.network_mut().config.drop_rate = 0.0;
    sim.network_mut().config.long_delay_rate = 0.0;
    sim.run_for(2_000);
    sim.stop_workload();
    if !sim.run_until(30_000, |s| !s.workload_pending()) {
        report.failures.push(String::from(
            "liveness: client operations still pending 30 s after healing",
        ));
    }
    if !sim.run_until(30_000, |s| s.is_settled()) {
        report.failures.push(String::from(
            "liveness: groups not settled 30 s after healing",
        ));
    }
    sim.give_up_export();
    report.failures.extend(sim.violations());
    report.failures.extend(sim.check_history());
    // A retired group is gone from every host (all up again by now).
    for group in &groups {
        report.retired += u64::from(sim.is_retired(*group));
        let left = sim.replicas_of(*group);
        if sim.is_retired(*group) && !sim.run_until(10_000, |s| s.replicas_of(*group).is_empty()) {
            report.failures.push(format!(
                "group {group} was retired but hosts {left:?} still hold a replica"
            ));
        }
    }
    // The last group never leaves: once a group joined, every shard has
    // an owner.
    if let Some(latest) = sim
        .slots
        .values()
        .filter_map(|s| s.host.as_ref()?.controller())
        .map(|c| c.latest())
        .max_by_key(|c| c.num)
        .filter(|c| c.num > 0)
    {
        if latest.groups.is_empty() || latest.shards.contains(&0) {
            report.failures.push(format!(
                "configuration {} leaves shards without an owner: {:?}",
                latest.num, latest.shards
            ));
        }
    }
    report.operations = sim.history().len();
    report.expired_sessions = sim.expired_sessions;
    report.follower_reads = sim.follower_reads_served();
    report.probes_expired = sim.probes_expired();
    report.exports = sim.exports_served();
    report.shard_parts = sim.shard_parts_delivered();
    report.configurations = sim
        .slots
        .values()
        .filter_map(|s| s.host.as_ref()?.controller())
        .map(|c| c.latest().num)
        .max()
        .unwrap_or(0);
    report
}
