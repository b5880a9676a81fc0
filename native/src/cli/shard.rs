//! `distribkv-native shard`: the shard configuration of a sharded cluster
//! (show, join, leave, move), and the sharded form of `status`. The
//! configuration is printed by `shard/show.rs`, the status lines by
//! `shard/status.rs`.

mod show;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use clap::{Args, Subcommand};
use distribkv_core::raft::NodeId;
use distribkv_core::shard::{ControllerError, ControllerOp, ControllerReply, GroupId, ShardConfig};

use super::{CliError, ClusterArgs};
use crate::shard::client::{Detected, ShardTiming, ShardedCluster, ShardedSession};
use crate::shard::wire::HostDescription;

use show::show_config;
pub use show::{GroupJson, MovingJson, ShowJson};
pub use status::{ShardStatusLine, status};

/// `shard` arguments.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ShardCommand,
}

/// The `shard` subcommands.
#[derive(Debug, Subcommand)]
pub enum ShardCommand {
    /// Print the latest shard configuration: each group's hosts and shards,
    /// and the shards on their way between groups.
    Show(ShowArgs),
    /// Give group GID (hosts ID,...) a share of the shards. Its hosts must
    /// hold it (their `--group GID=...` flag).
    Join(JoinArgs),
    /// Take group GID's shards away and spread them over the other groups.
    Leave(LeaveArgs),
    /// Move shard SHARD to group GID.
    Move(MoveArgs),
    /// Make host ID lead group GID (a leadership transfer), to spread the
    /// groups' leaders over the hosts; waits until it does (at most 10 s).
    Leader(LeaderArgs),
}

/// `shard leader` arguments.
#[derive(Debug, Args)]
pub struct LeaderArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The group (0: the controller's).
    pub group: GroupId,
    /// The host to lead it (one of the group's hosts).
    pub host: NodeId,
}

/// `shard show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `shard join` arguments.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The group's id (1 or more).
    pub group: GroupId,
    /// Its hosts' ids, comma-separated, in the order of its `--group` flag.
    #[arg(value_name = "ID,...")]
    pub servers: String,
}

/// `shard leave` arguments.
#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The group's id.
    pub group: GroupId,
}

/// `shard move` arguments.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The shard (0 to the number of shards - 1).
    pub shard: u32,
    /// The group to move it to (a group of the configuration).
    pub group: GroupId,
}

fn shard_error(message: impl Into<String>) -> CliError {
    CliError::Shard(message.into())
}

/// Connects to a sharded cluster, or says clearly that it is not one.
async fn connect(args: &ClusterArgs) -> Result<Arc<ShardedCluster>, CliError> {
    let servers = crate::addr::parse_address_list(&args.cluster)?;
    let certs = super::client::client_certs(args)?;
    match crate::shard::client::detect_kind(&servers, &certs).await? {
        Detected::Sharded(cluster) => Ok(Arc::new(*cluster)),
        Detected::Single => Err(shard_error(
            "this cluster is not sharded (its servers were started without --shards)",
        )),
        Detected::Silent => Err(shard_error(format!(
            "no host answered at {} (are the servers running, and are the \
             certificates the cluster's?)",
            args.cluster
        ))),
    }
}

fn session(cluster: &Arc<ShardedCluster>) -> ShardedSession {
    ShardedSession::new(
        cluster.clone(),
        ShardTiming::default(),
        crate::transport::random_u64(),
    )
}

/// The latest configuration, read through the controller's log.
async fn latest(session: &mut ShardedSession) -> Result<ShardConfig, CliError> {
    match session.controller(ControllerOp::Query(None)).await? {
        ControllerReply::Config(config) => Ok(config),
        other => Err(shard_error(format!("unexpected answer: {other:?}"))),
    }
}

/// Runs a `shard` command; returns the exit code.
pub async fn run(args: &ShardArgs) -> Result<u8, CliError> {
    match &args.command {
        ShardCommand::Show(show) => {
            let cluster = connect(&show.cluster).await?;
            let outcome = show_config(&cluster, show.json).await;
            cluster.transport.close().await;
            outcome.map(|()| 0)
        }
        ShardCommand::Join(join) => {
            let servers = parse_ids(&join.servers)?;
            if join.group == 0 {
                return Err(shard_error(
                    "group 0 is the controller's; shard groups are numbered from 1",
                ));
            }
            let cluster = connect(&join.cluster).await?;
            let known: BTreeSet<NodeId> = cluster.hosts.iter().map(|(id, _)| *id).collect();
            if let Some(unknown) = servers.iter().find(|s| !known.contains(s)) {
                cluster.transport.close().await;
                return Err(shard_error(format!(
                    "host {unknown} is not a host of this cluster (hosts: {})",
                    join_ids(known.iter())
                )));
            }
            // The controller cannot know which groups the hosts run: a
            // group none of its hosts runs would take shards it can never
            // receive, and keys of those shards would go unanswered.
            let not_holding = hosts_not_holding(&cluster, join.group, &servers).await;
            if !not_holding.is_empty() {
                cluster.transport.close().await;
                let (hosts, verb) = match not_holding.len() {
                    1 => ("host", "does"),
                    _ => ("hosts", "do"),
                };
                return Err(shard_error(format!(
                    "{hosts} {} {verb} not hold group {g}: a group joins only once its \
                     hosts run it (their --group {g}=... flag), and not at all after it \
                     left and was retired",
                    join_ids(not_holding.iter()),
                    g = join.group
                )));
            }
            let op = ControllerOp::Join(BTreeMap::from([(join.group, servers)]));
            change(&cluster, op).await
        }
        ShardCommand::Leave(leave) => {
            if leave.group == 0 {
                return Err(shard_error(
                    "group 0 is the controller's, which owns no shard; shard groups are \
                     numbered from 1",
                ));
            }
            let cluster = connect(&leave.cluster).await?;
            let mut session = session(&cluster);
            let config = match latest(&mut session).await {
                Ok(config) => config,
                Err(error) => {
                    cluster.transport.close().await;
                    return Err(error);
                }
            };
            let refusal = if !config.groups.contains_key(&leave.group) {
                Some(format!(
                    "group {} is not in the configuration (groups: {})",
                    leave.group,
                    join_ids(config.groups.keys())
                ))
            } else if config.groups.len() == 1 {
                // The controller refuses it too; asking first saves a round.
                Some(ControllerError::LastGroup(leave.group).to_string())
            } else {
                None
            };
            if let Some(refusal) = refusal {
                cluster.transport.close().await;
                return Err(shard_error(refusal));
            }
            change(&cluster, ControllerOp::Leave(vec![leave.group])).await
        }
        ShardCommand::Leader(leader) => {
            let cluster = connect(&leader.cluster).await?;
            let outcome = transfer_leader(&cluster, leader.group, leader.host).await;
            cluster.transport.close().await;
            outcome?;
            println!("OK");
            Ok(0)
        }
        ShardCommand::Move(moving) => {
            if moving.group == 0 {
                return Err(shard_error(
                    "group 0 is the controller's, which owns no shard; shard groups are \
                     numbered from 1",
                ));
            }
            let cluster = connect(&moving.cluster).await?;
            if moving.shard >= cluster.shards {
                cluster.transport.close().await;
                return Err(shard_error(format!(
                    "shard {} does not exist (shards are 0 to {})",
                    moving.shard,
                    cluster.shards - 1
                )));
            }
            let mut session = session(&cluster);
            let config = latest(&mut session).await;
            let config = match config {
                Ok(config) => config,
                Err(error) => {
                    cluster.transport.close().await;
                    return Err(error);
                }
            };
            if !config.groups.contains_key(&moving.group) {
                cluster.transport.close().await;
                return Err(shard_error(format!(
                    "group {} is not in the configuration (groups: {}); join it first",
                    moving.group,
                    join_ids(config.groups.keys())
                )));
            }
            if config.shards.get(moving.shard as usize) == Some(&moving.group) {
                // Nothing to move: no new configuration either.
                cluster.transport.close().await;
                println!(
                    "OK: shard {} is already in group {} (configuration {})",
                    moving.shard, moving.group, config.num
                );
                return Ok(0);
            }
            let op = ControllerOp::Move {
                shard: moving.shard,
                group: moving.group,
            };
            change(&cluster, op).await
        }
    }
}

/// The hosts among `servers` that answer and do not hold `group`.
async fn hosts_not_holding(
    cluster: &Arc<ShardedCluster>,
    group: GroupId,
    servers: &[NodeId],
) -> Vec<NodeId> {
    cluster
        .describe_all()
        .await
        .into_iter()
        .filter_map(|(id, description)| Some((id, description?)))
        .filter(|(id, description)| {
            servers.contains(id) && !description.groups.iter().any(|g| g.group == group)
        })
        .map(|(id, _)| id)
        .collect()
}

fn join_ids<'a>(ids: impl Iterator<Item = &'a u64>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

fn parse_ids(text: &str) -> Result<Vec<NodeId>, CliError> {
    let ids: Vec<NodeId> = text
        .split(',')
        .map(|part| {
            part.trim().parse::<NodeId>().map_err(|_| {
                shard_error(format!(
                    "{part:?} is not a host id (hosts are written 1,2,3)"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let distinct: BTreeSet<_> = ids.iter().collect();
    if distinct.len() != ids.len() {
        return Err(shard_error(format!("{text}: a host is listed twice")));
    }
    Ok(ids)
}

/// Runs one configuration change; prints `OK` once the controller took it.
async fn change(cluster: &Arc<ShardedCluster>, op: ControllerOp) -> Result<u8, CliError> {
    let mut session = session(cluster);
    let reply = session.controller(op).await;
    cluster.transport.close().await;
    match reply? {
        ControllerReply::Done => {
            println!("OK");
            Ok(0)
        }
        ControllerReply::Refused(error) => Err(shard_error(match error {
            ControllerError::BadJoin(g) => {
                format!("cannot join group {g}: it is already in the configuration")
            }
            other => other.to_string(),
        })),
        ControllerReply::Config(_) => Err(shard_error("unexpected answer: a configuration")),
    }
}

/// How long `shard leader` waits for the new leader.
const TRANSFER_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks `group`'s leader to hand over to `host` until `host` leads it.
async fn transfer_leader(
    cluster: &Arc<ShardedCluster>,
    group: GroupId,
    host: NodeId,
) -> Result<(), CliError> {
    use crate::shard::wire::{ShardedBody, ShardedReply, ShardedRequest};
    let started = tokio::time::Instant::now();
    let mut last_error = String::from("no leader known yet");
    loop {
        let descriptions = cluster.describe_all().await;
        let holders: Vec<&HostDescription> = descriptions
            .iter()
            .filter_map(|(_, d)| d.as_ref())
            .filter(|d| d.groups.iter().any(|g| g.group == group))
            .collect();
        if holders.is_empty() && descriptions.iter().any(|(_, d)| d.is_some()) {
            return Err(shard_error(format!("no host holds group {group}")));
        }
        if let Some(description) = descriptions
            .iter()
            .filter_map(|(_, d)| d.as_ref())
            .find(|d| d.id == host)
            && !description.groups.iter().any(|g| g.group == group)
        {
            return Err(shard_error(format!(
                "host {host} does not hold group {group} (its hosts: {})",
                join_ids(holders.iter().map(|d| &d.id))
            )));
        }
        if !cluster.hosts.iter().any(|(id, _)| *id == host) {
            return Err(shard_error(format!(
                "host {host} is not a host of this cluster"
            )));
        }
        let leader = holders.iter().find(|d| {
            d.groups
                .iter()
                .any(|g| g.group == group && g.role == "leader")
        });
        match leader {
            Some(d) if d.id == host => return Ok(()),
            Some(d) => {
                let index = cluster.hosts.iter().position(|(id, _)| *id == d.id);
                if let Some(index) = index {
                    let request =
                        ShardedRequest::new(ShardedBody::TransferLeader { group, to: host });
                    match cluster.transport.request_to(index, request).await {
                        Ok(ShardedReply::Transfer(Err(error))) => last_error = error,
                        Ok(_) => {}
                        Err(error) => last_error = error.to_string(),
                    }
                }
            }
            None => {}
        }
        if started.elapsed() >= TRANSFER_LIMIT {
            return Err(shard_error(format!(
                "host {host} does not lead group {group} after {} s: {last_error}",
                TRANSFER_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lists_are_checked() {
        assert_eq!(parse_ids("1,2,3").unwrap(), vec![1, 2, 3]);
        let error = parse_ids("1,x").unwrap_err().to_string();
        assert!(error.contains("\"x\" is not a host id"), "{error}");
        let error = parse_ids("1,1").unwrap_err().to_string();
        assert!(error.contains("listed twice"), "{error}");
    }
}
