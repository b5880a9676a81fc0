//! The step entry points: feeding the host an input ([`Host::handle`],
//! [`Host::transfer_leadership`]), and what its driver polls
//! ([`Host::poll_timeout`], [`Host::poll_output`]).

use super::*;

impl Host {
    /// Asks this host's replica of `group` to hand its leadership to host
    /// `to` (leadership transfer, §3.10 of the Raft dissertation), e.g. to
    /// spread the groups' leaders over the hosts. Refused unless it leads
    /// the group; what it sends comes out with the next drain.
    pub fn transfer_leadership(
        &mut self,
        now: Instant,
        group: GroupId,
        to: NodeId,
    ) -> Result<(), Rejected> {
        self.now = self.now.max(now);
        let now = self.now;
        self.wake(now, group);
        let Some(hosted) = self.groups.get_mut(&group) else {
            return Err(Rejected::NotLeader { leader_hint: None });
        };
        hosted.node.handle(now, Input::TransferLeadership(to))?;
        self.touched.push(group);
        Ok(())
    }

    /// When the host next needs [`HostInput::Timeout`]: the earliest group
    /// deadline or poll, rounded up to a multiple of the tick. Valid once
    /// the outputs are drained.
    pub fn poll_timeout(&self) -> Instant {
        let mut first = self
            .timers
            .first()
            .map_or(Instant::NEVER, |(t, _)| *t)
            .min(self.next_poll);
        if self.config.hibernate_after_ms > 0 {
            // Host liveness: send `Alive`, and suspect silent peers.
            first = first.min(Instant(
                self.now.as_millis() + self.config.raft.heartbeat_interval,
            ));
        }
        if first == Instant::NEVER {
            return first;
        }
        let tick = self.config.tick_ms;
        Instant(first.as_millis().div_ceil(tick).saturating_mul(tick))
    }

    /// The next output, or `None` until the next input. Everything the
    /// inputs fed since the last drain produced comes out together: one
    /// write, one batch per destination.
    pub fn poll_output(&mut self) -> Option<HostOutput> {
        if self.outputs.is_empty() {
            self.flush();
        }
        self.outputs.pop_front()
    }

    /// Feeds one input. Bad input from peers and clients is dropped,
    /// counted or answered; only driver misuse is an error. Several inputs
    /// may be fed before draining [`Host::poll_output`]: their writes and
    /// messages are then batched together.
    pub fn handle(&mut self, now: Instant, input: HostInput) -> Result<(), HostRejected> {
        self.now = self.now.max(now);
        let now = self.now;
        match input {
            HostInput::Timeout => {
                while let Some(&(deadline, group)) = self.timers.first() {
                    if deadline > now {
                        break;
                    }
                    self.timers.pop_first();
                    let Some(hosted) = self.groups.get_mut(&group) else {
                        continue;
                    };
                    hosted.deadline = Instant::NEVER;
                    let due = if hosted.hibernating {
                        Instant::NEVER
                    } else {
                        hosted.node.poll_timeout()
                    };
                    if due <= now {
                        let _ = hosted.node.handle(now, Input::Timeout);
                        hosted.touch(group, &mut self.touched);
                    } else if due != Instant::NEVER {
                        // The registration was early (the node pushed its
                        // deadline back since): register the real one.
                        hosted.deadline = due;
                        self.timers.insert((due, group));
                    }
                }
                if now >= self.next_poll {
                    self.next_poll = Instant(now.as_millis() + self.config.poll_ms);
                    self.poll_migrations(now);
                    self.exports.drop_idle(now);
                }
                if self.config.hibernate_after_ms > 0 {
                    self.maybe_hibernate(now);
                    self.check_peers(now);
                }
            }
            HostInput::Batch(batch) => {
                self.stats.batches_received += 1;
                // A host's messages to itself never leave it (`flush`
                // handles them): a batch claiming to come from here is forged.
                if batch.to != self.config.id || batch.from == self.config.id {
                    self.stats.misaddressed += 1;
                } else {
                    if let Some((seen, _)) = self.peers.get_mut(&batch.from) {
                        *seen = now;
                    }
                    for message in batch.messages {
                        self.handle_message(now, batch.from, message);
                    }
                }
            }
            HostInput::Client { from, request } => self.handle_client(now, from, request),
            HostInput::Persisted(seq) => {
                let last = self.next_seq - 1;
                if seq > last {
                    return Err(HostRejected::UnknownWrite { seq, last });
                }
                let mut acks = core::mem::take(&mut self.acks);
                while let Some(&(host_seq, group, group_seq)) = self.unacked.front() {
                    if host_seq > seq {
                        break;
                    }
                    self.unacked.pop_front();
                    acks.push((group, group_seq));
                }
                // A group's seqs grow: after sorting, its last pair holds
                // the highest, the one to acknowledge.
                acks.sort_unstable();
                for (i, &(group, group_seq)) in acks.iter().enumerate() {
                    if acks.get(i + 1).is_some_and(|(next, _)| *next == group) {
                        continue;
                    }
                    if let Some(hosted) = self.groups.get_mut(&group) {
                        let _ = hosted.node.handle(now, Input::Persisted(group_seq));
                        // A leader's own acknowledgement usually leaves
                        // nothing to drain (no quorum yet): skip the drain.
                        if hosted.node.has_pending_output() {
                            hosted.touch(group, &mut self.touched);
                        }
                    }
                }
                acks.clear();
                self.acks = acks;
            }
        }
        Ok(())
    }
}
