//! Crashes, restarts and injected input; what the hosts hold.

use super::*;

impl ShardedSim {
    /// Crashes host `id`: its replicas stop, unsynced writes are lost
    /// (but a random prefix), messages to it are dropped.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(slot) = self.slots.get_mut(&id)
            && let Some(host) = slot.host.take()
        {
            self.follower_reads_before += host.stats().follower_reads_served;
            slot.disk.crash(&mut self.rng);
            self.log(format!("host {id} crashes"));
            self.note(Some(id), None, "crash", || format!("host {id} crashes"));
        }
    }

    /// Restarts a crashed host from its disk.
    pub fn restart(&mut self, id: NodeId) {
        let mut config = host_config(&self.config, id);
        let seed = self.config.seed;
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.host.is_some() {
            return;
        }
        config.retired = slot.disk.retired.clone();
        slot.incarnation += 1;
        let seed = seed ^ id ^ slot.incarnation.wrapping_mul(0x9E37_79B9);
        match Host::restart(
            config,
            seed,
            slot.clock.local(self.now),
            slot.disk.durable.clone(),
        ) {
            Ok(host) => {
                for (g, node) in host.nodes() {
                    if let Some(checker) = self.checkers.get_mut(&g) {
                        checker.restarted(node);
                    }
                }
                slot.host = Some(host);
                self.log(format!("host {id} restarts"));
                self.note(Some(id), None, "restart", || {
                    format!("host {id} restarts from its disk")
                });
            }
            Err(e) => self
                .violations
                .push(format!("host {id} cannot restart: {e}")),
        }
    }

    /// Delivers an arbitrary batch to host `to` now, through the same
    /// checkers as any other (robustness tests feed malformed ones).
    pub fn inject(&mut self, batch: HostBatch) {
        let to = batch.to;
        self.feed(to, HostInput::Batch(batch));
    }

    /// Delivers an arbitrary client request to host `to` now; the reply goes
    /// to the admin clerk, which ignores what it did not ask.
    pub fn inject_request(&mut self, to: NodeId, request: HostRequest) {
        self.feed(to, HostInput::Client { from: 0, request });
    }

    /// Crashes every server of a group (6.5840's `ShutdownGroup`).
    pub fn crash_group(&mut self, group: GroupId) {
        for id in self
            .config
            .host
            .groups
            .get(&group)
            .cloned()
            .unwrap_or_default()
        {
            self.crash(id);
        }
    }

    /// Restarts every server of a group (6.5840's `StartGroup`).
    pub fn restart_group(&mut self, group: GroupId) {
        for id in self
            .config
            .host
            .groups
            .get(&group)
            .cloned()
            .unwrap_or_default()
        {
            self.restart(id);
        }
    }

    /// Bytes of durable Raft state (entries) and snapshots of every group
    /// on every host's disk: what 6.5840's shard deletion test bounds.
    pub fn persisted_bytes(&self) -> u64 {
        let mut total = 0;
        for slot in self.slots.values() {
            for state in slot.disk.durable.values() {
                total += state.snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
                total += state.entries.iter().map(|e| e.size() as u64).sum::<u64>();
            }
        }
        total
    }

    /// Whether host `id` is up.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.host(id).is_some()
    }

    /// The leader host of a group, if one is up and leading.
    pub fn leader_of(&self, group: GroupId) -> Option<NodeId> {
        self.slots
            .iter()
            .filter_map(|(id, s)| {
                let node = s.host.as_ref()?.node(group)?;
                node.is_leader().then_some((node.term(), *id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Whether every group's up replicas have reached the controller's
    /// latest configuration with no shard moving (at least one replica per
    /// group must be up).
    pub fn is_settled(&self) -> bool {
        let Some(latest) = self
            .slots
            .values()
            .filter_map(|s| s.host.as_ref()?.controller())
            .map(|c| c.latest().num)
            .max()
        else {
            return false;
        };
        self.config.host.groups.keys().all(|g| {
            self.is_retired(*g)
                || self
                    .slots
                    .values()
                    .filter_map(|s| s.host.as_ref()?.kv(*g))
                    .any(|kv| kv.config().num == latest && kv.is_settled())
        })
    }

    /// Whether an up controller replica has applied the retirement of `group`.
    pub fn is_retired(&self, group: GroupId) -> bool {
        self.slots
            .values()
            .filter_map(|s| s.host.as_ref()?.controller())
            .any(|c| c.is_retired(group))
    }

    /// The up hosts that still hold a replica of `group`.
    pub fn replicas_of(&self, group: GroupId) -> Vec<NodeId> {
        self.slots
            .iter()
            .filter(|(_, s)| s.host.as_ref().is_some_and(|h| h.node(group).is_some()))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether host `id`'s disk holds `group`'s state or its tombstone.
    pub fn disk_holds(&self, id: NodeId, group: GroupId) -> (bool, bool) {
        self.slots.get(&id).map_or((false, false), |s| {
            (
                s.disk.durable.contains_key(&group),
                s.disk.retired.contains(&group),
            )
        })
    }

    /// Shards held by each group on its most advanced up replica (any status).
    pub fn held_shards(&self) -> BTreeMap<GroupId, BTreeSet<u32>> {
        let mut held = BTreeMap::new();
        for g in self.config.host.groups.keys() {
            let best = self
                .slots
                .values()
                .filter_map(|s| {
                    let host = s.host.as_ref()?;
                    Some((host.node(*g)?.log().applied(), host.kv(*g)?))
                })
                .max_by_key(|(applied, _)| *applied);
            if let Some((_, kv)) = best {
                held.insert(*g, kv.shards().keys().copied().collect());
            }
        }
        held
    }
}
