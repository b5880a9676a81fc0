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
        };
        if !self.groups.contains_key(&group) {
            self.reply(from, kind, id, Err(KvError::WrongGroup));
            return;
        }
        self.wake(now, group);
        let Some(hosted) = self.groups.get_mut(&group) else {
            return;
        };
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
                self.touched.push(group);
            }
            Ok(Accepted::Done) | Err(Rejected::NotLeader { .. }) => {
                let leader_hint = hosted.node.leader();
                self.reply(from, kind, id, Err(KvError::NotLeader { leader_hint }));
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
    }
}
