//! The group state machine alone: configurations in order, ownership,
//! shards that arrive and leave, exactly-once across a move.

use super::*;
use alloc::vec;

const SHARDS: u32 = 4;

fn config(num: u64, owners: [GroupId; SHARDS as usize]) -> ShardConfig {
    let mut groups = BTreeMap::new();
    for g in owners.iter().filter(|g| **g != 0) {
        groups.insert(*g, vec![*g]);
    }
    ShardConfig {
        num,
        shards: owners.to_vec(),
        groups,
    }
}

struct Machine {
    kv: ShardKv,
    index: LogIndex,
}

impl Machine {
    fn new(group: GroupId) -> Machine {
        Machine::with_limits(group, StoreLimits::default())
    }

    fn with_limits(group: GroupId, limits: StoreLimits) -> Machine {
        Machine {
            kv: ShardKv::new(group, SHARDS, limits),
            index: 0,
        }
    }

    fn apply(&mut self, command: GroupCommand) -> Option<GroupApplied> {
        self.index += 1;
        let applied = self
            .kv
            .apply(self.index, &Payload::Command(command.encode()));
        // Every state survives a snapshot, identically.
        let restored = self.kv.restore(self.kv.snapshot()).unwrap();
        assert_eq!(restored, self.kv);
        applied
    }

    fn op(&mut self, client: u64, seq: u64, op: Operation) -> Result<Option<Bytes>, KvError> {
        match self.apply(GroupCommand::Client {
            client,
            seq,
            at: self.index,
            op,
        }) {
            Some(GroupApplied::Client(r)) => r,
            other => panic!("client command applied as {other:?}"),
        }
    }
}

/// A key of each shard.
fn key_of(shard: ShardId) -> Bytes {
    (0..)
        .map(|i| Bytes::from(alloc::format!("k{i}")))
        .find(|k| shard_of(k, SHARDS) == shard)
        .unwrap()
}

fn append(shard: ShardId, value: &str) -> Operation {
    Operation::Append {
        key: key_of(shard),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn get(shard: ShardId) -> Operation {
    Operation::Get { key: key_of(shard) }
}

#[test]
fn serves_only_owned_shards_and_steps_configurations_in_order() {
    let mut m = Machine::new(1);
    assert_eq!(
        m.op(9, 1, append(0, "x")),
        Err(KvError::WrongGroup),
        "config 0 owns nothing"
    );
    // Configuration 2 before 1 is ignored.
    m.apply(GroupCommand::Config(config(2, [1, 1, 1, 1])));
    assert_eq!(m.kv.config().num, 0);
    m.apply(GroupCommand::Config(config(1, [1, 1, 2, 2])));
    assert_eq!(m.kv.config().num, 1);
    assert!(m.kv.is_settled(), "shards from no one are served at once");
    assert_eq!(m.op(9, 1, append(0, "x")), Ok(None));
    assert_eq!(m.op(9, 2, append(2, "y")), Err(KvError::WrongGroup));
    assert_eq!(m.op(9, 3, get(0)), Ok(Some(Bytes::from_static(b"x"))));
    // A replayed configuration is ignored.
    m.apply(GroupCommand::Config(config(1, [2, 2, 2, 2])));
    assert_eq!(m.kv.config().num, 1);
    assert_eq!(m.kv.shards().len(), 2);
}

#[test]
fn a_moved_shard_carries_its_data_and_sessions() {
    let mut a = Machine::new(1);
    let mut b = Machine::new(2);
    a.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    b.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    assert_eq!(a.op(7, 1, append(3, "a")), Ok(None));
    // Configuration 2 moves shard 3 to group 2.
    let c2 = config(2, [1, 1, 1, 2]);
    a.apply(GroupCommand::Config(c2.clone()));
    b.apply(GroupCommand::Config(c2));
    assert_eq!(a.kv.sending().collect::<Vec<_>>(), vec![(3, 2)]);
    assert!(!a.kv.is_settled() && !b.kv.is_settled());
    // Shards that do not move keep serving during the change.
    assert_eq!(a.op(7, 2, append(0, "b")), Ok(None));
    // The moving shard is served by no one until it arrives.
    assert_eq!(a.op(7, 3, append(3, "c")), Err(KvError::WrongGroup));
    assert_eq!(b.op(7, 3, append(3, "c")), Err(KvError::NotArrived));
    // A third configuration waits for the move.
    a.apply(GroupCommand::Config(config(3, [1, 1, 1, 1])));
    assert_eq!(a.kv.config().num, 2);
    // It arrives at the new owner (a duplicate insertion changes nothing).
    let data = a.kv.export(3).unwrap();
    assert!(!b.kv.has_received(2, 3));
    for _ in 0..2 {
        b.apply(GroupCommand::InsertShard {
            config_num: 2,
            shard: 3,
            data: data.clone(),
        });
    }
    assert!(b.kv.has_received(2, 3) && b.kv.is_settled());
    assert_eq!(b.op(7, 4, get(3)), Ok(Some(Bytes::from_static(b"a"))));
    // The client's retry of its write is recognised at the new owner.
    assert_eq!(b.op(7, 1, append(3, "a")), Ok(None));
    assert_eq!(b.op(7, 0, append(3, "z")), Err(KvError::Stale));
    assert_eq!(b.kv.value(&key_of(3)), Some(&Bytes::from_static(b"a")));
    assert_eq!(b.op(7, 5, append(3, "d")), Ok(None));
    assert_eq!(b.op(7, 5, append(3, "d")), Ok(None), "a retry");
    assert_eq!(b.op(7, 6, get(3)), Ok(Some(Bytes::from_static(b"ad"))));
    // The old owner deletes it once confirmed, and moves on.
    a.apply(GroupCommand::DeleteShard {
        config_num: 1,
        shard: 3,
    });
    assert!(
        a.kv.shards().contains_key(&3),
        "wrong configuration: ignored"
    );
    a.apply(GroupCommand::DeleteShard {
        config_num: 2,
        shard: 3,
    });
    assert!(!a.kv.shards().contains_key(&3) && a.kv.is_settled());
    a.apply(GroupCommand::Config(config(3, [1, 1, 1, 2])));
    assert_eq!(a.kv.config().num, 3);
}

#[test]
fn insertions_for_another_configuration_are_ignored() {
    let mut b = Machine::new(2);
    b.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    b.apply(GroupCommand::Config(config(2, [2, 1, 1, 1])));
    let mut data = BTreeMap::new();
    data.insert(key_of(0), Bytes::from_static(b"old"));
    let sessions = crate::shard::group::shard_sessions(&StoreLimits::default());
    let bytes = encode_shard(&data, &sessions);
    b.apply(GroupCommand::InsertShard {
        config_num: 1,
        shard: 0,
        data: bytes.clone(),
    });
    assert!(b.kv.is_pulling(2, 0));
    b.apply(GroupCommand::InsertShard {
        config_num: 2,
        shard: 1,
        data: bytes.clone(),
    });
    assert!(!b.kv.shards().contains_key(&1));
    // Malformed shard data is ignored too.
    b.apply(GroupCommand::InsertShard {
        config_num: 2,
        shard: 0,
        data: Bytes::from_static(b"\xff\xff"),
    });
    assert!(b.kv.is_pulling(2, 0));
    b.apply(GroupCommand::InsertShard {
        config_num: 2,
        shard: 0,
        data: bytes,
    });
    assert_eq!(b.kv.value(&key_of(0)), Some(&Bytes::from_static(b"old")));
}

#[test]
fn too_large_appends_are_refused_and_a_retry_gets_the_same_answer() {
    let mut m = Machine {
        kv: ShardKv::new(
            1,
            SHARDS,
            StoreLimits {
                max_value_bytes: 3,
                ..StoreLimits::default()
            },
        ),
        index: 0,
    };
    m.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    assert_eq!(m.op(1, 1, append(0, "ab")), Ok(None));
    assert_eq!(m.op(1, 2, append(0, "cd")), Err(KvError::TooLarge));
    assert_eq!(m.op(1, 2, append(0, "cd")), Err(KvError::TooLarge));
    assert_eq!(m.op(1, 3, get(0)), Ok(Some(Bytes::from_static(b"ab"))));
}

#[test]
fn leaving_every_group_drops_the_data() {
    let mut m = Machine::new(1);
    m.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    m.op(1, 1, append(0, "x")).unwrap();
    m.apply(GroupCommand::Config(config(2, [0, 0, 0, 0])));
    assert!(m.kv.shards().is_empty());
    assert!(m.kv.is_settled());
}

#[test]
fn malformed_commands_and_snapshots_are_refused() {
    let mut m = Machine::new(1);
    for bytes in [
        &b""[..],
        b"\x01",
        b"\x01\x09",
        b"\x01\x03\x01\xff\xff\xff\xff\xff\x01",
        b"\x01\x02\x01\x05",
    ] {
        assert_eq!(
            m.kv.apply(1, &Payload::Command(Bytes::copy_from_slice(bytes))),
            None
        );
    }
    assert!(m.kv.restore(Bytes::from_static(b"DKVG\x01")).is_err());
    assert!(m.kv.restore(Bytes::from_static(b"nope")).is_err());
}

/// Limits under which a shard holds one session and two tombstones.
fn one_session() -> StoreLimits {
    StoreLimits {
        max_sessions: 1,
        max_dropped_sessions: 2,
        ..StoreLimits::default()
    }
}

#[test]
fn a_retry_from_an_evicted_session_is_refused_not_applied_again() {
    let mut m = Machine::with_limits(1, one_session());
    m.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    assert_eq!(m.op(7, 5, append(0, "a")), Ok(None));
    // Client 8 evicts client 7's session (one session per shard).
    assert_eq!(m.op(8, 1, append(0, "b")), Ok(None));
    assert!(m.kv.shards()[&0].sessions.get(7).is_none());
    // Client 7's answer was lost: its retry must not append again, and
    // neither may an older write of that session.
    assert_eq!(m.op(7, 5, append(0, "a")), Err(KvError::SessionExpired));
    assert_eq!(m.op(7, 4, append(0, "a")), Err(KvError::SessionExpired));
    assert_eq!(m.kv.value(&key_of(0)), Some(&Bytes::from_static(b"ab")));
    // Its next write opens a new session, exactly-once again.
    assert_eq!(m.op(7, 6, append(0, "c")), Ok(None));
    assert_eq!(m.op(7, 6, append(0, "c")), Ok(None), "a retry");
    assert_eq!(m.kv.value(&key_of(0)), Some(&Bytes::from_static(b"abc")));
    // Sessions of other shards are their own: client 7 never wrote shard 1.
    assert_eq!(m.op(7, 7, append(1, "x")), Ok(None));
}

#[test]
fn a_retry_from_an_expired_session_is_refused_not_applied_again() {
    let limits = StoreLimits {
        session_ttl_ms: 100,
        ..StoreLimits::default()
    };
    let mut m = Machine::with_limits(1, limits);
    m.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    assert_eq!(m.op(7, 1, append(0, "a")), Ok(None));
    // Log clock: each command's `at` is its index; client 8 writes long after.
    m.index += 1_000;
    assert_eq!(m.op(8, 1, append(0, "b")), Ok(None));
    assert!(m.kv.shards()[&0].sessions.get(7).is_none(), "expired");
    assert_eq!(m.op(7, 1, append(0, "a")), Err(KvError::SessionExpired));
    assert_eq!(m.kv.value(&key_of(0)), Some(&Bytes::from_static(b"ab")));
}

#[test]
fn tombstones_move_with_their_shard() {
    let mut a = Machine::with_limits(1, one_session());
    let mut b = Machine::with_limits(2, one_session());
    a.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    b.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    assert_eq!(a.op(7, 3, append(3, "a")), Ok(None));
    assert_eq!(a.op(8, 1, append(3, "b")), Ok(None), "evicts client 7");
    let c2 = config(2, [1, 1, 1, 2]);
    a.apply(GroupCommand::Config(c2.clone()));
    b.apply(GroupCommand::Config(c2));
    b.apply(GroupCommand::InsertShard {
        config_num: 2,
        shard: 3,
        data: a.kv.export(3).unwrap(),
    });
    assert_eq!(b.kv.shards()[&3].sessions.dropped_through(7), Some(3));
    assert_eq!(b.op(7, 3, append(3, "a")), Err(KvError::SessionExpired));
    assert_eq!(b.op(8, 1, append(3, "b")), Ok(None), "a live session moved");
    assert_eq!(b.kv.value(&key_of(3)), Some(&Bytes::from_static(b"ab")));
}

#[test]
fn malformed_shard_data_is_an_error() {
    let limits = StoreLimits::default();
    let good = encode_shard(&BTreeMap::new(), &shard_sessions(&limits));
    assert!(decode_shard(good.clone(), &limits).is_ok());
    for cut in 0..good.len() {
        assert!(
            decode_shard(good.slice(..cut), &limits).is_err(),
            "cut at {cut}"
        );
    }
    let mut other = good.to_vec();
    other[0] = 9;
    assert!(decode_shard(Bytes::from(other), &limits).is_err(), "format");
}

/// A shard moving in parts ([`GroupCommand::InsertShardPart`]): a part is
/// taken only if it follows the keys held (not a repeat, not one that
/// skips ahead, not one for another configuration), the shard is served
/// only once the last part (with the sessions) is in, and every state on
/// the way survives a snapshot (the `Machine` checks it at each entry).
/// The sessions go in a last part of their own when they would make the
/// last keys' part larger than a part, and with them when they fit.
#[test]
fn a_shard_moves_in_parts_taken_only_in_order() {
    let mut a = Machine::new(1);
    let mut b = Machine::new(2);
    a.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    b.apply(GroupCommand::Config(config(1, [1, 1, 1, 1])));
    let keys: Vec<Bytes> = (0..)
        .map(|i| Bytes::from(alloc::format!("k{i}")))
        .filter(|k| shard_of(k, SHARDS) == 3)
        .take(5)
        .collect();
    for (seq, key) in keys.iter().enumerate() {
        let put = Operation::Put {
            key: key.clone(),
            value: Bytes::from_static(b"vv"),
        };
        assert_eq!(a.op(7, seq as u64 + 1, put), Ok(None));
    }
    let c2 = config(2, [1, 1, 1, 2]);
    a.apply(GroupCommand::Config(c2.clone()));
    b.apply(GroupCommand::Config(c2));
    // Parts of about 8 bytes: two keys each (a key and its value are 4 to
    // 6 bytes); the session (about 20 bytes) in a last part of its own.
    let mut parts = Vec::new();
    let mut after: Option<Bytes> = None;
    loop {
        let exported = a.kv.export_part(3, after.as_ref(), 8).unwrap();
        let (part, sessions) =
            decode_shard(exported.data.clone(), &StoreLimits::default()).unwrap();
        let up_to = part.keys().next_back().cloned().or(after.clone());
        assert_eq!(exported.up_to, up_to);
        let last = exported.last;
        assert_eq!(sessions.len(), usize::from(last), "the sessions go last");
        assert_eq!(part.is_empty(), last, "the last part holds no key");
        parts.push((after.clone(), last, exported.data));
        after = exported.up_to;
        if last {
            break;
        }
    }
    assert_eq!(
        parts.len(),
        4,
        "five keys in parts of two, the session apart"
    );
    // With room for the last key and the session, they go together.
    let together = a.kv.export_part(3, parts[2].0.as_ref(), 64).unwrap();
    assert!(together.last);
    let (part, sessions) = decode_shard(together.data, &StoreLimits::default()).unwrap();
    assert_eq!((part.len(), sessions.len()), (1, 1));
    // The shard's size, counted only as far as needed.
    let total: usize = keys.iter().map(|k| k.len() + 2).sum();
    assert!(a.kv.shard_exceeds(3, 8) && a.kv.shard_exceeds(3, total - 1));
    assert!(!a.kv.shard_exceeds(3, total) && !a.kv.shard_exceeds(2, 0));
    let insert = |(after, last, data): &(Option<Bytes>, bool, Bytes), config_num| {
        GroupCommand::InsertShardPart {
            config_num,
            shard: 3,
            after: after.clone(),
            last: *last,
            data: data.clone(),
        }
    };
    let held = |b: &Machine| b.kv.shards()[&3].data.len();
    // Out of order, or for another configuration: ignored.
    b.apply(insert(&parts[1], 2));
    b.apply(insert(&parts[0], 1));
    assert_eq!(held(&b), 0);
    b.apply(insert(&parts[0], 2));
    b.apply(insert(&parts[0], 2));
    b.apply(insert(&parts[2], 2));
    assert_eq!(held(&b), 2, "the first part, once; the last skips ahead");
    assert_eq!(b.op(7, 9, get(3)), Err(KvError::NotArrived));
    b.apply(insert(&parts[1], 2));
    assert_eq!(
        b.kv.pulled_up_to(2, 3),
        Some(Some(keys_sorted(&keys)[3].clone()))
    );
    b.apply(insert(&parts[3], 2));
    assert_eq!(held(&b), 4, "the sessions' part skips ahead");
    b.apply(insert(&parts[2], 2));
    let all = keys_sorted(&keys);
    assert_eq!(b.kv.pulled_up_to(2, 3), Some(Some(all[4].clone())));
    assert_eq!(
        b.op(7, 9, get(3)),
        Err(KvError::NotArrived),
        "no sessions yet"
    );
    b.apply(insert(&parts[3], 2));
    assert!(b.kv.has_received(2, 3) && b.kv.is_settled());
    assert_eq!(b.kv.pulled_up_to(2, 3), None);
    assert_eq!(b.kv.shards()[&3].data, a.kv.shards()[&3].data);
    // The sessions came with the last part: a retry is recognised.
    let retry = Operation::Put {
        key: keys[4].clone(),
        value: Bytes::from_static(b"vv"),
    };
    assert_eq!(b.op(7, 4, retry), Err(KvError::Stale));
    // A part that comes after the end changes nothing.
    b.apply(insert(&parts[3], 2));
    assert_eq!(b.kv.shards()[&3].data, a.kv.shards()[&3].data);
}

fn keys_sorted(keys: &[Bytes]) -> Vec<Bytes> {
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted
}
