//! The event loop: pick the next event, feed it to whoever it concerns,
//! route what comes out, check the invariants.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::invariants::SafetyChecker;
use super::network::Endpoint;
use super::trace;
use super::{Event, Packet, PacketPayload, Sim, SimError, StepInfo};
use crate::kv::{ReplicaInput, ReplicaOutput};
use crate::raft::{LogIndex, Message, NodeId, Rejected, RoleKind};
use crate::time::Instant;

/// What fires next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Next {
    Queue,
    NodeTimer(NodeId),
    ClientTimer(u64),
}

impl Sim {
    /// A step's description, formatted only for [`Sim::step`].
    fn describe(&self, text: impl FnOnce() -> String) -> String {
        if self.describe_steps {
            text()
        } else {
            String::new()
        }
    }

    /// Time of the next event, if anything is scheduled.
    pub fn next_event_at(&self) -> Option<Instant> {
        self.next().map(|(at, _)| at)
    }

    fn next(&self) -> Option<(Instant, Next)> {
        let mut best: Option<(Instant, Next)> = self
            .queue
            .first_key_value()
            .map(|(&(at, _), _)| (at, Next::Queue));
        let mut consider = |at: Instant, next: Next| {
            if at != Instant::NEVER && best.is_none_or(|b| (at, next) < b) {
                best = Some((at, next));
            }
        };
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(replica) = &node.replica {
                let deadline = node.clock.global(replica.poll_timeout());
                consider(deadline, Next::NodeTimer(i as NodeId + 1));
            }
        }
        for (i, client) in self.clients.iter().enumerate() {
            consider(client.clerk.poll_timeout(), Next::ClientTimer(i as u64 + 1));
        }
        best
    }

    /// Processes the next event. Returns what happened, or `None` if nothing is scheduled.
    pub fn step(&mut self) -> Option<StepInfo> {
        self.describe_steps = true;
        let info = self.step_event();
        self.describe_steps = false;
        info
    }

    /// Processes the next event; its description is formatted only for [`Sim::step`].
    pub(super) fn step_event(&mut self) -> Option<StepInfo> {
        let (at, next) = self.next()?;
        if at > self.now {
            self.events_at_now = 0;
        }
        self.now = self.now.max(at);
        self.stats.events += 1;
        self.events_at_now += 1;

        let info = match next {
            Next::Queue => self.step_queue(),
            Next::NodeTimer(id) => {
                self.hash
                    .write(b"timer")
                    .write_u64(self.now.as_millis())
                    .write_u64(id);
                let _ = self.feed(id, ReplicaInput::Timeout);
                StepInfo {
                    at: self.now,
                    endpoint: Some(Endpoint::Node(id)),
                    kind: "timeout",
                    text: self.describe(|| format!("node {id} timer")),
                }
            }
            Next::ClientTimer(number) => {
                self.hash
                    .write(b"client-timer")
                    .write_u64(self.now.as_millis())
                    .write_u64(number);
                let now = self.now;
                self.clients[number as usize - 1].clerk.handle_timeout(now);
                self.drain_clerk(number);
                StepInfo {
                    at: self.now,
                    endpoint: Some(Endpoint::Client(number)),
                    kind: "client",
                    text: self.describe(|| format!("client {number} timer")),
                }
            }
        };
        let limit = self.config.max_events_per_instant;
        if limit > 0 && self.events_at_now == limit {
            let text = alloc::format!(
                "Livelock: {} events at {} without time advancing (last: {:?} {})",
                self.events_at_now,
                self.now,
                info.endpoint,
                info.text
            );
            self.checker.report(text);
        }
        Some(info)
    }

    /// Processes the first queued event (a delivery, a disk sync, a workload tick).
    pub(super) fn step_queue(&mut self) -> StepInfo {
        let (_, event) = self.queue.pop_first().expect("caller checked the queue");
        match event {
            Event::Deliver(id) => self.deliver(id),
            Event::Synced { node, epoch, seq } => {
                let now = self.now;
                let index = node as usize - 1;
                if self.nodes[index].replica.is_some()
                    && let Some((durable, next)) = self.nodes[index].disk.synced(epoch, seq)
                {
                    self.stats.syncs += 1;
                    self.hash
                        .write(b"synced")
                        .write_u64(now.as_millis())
                        .write_u64(node)
                        .write_u64(durable);
                    if let Some(next) = next {
                        self.schedule_sync(node, next);
                    }
                    let _ = self.feed(node, ReplicaInput::Persisted(durable));
                }
                StepInfo {
                    at: now,
                    endpoint: Some(Endpoint::Node(node)),
                    kind: "disk",
                    text: self.describe(|| format!("node {node} synced writes up to {seq}")),
                }
            }
            Event::Workload { client } => {
                self.workload_tick(client);
                StepInfo {
                    at: self.now,
                    endpoint: Some(Endpoint::Client(client)),
                    kind: "workload",
                    text: self.describe(|| format!("client {client} next operation")),
                }
            }
        }
    }

    pub(super) fn schedule(&mut self, at: Instant, event: Event) {
        self.next_event += 1;
        self.queue.insert((at, self.next_event), event);
    }

    fn schedule_sync(&mut self, node: NodeId, seq: u64) {
        let (min, max) = self.config.disk_latency;
        let latency = self.rng.range_inclusive(min, max.max(min));
        let epoch = self.nodes[node as usize - 1].disk.epoch();
        self.schedule(self.now + latency, Event::Synced { node, epoch, seq });
    }

    /// Feeds an input to node `id` and routes everything it produces.
    pub(super) fn feed(&mut self, id: NodeId, input: ReplicaInput) -> Result<(), Rejected> {
        self.feed_many(id, core::iter::once(input))
    }

    /// Feeds several inputs to node `id`, then routes everything they
    /// produced (the node batches its writes and messages). Returns the
    /// first refusal, if any.
    pub(super) fn feed_many(
        &mut self,
        id: NodeId,
        inputs: impl IntoIterator<Item = ReplicaInput>,
    ) -> Result<(), Rejected> {
        let index = id as usize - 1;
        let now = self.local_now(index);
        let check = self.config.check_safety;
        let Some(replica) = self.nodes[index].replica.as_mut() else {
            return Ok(());
        };
        let before = (
            replica.node().role(),
            replica.node().term(),
            replica.node().log().commit(),
        );
        if check {
            self.checker.before(replica.node());
        }
        let mut result = Ok(());
        for input in inputs {
            if let Err(rejected) = replica.handle(now, input)
                && result.is_ok()
            {
                result = Err(rejected);
            }
        }
        self.route_outputs(id);
        self.after_node_event(id, before);
        result
    }

    /// Proposes several raw commands at node `id` before draining its
    /// outputs, as a driver batching proposals would: they share writes and messages.
    fn feed_raw(
        &mut self,
        id: NodeId,
        commands: Vec<Bytes>,
    ) -> Result<Vec<(LogIndex, u64)>, Rejected> {
        let index = id as usize - 1;
        let now = self.local_now(index);
        let Some(replica) = self.nodes[index].replica.as_mut() else {
            return Err(Rejected::NotLeader { leader_hint: None });
        };
        let before = (
            replica.node().role(),
            replica.node().term(),
            replica.node().log().commit(),
        );
        if self.config.check_safety {
            self.checker.before(replica.node());
        }
        let mut appended = Vec::with_capacity(commands.len());
        let mut result = Ok(());
        for command in commands {
            match replica.propose_raw(now, command) {
                Ok(position) => appended.push(position),
                Err(rejected) => {
                    result = Err(rejected);
                    break;
                }
            }
        }
        self.route_outputs(id);
        self.after_node_event(id, before);
        result.map(|()| appended)
    }

    pub(super) fn feed_raw_proposals(
        &mut self,
        id: NodeId,
        commands: Vec<Bytes>,
    ) -> Result<Vec<(LogIndex, u64)>, SimError> {
        self.feed_raw(id, commands).map_err(SimError::Rejected)
    }

    fn route_outputs(&mut self, id: NodeId) {
        let index = id as usize - 1;
        // Drained into a buffer kept between calls (no allocation per event).
        let mut outputs = core::mem::take(&mut self.output_buffer);
        if let Some(replica) = self.nodes[index].replica.as_mut() {
            while let Some(output) = replica.poll_output() {
                outputs.push(output);
            }
        }
        for output in outputs.drain(..) {
            match output {
                ReplicaOutput::Persist(write) => {
                    if self.config.check_safety
                        && let Some(replica) = &self.nodes[index].replica
                    {
                        self.checker.observe_write(replica.node(), &write);
                    }
                    self.hash
                        .write(b"persist")
                        .write_u64(id)
                        .write_u64(write.seq);
                    if let Some(seq) = self.nodes[index].disk.write(write) {
                        self.schedule_sync(id, seq);
                    }
                }
                ReplicaOutput::Send(envelope) => {
                    if self.config.check_safety {
                        self.checker.observe_send(&envelope);
                    }
                    if envelope.message.is_request() {
                        self.stats.rpcs_sent += 1;
                    }
                    self.stats.bytes_sent += envelope.message.size() as u64;
                    self.transmit(
                        Endpoint::Node(id),
                        Endpoint::Node(envelope.to),
                        PacketPayload::Raft(envelope.message),
                    );
                }
                ReplicaOutput::Reply { to, response } => {
                    self.transmit(
                        Endpoint::Node(id),
                        Endpoint::Client(to),
                        PacketPayload::Response(response),
                    );
                }
            }
        }
        self.output_buffer = outputs;
    }

    fn after_node_event(&mut self, id: NodeId, before: (RoleKind, u64, LogIndex)) {
        let index = id as usize - 1;
        let Some(replica) = self.nodes[index].replica.as_mut() else {
            return;
        };
        if self.config.check_safety {
            let records = replica.drain_applied();
            self.checker.observe_applied(id, &records);
            for record in &records {
                match *record {
                    crate::kv::AppliedRecord::Entry {
                        index: at, digest, ..
                    } => {
                        self.nodes[index].applied.insert(at, digest);
                    }
                    crate::kv::AppliedRecord::Snapshot { index: at, .. } => {
                        let node = &mut self.nodes[index];
                        node.snapshot_through = node.snapshot_through.max(at);
                    }
                }
            }
            let replica = self.nodes[index].replica.as_ref().expect("checked above");
            self.checker.after_event(core::iter::once(replica.node()));
            if self.stats.events % 1024 == 0 {
                self.prune_checker();
            }
        }
        if self.config.trace_capacity > 0 {
            let replica = self.nodes[index].replica.as_ref().expect("checked above");
            let node = replica.node();
            let after = (node.role(), node.term(), node.log().commit());
            if (after.0, after.1) != (before.0, before.1) {
                let text = match after.0 {
                    RoleKind::Follower => format!(
                        "follower in term {}{}",
                        after.1,
                        node.leader()
                            .map_or(String::new(), |l| format!(", leader {l}"))
                    ),
                    role => format!("{} in term {}", role.name(), after.1),
                };
                self.trace_line(Some(Endpoint::Node(id)), "role", || text);
            }
            if after.2 != before.2 {
                let commit = after.2;
                self.trace_line(Some(Endpoint::Node(id)), "commit", || {
                    format!("commit index {commit}")
                });
            }
        }
    }

    fn prune_checker(&mut self) {
        let floor = self
            .nodes
            .iter()
            .map(|n| match &n.replica {
                Some(r) => SafetyChecker::floor_of_running(r.node()),
                None => SafetyChecker::floor_of_stopped(n.disk.persisted()),
            })
            .min()
            .unwrap_or(0);
        self.checker.prune_below(floor);
        for node in &mut self.nodes {
            node.applied = node.applied.split_off(&floor);
        }
    }

    /// Puts a packet on the network (or loses it).
    pub(super) fn transmit(&mut self, from: Endpoint, to: Endpoint, payload: PacketPayload) {
        self.stats.packets_sent += 1;
        self.hash
            .write(b"send")
            .write_u64(self.now.as_millis())
            .write_u64(trace::packet_digest(from, to, &payload));
        let reachable = self.network.can_reach(from, to);
        let fate = if reachable {
            self.network.transit(&mut self.rng)
        } else {
            None
        };
        let Some((mut latency, duplicate)) = fate else {
            self.stats.dropped += 1;
            if self.config.trace_capacity > 0 {
                let why = if reachable {
                    " (lost)"
                } else {
                    " (unreachable)"
                };
                let packet = Packet {
                    id: 0,
                    from,
                    to,
                    sent_at: self.now,
                    deliver_at: self.now,
                    payload,
                };
                self.trace_packet(Some(from), "drop", &packet, why);
            }
            return;
        };
        let slow_timeout_now = self.network.config.timeout_now_delay_rate;
        if slow_timeout_now > 0.0
            && matches!(payload, PacketPayload::Raft(Message::TimeoutNow(_)))
            && self.rng.chance(slow_timeout_now)
        {
            let (min, max) = self.network.config.timeout_now_delay;
            latency += self.rng.range_inclusive(min, max.max(min));
        }
        if let Some(extra) = duplicate {
            self.enqueue_packet(from, to, payload.clone(), extra);
        }
        self.enqueue_packet(from, to, payload, latency);
    }

    fn enqueue_packet(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        payload: PacketPayload,
        latency: u64,
    ) {
        let id = self.next_packet;
        self.next_packet += 1;
        let packet = Packet {
            id,
            from,
            to,
            sent_at: self.now,
            deliver_at: self.now + latency,
            payload,
        };
        self.schedule(packet.deliver_at, Event::Deliver(id));
        self.in_flight.insert(id, Box::new(packet));
    }

    /// Takes packet `id` off the network: `Ok` with its content if it can be
    /// delivered now, `Err` with what happened if it is lost.
    fn take_packet(
        &mut self,
        id: u64,
    ) -> Result<(Endpoint, Endpoint, PacketPayload, String), StepInfo> {
        let now = self.now;
        let Some(packet) = self.in_flight.remove(&id) else {
            // Dropped by hand while in flight.
            return Err(StepInfo {
                at: now,
                endpoint: None,
                kind: "deliver",
                text: self.describe(|| format!("packet {id} was dropped")),
            });
        };
        let text = if self.describe_steps {
            trace::describe(&packet)
        } else {
            String::new()
        };
        let up = match packet.to {
            Endpoint::Node(node) => self.replica(node).is_some(),
            Endpoint::Client(_) => true,
        };
        if !self.network.can_reach(packet.from, packet.to) || !up {
            self.stats.dropped += 1;
            let why = if up { " (link cut)" } else { " (node down)" };
            self.trace_packet(Some(packet.to), "drop", &packet, why);
            return Err(StepInfo {
                at: now,
                endpoint: Some(packet.to),
                kind: "drop",
                text: self.describe(|| format!("{text}{why}")),
            });
        }
        self.stats.delivered += 1;
        self.hash
            .write(b"deliver")
            .write_u64(now.as_millis())
            .write_u64(id);
        self.trace_packet(Some(packet.to), "deliver", &packet, "");
        let Packet {
            from, to, payload, ..
        } = *packet;
        Ok((from, to, payload, text))
    }

    fn deliver(&mut self, id: u64) -> StepInfo {
        let now = self.now;
        let (from, to, payload, text) = match self.take_packet(id) {
            Ok(packet) => packet,
            Err(info) => return info,
        };
        let info = StepInfo {
            at: now,
            endpoint: Some(to),
            kind: "deliver",
            text,
        };
        let Endpoint::Node(node) = to else {
            if let (
                Endpoint::Node(from),
                Endpoint::Client(client),
                PacketPayload::Response(response),
            ) = (from, to, payload)
                && let Some(state) = self.clients.get_mut(client as usize - 1)
            {
                state.clerk.handle_response(now, from, response);
                self.drain_clerk(client);
            }
            return info;
        };
        // A driver reads every message that is ready before it polls the
        // node: packets arriving at this node at this same instant go in one batch.
        let mut inputs = Vec::new();
        inputs.extend(replica_input(from, node, payload));
        while self.config.batch_deliveries {
            let next = match self.queue.first_key_value() {
                Some((&(at, _), &Event::Deliver(next))) if at == now => next,
                _ => break,
            };
            if self.in_flight.get(&next).is_none_or(|p| p.to != to) {
                break;
            }
            self.queue.pop_first();
            self.stats.events += 1;
            if let Ok((from, _, payload, _)) = self.take_packet(next) {
                inputs.extend(replica_input(from, node, payload));
            }
        }
        let _ = self.feed_many(node, inputs);
        info
    }
}

/// The replica input a packet to `node` becomes (nothing for a packet that
/// makes no sense there, such as a response addressed to a node).
fn replica_input(from: Endpoint, node: NodeId, payload: PacketPayload) -> Option<ReplicaInput> {
    match (from, payload) {
        (Endpoint::Node(from), PacketPayload::Raft(message)) => {
            Some(ReplicaInput::Peer(crate::raft::Envelope {
                from,
                to: node,
                message,
            }))
        }
        (Endpoint::Client(from), PacketPayload::Request(request)) => {
            Some(ReplicaInput::Client { from, request })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::{Sim, SimConfig, Workload};

    /// The safety checker keeps only what a replica may still write or
    /// apply: with a node down, everything after the snapshot on its disk;
    /// once it is back, a window of a few snapshot intervals, however long
    /// the run (the memory of a long run in the page, and of its forks).
    #[test]
    fn the_checker_forgets_what_no_replica_can_apply_again() {
        let snapshot_every = 100;
        let mut sim = Sim::new(SimConfig {
            nodes: 3,
            seed: 5,
            snapshot_every,
            ..SimConfig::default()
        });
        sim.set_workload(Workload {
            clients: 8,
            interval: 5,
            keys: 5,
            read_fraction: 0.0,
        })
        .expect("a valid workload");
        sim.run_for(10_000);
        sim.crash(3).expect("node 3 is up");
        sim.run_for(30_000);
        let while_down = sim.checker().remembered();
        sim.restart(3).expect("node 3 is down");
        sim.run_for(30_000);
        let after = sim.checker().remembered();
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());

        let committed = sim.checker().committed_index() as usize;
        // Each position is remembered at most once per map (entry written,
        // committed, applied, snapshot); the slowest replica may still apply
        // up to a snapshot interval and its lag behind the others.
        let bound = 6 * snapshot_every as usize;
        // Without forgetting, at least three maps hold every committed entry.
        assert!(
            3 * committed > 2 * bound,
            "only {committed} entries committed: the run is too short to tell"
        );
        assert!(
            after <= bound,
            "the checker remembers {after} positions of {committed} committed (bound {bound})"
        );
        // While node 3 was down (30 s of writes), the checker kept what it
        // would replay from its disk.
        assert!(
            while_down > bound && while_down > after,
            "with node 3 down the checker remembered {while_down} positions, after {after} (bound {bound})"
        );
    }
}
