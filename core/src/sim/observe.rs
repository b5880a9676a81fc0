//! What a driver, a test or a checker can read of a running simulation:
//! replicas, leaders, packets in flight, violations, the trace and counters.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Disk, Network, Packet, SafetyChecker, Sim, SimConfig, SimStats, TraceLine, index_of};
use crate::kv::Replica;
use crate::raft::{LogIndex, NodeId, RoleKind};

impl Sim {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `id`'s replica, if it is up.
    pub fn replica(&self, id: NodeId) -> Option<&Replica> {
        self.nodes
            .get(index_of(id))
            .and_then(|n| n.replica.as_ref())
    }

    /// Node `id`'s disk.
    pub fn disk(&self, id: NodeId) -> Option<&Disk> {
        self.nodes.get(index_of(id)).map(|n| &n.disk)
    }

    /// Every up replica.
    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        self.nodes.iter().filter_map(|n| n.replica.as_ref())
    }

    /// The leader with the highest term among the up nodes, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.replicas()
            .filter(|r| r.node().role() == RoleKind::Leader)
            .max_by_key(|r| r.node().term())
            .map(|r| r.node().id())
    }

    /// Whether the cluster has settled: a leader that committed an entry of
    /// its term and everything in its log, and every up replica has applied
    /// all of it.
    pub fn is_converged(&self) -> bool {
        let Some(leader) = self.leader().and_then(|id| self.replica(id)) else {
            return false;
        };
        let log = leader.node().log();
        if log.term_at(log.commit()) != Some(leader.node().term()) {
            return false;
        }
        let last = log.last_index();
        let membership = leader.node().membership();
        log.commit() == last
            && self
                .replicas()
                .filter(|r| membership.contains(r.node().id()))
                .all(|r| r.node().log().applied() == last)
    }

    /// Up nodes that believe they lead, with their terms.
    pub fn leaders(&self) -> Vec<(NodeId, u64)> {
        self.replicas()
            .filter(|r| r.node().role() == RoleKind::Leader)
            .map(|r| (r.node().id(), r.node().term()))
            .collect()
    }

    /// Packets in flight, by id.
    pub fn in_flight(&self) -> impl Iterator<Item = &Packet> {
        self.in_flight.values().map(|p| &**p)
    }

    /// The packet `id`, if in flight.
    pub fn packet(&self, id: u64) -> Option<&Packet> {
        self.in_flight.get(&id).map(|p| &**p)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Whether a livelock stopped the run (safety violations do not stop it).
    pub fn halted(&self) -> bool {
        let limit = self.config.max_events_per_instant;
        limit > 0 && self.events_at_now >= limit
    }

    /// Safety violations found so far.
    pub fn violations(&self) -> &[String] {
        self.checker.violations()
    }

    /// The safety checker.
    pub fn checker(&self) -> &SafetyChecker {
        &self.checker
    }

    /// A hash of everything that happened: equal for equal runs, on every platform.
    pub fn trace_hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Trace lines after `seq` (only the last `trace_capacity` are kept).
    pub fn trace_since(&self, seq: u64) -> impl Iterator<Item = &TraceLine> {
        self.trace.iter().filter(move |line| line.seq > seq)
    }

    /// Counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The digest ([`crate::raft::Payload::digest`]) of the entry node `id`
    /// applied at `index`, over the node's whole life (crashes included).
    /// Covered by a snapshot: the committed entry's digest.
    /// Recorded only with `check_safety`.
    pub fn applied_digest(&self, id: NodeId, index: LogIndex) -> Option<u64> {
        let node = self.nodes.get(index_of(id))?;
        if let Some(&digest) = node.applied.get(&index) {
            return Some(digest);
        }
        if index <= node.snapshot_through {
            return self.checker.committed_at(index).map(|(_, digest)| digest);
        }
        None
    }
}
