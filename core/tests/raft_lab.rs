//! The MIT 6.5840 Raft lab tests (3A–3D), run in the simulator with the
//! labs' bounds in virtual time. Each runs on several seeds.
//!
//! Where our Raft differs from the lab's by design: a new leader appends a
//! no-op entry of its term (§8), so the first client command lands at index 2,
//! and PreVote adds one round of messages to an election.
#![cfg(feature = "sim")]

mod common;

use common::{ELECTION_TIMEOUT, Lab, cmd};
use distribkv_core::raft::{NodeId, RoleKind};

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const SEEDS: [u64; 3] = [1, 2, 3];

/// Figure 8 is a rare interleaving: more seeds.
const FIGURE8_SEEDS: std::ops::Range<u64> = 1..41;

fn for_seeds(test: impl Fn(u64)) {
    for seed in SEEDS {
        test(seed);
    }
}

// ---- 3A: leader election ----

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

// ---- 3B: log replication ----

#[test]
fn basic_agree_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.check_one_leader();
        let mut expected = None;
        for value in 1..=3 {
            let index = lab.one(cmd(value), 3, false);
            if let Some(previous) = expected {
                assert_eq!(index, previous + 1, "commands occupy consecutive indexes");
            }
            expected = Some(index);
        }
    });
}

#[test]
fn rpc_bytes_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(99), 3, false);
        let before = lab.bytes_sent();
        let mut sent = 0;
        for value in 2..12u64 {
            let command = bytes::Bytes::from(vec![b'a' + (value % 26) as u8; 5000]);
            sent += command.len() as u64;
            lab.one(command, 3, false);
        }
        let used = lab.bytes_sent() - before;
        let limit = 3 * sent + 50_000;
        assert!(
            used <= limit,
            "too many RPC bytes: {used} for {sent} bytes of commands (limit {limit})"
        );
    });
}

#[test]
fn follower_failure_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(101), 3, false);
        let leader1 = lab.check_one_leader();
        lab.disconnect(leader1 % 3 + 1);
        lab.one(cmd(102), 2, false);
        lab.sleep(ELECTION_TIMEOUT);
        lab.one(cmd(103), 2, false);
        let leader2 = lab.check_one_leader();
        lab.disconnect(leader2 % 3 + 1);
        lab.disconnect((leader2 + 1) % 3 + 1);
        let (index, _) = lab
            .start(leader2, cmd(104))
            .expect("leader accepts the command");
        lab.sleep(2 * ELECTION_TIMEOUT);
        let (count, _) = lab.n_committed(index);
        assert_eq!(count, 0, "{count} committed but no majority");
    });
}

#[test]
fn leader_failure_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(101), 3, false);
        let leader1 = lab.check_one_leader();
        lab.disconnect(leader1);
        lab.one(cmd(102), 2, false);
        lab.sleep(ELECTION_TIMEOUT);
        lab.one(cmd(103), 2, false);
        let leader2 = lab.check_one_leader();
        lab.disconnect(leader2);
        for id in 1..=3 {
            lab.start(id, cmd(104));
        }
        lab.sleep(2 * ELECTION_TIMEOUT);
        let last = lab.sim.checker().committed_index();
        for index in 1..=last + 2 {
            let (_, value) = lab.n_committed(index);
            assert_ne!(
                value,
                Some(common::digest(&cmd(104))),
                "104 committed without a majority"
            );
        }
    });
}

#[test]
fn fail_agree_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(101), 3, false);
        let leader = lab.check_one_leader();
        let follower = leader % 3 + 1;
        lab.disconnect(follower);
        for value in 102..=105 {
            lab.one(cmd(value), 2, false);
        }
        lab.sleep(ELECTION_TIMEOUT);
        lab.connect(follower);
        // The rejoined follower catches up: commands reach all three.
        lab.one(cmd(106), 3, true);
        lab.sleep(ELECTION_TIMEOUT);
        lab.one(cmd(107), 3, true);
    });
}

#[test]
fn fail_no_agree_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(5, seed, true);
        lab.one(cmd(10), 5, false);
        let leader = lab.check_one_leader();
        for offset in 1..=3 {
            lab.disconnect((leader + offset - 1) % 5 + 1);
        }
        let (index, _) = lab.start(leader, cmd(20)).expect("leader accepts");
        lab.sleep(2 * ELECTION_TIMEOUT);
        assert_eq!(lab.n_committed(index).0, 0, "committed without a majority");
        for id in 1..=5 {
            lab.connect(id);
        }
        // The minority's uncommitted entry may be overwritten; agreement resumes.
        lab.one(cmd(1000), 5, true);
    });
}

#[test]
fn concurrent_starts_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        let leader = lab.check_one_leader();
        lab.one(cmd(0), 3, false);
        let mut started = Vec::new();
        for value in 1..=5 {
            let (index, term) = lab.start(leader, cmd(100 + value)).expect("still leader");
            started.push((index, term, value));
        }
        let term = started[0].1;
        assert!(
            started.iter().all(|&(_, t, _)| t == term),
            "one term for all five"
        );
        for (index, _, value) in started {
            let digest = lab
                .wait(index, 3, Some(term))
                .expect("no term change in a quiet cluster");
            assert_eq!(digest, common::digest(&cmd(100 + value)));
        }
    });
}

#[test]
fn rejoin_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        lab.one(cmd(101), 3, true);
        let leader1 = lab.check_one_leader();
        lab.disconnect(leader1);
        // The old leader appends entries it cannot commit.
        for value in 102..=104 {
            lab.start(leader1, cmd(value));
        }
        lab.one(cmd(103), 2, true);
        let leader2 = lab.check_one_leader();
        lab.disconnect(leader2);
        lab.connect(leader1);
        lab.one(cmd(104), 2, true);
        lab.connect(leader2);
        lab.one(cmd(105), 3, true);
    });
}

#[test]
fn backup_3b() {
    for_seeds(|seed| {
        let n = 5;
        let mut lab = Lab::new(n, seed, true);
        lab.one_random(n, true);
        // Leader and one follower in a minority: 50 entries that never commit.
        let leader1 = lab.check_one_leader();
        for offset in 2..=4 {
            lab.disconnect((leader1 + offset - 1) % 5 + 1);
        }
        for _ in 0..50 {
            let value = 1000 + lab.rng.next_u64() % 1000;
            lab.start(leader1, cmd(value));
        }
        lab.sleep(ELECTION_TIMEOUT / 2);
        lab.disconnect(leader1);
        lab.disconnect(leader1 % 5 + 1);
        // The other three commit 50 entries.
        for offset in 2..=4 {
            lab.connect((leader1 + offset - 1) % 5 + 1);
        }
        for _ in 0..50 {
            let value = 2000 + lab.rng.next_u64() % 1000;
            lab.one(cmd(value), 3, true);
        }
        // Their leader and one follower in a minority: 50 more uncommitted.
        let leader2 = lab.check_one_leader();
        let mut other = leader1 + 2;
        if other > 5 {
            other -= 5;
        }
        if other == leader2 {
            other = leader2 % 5 + 1;
        }
        lab.disconnect(other);
        for _ in 0..50 {
            let value = 3000 + lab.rng.next_u64() % 1000;
            lab.start(leader2, cmd(value));
        }
        lab.sleep(ELECTION_TIMEOUT / 2);
        // The original pair plus `other` now form the majority: long divergent
        // logs must be repaired quickly by the back-off.
        for id in 1..=5 {
            lab.disconnect(id);
        }
        lab.connect(leader1);
        lab.connect(leader1 % 5 + 1);
        lab.connect(other);
        let started = lab.sim.now();
        for _ in 0..50 {
            let value = 4000 + lab.rng.next_u64() % 1000;
            lab.one(cmd(value), 3, true);
        }
        for id in 1..=5 {
            lab.connect(id);
        }
        let value = 5000 + lab.rng.next_u64() % 1000;
        lab.one(cmd(value), 5, true);
        let took = lab.sim.now().saturating_since(started);
        assert!(took < 20_000, "repair took {took} ms of virtual time");
    });
}

#[test]
fn count_3b() {
    for_seeds(|seed| {
        let mut lab = Lab::new(3, seed, true);
        let (leader, _) = lab.wait_for_leader(5_000).expect("a leader");
        let election = lab.rpc_count();
        assert!(
            election <= 30,
            "too many RPCs ({election}) to elect an initial leader"
        );
        // Agreement on a few commands costs a few RPCs each.
        lab.sleep(100);
        let before = lab.rpc_count();
        let (start_index, term) = lab.start(leader, cmd(1)).expect("leader");
        for value in 2..=10 {
            let (index, t) = lab.start(leader, cmd(value)).expect("leader");
            assert_eq!((index, t), (start_index + value - 1, term));
        }
        lab.wait(start_index + 9, 3, Some(term))
            .expect("quiet cluster");
        let used = lab.rpc_count() - before;
        assert!(
            used <= (10 + 1 + 3) * 3,
            "too many RPCs ({used}) for 10 entries"
        );
        // Idle: heartbeats only.
        lab.sleep(ELECTION_TIMEOUT);
        let before = lab.rpc_count();
        lab.sleep(ELECTION_TIMEOUT);
        let idle = lab.rpc_count() - before;
        assert!(idle <= 60, "too many RPCs ({idle}) in an idle second");
        assert_eq!(lab.sim.leader(), Some(leader));
    });
}

// ---- 3C: persistence ----

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

// ---- 3D: snapshots ----

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
