//! Faults and operator actions on the simulated cluster: crashes and
//! restarts, partitions and cut links, loss, duplication and latency,
//! elections, leadership transfer, snapshots, membership changes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::config::check_probability;
use super::{Disk, Endpoint, Event, PacketPayload, Sim, SimError, index_of};
use crate::kv::{Replica, ReplicaInput};
use crate::raft::{LogIndex, Membership, MembershipChange, NodeId};
use crate::time::Instant;

impl Sim {
    fn node_index(&self, id: u64) -> Result<usize, SimError> {
        let index = index_of(id);
        if index < self.nodes.len() {
            Ok(index)
        } else {
            Err(SimError::UnknownNode(id))
        }
    }

    /// Crashes node `id`: its volatile state is gone, and so are the writes
    /// its disk had not synced (but a random prefix of them).
    pub fn crash(&mut self, id: NodeId) -> Result<(), SimError> {
        let index = self.node_index(id)?;
        if self.nodes[index].replica.is_none() {
            return Err(SimError::NodeDown(id));
        }
        self.nodes[index].replica = None;
        let lost = self.nodes[index].disk.crash(&mut self.rng);
        self.stats.writes_lost += lost as u64;
        self.hash.write(b"crash").write_u64(id);
        self.trace_line(Some(Endpoint::Node(id)), "crash", || {
            format!("crashed; {lost} unsynced writes lost")
        });
        Ok(())
    }

    /// Node `id` loses its disk: it crashes (if up) and everything it
    /// stored is gone. Raft's safety rests on a node never forgetting its
    /// term, its vote or an entry it acknowledged, so with
    /// [`SimConfig::retire_lost_disks`] (the default) the node is retired:
    /// it never runs again under its id ([`Sim::restart`] refuses), and the
    /// cluster goes on without it or replaces it with a new machine, a new
    /// id added by a membership change ([`Sim::add_node`]). Without the rule
    /// the node restarts at once on its blank disk, as an operator who
    /// simply restarted it would; the checkers then catch what that breaks.
    ///
    /// [`SimConfig::retire_lost_disks`]: super::SimConfig::retire_lost_disks
    pub fn lose_disk(&mut self, id: NodeId) -> Result<(), SimError> {
        let index = self.node_index(id)?;
        if self.nodes[index].replica.is_some() {
            self.crash(id)?;
        }
        self.nodes[index].disk = Disk::default();
        self.hash.write(b"lose-disk").write_u64(id);
        self.trace_line(Some(Endpoint::Node(id)), "crash", || {
            String::from("disk lost")
        });
        if self.config.retire_lost_disks {
            self.nodes[index].retired = true;
            Ok(())
        } else {
            self.restart(id)
        }
    }

    /// Whether node `id` lost its disk and is retired (see [`Sim::lose_disk`]).
    pub fn is_retired(&self, id: NodeId) -> bool {
        self.nodes.get(index_of(id)).is_some_and(|n| n.retired)
    }

    /// Restarts node `id` from what its disk holds.
    pub fn restart(&mut self, id: NodeId) -> Result<(), SimError> {
        let index = self.node_index(id)?;
        if self.nodes[index].replica.is_some() {
            return Err(SimError::NodeUp(id));
        }
        if self.nodes[index].retired {
            return Err(SimError::Retired(id));
        }
        let seed = self.rng.next_u64();
        let persisted = self.nodes[index].disk.persisted().clone();
        let now = self.local_now(index);
        let replica = Replica::restart(self.nodes[index].config.clone(), seed, now, persisted)
            .map_err(|e| SimError::Config(format!("{e}")))?;
        if self.config.check_safety {
            self.checker.restarted(replica.node());
        }
        self.hash.write(b"restart").write_u64(id);
        self.trace_line(Some(Endpoint::Node(id)), "restart", || {
            let node = replica.node();
            format!(
                "restarted at term {} with log {}..{}",
                node.term(),
                node.log().first_index(),
                node.log().last_index()
            )
        });
        self.nodes[index].replica = Some(replica);
        Ok(())
    }

    /// Splits the nodes into groups that only reach each other. Nodes not
    /// listed are isolated; clients reach every node.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Result<(), SimError> {
        let mut seen = Vec::new();
        for group in groups {
            for &id in group {
                self.node_index(id)?;
                if seen.contains(&id) {
                    return Err(SimError::BadPartition(format!(
                        "node {id} is in two groups"
                    )));
                }
                seen.push(id);
            }
        }
        let groups = groups
            .iter()
            .map(|g| g.iter().map(|&id| Endpoint::Node(id)).collect())
            .collect();
        self.partition_endpoints(groups);
        Ok(())
    }

    /// Like [`Sim::partition`], with clients placed in groups too (an unlisted client reaches everyone).
    pub fn partition_endpoints(&mut self, groups: Vec<Vec<Endpoint>>) {
        self.hash.write(b"partition");
        for group in &groups {
            for endpoint in group {
                self.hash.write(format!("{endpoint}").as_bytes());
            }
            self.hash.write(b"|");
        }
        self.trace_line(None, "partition", || {
            let parts: Vec<String> = groups
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|e| format!("{e}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            format!("partition {}", parts.join(" | "))
        });
        self.network.partition(groups);
    }

    /// Removes partitions and cut links.
    pub fn heal(&mut self) {
        self.hash.write(b"heal");
        self.trace_line(None, "heal", || String::from("network healed"));
        self.network.heal();
    }

    /// Cuts the link from `from` to `to` (one direction).
    pub fn cut_link(&mut self, from: NodeId, to: NodeId) -> Result<(), SimError> {
        self.node_index(from)?;
        self.node_index(to)?;
        self.hash.write(b"cut").write_u64(from).write_u64(to);
        self.trace_line(None, "cut", || format!("link {from}->{to} cut"));
        self.network
            .cut_link(Endpoint::Node(from), Endpoint::Node(to));
        Ok(())
    }

    /// Cuts client `client` off from node `node`, both ways (until [`Sim::heal`]).
    pub fn cut_client(&mut self, client: u64, node: NodeId) -> Result<(), SimError> {
        self.node_index(node)?;
        if client == 0 || client as usize > self.clients.len() {
            return Err(SimError::UnknownClient(client));
        }
        self.hash
            .write(b"cut-client")
            .write_u64(client)
            .write_u64(node);
        self.trace_line(None, "cut", || {
            format!("client c{client} cut off from {node}")
        });
        let (c, n) = (Endpoint::Client(client), Endpoint::Node(node));
        self.network.cut_link(c, n);
        self.network.cut_link(n, c);
        Ok(())
    }

    /// Restores the link from `from` to `to`.
    pub fn restore_link(&mut self, from: NodeId, to: NodeId) -> Result<(), SimError> {
        self.node_index(from)?;
        self.node_index(to)?;
        self.hash.write(b"restore").write_u64(from).write_u64(to);
        self.trace_line(None, "restore", || format!("link {from}->{to} restored"));
        self.network
            .restore_link(Endpoint::Node(from), Endpoint::Node(to));
        Ok(())
    }

    /// Sets the probability that a packet is lost.
    pub fn set_drop_rate(&mut self, rate: f64) -> Result<(), SimError> {
        check_probability("drop rate", rate)?;
        self.hash.write(b"drop").write_u64(rate.to_bits());
        self.network.config.drop_rate = rate;
        Ok(())
    }

    /// Sets the probability that a packet is duplicated.
    pub fn set_duplicate_rate(&mut self, rate: f64) -> Result<(), SimError> {
        check_probability("duplicate rate", rate)?;
        self.hash.write(b"duplicate").write_u64(rate.to_bits());
        self.network.config.duplicate_rate = rate;
        Ok(())
    }

    /// Sets the one-way latency range, ms.
    pub fn set_latency(&mut self, min: u64, max: u64) -> Result<(), SimError> {
        if min > max {
            return Err(SimError::BadValue(format!(
                "latency range {min}..{max} is empty"
            )));
        }
        self.hash.write(b"latency").write_u64(min).write_u64(max);
        self.network.config.latency = (min, max);
        Ok(())
    }

    /// Holds back every Raft message of kind `kind` (as [`Message::kind`]
    /// names it: `TimeoutNow`, `Heartbeat`, ...) now in flight by `extra`
    /// ms more. Returns how many were delayed.
    ///
    /// [`Message::kind`]: crate::raft::Message::kind
    pub fn delay_in_flight(&mut self, kind: &str, extra: u64) -> usize {
        let events: Vec<((Instant, u64), u64)> = self
            .queue
            .iter()
            .filter_map(|(&key, event)| match event {
                Event::Deliver(id) => self
                    .in_flight
                    .get(id)
                    .filter(|p| matches!(&p.payload, PacketPayload::Raft(m) if m.kind() == kind))
                    .map(|_| (key, *id)),
                _ => None,
            })
            .collect();
        for &(key, id) in &events {
            self.queue.remove(&key);
            let packet = self.in_flight.get_mut(&id).expect("listed in flight");
            packet.deliver_at = packet.deliver_at + extra;
            let at = packet.deliver_at;
            self.hash.write(b"delay").write_u64(id).write_u64(extra);
            self.schedule(at, Event::Deliver(id));
        }
        if !events.is_empty() {
            let count = events.len();
            self.trace_line(None, "delay", || {
                format!("{count} {kind} held back {extra}ms")
            });
        }
        events.len()
    }

    /// Drops the packet `id` in flight. Returns whether it was in flight.
    pub fn drop_packet(&mut self, id: u64) -> bool {
        let Some(packet) = self.in_flight.remove(&id) else {
            return false;
        };
        self.stats.dropped += 1;
        self.hash.write(b"drop-packet").write_u64(id);
        self.trace_packet(Some(packet.to), "drop", &packet, " dropped by hand");
        true
    }

    /// Makes node `id` campaign now, as if its election timer fired.
    pub fn campaign(&mut self, id: NodeId) -> Result<(), SimError> {
        self.up_node(id)?;
        self.hash.write(b"campaign").write_u64(id);
        self.trace_line(Some(Endpoint::Node(id)), "timeout", || {
            String::from("election timeout (forced)")
        });
        self.feed(id, ReplicaInput::Campaign)
            .map_err(SimError::Rejected)
    }

    /// Asks the current leader to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), SimError> {
        self.node_index(to)?;
        let leader = self.leader().ok_or(SimError::NoLeader)?;
        self.hash.write(b"transfer").write_u64(to);
        self.trace_line(Some(Endpoint::Node(leader)), "transfer", || {
            format!("transfer leadership to {to}")
        });
        self.feed(leader, ReplicaInput::TransferLeadership(to))
            .map_err(SimError::Rejected)
    }

    /// Makes node `id` snapshot its state machine and compact its log now.
    pub fn snapshot(&mut self, id: NodeId) -> Result<(), SimError> {
        self.up_node(id)?;
        self.hash.write(b"snapshot").write_u64(id);
        self.feed(id, ReplicaInput::Snapshot)
            .map_err(SimError::Rejected)
    }

    /// Adds a machine: node `n + 1` (at most 9 nodes in all), started empty
    /// and knowing the current membership plus itself as a learner. It takes
    /// part once the leader adds it ([`Sim::change_membership`] with
    /// `AddLearner`, then `AddVoter` once it has caught up).
    pub fn add_node(&mut self) -> Result<NodeId, SimError> {
        if self.nodes.len() >= 9 {
            return Err(SimError::BadValue(String::from(
                "the simulator runs at most 9 nodes",
            )));
        }
        let id = self.nodes.len() as NodeId + 1;
        let membership = self.membership();
        let mut config = self.replica_config(id);
        config.raft.voters = membership.voters.clone();
        config.raft.learners = membership.learners.clone();
        config.raft.learners.push(id);
        self.push_node(id, config)?;
        self.hash.write(b"add-node").write_u64(id);
        self.trace_line(Some(Endpoint::Node(id)), "restart", || {
            String::from("new machine started")
        });
        let servers: Vec<NodeId> = (1..=id).collect();
        for client in &mut self.clients {
            client.clerk.set_servers(servers.clone());
        }
        Ok(id)
    }

    /// Asks the leader to change the membership by one server.
    pub fn change_membership(&mut self, change: MembershipChange) -> Result<(), SimError> {
        let target = match change {
            MembershipChange::AddLearner(id)
            | MembershipChange::AddVoter(id)
            | MembershipChange::Remove(id) => id,
        };
        self.node_index(target)?;
        let leader = self.leader().ok_or(SimError::NoLeader)?;
        self.hash
            .write(b"membership")
            .write(format!("{change:?}").as_bytes());
        self.trace_line(Some(Endpoint::Node(leader)), "membership", || {
            format!("membership change {change:?}")
        });
        self.feed(leader, ReplicaInput::ChangeMembership(change))
            .map_err(SimError::Rejected)
    }

    /// The membership as the leader (or else the up node with the highest term) sees it.
    pub fn membership(&self) -> Membership {
        let source = self
            .leader()
            .and_then(|id| self.replica(id))
            .or_else(|| self.replicas().max_by_key(|r| r.node().term()));
        source.map_or_else(
            || Membership::with_voters(1..=self.nodes.len() as NodeId),
            |r| r.node().membership().clone(),
        )
    }

    /// Proposes raw bytes at node `id`, bypassing clients (for tests of the
    /// Raft layer; the state machine skips commands it cannot decode).
    /// Returns the index and term the entry got.
    pub fn propose(&mut self, id: NodeId, command: Bytes) -> Result<(LogIndex, u64), SimError> {
        self.up_node(id)?;
        self.hash.write(b"propose").write_u64(id).write(&command);
        let appended = self.feed_raw_proposals(id, alloc::vec![command])?;
        Ok(appended[0])
    }

    /// Proposes several raw commands at node `id` in one batch (they share
    /// disk writes and AppendEntries). Returns each one's index and term.
    pub fn propose_many(
        &mut self,
        id: NodeId,
        commands: Vec<Bytes>,
    ) -> Result<Vec<(LogIndex, u64)>, SimError> {
        self.up_node(id)?;
        self.hash.write(b"propose-many").write_u64(id);
        for command in &commands {
            self.hash.write(command);
        }
        self.feed_raw_proposals(id, commands)
    }

    fn up_node(&self, id: NodeId) -> Result<&Replica, SimError> {
        let index = self.node_index(id)?;
        self.nodes[index]
            .replica
            .as_ref()
            .ok_or(SimError::NodeDown(id))
    }
}
