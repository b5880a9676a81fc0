//! A lockstep mesh of hosts for batching tests and benchmarks.

use super::*;
use alloc::collections::VecDeque;

/// Hosts wired to each other with no latency, no loss and instant fsyncs,
/// stepped in lockstep on a virtual clock: the smallest driver of
/// [`Host`], for tests of batching and coalescing and for benchmarks.
/// Every step is checked against the host contract: at most one write and
/// at most one batch per destination per input.
pub struct Mesh {
    /// The hosts, by id.
    pub hosts: BTreeMap<NodeId, Host>,
    now: Instant,
    queue: Vec<HostBatch>,
    /// The batches being delivered (swapped with `queue`, to keep both
    /// vectors' capacity).
    delivering: Vec<HostBatch>,
    /// The inputs of the host being stepped, and its outputs (kept for
    /// their capacity).
    inputs: Vec<HostInput>,
    outputs: VecDeque<HostOutput>,
    /// Batches delivered, by (from, to).
    pub batches: BTreeMap<(NodeId, NodeId), u64>,
    /// Messages inside the delivered batches.
    pub messages: u64,
    /// Of those, Raft messages.
    pub raft_messages: u64,
    /// Host writes made durable.
    pub writes: u64,
    /// The largest number of groups one host write carried.
    pub widest_write: usize,
    /// Contract breaches seen (more than one write or one batch per destination in a step).
    pub breaches: Vec<String>,
    /// Hosts cut off from the others: batches to them are dropped.
    pub isolated: BTreeSet<NodeId>,
    /// Replies produced while delivering batches or firing timers (those
    /// of [`Mesh::feed`] are returned by it instead), with the host.
    pub late_replies: Vec<(NodeId, HostReply)>,
}

impl Mesh {
    /// Hosts built from these configurations, at time 0.
    pub fn new(configs: Vec<HostConfig>, seed: u64) -> Result<Mesh, HostError> {
        let mut hosts = BTreeMap::new();
        for config in configs {
            let id = config.id;
            hosts.insert(id, Host::new(config, seed ^ id, Instant::ZERO)?);
        }
        Ok(Mesh {
            hosts,
            now: Instant::ZERO,
            queue: Vec::new(),
            delivering: Vec::new(),
            inputs: Vec::new(),
            outputs: VecDeque::new(),
            batches: BTreeMap::new(),
            messages: 0,
            raft_messages: 0,
            writes: 0,
            widest_write: 0,
            breaches: Vec::new(),
            isolated: BTreeSet::new(),
            late_replies: Vec::new(),
        })
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Feeds one input to host `id` and executes its outputs: writes are
    /// durable at once, batches queued for delivery, replies returned.
    pub fn feed(&mut self, id: NodeId, input: HostInput) -> Vec<HostReply> {
        self.feed_many(id, vec![input])
    }

    /// Feeds several inputs to host `id` before draining its outputs once
    /// (a driver that read several packets in one go).
    pub fn feed_many(&mut self, id: NodeId, inputs: Vec<HostInput>) -> Vec<HostReply> {
        let start = self.late_replies.len();
        self.step(id, inputs);
        self.late_replies
            .drain(start..)
            .map(|(_, reply)| reply)
            .collect()
    }

    /// Feeds inputs to host `id`, executes its outputs (and the
    /// acknowledgement of its write, and so on), and adds its replies to
    /// the late replies.
    fn step(&mut self, id: NodeId, inputs: impl IntoIterator<Item = HostInput>) {
        let Some(host) = self.hosts.get_mut(&id) else {
            return;
        };
        for input in inputs {
            if host.handle(self.now, input).is_err() {
                self.breaches
                    .push(format!("host {id} refused a driver input"));
            }
        }
        // At most one batch per destination: a step reaches few hosts.
        let mut destinations: Vec<NodeId> = Vec::new();
        let mut outputs = core::mem::take(&mut self.outputs);
        loop {
            destinations.clear();
            let mut persisted = None;
            let mut writes = 0;
            host.drain_outputs(&mut outputs);
            while let Some(output) = outputs.pop_front() {
                match output {
                    HostOutput::Persist(write) => {
                        writes += 1;
                        self.writes += 1;
                        self.widest_write = self.widest_write.max(write.writes.len());
                        persisted = Some(write.seq);
                    }
                    HostOutput::Send(batch) => {
                        if destinations.contains(&batch.to) {
                            self.breaches.push(format!(
                                "host {id} sent two batches to {} in one step",
                                batch.to
                            ));
                        } else {
                            destinations.push(batch.to);
                        }
                        self.queue.push(batch);
                    }
                    HostOutput::Reply { reply, .. } => self.late_replies.push((id, reply)),
                    HostOutput::Retired(_) => {}
                }
            }
            if writes > 1 {
                self.breaches
                    .push(format!("host {id} emitted {writes} writes in one step"));
            }
            let Some(seq) = persisted else {
                break;
            };
            if host.handle(self.now, HostInput::Persisted(seq)).is_err() {
                self.breaches
                    .push(format!("host {id} refused a driver input"));
            }
        }
        self.outputs = outputs;
    }

    /// Delivers every queued batch (and what they cause) until none is
    /// left, in waves: each host gets every batch of the wave sent to it
    /// in one step, in the order they were sent, as a server's loop reads
    /// every frame available before stepping its host.
    pub fn deliver(&mut self) {
        let mut rounds = 0;
        while !self.queue.is_empty() && rounds < 1000 {
            rounds += 1;
            core::mem::swap(&mut self.queue, &mut self.delivering);
            let mut delivering = core::mem::take(&mut self.delivering);
            let mut inputs = core::mem::take(&mut self.inputs);
            // Stable: each host's batches stay in the order they were sent.
            delivering.sort_by_key(|batch| batch.to);
            let mut batches = delivering.drain(..).peekable();
            while let Some(first) = batches.next() {
                let to = first.to;
                let rest = core::iter::from_fn(|| batches.next_if(|b| b.to == to));
                for batch in core::iter::once(first).chain(rest) {
                    if self.isolated.contains(&batch.to) || self.isolated.contains(&batch.from) {
                        continue;
                    }
                    *self.batches.entry((batch.from, batch.to)).or_default() += 1;
                    self.messages += batch.messages.len() as u64;
                    self.raft_messages += batch
                        .messages
                        .iter()
                        .filter(|m| matches!(m, HostMessage::Raft { .. }))
                        .count() as u64;
                    inputs.push(HostInput::Batch(batch));
                }
                if !inputs.is_empty() {
                    self.step(to, inputs.drain(..));
                }
            }
            drop(batches);
            self.delivering = delivering;
            self.inputs = inputs;
        }
    }

    /// Advances the clock to `until`, firing host timers as they come due
    /// and delivering everything at once.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.deliver();
            let next = self
                .hosts
                .iter()
                .map(|(id, h)| (h.poll_timeout(), *id))
                .min();
            match next {
                Some((at, id)) if at <= until => {
                    self.now = self.now.max(at);
                    self.step(id, [HostInput::Timeout]);
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// The client replies that delivered batches and timers produced since
    /// the last call (the [`Mesh::late_replies`], without their hosts).
    pub fn take_replies(&mut self) -> Vec<HostReply> {
        self.late_replies
            .drain(..)
            .map(|(_, reply)| reply)
            .collect()
    }

    /// Total batches delivered.
    pub fn total_batches(&self) -> u64 {
        self.batches.values().sum()
    }
}
