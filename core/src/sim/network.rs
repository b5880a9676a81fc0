//! The simulated network: who can reach whom, the packets it carries, and
//! what happens to a packet on the way (latency, loss, duplication; reordering follows from random
//! latencies).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;

use crate::kv::{ClientRequest, ClientResponse};
use crate::raft::{Message, NodeId};
use crate::rng::Rng;
use crate::time::Instant;

/// Something attached to the simulated network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A replica, by node id.
    Node(NodeId),
    /// A client, by client number (1, 2, ...).
    Client(u64),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(id) => write!(f, "{id}"),
            Endpoint::Client(id) => write!(f, "c{id}"),
        }
    }
}

/// Link behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// One-way latency, drawn uniformly from `min..=max` ms per packet.
    pub latency: (u64, u64),
    /// Probability that a packet is lost.
    pub drop_rate: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate_rate: f64,
    /// Probability that a packet is held back much longer (`long_delay`),
    /// so it arrives long after later packets: heavy reordering.
    pub long_delay_rate: f64,
    /// The range of those long delays, ms.
    pub long_delay: (u64, u64),
    /// Probability that a `TimeoutNow` is held back by `timeout_now_delay`
    /// more: it may land after the transfer it belongs to was given up.
    pub timeout_now_delay_rate: f64,
    /// The range of that extra delay, ms.
    pub timeout_now_delay: (u64, u64),
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency: (5, 20),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            long_delay_rate: 0.0,
            long_delay: (200, 2000),
            timeout_now_delay_rate: 0.0,
            timeout_now_delay: (0, 0),
        }
    }
}

/// Reachability: partitions and one-way cuts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Network {
    /// Current link behaviour.
    pub config: NetworkConfig,
    /// Groups of nodes that can talk among themselves; `None`: no partition.
    /// Nodes not listed are alone. Clients reach every node unless listed.
    partition: Option<Vec<Vec<Endpoint>>>,
    /// Directed links that lose everything.
    cut: BTreeSet<(Endpoint, Endpoint)>,
}

impl Network {
    /// A network with this behaviour and full connectivity.
    pub fn new(config: NetworkConfig) -> Network {
        Network {
            config,
            partition: None,
            cut: BTreeSet::new(),
        }
    }

    /// Whether a packet from `from` reaches `to` (ignoring random loss).
    pub fn can_reach(&self, from: Endpoint, to: Endpoint) -> bool {
        if self.cut.contains(&(from, to)) {
            return false;
        }
        let Some(groups) = &self.partition else {
            return true;
        };
        let group_of = |e: Endpoint| groups.iter().position(|g| g.contains(&e));
        match (group_of(from), group_of(to)) {
            (Some(a), Some(b)) => a == b,
            // An unlisted client talks to everyone; an unlisted node to no one.
            (None, _) if matches!(from, Endpoint::Client(_)) => true,
            (_, None) if matches!(to, Endpoint::Client(_)) => true,
            _ => false,
        }
    }

    /// Splits the network into groups.
    pub fn partition(&mut self, groups: Vec<Vec<Endpoint>>) {
        self.partition = Some(groups);
    }

    /// Removes the partition and every cut link.
    pub fn heal(&mut self) {
        self.partition = None;
        self.cut.clear();
    }

    /// Cuts the link from `from` to `to` (one direction).
    pub fn cut_link(&mut self, from: Endpoint, to: Endpoint) {
        self.cut.insert((from, to));
    }

    /// Restores the link from `from` to `to`.
    pub fn restore_link(&mut self, from: Endpoint, to: Endpoint) {
        self.cut.remove(&(from, to));
    }

    /// The current partition groups.
    pub fn partition_groups(&self) -> Option<&[Vec<Endpoint>]> {
        self.partition.as_deref()
    }

    /// Cut links, in order.
    pub fn cut_links(&self) -> impl Iterator<Item = &(Endpoint, Endpoint)> {
        self.cut.iter()
    }

    /// Draws the fate of one packet: `None` if lost, else one or two latencies.
    pub fn transit(&self, rng: &mut Rng) -> Option<(u64, Option<u64>)> {
        if rng.chance(self.config.drop_rate) {
            return None;
        }
        let first = self.latency(rng);
        let duplicate = rng
            .chance(self.config.duplicate_rate)
            .then(|| self.latency(rng));
        Some((first, duplicate))
    }

    fn latency(&self, rng: &mut Rng) -> u64 {
        let (min, max) = if rng.chance(self.config.long_delay_rate) {
            self.config.long_delay
        } else {
            self.config.latency
        };
        rng.range_inclusive(min, max.max(min))
    }
}

/// What a packet carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PacketPayload {
    /// Between replicas.
    Raft(Message),
    /// From a client to a replica.
    Request(ClientRequest),
    /// From a replica to a client.
    Response(ClientResponse),
}

/// A packet in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Unique id, in send order.
    pub id: u64,
    /// Sender.
    pub from: Endpoint,
    /// Recipient.
    pub to: Endpoint,
    /// When it was sent.
    pub sent_at: Instant,
    /// When it arrives (unless dropped or cut off).
    pub deliver_at: Instant,
    /// Content.
    pub payload: PacketPayload,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn partitions_and_cuts() {
        let n = Endpoint::Node;
        let mut net = Network::new(NetworkConfig::default());
        assert!(net.can_reach(n(1), n(2)));
        net.partition(vec![vec![n(1), n(2)], vec![n(3), Endpoint::Client(1)]]);
        assert!(net.can_reach(n(1), n(2)));
        assert!(!net.can_reach(n(1), n(3)));
        assert!(!net.can_reach(n(4), n(1)), "unlisted nodes are alone");
        assert!(net.can_reach(Endpoint::Client(1), n(3)));
        assert!(!net.can_reach(Endpoint::Client(1), n(1)));
        assert!(
            net.can_reach(Endpoint::Client(2), n(1)),
            "unlisted clients reach everyone"
        );
        net.heal();
        net.cut_link(n(1), n(2));
        assert!(!net.can_reach(n(1), n(2)));
        assert!(net.can_reach(n(2), n(1)), "cuts are one-way");
        net.restore_link(n(1), n(2));
        assert!(net.can_reach(n(1), n(2)));
    }
}
