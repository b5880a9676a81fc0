//! Exports of a shard for a backup ([`HostRequest::Export`]): taken at a
//! read index with the ownership check of a follower read, fetched in
//! chunks, a few held per host.

use crate::{ask, configs, leader_among};
use std::collections::BTreeMap;

use bytes::Bytes;
use distribkv_core::kv::{Operation, StoreLimits};
use distribkv_core::shard::group::{KvError, decode_shard};
use distribkv_core::shard::host::{
    EXPORT_CHUNK_BYTES, EXPORT_IDLE_MS, EXPORTS_HELD, ExportChunk, HostReply, HostRequest,
};
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

/// Three hosts with group 1 joined on all of them (seed `seed`), and the
/// host that leads it.
fn group_one_joined(seed: u64) -> (Mesh, u64) {
    let mut mesh = Mesh::new(configs(3, 1, 10), seed).unwrap();
    mesh.run_until(Instant(2_000));
    let c = leader_among(&mut mesh, 0, &[1, 2, 3]);
    let join = ControllerOp::Join(BTreeMap::from([(1, vec![1, 2, 3])]));
    assert!(ok(&ask(&mut mesh, c, controller(1, join))));
    mesh.run_until(Instant(mesh.now().as_millis() + 1_000));
    let leader = leader_among(&mut mesh, 1, &[1, 2, 3]);
    (mesh, leader)
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
/// shard's data; a chunk of an export the host no longer holds (its last
/// chunk was served, or a wrong index) is refused with `Busy`, and an
/// offset past the end too.
#[test]
fn a_follower_exports_a_shard_in_chunks_holding_every_acknowledged_write() {
    let (mut mesh, leader) = group_one_joined(5);
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

    // Past the end; a wrong index; an export whose last chunk was served.
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
    let done = export(35, 1, 3, Some(first.index), 0);
    assert_eq!(chunk(ask(&mut mesh, follower, done)), Err(KvError::Busy));
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}

/// Several backups fetch at once: a host holds [`EXPORTS_HELD`] exports, so
/// chunks of four exports asked in turn all come; a fifth lets go of the
/// export asked for least recently (not the first taken), whose next chunk
/// is refused with `Busy` while the others' come; an export not asked for
/// in [`EXPORT_IDLE_MS`] is let go.
#[test]
fn exports_are_held_for_several_backups_at_once() {
    assert_eq!(EXPORTS_HELD, 4);
    let (mut mesh, leader) = group_one_joined(9);
    // Shard 1 in three chunks (9 MiB), shards 2 to 5 in two (5 MiB).
    let mut seq = 0;
    let mut expected: BTreeMap<u32, BTreeMap<Bytes, Bytes>> = BTreeMap::new();
    for (shard, values) in [(1, 9), (2, 5), (3, 5), (4, 5), (5, 5)] {
        for key in keys_in(shard, "big", values) {
            seq += 1;
            let value = Bytes::from(vec![seq as u8; StoreLimits::default().max_value_bytes]);
            let request = put(100 + seq, 1, seq, &key, value.clone());
            assert!(ok(&ask(&mut mesh, leader, request)));
            expected
                .entry(shard)
                .or_default()
                .insert(Bytes::from(key), value);
        }
    }
    let follower = [1, 2, 3].into_iter().find(|h| *h != leader).unwrap();
    let mut backups = Backups {
        host: follower,
        id: 200,
        fetched: BTreeMap::new(),
    };
    // Four backups at once: shards 1 to 4 taken, then fetched in turn.
    for shard in 1..=4 {
        backups.take(&mut mesh, shard).unwrap();
    }
    // Shard 1's second chunk (of three), then shards 3 and 4 finish: shard
    // 2 is now the export asked for least recently.
    assert!(backups.next(&mut mesh, 1).is_ok());
    assert!(backups.next(&mut mesh, 3).is_ok());
    assert!(backups.next(&mut mesh, 4).is_ok());
    // Two held (1 and 2); shards 5, then 3 again, fill the host up, and
    // taking shard 4 again lets go of shard 2's.
    for shard in [5, 3, 4] {
        backups.take(&mut mesh, shard).unwrap();
    }
    assert_eq!(backups.next(&mut mesh, 2), Err(KvError::Busy));
    for shard in [1, 5, 3, 4] {
        let last = backups.next(&mut mesh, shard).unwrap();
        assert_eq!(last.offset + last.data.len() as u64, last.total);
        let (_, data) = &backups.fetched[&shard];
        let (data, _) = decode_shard(Bytes::from(data.clone()), &StoreLimits::default()).unwrap();
        assert_eq!(data, expected[&shard], "shard {shard}");
    }
    // Shard 2 again, then left alone for the idle time: let go.
    let index = backups.take(&mut mesh, 2).unwrap().index;
    mesh.run_until(Instant(mesh.now().as_millis() + EXPORT_IDLE_MS / 2));
    let again = backups.ask(&mut mesh, 2, Some(index), 1);
    assert_eq!(
        again.map(|c| c.offset),
        Ok(1),
        "held after half the idle time"
    );
    mesh.run_until(Instant(mesh.now().as_millis() + EXPORT_IDLE_MS + 1_000));
    assert_eq!(backups.next(&mut mesh, 2), Err(KvError::Busy));
    assert!(mesh.breaches.is_empty(), "{:?}", mesh.breaches);
}

/// Backups fetching from one host: each shard's export taken, with the
/// bytes fetched so far.
struct Backups {
    host: u64,
    id: u64,
    fetched: BTreeMap<u32, (u64, Vec<u8>)>,
}

impl Backups {
    fn ask(
        &mut self,
        mesh: &mut Mesh,
        shard: u32,
        at: Option<u64>,
        offset: u64,
    ) -> Result<ExportChunk, KvError> {
        self.id += 1;
        chunk(ask(mesh, self.host, export(self.id, 1, shard, at, offset)))
    }

    /// A new export of `shard` (its first chunk).
    fn take(&mut self, mesh: &mut Mesh, shard: u32) -> Result<ExportChunk, KvError> {
        let first = self.ask(mesh, shard, None, 0)?;
        assert_eq!((first.shard, first.offset), (shard, 0));
        self.fetched
            .insert(shard, (first.index, first.data.to_vec()));
        Ok(first)
    }

    /// The next chunk of the export of `shard` taken last.
    fn next(&mut self, mesh: &mut Mesh, shard: u32) -> Result<ExportChunk, KvError> {
        let (index, len) = {
            let (index, data) = &self.fetched[&shard];
            (*index, data.len() as u64)
        };
        let chunk = self.ask(mesh, shard, Some(index), len)?;
        assert_eq!(
            (chunk.shard, chunk.index, chunk.offset),
            (shard, index, len)
        );
        let (_, data) = self.fetched.get_mut(&shard).unwrap();
        data.extend_from_slice(&chunk.data);
        Ok(chunk)
    }
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

/// An export still waiting for its read index when its group retires here
/// is answered as an export ("wrong group", so the backup asks the
/// controller again), not as a read of a key.
#[test]
fn an_export_waiting_when_its_group_retires_is_answered_as_an_export() {
    use distribkv_core::shard::host::{HostBatch, HostInput, HostMessage};
    let (mut mesh, leader) = group_one_joined(5);
    let follower = [1, 2, 3].into_iter().find(|h| *h != leader).unwrap();
    let other = [1, 2, 3]
        .into_iter()
        .find(|h| *h != leader && *h != follower)
        .unwrap();
    // Its leader cut off, the follower's read index round waits.
    mesh.isolated.insert(leader);
    let request = export(77, 1, 0, None, 0);
    let replies = mesh.feed(follower, HostInput::Client { from: 1, request });
    assert!(replies.is_empty(), "{replies:?}");
    let retired = HostBatch {
        from: other,
        to: follower,
        messages: vec![HostMessage::Retired { group: 1 }],
    };
    let replies = mesh.feed(follower, HostInput::Batch(retired));
    let answer = replies.into_iter().find(|r| r.id() == 77);
    let answer = answer.expect("answered at retirement");
    assert_eq!(chunk(answer), Err(KvError::WrongGroup));
}
