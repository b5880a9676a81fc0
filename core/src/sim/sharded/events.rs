//! Executing events: batches, client requests and replies, fsyncs; feeding
//! a host and carrying out its outputs under the checkers; the migration
//! trace.

use super::*;

/// What the trace compares before and after an input: each shard group's
/// configuration number and shard statuses on one host.
type ShardView = Vec<(GroupId, u64, Vec<(u32, ShardStatus)>)>;

pub(super) fn shard_view(host: &Host) -> ShardView {
    host.nodes()
        .filter_map(|(g, _)| {
            let kv = host.kv(g)?;
            let shards = kv.shards().iter().map(|(s, sh)| (*s, sh.status)).collect();
            Some((g, kv.config().num, shards))
        })
        .collect()
}

pub(super) fn status_text(status: Option<ShardStatus>) -> String {
    match status {
        None => String::from("gone"),
        Some(ShardStatus::Serving) => String::from("serving"),
        Some(ShardStatus::Pulling { from }) => format!("pulling from {from}"),
        Some(ShardStatus::Sending { to }) => format!("sending to {to}"),
    }
}

impl ShardedSim {
    pub(super) fn handle_event(&mut self, event: Event) {
        match event {
            Event::Batch(batch) => {
                self.delivered += 1;
                self.shard_parts_delivered += batch
                    .messages
                    .iter()
                    .filter(|m| matches!(m, HostMessage::ShardPushPart { .. }))
                    .count() as u64;
                if self.trace.is_some() && self.is_up(batch.to) {
                    for m in &batch.messages {
                        let line = match m {
                            HostMessage::ShardPush {
                                from_group,
                                to_group,
                                config_num,
                                shard,
                                data,
                            } => format!(
                                "{} -> {}: push shard {shard} of config {config_num}, group {from_group} to {to_group} ({} bytes)",
                                batch.from,
                                batch.to,
                                data.len()
                            ),
                            HostMessage::ShardAck {
                                group,
                                config_num,
                                shard,
                            } => format!(
                                "{} -> {}: ack shard {shard} of config {config_num} to group {group}",
                                batch.from, batch.to
                            ),
                            _ => continue,
                        };
                        self.log(line);
                    }
                }
                if self.is_up(batch.to) {
                    self.note_batch(&batch);
                }
                let to = batch.to;
                self.feed(to, HostInput::Batch(batch));
            }
            Event::Request { to, from, request } => {
                if self.is_up(to) {
                    self.note_request(from, to, &request);
                }
                self.feed(to, HostInput::Client { from, request })
            }
            Event::Reply { clerk, from, reply } => {
                self.note_reply(clerk, from, &reply);
                if clerk == exports::EXPORTER {
                    self.export_reply(reply);
                    return;
                }
                let now = self.now;
                self.clients[clerk as usize]
                    .clerk
                    .handle_reply(now, from, reply);
                self.drain_clerk(clerk);
            }
            Event::Synced { host, epoch, seq } => {
                let Some(slot) = self.slots.get_mut(&host) else {
                    return;
                };
                if let Some((acked, next)) = slot.disk.synced(epoch, seq) {
                    if let Some(next) = next {
                        let delay = self
                            .rng
                            .range_inclusive(self.config.fsync_ms.0, self.config.fsync_ms.1);
                        self.schedule(
                            delay,
                            Event::Synced {
                                host,
                                epoch,
                                seq: next,
                            },
                        );
                    }
                    self.feed(host, HostInput::Persisted(acked));
                }
            }
        }
    }

    /// Feeds one input to host `id` (dropped if it is down), executes its
    /// outputs and runs the checkers of its groups.
    pub(super) fn feed(&mut self, id: NodeId, input: HostInput) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        // The host reads its own clock.
        let now = slot.clock.local(self.now);
        let Some(host) = slot.host.as_mut() else {
            return;
        };
        let before = (self.trace.is_some() || self.journal.is_some()).then(|| shard_view(host));
        let roles_before = self.journal.is_some().then(|| super::journal::roles(host));
        for (g, node) in host.nodes() {
            if let Some(checker) = self.checkers.get_mut(&g) {
                checker.before(node);
            }
        }
        if let Err(e) = host.handle(now, input) {
            self.violations
                .push(format!("host {id} refused a driver input: {e:?}"));
        }
        let mut outputs = Vec::new();
        while let Some(output) = host.poll_output() {
            outputs.push(output);
        }
        let applied = host.drain_applied();
        for output in outputs {
            match output {
                HostOutput::Persist(write) => {
                    let host = self.slots[&id].host.as_ref().expect("up");
                    for (g, w) in &write.writes {
                        if let (Some(checker), Some(node)) =
                            (self.checkers.get_mut(g), host.node(*g))
                        {
                            checker.observe_write(node, w);
                        }
                    }
                    let slot = self.slots.get_mut(&id).expect("exists");
                    if let Some(seq) = slot.disk.write(write) {
                        let epoch = slot.disk.pending.epoch;
                        let delay = self
                            .rng
                            .range_inclusive(self.config.fsync_ms.0, self.config.fsync_ms.1);
                        self.schedule(
                            delay,
                            Event::Synced {
                                host: id,
                                epoch,
                                seq,
                            },
                        );
                    }
                }
                HostOutput::Retired(group) => {
                    let slot = self.slots.get_mut(&id).expect("exists");
                    slot.disk.retire(group);
                    self.log(format!("host {id} retires its replica of group {group}"));
                }
                HostOutput::Send(batch) => {
                    for message in &batch.messages {
                        if let HostMessage::Raft { group, envelope } = message
                            && let Some(checker) = self.checkers.get_mut(group)
                        {
                            checker.observe_send(envelope);
                        }
                    }
                    let (from, to) = (Endpoint::Node(batch.from), Endpoint::Node(batch.to));
                    if !self.network.can_reach(from, to) {
                        continue;
                    }
                    if let Some((first, second)) = self.network.transit(&mut self.rng) {
                        if let Some(second) = second {
                            self.schedule(second, Event::Batch(batch.clone()));
                        }
                        self.schedule(first, Event::Batch(batch));
                    }
                }
                HostOutput::Reply { to, reply } => {
                    let (from, dest) = (Endpoint::Node(id), Endpoint::Client(to));
                    if !self.network.can_reach(from, dest) {
                        continue;
                    }
                    if let Some((first, _)) = self.network.transit(&mut self.rng) {
                        self.schedule(
                            first,
                            Event::Reply {
                                clerk: to,
                                from: id,
                                reply,
                            },
                        );
                    }
                }
            }
        }
        let mut by_group: BTreeMap<GroupId, Vec<crate::kv::AppliedRecord>> = BTreeMap::new();
        for (g, record) in applied {
            by_group.entry(g).or_default().push(record);
        }
        for (g, records) in by_group {
            if let Some(checker) = self.checkers.get_mut(&g) {
                checker.observe_applied(id, &records);
            }
        }
        let host = self.slots[&id].host.as_ref().expect("up");
        for (g, node) in host.nodes() {
            if let Some(checker) = self.checkers.get_mut(&g) {
                checker.after_event(core::iter::once(node));
            }
        }
        if let Some(roles) = roles_before {
            self.note_roles(id, &roles);
        }
        self.feeds += 1;
        if self.feeds % PRUNE_EVERY == 0 {
            self.prune_checkers();
        }
        let host = self.slots[&id].host.as_ref().expect("up");
        if let Some(before) = before {
            let after = shard_view(host);
            for ((g, num_before, old), (_, num, new)) in before.iter().zip(&after) {
                let mut changes = Vec::new();
                let shards: BTreeSet<u32> = old.iter().chain(new.iter()).map(|(s, _)| *s).collect();
                for s in shards {
                    let was = old.iter().find(|(x, _)| *x == s).map(|(_, st)| *st);
                    let is = new.iter().find(|(x, _)| *x == s).map(|(_, st)| *st);
                    if was != is {
                        changes.push(format!("{s} {}", status_text(is)));
                    }
                }
                if num_before != num || !changes.is_empty() {
                    let line = format!("host {id} group {g} config {num}: {}", changes.join(", "));
                    self.note(Some(id), Some(*g), "shard", || line.clone());
                    self.log(line);
                }
            }
        }
    }

    pub(super) fn drain_clerk(&mut self, index: u64) {
        let now = self.now;
        while let Some(output) = self.clients[index as usize].clerk.poll_output() {
            match output {
                ShardClerkOutput::Send { to, request } => {
                    let (from, dest) = (Endpoint::Client(index), Endpoint::Node(to));
                    if !self.network.can_reach(from, dest) {
                        continue;
                    }
                    if let Some((first, second)) = self.network.transit(&mut self.rng) {
                        if let Some(second) = second {
                            let request = request.clone();
                            self.schedule(
                                second,
                                Event::Request {
                                    to,
                                    from: index,
                                    request,
                                },
                            );
                        }
                        self.schedule(
                            first,
                            Event::Request {
                                to,
                                from: index,
                                request,
                            },
                        );
                    }
                }
                done => {
                    if index == 0 {
                        self.admin_result = Some(done);
                    } else {
                        self.complete_workload(index, done);
                    }
                }
            }
        }
        if index != 0 && self.workload && !self.clients[index as usize].clerk.is_busy() {
            self.next_workload_op(index, now);
        }
    }
}

impl ShardedSim {
    /// Makes each group's checker forget the entries below the lowest index
    /// any of its replicas could still write or apply: on a running host,
    /// the lower of its snapshot and its applied index; otherwise the
    /// snapshot on its disk, if it has the group there (it replays the
    /// entries after it when it restarts). A host with nothing of the group,
    /// or that retired it, can only join it again from a leader, which sends
    /// nothing below its own snapshot. Without this the checkers keep every entry of the run
    /// (the memory of a long run in the page, and of each of its forks).
    pub(super) fn prune_checkers(&mut self) {
        for (&group, checker) in &mut self.checkers {
            let floor = self
                .slots
                .values()
                .filter_map(|slot| {
                    if let Some(node) = slot.host.as_ref().and_then(|host| host.node(group)) {
                        return Some(SafetyChecker::floor_of_running(node));
                    }
                    if slot.disk.retired.contains(&group) {
                        return None;
                    }
                    slot.disk
                        .durable
                        .get(&group)
                        .map(SafetyChecker::floor_of_stopped)
                })
                .min()
                .unwrap_or(0);
            checker.prune_below(floor);
        }
    }
}
