//! The simulator on wasm32: a representative subset of the core's tests that
//! runs both natively (`cargo test -p distribkv-core --features sim --test
//! wasm`) and on `wasm32-unknown-unknown` in Node (`cargo test -p
//! distribkv-core --features sim --target wasm32-unknown-unknown`, through
//! the `wasm-bindgen-test-runner` set in `.cargo/config.toml`).
//!
//! The trace hashes pinned here are the cross-platform determinism contract:
//! the same constants must come out on x86_64 and on wasm32. When the core's
//! behaviour changes on purpose, every pinned value changes; update them from
//! the native run's failure message (both platforms share these constants).
#![cfg(feature = "sim")]

mod common;

use common::{ELECTION_TIMEOUT, Lab, cmd};
use distribkv_core::hash::Fnv;
use distribkv_core::raft::NodeId;
use distribkv_core::sim::sweep::{SweepOptions, run_seed};
use distribkv_core::sim::{Sim, SimConfig, Workload};

// On wasm32 the runner only sees `#[wasm_bindgen_test]` functions; natively
// the same functions are ordinary `#[test]`s.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Trace hash of [`fixed_scenario`].
const FIXED_SCENARIO_HASH: u64 = 0x0e73_2362_8176_cffe;
/// Trace hash of sweep seed [`PINNED_SEED`].
const PINNED_SEED: u64 = 42;
const PINNED_SEED_HASH: u64 = 0x082a_935f_b4fa_d7bd;
/// Seeds of the sweep, and the FNV-1a fold of their trace hashes in order.
const SWEEP_SEEDS: std::ops::Range<u64> = 0..50;
const SWEEP_HASH: u64 = 0x0253_ba00_f60b_c38a;

/// Prints on the native console and on the wasm runner's.
macro_rules! say {
    ($($arg:tt)*) => {{
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_test::console_log!($($arg)*);
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!($($arg)*);
    }};
}

/// A run that touches every part of the simulator: elections, a client
/// workload, a leader crash and restart, a partition, loss and duplication,
/// a forced election, a leadership transfer and a snapshot.
fn fixed_scenario() -> Sim {
    let mut config = SimConfig {
        nodes: 5,
        seed: 2024,
        snapshot_every: 50,
        ..SimConfig::default()
    };
    config.network.latency = (2, 15);
    let mut sim = Sim::new(config);
    sim.set_workload(Workload {
        clients: 3,
        interval: 50,
        keys: 4,
        read_fraction: 0.3,
    })
    .unwrap();
    sim.run_for(1_500);
    let leader = sim.leader().expect("a leader in 1.5 s");
    sim.crash(leader).unwrap();
    sim.run_for(800);
    sim.restart(leader).unwrap();
    sim.partition(&[vec![1, 2], vec![3, 4, 5]]).unwrap();
    sim.set_drop_rate(0.05).unwrap();
    sim.set_duplicate_rate(0.05).unwrap();
    sim.run_for(1_000);
    sim.heal();
    sim.set_drop_rate(0.0).unwrap();
    sim.set_duplicate_rate(0.0).unwrap();
    sim.campaign(1).ok();
    sim.run_for(600);
    if let Some(leader) = sim.leader() {
        sim.transfer_leadership(leader % 5 + 1).ok();
    }
    sim.snapshot(3).ok();
    sim.put("x", "1");
    sim.append("x", "2");
    sim.get("x");
    sim.run_for(1_500);
    sim
}

fn check_pinned(what: &str, got: u64, pinned: u64) {
    assert_eq!(
        got, pinned,
        "{what}: trace hash {got:#018x} differs from the pinned {pinned:#018x}. Both x86_64 and \
         wasm32 must give the pinned value; if the core's behaviour changed on purpose, update \
         the constant in core/tests/wasm.rs to {got:#018x}"
    );
}

#[test]
fn trace_hash_of_a_fixed_scenario_is_pinned() {
    let sim = fixed_scenario();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(sim.history().iter().filter(|e| e.is_complete()).count() > 20);
    // The same run twice gives the same hash (no hidden state between runs).
    assert_eq!(fixed_scenario().trace_hash(), sim.trace_hash());
    check_pinned("fixed scenario", sim.trace_hash(), FIXED_SCENARIO_HASH);
}

#[test]
fn trace_hash_of_a_sweep_seed_is_pinned() {
    let report = run_seed(PINNED_SEED, &SweepOptions::default());
    assert!(report.passed(), "seed {PINNED_SEED}: {:?}", report.failures);
    check_pinned(
        &format!("sweep seed {PINNED_SEED}"),
        report.trace_hash,
        PINNED_SEED_HASH,
    );
}

/// The seed sweep (random faults, every safety check after every event, a
/// liveness phase after healing) over a few dozen seeds.
#[test]
fn seed_sweep() {
    let options = SweepOptions::default();
    let mut fold = Fnv::new();
    let mut failed = Vec::new();
    let (mut operations, mut events) = (0, 0);
    for seed in SWEEP_SEEDS {
        let report = run_seed(seed, &options);
        fold.write_u64(report.trace_hash);
        operations += report.operations;
        events += report.events;
        if !report.passed() {
            say!("seed {seed} FAILED: {:?}", report.failures);
            failed.push(seed);
        }
    }
    say!(
        "{} seeds, {operations} client operations, {events} events, {} failed",
        SWEEP_SEEDS.end - SWEEP_SEEDS.start,
        failed.len()
    );
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    check_pinned("sweep fold", fold.finish(), SWEEP_HASH);
}

// ---- the MIT 6.5840 lab checks, a subset (see raft_lab.rs for all) ----

#[test]
fn lab_initial_and_re_election() {
    for seed in [1, 2] {
        let mut lab = Lab::new(3, seed, true);
        let leader1 = lab.check_one_leader();
        let term1 = lab.check_terms();
        lab.sleep(2 * ELECTION_TIMEOUT);
        assert_eq!(lab.check_terms(), term1, "term changed without failures");
        lab.disconnect(leader1);
        let leader2 = lab.check_one_leader();
        assert_ne!(leader1, leader2);
        lab.connect(leader1);
        let leader2 = lab.check_one_leader();
        let other = leader2 % 3 + 1;
        lab.disconnect(leader2);
        lab.disconnect(other);
        lab.sleep(2 * ELECTION_TIMEOUT);
        lab.check_no_leader();
        lab.connect(other);
        lab.check_one_leader();
    }
}

#[test]
fn lab_agreement_with_failures() {
    for seed in [1, 2] {
        let mut lab = Lab::new(5, seed, true);
        let mut last = 0;
        for value in 1..=3 {
            let index = lab.one(cmd(value), 5, false);
            assert!(last == 0 || index == last + 1);
            last = index;
        }
        // A minority cannot commit.
        let leader = lab.check_one_leader();
        for offset in 1..=3 {
            lab.disconnect((leader + offset - 1) % 5 + 1);
        }
        let (index, _) = lab.start(leader, cmd(20)).expect("the leader accepts");
        lab.sleep(2 * ELECTION_TIMEOUT);
        assert_eq!(lab.n_committed(index).0, 0, "committed without a majority");
        for id in 1..=5 {
            lab.connect(id);
        }
        lab.one(cmd(1000), 5, true);
    }
}

#[test]
fn lab_persistence() {
    for seed in [1, 2] {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(11), 3, true);
        for id in 1..=3 {
            lab.crash(id);
        }
        for id in 1..=3 {
            lab.restart(id);
        }
        lab.one(cmd(12), 3, true);
        let leader = lab.check_one_leader();
        lab.crash(leader);
        lab.one(cmd(13), 2, true);
        lab.restart(leader);
        let index = lab.one(cmd(14), 3, true);
        assert_eq!(lab.n_committed(index).0, 3);
    }
}

/// Figure 8: leaders crash right after proposing; an old-term entry must
/// never be committed by counting replicas (§5.4.2).
#[test]
fn lab_figure8() {
    for seed in 1..4 {
        let n = 5;
        let mut lab = Lab::with(n, seed, true, |config| config.max_entries_per_message = 1);
        lab.one_random(1, true);
        let mut up = n;
        for _ in 0..300 {
            let mut leader = None;
            for id in 1..=n as NodeId {
                if lab.is_up(id) && lab.start_random(id).is_some() {
                    leader = Some(id);
                }
            }
            let pause = if lab.rng.range(0, 1000) < 100 {
                lab.rng.range(0, ELECTION_TIMEOUT / 2)
            } else {
                lab.rng.range(0, 13)
            };
            lab.sleep(pause);
            if let Some(leader) = leader {
                lab.crash(leader);
                up -= 1;
            }
            if up < 3 {
                let id = lab.rng.range_inclusive(1, n as u64);
                if !lab.is_up(id) {
                    lab.restart(id);
                    up += 1;
                }
            }
        }
        for id in 1..=n as NodeId {
            lab.restart(id);
        }
        lab.one_random(n, true);
    }
}

/// A follower that was away while the others compacted their logs catches
/// up through a chunked InstallSnapshot.
#[test]
fn lab_snapshot_install() {
    for seed in [1, 2] {
        let mut lab = Lab::with(3, seed, true, |config| {
            config.snapshot_every = 9;
            config.snapshot_chunk_bytes = 64;
        });
        lab.one_random(3, true);
        let mut leader = lab.check_one_leader();
        for _ in 0..6 {
            let victim = leader % 3 + 1;
            lab.disconnect(victim);
            for _ in 0..11 {
                lab.start_random(leader);
            }
            lab.one_random(2, true);
            lab.connect(victim);
            lab.one_random(3, true);
            leader = lab.check_one_leader();
        }
        let installed: u64 = (1..=3)
            .filter_map(|id| lab.sim.replica(id))
            .map(|r| r.node().stats().snapshots_installed)
            .sum();
        assert!(
            installed > 0,
            "a lagging follower should have been sent a snapshot"
        );
    }
}
