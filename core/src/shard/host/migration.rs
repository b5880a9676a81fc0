//! Configuration steps and shard moves between groups (see the module
//! documentation of `host`), and where each group's shards are pushed
//! ([`PushTarget`]).

use super::*;
use crate::shard::group::{ShardPart, ShardStatus};
use alloc::vec;

/// The server of a group that shard pushes go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PushTarget {
    /// Index into the group's servers (modulo their number).
    pub(super) index: usize,
    /// A push round went there and no acknowledgement came back yet.
    pub(super) unanswered: bool,
}

/// The parts of one shard an old owner's leader has sent ahead of the
/// progress the new owner reported (a sliding window of
/// [`HostConfig::shard_parts_in_flight`] parts).
#[derive(Clone, Debug)]
pub(super) struct PartWindow {
    /// The new owner's progress last heard (the largest key it holds),
    /// `None` before any answer.
    heard: Option<Option<Bytes>>,
    /// The largest key of each part sent after the progress heard, in order.
    sent: VecDeque<Option<Bytes>>,
    /// Whether the shard's last part is among them.
    last_sent: bool,
    /// When progress was last heard, or parts last sent from scratch.
    moved_at: Instant,
}

impl PartWindow {
    /// Nothing sent, nothing heard.
    fn new(now: Instant) -> PartWindow {
        PartWindow {
            heard: None,
            sent: VecDeque::new(),
            last_sent: false,
            moved_at: now,
        }
    }

    /// Where the next part starts.
    fn next_after(&self) -> Option<Bytes> {
        match self.sent.back() {
            Some(up_to) => up_to.clone(),
            None => self.start(),
        }
    }

    /// Progress `held` heard: whether it is new. The parts it covers leave
    /// the window; a progress that is the end of none of them, nor where
    /// they start (the new owner lost parts, or took the shard up with
    /// another leader), starts the window over from there. A progress
    /// behind the one heard before is an answer overtaken by a later one
    /// (a new owner's applied progress only grows), and ignored.
    fn advance(&mut self, held: Option<Bytes>) -> bool {
        if self
            .heard
            .as_ref()
            .is_some_and(|heard| held.as_ref() <= heard.as_ref())
        {
            return false;
        }
        if let Some(covered) = self.sent.iter().position(|up_to| *up_to == held) {
            self.sent.drain(..=covered);
        } else if held != self.start() {
            self.sent.clear();
        }
        if self.sent.is_empty() {
            self.last_sent = false;
        }
        self.heard = Some(held);
        true
    }

    /// Forgets the parts in flight: the next ones start after the progress
    /// heard.
    fn start_over(&mut self) {
        self.sent.clear();
        self.last_sent = false;
    }

    /// Where the first part in flight starts: the progress heard (none
    /// before any answer).
    fn start(&self) -> Option<Bytes> {
        self.heard.clone().flatten()
    }

    /// The parts of `shard` that fill the window up to `in_flight`, each
    /// with the `after` it follows; recorded as sent.
    fn fill(
        &mut self,
        kv: &ShardKv,
        shard: ShardId,
        part_bytes: usize,
        in_flight: usize,
    ) -> Vec<(Option<Bytes>, ShardPart)> {
        let mut parts = Vec::new();
        while self.sent.len() < in_flight.max(1) && !self.last_sent {
            let after = self.next_after();
            let Some(part) = kv.export_part(shard, after.as_ref(), part_bytes) else {
                break;
            };
            self.sent.push_back(part.up_to.clone());
            self.last_sent = part.last;
            parts.push((after, part));
        }
        parts
    }
}

/// The message carrying `part` of `shard`, from `from_group` to `to_group`.
fn part_message(
    from_group: GroupId,
    to_group: GroupId,
    config_num: u64,
    shard: ShardId,
    after: Option<Bytes>,
    part: ShardPart,
) -> HostMessage {
    HostMessage::ShardPushPart {
        from_group,
        to_group,
        config_num,
        shard,
        after,
        last: part.last,
        data: part.data,
    }
}

impl Host {
    /// A host asks this controller replica for configuration `num`.
    pub(super) fn handle_config_query(&mut self, from: NodeId, group: GroupId, num: u64) {
        let config = self.controller().and_then(|c| c.config(num)).cloned();
        match config {
            Some(config) => self
                .outbox
                .messages_to(from)
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
        if self.answer_received(from, from_group, to_group, config_num, shard) {
            return;
        }
        let Some(kv) = self.kv(to_group) else {
            return;
        };
        if kv.is_pulling(config_num, shard) {
            let command = GroupCommand::InsertShard {
                config_num,
                shard,
                data,
            };
            if self.propose_internal(now, to_group, command) {
                // Acknowledged as soon as it is applied (`ack_inserted`).
                self.push_senders
                    .insert((to_group, config_num, shard), (from, from_group));
            }
        } else {
            self.stats.ignored += 1;
        }
    }

    /// Answers a push (whole or in part) of a shard that `to_group` has
    /// already received, or that a host that retired `to_group` knows it
    /// had; counts a push to a group neither held nor retired. Whether the
    /// push was dealt with (else `to_group` is held here and has not
    /// received the shard).
    fn answer_received(
        &mut self,
        from: NodeId,
        from_group: GroupId,
        to_group: GroupId,
        config_num: u64,
        shard: ShardId,
    ) -> bool {
        let received = match self.kv(to_group) {
            Some(kv) => kv.has_received(config_num, shard),
            // The new owner was retired, so it had gone past every
            // configuration that gave it a shard, this one included, and a
            // group goes past a configuration only once it has inserted
            // every shard it pulled in it: it had this one. The old owner
            // missed the acknowledgement; without this one it would push
            // to nobody for ever (see "Retirement").
            None if self.retired.contains(&to_group) => true,
            None => {
                self.stats.unknown_group += 1;
                return true;
            }
        };
        if received {
            self.outbox.messages_to(from).push(HostMessage::ShardAck {
                group: from_group,
                config_num,
                shard,
            });
        }
        received
    }

    /// A part of a shard from its previous owner ([`HostMessage::ShardPushPart`],
    /// carried as the entry it becomes): proposed if it follows what the
    /// shard holds here; the leader answers with the progress it has
    /// applied, so the old owner sends the part after it.
    pub(super) fn handle_shard_part(
        &mut self,
        now: Instant,
        from: NodeId,
        from_group: GroupId,
        to_group: GroupId,
        part: GroupCommand,
    ) {
        let GroupCommand::InsertShardPart {
            config_num,
            shard,
            after,
            ..
        } = &part
        else {
            return;
        };
        let (config_num, shard, after) = (*config_num, *shard, after.clone());
        if self.answer_received(from, from_group, to_group, config_num, shard) {
            return;
        }
        let Some(kv) = self.kv(to_group) else {
            return;
        };
        let Some(held) = kv.pulled_up_to(config_num, shard) else {
            self.stats.ignored += 1;
            return;
        };
        if !self
            .groups
            .get(&to_group)
            .is_some_and(|h| h.node.is_leader())
        {
            // Only the leader answers: the old owner moves on to another
            // server of the group after an unanswered round.
            return;
        }
        // The old owner sends several parts ahead of the progress it heard
        // (`PartWindow`): a part is proposed if it follows what is applied
        // here, or comes after the last part proposed here (it follows that
        // one if none was lost on the way; one that does not is ignored by
        // every replica's apply). A part already proposed is not proposed
        // again, unless the last proposal here is a poll interval old, when
        // the part after what is applied is (a proposal lost with a
        // leadership, or a part lost on the way). The progress is reported
        // again once a part is applied (`ack_inserted`).
        let key = (to_group, config_num, shard);
        let proposed = self.parts_proposed.get(&key);
        let ahead = after.as_ref() >= held.as_ref()
            && proposed.is_none_or(|(last, _)| after.as_ref() > last.as_ref());
        let stale =
            proposed.is_some_and(|(_, at)| now.as_millis() >= at.as_millis() + self.config.poll_ms);
        if (ahead || (stale && held == after)) && self.propose_internal(now, to_group, part) {
            self.parts_proposed.insert(key, (after.clone(), now));
            self.push_senders.insert(key, (from, from_group));
        }
        self.parts_acked
            .insert((to_group, config_num, shard), held.clone());
        self.outbox
            .messages_to(from)
            .push(HostMessage::ShardPartAck {
                group: from_group,
                config_num,
                shard,
                held,
            });
    }

    /// The new owner's progress on a shard moving in parts: when it is new,
    /// the parts it covers leave the window and the parts that fill it
    /// again go at once to the server that answered (its leader).
    pub(super) fn handle_shard_part_ack(
        &mut self,
        now: Instant,
        from: NodeId,
        group: GroupId,
        config_num: u64,
        shard: ShardId,
        held: Option<Bytes>,
    ) {
        let (part_bytes, in_flight) = (
            self.config.shard_part_bytes,
            self.config.shard_parts_in_flight,
        );
        let Some(Machine::Kv(kv)) = self.groups.get(&group).map(|h| &h.machine) else {
            self.stats.unknown_group += 1;
            return;
        };
        if !kv.is_sending(config_num, shard) {
            self.stats.ignored += 1;
            return;
        }
        let Some(ShardStatus::Sending { to }) = kv.shards().get(&shard).map(|s| s.status) else {
            return;
        };
        if let Some(index) = kv
            .config()
            .groups
            .get(&to)
            .and_then(|servers| servers.iter().position(|s| *s == from))
        {
            self.push_targets.insert(
                to,
                PushTarget {
                    index,
                    unanswered: false,
                },
            );
        }
        // Parts are exported only on new progress: on nothing new, the
        // poll round after a quiet interval sends the next part again.
        let window = self
            .part_windows
            .entry((group, config_num, shard))
            .or_insert_with(|| PartWindow::new(now));
        if !window.advance(held) {
            return;
        }
        window.moved_at = now;
        let parts = window.fill(kv, shard, part_bytes, in_flight);
        let messages = self.outbox.messages_to(from);
        for (after, part) in parts {
            messages.push(part_message(group, to, config_num, shard, after, part));
        }
    }

    /// The new owner has a shard this group is sending.
    pub(super) fn handle_shard_ack(
        &mut self,
        now: Instant,
        from: NodeId,
        group: GroupId,
        config_num: u64,
        shard: ShardId,
    ) {
        let Some(kv) = self.kv(group) else {
            self.stats.unknown_group += 1;
            return;
        };
        if kv.is_sending(config_num, shard) {
            // The server that answered has the shard's new owner applying
            // what it is sent: keep pushing there.
            if let Some(ShardStatus::Sending { to }) = kv.shards().get(&shard).map(|s| s.status)
                && let Some(index) = kv
                    .config()
                    .groups
                    .get(&to)
                    .and_then(|servers| servers.iter().position(|s| *s == from))
            {
                self.push_targets.insert(
                    to,
                    PushTarget {
                        index,
                        unanswered: false,
                    },
                );
            }
            let command = GroupCommand::DeleteShard { config_num, shard };
            self.propose_internal(now, group, command);
        } else {
            self.stats.ignored += 1;
        }
    }

    /// Proposes a configuration step, an insertion or a deletion, if this
    /// replica leads its group and did not propose the same command within
    /// the last poll interval; whether it did.
    pub(super) fn propose_internal(
        &mut self,
        now: Instant,
        group: GroupId,
        command: GroupCommand,
    ) -> bool {
        self.propose_encoded(now, group, command.encode())
    }

    /// [`Host::propose_internal`] for an encoded command (of any group's
    /// state machine).
    pub(super) fn propose_encoded(&mut self, now: Instant, group: GroupId, bytes: Bytes) -> bool {
        let poll = self.config.poll_ms;
        if !self.groups.get(&group).is_some_and(|h| h.node.is_leader()) {
            return false;
        }
        self.wake(now, group);
        let Some(hosted) = self.groups.get_mut(&group) else {
            return false;
        };
        if let Some((last, at)) = &hosted.last_internal
            && *last == bytes
            && now.as_millis() < at.as_millis() + poll
        {
            return false;
        }
        if hosted
            .node
            .handle(now, Input::Propose(bytes.clone()))
            .is_ok()
        {
            hosted.last_internal = Some((bytes, now));
            self.touched.push(group);
            return true;
        }
        false
    }

    /// Acknowledges the pushes whose insertion `group` has now applied (or
    /// gone past), and forgets those of shards it no longer waits for.
    pub(super) fn ack_inserted(&mut self, group: GroupId) {
        let Some(kv) = self.kv(group) else {
            return;
        };
        let mut done = Vec::new();
        let mut acks = Vec::new();
        let mut progress = Vec::new();
        for (&(g, config_num, shard), &(host, from_group)) in self
            .push_senders
            .range((group, 0, 0)..=(group, u64::MAX, ShardId::MAX))
        {
            if kv.has_received(config_num, shard) {
                done.push((g, config_num, shard));
                acks.push((
                    host,
                    HostMessage::ShardAck {
                        group: from_group,
                        config_num,
                        shard,
                    },
                ));
            } else if let Some(held) = kv.pulled_up_to(config_num, shard) {
                // Moving in parts: report new progress at once.
                let key = (g, config_num, shard);
                if self.parts_acked.contains_key(&key) && self.parts_acked.get(&key) != Some(&held)
                {
                    progress.push((key, held.clone()));
                    acks.push((
                        host,
                        HostMessage::ShardPartAck {
                            group: from_group,
                            config_num,
                            shard,
                            held,
                        },
                    ));
                }
            } else {
                done.push((g, config_num, shard));
            }
        }
        for (host, ack) in acks {
            self.outbox.messages_to(host).push(ack);
        }
        for (key, held) in progress {
            self.parts_acked.insert(key, held);
        }
        for key in done {
            self.push_senders.remove(&key);
            self.parts_acked.remove(&key);
            self.parts_proposed.remove(&key);
        }
    }

    /// The poll timer: ask for the next configuration, push outgoing shards.
    pub(super) fn poll_migrations(&mut self, now: Instant) {
        // One query per configuration number some settled group led here
        // waits for, to one controller server (rotating): the cost of
        // polling does not grow with the number of groups.
        let mut wanted: BTreeMap<u64, GroupId> = BTreeMap::new();
        let mut rotated: Vec<GroupId> = Vec::new();
        let poll = self.config.poll_ms;
        let servers = &self.config.controller;
        let server = (!servers.is_empty())
            .then(|| servers[(now.as_millis() / self.config.poll_ms) as usize % servers.len()]);
        for (group, hosted) in self.groups.iter() {
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
                let Some(servers) = kv.config().groups.get(&to) else {
                    continue;
                };
                if servers.is_empty() {
                    continue;
                }
                // A shard larger than a part moves in parts, from the new
                // owner's last reported progress; a smaller one whole.
                let config_num = kv.config().num;
                // Whole if the shard's export (its keys and its sessions)
                // is no larger than a part, else in parts.
                let part_bytes = self.config.shard_part_bytes;
                let whole = if kv.shard_exceeds(shard, part_bytes) {
                    None
                } else {
                    kv.export(shard).filter(|data| data.len() <= part_bytes)
                };
                let messages = if whole.is_none() {
                    // Parts go out as progress is heard; the window starts
                    // over here (one part after the progress heard) only
                    // when none was heard for a poll interval, and at once
                    // (as many parts as it holds) for a shard not sent yet.
                    let key = (*group, config_num, shard);
                    let (window, in_flight) = match self.part_windows.get_mut(&key) {
                        Some(window) if now.as_millis() < window.moved_at.as_millis() + poll => {
                            continue;
                        }
                        Some(window) => (window, 1),
                        None => (
                            self.part_windows
                                .entry(key)
                                .or_insert_with(|| PartWindow::new(now)),
                            self.config.shard_parts_in_flight,
                        ),
                    };
                    window.start_over();
                    window.moved_at = now;
                    window
                        .fill(kv, shard, self.config.shard_part_bytes, in_flight)
                        .into_iter()
                        .map(|(after, part)| {
                            part_message(*group, to, config_num, shard, after, part)
                        })
                        .collect()
                } else {
                    let Some(data) = whole else {
                        continue;
                    };
                    vec![HostMessage::ShardPush {
                        from_group: *group,
                        to_group: to,
                        config_num,
                        shard,
                        data,
                    }]
                };
                if messages.is_empty() {
                    continue;
                }
                // One server of the new owner: the one that answered last
                // (its leader, or a server that hears from it); the next
                // one if the previous round went unanswered.
                let target = self.push_targets.entry(to).or_default();
                if !rotated.contains(&to) {
                    rotated.push(to);
                    if target.unanswered {
                        target.index = target.index.wrapping_add(1);
                    }
                    target.unanswered = true;
                }
                let to_server = servers[target.index % servers.len()];
                self.outbox.messages_to(to_server).extend(messages);
            }
        }
        // Windows of shards no longer being sent are forgotten.
        let groups = &self.groups;
        self.part_windows.retain(|(group, config_num, shard), _| {
            groups.get(group).is_some_and(|h| match &h.machine {
                Machine::Kv(kv) => kv.is_sending(*config_num, *shard),
                Machine::Controller(_) => false,
            })
        });
        // And the receiving side's record of shards no longer pulled: a
        // replica that answered parts without proposing one (a late or
        // duplicate part, then its leadership lost or the move over) has
        // no push sender for `ack_inserted` to clear them with.
        let pulling = |(group, config_num, shard): &(GroupId, u64, ShardId)| {
            groups.get(group).is_some_and(|h| match &h.machine {
                Machine::Kv(kv) => kv.is_pulling(*config_num, *shard),
                Machine::Controller(_) => false,
            })
        };
        self.parts_acked.retain(|key, _| pulling(key));
        self.parts_proposed.retain(|key, _| pulling(key));
        if let Some(server) = server {
            for (num, group) in wanted {
                self.outbox
                    .messages_to(server)
                    .push(HostMessage::ConfigQuery { group, num });
            }
            self.poll_retirement(now, server);
        }
    }
}
