//! Shards between groups: a push goes to one server of the new owner (or
//! is acknowledged by a host that retired it), and a follower read checks
//! ownership at the read index.

use crate::{ask, configs, leader_among};
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::shard::ControllerOp;
use distribkv_core::shard::group::ShardStatus;
use distribkv_core::shard::host::{
    Host, HostBatch, HostConfig, HostInput, HostMessage, HostOutput, HostReply, HostRequest,
};
use distribkv_core::sim::network::Endpoint;
use distribkv_core::sim::sharded::{Mesh, ShardedConfig, ShardedSim};
use distribkv_core::time::Instant;

/// A shard push goes to one server of the new owner per poll round (the
/// one believed to lead it, the next one after an unanswered round), not
/// to all of them: with nothing failing, every shard of a move is pushed
/// at most once per server of the new owner, and the new owner's leader
/// acknowledges as soon as the insertion is applied.
#[test]
fn a_shard_push_goes_to_one_server_of_the_new_owner() {
    let mut sim = ShardedSim::new(ShardedConfig::lab(5)).unwrap();
    sim.join(&[100]).unwrap();
    for i in 0..20 {
        assert_eq!(sim.put(&format!("key{i}"), "v"), Ok(None));
    }
    sim.enable_trace();
    sim.join(&[101]).unwrap();
    assert!(sim.run_until(10_000, |s| s.is_settled()), "the move ends");
    let trace = sim.take_trace();
    let pushes: Vec<&String> = trace
        .iter()
        .filter(|l| l.contains(": push shard"))
        .collect();
    assert!(!pushes.is_empty(), "shards moved");
    let mut rounds: BTreeMap<(String, String), std::collections::BTreeSet<String>> =
        BTreeMap::new();
    let mut per_shard: BTreeMap<String, usize> = BTreeMap::new();
    for line in &pushes {
        // "t=711 5 -> 8: push shard 6 of config 2, group 100 to 101 (25 bytes)"
        let (time, rest) = line.split_once(' ').unwrap();
        let (route, what) = rest.split_once(": ").unwrap();
        let to = route.split(" -> ").nth(1).unwrap().to_string();
        let shard = what.split(" of ").next().unwrap().to_string();
        rounds
            .entry((time.to_string(), shard.clone()))
            .or_default()
            .insert(to);
        *per_shard.entry(shard).or_default() += 1;
    }
    for ((time, shard), to) in &rounds {
        assert_eq!(to.len(), 1, "{shard} pushed at {time} to {to:?}");
    }
    for (shard, count) in &per_shard {
        assert!(*count <= 3, "{shard} pushed {count} times:\n{trace:#?}");
    }
    assert!(trace.iter().any(|l| l.contains(": ack shard")));
    assert!(sim.violations().is_empty());
}

/// Follower reads ([`HostRequest::FollowerRead`]) check ownership on the
/// state at the read index, never on a stale one: a replica cut off while
/// its group handed a shard over still holds that shard as serving, with
/// its old value; asked for a follower read once it hears its leader
/// again, it answers "wrong group" (the key now lives in another group),
/// not the stale value. A current follower serves the read itself.
#[test]
fn a_follower_read_checks_ownership_at_the_read_index() {
    let mut configs = configs(3, 2, 10);
    // Host 3 never campaigns, so it stays a follower that keeps its
    // leader while cut off.
    configs[2].raft.election_timeout_min = 60_000;
    configs[2].raft.election_timeout_max = 70_000;
    let mut mesh = Mesh::new(configs, 17).unwrap();
    mesh.run_until(Instant(2_000));
    let controller = leader_among(&mut mesh, 0, &[1, 2]);
    let join = |id, group| HostRequest::Controller {
        id,
        client: 5,
        seq: id,
        op: ControllerOp::Join(BTreeMap::from([(group, vec![1, 2, 3])])),
    };
    let done = |reply: &HostReply| {
        matches!(
            reply,
            HostReply::Controller { result: Ok(_), .. } | HostReply::Kv { result: Ok(_), .. }
        )
    };
    assert!(done(&ask(&mut mesh, controller, join(1, 1))));
    mesh.run_until(Instant(mesh.now().as_millis() + 1_000));
    let key = Bytes::from_static(b"k");
    let leader = leader_among(&mut mesh, 1, &[1, 2]);
    let put = |id, group, seq, value: &'static [u8]| HostRequest::Kv {
        id,
        group,
        client: 7,
        seq,
        op: Operation::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(value),
        },
    };
    assert!(done(&ask(&mut mesh, leader, put(2, 1, 1, b"old"))));
    mesh.run_until(Instant(mesh.now().as_millis() + 500));
    assert_eq!(
        mesh.hosts[&3].kv(1).unwrap().read(&key),
        Ok(Some(Bytes::from_static(b"old")))
    );

    // Host 3 is cut off; group 2 joins and the key's shard moves to it.
    mesh.isolated.insert(3);
    let controller = leader_among(&mut mesh, 0, &[1, 2]);
    assert!(done(&ask(&mut mesh, controller, join(3, 2))));
    let shard = distribkv_core::shard::shard_of(&key, 10);
    let moved = HostRequest::Controller {
        id: 4,
        client: 5,
        seq: 4,
        op: ControllerOp::Move { shard, group: 2 },
    };
    let controller = leader_among(&mut mesh, 0, &[1, 2]);
    assert!(done(&ask(&mut mesh, controller, moved)));
    mesh.run_until(Instant(mesh.now().as_millis() + 3_000));
    let owner = leader_among(&mut mesh, 2, &[1, 2]);
    assert!(done(&ask(&mut mesh, owner, put(5, 2, 2, b"new"))));
    let leader = leader_among(&mut mesh, 1, &[1, 2]);
    assert!(!mesh.hosts[&leader].kv(1).unwrap().serves(&key));
    // Host 3's replica of group 1 is stale: it still serves the old value.
    assert_eq!(
        mesh.hosts[&3].kv(1).unwrap().read(&key),
        Ok(Some(Bytes::from_static(b"old")))
    );
    assert_eq!(mesh.hosts[&3].node(1).unwrap().leader(), Some(leader));

    // Back in touch: its follower read waits for the read index, and the
    // shard is no longer group 1's there.
    mesh.isolated.clear();
    let read = |id, group| HostRequest::FollowerRead {
        id,
        group,
        key: Bytes::from_static(b"k"),
    };
    let reply = ask(&mut mesh, 3, read(6, 1));
    assert_eq!(
        reply,
        HostReply::Kv {
            id: 6,
            result: Err(distribkv_core::shard::group::KvError::WrongGroup)
        }
    );
    // The owner's followers serve it, with the value written there.
    mesh.run_until(Instant(mesh.now().as_millis() + 500));
    let follower = [1, 2, 3]
        .into_iter()
        .find(|h| !mesh.hosts[h].node(2).unwrap().is_leader())
        .unwrap();
    let before = mesh.hosts[&follower].stats().follower_reads_served;
    let reply = ask(&mut mesh, follower, read(7, 2));
    assert_eq!(
        reply,
        HostReply::Kv {
            id: 7,
            result: Ok(Some(Bytes::from_static(b"new")))
        }
    );
    assert_eq!(
        mesh.hosts[&follower].stats().follower_reads_served,
        before + 1
    );
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}

/// A push to a group this host retired is acknowledged by the host itself
/// (the retired group had gone past the push's configuration, so it had
/// the shard: see "Retirement" in `shard::host`); a push to a group it
/// neither hosts nor retired is not, since nothing here says that group
/// has the shard, and the old owner would delete its only copy.
#[test]
fn a_push_is_acknowledged_for_a_retired_group_only() {
    let mut c = HostConfig::new(1, 10, vec![1, 2, 3]);
    c.groups = BTreeMap::from([(100, vec![1, 2, 3])]);
    c.retired = BTreeSet::from([101]);
    let mut host = Host::new(c, 1, Instant::ZERO).unwrap();
    let push = |to_group| HostMessage::ShardPush {
        from_group: 102,
        to_group,
        config_num: 4,
        shard: 7,
        data: Bytes::new(),
    };
    let acks = |host: &mut Host, to_group| {
        let batch = HostBatch {
            from: 2,
            to: 1,
            messages: vec![push(to_group)],
        };
        host.handle(Instant(1), HostInput::Batch(batch)).unwrap();
        let mut acks = Vec::new();
        while let Some(output) = host.poll_output() {
            if let HostOutput::Send(batch) = output {
                for message in batch.messages {
                    if let HostMessage::ShardAck { .. } = message {
                        acks.push((batch.to, message));
                    }
                }
            }
        }
        acks
    };
    assert_eq!(
        acks(&mut host, 101),
        [(
            2,
            HostMessage::ShardAck {
                group: 102,
                config_num: 4,
                shard: 7
            }
        )],
        "retired here: acknowledged"
    );
    assert_eq!(acks(&mut host, 103), [], "never hosted here: no answer");
    assert_eq!(host.stats().unknown_group, 1);
}

/// A shard larger than [`HostConfig::shard_part_bytes`] moves in parts,
/// each its own entry at the new owner, under message loss and
/// duplication: every key arrives with its value, the sessions of the
/// clients that wrote them come with the last part, and the shard then
/// takes writes there.
#[test]
fn a_shard_larger_than_a_part_moves_in_parts_with_its_sessions() {
    let mut config = ShardedConfig::lab(9);
    config.network.drop_rate = 0.05;
    config.network.duplicate_rate = 0.05;
    let (mut sim, keys) = shard_zero_written(config, 12);
    assert_eq!(sim.append(&keys[0], "+once"), Ok(None));
    let parts = parts_of(&sim, 100, 0, 24);
    assert!(parts >= 4, "{parts} parts");
    sim.join(&[101]).unwrap();
    let moved = sim.controller(ControllerOp::Move {
        shard: 0,
        group: 101,
    });
    assert!(moved.is_ok(), "{moved:?}");
    assert!(sim.run_until(20_000, |s| s.is_settled()), "the move ends");
    assert!(
        sim.shard_parts_delivered() >= parts,
        "moved in parts: {} delivered",
        sim.shard_parts_delivered()
    );
    for (i, key) in keys.iter().enumerate() {
        let expected = if i == 0 {
            "value0+once".to_string()
        } else {
            format!("value{i}")
        };
        assert_eq!(
            sim.get(key),
            Ok(Some(Bytes::from(expected))),
            "{key} after the move"
        );
    }
    let mut replicas = 0;
    for host in 1..=sim.config().hosts {
        if let Some(shard) = sim
            .host(host)
            .and_then(|h| h.kv(101))
            .and_then(|kv| kv.shards().get(&0))
        {
            assert!(!shard.sessions.is_empty(), "host {host}: no session moved");
            replicas += 1;
        }
    }
    assert!(
        replicas >= 2,
        "{replicas} replicas of group 101 hold shard 0"
    );
    assert_eq!(sim.append(&keys[1], "+after"), Ok(None));
    assert_eq!(sim.get(&keys[1]), Ok(Some(Bytes::from("value1+after"))));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(sim.check_history().is_empty(), "{:?}", sim.check_history());
}

/// A cluster of `config` moving shards in parts of 24 bytes, with group
/// 100 joined and `count` keys of shard 0 written (`keyN` = `valueN`).
fn shard_zero_written(mut config: ShardedConfig, count: usize) -> (ShardedSim, Vec<String>) {
    config.host.shard_part_bytes = 24;
    let mut sim = ShardedSim::new(config).unwrap();
    sim.join(&[100]).unwrap();
    let shards = sim.config().host.shards;
    let keys: Vec<String> = (0..)
        .map(|i| format!("key{i}"))
        .filter(|k| distribkv_core::shard::shard_of(k.as_bytes(), shards) == 0)
        .take(count)
        .collect();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(sim.put(key, &format!("value{i}")), Ok(None));
    }
    (sim, keys)
}

/// How many parts of `bytes` shard `shard` of `group` moves in.
fn parts_of(sim: &ShardedSim, group: u64, shard: u32, bytes: usize) -> u64 {
    let kv = (1..=sim.config().hosts)
        .find_map(|h| sim.host(h).and_then(|h| h.kv(group)))
        .unwrap();
    let mut after = None;
    let mut parts = 0;
    loop {
        let part = kv.export_part(shard, after.as_ref(), bytes).unwrap();
        parts += 1;
        if part.last {
            return parts;
        }
        after = part.up_to;
    }
}

/// Moves shard 0 (40 keys, parts of about two keys) from group 100 to 101
/// with `in_flight` parts sent ahead of the new owner's progress, on a
/// network that loses and duplicates `loss` of the messages; the virtual
/// time from the first part's delivery to the end of the move, the parts
/// delivered, and the parts the move needs.
fn move_in_parts(seed: u64, in_flight: usize, loss: f64) -> (u64, u64, u64) {
    let mut config = ShardedConfig::lab(seed);
    config.host.shard_parts_in_flight = in_flight;
    config.network.drop_rate = loss;
    config.network.duplicate_rate = loss;
    let (mut sim, keys) = shard_zero_written(config, 40);
    let parts = parts_of(&sim, 100, 0, 24);
    sim.join(&[101]).unwrap();
    let moved = sim.controller(ControllerOp::Move {
        shard: 0,
        group: 101,
    });
    assert!(moved.is_ok(), "{moved:?}");
    assert!(sim.run_until(20_000, |s| s.shard_parts_delivered() > 0));
    let started = sim.now().as_millis();
    assert!(
        sim.run_until(20_000, |s| s.is_settled()),
        "seed {seed}: the move ends"
    );
    let took = sim.now().as_millis() - started;
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(sim.get(key), Ok(Some(Bytes::from(format!("value{i}")))));
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(sim.check_history().is_empty(), "{:?}", sim.check_history());
    (took, sim.shard_parts_delivered(), parts)
}

/// The old owner sends parts ahead of the new owner's progress
/// (`HostConfig::shard_parts_in_flight`), and the new owner proposes each
/// as it comes: with four in flight the parts' round trips overlap, so the
/// move takes well under the time of one part at a time, without sending
/// parts twice on a network that loses none.
#[test]
fn parts_in_flight_overlap_their_round_trips() {
    let (one_took, one_delivered, parts) = move_in_parts(11, 1, 0.0);
    let (four_took, four_delivered, four_parts) = move_in_parts(11, 4, 0.0);
    assert_eq!(parts, four_parts);
    assert!(parts >= 15, "{parts} parts");
    assert!(
        four_took * 2 <= one_took,
        "4 in flight: {four_took} ms, 1 in flight: {one_took} ms ({parts} parts)"
    );
    // Each part once: an answer that brings no new progress sends
    // nothing, and none is lost here.
    for delivered in [one_delivered, four_delivered] {
        assert!(
            delivered <= parts + 1,
            "{delivered} parts delivered for {parts}"
        );
    }
    eprintln!(
        "{parts} parts: 1 in flight {one_took} ms ({one_delivered} delivered), \
         4 in flight {four_took} ms ({four_delivered} delivered)"
    );
}

/// A part lost on the way (or its answer) leaves the parts after it
/// proposed and ignored at the new owner: the old owner starts its window
/// over after a poll interval without progress, and the new owner proposes
/// again the part after what it holds once its last proposal is a poll
/// interval old. With a fifth of the messages lost and as many duplicated,
/// every move ends with every key.
#[test]
fn parts_lost_on_the_way_are_sent_and_proposed_again() {
    for seed in 0..12 {
        for in_flight in [1, 4] {
            move_in_parts(seed, in_flight, 0.2);
        }
    }
}

/// A new owner's replicas forget their record of a move once it is over,
/// whatever they did in it: with the receiving leader cut off again and
/// again mid-move (so replicas answer parts as leaders, lose leadership,
/// and apply the rest as followers), every host's record of moves is
/// empty a little after the move ends, and every key arrived.
#[test]
fn no_record_of_a_move_is_kept_after_it_ends() {
    for seed in 0..30 {
        let mut config = ShardedConfig::lab(seed);
        config.network.drop_rate = 0.1;
        config.network.duplicate_rate = 0.3;
        let (mut sim, keys) = shard_zero_written(config, 40);
        sim.join(&[101]).unwrap();
        let moved = sim.controller(ControllerOp::Move {
            shard: 0,
            group: 101,
        });
        assert!(moved.is_ok(), "seed {seed}: {moved:?}");
        for _ in 0..6 {
            if sim.is_settled() {
                break;
            }
            sim.run_for(120);
            if let Some(leader) = sim.leader_of(101) {
                let others = (1..=sim.config().hosts)
                    .filter(|h| *h != leader)
                    .map(Endpoint::Node)
                    .collect();
                let network = sim.network_mut();
                network.partition(vec![vec![Endpoint::Node(leader)], others]);
                sim.run_for(500);
                sim.network_mut().heal();
            }
        }
        assert!(
            sim.run_until(60_000, |s| s.is_settled()),
            "seed {seed}: the move ends"
        );
        for (i, key) in keys.iter().enumerate() {
            let value = Bytes::from(format!("value{i}"));
            assert_eq!(sim.get(key), Ok(Some(value)), "seed {seed}: {key}");
        }
        sim.run_for(2_000);
        for host in 1..=sim.config().hosts {
            let kept = sim
                .host(host)
                .map(|h| h.moves_recorded())
                .unwrap_or_default();
            assert!(kept.is_empty(), "seed {seed}, host {host} keeps {kept:?}");
        }
        assert!(
            sim.violations().is_empty(),
            "seed {seed}: {:?}",
            sim.violations()
        );
    }
}

/// A shard whose sessions would take its last part (or its whole push)
/// past an entry's limit still moves: the sessions go in a last part of
/// their own. Here 600 clients wrote one small key each: the keys fit a
/// part, the keys and sessions together do not fit an entry, the sessions
/// alone do.
#[test]
fn a_shard_with_many_sessions_moves_with_them_in_a_part_of_their_own() {
    const ENTRY: usize = 12 << 10;
    let mut configs = configs(3, 2, 10);
    for c in &mut configs {
        c.raft.max_entry_bytes = ENTRY;
        c.shard_part_bytes = 8 << 10;
    }
    let mut mesh = Mesh::new(configs, 5).unwrap();
    mesh.run_until(Instant(2_000));
    let controller = |id, op| HostRequest::Controller {
        id,
        client: 5,
        seq: id,
        op,
    };
    let ok = |reply: &HostReply| {
        matches!(
            reply,
            HostReply::Controller { result: Ok(_), .. } | HostReply::Kv { result: Ok(_), .. }
        )
    };
    let c = leader_among(&mut mesh, 0, &[1, 2, 3]);
    let join = |g| ControllerOp::Join(BTreeMap::from([(g, vec![1, 2, 3])]));
    assert!(ok(&ask(&mut mesh, c, controller(1, join(1)))));
    mesh.run_until(Instant(mesh.now().as_millis() + 1_000));
    let leader = leader_among(&mut mesh, 1, &[1, 2, 3]);
    let keys: Vec<String> = (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| distribkv_core::shard::shard_of(k.as_bytes(), 10) == 0)
        .take(600)
        .collect();
    for (i, key) in keys.iter().enumerate() {
        let request = HostRequest::Kv {
            id: 100 + i as u64,
            group: 1,
            // Ids of ten bytes each, as drawn at random by real clients.
            client: u64::MAX - i as u64,
            seq: 1,
            op: Operation::Put {
                key: Bytes::from(key.clone()),
                value: Bytes::from_static(b"v"),
            },
        };
        let reply = ask(&mut mesh, leader, request);
        assert!(ok(&reply), "{reply:?}");
    }
    let kv = mesh.hosts[&leader].kv(1).unwrap();
    let whole = kv.export(0).unwrap().len();
    let first = kv.export_part(0, None, 8 << 10).unwrap();
    let sessions = kv.export_part(0, first.up_to.as_ref(), 8 << 10).unwrap();
    assert!(whole > ENTRY, "keys and sessions: {whole} bytes");
    assert!(!first.last && first.up_to.as_deref() == keys.iter().max().map(|k| k.as_bytes()));
    assert!(
        sessions.last && sessions.data.len() < ENTRY,
        "sessions: {}",
        sessions.data.len()
    );

    assert!(ok(&ask(&mut mesh, c, controller(2, join(2)))));
    let c = leader_among(&mut mesh, 0, &[1, 2, 3]);
    let moved = ControllerOp::Move { shard: 0, group: 2 };
    assert!(ok(&ask(&mut mesh, c, controller(3, moved))));
    mesh.run_until(Instant(mesh.now().as_millis() + 5_000));
    for host in 1..=3 {
        let shard = mesh.hosts[&host].kv(2).and_then(|kv| kv.shards().get(&0));
        let shard = shard.unwrap_or_else(|| panic!("host {host}: shard 0 not in group 2"));
        assert_eq!(shard.status, ShardStatus::Serving, "host {host}");
        assert_eq!(
            (shard.data.len(), shard.sessions.len()),
            (600, 600),
            "host {host}"
        );
    }
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}
