//! Lab 3D: snapshots.

use crate::common::Lab;
use crate::for_seeds;
use distribkv_core::raft::RoleKind;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn snapshot_lab(seed: u64, reliable: bool) -> Lab {
    Lab::with(3, seed, reliable, |config| {
        config.snapshot_every = 9;
        config.raft.snapshot_chunk_bytes = 64;
    })
}

/// The lab's snapcommon: a victim is disconnected or crashed while the
/// others commit past a snapshot; it must catch up with InstallSnapshot.
fn snap_common(seed: u64, disconnect: bool, reliable: bool, crash: bool) {
    let mut lab = snapshot_lab(seed, reliable);
    lab.one_random(3, true);
    let mut leader = lab.check_one_leader();
    for iteration in 0..30 {
        let mut victim = leader % 3 + 1;
        let mut sender = leader;
        if iteration % 3 == 1 {
            sender = leader % 3 + 1;
            victim = leader;
        }
        if disconnect {
            lab.disconnect(victim);
            lab.one_random(2, true);
        }
        if crash {
            lab.crash(victim);
            lab.one_random(2, true);
        }
        // Enough entries for a snapshot to cover what the victim lacks.
        for _ in 0..11 {
            lab.start_random(sender);
        }
        lab.one_random(2, true);
        let log_len = lab.sim.replica(sender).map_or(0, |r| r.node().log().len());
        assert!(
            log_len <= 40,
            "log of {log_len} entries: snapshots are not trimming it"
        );
        if disconnect {
            lab.connect(victim);
            lab.one_random(3, true);
            leader = lab.check_one_leader();
        }
        if crash {
            lab.restart(victim);
            lab.one_random(3, true);
            leader = lab.check_one_leader();
        }
    }
    if disconnect || crash {
        let installed: u64 = (1..=3)
            .filter_map(|id| lab.sim.replica(id))
            .map(|r| r.node().stats().snapshots_installed)
            .sum();
        assert!(
            installed > 0 || crash,
            "a lagging follower should have been sent a snapshot"
        );
    }
}

#[test]
fn snapshot_basic_3d() {
    for_seeds(|seed| snap_common(seed, false, true, false));
}

#[test]
fn snapshot_install_3d() {
    for_seeds(|seed| snap_common(seed, true, true, false));
}

#[test]
fn snapshot_install_unreliable_3d() {
    for_seeds(|seed| snap_common(seed, true, false, false));
}

#[test]
fn snapshot_install_crash_3d() {
    for_seeds(|seed| snap_common(seed, false, true, true));
}

#[test]
fn snapshot_install_uncrash_3d() {
    for_seeds(|seed| snap_common(seed, false, false, true));
}

#[test]
fn snapshot_all_crash_3d() {
    for_seeds(|seed| {
        let mut lab = snapshot_lab(seed, true);
        lab.one_random(3, true);
        for _ in 0..5 {
            for _ in 0..11 {
                lab.one_random(3, true);
            }
            let index1 = lab.one_random(3, true);
            for id in 1..=3 {
                lab.crash(id);
            }
            for id in 1..=3 {
                lab.restart(id);
            }
            let index2 = lab.one_random(3, true);
            assert!(
                index2 > index1,
                "index decreased from {index1} to {index2} across a crash of all servers"
            );
        }
    });
}

#[test]
fn snapshot_init_3d() {
    for_seeds(|seed| {
        let mut lab = snapshot_lab(seed, true);
        lab.one_random(3, true);
        for _ in 0..11 {
            lab.one_random(3, true);
        }
        for id in 1..=3 {
            lab.crash(id);
        }
        for id in 1..=3 {
            lab.restart(id);
        }
        // A server restarted from a snapshot serves and snapshots again.
        lab.one_random(3, true);
        for id in 1..=3 {
            lab.crash(id);
        }
        for id in 1..=3 {
            lab.restart(id);
        }
        lab.one_random(3, true);
        for id in 1..=3 {
            let snapshot = lab
                .sim
                .replica(id)
                .map_or(0, |r| r.node().log().snapshot().index);
            assert!(snapshot > 0, "server {id} restarted without its snapshot");
            assert!(
                lab.sim
                    .replica(id)
                    .is_some_and(|r| r.node().role() != RoleKind::Learner)
            );
        }
    });
}
