//! The 6.5840 `shardctrler` tests, on the state machine alone (the
//! replicated versions, with crashes and concurrent clerks, run in the
//! sharded simulator).

use super::*;
use crate::rng::Rng;
use alloc::collections::BTreeSet;

const SHARDS: u32 = 10;

struct Driver {
    controller: Controller,
    index: LogIndex,
    client: u64,
    seq: u64,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            controller: Controller::new(SHARDS),
            index: 0,
            client: 77,
            seq: 0,
        }
    }

    fn run(&mut self, op: ControllerOp) -> ControllerReply {
        self.seq += 1;
        self.run_as(self.client, self.seq, op)
    }

    fn run_as(&mut self, client: u64, seq: u64, op: ControllerOp) -> ControllerReply {
        self.index += 1;
        let command = ControllerCommand {
            client,
            seq,
            at: self.index,
            op,
        };
        let payload = Payload::Command(command.encode());
        self.controller
            .apply(self.index, &payload)
            .expect("a controller command")
    }

    fn join(&mut self, groups: &[GroupId]) {
        let map = groups
            .iter()
            .map(|g| (*g, vec![*g * 10 + 1, *g * 10 + 2]))
            .collect();
        assert_eq!(self.run(ControllerOp::Join(map)), ControllerReply::Done);
    }

    fn leave(&mut self, groups: &[GroupId]) {
        assert_eq!(
            self.run(ControllerOp::Leave(groups.to_vec())),
            ControllerReply::Done
        );
    }

    fn query(&mut self, num: Option<u64>) -> ShardConfig {
        match self.run(ControllerOp::Query(num)) {
            ControllerReply::Config(c) => c,
            other => panic!("query answered {other:?}"),
        }
    }
}

/// 6.5840's `check`: the latest configuration holds exactly `groups`, every
/// shard is owned by one of them, and loads differ by at most one.
fn check(config: &ShardConfig, groups: &[GroupId]) {
    let want: BTreeSet<GroupId> = groups.iter().copied().collect();
    let have: BTreeSet<GroupId> = config.groups.keys().copied().collect();
    assert_eq!(have, want, "groups of configuration {}", config.num);
    if groups.is_empty() {
        assert!(config.shards.iter().all(|g| *g == 0));
        return;
    }
    for (s, g) in config.shards.iter().enumerate() {
        assert!(want.contains(g), "shard {s} owned by {g}, not a group");
    }
    let load = config.load();
    let min = load.values().min().unwrap();
    let max = load.values().max().unwrap();
    assert!(max - min <= 1, "unbalanced: {load:?}");
}

#[test]
fn basic_join_leave_query() {
    let mut d = Driver::new();
    let c0 = d.query(None);
    assert_eq!(c0, ShardConfig::initial(SHARDS));
    check(&c0, &[]);

    d.join(&[1]);
    check(&d.query(None), &[1]);
    d.join(&[2]);
    check(&d.query(None), &[1, 2]);
    d.join(&[2].map(|g| g + 1));
    check(&d.query(None), &[1, 2, 3]);
    let latest = d.query(None);
    assert_eq!(latest.groups[&2], vec![21, 22], "servers as joined");
    d.leave(&[1]);
    check(&d.query(None), &[2, 3]);
    d.leave(&[2]);
    check(&d.query(None), &[3]);
    // 6.5840 then leaves group 3 too; here the last group stays (see
    // `the_last_group_cannot_leave`).
    assert_eq!(
        d.run(ControllerOp::Leave(vec![3])),
        ControllerReply::Refused(ControllerError::LastGroup(3))
    );
    check(&d.query(None), &[3]);
    assert_eq!(d.query(None).num, 5);
}

#[test]
fn the_last_group_cannot_leave() {
    let mut d = Driver::new();
    d.join(&[1, 2]);
    let before = d.query(None);
    // Alone, or with others in one request: no group would be left.
    let last = ControllerReply::Refused(ControllerError::LastGroup(2));
    assert_eq!(d.run_as(9, 1, ControllerOp::Leave(vec![1, 2])), last);
    assert_eq!(
        d.run_as(9, 1, ControllerOp::Leave(vec![1, 2])),
        last,
        "a retry gets the same refusal"
    );
    assert_eq!(
        d.run(ControllerOp::Leave(vec![2, 1])),
        ControllerReply::Refused(ControllerError::LastGroup(1)),
        "the group named is the last one the request would remove"
    );
    assert_eq!(d.query(None), before, "refusals make no configuration");
    d.leave(&[1]);
    let alone = d.query(None);
    check(&alone, &[2]);
    assert_eq!(
        d.run(ControllerOp::Leave(vec![2])),
        ControllerReply::Refused(ControllerError::LastGroup(2))
    );
    assert_eq!(d.query(None), alone);
    assert!(alone.shards.iter().all(|g| *g == 2), "every shard owned");
    // The refusal is in the session, so it survives a snapshot: a retry
    // after a restore is answered the same, not applied.
    let mut restored = Controller::restore(d.controller.snapshot()).unwrap();
    let retry = ControllerCommand {
        client: 9,
        seq: 1,
        at: d.index + 1,
        op: ControllerOp::Leave(vec![1, 2]),
    };
    assert_eq!(
        restored.apply(d.index + 1, &Payload::Command(retry.encode())),
        Some(last)
    );
    assert_eq!(restored.latest(), &alone);
    // With another group joined first, the group can leave.
    d.join(&[3]);
    d.leave(&[2]);
    check(&d.query(None), &[3]);
    assert_eq!(
        alloc::format!("{}", ControllerError::LastGroup(3)),
        "group 3 is the last group: its shards would have no owner (join another group first)"
    );
}

#[test]
fn historical_queries_return_the_same_configurations() {
    let mut d = Driver::new();
    d.join(&[1]);
    d.join(&[2, 3]);
    d.leave(&[1]);
    d.join(&[4]);
    let history: Vec<ShardConfig> = (0..=4).map(|n| d.query(Some(n))).collect();
    for (n, c) in history.iter().enumerate() {
        assert_eq!(c.num, n as u64);
    }
    d.leave(&[2]);
    d.join(&[5]);
    for c in &history {
        assert_eq!(&d.query(Some(c.num)), c, "configuration {} changed", c.num);
    }
    assert_eq!(
        d.query(Some(1000)).num,
        6,
        "a number past the latest reads the latest"
    );
    // And after a snapshot and restore, the same history.
    let restored = Controller::restore(d.controller.snapshot()).unwrap();
    assert_eq!(restored, d.controller);
}

#[test]
fn move_assigns_one_shard_without_rebalancing() {
    let mut d = Driver::new();
    d.join(&[1, 2]);
    for s in 0..SHARDS {
        let g = if s < SHARDS / 2 { 1 } else { 2 };
        assert_eq!(
            d.run(ControllerOp::Move { shard: s, group: g }),
            ControllerReply::Done
        );
    }
    let c = d.query(None);
    for s in 0..SHARDS {
        assert_eq!(c.owner(s), if s < SHARDS / 2 { 1 } else { 2 });
    }
    assert_eq!(
        d.run(ControllerOp::Move {
            shard: SHARDS,
            group: 1
        }),
        ControllerReply::Refused(ControllerError::UnknownShard(SHARDS))
    );
    assert_eq!(
        d.run(ControllerOp::Move { shard: 0, group: 9 }),
        ControllerReply::Refused(ControllerError::UnknownGroup(9))
    );
    assert_eq!(d.query(None).num, c.num, "refusals make no configuration");
}

#[test]
fn bad_joins_and_leaves_are_refused() {
    let mut d = Driver::new();
    d.join(&[1]);
    let again = BTreeMap::from([(1, vec![11])]);
    assert_eq!(
        d.run(ControllerOp::Join(again)),
        ControllerReply::Refused(ControllerError::BadJoin(1))
    );
    assert_eq!(
        d.run(ControllerOp::Join(BTreeMap::from([(0, vec![1])]))),
        ControllerReply::Refused(ControllerError::BadJoin(0))
    );
    assert_eq!(
        d.run(ControllerOp::Join(BTreeMap::from([(5, vec![])]))),
        ControllerReply::Refused(ControllerError::BadJoin(5))
    );
    assert_eq!(
        d.run(ControllerOp::Leave(vec![1, 8])),
        ControllerReply::Refused(ControllerError::UnknownGroup(8))
    );
    assert_eq!(d.query(None).num, 1);
    check(&d.query(None), &[1]);
}

#[test]
fn retried_requests_take_effect_once() {
    let mut d = Driver::new();
    let join = ControllerOp::Join(BTreeMap::from([(1, vec![1])]));
    assert_eq!(d.run_as(5, 1, join.clone()), ControllerReply::Done);
    assert_eq!(d.run_as(5, 1, join.clone()), ControllerReply::Done, "retry");
    assert_eq!(d.query(None).num, 1, "one configuration for two deliveries");
    let bad = ControllerOp::Leave(vec![3]);
    let refused = ControllerReply::Refused(ControllerError::UnknownGroup(3));
    assert_eq!(d.run_as(5, 2, bad.clone()), refused);
    assert_eq!(
        d.run_as(5, 2, bad),
        refused,
        "a retried refusal is the same refusal"
    );
    assert_eq!(
        d.run_as(5, 1, join),
        ControllerReply::Refused(ControllerError::Stale)
    );
    // Sessions survive a snapshot.
    let mut restored = Controller::restore(d.controller.snapshot()).unwrap();
    let command = ControllerCommand {
        client: 5,
        seq: 2,
        at: 100,
        op: ControllerOp::Leave(vec![3]),
    };
    assert_eq!(
        restored.apply(100, &Payload::Command(command.encode())),
        Some(refused)
    );
}

#[test]
fn a_retry_from_an_expired_session_is_refused_not_applied_again() {
    let mut d = Driver::new();
    let move_op = |shard| ControllerOp::Move { shard, group: 1 };
    d.join(&[1, 2]);
    let before = d.query(None).num;
    assert_eq!(d.run_as(5, 3, move_op(0)), ControllerReply::Done);
    // Client 5 goes quiet; another client's request, an hour of log clock
    // later, expires its session.
    d.index += SESSION_TTL_MS + 1;
    assert_eq!(d.run_as(6, 1, move_op(1)), ControllerReply::Done);
    assert_eq!(d.query(None).num, before + 2);
    // The late retry of client 5's move must not make a configuration.
    let expired = ControllerReply::Refused(ControllerError::SessionExpired);
    assert_eq!(d.run_as(5, 3, move_op(0)), expired);
    assert_eq!(d.run_as(5, 2, move_op(0)), expired, "older still");
    assert_eq!(d.query(None).num, before + 2, "nothing applied twice");
    // The tombstone survives a snapshot.
    let mut restored = Controller::restore(d.controller.snapshot()).unwrap();
    assert_eq!(restored, d.controller);
    let retry = ControllerCommand {
        client: 5,
        seq: 3,
        at: d.index + 1,
        op: move_op(0),
    };
    assert_eq!(
        restored.apply(d.index + 1, &Payload::Command(retry.encode())),
        Some(expired)
    );
    // A newer request of the client opens a new session.
    assert_eq!(d.run_as(5, 4, move_op(2)), ControllerReply::Done);
    assert_eq!(d.run_as(5, 4, move_op(2)), ControllerReply::Done, "retry");
    assert_eq!(d.query(None).num, before + 3);
}

#[test]
fn minimal_transfers_after_joins_and_leaves() {
    let mut d = Driver::new();
    let first: Vec<GroupId> = (1..=5).collect();
    d.join(&first);
    let c1 = d.query(None);
    check(&c1, &first);
    // 6.5840: joining more groups moves only shards that go to a new group.
    let more: Vec<GroupId> = (10..=13).collect();
    d.join(&more);
    let c2 = d.query(None);
    for s in 0..SHARDS {
        if c2.owner(s) < 10 {
            assert_eq!(
                c2.owner(s),
                c1.owner(s),
                "shard {s} moved between old groups"
            );
        }
    }
    // Leaving moves only the shards of the groups that left.
    d.leave(&more);
    let c3 = d.query(None);
    for s in 0..SHARDS {
        if c2.owner(s) < 10 {
            assert_eq!(
                c3.owner(s),
                c2.owner(s),
                "shard {s} of a staying group moved"
            );
        }
    }
    check(&c3, &first);
}

#[test]
fn rebalance_moves_the_minimum_and_is_deterministic() {
    let mut rng = Rng::new(7);
    for _ in 0..500 {
        let shards_n = rng.range_inclusive(1, 40) as usize;
        let old_groups: Vec<GroupId> = (1..=rng.range_inclusive(0, 12)).collect();
        let mut shards = vec![0; shards_n];
        rebalance(&mut shards, &old_groups);
        // Random churn: drop some groups, add others.
        let mut groups: Vec<GroupId> = old_groups
            .iter()
            .copied()
            .filter(|_| rng.chance(0.7))
            .collect();
        groups.extend((20..20 + rng.range_inclusive(0, 6)).filter(|_| rng.chance(0.5)));
        let before = shards.clone();
        let mut again = shards.clone();
        rebalance(&mut shards, &groups);
        rebalance(&mut again, &groups);
        assert_eq!(shards, again, "deterministic");
        if groups.is_empty() {
            assert!(shards.iter().all(|g| *g == 0));
            continue;
        }
        let mut load: BTreeMap<GroupId, usize> = groups.iter().map(|g| (*g, 0)).collect();
        for g in &shards {
            *load.get_mut(g).expect("owned by a group") += 1;
        }
        let min = *load.values().min().unwrap();
        let max = *load.values().max().unwrap();
        assert!(max - min <= 1, "{load:?}");
        // The least any balanced assignment moves: shards of departed
        // groups, plus each staying group's surplus over ⌈S/G⌉ (or ⌊S/G⌋
        // once the groups at ⌈S/G⌉ are taken).
        let moved = before.iter().zip(&shards).filter(|(a, b)| a != b).count();
        let orphaned = before.iter().filter(|g| !groups.contains(g)).count();
        let base = shards_n / groups.len();
        let extra = shards_n % groups.len();
        let mut held: Vec<usize> = groups
            .iter()
            .map(|g| before.iter().filter(|x| *x == g).count())
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        let surplus: usize = held
            .iter()
            .enumerate()
            .map(|(rank, h)| h.saturating_sub(base + usize::from(rank < extra)))
            .sum();
        assert_eq!(
            moved,
            orphaned + surplus,
            "{before:?} -> {shards:?} over {groups:?}"
        );
    }
}

#[test]
fn concurrent_clients_interleaved_keep_every_configuration_balanced() {
    // 6.5840 "concurrent leave/join": many clients, each joining and then
    // leaving its own group, interleaved arbitrarily in the log, with
    // duplicated deliveries.
    // A group that stays throughout, as the last group cannot leave.
    let mut d = Driver::new();
    d.join(&[1]);
    let mut rng = Rng::new(3);
    let clients: Vec<u64> = (1..=10).collect();
    let mut step = vec![0u64; clients.len()];
    while step.iter().any(|s| *s < 2) {
        let i = rng.index(clients.len());
        if step[i] >= 2 {
            continue;
        }
        let g = 100 + i as u64;
        let op = if step[i] == 0 {
            ControllerOp::Join(BTreeMap::from([(g, vec![g])]))
        } else {
            ControllerOp::Leave(vec![g])
        };
        let seq = step[i] + 1;
        assert_eq!(d.run_as(clients[i], seq, op.clone()), ControllerReply::Done);
        if rng.chance(0.3) {
            assert_eq!(d.run_as(clients[i], seq, op), ControllerReply::Done);
        }
        step[i] += 1;
        let latest = d.query(None);
        let groups: Vec<GroupId> = latest.groups.keys().copied().collect();
        check(&latest, &groups);
    }
    assert_eq!(d.query(None).num, 21, "one configuration per request");
    check(&d.query(None), &[1]);
}

#[test]
fn more_groups_than_shards_leaves_some_idle() {
    let mut d = Driver::new();
    let groups: Vec<GroupId> = (1..=(SHARDS as u64 + 3)).collect();
    d.join(&groups);
    let c = d.query(None);
    check(&c, &groups);
    let idle = c.load().values().filter(|n| **n == 0).count();
    assert_eq!(idle, 3);
    // Leaving an idle group moves nothing.
    let idle_group = *c.load().iter().find(|(_, n)| **n == 0).unwrap().0;
    d.leave(&[idle_group]);
    assert_eq!(d.query(None).shards, c.shards);
}

#[test]
fn malformed_commands_are_skipped() {
    let mut d = Driver::new();
    for bytes in [
        &b""[..],
        b"\x01",
        b"\x02abc",
        b"\x01\x01\x01\x01\x09",
        b"\x01\x01\x01\x01\x01\xff\xff\xff\xff\x0f",
    ] {
        assert_eq!(
            d.controller
                .apply(1, &Payload::Command(Bytes::copy_from_slice(bytes))),
            None
        );
    }
    assert!(Controller::restore(Bytes::from_static(b"DKVC\x00\x05")).is_err());
    assert_eq!(d.query(None).num, 0);
}

#[test]
fn a_group_that_left_is_retired_only_when_no_configuration_needs_it() {
    let mut d = Driver::new();
    d.join(&[1, 2]); // configuration 1
    d.leave(&[1]); // 2
    let retire = |group, config_num| ControllerOp::Retire { group, config_num };
    let refused = |g| ControllerReply::Refused(ControllerError::NotRetirable(g));
    // Still a member, never a member, or asked from a configuration that
    // still has it: refused, nothing changes.
    assert_eq!(d.run(retire(2, 2)), refused(2));
    assert_eq!(d.run(retire(3, 2)), refused(3));
    assert_eq!(d.run(retire(1, 1)), refused(1));
    assert_eq!(d.run(retire(1, 9)), refused(1));
    // A quick rejoin and a second leave: a replica still at configuration
    // 2 would have to go through 3, where it owns shards.
    d.join(&[1]); // 3
    d.leave(&[1]); // 4
    assert_eq!(d.run(retire(1, 2)), refused(1));
    assert!(!d.controller.is_retired(1));
    let before = d.controller.latest().clone();
    assert_eq!(d.run(retire(1, 4)), ControllerReply::Done);
    assert!(d.controller.is_retired(1));
    // Idempotent, with no session and no new configuration.
    assert_eq!(d.run_as(0, 0, retire(1, 4)), ControllerReply::Done);
    assert_eq!(d.controller.latest(), &before);
    // Its id cannot join again; other groups can.
    let join = |g: GroupId| ControllerOp::Join(BTreeMap::from([(g, vec![9])]));
    assert_eq!(
        d.run(join(1)),
        ControllerReply::Refused(ControllerError::Retired(1))
    );
    // A retried refused join gets the same refusal back (session code).
    assert_eq!(
        d.run_as(d.client, d.seq, join(1)),
        ControllerReply::Refused(ControllerError::Retired(1))
    );
    assert_eq!(d.run(join(3)), ControllerReply::Done);
    // The retired set survives a snapshot; a format-1 snapshot (none) reads.
    let restored = Controller::restore(d.controller.snapshot()).unwrap();
    assert_eq!(restored, d.controller);
    assert_eq!(restored.retired().collect::<Vec<_>>(), [1]);
    let mut old = Controller::new(SHARDS).snapshot().to_vec();
    old[4] = 1;
    old.pop(); // the empty retired list of format 2
    let old = Controller::restore(Bytes::from(old)).unwrap();
    assert_eq!(old.retired().count(), 0);
}
