//! Exports of a shard for a backup ([`HostRequest::Export`]): taken at a
//! read index with the ownership check of a follower read, fetched in
//! chunks, one held per host.

use crate::{ask, configs, leader_among};
use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::{Operation, StoreLimits};
use distribkv_core::shard::group::{KvError, decode_shard};
use distribkv_core::shard::host::{EXPORT_CHUNK_BYTES, ExportChunk, HostReply, HostRequest};
use distribkv_core::shard::{ControllerOp, shard_of};
use distribkv_core::sim::sharded::Mesh;
use distribkv_core::time::Instant;

const SHARDS: u32 = 10;

fn controller(id: u64, op: ControllerOp) -> HostRequest {
    HostRequest::Controller {
        id,
        client: 5,
        seq: id,
        op,
    }
}

fn put(id: u64, group: u64, seq: u64, key: &[u8], value: Bytes) -> HostRequest {
    HostRequest::Kv {
        id,
        group,
        client: 7,
        seq,
        op: Operation::Put {
            key: Bytes::copy_from_slice(key),
            value,
        },
    }
}

fn export(id: u64, group: u64, shard: u32, at: Option<u64>, offset: u64) -> HostRequest {
    HostRequest::Export {
        id,
        group,
        shard,
        at,
        offset,
    }
}

fn chunk(reply: HostReply) -> Result<ExportChunk, KvError> {
    match reply {
        HostReply::Export { result, .. } => result,
        other => panic!("not an export's answer: {other:?}"),
    }
}

fn ok(reply: &HostReply) -> bool {
    matches!(
        reply,
        HostReply::Controller { result: Ok(_), .. } | HostReply::Kv { result: Ok(_), .. }
    )
}

/// Keys `prefix0`, `prefix1`, ... that fall in `shard`.
fn keys_in(shard: u32, prefix: &str, count: usize) -> Vec<Vec<u8>> {
    (0..)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .filter(|k| shard_of(k, SHARDS) == shard)
        .take(count)
        .collect()
}

/// A follower's export holds every write acknowledged before it was asked
/// for, is larger than a chunk and comes in two, and decodes to the
/// shard's data; a chunk of an export the host no longer holds (another
/// export replaced it, or a wrong index) is refused with `Busy`, and an
/// offset past the end too.
#[test]
fn a_follower_exports_a_shard_in_chunks_holding_every_acknowledged_write() {
    let mut mesh = Mesh::new(configs(3, 1, 10), 5).unwrap();
    mesh.run_until(Instant(2_000));
    let c = leader_among(&mut mesh, 0, &[1, 2, 3]);
    let join = ControllerOp::Join(BTreeMap::from([(1, vec![1, 2, 3])]));
    assert!(ok(&ask(&mut mesh, c, controller(1, join))));
    mesh.run_until(Instant(mesh.now().as_millis() + 1_000));
    let leader = leader_among(&mut mesh, 1, &[1, 2, 3]);
    // Five values of 1 MiB in shard 3: more than a chunk.
    let big = keys_in(3, "big", 5);
    let mut expected = BTreeMap::new();
    for (i, key) in big.iter().enumerate() {
        let value = Bytes::from(vec![b'a' + i as u8; StoreLimits::default().max_value_bytes]);
        let seq = i as u64 + 1;
        assert!(ok(&ask(
            &mut mesh,
            leader,
            put(10 + seq, 1, seq, key, value.clone())
        )));
        expected.insert(Bytes::copy_from_slice(key), value);
    }
    let small = keys_in(4, "small", 1).remove(0);
    assert!(ok(&ask(
        &mut mesh,
        leader,
        put(20, 1, 6, &small, Bytes::from_static(b"s"))
    )));
    // Asked at once at a follower: the read index makes it wait for the
    // last write to be applied there, so the export has every value.
    let follower = [1, 2, 3].into_iter().find(|h| *h != leader).unwrap();
    let first = chunk(ask(&mut mesh, follower, export(30, 1, 3, None, 0))).unwrap();
    assert_eq!(first.shard, 3);
    assert_eq!(first.offset, 0);
    assert_eq!(first.data.len(), EXPORT_CHUNK_BYTES);
    assert!(first.total > EXPORT_CHUNK_BYTES as u64);
    assert!(first.config >= 1);
    let second = chunk(ask(
        &mut mesh,
        follower,
        export(31, 1, 3, Some(first.index), EXPORT_CHUNK_BYTES as u64),
    ))
    .unwrap();
    assert_eq!((second.index, second.total), (first.index, first.total));
    assert_eq!(second.offset + second.data.len() as u64, first.total);
    let mut whole = first.data.to_vec();
    whole.extend_from_slice(&second.data);
    let (data, _sessions) = decode_shard(Bytes::from(whole), &StoreLimits::default()).unwrap();
    assert_eq!(data, expected);

    // Past the end; a wrong index; an export replaced by another one.
    let past = export(32, 1, 3, Some(first.index), first.total + 1);
    assert_eq!(chunk(ask(&mut mesh, follower, past)), Err(KvError::Busy));
    let wrong = export(33, 1, 3, Some(first.index + 1), 0);
    assert_eq!(chunk(ask(&mut mesh, follower, wrong)), Err(KvError::Busy));
    let other = chunk(ask(&mut mesh, follower, export(34, 1, 4, None, 0))).unwrap();
    let (data, _) = decode_shard(other.data, &StoreLimits::default()).unwrap();
    assert_eq!(
        data,
        BTreeMap::from([(Bytes::from(small), Bytes::from_static(b"s"))])
    );
    let replaced = export(35, 1, 3, Some(first.index), 0);
    assert_eq!(
        chunk(ask(&mut mesh, follower, replaced)),
        Err(KvError::Busy)
    );
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}

/// An export checks ownership on the state at its read index, as a
/// follower read does: a replica cut off while its group handed the shard
/// over still holds it as serving, but asked once it hears its leader
/// again it answers "wrong group"; the new owner exports the shard with
/// the write made there; a group that does not hold the shard, and a
/// group not hosted, answer "wrong group" too.
#[test]
fn an_export_checks_ownership_at_the_read_index() {
    let mut configs = configs(3, 2, 10);
    // Host 3 never campaigns, so it stays a follower that keeps its
    // leader while cut off.
    configs[2].raft.election_timeout_min = 60_000;
    configs[2].raft.election_timeout_max = 70_000;
    let mut mesh = Mesh::new(configs, 17).unwrap();
    mesh.run_until(Instant(2_000));
    let c = leader_among(&mut mesh, 0, &[1, 2]);
    let join = |group| ControllerOp::Join(BTreeMap::from([(group, vec![1, 2, 3])]));
    assert!(ok(&ask(&mut mesh, c, controller(1, join(1)))));
    mesh.run_until(Instant(mesh.now().as_millis() + 1_000));
    let key = b"k";
    let shard = shard_of(key, SHARDS);
    let leader = leader_among(&mut mesh, 1, &[1, 2]);
    assert!(ok(&ask(
        &mut mesh,
        leader,
        put(2, 1, 1, key, Bytes::from_static(b"old"))
    )));
    mesh.run_until(Instant(mesh.now().as_millis() + 500));

    // Host 3 is cut off; group 2 joins and the key's shard moves to it.
    mesh.isolated.insert(3);
    let c = leader_among(&mut mesh, 0, &[1, 2]);
    assert!(ok(&ask(&mut mesh, c, controller(3, join(2)))));
    let c = leader_among(&mut mesh, 0, &[1, 2]);
    let moved = ControllerOp::Move { shard, group: 2 };
    assert!(ok(&ask(&mut mesh, c, controller(4, moved))));
    mesh.run_until(Instant(mesh.now().as_millis() + 3_000));
    let owner = leader_among(&mut mesh, 2, &[1, 2]);
    assert!(ok(&ask(
        &mut mesh,
        owner,
        put(5, 2, 2, key, Bytes::from_static(b"new"))
    )));
    // Host 3's replica of group 1 still serves the shard, stale.
    assert!(mesh.hosts[&3].kv(1).unwrap().serves(key));

    mesh.isolated.clear();
    let stale = chunk(ask(&mut mesh, 3, export(6, 1, shard, None, 0)));
    assert_eq!(stale, Err(KvError::WrongGroup));
    mesh.run_until(Instant(mesh.now().as_millis() + 500));
    let moved = chunk(ask(&mut mesh, 3, export(7, 2, shard, None, 0))).unwrap();
    let (data, _) = decode_shard(moved.data, &StoreLimits::default()).unwrap();
    assert_eq!(
        data,
        BTreeMap::from([(Bytes::from_static(b"k"), Bytes::from_static(b"new"))])
    );
    // Group 2 owns only that shard; group 9 is not hosted.
    let elsewhere = (0..SHARDS).find(|s| *s != shard).unwrap();
    let not_owned = chunk(ask(&mut mesh, 3, export(8, 2, elsewhere, None, 0)));
    assert_eq!(not_owned, Err(KvError::WrongGroup));
    let unknown = chunk(ask(&mut mesh, 3, export(9, 9, shard, None, 0)));
    assert_eq!(unknown, Err(KvError::WrongGroup));
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}
