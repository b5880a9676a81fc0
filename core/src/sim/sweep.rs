//! Seed sweeps: one seed drives a whole randomized run — cluster size,
//! network behaviour, the nodes' clocks, a schedule of faults (crashes, restarts, partitions,
//! one-way cuts, loss, duplication, lost unsynced writes), a client workload
//! — followed by a healing phase that must end with a leader, every client
//! operation finished and every replica identical. Safety is checked after
//! every event throughout.
//!
//! A failing seed replays exactly: `cargo test -p distribkv-core --features sim
//! --test sweep -- --seed <seed>` (or `DISTRIBKV_SEED=<seed>`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{NodeClock, Sim, SimConfig, Workload};
use crate::raft::{MembershipChange, NodeId};
use crate::rng::Rng;

/// Knobs of a sweep run.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOptions {
    /// Virtual time with faults, ms.
    pub fault_phase: u64,
    /// Virtual time allowed for recovery after healing, ms.
    pub recovery_bound: u64,
    /// Mean pause between faults, ms.
    pub fault_interval: u64,
    /// Keep this many trace lines and put them in the report (0: none).
    pub trace_lines: usize,
    /// How far the linearizability checker searches before it gives up
    /// (an undecided verdict fails the seed).
    pub check_budget: crate::check::Budget,
    /// A node that lost its disk never rejoins under its id
    /// ([`SimConfig::retire_lost_disks`]); off only to show the checkers
    /// catching a blank node that rejoins as if nothing happened.
    pub retire_lost_disks: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            fault_phase: 4_000,
            recovery_bound: 10_000,
            fault_interval: 300,
            trace_lines: 0,
            check_budget: crate::check::Budget::DEFAULT,
            retire_lost_disks: true,
        }
    }
}

/// What one seed's run found.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Faults injected.
    pub faults: Vec<String>,
    /// Everything that went wrong (empty: the seed passes).
    pub failures: Vec<String>,
    /// Client operations run.
    pub operations: usize,
    /// Of which finished successfully.
    pub succeeded: usize,
    /// Virtual time from healing to full recovery, ms.
    pub recovery_ms: Option<u64>,
    /// The run's trace hash.
    pub trace_hash: u64,
    /// Events processed.
    pub events: u64,
    /// Sessions the state machine dropped (expired or evicted) during the
    /// run, as far as its tombstones tell (on the replica that applied most).
    pub sessions_dropped: usize,
    /// The last trace lines, if asked for.
    pub trace: Vec<String>,
}

impl SeedReport {
    /// Whether the seed passes.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The simulator configuration a seed implies.
pub fn config_for_seed(seed: u64) -> SimConfig {
    let mut rng = Rng::new(seed ^ 0x5EED_5EED);
    let nodes = [3, 3, 5, 5, 5, 7][rng.index(6)];
    let mut config = SimConfig {
        nodes,
        seed,
        snapshot_every: [20, 50, 200][rng.index(3)],
        ..SimConfig::default()
    };
    config.raft.snapshot_chunk_bytes = [64, 512, 4096][rng.index(3)];
    config.raft.max_entries_per_message = [1, 8, 64][rng.index(3)];
    config.client_give_up = Some(2_000 + rng.range(0, 3_000));
    config.client_attempt_timeout = 300;
    config.network.latency = [(1, 5), (5, 20), (1, 40)][rng.index(3)];
    config.disk_latency = [(0, 1), (1, 5), (2, 20)][rng.index(3)];
    config.raft.pre_vote = rng.chance(0.8);
    config.raft.check_quorum = rng.chance(0.8);
    // Lease reads are safe only with CheckQuorum's leader stickiness (and
    // clocks within the drift bound, which the sweep's are).
    config.raft.lease_reads = config.raft.check_quorum && rng.chance(0.7);
    // Half the seeds give every node its own clock: an offset of up to two
    // seconds and a rate inside the drift bound (with a tenth to spare for
    // the rounding to whole milliseconds). Drawn from a generator of their
    // own, so that the draws above stay what they were.
    let mut clocks = Rng::new(seed ^ 0xC10C_D21F);
    if clocks.chance(0.5) {
        let max = NodeClock::max_rate_ppm(config.raft.max_clock_drift_percent) * 9 / 10;
        config.clocks = (0..9)
            .map(|_| NodeClock {
                offset: clocks.range(0, 2_000),
                rate_ppm: clocks.range_inclusive(0, 2 * max as u64) as i64 - max,
            })
            .collect();
    }
    // More knobs, from a generator of their own too.
    let mut more = Rng::new(seed ^ 0x5E55_10D5);
    // Long reordering: a share of the packets is held back 100-1000 ms.
    if more.chance(0.3) {
        config.network.long_delay_rate = [0.01, 0.03, 0.1][more.index(3)];
        config.network.long_delay = (100, 1_000);
    }
    // A TimeoutNow held back past its transfer's deadline (an election
    // timeout) now and then.
    if more.chance(0.5) {
        config.network.timeout_now_delay_rate = 0.3;
        config.network.timeout_now_delay = (100, 1_000);
    }
    // Short sessions and small session tables: expiry and eviction happen
    // during the run, also while a client still retries a write.
    if more.chance(0.4) {
        config.limits.session_ttl_ms = [300, 1_000, 3_000][more.index(3)];
        config.limits.max_sessions = [2, 3, 6][more.index(3)];
    }
    // Follower reads: clients send reads to any node, which asks its leader
    // for a read index (a generator of its own, so that the draws above
    // stay what they were).
    config.follower_reads = Rng::new(seed ^ 0xF011_0E2D).chance(0.4);
    config
}

/// Runs one seed.
pub fn run_seed(seed: u64, options: &SweepOptions) -> SeedReport {
    let mut config = config_for_seed(seed);
    config.trace_capacity = options.trace_lines;
    config.retire_lost_disks = options.retire_lost_disks;
    let nodes = config.nodes;
    let mut sim = Sim::new(config);
    let mut rng = Rng::new(seed ^ 0xFA17_5EED);
    let mut faults = Vec::new();
    let workload = Workload {
        clients: 2 + rng.index(3),
        interval: 20 + rng.range(0, 60),
        keys: 1 + rng.index(4),
        read_fraction: 0.3,
    };
    sim.set_workload(workload).expect("valid workload");
    let ids: Vec<NodeId> = (1..=nodes as NodeId).collect();
    let end = sim.now() + options.fault_phase;
    // Some seeds are calm, some are storms of crashes.
    let interval = options.fault_interval / [1, 1, 3, 6][rng.index(4)];
    // Some seeds also change the membership (their own generator, so that
    // the other seeds' runs do not change).
    let mut membership_rng = Rng::new(seed ^ 0x3E3B_E125);
    let membership_churn = membership_rng.chance(0.3);
    // Leadership moves, clients cut off from nodes and lost disks (their own
    // generator as well).
    let mut more_rng = Rng::new(seed ^ 0x00C0_FFEE);
    let more_faults = more_rng.chance(0.6);
    let mut disks_lost = 0;
    while sim.now() < end && sim.violations().is_empty() {
        let pause = rng.range_inclusive(interval / 2, interval * 3 / 2);
        sim.run_for(pause);
        let fault = if membership_churn && membership_rng.chance(0.2) {
            change_membership(&mut sim, &mut membership_rng)
        } else if more_faults && more_rng.chance(0.3) {
            more_fault(&mut sim, &mut more_rng, &mut disks_lost)
        } else if sim.node_count() == ids.len() {
            inject_fault(&mut sim, &mut rng, &ids)
        } else {
            let all: Vec<NodeId> = (1..=sim.node_count() as NodeId).collect();
            inject_fault(&mut sim, &mut rng, &all)
        };
        faults.push(format!("{} {}", sim.now(), fault));
    }
    // Heal: everything back, nothing lost on the wire, no new operations.
    sim.heal();
    let _ = sim.set_drop_rate(0.0);
    let _ = sim.set_duplicate_rate(0.0);
    for id in 1..=sim.node_count() as NodeId {
        if sim.replica(id).is_none() {
            let _ = sim.restart(id);
        }
    }
    let _ = sim.set_workload(Workload {
        clients: 0,
        ..Workload::default()
    });
    let healed_at = sim.now();
    let recovered = sim.run_until_condition(options.recovery_bound, is_recovered);
    let recovery_ms = recovered.then(|| sim.now().saturating_since(healed_at));
    let mut failures: Vec<String> = sim.violations().to_vec();
    if !recovered {
        failures.push(format!(
            "liveness: not recovered {} ms after healing ({})",
            options.recovery_bound,
            recovery_state(&sim)
        ));
    } else {
        failures.extend(check_convergence(&sim));
    }
    failures.extend(super::check_history_within(&sim, options.check_budget));
    let operations = sim.history().len();
    let succeeded = sim.history().iter().filter(|e| e.is_complete()).count();
    SeedReport {
        seed,
        nodes,
        faults,
        failures,
        operations,
        succeeded,
        recovery_ms,
        trace_hash: sim.trace_hash(),
        events: sim.stats().events,
        sessions_dropped: sim
            .replicas()
            .max_by_key(|r| r.node().log().applied())
            .map_or(0, |r| r.store().sessions().tombstone_count()),
        trace: sim
            .trace_since(0)
            .map(|line| format!("{} {} {}", line.at, line.kind, line.text()))
            .collect(),
    }
}

fn inject_fault(sim: &mut Sim, rng: &mut Rng, ids: &[NodeId]) -> String {
    let pick = |rng: &mut Rng| ids[rng.index(ids.len())];
    let down: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&id| sim.replica(id).is_none())
        .collect();
    match rng.range(0, 100) {
        0..15 => {
            let id = sim.leader().unwrap_or_else(|| pick(rng));
            match sim.crash(id) {
                Ok(()) => format!("crash {id}"),
                Err(_) => String::from("noop"),
            }
        }
        15..25 => {
            let id = pick(rng);
            match sim.crash(id) {
                Ok(()) => format!("crash {id}"),
                Err(_) => String::from("noop"),
            }
        }
        // Crash and restart quickly, losing unsynced writes: the way votes
        // and acknowledgements that were not durable would come back to bite.
        25..35 => {
            let id = if rng.chance(0.5) {
                sim.leader().unwrap_or_else(|| pick(rng))
            } else {
                pick(rng)
            };
            if sim.crash(id).is_err() {
                return String::from("noop");
            }
            let down_for = rng.range(0, 40);
            sim.run_for(down_for);
            let _ = sim.restart(id);
            format!("bounce {id} for {down_for}ms")
        }
        35..50 if !down.is_empty() => {
            let id = down[rng.index(down.len())];
            let _ = sim.restart(id);
            format!("restart {id}")
        }
        50..62 => {
            let mut shuffled = ids.to_vec();
            for i in (1..shuffled.len()).rev() {
                let j = rng.index(i + 1);
                shuffled.swap(i, j);
            }
            let cut = 1 + rng.index(shuffled.len() - 1);
            let (a, b) = shuffled.split_at(cut);
            let _ = sim.partition(&[a.to_vec(), b.to_vec()]);
            format!("partition {a:?} | {b:?}")
        }
        62..68 => {
            let (from, to) = (pick(rng), pick(rng));
            if from != to {
                let _ = sim.cut_link(from, to);
            }
            format!("cut {from}->{to}")
        }
        68..80 => {
            sim.heal();
            String::from("heal")
        }
        80..88 => {
            let rate = [0.0, 0.05, 0.2][rng.index(3)];
            let _ = sim.set_drop_rate(rate);
            format!("drop rate {rate}")
        }
        88..93 => {
            let rate = [0.0, 0.05, 0.2][rng.index(3)];
            let _ = sim.set_duplicate_rate(rate);
            format!("duplicate rate {rate}")
        }
        93..97 => {
            let to = pick(rng);
            match sim.transfer_leadership(to) {
                Ok(()) => format!("transfer to {to}"),
                Err(_) => String::from("noop"),
            }
        }
        _ => {
            let id = pick(rng);
            let _ = sim.snapshot(id);
            format!("snapshot {id}")
        }
    }
}

/// A fault of the second kind: a leadership transfer or a forced election
/// (their TimeoutNow may be held back, see `config_for_seed`), a client cut
/// off from a node, or a node losing its disk (at most one per run, so that
/// a majority of the first members survives it).
fn more_fault(sim: &mut Sim, rng: &mut Rng, disks_lost: &mut usize) -> String {
    let nodes = sim.node_count() as u64;
    let pick = |rng: &mut Rng| 1 + rng.range(0, nodes);
    match rng.range(0, 100) {
        0..35 => {
            let to = pick(rng);
            match sim.transfer_leadership(to) {
                Ok(()) => format!("transfer to {to}"),
                Err(_) => String::from("noop"),
            }
        }
        35..55 => {
            let id = pick(rng);
            match sim.campaign(id) {
                Ok(()) => format!("campaign {id}"),
                Err(_) => String::from("noop"),
            }
        }
        55..90 if sim.client_count() > 0 => {
            let client = 1 + rng.range(0, sim.client_count() as u64);
            let node = pick(rng);
            let _ = sim.cut_client(client, node);
            format!("cut c{client} from {node}")
        }
        _ if *disks_lost == 0 && nodes >= 3 => {
            let id = pick(rng);
            *disks_lost += 1;
            match sim.lose_disk(id) {
                Ok(()) => format!("disk of {id} lost"),
                Err(e) => format!("disk of {id} lost: {e}"),
            }
        }
        _ => String::from("noop"),
    }
}

/// One membership change: remove a voter (keeping three), add back a
/// machine that is not a member (or a new one) as a learner, or promote a
/// learner. Refusals (no leader, a change in progress) are part of the run.
fn change_membership(sim: &mut Sim, rng: &mut Rng) -> String {
    let membership = sim.membership();
    // A machine that lost its disk never comes back under its id, and a
    // removed id is never reused (as the command line refuses it): a member
    // that saw the removal committed drops whatever that id sends.
    let outsiders: Vec<NodeId> = (1..=sim.node_count() as NodeId)
        .filter(|&id| !membership.contains(id) && !membership.is_removed(id) && !sim.is_retired(id))
        .collect();
    let change = match rng.range(0, 3) {
        0 if membership.voters.len() > 3 => {
            MembershipChange::Remove(membership.voters[rng.index(membership.voters.len())])
        }
        1 if !membership.learners.is_empty() => {
            MembershipChange::AddVoter(membership.learners[rng.index(membership.learners.len())])
        }
        _ if !outsiders.is_empty() => {
            MembershipChange::AddLearner(outsiders[rng.index(outsiders.len())])
        }
        _ => match sim.add_node() {
            Ok(id) => MembershipChange::AddLearner(id),
            Err(_) => return String::from("noop"),
        },
    };
    match sim.change_membership(change) {
        Ok(()) => format!("membership {change:?}"),
        Err(e) => format!("membership {change:?} refused: {e}"),
    }
}

/// Every client operation finished and the cluster converged.
fn is_recovered(sim: &Sim) -> bool {
    sim.history().iter().all(|e| e.outcome.is_some()) && sim.is_converged()
}

fn recovery_state(sim: &Sim) -> String {
    let pending = sim.history().iter().filter(|e| e.outcome.is_none()).count();
    let nodes: Vec<String> = sim
        .replicas()
        .map(|r| {
            let n = r.node();
            format!(
                "{}:{}@{} c{} a{} l{}",
                n.id(),
                n.role().name(),
                n.term(),
                n.log().commit(),
                n.log().applied(),
                n.log().last_index()
            )
        })
        .collect();
    format!(
        "leader {:?}, {pending} ops pending, nodes [{}]",
        sim.leader(),
        nodes.join(", ")
    )
}

/// After recovery every replica holds the same state.
fn check_convergence(sim: &Sim) -> Vec<String> {
    let mut failures = Vec::new();
    let membership = sim.membership();
    let mut fingerprints = sim
        .replicas()
        .filter(|r| membership.contains(r.node().id()))
        .map(|r| (r.node().id(), r.store().fingerprint()));
    if let Some((first_id, first)) = fingerprints.next() {
        for (id, fingerprint) in fingerprints {
            if fingerprint != first {
                failures.push(format!(
                    "convergence: replica {id} differs from replica {first_id} after recovery"
                ));
            }
        }
    }
    failures
}
