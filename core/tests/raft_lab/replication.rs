//! Lab 3B: log replication.

use crate::common::{self, ELECTION_TIMEOUT, Lab, cmd};
use crate::for_seeds;

// On wasm32 the test runner only sees `#[wasm_bindgen_test]` functions.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

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
