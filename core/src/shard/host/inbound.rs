//! Messages from other hosts: dispatch by kind, and the Raft messages of
//! hosted groups (which wake a hibernating group unless they are its
//! heartbeats).

use super::*;

impl Host {
    pub(super) fn handle_message(&mut self, now: Instant, from: NodeId, message: HostMessage) {
        self.stats.messages_received += 1;
        match message {
            HostMessage::Raft { group, envelope } => self.handle_raft(now, from, group, envelope),
            HostMessage::Hibernate { group, term, index } => {
                self.handle_hibernate(from, group, term, index)
            }
            HostMessage::HibernateAck { group, term } => {
                self.handle_hibernate_ack(from, group, term)
            }
            HostMessage::Alive => {}
            HostMessage::ConfigQuery { group, num } => self.handle_config_query(from, group, num),
            HostMessage::ConfigReply { group: _, config } => self.handle_config_reply(now, config),
            HostMessage::ShardPush {
                from_group,
                to_group,
                config_num,
                shard,
                data,
            } => self.handle_shard_push(now, from, from_group, to_group, config_num, shard, data),
            HostMessage::ShardAck {
                group,
                config_num,
                shard,
            } => self.handle_shard_ack(now, from, group, config_num, shard),
            HostMessage::ShardPushPart {
                from_group,
                to_group,
                config_num,
                shard,
                after,
                last,
                data,
            } => {
                let part = GroupCommand::InsertShardPart {
                    config_num,
                    shard,
                    after,
                    last,
                    data,
                };
                self.handle_shard_part(now, from, from_group, to_group, part)
            }
            HostMessage::ShardPartAck {
                group,
                config_num,
                shard,
                held,
            } => self.handle_shard_part_ack(now, from, group, config_num, shard, held),
            HostMessage::RetireQuery { group, config_num } => {
                self.handle_retire_query(now, from, group, config_num)
            }
            HostMessage::Retired { group } => self.handle_retired(from, group),
        }
    }

    /// A Raft message of one of the groups hosted here.
    fn handle_raft(&mut self, now: Instant, from: NodeId, group: GroupId, envelope: Envelope) {
        if envelope.from != from || envelope.to != self.config.id {
            self.stats.misaddressed += 1;
            return;
        }
        let Some(hosted) = self.groups.get_mut(&group) else {
            self.stats.unknown_group += 1;
            if self.retired.contains(&group) {
                // A replica that has not heard yet: tell it (see "Retirement").
                self.outbox
                    .messages_to(from)
                    .push(HostMessage::Retired { group });
            }
            return;
        };
        // A heartbeat (or its answer) of the current term between a
        // hibernating group's leader and followers changes nothing:
        // it does not wake the group. Anything else does.
        let term = hosted.node.term();
        let benign = match &envelope.message {
            Message::Heartbeat(m) => m.term == term && hosted.node.leader() == Some(from),
            Message::HeartbeatResponse(m) => m.term == term && hosted.node.is_leader(),
            _ => false,
        };
        if !benign && hosted.wake(now) {
            self.stats.wakes += 1;
        }
        let _ = hosted.node.handle(now, Input::Message(envelope));
        hosted.touch(group, &mut self.touched);
    }
}
