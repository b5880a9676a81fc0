//! Configuration steps and shard moves between groups (see the module
//! documentation of `host`).

use super::*;

impl Host {
    /// A host asks this controller replica for configuration `num`.
    pub(super) fn handle_config_query(&mut self, from: NodeId, group: GroupId, num: u64) {
        let config = self.controller().and_then(|c| c.config(num)).cloned();
        match config {
            Some(config) => self
                .outbox
                .entry(from)
                .or_default()
                .push(HostMessage::ConfigReply { group, config }),
            None => self.stats.ignored += 1,
        }
    }

    /// A configuration from a controller replica.
    pub(super) fn handle_config_reply(&mut self, now: Instant, config: ShardConfig) {
        // One reply serves every group led here that waits for it.
        let shards = self.config.shards as usize;
        let well_formed = config.shards.len() == shards
            && config
                .shards
                .iter()
                .all(|g| *g == 0 || config.groups.contains_key(g));
        let waiting: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, h)| h.node.is_leader())
            .filter_map(|(g, h)| match &h.machine {
                Machine::Kv(kv) if kv.config().num + 1 == config.num && kv.is_settled() => Some(*g),
                _ => None,
            })
            .collect();
        if !well_formed || waiting.is_empty() {
            self.stats.ignored += 1;
            return;
        }
        for group in waiting {
            self.propose_internal(now, group, GroupCommand::Config(config.clone()));
        }
    }

    /// A shard's data from its previous owner.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_shard_push(
        &mut self,
        now: Instant,
        from: NodeId,
        from_group: GroupId,
        to_group: GroupId,
        config_num: u64,
        shard: ShardId,
        data: Bytes,
    ) {
        let Some(kv) = self.kv(to_group) else {
            self.stats.unknown_group += 1;
            return;
        };
        if kv.has_received(config_num, shard) {
            self.outbox
                .entry(from)
                .or_default()
                .push(HostMessage::ShardAck {
                    group: from_group,
                    config_num,
                    shard,
                });
        } else if kv.is_pulling(config_num, shard) {
            let command = GroupCommand::InsertShard {
                config_num,
                shard,
                data,
            };
            self.propose_internal(now, to_group, command);
        } else {
            self.stats.ignored += 1;
        }
    }

    /// The new owner has a shard this group is sending.
    pub(super) fn handle_shard_ack(
        &mut self,
        now: Instant,
        group: GroupId,
        config_num: u64,
        shard: ShardId,
    ) {
        let Some(kv) = self.kv(group) else {
            self.stats.unknown_group += 1;
            return;
        };
        if kv.is_sending(config_num, shard) {
            let command = GroupCommand::DeleteShard { config_num, shard };
            self.propose_internal(now, group, command);
        } else {
            self.stats.ignored += 1;
        }
    }

    /// Proposes a configuration step, an insertion or a deletion, if this
    /// replica leads its group and did not propose the same command within
    /// the last poll interval.
    pub(super) fn propose_internal(&mut self, now: Instant, group: GroupId, command: GroupCommand) {
        let poll = self.config.poll_ms;
        if !self.groups.get(&group).is_some_and(|h| h.node.is_leader()) {
            return;
        }
        self.wake(now, group);
        let Some(hosted) = self.groups.get_mut(&group) else {
            return;
        };
        let bytes = command.encode();
        if let Some((last, at)) = &hosted.last_internal
            && *last == bytes
            && now.as_millis() < at.as_millis() + poll
        {
            return;
        }
        if hosted
            .node
            .handle(now, Input::Propose(bytes.clone()))
            .is_ok()
        {
            hosted.last_internal = Some((bytes, now));
            self.touched.insert(group);
        }
    }

    /// The poll timer: ask for the next configuration, push outgoing shards.
    pub(super) fn poll_migrations(&mut self, now: Instant) {
        // One query per configuration number some settled group led here
        // waits for, to one controller server (rotating): the cost of
        // polling does not grow with the number of groups.
        let mut wanted: BTreeMap<u64, GroupId> = BTreeMap::new();
        let servers = &self.config.controller;
        let server = (!servers.is_empty())
            .then(|| servers[(now.as_millis() / self.config.poll_ms) as usize % servers.len()]);
        for (group, hosted) in &self.groups {
            let Machine::Kv(kv) = &hosted.machine else {
                continue;
            };
            if !hosted.node.is_leader() {
                continue;
            }
            if kv.is_settled() {
                wanted.entry(kv.config().num + 1).or_insert(*group);
            }
            for (shard, to) in kv.sending() {
                let (Some(servers), Some(data)) = (kv.config().groups.get(&to), kv.export(shard))
                else {
                    continue;
                };
                for to_server in servers {
                    self.outbox
                        .entry(*to_server)
                        .or_default()
                        .push(HostMessage::ShardPush {
                            from_group: *group,
                            to_group: to,
                            config_num: kv.config().num,
                            shard,
                            data: data.clone(),
                        });
                }
            }
        }
        if let Some(server) = server {
            for (num, group) in wanted {
                self.outbox
                    .entry(server)
                    .or_default()
                    .push(HostMessage::ConfigQuery { group, num });
            }
        }
    }
}
