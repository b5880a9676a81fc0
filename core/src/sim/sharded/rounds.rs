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
///
/// The data set is a fixed number of keys spread evenly over the groups
/// ([`WriteRounds::with_keys`]; [`WriteRounds::new`]: one key per
/// client). The clients of a group take its keys in turn, round after
/// round, and every key holds a value before the first measured round.
pub struct WriteRounds {
    /// The hosts.
    pub mesh: Mesh,
    groups: u64,
    clients: u64,
    /// Rounds run so far (each client's session sequence number).
    rounds: u64,
    /// Each group's keys (index `group - 1`), encoded once.
    keys: Vec<Vec<Bytes>>,
}

impl WriteRounds {
    /// `hosts` hosts holding `groups` groups (tick = heartbeat interval =
    /// 50 ms, a snapshot every 1,000 entries, 16 shards), elected after 3 s
    /// of virtual time, then joined by the controller, which spreads the
    /// shards over the groups. Each client writes one key of a shard its
    /// group serves. `None` if the groups do not serve their shards after
    /// 10 s of virtual time.
    pub fn new(hosts: u64, groups: u64, clients: u64, seed: u64) -> Option<WriteRounds> {
        WriteRounds::with_keys(hosts, groups, clients, clients, 1000, seed)
    }

    /// As [`WriteRounds::new`], with a data set of `keys` keys (at least
    /// one per group), each written once before this returns, and a
    /// snapshot of each group every `snapshot_every` of its entries.
    pub fn with_keys(
        hosts: u64,
        groups: u64,
        clients: u64,
        keys: u64,
        snapshot_every: u64,
        seed: u64,
    ) -> Option<WriteRounds> {
        let servers: Vec<NodeId> = (1..=hosts).collect();
        let configs = servers
            .iter()
            .map(|id| {
                let mut c = HostConfig::new(*id, SHARDS, servers.clone());
                c.groups = (1..=groups).map(|g| (g, servers.clone())).collect();
                c.tick_ms = 50;
                c.raft.heartbeat_interval = 50;
                c.snapshot_every = snapshot_every;
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
        let per_group = keys.div_ceil(groups).max(1) as usize;
        let mut by_group: Vec<Vec<Bytes>> = (0..groups).map(|_| Vec::new()).collect();
        let owner = |key: &str| {
            let shard = shard_of(key.as_bytes(), SHARDS);
            (1..=groups).find(|g| {
                host.kv(*g)
                    .is_some_and(|kv| kv.shards().contains_key(&shard))
            })
        };
        let mut n = 0u64;
        while by_group.iter().any(|k| k.len() < per_group) {
            let key = format!("key{n}");
            n += 1;
            let list = &mut by_group[(owner(&key)? - 1) as usize];
            if list.len() < per_group {
                list.push(Bytes::from(key));
            }
        }
        let mut rounds = WriteRounds {
            mesh,
            groups,
            clients,
            rounds: 0,
            keys: by_group,
        };
        // Every key written once before the measured rounds.
        let fewest_clients = (clients / groups).max(1) as usize;
        for _ in 0..per_group.div_ceil(fewest_clients) {
            rounds.run_round();
        }
        Some(rounds)
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
                            key: self.key(client),
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

    /// The key `client` writes in this round: its group's clients take
    /// the group's keys in turn.
    fn key(&self, client: u64) -> Bytes {
        let keys = &self.keys[(client % self.groups) as usize];
        let group_clients = (self.clients - client % self.groups).div_ceil(self.groups);
        let turn = (self.rounds - 1) * group_clients + client / self.groups;
        keys[(turn % keys.len() as u64) as usize].clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's rounds do what they claim: every write answered
    /// `Ok`, the data set spread evenly over the groups, every key written
    /// before the first measured round and holding a value on every host.
    #[test]
    fn rounds_write_the_whole_data_set_on_every_group() {
        for groups in [1u64, 16] {
            let mut rounds = WriteRounds::with_keys(3, groups, 64, 1024, 1000, 5).expect("serving");
            assert!(
                rounds
                    .keys
                    .iter()
                    .all(|k| k.len() == 64 * 16 / groups as usize),
                "{groups} groups: the keys are spread evenly"
            );
            let preloaded = rounds.rounds();
            for _ in 0..20 {
                assert_eq!(
                    rounds.run_round(),
                    64,
                    "{groups} groups: every write answered"
                );
            }
            rounds.check_applied().expect("applied everywhere");
            assert!(
                preloaded >= 16,
                "{groups} groups: preloaded in {preloaded} rounds"
            );
            for host in rounds.mesh.hosts.values() {
                for (index, keys) in rounds.keys.iter().enumerate() {
                    let kv = host.kv(index as u64 + 1).expect("a replica");
                    for key in keys {
                        assert_eq!(
                            kv.value(key).map(|v| v.as_ref()),
                            Some(&b"value"[..]),
                            "{groups} groups: {key:?} on host {}",
                            host.id()
                        );
                    }
                }
            }
        }
    }
}
