//! Lab 3C: persistence, Figure 8 and churn.

use crate::common::{self, ELECTION_TIMEOUT, Lab, cmd};
use crate::{FIGURE8_SEEDS, for_seeds};
use distribkv_core::raft::NodeId;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn persist1_3c() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(11), 3, true);
        for id in 1..=3 {
            lab.crash(id);
        }
        for id in 1..=3 {
            lab.restart(id);
        }
        lab.one(cmd(12), 3, true);
        let leader1 = lab.check_one_leader();
        lab.crash(leader1);
        lab.restart(leader1);
        lab.one(cmd(13), 3, true);
        let leader2 = lab.check_one_leader();
        lab.crash(leader2);
        lab.one(cmd(14), 2, true);
        lab.restart(leader2);
        let index = lab.one(cmd(15), 3, true);
        let i3 = lab.check_one_leader() % 3 + 1;
        lab.crash(i3);
        lab.one(cmd(16), 2, true);
        lab.restart(i3);
        lab.one(cmd(17), 3, true);
        assert!(lab.n_committed(index).0 == 3);
    });
}

#[test]
fn persist2_3c() {
    for_seeds(|seed| {
        let n = 5;
        let mut lab = Lab::new(n, seed, true);
        let mut value = 1;
        for _ in 0..5 {
            lab.one(cmd(10 + value), n, true);
            value += 1;
            let leader1 = lab.check_one_leader();
            lab.crash(leader1 % 5 + 1);
            lab.crash((leader1 + 1) % 5 + 1);
            lab.one(cmd(10 + value), n - 2, true);
            value += 1;
            lab.crash(leader1);
            lab.crash((leader1 + 2) % 5 + 1);
            lab.crash((leader1 + 3) % 5 + 1);
            lab.restart(leader1 % 5 + 1);
            lab.restart((leader1 + 1) % 5 + 1);
            lab.restart((leader1 + 2) % 5 + 1);
            lab.sleep(ELECTION_TIMEOUT);
            lab.restart((leader1 + 3) % 5 + 1);
            lab.one(cmd(10 + value), n - 1, true);
            value += 1;
            lab.restart(leader1);
        }
        lab.one(cmd(1000), n, true);
    });
}

#[test]
fn persist3_3c() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(101), 3, true);
        let leader = lab.check_one_leader();
        lab.disconnect(leader % 3 + 1);
        lab.one(cmd(102), 2, true);
        lab.crash(leader % 3 + 1);
        lab.crash(leader);
        lab.connect(leader % 3 + 1);
        lab.restart(leader % 3 + 1);
        lab.restart(leader);
        lab.one(cmd(103), 2, true);
        lab.restart(leader);
        lab.one(cmd(104), 3, true);
    });
}

/// Figure 8 of the paper, as the lab drives it: leaders crash right after
/// proposing, so entries of old terms sit on some servers; a leader must
/// never commit such an entry by counting replicas (§5.4.2).
#[test]
fn figure8_3c() {
    FIGURE8_SEEDS.for_each(|seed| {
        let n = 5;
        // One entry per AppendEntries, so a new leader's old-term entries
        // can reach a majority before its own no-op does.
        let mut lab = Lab::with(n, seed, true, |config| {
            config.raft.max_entries_per_message = 1
        });
        lab.one_random(1, true);
        let mut up = n;
        for _ in 0..1000 {
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
    });
}

#[test]
fn unreliable_agree_3c() {
    for_seeds(|seed| {
        let n = 5;
        let mut lab = Lab::new(n, seed, false);
        for iteration in 1..50 {
            for j in 0..4 {
                let leader = lab.sim.leader();
                if let Some(leader) = leader {
                    lab.start(leader, cmd(100 * iteration + j));
                }
            }
            lab.one(cmd(iteration), 1, true);
        }
        lab.sim.set_drop_rate(0.0).unwrap();
        lab.one(cmd(100), n, true);
    });
}

#[test]
fn figure8_unreliable_3c() {
    for_seeds(|seed| {
        let n = 5;
        let mut lab = Lab::new(n, seed, false);
        lab.one_random(1, true);
        let mut connected = n;
        for iteration in 0..1000 {
            if iteration == 200 {
                // The lab turns on long reordering here.
                lab.sim.set_latency(1, 27).unwrap();
            }
            let mut leader = None;
            for id in 1..=n as NodeId {
                if lab.start_random(id).is_some() && lab.is_connected(id) {
                    leader = Some(id);
                }
            }
            let pause = if lab.rng.range(0, 1000) < 100 {
                lab.rng.range(0, ELECTION_TIMEOUT / 2)
            } else {
                lab.rng.range(0, 13)
            };
            lab.sleep(pause);
            if let Some(leader) = leader
                && lab.rng.range(0, 1000) < ELECTION_TIMEOUT / 2
            {
                lab.disconnect(leader);
                connected -= 1;
            }
            if connected < 3 {
                let id = lab.rng.range_inclusive(1, n as u64);
                if !lab.is_connected(id) {
                    lab.connect(id);
                    connected += 1;
                }
            }
        }
        for id in 1..=n as NodeId {
            lab.connect(id);
        }
        lab.sim.set_drop_rate(0.0).unwrap();
        lab.one_random(n, true);
    });
}

/// Servers crash, restart and get cut off while clients keep proposing;
/// afterwards every value a client saw committed is in every server's log.
fn churn(seed: u64, reliable: bool) {
    let n = 5;
    let mut lab = Lab::new(n, seed, reliable);
    let mut committed = Vec::new();
    let mut value = 1;
    let end = lab.sim.now() + 5_000;
    while lab.sim.now() < end {
        // Three "clients" each try one command per round.
        for _ in 0..3 {
            for id in 1..=n as NodeId {
                if lab.is_up(id)
                    && let Some((index, _)) = lab.start(id, cmd(value))
                {
                    committed.push((index, value));
                    value += 1;
                    break;
                }
            }
        }
        let pause = lab.rng.range(0, 100);
        lab.sleep(pause);
        let target = lab.rng.range_inclusive(1, n as u64);
        match lab.rng.range(0, 1000) {
            0..200 => lab.disconnect(target),
            200..400 => lab.connect(target),
            400..600 if lab.is_up(target) => lab.crash(target),
            600..800 => lab.restart(target),
            _ => {}
        }
        let down = (1..=n as NodeId)
            .filter(|&id| !lab.is_up(id) || !lab.is_connected(id))
            .count();
        if down > n / 2 {
            for id in 1..=n as NodeId {
                lab.restart(id);
                lab.connect(id);
            }
        }
    }
    lab.sleep(ELECTION_TIMEOUT);
    lab.sim.set_drop_rate(0.0).unwrap();
    for id in 1..=n as NodeId {
        lab.restart(id);
        lab.connect(id);
    }
    let last = lab.one(cmd(u64::MAX / 2), n, true);
    // Every proposal that got an index either committed there, or was
    // superseded by another entry; whatever committed, all servers agree on.
    let mut agreed = 0;
    for (index, value) in committed {
        if index > last {
            continue;
        }
        let (count, digest) = lab.n_committed(index);
        assert_eq!(count, n, "index {index} not applied everywhere");
        if digest == Some(common::digest(&cmd(value))) {
            agreed += 1;
        }
    }
    assert!(agreed > 0, "churn made no progress");
}

#[test]
fn reliable_churn_3c() {
    for_seeds(|seed| churn(seed, true));
}

#[test]
fn unreliable_churn_3c() {
    for_seeds(|seed| churn(seed, false));
}
