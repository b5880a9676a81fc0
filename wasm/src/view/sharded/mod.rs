//! What `ShardedSimulation` returns: plain, JSON-shaped renderings of the
//! sharded simulator, one file per call: `state()` here, [`mod@history`]
//! (`history()`), [`mod@check`] (`check()`), [`message`] (`message(id)` and
//! `events()`).

pub mod check;
pub mod history;
pub mod message;

pub use check::{GroupCheck, ShardedCheck, check};
pub use history::{ShardedHistoryOp, history};
pub use message::{ShardedMessageView, events};

use std::collections::{BTreeMap, BTreeSet};

use distribkv_core::raft::RoleKind;
use distribkv_core::shard::group::ShardStatus;
use distribkv_core::shard::host::CONTROLLER;
use distribkv_core::shard::{GroupId, ShardConfig, shard_of};
use distribkv_core::sim::sharded::ShardedSim;
use serde::Serialize;

use super::{JsEndpoint, text};
use crate::sharded::AdminDone;

/// A role's name, as `state().nodes[].role` spells it.
pub fn role_name(role: RoleKind) -> &'static str {
    match role {
        RoleKind::Leader => "leader",
        RoleKind::Follower => "follower",
        RoleKind::Candidate => "candidate",
        RoleKind::PreCandidate => "precandidate",
        RoleKind::Learner => "learner",
    }
}

/// One replica a host holds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaView {
    /// Its group (0: the controller).
    pub group: GroupId,
    /// `"leader"`, `"follower"`, ...
    pub role: &'static str,
    /// Current term.
    pub term: u64,
    /// The leader it knows (a host id).
    pub leader: Option<u64>,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// The configuration number it is in (shard groups; the controller:
    /// its latest configuration).
    pub config_num: u64,
    /// Whether the group sleeps here (idle groups hibernate).
    pub hibernating: bool,
    /// Follower reads this replica answered while not leading its group,
    /// since its host last started (0 while down).
    pub follower_reads_served: u64,
}

/// One host.
#[derive(Clone, Debug, Serialize)]
pub struct HostView {
    /// Host id, 1..
    pub id: u64,
    /// Whether it runs.
    pub up: bool,
    /// The replicas it holds (the configured ones while down, with
    /// role `"down"`).
    pub replicas: Vec<ReplicaView>,
}

/// A shard a group holds, with its status.
#[derive(Clone, Debug, Serialize)]
pub struct HeldShard {
    /// The shard.
    pub shard: u32,
    /// `"serving"`, `"pulling"` (owned, waiting for its data) or
    /// `"sending"` (no longer owned, kept until the new owner has it).
    pub status: &'static str,
    /// The other group of a move (from whom it pulls, to whom it sends).
    pub peer: Option<GroupId>,
    /// Keys it holds.
    pub keys: usize,
}

/// One replica group.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// Group id (0: the controller).
    pub id: GroupId,
    /// Its hosts.
    pub hosts: Vec<u64>,
    /// The leader host (highest term among leaders that are up).
    pub leader: Option<u64>,
    /// Whether the controller's latest configuration lists it.
    pub joined: bool,
    /// Whether the group left and was retired: its replicas are gone from
    /// every host, and its id cannot join again.
    pub retired: bool,
    /// The configuration number of its most advanced up replica.
    pub config_num: Option<u64>,
    /// The shards that replica holds.
    pub shards: Vec<HeldShard>,
}

/// One shard on the shard map.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardView {
    /// The shard.
    pub shard: u32,
    /// Its owner in the controller's latest configuration (0: none).
    pub owner: GroupId,
    /// `"serving"` (its owner has it), `"moving"` (its data is on the
    /// way, or its old owner still keeps it), `"pending"` (its owner has
    /// not reached the configuration yet) or `"unassigned"`.
    pub status: &'static str,
    /// The group it moves from, while moving.
    pub from: Option<GroupId>,
}

/// The controller's configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigView {
    /// Its number.
    pub num: u64,
    /// Owner of each shard (0: none).
    pub shards: Vec<GroupId>,
    /// Each joined group's hosts (keys are group ids).
    pub groups: BTreeMap<String, Vec<u64>>,
}

impl From<&ShardConfig> for ConfigView {
    fn from(config: &ShardConfig) -> ConfigView {
        ConfigView {
            num: config.num,
            shards: config.shards.clone(),
            groups: config
                .groups
                .iter()
                .map(|(g, s)| (g.to_string(), s.clone()))
                .collect(),
        }
    }
}

/// A message in flight.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlightView {
    /// Its id, for `message(id)` and `dropMessage(id)`.
    pub id: u64,
    /// Sender: a host id (of a reply, the host that answers), or a client
    /// (`"c0"` is the page's).
    pub from: JsEndpoint,
    /// Receiver.
    pub to: JsEndpoint,
    /// When it arrives.
    pub deliver_at: u64,
    /// The kinds it carries.
    pub kinds: Vec<&'static str>,
    /// Shard moves it carries.
    pub pushes: Vec<PushView>,
    /// The groups of its Raft messages (distinct).
    pub groups: Vec<GroupId>,
}

/// A shard push in flight.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushView {
    /// The shard.
    pub shard: u32,
    /// Old owner.
    pub from_group: GroupId,
    /// New owner.
    pub to_group: GroupId,
    /// The configuration it moves in.
    pub config_num: u64,
}

/// A workload client.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    /// Its number (1..).
    pub id: u64,
    /// The operation it runs (history id, from 1).
    pub pending: Option<u64>,
    /// Its key, shard and the group owning the shard (controller's latest).
    pub key: Option<String>,
    /// The shard of its key.
    pub shard: Option<u32>,
    /// The group it is routed to.
    pub group: Option<GroupId>,
    /// The configuration it routes by.
    pub config_num: Option<u64>,
}

/// The page's operations.
#[derive(Clone, Debug, Serialize)]
pub struct AdminView {
    /// The one running, in words.
    pub running: Option<String>,
    /// Those waiting.
    pub queued: Vec<String>,
    /// The last ones ended.
    pub done: Vec<AdminDone>,
}

/// `state()`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardedStateView {
    /// Virtual time.
    pub now: u64,
    /// Hosts.
    pub hosts: Vec<HostView>,
    /// The controller group (id 0), then the shard groups.
    pub groups: Vec<GroupView>,
    /// The controller's latest configuration (its most advanced up
    /// replica's), or `null` with no controller replica up.
    pub config: Option<ConfigView>,
    /// The shard map.
    pub shards: Vec<ShardView>,
    /// Messages in flight.
    pub in_flight: Vec<InFlightView>,
    /// Workload clients.
    pub clients: Vec<ClientView>,
    /// Whether the workload runs.
    pub workload: bool,
    /// The page's operations.
    pub admin: AdminView,
    /// The network: a partition (sides of host ids) and cut links.
    pub links: LinksView,
}

/// `state().links`.
#[derive(Clone, Debug, Serialize)]
pub struct LinksView {
    /// The partition's sides, if any.
    pub partition: Option<Vec<Vec<JsEndpoint>>>,
    /// Cut links `[from, to]`.
    pub cut: Vec<(JsEndpoint, JsEndpoint)>,
}

fn status_of(status: ShardStatus) -> (&'static str, Option<GroupId>) {
    match status {
        ShardStatus::Serving => ("serving", None),
        ShardStatus::Pulling { from } => ("pulling", Some(from)),
        ShardStatus::Sending { to } => ("sending", Some(to)),
    }
}

/// The controller's latest configuration among the up hosts.
fn latest_config(sim: &ShardedSim) -> Option<ShardConfig> {
    (1..=sim.config().hosts)
        .filter_map(|id| sim.host(id)?.controller())
        .map(|c| c.latest())
        .max_by_key(|c| c.num)
        .cloned()
}

/// `state()`.
pub fn state(sim: &ShardedSim, admin: AdminView) -> ShardedStateView {
    let config = sim.config();
    let latest = latest_config(sim);
    let mut hosts = Vec::new();
    for id in 1..=config.hosts {
        let replicas = match sim.host(id) {
            Some(host) => host
                .nodes()
                .map(|(g, node)| ReplicaView {
                    group: g,
                    role: role_name(node.role()),
                    term: node.term(),
                    leader: node.leader(),
                    commit_index: node.log().commit(),
                    applied_index: node.log().applied(),
                    config_num: if g == CONTROLLER {
                        host.controller().map_or(0, |c| c.latest().num)
                    } else {
                        host.kv(g).map_or(0, |kv| kv.config().num)
                    },
                    hibernating: host.is_hibernating(g),
                    follower_reads_served: host
                        .stats()
                        .follower_reads_by_group
                        .get(&g)
                        .copied()
                        .unwrap_or(0),
                })
                .collect(),
            None => core::iter::once(CONTROLLER)
                .filter(|_| config.host.controller.contains(&id))
                .chain(
                    config
                        .host
                        .groups
                        .iter()
                        .filter(|(g, s)| s.contains(&id) && !sim.disk_holds(id, **g).1)
                        .map(|(g, _)| *g),
                )
                .map(|g| ReplicaView {
                    group: g,
                    role: "down",
                    term: 0,
                    leader: None,
                    commit_index: 0,
                    applied_index: 0,
                    config_num: 0,
                    hibernating: false,
                    follower_reads_served: 0,
                })
                .collect(),
        };
        hosts.push(HostView {
            id,
            up: sim.is_up(id),
            replicas,
        });
    }
    let mut groups = vec![GroupView {
        id: CONTROLLER,
        hosts: config.host.controller.clone(),
        leader: sim.leader_of(CONTROLLER),
        joined: true,
        retired: false,
        config_num: latest.as_ref().map(|c| c.num),
        shards: Vec::new(),
    }];
    // Each group's most advanced up replica.
    let mut held: BTreeMap<GroupId, BTreeMap<u32, (ShardStatus, usize)>> = BTreeMap::new();
    for (g, servers) in &config.host.groups {
        let best = servers
            .iter()
            .filter_map(|id| {
                let host = sim.host(*id)?;
                Some((host.node(*g)?.log().applied(), host.kv(*g)?))
            })
            .max_by_key(|(applied, _)| *applied)
            .map(|(_, kv)| kv);
        let shards: BTreeMap<u32, (ShardStatus, usize)> = best
            .map(|kv| {
                kv.shards()
                    .iter()
                    .map(|(s, shard)| (*s, (shard.status, shard.data.len())))
                    .collect()
            })
            .unwrap_or_default();
        groups.push(GroupView {
            id: *g,
            hosts: servers.clone(),
            leader: sim.leader_of(*g),
            joined: latest.as_ref().is_some_and(|c| c.groups.contains_key(g)),
            retired: sim.is_retired(*g),
            config_num: best.map(|kv| kv.config().num),
            shards: shards
                .iter()
                .map(|(s, (status, keys))| {
                    let (status, peer) = status_of(*status);
                    HeldShard {
                        shard: *s,
                        status,
                        peer,
                        keys: *keys,
                    }
                })
                .collect(),
        });
        held.insert(*g, shards);
    }
    let shards = (0..config.host.shards)
        .map(|s| {
            let owner = latest.as_ref().map_or(0, |c| c.owner(s));
            let sender = held.iter().find_map(|(g, shards)| {
                matches!(shards.get(&s), Some((ShardStatus::Sending { .. }, _))).then_some(*g)
            });
            let owned = held.get(&owner).and_then(|shards| shards.get(&s));
            let owner_config = groups
                .iter()
                .find(|g| g.id == owner)
                .and_then(|g| g.config_num);
            let (status, from) = match owned {
                _ if owner == 0 => ("unassigned", None),
                Some((ShardStatus::Pulling { from }, _)) => ("moving", Some(*from)),
                _ if sender.is_some() => ("moving", sender),
                Some((ShardStatus::Serving, _))
                    if owner_config == latest.as_ref().map(|c| c.num) =>
                {
                    ("serving", None)
                }
                _ => ("pending", None),
            };
            ShardView {
                shard: s,
                owner,
                status,
                from,
            }
        })
        .collect();
    let in_flight = sim
        .in_flight()
        .into_iter()
        .map(|m| {
            let groups: BTreeSet<GroupId> = m.groups.iter().copied().collect();
            InFlightView {
                id: m.id,
                from: m.from.into(),
                to: m.to.into(),
                deliver_at: m.deliver_at,
                kinds: m.kinds,
                pushes: m
                    .pushes
                    .into_iter()
                    .map(|(shard, from_group, to_group, config_num)| PushView {
                        shard,
                        from_group,
                        to_group,
                        config_num,
                    })
                    .collect(),
                groups: groups.into_iter().collect(),
            }
        })
        .collect();
    let history = sim.history();
    let clients = sim
        .workload_clients()
        .into_iter()
        .map(|c| {
            let op = c.pending.and_then(|id| history.operation(id));
            let shard = op.map(|o| shard_of(&o.key, config.host.shards));
            ClientView {
                id: c.number,
                pending: c.pending.map(|id| id + 1),
                key: op.map(|o| text(&o.key)),
                shard,
                group: shard.and_then(|s| latest.as_ref().map(|c| c.owner(s))),
                config_num: c.config_num,
            }
        })
        .collect();
    let network = sim.network();
    let links = LinksView {
        partition: network.partition_groups().map(|groups| {
            groups
                .iter()
                .map(|side| side.iter().map(|e| JsEndpoint::from(*e)).collect())
                .collect()
        }),
        cut: network
            .cut_links()
            .map(|(a, b)| (JsEndpoint::from(*a), JsEndpoint::from(*b)))
            .collect(),
    };
    ShardedStateView {
        now: sim.now().as_millis(),
        hosts,
        groups,
        config: latest.as_ref().map(ConfigView::from),
        shards,
        in_flight,
        clients,
        workload: sim.is_workload_running(),
        admin,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::sim::sharded::ShardedConfig;

    fn admin() -> AdminView {
        AdminView {
            running: None,
            queued: Vec::new(),
            done: Vec::new(),
        }
    }

    #[test]
    fn the_state_shows_every_replica_and_a_consistent_shard_map() {
        let mut sim = ShardedSim::new(ShardedConfig::small(4)).unwrap();
        let before = state(&sim, admin());
        assert!(before.config.as_ref().is_none_or(|c| c.num == 0));
        assert!(before.shards.iter().all(|s| s.status == "unassigned"));
        sim.join_all().unwrap();
        sim.run_until(5_000, |s| s.is_settled());
        let view = state(&sim, admin());
        // small: the controller on 1-3, groups 100 (1-3), 101 (3-5), 102 (1, 4, 5).
        let replicas: Vec<usize> = view.hosts.iter().map(|h| h.replicas.len()).collect();
        assert_eq!(replicas, [3, 2, 3, 2, 2]);
        assert_eq!(view.groups.len(), 4);
        for s in &view.shards {
            assert_eq!(s.status, "serving", "{s:?}");
            let owner = view.groups.iter().find(|g| g.id == s.owner).unwrap();
            assert!(owner.shards.iter().any(|h| h.shard == s.shard));
        }
        sim.crash(1);
        let view = state(&sim, admin());
        assert!(!view.hosts[0].up);
        let groups: Vec<GroupId> = view.hosts[0].replicas.iter().map(|r| r.group).collect();
        assert_eq!(groups, [0, 100, 102]);
        assert!(view.hosts[0].replicas.iter().all(|r| r.role == "down"));
    }
}
