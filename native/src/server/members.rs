//! Where a node learns the members at start.
//!
//! The members and their addresses are part of the replicated
//! configuration; the data folder keeps, in [`MEMBERS_FILE`], only the
//! configuration the node started from (the one its log builds on). It is
//! written at the first start, from `--peers` (a new cluster: ids are the
//! positions, all voters) or from the cluster itself (`--join`: the node
//! asks the listed members for the configuration until it is in it, and
//! starts as the learner it was added as). After that the file is the
//! source, and `--peers` and `--join` are ignored (with a warning if they
//! disagree).

use std::path::Path;
use std::time::{Duration, Instant};

use distribkv_core::kv::{ClientRequest, MembersStatus, Reply, RequestBody};
use distribkv_core::raft::{Membership, NodeId};
use serde::{Deserialize, Serialize};

use super::{ServerConfig, ServerError};
use crate::addr::address_text;
use crate::kv_client::KvTransport;
use crate::tls::CertSet;
use crate::transport::{Client, ClientSettings, ServerAddress};

/// The file, in the data folder, with the configuration the node started from.
pub const MEMBERS_FILE: &str = "members.json";

/// How often a joining node asks the cluster whether it was added.
const JOIN_POLL: Duration = Duration::from_secs(1);

/// How often a joining node repeats in its log that it is waiting.
const JOIN_NOTICE: Duration = Duration::from_secs(10);

/// [`MEMBERS_FILE`]'s content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MembersFile {
    voters: Vec<NodeId>,
    learners: Vec<NodeId>,
    addresses: Vec<(NodeId, String)>,
}

impl MembersFile {
    fn of(membership: &Membership) -> MembersFile {
        MembersFile {
            voters: membership.voters.clone(),
            learners: membership.learners.clone(),
            addresses: membership.addresses.clone(),
        }
    }

    fn membership(self) -> Membership {
        let mut membership = Membership::with_voters(self.voters);
        membership.learners = self.learners;
        membership.learners.sort_unstable();
        for (id, address) in self.addresses {
            membership.set_address(id, address);
        }
        membership
    }
}

/// The membership of a new cluster whose members are `peers`, in id order.
pub fn initial_membership(peers: &[ServerAddress]) -> Membership {
    let mut membership = Membership::with_voters(1..=peers.len() as NodeId);
    for (index, peer) in peers.iter().enumerate() {
        membership.set_address(index as NodeId + 1, address_text(peer));
    }
    membership
}

/// The configuration this node starts from: its data folder's, or a new
/// cluster's (`--peers`), or the cluster's it joins (`--join`, waiting
/// until it is added).
pub(super) async fn settle(
    config: &ServerConfig,
    certs: &CertSet,
) -> Result<Membership, ServerError> {
    let id = config.id();
    let path = config.data_dir.join(MEMBERS_FILE);
    if let Some(saved) = load(&path)? {
        if !config.peers.is_empty() && initial_membership(&config.peers) != saved {
            tracing::warn!(
                node = id,
                "--peers ignored: the data folder already holds the members (they are learned from the log)"
            );
        }
        if !config.join.is_empty() {
            tracing::warn!(node = id, "--join ignored: this node is already a member");
        }
        return Ok(saved);
    }
    let membership = if !config.peers.is_empty() {
        initial_membership(&config.peers)
    } else if !config.join.is_empty() {
        join(config, certs).await?
    } else {
        return Err(ServerError::NoMembers {
            dir: config.data_dir.clone(),
        });
    };
    save_membership(&path, &membership)?;
    Ok(membership)
}

fn load(path: &Path) -> Result<Option<Membership>, ServerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ServerError::MembersFile {
                path: path.to_path_buf(),
                reason: error.to_string(),
            });
        }
    };
    let file: MembersFile =
        serde_json::from_str(&text).map_err(|error| ServerError::MembersFile {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
    Ok(Some(file.membership()))
}

/// Writes a members file atomically (a temporary file, fsync, rename,
/// fsync of the folder).
pub fn save_membership(path: &Path, membership: &Membership) -> Result<(), ServerError> {
    let error = |error: std::io::Error| ServerError::MembersFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(error)?;
    let text = serde_json::to_string_pretty(&MembersFile::of(membership))
        .map_err(|e| error(std::io::Error::other(e)))?;
    crate::fsutil::write_atomically(path, text.as_bytes()).map_err(error)
}

/// Asks the `--join` members for the configuration until this node is in
/// it; a removed id is refused.
async fn join(config: &ServerConfig, certs: &CertSet) -> Result<Membership, ServerError> {
    let id = config.id();
    let tls = certs
        .node_client_config()
        .map_err(|source| ServerError::Certificates {
            dir: config.certs_dir.clone(),
            source,
        })?;
    let settings = ClientSettings {
        request_timeout: Duration::from_secs(3),
        ..ClientSettings::default()
    };
    let client: KvTransport = Client::with_tls_config(config.join.clone(), tls, settings)
        .map_err(|error| ServerError::Join(error.to_string()))?;
    let tried: Vec<String> = config.join.iter().map(address_text).collect();
    let mut last_notice: Option<Instant> = None;
    loop {
        for index in 0..config.join.len() {
            let request = ClientRequest {
                id: 1,
                body: RequestBody::Members {
                    linearizable: false,
                },
            };
            let Ok(Ok(response)) =
                tokio::time::timeout(Duration::from_secs(3), client.request_to(index, request))
                    .await
            else {
                continue;
            };
            let Ok(Reply::Members(status)) = response.result else {
                continue;
            };
            if status.removed.contains(&id) {
                client.close().await;
                return Err(ServerError::Removed { id });
            }
            if status.members.iter().any(|m| m.id == id) {
                client.close().await;
                tracing::info!(node = id, "added to the cluster; catching up");
                return Ok(membership_of(&status));
            }
        }
        if last_notice.is_none_or(|at| at.elapsed() >= JOIN_NOTICE) {
            tracing::info!(
                node = id,
                join = %tried.join(","),
                "waiting to be added: node {id} is not a member of the cluster yet (add it with `distribkv-native member add {id} ADDR`)"
            );
            last_notice = Some(Instant::now());
        }
        tokio::time::sleep(JOIN_POLL).await;
    }
}

/// The configuration a member list describes.
fn membership_of(status: &MembersStatus) -> Membership {
    let mut membership =
        Membership::with_voters(status.members.iter().filter(|m| m.voter).map(|m| m.id));
    membership.learners = status
        .members
        .iter()
        .filter(|m| !m.voter)
        .map(|m| m.id)
        .collect();
    for member in &status.members {
        if !member.address.is_empty() {
            membership.set_address(member.id, member.address.clone());
        }
    }
    membership
}
