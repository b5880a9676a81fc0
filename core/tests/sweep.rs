//! Seed sweep: thousands of randomized runs with faults, every safety check
//! on after every event, a liveness phase after healing.
//!
//! `DISTRIBKV_SEEDS=N` sets how many seeds (default 2000), `DISTRIBKV_SEED=S`
//! replays one seed, `DISTRIBKV_SEED_START=S` shifts the range.
//! `DISTRIBKV_FAULT_PHASE_MS=MS` lengthens each seed's fault phase (default
//! 4,000 ms of virtual time): fewer, longer runs, in which more faults pile
//! up on one cluster (a failing seed replays only with the same value).
//! `DISTRIBKV_CHECK_STEPS=N` bounds the linearizability search at N steps
//! (10 million by default): a long run's hot key may need more, and an
//! undecided verdict fails its seed.
#![cfg(feature = "sim")]

use distribkv_core::check::Budget;
use distribkv_core::sim::sweep::{SweepOptions, config_for_seed, run_seed};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn seed_sweep() {
    let defaults = SweepOptions::default();
    let options = SweepOptions {
        trace_lines: env_u64("DISTRIBKV_TRACE").unwrap_or(0) as usize,
        fault_phase: env_u64("DISTRIBKV_FAULT_PHASE_MS").unwrap_or(defaults.fault_phase),
        check_budget: Budget {
            max_steps: env_u64("DISTRIBKV_CHECK_STEPS").unwrap_or(defaults.check_budget.max_steps),
        },
        ..defaults
    };
    // The replay command names a fault phase and a search bound other than
    // the defaults.
    let mut settings = String::new();
    if options.fault_phase != defaults.fault_phase {
        settings += &format!("DISTRIBKV_FAULT_PHASE_MS={} ", options.fault_phase);
    }
    if options.check_budget != defaults.check_budget {
        settings += &format!("DISTRIBKV_CHECK_STEPS={} ", options.check_budget.max_steps);
    }
    let seeds: Vec<u64> = match env_u64("DISTRIBKV_SEED") {
        Some(seed) => vec![seed],
        None => {
            let start = env_u64("DISTRIBKV_SEED_START").unwrap_or(0);
            let count = env_u64("DISTRIBKV_SEEDS").unwrap_or(2000);
            (start..start + count).collect()
        }
    };
    let mut failed = Vec::new();
    let mut operations = 0;
    let mut events = 0;
    // How many seeds exercised each feature, printed at the end.
    let mut covered = Coverage::default();
    let verbose = std::env::var_os("DISTRIBKV_VERBOSE").is_some();
    for &seed in &seeds {
        if verbose {
            eprintln!("seed {seed}");
        }
        let report = run_seed(seed, &options);
        covered.count(seed, &report);
        operations += report.operations;
        events += report.events;
        if !report.passed() {
            eprintln!("seed {seed} FAILED ({} nodes):", report.nodes);
            for failure in report.failures.iter().take(5) {
                eprintln!("  {failure}");
            }
            eprintln!("  faults: {}", report.faults.join("; "));
            for line in &report.trace {
                eprintln!("  | {line}");
            }
            eprintln!(
                "  replay: {settings}DISTRIBKV_SEED={seed} cargo test -p distribkv-core --features sim --release --test sweep"
            );
            failed.push(seed);
        }
    }
    eprintln!(
        "{} seeds of {} ms of faults, {operations} client operations, {events} events, {} failed",
        seeds.len(),
        options.fault_phase,
        failed.len()
    );
    eprintln!("seeds with: {}", covered.summary());
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
}

/// Seeds that exercised each feature of the sweep.
#[derive(Default)]
struct Coverage {
    lease_reads: usize,
    follower_reads: usize,
    drifting_clocks: usize,
    long_reordering: usize,
    late_timeout_now: usize,
    short_sessions: usize,
    sessions_dropped: usize,
    transfers: usize,
    forced_elections: usize,
    clients_cut: usize,
    lost_disks: usize,
    membership_changes: usize,
}

impl Coverage {
    fn count(&mut self, seed: u64, report: &distribkv_core::sim::sweep::SeedReport) {
        let config = config_for_seed(seed);
        let fault = |what: &str| report.faults.iter().any(|f| f.contains(what));
        self.lease_reads += usize::from(config.raft.lease_reads);
        self.follower_reads += usize::from(config.follower_reads);
        self.drifting_clocks += usize::from(!config.clocks.is_empty());
        self.long_reordering += usize::from(config.network.long_delay_rate > 0.0);
        self.late_timeout_now += usize::from(config.network.timeout_now_delay_rate > 0.0);
        self.short_sessions += usize::from(config.limits.session_ttl_ms < 60_000);
        self.sessions_dropped += usize::from(report.sessions_dropped > 0);
        self.transfers += usize::from(fault("transfer to"));
        self.forced_elections += usize::from(fault("campaign"));
        self.clients_cut += usize::from(fault("cut c"));
        self.lost_disks += usize::from(fault("lost"));
        self.membership_changes += usize::from(fault("membership"));
    }

    fn summary(&self) -> String {
        format!(
            "lease reads {}, follower reads {}, drifting clocks {}, long reordering {}, late TimeoutNow {}, \
             short sessions {} (sessions dropped in {}), transfers {}, forced elections {}, \
             clients cut off {}, lost disks {}, membership changes {}",
            self.lease_reads,
            self.follower_reads,
            self.drifting_clocks,
            self.long_reordering,
            self.late_timeout_now,
            self.short_sessions,
            self.sessions_dropped,
            self.transfers,
            self.forced_elections,
            self.clients_cut,
            self.lost_disks,
            self.membership_changes
        )
    }
}

/// The lost-disk rule is what keeps those seeds safe: with it switched off,
/// a node whose disk was wiped restarts at once under its old id, with no
/// memory of its term, its votes or the entries it acknowledged, and the
/// checkers catch it (terms going back, a second vote in a term, committed
/// entries lost).
#[test]
fn a_blank_disk_rejoining_under_its_old_id_is_caught() {
    let options = SweepOptions {
        retire_lost_disks: false,
        ..SweepOptions::default()
    };
    let mut caught = 0;
    let mut lost = 0;
    for seed in 0..200 {
        let report = run_seed(seed, &options);
        if report.faults.iter().any(|f| f.contains("lost")) {
            lost += 1;
            caught += usize::from(!report.passed());
        }
    }
    eprintln!("{caught} of {lost} seeds that lost a disk were caught");
    assert!(lost >= 20, "only {lost} seeds lost a disk");
    assert!(
        caught * 2 >= lost,
        "only {caught} of {lost} blank rejoins caught"
    );
}
