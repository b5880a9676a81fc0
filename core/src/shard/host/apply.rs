//! Draining the groups touched by an input: writes, messages, applied
//! entries and snapshots, assembled into the host's outputs (the messages
//! gathered per destination in an [`Outbox`]).

use super::*;

/// The messages of one step by destination host: a short vector sorted by
/// host id (a step reaches a few hosts), cheaper than a map filled and
/// emptied at every step. Batches leave in host id order.
#[derive(Clone, Debug, Default)]
pub(super) struct Outbox(pub(super) Vec<(NodeId, Vec<HostMessage>)>);

impl Outbox {
    /// The messages to `host`, empty at first.
    pub(super) fn messages_to(&mut self, host: NodeId) -> &mut Vec<HostMessage> {
        self.messages_to_sized(host, 0)
    }

    /// The messages to `host`, with room for `capacity` if none is there yet.
    pub(super) fn messages_to_sized(
        &mut self,
        host: NodeId,
        capacity: usize,
    ) -> &mut Vec<HostMessage> {
        let at = match self.0.binary_search_by_key(&host, |(h, _)| *h) {
            Ok(at) => at,
            Err(at) => {
                self.0.insert(at, (host, Vec::with_capacity(capacity)));
                at
            }
        };
        &mut self.0[at].1
    }

    /// Takes the messages to `host`, if any.
    pub(super) fn remove(&mut self, host: NodeId) -> Option<Vec<HostMessage>> {
        let at = self.0.binary_search_by_key(&host, |(h, _)| *h).ok()?;
        Some(self.0.remove(at).1)
    }
}

impl Host {
    /// Every output at once, appended to `into`: what calling
    /// [`Host::poll_output`] until `None` would return, in the same order,
    /// with one flush instead of two (the last `poll_output` flushes again
    /// to find nothing). When `into` is empty the host's queue is swapped
    /// with it, keeping both buffers' capacity.
    pub fn drain_outputs(&mut self, into: &mut VecDeque<HostOutput>) {
        if self.outputs.is_empty() {
            self.flush();
        }
        crate::raft::move_queue(&mut self.outputs, into);
    }

    /// Drains every touched group, then turns what they produced into
    /// outputs: one write, one batch per destination, the replies.
    pub(super) fn flush(&mut self) {
        // Messages to this host itself (a controller server asking itself,
        // a group pushing to a co-located replica) are handled at once;
        // each round can only answer the previous one, so this ends.
        for _ in 0..4 {
            while !self.touched.is_empty() {
                let mut touched = core::mem::take(&mut self.touched);
                touched.sort_unstable();
                touched.dedup();
                // One write per group at most, and as many messages per
                // destination in the usual step: sized once at the first
                // push, not grown (and nothing reserved for a quiet step).
                self.step_groups = touched.len();
                for &group in &touched {
                    self.drain_group(group);
                }
                // Keep the allocation for the next step.
                touched.clear();
                if self.touched.is_empty() {
                    self.touched = touched;
                }
            }
            let Some(local) = self.outbox.remove(self.config.id) else {
                break;
            };
            let (id, now) = (self.config.id, self.now);
            for message in local {
                self.handle_message(now, id, message);
            }
        }
        if !self.writes.is_empty() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let writes = core::mem::take(&mut self.writes);
            // Every group's write seqs: `Persisted` acknowledges the last of each.
            let seqs = writes.iter().map(|(group, write)| (seq, *group, write.seq));
            self.unacked.extend(seqs);
            self.outputs
                .push_back(HostOutput::Persist(HostWrite { seq, writes }));
        }
        // After the write that may hold the retired groups' last entries.
        for group in core::mem::take(&mut self.newly_retired) {
            self.outputs.push_back(HostOutput::Retired(group));
        }
        for (to, messages) in self.outbox.0.drain(..) {
            if to == self.config.id {
                continue;
            }
            if let Some((_, sent)) = self.peers.get_mut(&to) {
                *sent = self.now;
            }
            self.stats.batches_sent += 1;
            self.outputs.push_back(HostOutput::Send(HostBatch {
                from: self.config.id,
                to,
                messages,
            }));
        }
        // Drained, not taken: the vector keeps its capacity for the next step.
        self.outputs.extend(
            self.replies
                .drain(..)
                .map(|(to, reply)| HostOutput::Reply { to, reply }),
        );
    }

    pub(super) fn drain_group(&mut self, group: GroupId) {
        let Some(hosted) = self.groups.get_mut(&group) else {
            return;
        };
        hosted.queued = false;
        let record = self.config.record_applied;
        // All of the node's outputs at once (one flush, no call per
        // output); again only if executing them fed the node (a compaction).
        // Borrowed beside the group (disjoint fields), not taken and put back.
        let outputs = &mut self.node_outputs;
        let mut again = true;
        while again {
            again = false;
            hosted.node.drain_outputs(outputs);
            while let Some(output) = outputs.pop_front() {
                match output {
                    Output::Persist(write) => {
                        if self.writes.capacity() == 0 {
                            self.writes.reserve(self.step_groups);
                        }
                        self.writes.push((group, write))
                    }
                    Output::Send(envelope) => self
                        .outbox
                        .messages_to_sized(envelope.to, self.step_groups)
                        .push(HostMessage::Raft { group, envelope }),
                    Output::Apply(mut entries) => {
                        let last = entries.last().map(|e| e.index);
                        for entry in entries.drain(..) {
                            apply_entry(hosted, &entry, &mut self.replies);
                            if record {
                                self.applied.push((
                                    group,
                                    AppliedRecord::Entry {
                                        index: entry.index,
                                        term: entry.term,
                                        digest: entry.payload.digest(),
                                    },
                                ));
                            }
                        }
                        hosted.node.recycle_applied(entries);
                        if let Some(last) = last
                            && self.config.snapshot_every > 0
                            && last
                                >= hosted.node.log().snapshot().index + self.config.snapshot_every
                        {
                            let applied = record.then_some(&mut self.applied);
                            compact_at(hosted, group, last, applied);
                            again = true;
                        }
                    }
                    Output::ApplySnapshot(snapshot) => {
                        // The leader made it with the same code: a snapshot that
                        // does not decode leaves the state as it was (and the
                        // checkers' digests then tell the replicas apart).
                        if let Ok(machine) = restore(&hosted.machine, snapshot.data.clone()) {
                            hosted.machine = machine;
                        }
                        if record {
                            self.applied.push((
                                group,
                                AppliedRecord::Snapshot {
                                    index: snapshot.meta.index,
                                    term: snapshot.meta.term,
                                    digest: crate::kv::replica::digest(&snapshot.data),
                                },
                            ));
                        }
                    }
                    Output::ReadReady { id, index } => {
                        if let Some(waiter) = hosted.reads.remove(&id) {
                            hosted.ready_reads.push((index, waiter));
                        }
                    }
                    Output::ReadFailed { id, leader_hint } => {
                        if let Some(waiter) = hosted.reads.remove(&id) {
                            self.replies.push((
                                waiter.to,
                                failed(
                                    waiter.what.reply_kind(),
                                    waiter.id,
                                    KvError::NotLeader { leader_hint },
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if !hosted.ready_reads.is_empty() {
            serve_ready_reads(
                self.now,
                group,
                hosted,
                &mut self.replies,
                &mut self.stats,
                &mut self.exports,
            );
        }
        if !hosted.node.is_leader() && !hosted.waiters.is_empty() {
            let leader_hint = hosted.node.leader();
            for (_, waiter) in core::mem::take(&mut hosted.waiters) {
                self.replies.push((
                    waiter.to,
                    failed(waiter.kind, waiter.id, KvError::NotLeader { leader_hint }),
                ));
            }
        }
        let log = hosted.node.log();
        let mark = (log.last_index(), log.commit(), hosted.node.term());
        if mark != hosted.activity.0 {
            hosted.activity = (mark, hosted.node.now());
            if !hosted.hibernate_acks.is_empty() {
                hosted.hibernate_acks.clear();
            }
        } else if hosted.hibernating
            || hosted.node.now().saturating_since(hosted.activity.1)
                >= self.config.raft.election_timeout_min
        {
            // Quiet for an election timeout: the node's queues give their
            // memory back (a busy group keeps them, to spare an allocation
            // per step).
            hosted.node.release_buffers();
        }
        let deadline = if hosted.hibernating {
            Instant::NEVER
        } else {
            hosted.node.poll_timeout()
        };
        // Lazy re-arming: a registration earlier than the node's deadline
        // stays (the timeout handler re-registers it when it comes due);
        // only an earlier deadline, or a first one, moves it. A follower
        // pushes its election deadline back on every append: this spares
        // the timer set a removal and an insertion per message.
        if deadline < hosted.deadline {
            if hosted.deadline != Instant::NEVER {
                self.timers.remove(&(hosted.deadline, group));
            }
            hosted.deadline = deadline;
            self.timers.insert((deadline, group));
        }
        if !self.push_senders.is_empty()
            && self
                .push_senders
                .range((group, 0, 0)..=(group, u64::MAX, ShardId::MAX))
                .next()
                .is_some()
        {
            self.ack_inserted(group);
        }
    }
}

/// Snapshots `hosted` at `last`, which is applied and above its snapshot
/// (recorded in `applied` when given).
fn compact_at(
    hosted: &mut Hosted,
    group: GroupId,
    last: LogIndex,
    applied: Option<&mut Vec<(GroupId, AppliedRecord)>>,
) {
    let data = snapshot(&hosted.machine);
    if let Some(applied) = applied {
        applied.push((
            group,
            AppliedRecord::Snapshot {
                index: last,
                term: hosted.node.log().term_at(last).unwrap_or(0),
                digest: crate::kv::replica::digest(&data),
            },
        ));
    }
    let now = hosted.node.now();
    // Cannot fail: `last` is applied and above the snapshot.
    let _ = hosted
        .node
        .handle(now, Input::Compact { index: last, data });
}

impl Host {
    /// Snapshots this host's replica of `group` now, at its applied index,
    /// as it does by itself every `snapshot_every` applied entries: for a
    /// driver whose storage cannot free old log because a group that went
    /// quiet keeps a long tail of entries there (the multi-group log's
    /// purge reports it). Does nothing, and returns `false`, for a group
    /// not held here or with nothing applied since its snapshot; the
    /// snapshot's write comes out with the next drain.
    pub fn snapshot_group(&mut self, now: Instant, group: GroupId) -> bool {
        self.now = self.now.max(now);
        // Apply what the group has pending, so that its state machine is
        // at its applied index.
        self.drain_group(group);
        let record = self.config.record_applied;
        let Some(hosted) = self.groups.get_mut(&group) else {
            return false;
        };
        let applied = hosted.node.log().applied();
        if applied <= hosted.node.log().snapshot().index {
            return false;
        }
        compact_at(hosted, group, applied, record.then_some(&mut self.applied));
        self.touched.push(group);
        true
    }
}

#[inline]
pub(super) fn apply_entry(
    hosted: &mut Hosted,
    entry: &Entry,
    replies: &mut Vec<(ReplyTo, HostReply)>,
) {
    let reply = match &mut hosted.machine {
        Machine::Controller(c) => c
            .apply(entry.index, &entry.payload)
            .map(|r| (ReplyKind::Controller, Ok(r), None)),
        Machine::Kv(kv) => match kv.apply(entry.index, &entry.payload) {
            Some(GroupApplied::Client(result)) => Some((ReplyKind::Kv, Err(()), Some(result))),
            _ => None,
        },
    };
    let Some(waiter) = hosted.waiters.remove(&entry.index) else {
        return;
    };
    let reply = match reply {
        Some(_) if waiter.term != entry.term => failed(
            waiter.kind,
            waiter.id,
            KvError::NotLeader {
                leader_hint: hosted.node.leader(),
            },
        ),
        Some((ReplyKind::Controller, Ok(r), _)) => HostReply::Controller {
            id: waiter.id,
            result: Ok(r),
        },
        Some((_, _, Some(result))) => HostReply::Kv {
            id: waiter.id,
            result,
        },
        // Our proposal's index holds something else: ours was lost.
        _ => failed(
            waiter.kind,
            waiter.id,
            KvError::NotLeader {
                leader_hint: hosted.node.leader(),
            },
        ),
    };
    replies.push((waiter.to, reply));
}

/// Answers the follower reads whose read index this replica has applied:
/// the ownership check and the read both look at the state machine at
/// that point or later, never at a configuration older than the read
/// index (a shard that moved away before the read began is refused with
/// [`KvError::WrongGroup`], as a get through the log would be).
///
/// Linearizable: the read index is at least the group's commit index at a
/// moment after the read was invoked, so the state read holds every write
/// of this group completed before then; and if the shard is still served
/// here in that state, no other group can have completed a write on it
/// before the read began, since a new owner writes only after inserting
/// data that this group exported once it had applied the configuration
/// that moved the shard, an entry the read index would then cover.
fn serve_ready_reads(
    now: Instant,
    group: GroupId,
    hosted: &mut Hosted,
    replies: &mut Vec<(ReplyTo, HostReply)>,
    stats: &mut HostStats,
    exports: &mut HeldExports,
) {
    if hosted.ready_reads.is_empty() {
        return;
    }
    let applied = hosted.node.log().applied();
    let is_leader = hosted.node.is_leader();
    let (due, waiting): (Vec<_>, Vec<_>) = core::mem::take(&mut hosted.ready_reads)
        .into_iter()
        .partition(|(index, _)| *index <= applied);
    hosted.ready_reads = waiting;
    for (_, waiter) in due {
        let reply = match waiter.what {
            ReadWhat::Key(key) => {
                let result = match &hosted.machine {
                    Machine::Kv(kv) => kv.read(&key),
                    Machine::Controller(_) => Err(KvError::WrongGroup),
                };
                if result.is_ok() && !is_leader {
                    stats.follower_reads_served += 1;
                    *stats.follower_reads_by_group.entry(group).or_insert(0) += 1;
                }
                HostReply::Kv {
                    id: waiter.id,
                    result,
                }
            }
            ReadWhat::Export(shard) => {
                // The same ownership check as a read of a key in the shard.
                let taken = match &hosted.machine {
                    Machine::Kv(kv) => match kv.shards().get(&shard).map(|s| s.status) {
                        Some(ShardStatus::Serving) => {
                            Ok((kv.config().num, kv.export(shard).unwrap_or_default()))
                        }
                        Some(ShardStatus::Pulling { .. }) => Err(KvError::NotArrived),
                        _ => Err(KvError::WrongGroup),
                    },
                    Machine::Controller(_) => Err(KvError::WrongGroup),
                };
                let result = taken
                    .map(|(config, data)| exports.take(now, (group, shard, applied), config, data));
                HostReply::Export {
                    id: waiter.id,
                    result,
                }
            }
        };
        replies.push((waiter.to, reply));
    }
}

pub(super) fn snapshot(machine: &Machine) -> Bytes {
    match machine {
        Machine::Controller(c) => c.snapshot(),
        Machine::Kv(kv) => kv.snapshot(),
    }
}

pub(super) fn restore(like: &Machine, data: Bytes) -> Result<Machine, DecodeError> {
    Ok(match like {
        Machine::Controller(_) => Machine::Controller(Controller::restore(data)?),
        Machine::Kv(kv) => Machine::Kv(kv.restore(data)?),
    })
}
