//! `snapshot save` of a sharded cluster: every shard exported by the
//! group that serves it ([`HostRequest::Export`]), several at once.
//!
//! Each export is taken at a linearizable point after the command started
//! (a read index, at whichever replica of the group is asked: a follower
//! serves it as well as the leader) and only if the group still serves
//! the shard there, so every write acknowledged before the command started
//! is in it, wherever the shard moved since. Shards are taken one host's
//! worth at a time (one worker per host, one export at a time per host),
//! not at one instant: a write made during the save may be in
//! one shard and a later one missing from another (no operation spans two
//! keys, so each key holds its value at some point after the start). A
//! shard on its way between groups is waited for; one whose group changed
//! sends the command back to the controller for the new owner.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use distribkv_core::raft::NodeId;
use distribkv_core::shard::group::KvError as ShardError;
use distribkv_core::shard::host::{HostReply, HostRequest};
use distribkv_core::shard::{ControllerOp, ControllerReply, GroupId, ShardConfig, ShardId};

use super::{REQUEST_TIMEOUT, SAVE_TIMEOUT, SnapshotError};
use crate::backup::sharded::{ShardBackup, ShardedBackup};
use crate::shard::client::{ShardTiming, ShardedCluster, ShardedSession};
use crate::shard::wire::{ShardedBody, ShardedReply, ShardedRequest};
use crate::transport::ClientError;

/// How long to wait before asking again for a shard on its way.
const RETRY: Duration = Duration::from_millis(100);
/// How long the first request of an export may take (its read index
/// round): a replica cut off from its leader fails it within an election
/// timeout, a host that is down never answers.
const FIRST_CHUNK_TIMEOUT: Duration = Duration::from_secs(5);

/// What fetching one shard from one group came to.
enum Fetched {
    /// The whole export.
    Done(ShardBackup),
    /// The group no longer serves the shard: ask the controller again.
    Moved,
    /// No replica could give it now (on its way, an election): retry.
    Later(String),
}

/// What the workers of one save share.
struct Save {
    cluster: Arc<ShardedCluster>,
    deadline: Instant,
    /// The next shard no worker has taken yet.
    next_shard: AtomicU32,
    /// The next request id (unique over the save).
    next_id: AtomicU64,
    /// Hosts that failed an attempt: asked last for the next shards, so a
    /// host that is down or cut off costs one timeout, not one per shard.
    suspects: Mutex<Vec<NodeId>>,
    /// One export at a time per host: host `n`'s at index `n - 1`. A host
    /// holds [`EXPORTS_HELD`](distribkv_core::shard::host::EXPORTS_HELD)
    /// exports, so up to that many saves at once never make each other
    /// start a shard over.
    exporting: Vec<tokio::sync::Mutex<()>>,
}

/// Fetches every shard of `cluster` (at most [`SAVE_TIMEOUT`] in all),
/// with one worker per host: each takes the next shard not taken and
/// asks a replica of its group, one export at a time per host, so the
/// exports of different groups' replicas overlap.
pub(super) async fn fetch(cluster: Arc<ShardedCluster>) -> Result<ShardedBackup, SnapshotError> {
    let mut session = session(&cluster);
    let config = latest(&mut session).await?;
    let workers = cluster.hosts.len().clamp(1, cluster.shards.max(1) as usize);
    let save = Arc::new(Save {
        deadline: Instant::now() + SAVE_TIMEOUT,
        next_shard: AtomicU32::new(0),
        next_id: AtomicU64::new(1),
        suspects: Mutex::new(Vec::new()),
        exporting: cluster
            .hosts
            .iter()
            .map(|_| tokio::sync::Mutex::new(()))
            .collect(),
        cluster,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(save.clone(), config.clone()));
    }
    let mut shards = Vec::with_capacity(save.cluster.shards as usize);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(mut fetched)) => shards.append(&mut fetched),
            // The first failure ends the save (the other workers are
            // aborted as `tasks` is dropped).
            Ok(Err(error)) => return Err(error),
            Err(error) => {
                return Err(SnapshotError::Invalid(format!(
                    "a fetching task failed: {error}"
                )));
            }
        }
    }
    shards.sort_by_key(|backup| backup.shard);
    Ok(ShardedBackup { shards })
}

/// A routing session for the controller's queries.
fn session(cluster: &Arc<ShardedCluster>) -> ShardedSession {
    ShardedSession::new(
        cluster.clone(),
        ShardTiming::default(),
        crate::transport::random_u64(),
    )
}

/// One worker of a save: fetches shards until none is left untaken.
async fn worker(
    save: Arc<Save>,
    mut config: ShardConfig,
) -> Result<Vec<ShardBackup>, SnapshotError> {
    let mut session = session(&save.cluster);
    let mut fetched = Vec::new();
    loop {
        let shard = save.next_shard.fetch_add(1, Ordering::Relaxed);
        if shard >= save.cluster.shards {
            return Ok(fetched);
        }
        let mut last = String::from("no answer");
        loop {
            if Instant::now() >= save.deadline {
                return Err(SnapshotError::Incomplete {
                    seconds: SAVE_TIMEOUT.as_secs(),
                    shard,
                    last,
                });
            }
            let group = config.shards.get(shard as usize).copied().unwrap_or(0);
            let Some(servers) = config.groups.get(&group).filter(|_| group != 0) else {
                // No group has ever owned it (the latest configuration,
                // read through the controller's log, gives it none).
                fetched.push(ShardBackup {
                    shard,
                    group: 0,
                    config: config.num,
                    index: 0,
                    data: Bytes::new(),
                });
                break;
            };
            match fetch_shard(&save, group, shard, servers).await? {
                Fetched::Done(backup) => {
                    fetched.push(backup);
                    break;
                }
                Fetched::Moved => {
                    last = format!("group {group} no longer serves it");
                    tokio::time::sleep(RETRY).await;
                    config = latest(&mut session).await?;
                }
                Fetched::Later(why) => {
                    last = why;
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// The latest configuration, through the controller's log.
async fn latest(session: &mut ShardedSession) -> Result<ShardConfig, SnapshotError> {
    match session.controller(ControllerOp::Query(None)).await {
        Ok(ControllerReply::Config(config)) => Ok(config),
        Ok(other) => Err(SnapshotError::Invalid(format!(
            "the controller answered {other:?} to a query"
        ))),
        Err(error) => Err(SnapshotError::Invalid(format!(
            "the controller did not answer: {error}"
        ))),
    }
}

/// Tries each replica of `group` in turn, starting with one chosen by the
/// shard (so that a save spreads over the replicas), hosts busy with
/// another worker's export after the others, suspects last.
async fn fetch_shard(
    save: &Save,
    group: GroupId,
    shard: ShardId,
    servers: &[NodeId],
) -> Result<Fetched, SnapshotError> {
    let mut why = String::from("no replica answered");
    let mut order: Vec<NodeId> = (0..servers.len())
        .map(|k| servers[(shard as usize + k) % servers.len()])
        .collect();
    {
        // Suspects last; among the others, hosts no other worker is
        // exporting from first.
        let suspects = save.suspects.lock().unwrap_or_else(|e| e.into_inner());
        order.sort_by_key(|server| {
            let busy = save
                .cluster
                .index_of(*server)
                .is_some_and(|index| save.exporting[index].try_lock().is_err());
            (suspects.contains(server), busy)
        });
    }
    for server in order {
        let Some(index) = save.cluster.index_of(server) else {
            why = format!("host {server} of group {group} is not a known host");
            continue;
        };
        let attempt = {
            let _exporting = save.exporting[index].lock().await;
            fetch_from(&save.cluster, index, group, shard, &save.next_id).await
        };
        {
            let mut suspects = save.suspects.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(attempt, Ok(Some(_))) {
                suspects.retain(|s| *s != server);
            } else if !suspects.contains(&server)
                && !matches!(
                    attempt,
                    Err(Attempt::Refused(
                        ShardError::WrongGroup | ShardError::NotArrived
                    ))
                )
            {
                suspects.push(server);
            }
        }
        match attempt {
            Ok(Some(backup)) => return Ok(Fetched::Done(backup)),
            Ok(None) => why = format!("host {server} lost the export half-way"),
            Err(Attempt::Refused(ShardError::WrongGroup)) => return Ok(Fetched::Moved),
            Err(Attempt::Refused(ShardError::NotArrived)) => {
                return Ok(Fetched::Later(format!(
                    "shard {shard} has not arrived at group {group} yet"
                )));
            }
            Err(Attempt::Refused(error)) => why = format!("host {server}: {error}"),
            Err(Attempt::Transport(ClientError::Certificates(error))) => {
                return Err(SnapshotError::Invalid(error.to_string()));
            }
            Err(Attempt::Transport(error)) => why = format!("host {server}: {error}"),
            Err(Attempt::Odd(what)) => why = format!("host {server}: {what}"),
        }
    }
    Ok(Fetched::Later(why))
}

/// Why one attempt at one host failed.
enum Attempt {
    Refused(ShardError),
    Transport(ClientError),
    Odd(String),
}

/// Fetches the export from host `index`, chunk by chunk; `Ok(None)` if the
/// host stopped holding it half-way.
async fn fetch_from(
    cluster: &ShardedCluster,
    index: usize,
    group: GroupId,
    shard: ShardId,
    next_id: &AtomicU64,
) -> Result<Option<ShardBackup>, Attempt> {
    let mut data = BytesMut::new();
    let mut held: Option<(u64, u64, u64)> = None; // index, total, config
    loop {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let request = ShardedRequest::new(ShardedBody::Host(HostRequest::Export {
            id,
            group,
            shard,
            at: held.map(|(at, _, _)| at),
            offset: data.len() as u64,
        }));
        let limit = if held.is_none() {
            FIRST_CHUNK_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        let answer =
            tokio::time::timeout(limit, cluster.transport.request_to(index, request)).await;
        let chunk = match answer {
            Err(_) => return Err(Attempt::Odd("no answer in time".into())),
            Ok(Err(error)) => return Err(Attempt::Transport(error)),
            Ok(Ok(ShardedReply::Host(HostReply::Export { id: got, result }))) if got == id => {
                match result {
                    Ok(chunk) => chunk,
                    Err(ShardError::Busy) if held.is_some() => return Ok(None),
                    Err(error) => return Err(Attempt::Refused(error)),
                }
            }
            Ok(Ok(other)) => return Err(Attempt::Odd(format!("unexpected answer {other:?}"))),
        };
        let consistent = chunk.shard == shard
            && chunk.offset == data.len() as u64
            && held.is_none_or(|h| h == (chunk.index, chunk.total, chunk.config))
            && data.len() as u64 + chunk.data.len() as u64 <= chunk.total;
        if !consistent {
            return Err(Attempt::Odd("a chunk that does not follow the last".into()));
        }
        held = Some((chunk.index, chunk.total, chunk.config));
        data.extend_from_slice(&chunk.data);
        if data.len() as u64 == chunk.total {
            return Ok(Some(ShardBackup {
                shard,
                group,
                config: chunk.config,
                index: chunk.index,
                data: data.freeze(),
            }));
        }
        if chunk.data.is_empty() {
            return Err(Attempt::Odd("an empty chunk before the end".into()));
        }
    }
}
