//! `distribkv-native member list|add|promote|remove`: the cluster's
//! membership from the command line (the contract is in DESIGN.md).
//!
//! The command asks any node of `--cluster` for the configuration, learns
//! every member's address from it, and sends changes to the leader (a
//! leader hint naming a node added since it started makes it ask for the
//! configuration again, as a client does). A
//! change is done once the leader has committed it; `add` without
//! `--learner` adds a learner, waits until it has caught up with the
//! leader's commit index, then promotes it, so that a slow new machine
//! never costs the cluster its quorum.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use distribkv_core::kv::{
    ClientRequest, MemberChange, MembersStatus, Reply, RequestBody, ServiceError,
};
use distribkv_core::raft::NodeId;
use serde::{Deserialize, Serialize};

use super::{CliError, ClusterArgs};
use crate::addr::address_text;
use crate::kv_client::{self, KvTransport};
use crate::tls::CertSet;

/// How long a change may take to commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a learner may take to catch up before a promotion gives up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between polls of the leader.
const POLL: Duration = Duration::from_millis(100);
/// One request's timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// `member` arguments.
#[derive(Debug, Args)]
pub struct MemberArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MemberCommand,
}

/// The `member` subcommands.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the members (answered by the leader).
    List(ListArgs),
    /// Add a new node: as a learner, then, once it has caught up, as a voter.
    Add(AddArgs),
    /// Make a learner a voter once it has caught up (at most 60 s).
    Promote(IdArgs),
    /// Remove a member for good (the leader hands over leadership first).
    Remove(IdArgs),
}

/// `member list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// One JSON object per member and line.
    #[arg(long)]
    pub json: bool,
}

/// `member add` arguments.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The new node's id: never used in this cluster before.
    pub id: NodeId,
    /// Where the new node listens, HOST:PORT (its `server --listen`).
    pub addr: String,
    /// Stop after adding it as a learner.
    #[arg(long)]
    pub learner: bool,
}

/// `member promote` and `member remove` arguments.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The member's id.
    pub id: NodeId,
}

/// One line of `member list --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLine {
    /// Node id.
    pub id: NodeId,
    /// Its address, `HOST:PORT`.
    pub addr: String,
    /// `voter` or `learner`.
    pub role: String,
    /// Whether it leads.
    pub leader: bool,
    /// The highest log index the leader knows it holds.
    pub match_index: u64,
    /// How far it is behind the leader's last index.
    pub lag: u64,
    /// Whether it is a learner being caught up to be promoted (a `member
    /// add` in progress: no other change is taken until it ends).
    pub promoting: bool,
}

/// Why a membership command failed.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// No node of `--cluster` answered.
    #[error("no node answered at {0}")]
    Unreachable(String),
    /// No leader answered in time.
    #[error("no leader answered within {0} s; the outcome is unknown")]
    NoLeader(u64),
    /// The leader refused the change.
    #[error("{0}")]
    Refused(ServiceError),
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// The change did not commit in time.
    #[error("the change did not commit within {0} s; the outcome is unknown")]
    NotCommitted(u64),
    /// `member add` stopped waiting for its learner, which the cluster
    /// still records as being added.
    #[error(
        "{0}; node {1} stays a learner being added, and the cluster takes no other membership change until it is promoted or removed: run the same `member add` again to keep waiting, `member promote {1}` once it runs, or `member remove {1}` to abandon it"
    )]
    StillBeingAdded(Box<MemberError>, NodeId),
    /// The learner did not catch up in time.
    #[error(
        "node {id} has not caught up within {seconds} s (it holds index {matched} of {target}); is it running?"
    )]
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// The time waited.
        seconds: u64,
        /// Its match index.
        matched: u64,
        /// The index it had to reach.
        target: u64,
    },
}

/// Runs a `member` command; returns the exit code.
pub async fn run(args: &MemberArgs) -> Result<u8, CliError> {
    match &args.command {
        MemberCommand::List(list) => {
            let mut cluster = Members::connect(&list.cluster).await?;
            let status = cluster.leader_status().await?;
            cluster.close().await;
            print_members(&status, list.json)?;
        }
        MemberCommand::Add(add) => {
            check_id(add.id)?;
            let address = crate::addr::parse_address(&add.addr)
                .map_err(|error| MemberError::Invalid(format!("address {}: {error}", add.addr)))?;
            let address = address_text(&address);
            let mut cluster = Members::connect(&add.cluster).await?;
            let status = cluster.leader_status().await?;
            // Two members at one address: messages for the new one would
            // reach the other, which refuses them, and the new one could
            // never catch up.
            if let Some(other) = status
                .members
                .iter()
                .find(|m| m.id != add.id && m.address == address)
            {
                cluster.close().await;
                return Err(MemberError::Invalid(format!(
                    "address {address} is already node {}'s",
                    other.id
                ))
                .into());
            }
            let resumed = !add.learner
                && status.promoting == Some(add.id)
                && status
                    .members
                    .iter()
                    .any(|m| m.id == add.id && m.address == address);
            if resumed {
                // An earlier `member add` of this node was interrupted
                // while it caught up: take over its wait.
                crate::cli::note(format_args!(
                    "node {} is already being added; waiting for it to catch up",
                    add.id
                ));
            } else {
                let change = MemberChange::Add {
                    id: add.id,
                    address,
                    promote: !add.learner,
                };
                cluster.change(change).await?;
            }
            if !add.learner {
                cluster
                    .wait_caught_up(add.id)
                    .await
                    .map_err(|error| MemberError::StillBeingAdded(Box::new(error), add.id))?;
                cluster.change(MemberChange::Promote(add.id)).await?;
            }
            cluster.close().await;
            println!("OK");
        }
        MemberCommand::Promote(promote) => {
            check_id(promote.id)?;
            let mut cluster = Members::connect(&promote.cluster).await?;
            let status = cluster.leader_status().await?;
            if status
                .members
                .iter()
                .any(|m| m.id == promote.id && !m.voter)
            {
                cluster.wait_caught_up(promote.id).await?;
            }
            cluster.change(MemberChange::Promote(promote.id)).await?;
            cluster.close().await;
            println!("OK");
        }
        MemberCommand::Remove(remove) => {
            check_id(remove.id)?;
            let mut cluster = Members::connect(&remove.cluster).await?;
            cluster.change(MemberChange::Remove(remove.id)).await?;
            cluster.close().await;
            println!("OK");
        }
    }
    Ok(0)
}

fn check_id(id: NodeId) -> Result<(), MemberError> {
    if id == 0 {
        return Err(MemberError::Invalid("node ids start at 1".into()));
    }
    Ok(())
}

fn print_members(status: &MembersStatus, json: bool) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    for member in &status.members {
        let line = MemberLine {
            id: member.id,
            addr: member.address.clone(),
            role: if member.voter { "voter" } else { "learner" }.into(),
            leader: status.leader == Some(member.id),
            match_index: member.match_index,
            lag: status.last_index.saturating_sub(member.match_index),
            promoting: status.promoting == Some(member.id),
        };
        if json {
            serde_json::to_writer(&mut stdout, &line)?;
            writeln!(stdout)?;
        } else {
            writeln!(
                stdout,
                "{} {} {}{}{} match {} lag {}",
                line.id,
                line.addr,
                line.role,
                if line.promoting { " (being added)" } else { "" },
                if line.leader { " leader" } else { "" },
                line.match_index,
                line.lag
            )?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// A client of every member, learned from the configuration.
struct Members {
    /// The client certificates, for re-connecting.
    certs: CertSet,
    transport: KvTransport,
    /// The node id behind each of the transport's servers.
    ids: Vec<NodeId>,
    /// The leader last heard of.
    leader: Option<NodeId>,
}

impl Members {
    /// Asks the nodes of `--cluster` for the configuration, then connects
    /// to every member it lists.
    async fn connect(args: &ClusterArgs) -> Result<Members, CliError> {
        let servers = crate::addr::parse_address_list(&args.cluster)?;
        let certs = CertSet::load(&args.certs)?;
        let Some(status) = kv_client::members_status(&servers, &certs).await? else {
            if let Ok(Some(sharded)) = crate::shard::client::detect(&servers, &certs).await {
                sharded.transport.close().await;
                return Err(MemberError::Invalid(
                    "this cluster is sharded: its hosts are fixed, and `member` is for single-group clusters (see `shard`)".into(),
                )
                .into());
            }
            let tried: Vec<String> = servers.iter().map(address_text).collect();
            return Err(MemberError::Unreachable(tried.join(", ")).into());
        };
        let (transport, ids) = connect_members(&status, &certs)?;
        Ok(Members {
            certs,
            transport,
            ids,
            leader: status.leader,
        })
    }

    /// A leader hint named `id`, a node this command does not know (added
    /// since it started): asks the members it knows for the configuration
    /// again, as a client's clerk does ([`kv_client::KvCluster`]), and
    /// connects to every member listed. Whether `id` is known now.
    async fn learn(&mut self, id: NodeId) -> bool {
        if self.index_of(id).is_some() {
            return true;
        }
        let Ok(Some(status)) =
            kv_client::members_status(self.transport.servers(), &self.certs).await
        else {
            return false;
        };
        if !status.members.iter().any(|m| m.id == id) {
            return false;
        }
        let Ok((transport, ids)) = connect_members(&status, &self.certs) else {
            return false;
        };
        std::mem::replace(&mut self.transport, transport)
            .close()
            .await;
        self.ids = ids;
        true
    }

    async fn close(&self) {
        self.transport.close().await;
    }

    /// The leader's view of the members, at a linearizable point (it
    /// answers once a ReadIndex round confirmed it still leads), so the
    /// list is the cluster's latest configuration.
    async fn leader_status(&mut self) -> Result<MembersStatus, MemberError> {
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        let mut leader = self.leader;
        'poll: while Instant::now() < deadline {
            let order: Vec<usize> = match leader.and_then(|l| self.index_of(l)) {
                Some(index) => vec![index],
                None => (0..self.ids.len()).collect(),
            };
            for index in order {
                match ask_members(&self.transport, index, true).await {
                    Ok(status) => return Ok(status),
                    Err(NoList::NotLeader(hint)) => {
                        leader = hint;
                        // A leader added since the command started.
                        if let Some(hint) = hint
                            && self.index_of(hint).is_none()
                            && self.learn(hint).await
                        {
                            continue 'poll;
                        }
                    }
                    Err(NoList::Other) => leader = None,
                }
            }
            tokio::time::sleep(POLL).await;
        }
        Err(MemberError::NoLeader(COMMIT_TIMEOUT.as_secs()))
    }

    fn index_of(&self, id: NodeId) -> Option<usize> {
        self.ids.iter().position(|&m| m == id)
    }

    /// Sends `change` to the leader, following it through elections and
    /// hand-overs, then waits until it has committed.
    async fn change(&mut self, change: MemberChange) -> Result<(), MemberError> {
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        let mut attempted = false;
        loop {
            if Instant::now() >= deadline {
                return Err(MemberError::NoLeader(COMMIT_TIMEOUT.as_secs()));
            }
            let status = self.leader_status().await?;
            self.leader = status.leader;
            if attempted && is_reflected(&change, &status) {
                // An earlier attempt took effect though its answer was lost.
                break;
            }
            let Some(index) = status.leader.and_then(|l| self.index_of(l)) else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let request = ClientRequest {
                id: 1,
                body: RequestBody::ChangeMembers(change.clone()),
            };
            attempted = true;
            let answer =
                tokio::time::timeout(REQUEST_TIMEOUT, self.transport.request_to(index, request))
                    .await;
            // A transport error or a timeout: ask again (a change is
            // refused as a duplicate if the first attempt took effect).
            if let Ok(Ok(response)) = answer {
                match response.result {
                    Ok(_) => break,
                    Err(ServiceError::NotLeader { leader_hint }) => self.leader = leader_hint,
                    Err(error) if error.is_definite() => return Err(MemberError::Refused(error)),
                    Err(_) => {}
                }
            }
            tokio::time::sleep(POLL).await;
        }
        while Instant::now() < deadline {
            let status = self.leader_status().await?;
            if !status.change_pending {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(MemberError::NotCommitted(COMMIT_TIMEOUT.as_secs()))
    }

    /// Waits until learner `id` holds everything the leader had committed
    /// when the wait began.
    async fn wait_caught_up(&mut self, id: NodeId) -> Result<(), MemberError> {
        let started = Instant::now();
        let target = self.leader_status().await?.commit_index;
        let mut matched = 0;
        while started.elapsed() < CATCH_UP_TIMEOUT {
            let status = self.leader_status().await?;
            matched = status
                .members
                .iter()
                .find(|m| m.id == id)
                .map_or(0, |m| m.match_index);
            if matched >= target {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(MemberError::NotCaughtUp {
            id,
            seconds: CATCH_UP_TIMEOUT.as_secs(),
            matched,
            target,
        })
    }
}

/// Whether `status` already shows `change`.
fn is_reflected(change: &MemberChange, status: &MembersStatus) -> bool {
    let member = |id: NodeId| status.members.iter().find(|m| m.id == id);
    match change {
        MemberChange::Add { id, .. } => member(*id).is_some(),
        MemberChange::Promote(id) => member(*id).is_some_and(|m| m.voter),
        MemberChange::Remove(id) => status.removed.contains(id),
    }
}

/// A client of every member `status` lists with an address, and their ids.
fn connect_members(
    status: &MembersStatus,
    certs: &CertSet,
) -> Result<(KvTransport, Vec<NodeId>), CliError> {
    let mut ids = Vec::new();
    let mut addresses = Vec::new();
    for member in status.members.iter().filter(|m| !m.address.is_empty()) {
        if let Ok(address) = crate::addr::parse_address(&member.address) {
            ids.push(member.id);
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Err(MemberError::Invalid("the configuration lists no addresses".into()).into());
    }
    Ok((kv_client::connect(addresses, certs)?, ids))
}

/// Why server `index` did not list the members.
enum NoList {
    /// It is not the leader; it names the one it knows of.
    NotLeader(Option<NodeId>),
    /// No answer, or another error.
    Other,
}

/// Asks server `index` of `transport` for the members: its own view, or
/// (`linearizable`) the leader's at a linearizable point, which only the
/// leader gives.
async fn ask_members(
    transport: &KvTransport,
    index: usize,
    linearizable: bool,
) -> Result<MembersStatus, NoList> {
    let request = ClientRequest {
        id: 1,
        body: RequestBody::Members { linearizable },
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, transport.request_to(index, request)).await {
        Ok(Ok(response)) => match response.result {
            Ok(Reply::Members(status)) => Ok(status),
            Err(ServiceError::NotLeader { leader_hint }) => Err(NoList::NotLeader(leader_hint)),
            _ => Err(NoList::Other),
        },
        _ => Err(NoList::Other),
    }
}
