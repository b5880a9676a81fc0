//! `shard show`: the configuration, each group's leader and the moves under
//! way, as text or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;

use distribkv_core::raft::NodeId;
use distribkv_core::shard::GroupId;
use serde::{Deserialize, Serialize};

use super::{join_ids, latest, session};
use crate::cli::CliError;
use crate::shard::client::ShardedCluster;
use crate::shard::wire::HostDescription;

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
    /// Shards whose data is still on its way to their owner.
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
    /// The group handing it over.
    pub from: GroupId,
    /// The group receiving it.
    pub to: GroupId,
}

/// The moves under way and each group's leader, from the hosts' descriptions.
fn moves_and_leaders(
    descriptions: &[(NodeId, Option<HostDescription>)],
) -> (Vec<MovingJson>, BTreeMap<GroupId, NodeId>) {
    let mut moving = BTreeSet::new();
    let mut leaders = BTreeMap::new();
    for description in descriptions.iter().filter_map(|(_, d)| d.as_ref()) {
        for group in &description.groups {
            if group.role == "leader" {
                leaders.insert(group.group, description.id);
            }
            for (shard, to) in &group.sending {
                moving.insert((*shard, group.group, *to));
            }
            for (shard, from) in &group.pulling {
                moving.insert((*shard, *from, group.group));
            }
        }
    }
    let moving = moving
        .into_iter()
        .map(|(shard, from, to)| MovingJson { shard, from, to })
        .collect();
    (moving, leaders)
}

/// Prints the latest configuration with each group's leader and the moves
/// under way.
pub(super) async fn show_config(cluster: &Arc<ShardedCluster>, json: bool) -> Result<(), CliError> {
    let mut session = session(cluster);
    let config = latest(&mut session).await?;
    let descriptions = cluster.describe_all().await;
    let (moving, leaders) = moves_and_leaders(&descriptions);
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
            writeln!(
                stdout,
                "moving: shard {} from group {} to group {}",
                m.shard, m.from, m.to
            )?;
        }
    }
    stdout.flush()?;
    Ok(())
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

    #[test]
    fn shard_lists_print_as_ranges() {
        assert_eq!(ranges(&[]), "none");
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(ranges(&[5]), "5");
    }
}
