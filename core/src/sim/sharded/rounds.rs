//! The write rounds of the `shard` benchmark's `entries` group, shared by
//! the benchmark and the profiling example (`profile_shard_rounds`).

use super::*;
use crate::kv::Operation;
use crate::shard::host::{HostInput, HostReply, HostRequest};
use crate::shard::{ControllerOp, shard_of};
use alloc::format;

const SHARDS: u32 = 16;

/// Rounds of concurrent client writes on a [`Mesh`] of hosts that each
/// hold a replica of every group: each round, `clients` clients each put
/// one key, client `c` writing to group `1 + c % groups`; the round runs
/// until every write is committed, applied and answered. The throughput
/// benchmark of multiplexing (the same clients over 1 or 16 groups).
pub struct WriteRounds {
    /// The hosts.
    pub mesh: Mesh,
    groups: u64,
    clients: u64,
    /// Rounds run so far (each client's session sequence number).
    rounds: u64,
    /// Each client's key, encoded once.
    keys: Vec<Bytes>,
}

impl WriteRounds {
    /// `hosts` hosts holding `groups` groups (tick = heartbeat interval =
    /// 50 ms, a snapshot every 1,000 entries, 16 shards), elected after 3 s
    /// of virtual time, then joined by the controller, which spreads the
    /// shards over the groups. Each client writes one key of a shard its
    /// group serves. `None` if the groups do not serve their shards after
    /// 10 s of virtual time.
    pub fn new(hosts: u64, groups: u64, clients: u64, seed: u64) -> Option<WriteRounds> {
        let servers: Vec<NodeId> = (1..=hosts).collect();
        let configs = servers
            .iter()
            .map(|id| {
                let mut c = HostConfig::new(*id, SHARDS, servers.clone());
                c.groups = (1..=groups).map(|g| (g, servers.clone())).collect();
                c.tick_ms = 50;
                c.raft.heartbeat_interval = 50;
                c.snapshot_every = 1000;
                c
            })
            .collect();
        let mut mesh = Mesh::new(configs, seed).ok()?;
        mesh.run_until(Instant(3_000));
        let leader = mesh
            .hosts
            .values()
            .find_map(|h| h.node(CONTROLLER)?.leader())?;
        let join = (1..=groups).map(|g| (g, servers.clone())).collect();
        let reply = mesh.feed(
            leader,
            HostInput::Client {
                from: 0,
                request: HostRequest::Controller {
                    id: 0,
                    client: u64::MAX,
                    seq: 1,
                    op: ControllerOp::Join(join),
                },
            },
        );
        let mut answered = reply.len();
        while answered == 0 && mesh.now() < Instant(10_000) {
            let next = mesh.now().as_millis() + 10;
            mesh.run_until(Instant(next));
            answered += mesh.take_replies().len();
        }
        // The groups learn the configuration by polling the controller.
        let serving = |mesh: &Mesh| {
            mesh.hosts.values().all(|h| {
                (1..=groups).all(|g| {
                    h.kv(g)
                        .is_some_and(|kv| kv.is_settled() && kv.config().num == 1)
                })
            })
        };
        while !serving(&mesh) {
            if mesh.now() >= Instant(10_000) {
                return None;
            }
            let next = mesh.now().as_millis() + 10;
            mesh.run_until(Instant(next));
        }
        let host = mesh.hosts.values().next()?;
        let mut keys = Vec::new();
        for client in 0..clients {
            let kv = host.kv(1 + client % groups)?;
            let key = (0..)
                .map(|n| format!("key{client}-{n}"))
                .find(|k| kv.shards().contains_key(&shard_of(k.as_bytes(), SHARDS)))?;
            keys.push(Bytes::from(key));
        }
        Some(WriteRounds {
            mesh,
            groups,
            clients,
            rounds: 0,
            keys,
        })
    }

    /// Runs one round; returns how many writes were answered `Ok` (all of
    /// them unless a leader changed during the round).
    pub fn run_round(&mut self) -> u64 {
        self.rounds += 1;
        let seq = self.rounds;
        let mut by_leader: BTreeMap<NodeId, Vec<HostInput>> = BTreeMap::new();
        let leaders: Vec<NodeId> = (1..=self.groups)
            .map(|group| {
                self.mesh
                    .hosts
                    .values()
                    .find_map(|h| h.node(group).and_then(|n| n.leader()))
                    .unwrap_or(1)
            })
            .collect();
        for client in 0..self.clients {
            let group = 1 + client % self.groups;
            let leader = leaders[(group - 1) as usize];
            let clients = self.clients as usize;
            by_leader
                .entry(leader)
                .or_insert_with(|| Vec::with_capacity(clients))
                .push(HostInput::Client {
                    from: client,
                    request: HostRequest::Kv {
                        id: seq,
                        group,
                        client: client + 1,
                        seq,
                        op: Operation::Put {
                            key: self.keys[client as usize].clone(),
                            value: Bytes::from_static(b"value"),
                        },
                    },
                });
        }
        let mut answered = 0;
        for (leader, inputs) in by_leader {
            answered += count_ok(&self.mesh.feed_many(leader, inputs));
        }
        // The other replies come back as the followers acknowledge.
        let now = self.mesh.now();
        self.mesh.run_until(now);
        answered += count_ok(&self.mesh.take_replies());
        answered
    }

    /// Rounds run so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Checks that every host applied every round of every group.
    pub fn check_applied(&self) -> Result<(), String> {
        for (id, host) in &self.mesh.hosts {
            for group in 1..=self.groups {
                let applied = host.node(group).map_or(0, |n| n.log().applied());
                // Each round adds at least one entry per group (and the
                // elections one no-op each).
                if applied < self.rounds {
                    return Err(format!(
                        "host {id}, group {group}: applied {applied} after {} rounds",
                        self.rounds
                    ));
                }
            }
        }
        Ok(())
    }
}

fn count_ok(replies: &[HostReply]) -> u64 {
    replies
        .iter()
        .filter(|r| matches!(r, HostReply::Kv { result: Ok(_), .. }))
        .count() as u64
}
