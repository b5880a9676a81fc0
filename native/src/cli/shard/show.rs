//! `shard show`: the configuration, each group's leader and the moves under
//! way, as text or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;

use distribkv_core::raft::NodeId;
use distribkv_core::shard::host::CONTROLLER;
use distribkv_core::shard::{GroupId, ShardConfig};
use serde::{Deserialize, Serialize};

use super::{join_ids, latest, session};
use crate::cli::CliError;
use crate::shard::client::ShardedCluster;
use crate::shard::wire::{GroupStatus, HostDescription};

/// `shard show --json`: the configuration, and the moves under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShowJson {
    /// Configuration number.
    pub num: u64,
    /// Owner of each shard (index = shard; 0: none).
    pub shards: Vec<GroupId>,
    /// Each group: its hosts and the shards it owns.
    pub groups: Vec<GroupJson>,
    /// Shards whose data is still on its way to their owner: moves under
    /// way, and shards whose new owner has not yet reached the
    /// configuration that gives them to it (`started: false`).
    pub moving: Vec<MovingJson>,
}

/// One group of `shard show --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupJson {
    /// Group id.
    pub group: GroupId,
    /// Its hosts.
    pub servers: Vec<NodeId>,
    /// The shards it owns.
    pub shards: Vec<u32>,
    /// Its leader, as the hosts report it (`null`: unknown).
    pub leader: Option<NodeId>,
}

/// A shard on its way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MovingJson {
    /// The shard.
    pub shard: u32,
    /// The group handing it over (0: not known yet, for a move not started).
    pub from: GroupId,
    /// The group receiving it.
    pub to: GroupId,
    /// Whether the receiving group has reached the configuration and is
    /// pulling the shard (or the sending group pushing it); `false` while
    /// the receiving group's replicas still apply an older configuration,
    /// in which it does not serve the shard yet.
    pub started: bool,
}

/// The moves under way and each group's leader, from the hosts'
/// descriptions and the latest configuration.
///
/// A move is under way once either group reports it (the sender `sending`,
/// the receiver `pulling`). Between the controller's commit of a
/// configuration and its new owners applying it, no group reports
/// anything: a shard whose owner in `config` neither serves nor pulls it
/// in the replica most advanced (its leader's, if it answered) is moving
/// too, not started, from the group that serves or sends it (if one does).
fn moves_and_leaders(
    config: &ShardConfig,
    descriptions: &[(NodeId, Option<HostDescription>)],
) -> (Vec<MovingJson>, BTreeMap<GroupId, NodeId>) {
    let mut started = BTreeSet::new();
    let mut leaders = BTreeMap::new();
    // Per group, the most advanced replica that answered: the leader's,
    // else the one that applied the latest configuration.
    let mut freshest: BTreeMap<GroupId, (bool, &GroupStatus)> = BTreeMap::new();
    // Who holds each shard, as any replica reports it: the group serving
    // it, else the one pulling it (it will hand it on), else the one
    // sending it.
    let mut holders: BTreeMap<u32, (u8, GroupId)> = BTreeMap::new();
    let mut holds = |shard: u32, rank: u8, group: GroupId| {
        let held = holders.entry(shard).or_insert((rank, group));
        if rank < held.0 {
            *held = (rank, group);
        }
    };
    for description in descriptions.iter().filter_map(|(_, d)| d.as_ref()) {
        for group in &description.groups {
            let leads = group.role == "leader";
            if leads {
                leaders.insert(group.group, description.id);
            }
            if group.group != CONTROLLER {
                let fresher = freshest
                    .get(&group.group)
                    .is_none_or(|(led, best)| (leads, group.config_num) > (*led, best.config_num));
                if fresher {
                    freshest.insert(group.group, (leads, group));
                }
            }
            for (shard, to) in &group.sending {
                started.insert((*shard, group.group, *to));
                holds(*shard, 2, group.group);
            }
            for (shard, from) in &group.pulling {
                started.insert((*shard, *from, group.group));
                holds(*shard, 1, group.group);
            }
            for shard in &group.serving {
                holds(*shard, 0, group.group);
            }
        }
    }
    let mut moving: Vec<MovingJson> = started
        .iter()
        .map(|&(shard, from, to)| MovingJson {
            shard,
            from,
            to,
            started: true,
        })
        .collect();
    for (shard, &owner) in (0u32..).zip(&config.shards) {
        let Some((_, replica)) = freshest.get(&owner) else {
            continue; // unowned, or no replica of its owner answered
        };
        let behind = replica.config_num < config.num
            && !replica.serving.contains(&shard)
            && !replica.pulling.iter().any(|(s, _)| *s == shard);
        if behind {
            let from = holders
                .get(&shard)
                .map(|(_, group)| *group)
                .filter(|g| *g != owner);
            moving.push(MovingJson {
                shard,
                from: from.unwrap_or(0),
                to: owner,
                started: false,
            });
        }
    }
    moving.sort_by_key(|m| (m.shard, !m.started, m.from, m.to));
    (moving, leaders)
}

/// Prints the latest configuration with each group's leader and the moves
/// under way.
pub(super) async fn show_config(cluster: &Arc<ShardedCluster>, json: bool) -> Result<(), CliError> {
    let mut session = session(cluster);
    let config = latest(&mut session).await?;
    let descriptions = cluster.describe_all().await;
    let (moving, leaders) = moves_and_leaders(&config, &descriptions);
    let by_group = crate::shard::client::shards_by_group(&config);
    let groups: Vec<GroupJson> = config
        .groups
        .iter()
        .map(|(group, servers)| GroupJson {
            group: *group,
            servers: servers.clone(),
            shards: by_group.get(group).cloned().unwrap_or_default(),
            leader: leaders.get(group).copied(),
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    if json {
        let show = ShowJson {
            num: config.num,
            shards: config.shards.clone(),
            groups,
            moving,
        };
        writeln!(stdout, "{}", serde_json::to_string(&show)?)?;
    } else {
        writeln!(
            stdout,
            "configuration {} ({} shards, {} groups)",
            config.num,
            config.shards.len(),
            config.groups.len()
        )?;
        for group in &groups {
            let leader = group
                .leader
                .map_or("unknown".to_string(), |l| l.to_string());
            writeln!(
                stdout,
                "group {}: hosts {}, leader {leader}, shards {}",
                group.group,
                join_ids(group.servers.iter()),
                ranges(&group.shards)
            )?;
        }
        if let Some(unowned) = by_group.get(&0).filter(|s| !s.is_empty()) {
            writeln!(stdout, "unowned shards: {}", ranges(unowned))?;
        }
        for m in &moving {
            writeln!(stdout, "{}", moving_line(m, config.num))?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// One `moving:` line of `shard show`.
fn moving_line(m: &MovingJson, num: u64) -> String {
    let from = match m.from {
        0 => String::new(),
        from => format!(" from group {from}"),
    };
    let pending = if m.started {
        String::new()
    } else {
        format!(
            " (not started: group {} has not applied configuration {num} yet)",
            m.to
        )
    };
    format!("moving: shard {}{from} to group {}{pending}", m.shard, m.to)
}

/// `0-3,7,9-10`; `none` for no shard.
pub(super) fn ranges(shards: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &shard in shards {
        match runs.last_mut() {
            Some((_, end)) if shard == *end + 1 => *end = shard,
            _ => runs.push((shard, shard)),
        }
    }
    if runs.is_empty() {
        return "none".into();
    }
    runs.iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(group: GroupId, role: &str, config_num: u64, serving: &[u32]) -> GroupStatus {
        GroupStatus {
            group,
            role: role.into(),
            term: 1,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            last_index: 0,
            hibernating: false,
            config_num,
            serving: serving.to_vec(),
            pulling: Vec::new(),
            sending: Vec::new(),
            keys: 0,
            latest: None,
        }
    }

    fn host(id: NodeId, groups: Vec<GroupStatus>) -> (NodeId, Option<HostDescription>) {
        let description = HostDescription {
            id,
            hosts: Vec::new(),
            shards: 4,
            controller: vec![1, 2, 3],
            groups,
        };
        (id, Some(description))
    }

    /// Configuration 2: shards 0 and 1 to group 1, 2 and 3 to group 2
    /// (which joined; in configuration 1 group 1 owned all four).
    fn config_two() -> ShardConfig {
        ShardConfig {
            num: 2,
            shards: vec![1, 1, 2, 2],
            groups: BTreeMap::from([(1, vec![1, 2, 3]), (2, vec![1, 2, 3])]),
        }
    }

    #[test]
    fn a_move_committed_but_not_yet_applied_is_moving_not_started() {
        // Right after the controller's commit: both groups still at 1.
        let descriptions = vec![
            host(
                1,
                vec![
                    replica(CONTROLLER, "leader", 2, &[]),
                    replica(1, "leader", 1, &[0, 1, 2, 3]),
                    replica(2, "follower", 0, &[]),
                ],
            ),
            host(
                2,
                vec![
                    replica(1, "follower", 1, &[0, 1, 2, 3]),
                    replica(2, "leader", 0, &[]),
                ],
            ),
            (3, None),
        ];
        let (moving, leaders) = moves_and_leaders(&config_two(), &descriptions);
        let pending = |shard| MovingJson {
            shard,
            from: 1,
            to: 2,
            started: false,
        };
        assert_eq!(moving, vec![pending(2), pending(3)]);
        assert_eq!(leaders, BTreeMap::from([(0, 1), (1, 1), (2, 2)]));
        assert_eq!(
            moving_line(&moving[0], 2),
            "moving: shard 2 from group 1 to group 2 (not started: group 2 has not \
             applied configuration 2 yet)"
        );
    }

    #[test]
    fn a_move_under_way_is_started_and_a_finished_one_is_gone() {
        let mut sender = replica(1, "leader", 2, &[0, 1]);
        sender.sending = vec![(2, 2), (3, 2)];
        let mut receiver = replica(2, "leader", 2, &[3]);
        receiver.pulling = vec![(2, 1)];
        // A lagging follower of group 2 does not make shard 3 pending: the
        // leader's replica is the one looked at.
        let descriptions = vec![
            host(1, vec![sender, replica(2, "follower", 1, &[])]),
            host(2, vec![receiver]),
        ];
        let (moving, _) = moves_and_leaders(&config_two(), &descriptions);
        let started = |shard| MovingJson {
            shard,
            from: 1,
            to: 2,
            started: true,
        };
        assert_eq!(moving, vec![started(2), started(3)]);
        assert_eq!(
            moving_line(&moving[0], 2),
            "moving: shard 2 from group 1 to group 2"
        );

        // Settled: group 2 at configuration 2 serves both.
        let descriptions = vec![host(
            2,
            vec![
                replica(1, "leader", 2, &[0, 1]),
                replica(2, "leader", 2, &[2, 3]),
            ],
        )];
        assert!(moves_and_leaders(&config_two(), &descriptions).0.is_empty());
    }

    #[test]
    fn a_shard_moving_back_comes_from_the_group_pulling_it() {
        // Configuration 2 gave shard 3 to group 1 (still pulling it from
        // group 2); configuration 3 gives it back to group 2, whose
        // replicas have not applied 3.
        let config = ShardConfig {
            num: 3,
            ..config_two()
        };
        let mut sender = replica(2, "leader", 2, &[2]);
        sender.sending = vec![(3, 1)];
        let mut receiver = replica(1, "leader", 2, &[0, 1]);
        receiver.pulling = vec![(3, 2)];
        let descriptions = vec![host(1, vec![sender, receiver])];
        let (moving, _) = moves_and_leaders(&config, &descriptions);
        let back = MovingJson {
            shard: 3,
            from: 1,
            to: 2,
            started: false,
        };
        let there = MovingJson {
            shard: 3,
            from: 2,
            to: 1,
            started: true,
        };
        assert_eq!(moving, vec![there, back]);
    }

    #[test]
    fn a_shard_from_no_group_is_pending_until_applied() {
        // Configuration 1 gives every shard to group 1; no host applied it.
        let config = ShardConfig {
            num: 1,
            shards: vec![1, 1],
            groups: BTreeMap::from([(1, vec![1])]),
        };
        let descriptions = vec![host(1, vec![replica(1, "leader", 0, &[])])];
        let (moving, _) = moves_and_leaders(&config, &descriptions);
        assert_eq!(moving.len(), 2);
        assert!(
            moving
                .iter()
                .all(|m| m.from == 0 && m.to == 1 && !m.started)
        );
        assert_eq!(
            moving_line(&moving[1], 1),
            "moving: shard 1 to group 1 (not started: group 1 has not applied \
             configuration 1 yet)"
        );
        // No replica of the owner answered: nothing can be said.
        assert!(moves_and_leaders(&config, &[(1, None)]).0.is_empty());
    }

    #[test]
    fn shard_lists_print_as_ranges() {
        assert_eq!(ranges(&[]), "none");
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(ranges(&[5]), "5");
    }
}
