//! The multi-group host: one write per step for all groups, one batch per
//! destination per step, coalesced heartbeats, and robustness against
//! malformed multi-group input.
//!
//! One file per concern: `batching` (writes and batches per step, coalesced
//! heartbeats), `robustness` (bad configurations, driver misuse, stray and
//! arbitrary batches), `hibernation` (idle groups sleep and wake, also under
//! faults), `shards` (how a shard push is addressed, follower reads
//! checked at the read index), `export` (a shard's export for a backup)
//! and `snapshot` (a snapshot on the driver's request). The helpers they
//! share are here.
#![cfg(feature = "sim")]

use distribkv_core::shard::host::{HostConfig, HostInput, HostReply, HostRequest};
use distribkv_core::sim::sharded::Mesh;
use distribkv_core::time::Instant;

mod batching;
mod export;
mod hibernation;
mod robustness;
mod shards;
mod snapshot;

/// `hosts` hosts, each holding a replica of each of `groups` groups (ids
/// 1..=groups), the controller on the first three (or all, if fewer).
pub(crate) fn configs(hosts: u64, groups: u64, tick: u64) -> Vec<HostConfig> {
    let servers: Vec<u64> = (1..=hosts).collect();
    let controller: Vec<u64> = servers.iter().copied().take(3).collect();
    servers
        .iter()
        .map(|id| {
            let mut c = HostConfig::new(*id, 10, controller.clone());
            c.groups = (1..=groups).map(|g| (g, servers.clone())).collect();
            c.tick_ms = tick;
            c.raft.heartbeat_interval = 50;
            c
        })
        .collect()
}

/// Runs the mesh until a reply to request `id` comes out of host `to`
/// (fed at once, then delivered and timed for at most 5 s of virtual time).
pub(crate) fn ask(mesh: &mut Mesh, to: u64, request: HostRequest) -> HostReply {
    let id = request.id();
    let reply_id = |r: &HostReply| r.id();
    let mut replies = mesh.feed(to, HostInput::Client { from: 1, request });
    let deadline = mesh.now().as_millis() + 5_000;
    loop {
        if let Some(reply) = replies.iter().find(|r| reply_id(r) == id) {
            return reply.clone();
        }
        if let Some(at) = mesh
            .late_replies
            .iter()
            .position(|(host, r)| *host == to && reply_id(r) == id)
        {
            return mesh.late_replies.remove(at).1;
        }
        assert!(mesh.now().as_millis() < deadline, "no reply to #{id}");
        let next = Instant(mesh.now().as_millis() + 10);
        mesh.run_until(next);
        replies.clear();
    }
}

/// The host among `candidates` that leads `group` (after an election if needed).
pub(crate) fn leader_among(mesh: &mut Mesh, group: u64, candidates: &[u64]) -> u64 {
    for _ in 0..500 {
        if let Some(id) = candidates
            .iter()
            .copied()
            .find(|id| mesh.hosts[id].node(group).is_some_and(|n| n.is_leader()))
        {
            return id;
        }
        let next = Instant(mesh.now().as_millis() + 10);
        mesh.run_until(next);
    }
    panic!("no leader of group {group} among {candidates:?}");
}
