//! Whose data a folder holds: the node id and the cluster id, recorded in the
//! folder's identity file and in the header of every log segment and snapshot.

use std::fmt;

use distribkv_core::raft::NodeId;

/// The owner of a data folder: one node of one cluster.
///
/// The cluster id is any 64-bit value the caller derives from something that
/// tells clusters apart, typically a fingerprint of the cluster's CA
/// certificate. Opening a folder with another identity than the one it was
/// created with is refused, so a node can never start on another node's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// This node's id (`>= 1`).
    pub node_id: NodeId,
    /// The cluster this node belongs to.
    pub cluster_id: u64,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} of cluster {:#018x}",
            self.node_id, self.cluster_id
        )
    }
}
