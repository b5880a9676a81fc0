//! `distribkv-native status`: every node's Raft status, one line each.
//!
//! [`StatusLine`] is the one type of a `status --json` line: the command
//! writes it, and anything that reads the output (the tests, scripts in
//! Rust) parses it with the same type.

use std::io::Write;

use clap::Args;
use distribkv_core::kv::NodeStatus;
use distribkv_core::raft::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

use super::{CliError, ClusterArgs};
use crate::kv_client;

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// One JSON object per line instead of plain text.
    #[arg(long)]
    pub json: bool,
}

/// One node's line of `status --json`: a JSON object with these fields, in
/// this order, camelCase. `fingerprint` is 16 hex digits, a hash of the
/// node's key-value state and client sessions, equal on nodes that applied
/// the same entries (compare it across nodes whose `appliedIndex` is equal);
/// it is a string because JSON numbers lose precision past 2^53 in many
/// readers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusLine {
    /// Node id.
    pub id: NodeId,
    /// The address it was asked at, `HOST:PORT`.
    pub addr: String,
    /// `leader`, `follower`, `candidate`, `precandidate` or `learner`.
    pub role: String,
    /// Current term.
    pub term: Term,
    /// The leader it knows (`null`: none).
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Applied index.
    pub applied_index: LogIndex,
    /// Last log index.
    pub last_index: LogIndex,
    /// Durable log index.
    pub durable_index: LogIndex,
    /// Snapshot index.
    pub snapshot_index: LogIndex,
    /// Keys stored.
    pub keys: u64,
    /// Open client sessions.
    pub sessions: u64,
    /// The voters of the latest configuration in its log.
    #[serde(default)]
    pub voters: Vec<NodeId>,
    /// Its learners.
    #[serde(default)]
    pub learners: Vec<NodeId>,
    /// Whether it is ready (`/readyz`): it knows a leader of its term and
    /// has applied everything it knows to be committed.
    #[serde(default)]
    pub ready: bool,
    /// On the leader: every other member's match index and lag behind the
    /// leader's last index.
    #[serde(default)]
    pub followers: Vec<FollowerLine>,
    /// The state machine's fingerprint.
    #[serde(with = "hex")]
    pub fingerprint: u64,
}

/// A follower as the leader sees it, in [`StatusLine::followers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowerLine {
    /// Its id.
    pub id: NodeId,
    /// The highest log index known to be on it.
    pub match_index: LogIndex,
    /// How far it is behind the leader's last index.
    pub lag: LogIndex,
}

impl StatusLine {
    /// The line of node `status`, asked at `addr`.
    pub fn new(status: NodeStatus, addr: String) -> StatusLine {
        StatusLine {
            id: status.id,
            addr,
            role: status.role,
            term: status.term,
            leader: status.leader,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            last_index: status.last_index,
            durable_index: status.durable_index,
            snapshot_index: status.snapshot_index,
            keys: status.keys,
            sessions: status.sessions,
            voters: status.voters,
            learners: status.learners,
            ready: status.ready,
            followers: status
                .followers
                .iter()
                .map(|&(id, match_index)| FollowerLine {
                    id,
                    match_index,
                    lag: status.last_index.saturating_sub(match_index),
                })
                .collect(),
            fingerprint: status.fingerprint,
        }
    }

    /// The plain-text line.
    pub fn text(&self) -> String {
        let leader = self.leader.map_or("none".into(), |l| l.to_string());
        let ids = |ids: &[NodeId]| {
            ids.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut text = format!(
            "node {} {} {} term {} leader {leader} commit {} applied {} last {} snapshot {} keys {} {} voters {}",
            self.id,
            self.addr,
            self.role,
            self.term,
            self.commit_index,
            self.applied_index,
            self.last_index,
            self.snapshot_index,
            self.keys,
            if self.ready { "ready" } else { "not-ready" },
            ids(&self.voters),
        );
        if !self.learners.is_empty() {
            text.push_str(&format!(" learners {}", ids(&self.learners)));
        }
        if !self.followers.is_empty() {
            let lags: Vec<String> = self
                .followers
                .iter()
                .map(|f| format!("{}:{}", f.id, f.lag))
                .collect();
            text.push_str(&format!(" lag {}", lags.join(",")));
        }
        text
    }
}

/// A `u64` as 16 hex digits.
mod hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{value:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map_err(D::Error::custom)
    }
}

/// Runs `status`: one line per reachable node; unreachable ones are
/// reported on stderr. Fails only if no node answered.
pub async fn run(args: &StatusArgs) -> Result<u8, CliError> {
    let transport = match super::client::connect(&args.cluster).await? {
        super::client::Connected::Single(cluster) => cluster.transport(),
        super::client::Connected::Sharded(cluster) => {
            return super::shard::status(&cluster, args.json).await;
        }
    };
    let servers = transport.servers().to_vec();
    // A position of an id that is not a member holds another member's
    // address: each address is asked once.
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<usize> = (0..servers.len())
        .filter(|&index| seen.insert(servers[index].addr))
        .collect();
    let queries: Vec<_> = unique
        .iter()
        .map(|&index| {
            let transport = transport.clone();
            tokio::spawn(async move { kv_client::node_status(&transport, index).await })
        })
        .collect();
    let mut lines = Vec::new();
    for (index, query) in unique.into_iter().zip(queries) {
        let server = &servers[index];
        let addr = crate::addr::address_text(server);
        match query.await {
            Ok(Ok(status)) => lines.push(StatusLine::new(status, addr)),
            Ok(Err(error)) => crate::cli::note(format_args!(
                "node {} {addr} unreachable: {error}",
                index + 1
            )),
            Err(error) => crate::cli::note(format_args!("node {} {addr}: {error}", index + 1)),
        }
    }
    lines.sort_by_key(|line| line.id);
    let reachable = lines.len();
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        if args.json {
            writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
        } else {
            writeln!(stdout, "{}", line.text())?;
        }
    }
    stdout.flush()?;
    drop(stdout);
    transport.close().await;
    if reachable == 0 {
        return Err(CliError::NoNodeReachable);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_as_it_was_written() {
        let line = StatusLine::new(
            NodeStatus {
                id: 2,
                role: "leader".into(),
                term: 3,
                leader: Some(2),
                commit_index: 9,
                applied_index: 8,
                fingerprint: 0x00ab_cdef_0123_4567,
                ..NodeStatus::default()
            },
            "127.0.0.1:7000".into(),
        );
        let json = serde_json::to_string(&line).unwrap();
        assert!(
            json.starts_with(r#"{"id":2,"addr":"127.0.0.1:7000","role":"leader","term":3,"leader":2,"commitIndex":9,"appliedIndex":8,"#),
            "{json}"
        );
        assert!(
            json.ends_with(r#""fingerprint":"00abcdef01234567"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<StatusLine>(&json).unwrap(), line);
    }
}
