//! `snapshot save` of a sharded cluster: every shard exported by the
//! group that serves it ([`HostRequest::Export`]), shard after shard.
//!
//! Each export is taken at a linearizable point after the command started
//! (a read index, at whichever replica of the group is asked: a follower
//! serves it as well as the leader) and only if the group still serves
//! the shard there, so every write acknowledged before the command started
//! is in it, wherever the shard moved since. Shards are taken one after
//! another, not at one instant: a write made during the save may be in
//! one shard and a later one missing from another (no operation spans two
//! keys, so each key holds its value at some point after the start). A
//! shard on its way between groups is waited for; one whose group changed
//! sends the command back to the controller for the new owner.

use std::sync::Arc;
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

/// Fetches every shard of `cluster` (at most [`SAVE_TIMEOUT`] in all).
pub(super) async fn fetch(cluster: Arc<ShardedCluster>) -> Result<ShardedBackup, SnapshotError> {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    let mut session = ShardedSession::new(
        cluster.clone(),
        ShardTiming::default(),
        crate::transport::random_u64(),
    );
    let mut config = latest(&mut session).await?;
    let mut shards = Vec::with_capacity(cluster.shards as usize);
    let mut next_id = 1;
    // Hosts that failed an attempt: asked last for the next shards, so a
    // host that is down or cut off costs one timeout, not one per shard.
    let mut suspects = Vec::new();
    for shard in 0..cluster.shards {
        let mut last = String::from("no answer");
        loop {
            if Instant::now() >= deadline {
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
                shards.push(ShardBackup {
                    shard,
                    group: 0,
                    config: config.num,
                    index: 0,
                    data: Bytes::new(),
                });
                break;
            };
            let attempt = fetch_shard(&cluster, group, shard, servers, &mut next_id, &mut suspects);
            match attempt.await {
                Ok(Fetched::Done(backup)) => {
                    shards.push(backup);
                    break;
                }
                Ok(Fetched::Moved) => {
                    last = format!("group {group} no longer serves it");
                    tokio::time::sleep(RETRY).await;
                    config = latest(&mut session).await?;
                }
                Ok(Fetched::Later(why)) => {
                    last = why;
                    tokio::time::sleep(RETRY).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
    Ok(ShardedBackup { shards })
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
/// shard (so that a save spreads over the replicas), `suspects` last.
async fn fetch_shard(
    cluster: &ShardedCluster,
    group: GroupId,
    shard: ShardId,
    servers: &[NodeId],
    next_id: &mut u64,
    suspects: &mut Vec<NodeId>,
) -> Result<Fetched, SnapshotError> {
    let mut why = String::from("no replica answered");
    let mut order: Vec<NodeId> = (0..servers.len())
        .map(|k| servers[(shard as usize + k) % servers.len()])
        .collect();
    order.sort_by_key(|server| suspects.contains(server));
    for server in order {
        let Some(index) = cluster.index_of(server) else {
            why = format!("host {server} of group {group} is not a known host");
            continue;
        };
        let attempt = fetch_from(cluster, index, group, shard, next_id).await;
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
    next_id: &mut u64,
) -> Result<Option<ShardBackup>, Attempt> {
    let mut data = BytesMut::new();
    let mut held: Option<(u64, u64, u64)> = None; // index, total, config
    loop {
        let id = *next_id;
        *next_id += 1;
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
