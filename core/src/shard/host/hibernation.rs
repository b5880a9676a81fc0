//! Hibernation of idle groups (see the module documentation of `host`).

use super::*;

impl Host {
    /// A leader asks this follower to hibernate at (term, index).
    pub(super) fn handle_hibernate(
        &mut self,
        from: NodeId,
        group: GroupId,
        term: Term,
        index: LogIndex,
    ) {
        let Some(hosted) = self.groups.get_mut(&group) else {
            self.stats.unknown_group += 1;
            return;
        };
        let node = &hosted.node;
        let log = node.log();
        let agrees = !node.is_leader()
            && hosted.reads.is_empty()
            && hosted.ready_reads.is_empty()
            && node.term() == term
            && node.leader() == Some(from)
            && log.last_index() == index
            && log.commit() == index
            && log.applied() == index
            && node.durable_index() == index;
        if agrees {
            if !hosted.hibernating {
                hosted.hibernating = true;
                self.stats.hibernations += 1;
                self.touched.push(group);
            }
            self.outbox
                .messages_to(from)
                .push(HostMessage::HibernateAck { group, term });
        } else {
            self.stats.ignored += 1;
        }
    }

    /// A follower agreed to hibernate.
    pub(super) fn handle_hibernate_ack(&mut self, from: NodeId, group: GroupId, term: Term) {
        let Some(hosted) = self.groups.get_mut(&group) else {
            self.stats.unknown_group += 1;
            return;
        };
        if hosted.node.is_leader() && hosted.node.term() == term {
            hosted.hibernate_acks.insert(from);
            let id = self.config.id;
            let all = hosted
                .node
                .membership()
                .members()
                .filter(|m| *m != id)
                .all(|m| hosted.hibernate_acks.contains(&m));
            if all && !hosted.hibernating {
                hosted.hibernating = true;
                self.stats.hibernations += 1;
                self.touched.push(group);
            }
        }
    }

    /// Whether `group` is hibernating here.
    pub fn is_hibernating(&self, group: GroupId) -> bool {
        self.groups.get(&group).is_some_and(|h| h.hibernating)
    }

    /// Resumes the timers of a hibernating group.
    pub(super) fn wake(&mut self, now: Instant, group: GroupId) {
        if let Some(hosted) = self.groups.get_mut(&group)
            && hosted.wake(now)
        {
            self.stats.wakes += 1;
            self.touched.push(group);
        }
    }

    /// Asks the followers of every idle group this host leads to hibernate.
    pub(super) fn maybe_hibernate(&mut self, now: Instant) {
        let after = self.config.hibernate_after_ms;
        let id = self.config.id;
        for (group, hosted) in self.groups.iter() {
            let node = &hosted.node;
            if hosted.hibernating
                || !node.is_leader()
                || !hosted.waiters.is_empty()
                || !hosted.reads.is_empty()
                || !hosted.ready_reads.is_empty()
                || node.transfer_target().is_some()
                // Saturating: `after` may be any u64 (`--hibernate-after-ms`).
                || now < hosted.activity.1 + after
            {
                continue;
            }
            let log = node.log();
            let index = log.last_index();
            let caught_up = log.commit() == index
                && log.applied() == index
                && node.durable_index() == index
                && node
                    .progress()
                    .is_some_and(|p| p.iter().all(|(m, p)| *m == id || p.match_index == index));
            let settled = match &hosted.machine {
                Machine::Kv(kv) => kv.is_settled(),
                Machine::Controller(_) => true,
            };
            if !caught_up || !settled {
                continue;
            }
            for member in node.membership().members().filter(|m| *m != id) {
                if !hosted.hibernate_acks.contains(&member) {
                    self.outbox
                        .messages_to(member)
                        .push(HostMessage::Hibernate {
                            group: *group,
                            term: node.term(),
                            index,
                        });
                }
            }
        }
    }

    /// Host liveness while groups hibernate: tell quiet peers we are alive,
    /// and wake every hibernating group shared with a peer that has been
    /// silent for an election timeout (its leader may be gone).
    pub(super) fn check_peers(&mut self, now: Instant) {
        let heartbeat = self.config.raft.heartbeat_interval;
        let suspect_after = self.config.raft.election_timeout_min;
        let any_hibernating = self.groups.values().any(|h| h.hibernating);
        let mut silent = Vec::new();
        for (peer, (seen, sent)) in &self.peers {
            if any_hibernating && now.as_millis() >= sent.as_millis() + heartbeat {
                self.outbox.messages_to(*peer).push(HostMessage::Alive);
            }
            if now.as_millis() > seen.as_millis() + suspect_after {
                silent.push(*peer);
            }
        }
        if silent.is_empty() {
            return;
        }
        let suspects: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, h)| {
                h.hibernating && h.node.membership().members().any(|m| silent.contains(&m))
            })
            .map(|(g, _)| *g)
            .collect();
        for group in suspects {
            self.stats.suspicions += 1;
            self.wake(now, group);
        }
    }
}

impl Hosted {
    /// Forgets hibernation agreements and, if hibernating, resumes the
    /// timers. True if it was hibernating.
    pub(super) fn wake(&mut self, now: Instant) -> bool {
        // Checked first: this runs for every Raft message, and clearing
        // even an empty set costs a replacement and a drop.
        if !self.hibernate_acks.is_empty() {
            self.hibernate_acks.clear();
        }
        if !self.hibernating {
            return false;
        }
        self.hibernating = false;
        self.activity.1 = now;
        let _ = self.node.handle(now, Input::Wake);
        true
    }
}
