//! Retirement of groups that left (see "Retirement" in the module
//! documentation of `host`).

use super::*;

impl Host {
    /// The poll timer: replicas of groups that left and hold no shard ask
    /// controller server `server` to retire their group, once they have
    /// been so for [`HostConfig::retire_after_ms`].
    pub(super) fn poll_retirement(&mut self, now: Instant, server: NodeId) {
        let after = self.config.retire_after_ms;
        if after == 0 {
            return;
        }
        let every = (after / 10).max(self.config.poll_ms);
        let mut asks = Vec::new();
        for (group, hosted) in self.groups.iter_mut() {
            let Machine::Kv(kv) = &hosted.machine else {
                continue;
            };
            let config = kv.config();
            let left =
                config.num > 0 && !config.groups.contains_key(group) && kv.shards().is_empty();
            if !left {
                hosted.left = None;
                continue;
            }
            let (_, next) = hosted.left.get_or_insert((now, now + after));
            if now >= *next {
                *next = now + every;
                asks.push(HostMessage::RetireQuery {
                    group: *group,
                    config_num: config.num,
                });
            }
        }
        if !asks.is_empty() {
            self.outbox.messages_to(server).extend(asks);
        }
    }

    /// A replica asks this controller server whether `group` may retire.
    pub(super) fn handle_retire_query(
        &mut self,
        now: Instant,
        from: NodeId,
        group: GroupId,
        config_num: u64,
    ) {
        let Some(controller) = self.controller() else {
            self.stats.unknown_group += 1;
            return;
        };
        // Both: the retirement only bars the id from joining again; the
        // asker drops its replica only if no configuration from its own on
        // gives the group a shard (a replica further behind hears it from
        // the replicas that retired, which went through those first).
        let may_retire = controller.may_retire(group, config_num);
        if controller.is_retired(group) && may_retire {
            self.outbox
                .messages_to(from)
                .push(HostMessage::Retired { group });
        } else if may_retire && !controller.is_retired(group) {
            // Through the controller's log (only its leader proposes); the
            // asker hears the outcome when it asks again. The same bytes
            // every time, so a repeat within a poll interval is dropped.
            let command = ControllerCommand {
                client: 0,
                seq: 0,
                at: 0,
                op: ControllerOp::Retire { group, config_num },
            };
            self.propose_encoded(now, CONTROLLER, command.encode());
        } else {
            self.stats.ignored += 1;
        }
    }

    /// A controller server or a server of `group` says it is retired.
    pub(super) fn handle_retired(&mut self, from: NodeId, group: GroupId) {
        let believed = self.config.controller.contains(&from)
            || self
                .groups
                .get(&group)
                .is_some_and(|h| h.node.membership().members().any(|m| m == from));
        if group == CONTROLLER || !believed || !self.groups.contains_key(&group) {
            self.stats.ignored += 1;
            return;
        }
        self.retire(group);
    }

    /// Drops this host's replica of `group` for good.
    fn retire(&mut self, group: GroupId) {
        let Some(hosted) = self.groups.remove(&group) else {
            return;
        };
        if hosted.deadline != Instant::NEVER {
            self.timers.remove(&(hosted.deadline, group));
        }
        // Tell the other replicas at once (a hibernating one would hear
        // nothing else); one that misses it learns it on its next message.
        let id = self.config.id;
        for member in hosted.node.membership().members().filter(|m| *m != id) {
            self.outbox
                .messages_to(member)
                .push(HostMessage::Retired { group });
        }
        // Proposals not yet applied: their outcome is unknown to this
        // replica, as after a lost leadership (the client retries, and the
        // group answers nothing but "wrong group" any more).
        let hosted = *hosted;
        for (_, waiter) in hosted.waiters {
            let error = KvError::NotLeader { leader_hint: None };
            self.replies
                .push((waiter.to, failed(waiter.kind, waiter.id, error)));
        }
        let reads = hosted.reads.into_values();
        let ready = hosted.ready_reads.into_iter().map(|(_, waiter)| waiter);
        for waiter in reads.chain(ready) {
            let kind = waiter.what.reply_kind();
            self.replies
                .push((waiter.to, failed(kind, waiter.id, KvError::WrongGroup)));
        }
        self.push_targets.remove(&group);
        self.push_senders.retain(|(g, _, _), _| *g != group);
        self.parts_acked.retain(|(g, _, _), _| *g != group);
        self.parts_proposed.retain(|(g, _, _), _| *g != group);
        self.part_windows.retain(|(g, _, _), _| *g != group);
        let still: BTreeSet<NodeId> = self.peer_hosts();
        self.peers.retain(|peer, _| still.contains(peer));
        self.retired.insert(group);
        self.newly_retired.push(group);
        self.stats.groups_retired += 1;
    }

    /// The other hosts this one shares a group with.
    pub(super) fn peer_hosts(&self) -> BTreeSet<NodeId> {
        let id = self.config.id;
        self.groups
            .values()
            .flat_map(|h| h.node.membership().members().collect::<Vec<_>>())
            .filter(|p| *p != id)
            .collect()
    }
}
