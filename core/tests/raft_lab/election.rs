//! Lab 3A: leader election.

use crate::common::{ELECTION_TIMEOUT, Lab};
use crate::for_seeds;
use distribkv_core::raft::NodeId;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn initial_election_3a() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.check_one_leader();
        lab.sleep(50);
        let term1 = lab.check_terms();
        assert!(term1 >= 1, "term is {term1}, but should be at least 1");
        // No failure: no new election.
        lab.sleep(2 * ELECTION_TIMEOUT);
        let term2 = lab.check_terms();
        assert_eq!(
            term1, term2,
            "term changed even though there were no failures"
        );
        lab.check_one_leader();
    });
}

#[test]
fn re_election_3a() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        let leader1 = lab.check_one_leader();
        lab.disconnect(leader1);
        lab.check_one_leader();
        // The old leader rejoins: it must not disturb the new one.
        lab.connect(leader1);
        let leader2 = lab.check_one_leader();
        // No quorum: no leader.
        let other = leader2 % 3 + 1;
        lab.disconnect(leader2);
        lab.disconnect(other);
        lab.sleep(2 * ELECTION_TIMEOUT);
        lab.check_no_leader();
        lab.connect(other);
        lab.check_one_leader();
        lab.connect(leader2);
        lab.check_one_leader();
    });
}

#[test]
fn many_elections_3a() {
    for_seeds(|seed| {
        let n = 7;
        let mut lab = Lab::new(n, seed, true);
        lab.check_one_leader();
        for _ in 0..10 {
            let mut out: Vec<NodeId> = Vec::new();
            while out.len() < 3 {
                let id = lab.rng.range_inclusive(1, n as u64);
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            for &id in &out {
                lab.disconnect(id);
            }
            // Either the old leader still leads the majority, or the four
            // remaining elect one within a second of the quorum being up.
            let (_, took) = lab
                .wait_for_leader(1000)
                .expect("a leader within 1 s of a quorum being up");
            assert!(took <= 1000);
            lab.check_one_leader();
            for &id in &out {
                lab.connect(id);
            }
        }
        lab.check_one_leader();
    });
}
