//! Client requests: proposals to the owning group, and direct refusals.

use super::*;

impl Host {
    pub(super) fn handle_client(&mut self, now: Instant, from: ReplyTo, request: HostRequest) {
        let (group, id, kind, bytes) = match request {
            HostRequest::Controller {
                id,
                client,
                seq,
                op,
            } => {
                let command = ControllerCommand {
                    client,
                    seq,
                    at: now.as_millis(),
                    op,
                };
                (CONTROLLER, id, ReplyKind::Controller, command.encode())
            }
            HostRequest::Kv {
                id,
                group,
                client,
                seq,
                op,
            } => {
                if group == CONTROLLER {
                    self.reply(from, ReplyKind::Kv, id, Err(KvError::WrongGroup));
                    return;
                }
                let limits = &self.config.limits;
                let too_large = op.key().len() > limits.max_key_bytes
                    || matches!(&op, Operation::Put { value, .. } | Operation::Append { value, .. } if value.len() > limits.max_value_bytes);
                if too_large {
                    self.reply(from, ReplyKind::Kv, id, Err(KvError::TooLarge));
                    return;
                }
                let command = GroupCommand::Client {
                    client,
                    seq,
                    at: now.as_millis(),
                    op,
                };
                (group, id, ReplyKind::Kv, command.encode())
            }
            HostRequest::FollowerRead { id, group, key } => {
                if key.len() > self.config.limits.max_key_bytes {
                    self.reply(from, ReplyKind::Kv, id, Err(KvError::TooLarge));
                    return;
                }
                self.handle_follower_read(now, from, id, group, ReadWhat::Key(key));
                return;
            }
            HostRequest::Export {
                id,
                group,
                shard,
                at: None,
                offset: _,
            } => {
                self.handle_follower_read(now, from, id, group, ReadWhat::Export(shard));
                return;
            }
            HostRequest::Export {
                id,
                group,
                shard,
                at: Some(index),
                offset,
            } => {
                let result = self.exports.chunk(now, group, shard, index, offset);
                self.replies.push((from, HostReply::Export { id, result }));
                return;
            }
        };
        // One lookup for the check, the wake and the proposal.
        let Some(hosted) = self.groups.get_mut(&group) else {
            self.reply(from, kind, id, Err(KvError::WrongGroup));
            return;
        };
        if hosted.wake(now) {
            self.stats.wakes += 1;
            self.touched.push(group);
        }
        match hosted.node.handle(now, Input::Propose(bytes)) {
            Ok(Accepted::Appended { index, term }) => {
                let waiter = Waiter {
                    term,
                    to: from,
                    id,
                    kind,
                };
                if let Some(old) = hosted.waiters.insert(index, waiter) {
                    // A new term reused the index: the old proposal is gone.
                    self.replies
                        .push((old.to, failed(old.kind, old.id, KvError::Busy)));
                }
                hosted.touch(group, &mut self.touched);
            }
            Ok(Accepted::Done) | Err(Rejected::NotLeader { .. }) => {
                let leader_hint = hosted.node.leader();
                self.reply(from, kind, id, Err(KvError::NotLeader { leader_hint }));
            }
            Err(_) => self.reply(from, kind, id, Err(KvError::Busy)),
        }
    }

    /// [`HostRequest::FollowerRead`] and the first request of a
    /// [`HostRequest::Export`]: the replica here asks its node for a read
    /// index ([`Input::FollowerRead`]: the leader confirms one with a
    /// heartbeat round, a follower asks its leader); the read is served in
    /// `drain_group` once the replica has applied that far.
    fn handle_follower_read(
        &mut self,
        now: Instant,
        from: ReplyTo,
        id: u64,
        group: GroupId,
        what: ReadWhat,
    ) {
        let kind = what.reply_kind();
        if group == CONTROLLER || !self.groups.contains_key(&group) {
            self.reply(from, kind, id, Err(KvError::WrongGroup));
            return;
        }
        // A pending read keeps the group awake here (a follower refuses to
        // hibernate while it has one, see `handle_hibernate`).
        self.wake(now, group);
        let read = self.next_read;
        self.next_read += 1;
        let Some(hosted) = self.groups.get_mut(&group) else {
            return;
        };
        match hosted.node.handle(now, Input::FollowerRead(read)) {
            Ok(_) => {
                hosted.reads.insert(read, ReadWaiter { to: from, id, what });
                self.touched.push(group);
            }
            Err(Rejected::NotLeader { leader_hint }) => {
                self.reply(from, kind, id, Err(KvError::NotLeader { leader_hint }))
            }
            Err(_) => self.reply(from, kind, id, Err(KvError::Busy)),
        }
    }

    pub(super) fn reply(
        &mut self,
        to: ReplyTo,
        kind: ReplyKind,
        id: u64,
        result: Result<(), KvError>,
    ) {
        let reply = match result {
            Ok(()) => unreachable!("only failures are answered directly"),
            Err(e) => failed(kind, id, e),
        };
        self.replies.push((to, reply));
    }
}

pub(super) fn failed(kind: ReplyKind, id: u64, error: KvError) -> HostReply {
    match kind {
        ReplyKind::Controller => HostReply::Controller {
            id,
            result: Err(error),
        },
        ReplyKind::Kv => HostReply::Kv {
            id,
            result: Err(error),
        },
        ReplyKind::Export => HostReply::Export {
            id,
            result: Err(error),
        },
    }
}

impl ReadWhat {
    pub(super) fn reply_kind(&self) -> ReplyKind {
        match self {
            ReadWhat::Key(_) => ReplyKind::Kv,
            ReadWhat::Export(_) => ReplyKind::Export,
        }
    }
}
