//! How long writes stop after a single fault aimed at the leader, over many
//! seeds of the simulator, with the native server's default timing
//! (heartbeat 100 ms, election timeout 500–1000 ms, PreVote and
//! CheckQuorum) and the client's 1 s attempt timeout:
//!
//! ```sh
//! cargo run --release -p distribkv-core --features sim --example recovery_after_a_fault -- \
//!     [--seeds N] [--first S] [--nodes 3|5] [--fault isolated|deaf|mute|killed|all] \
//!     [--network lan|slow] [--verbose]
//! ```
//!
//! Each seed elects a leader under a steady load (3 clients, one operation
//! every 0–40 ms each, 70% writes), waits a random 1–2 s, then puts one
//! fault in place on the leader, for good:
//!
//! - `isolated`: cut off from the other nodes both ways (clients still reach it);
//! - `deaf`: it hears nobody (its own messages still go out);
//! - `mute`: nobody hears it (it still hears them);
//! - `killed`: it crashes.
//!
//! It reports, per fault, the distribution over seeds (median, p90, p99,
//! worst) of the time from the fault to: the first pre-vote or vote
//! request (some node's election timer fired, or a hand-over); the new
//! leader; its first commit (a write waiting at it commits then); and the
//! first acknowledged write invoked after the fault, as the workload's
//! clients saw it. Then what made the slow ones slow: how many elections
//! (terms campaigned for) it took, terms with rival candidates (two or more
//! in one term: a split vote in three nodes; in five one of them may still
//! win), pre-vote rounds that failed.
//!
//! `--network lan`: one-way latency 1–5 ms, fsync 1–3 ms. `--network slow`:
//! the same, but 5% of packets 20–150 ms late and fsync 5–40 ms, a stand-in
//! for a loaded host (the simulator does not delay timers themselves).
//! `--verbose` prints each seed's campaign timeline; `--first S --seeds 1
//! --verbose` replays one seed. The safety checkers run after every event;
//! a violation stops the tool.

use std::collections::BTreeMap;

use distribkv_core::raft::{NodeId, RoleKind};
use distribkv_core::sim::{NetworkConfig, Sim, SimConfig, Workload};
use distribkv_core::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Isolated,
    Deaf,
    Mute,
    Killed,
}

impl Fault {
    const ALL: [Fault; 4] = [Fault::Isolated, Fault::Deaf, Fault::Mute, Fault::Killed];

    fn name(self) -> &'static str {
        match self {
            Fault::Isolated => "the leader isolated",
            Fault::Deaf => "the leader hears nobody",
            Fault::Mute => "nobody hears the leader",
            Fault::Killed => "the leader killed",
        }
    }

    fn parse(text: &str) -> Option<Vec<Fault>> {
        Some(match text {
            "isolated" => vec![Fault::Isolated],
            "deaf" => vec![Fault::Deaf],
            "mute" => vec![Fault::Mute],
            "killed" => vec![Fault::Killed],
            "all" => Fault::ALL.to_vec(),
            _ => return None,
        })
    }

    fn apply(self, sim: &mut Sim, leader: NodeId) {
        let others: Vec<NodeId> = (1..=sim.node_count() as NodeId)
            .filter(|&id| id != leader)
            .collect();
        match self {
            Fault::Isolated => sim.partition(&[vec![leader], others]).unwrap(),
            Fault::Deaf => {
                for &other in &others {
                    sim.cut_link(other, leader).unwrap();
                }
            }
            Fault::Mute => {
                for &other in &others {
                    sim.cut_link(leader, other).unwrap();
                }
            }
            Fault::Killed => sim.crash(leader).unwrap(),
        }
    }
}

struct Options {
    seeds: u64,
    first: u64,
    nodes: usize,
    faults: Vec<Fault>,
    slow: bool,
    verbose: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        seeds: 2000,
        first: 0,
        nodes: 3,
        faults: Fault::ALL.to_vec(),
        slow: false,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let number = |text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{arg}: not a number: {text}"))
        };
        match arg.as_str() {
            "--seeds" => options.seeds = number(value()?)?,
            "--first" => options.first = number(value()?)?,
            "--nodes" => options.nodes = number(value()?)? as usize,
            "--fault" => {
                let text = value()?;
                options.faults = Fault::parse(&text).ok_or(format!(
                    "--fault: isolated, deaf, mute, killed or all, not {text}"
                ))?;
            }
            "--network" => match value()?.as_str() {
                "lan" => options.slow = false,
                "slow" => options.slow = true,
                other => return Err(format!("--network: lan or slow, not {other}")),
            },
            "--verbose" => options.verbose = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !(3..=9).contains(&options.nodes) {
        return Err(format!("--nodes: 3 to 9, not {}", options.nodes));
    }
    Ok(options)
}

/// One seed's measurements, ms after the fault.
#[derive(Default)]
struct Sample {
    seed: u64,
    first_campaign: Option<u64>,
    elected: Option<u64>,
    committed: Option<u64>,
    client_write: Option<u64>,
    /// The workload operations in flight at the fault, and what became of
    /// them: `(invoked, completed, attempts)`, ms after the fault.
    in_flight: Vec<(i64, Option<u64>, u32)>,
    /// Terms some node stood as a candidate in.
    elections: usize,
    /// Terms with two candidates or more.
    rival_terms: usize,
    /// Pre-vote rounds that did not lead to a candidacy.
    failed_pre_votes: usize,
    timeline: Vec<String>,
}

fn sim_config(options: &Options, seed: u64) -> SimConfig {
    let mut config = SimConfig {
        nodes: options.nodes,
        seed,
        snapshot_every: 0,
        client_attempt_timeout: 1000,
        network: NetworkConfig {
            latency: (1, 5),
            ..NetworkConfig::default()
        },
        disk_latency: (1, 3),
        ..SimConfig::default()
    };
    config.raft.heartbeat_interval = 100;
    config.raft.election_timeout_min = 500;
    config.raft.election_timeout_max = 1000;
    if options.slow {
        config.network.long_delay_rate = 0.05;
        config.network.long_delay = (20, 150);
        config.disk_latency = (5, 40);
    }
    config
}

fn measure(options: &Options, fault: Fault, seed: u64) -> Sample {
    let mut sim = Sim::new(sim_config(options, seed));
    sim.set_workload(Workload {
        clients: 3,
        interval: 20,
        keys: 5,
        read_fraction: 0.3,
    })
    .unwrap();
    let settled = sim.run_until_condition(10_000, |sim| {
        sim.leader().is_some_and(|id| {
            let node = sim.replica(id).unwrap().node();
            node.log().term_at(node.log().commit()) == Some(node.term())
        })
    });
    assert!(settled, "seed {seed}: no leader within 10 s");
    // A random moment 1-2 s later, so the fault falls anywhere in the
    // heartbeat and the clients' cycles.
    let pause = 1000 + (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 1000;
    sim.run_for(pause);
    let leader = sim.leader().expect("a leader");
    let old_term = sim.replica(leader).unwrap().node().term();
    let start = sim.now();
    fault.apply(&mut sim, leader);

    let mut sample = Sample {
        seed,
        ..Sample::default()
    };
    let mut roles: BTreeMap<NodeId, (RoleKind, u64)> = sim
        .replicas()
        .map(|r| (r.node().id(), (r.node().role(), r.node().term())))
        .collect();
    let mut candidates: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
    let mut pre_votes = 0usize;
    let after = |at: Instant| at.0 - start.0;
    let done = sim.run_until_condition(20_000, |sim| {
        let now = sim.now();
        for replica in sim.replicas() {
            let node = replica.node();
            let state = (node.role(), node.term());
            let id = node.id();
            if roles.get(&id) == Some(&state) {
                continue;
            }
            roles.insert(id, state);
            if options.verbose {
                sample.timeline.push(format!(
                    "{:>6} ms  node {id}: {} in term {}",
                    after(now),
                    state.0.name(),
                    state.1
                ));
            }
            match state.0 {
                RoleKind::PreCandidate => {
                    pre_votes += 1;
                    sample.first_campaign.get_or_insert(after(now));
                }
                RoleKind::Candidate => {
                    sample.first_campaign.get_or_insert(after(now));
                    candidates.entry(state.1).or_default().push(id);
                }
                RoleKind::Leader if id != leader && sample.elected.is_none() => {
                    sample.elected = Some(after(now));
                }
                _ => {}
            }
        }
        if sample.committed.is_none()
            && sim.replicas().any(|r| {
                let node = r.node();
                node.role() == RoleKind::Leader
                    && node.term() > old_term
                    && node.log().term_at(node.log().commit()) == Some(node.term())
            })
        {
            sample.committed = Some(after(now));
        }
        if sample.client_write.is_none() {
            sample.client_write = sim
                .history()
                .iter()
                .filter(|e| e.invoked_at >= start && e.operation.is_write() && e.is_complete())
                .filter_map(|e| e.completed_at)
                .min()
                .map(after);
        }
        sample.committed.is_some() && sample.client_write.is_some()
    });
    assert!(
        sim.violations().is_empty(),
        "seed {seed}: {:?}",
        sim.violations()
    );
    assert!(done, "seed {seed}: writes did not resume within 20 s");
    sample.in_flight = sim
        .history()
        .iter()
        .filter(|e| e.invoked_at < start && e.completed_at.is_none_or(|t| t >= start))
        .map(|e| {
            (
                e.invoked_at.0 as i64 - start.0 as i64,
                e.completed_at.map(after),
                e.attempts,
            )
        })
        .collect();
    sample.elections = candidates.len();
    sample.rival_terms = candidates.values().filter(|c| c.len() > 1).count();
    let candidacies: usize = candidates.values().map(Vec::len).sum();
    // Every candidacy but a hand-over's follows a pre-vote round it won.
    sample.failed_pre_votes = pre_votes.saturating_sub(candidacies);
    sample
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(values: impl Iterator<Item = u64>) -> String {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    if values.is_empty() {
        return String::from("-");
    }
    format!(
        "{:>5} {:>5} {:>5} {:>5}",
        percentile(&values, 0.5),
        percentile(&values, 0.9),
        percentile(&values, 0.99),
        values[values.len() - 1]
    )
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} nodes, {} seeds from {}, network {}; ms from the fault (median p90 p99 worst)",
        options.nodes,
        options.seeds,
        options.first,
        if options.slow {
            "slow (1-5 ms, 5% 20-150 ms, fsync 5-40 ms)"
        } else {
            "lan (1-5 ms, fsync 1-3 ms)"
        }
    );
    for &fault in &options.faults {
        let samples: Vec<Sample> = (options.first..options.first + options.seeds)
            .map(|seed| measure(&options, fault, seed))
            .collect();
        if options.verbose {
            for sample in &samples {
                println!(
                    "-- {}, seed {}: first commit {} ms, client write acked {} ms",
                    fault.name(),
                    sample.seed,
                    sample.committed.unwrap_or(0),
                    sample.client_write.unwrap_or(0)
                );
                for (invoked, completed, attempts) in &sample.in_flight {
                    println!(
                        "   in flight: invoked at {invoked} ms, completed at {completed:?} ms after {attempts} attempts"
                    );
                }
                for line in &sample.timeline {
                    println!("{line}");
                }
            }
        }
        let n = samples.len();
        println!("\n{} ({n} seeds)", fault.name());
        println!(
            "  first campaign          {}",
            summary(samples.iter().filter_map(|s| s.first_campaign))
        );
        println!(
            "  new leader              {}",
            summary(samples.iter().filter_map(|s| s.elected))
        );
        println!(
            "  its first commit        {}",
            summary(samples.iter().filter_map(|s| s.committed))
        );
        println!(
            "  client write acked      {}",
            summary(samples.iter().filter_map(|s| s.client_write))
        );
        let count = |f: &dyn Fn(&Sample) -> bool| samples.iter().filter(|s| f(s)).count();
        println!(
            "  more than one election: {}, rival candidates in a term: {}, failed pre-vote rounds: {}",
            count(&|s| s.elections > 1),
            count(&|s| s.rival_terms > 0),
            count(&|s| s.failed_pre_votes > 0),
        );
        let slow: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.committed.unwrap_or(0) > 1500)
            .collect();
        println!(
            "  first commit over 1.5 s: {} (of them: more than one election {}, rival candidates {}, failed pre-votes {})",
            slow.len(),
            slow.iter().filter(|s| s.elections > 1).count(),
            slow.iter().filter(|s| s.rival_terms > 0).count(),
            slow.iter().filter(|s| s.failed_pre_votes > 0).count(),
        );
        if let Some(worst) = samples.iter().max_by_key(|s| s.client_write) {
            println!(
                "  slowest client: seed {} (client {} ms, first commit {} ms)",
                worst.seed,
                worst.client_write.unwrap_or(0),
                worst.committed.unwrap_or(0),
            );
        }
        if let Some(worst) = samples.iter().max_by_key(|s| s.committed) {
            println!(
                "  worst: seed {} (first commit {} ms, client {} ms, {} elections, {} with rivals) \
                 -- replay: --first {} --seeds 1 --verbose",
                worst.seed,
                worst.committed.unwrap_or(0),
                worst.client_write.unwrap_or(0),
                worst.elections,
                worst.rival_terms,
                worst.seed
            );
        }
    }
}
