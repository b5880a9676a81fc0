//! `status` of a sharded cluster: one line per host and group it holds.

use std::io::Write;
use std::sync::Arc;

use distribkv_core::raft::{LogIndex, NodeId, Term};
use distribkv_core::shard::GroupId;
use serde::{Deserialize, Serialize};

use super::show::ranges;
use crate::cli::CliError;
use crate::shard::client::ShardedCluster;

/// One line of `status --json` on a sharded cluster: one per host and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatusLine {
    /// Host id.
    pub id: NodeId,
    /// The host's address.
    pub addr: String,
    /// The group (0: the controller).
    pub group: GroupId,
    /// This replica's role.
    pub role: String,
    /// Its term.
    pub term: Term,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Applied index.
    pub applied_index: LogIndex,
    /// Last log index.
    pub last_index: LogIndex,
    /// The configuration it has applied (the latest one for the controller).
    pub config_num: u64,
    /// Shards it serves.
    pub shards: Vec<u32>,
    /// Keys it holds.
    pub keys: u64,
    /// Whether it hibernates.
    pub hibernating: bool,
}

/// `status` of a sharded cluster: one line per host and group it holds.
pub async fn status(cluster: &Arc<ShardedCluster>, json: bool) -> Result<u8, CliError> {
    let descriptions = cluster.describe_all().await;
    cluster.transport.close().await;
    let mut reachable = 0;
    let mut stdout = std::io::stdout().lock();
    for (id, description) in &descriptions {
        let addr = cluster
            .hosts
            .iter()
            .find(|(host, _)| host == id)
            .map(|(_, a)| crate::addr::address_text(a))
            .unwrap_or_default();
        let Some(description) = description else {
            crate::cli::note(format_args!("host {id} {addr} unreachable"));
            continue;
        };
        reachable += 1;
        for group in &description.groups {
            let line = ShardStatusLine {
                id: *id,
                addr: addr.clone(),
                group: group.group,
                role: group.role.clone(),
                term: group.term,
                leader: group.leader,
                commit_index: group.commit_index,
                applied_index: group.applied_index,
                last_index: group.last_index,
                config_num: group.config_num,
                shards: group.serving.clone(),
                keys: group.keys,
                hibernating: group.hibernating,
            };
            if json {
                writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
            } else {
                let name = if line.group == 0 {
                    "controller".to_string()
                } else {
                    format!("group {}", line.group)
                };
                let leader = line.leader.map_or("none".to_string(), |l| l.to_string());
                writeln!(
                    stdout,
                    "host {} {} {name}: {} term {} leader {leader} commit {} applied {} config {}{}{}",
                    line.id,
                    line.addr,
                    line.role,
                    line.term,
                    line.commit_index,
                    line.applied_index,
                    line.config_num,
                    if line.group == 0 {
                        String::new()
                    } else {
                        format!(" shards {} keys {}", ranges(&line.shards), line.keys)
                    },
                    if line.hibernating {
                        " (hibernating)"
                    } else {
                        ""
                    },
                )?;
            }
        }
    }
    stdout.flush()?;
    if reachable == 0 {
        return Err(CliError::NoNodeReachable);
    }
    Ok(0)
}
