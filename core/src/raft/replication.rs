//! Log replication (§5.3): proposals, AppendEntries with batching,
//! pipelining and fast back-off, heartbeats, and the commit rule (§5.4.2).

use alloc::vec::Vec;
use bytes::Bytes;
use core::ops::Bound;

use super::api::{Accepted, Rejected};
use super::message::{
    AppendEntries, AppendEntriesResponse, ConflictHint, Heartbeat, HeartbeatResponse, Message,
};
use super::node::{Node, Role};
use super::progress::ProgressState;
use super::quorum::committed_index;
use super::types::{LogIndex, NodeId, Payload};

impl Node {
    pub(super) fn propose(&mut self, command: Bytes) -> Result<Accepted, Rejected> {
        let Role::Leader(leader) = &self.role else {
            return Err(Rejected::NotLeader {
                leader_hint: self.leader,
            });
        };
        if leader.transfer.is_some() {
            return Err(Rejected::TransferInProgress);
        }
        if command.len() > self.config.max_entry_bytes {
            return Err(Rejected::TooLarge {
                size: command.len(),
                limit: self.config.max_entry_bytes,
            });
        }
        if leader.uncommitted_bytes > self.config.max_uncommitted_bytes {
            return Err(Rejected::Busy);
        }
        let index = self.append_entry(Payload::Command(command));
        Ok(Accepted::Appended {
            index,
            term: self.term,
        })
    }

    /// Asks for an AppendEntries to `peer` at the next flush.
    pub(super) fn mark_append(&mut self, peer: NodeId) {
        if let Role::Leader(leader) = &mut self.role
            && !leader.append_needed.contains(&peer)
        {
            leader.append_needed.push(peer);
        }
    }

    /// Sends the AppendEntries asked for since the last flush. Called on
    /// every flush of a leader, after every proposal: sending to every
    /// follower allocates nothing (a multi-group host flushes many leaders
    /// per step).
    pub(super) fn send_pending_appends(&mut self) {
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        if core::mem::take(&mut leader.append_to_all) {
            leader.append_needed.clear();
            // Every follower, in id order, without collecting the ids:
            // sending needs `&mut self`.
            let mut after = None;
            loop {
                let Role::Leader(leader) = &self.role else {
                    return;
                };
                let next = match after {
                    None => leader.progress.keys().next(),
                    Some(previous) => leader
                        .progress
                        .range((Bound::Excluded(previous), Bound::Unbounded))
                        .map(|(peer, _)| peer)
                        .next(),
                };
                let Some(&peer) = next else {
                    return;
                };
                self.maybe_send_append(peer, false);
                after = Some(peer);
            }
        }
        // Taken while sending (which needs `&mut self`), then put back
        // empty: a busy leader keeps its capacity from step to step, an
        // idle one gives it back with the other queues (`release_buffers`).
        let mut needed = core::mem::take(&mut leader.append_needed);
        for &peer in &needed {
            self.maybe_send_append(peer, false);
        }
        needed.clear();
        if let Role::Leader(leader) = &mut self.role
            && leader.append_needed.is_empty()
        {
            leader.append_needed = needed;
        }
    }

    /// Sends `peer` what it is missing, as far as its flow control allows:
    /// one probe in the probe state, up to the window in the replicate state,
    /// snapshot chunks when the entries it needs were compacted away. With
    /// `allow_empty`, a probe goes out even when there are no new entries
    /// (to find out whether the follower lost what was sent).
    pub(super) fn maybe_send_append(&mut self, peer: NodeId, allow_empty: bool) {
        let max_inflight = self.config.max_inflight_messages;
        loop {
            let Some(progress) = self.role.follower_progress(peer) else {
                return;
            };
            if let ProgressState::Snapshot { .. } = progress.state {
                self.maybe_send_snapshot(peer);
                return;
            }
            if !progress.can_send(max_inflight) {
                return;
            }
            let prev_log_index = progress.next_index - 1;
            let is_probe = matches!(progress.state, ProgressState::Probe { .. });
            let Some(prev_log_term) = self.log.term_at(prev_log_index) else {
                // The entries it needs are compacted: send the snapshot (§7).
                let index = self.log.snapshot().index;
                progress.become_snapshot(index, self.now);
                self.maybe_send_snapshot(peer);
                return;
            };
            let mut bytes = 0;
            // Sized once for what there is to send (the byte limit may stop
            // short; a far-behind follower's batch grows past the first 256).
            let available = (self.log.last_index() + 1).saturating_sub(progress.next_index);
            let mut entries = Vec::with_capacity(
                (available.min(256) as usize).min(self.config.max_entries_per_message),
            );
            entries.extend(
                self.log
                    .entries(progress.next_index, self.log.last_index())
                    .take(self.config.max_entries_per_message)
                    .take_while(|e| {
                        let first = bytes == 0;
                        bytes += e.size();
                        first || bytes <= self.config.max_bytes_per_message
                    })
                    .cloned(),
            );
            if entries.is_empty() && !is_probe && !allow_empty {
                return;
            }
            let last = prev_log_index + entries.len() as u64;
            progress.sent_entries(last);
            let sent_nothing = entries.is_empty();
            let message = AppendEntries {
                term: self.term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: self.log.commit(),
            };
            self.send(peer, Message::AppendEntries(message));
            // Everything sent: another turn would find nothing to send
            // (unless `allow_empty`, which sends an empty probe then).
            if is_probe || sent_nothing || (!allow_empty && last == self.log.last_index()) {
                return;
            }
        }
    }

    pub(super) fn handle_append_entries(&mut self, from: NodeId, mut request: AppendEntries) {
        if !self.accept_leader(from) {
            return;
        }
        let commit = self.log.commit();
        // Entries up to our commit index are committed, hence identical to
        // the leader's: start checking right after them.
        if request.prev_log_index < commit {
            let skip = (commit - request.prev_log_index) as usize;
            if skip >= request.entries.len() {
                let index = request.prev_log_index + request.entries.len() as u64;
                self.answer_append(from, index.max(commit));
                return;
            }
            request.entries.drain(..skip);
            request.prev_log_index = commit;
            request.prev_log_term = self.log.term_at(commit).unwrap_or(0);
        }
        let last = self.log.last_index();
        if request.prev_log_index > last
            || !self
                .log
                .matches(request.prev_log_index, request.prev_log_term)
        {
            // §5.3: reject, with a hint that lets the leader skip whole terms.
            let snapshot = self.log.snapshot();
            let (index, term) = self
                .log
                .find_conflict_by_term(request.prev_log_index.min(last), request.prev_log_term)
                .unwrap_or((snapshot.index, snapshot.term));
            self.send(
                from,
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    term: self.term,
                    index: request.prev_log_index,
                    success: false,
                    conflict: Some(ConflictHint { index, term }),
                }),
            );
            return;
        }
        let last_new = request.prev_log_index + request.entries.len() as u64;
        // Skip entries we already have; truncate at the first conflict (§5.3 step 3).
        let mut new_from = None;
        for (i, entry) in request.entries.iter().enumerate() {
            match self.log.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    if entry.index <= self.log.commit() {
                        // A legitimate leader never contradicts a committed
                        // entry (Leader Completeness): drop the message.
                        self.stats.malformed += 1;
                        return;
                    }
                    self.log.truncate_from(entry.index);
                    new_from = Some(i);
                    break;
                }
                None => {
                    new_from = Some(i);
                    break;
                }
            }
        }
        let leader_commit = request.leader_commit;
        if let Some(i) = new_from {
            // The message's own vector becomes the staged write's entries
            // (no copy of the vector when every entry is new).
            let mut entries = request.entries;
            entries.drain(..i);
            for entry in &entries {
                self.log.push(entry.clone());
            }
            self.stage_entry_vec(entries);
        }
        // §5.3 step 5: commit = min(leaderCommit, index of last new entry).
        self.log.commit_to(leader_commit.min(last_new));
        self.answer_append(from, last_new);
    }

    /// Acknowledges entries through `index`, once they are durable here.
    fn answer_append(&mut self, to: NodeId, index: LogIndex) {
        self.send_when_durable(
            to,
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term: self.term,
                index,
                success: true,
                conflict: None,
            }),
        );
    }

    /// Common handling of a message from the leader of our term: follow it,
    /// note the contact, push the election back. False if we are the leader
    /// ourselves (two leaders in one term would break Election Safety; the
    /// message cannot come from a correct peer).
    pub(super) fn accept_leader(&mut self, from: NodeId) -> bool {
        match &self.role {
            Role::Leader(_) => {
                self.stats.unexpected += 1;
                return false;
            }
            Role::Candidate { .. } | Role::PreCandidate { .. } => {
                let term = self.term;
                self.become_follower(term, Some(from));
            }
            Role::Follower => {
                if self.leader != Some(from) {
                    self.incoming_snapshot = None;
                }
                self.leader = Some(from);
            }
        }
        self.leader_contact = Some(self.now);
        self.needed_as_voter = false;
        self.reset_election_timer();
        true
    }

    pub(super) fn handle_append_response(&mut self, from: NodeId, response: AppendEntriesResponse) {
        let last_index = self.log.last_index();
        let Some(progress) = self.role.answering_follower(from, &mut self.stats) else {
            return;
        };
        if response.success {
            if response.index > last_index {
                self.stats.malformed += 1;
                return;
            }
            if let ProgressState::Snapshot { .. } = progress.state {
                return;
            }
            let advanced = progress.update_match(response.index);
            let caught_up = progress.match_index == last_index;
            // A match index at or below the commit index changes no
            // majority above it: the commit rule has nothing new to find
            // (the second answer of a three-node group, usually).
            let may_commit = progress.match_index > self.log.commit();
            // Entries left to send (the window was full, or more were
            // appended since): ask for an AppendEntries at the next flush.
            // With none left, `maybe_send_append` would send nothing, and
            // a later append asks for all followers anyway.
            let more_to_send = progress.next_index <= last_index
                || matches!(progress.state, ProgressState::Probe { .. });
            if advanced {
                if may_commit {
                    self.maybe_commit();
                }
                self.maybe_say_farewell(from);
            }
            if caught_up {
                self.maybe_send_timeout_now(from);
            }
            if more_to_send {
                self.mark_append(from);
            }
        } else {
            let probe_next = match response.conflict {
                Some(hint) => match self.log.find_conflict_by_term(hint.index, hint.term) {
                    Some((index, _)) => index.saturating_add(1),
                    // The match point is in our compacted prefix: probe below
                    // the snapshot, which sends the snapshot.
                    None => hint.index.saturating_add(1).min(self.log.snapshot().index),
                },
                None => response.index,
            };
            let Some(progress) = self.role.follower_progress(from) else {
                return;
            };
            if progress.maybe_decrease_to(response.index, probe_next) {
                self.mark_append(from);
            }
        }
    }

    /// Advances the commit index to the highest index stored on a majority,
    /// if that entry is from the current term (§5.4.2: entries of earlier
    /// terms are committed only indirectly — the Figure 8 rule). The leader
    /// counts its own log only as far as it is durable.
    pub(super) fn maybe_commit(&mut self) {
        let Role::Leader(leader) = &self.role else {
            return;
        };
        // Called on every acknowledgement: no allocation for the usual
        // cluster sizes.
        let voters = &self.log.membership().voters;
        let mut inline = [0; 9];
        let mut spilled = Vec::new();
        let matches: &mut [LogIndex] = if voters.len() <= inline.len() {
            &mut inline[..voters.len()]
        } else {
            spilled.resize(voters.len(), 0);
            &mut spilled
        };
        for (slot, &voter) in matches.iter_mut().zip(voters) {
            *slot = if voter == self.id {
                self.durable_index()
            } else {
                leader.progress.get(&voter).map_or(0, |p| p.match_index)
            };
        }
        let index = committed_index(matches);
        if index > self.log.commit() && self.log.term_at(index) == Some(self.term) {
            let change_committed = self
                .log
                .last_membership_index()
                .is_some_and(|at| at > self.log.commit() && at <= index);
            self.log.commit_to(index);
            if change_committed {
                self.sync_progress();
            }
            self.on_commit_in_term();
            self.maybe_step_down_after_removal();
        }
    }

    /// Sends a heartbeat to every follower; each starts a new ReadIndex round.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let commit = self.log.commit();
        let term = self.term;
        let now = self.now;
        let heartbeat_interval = self.config.heartbeat_interval;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let round = leader.reads.start_round(now);
        leader.heartbeat_deadline = now + heartbeat_interval;
        self.update_departures(round);
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        let targets: Vec<(NodeId, LogIndex)> = leader
            .progress
            .iter()
            .map(|(&id, p)| (id, p.match_index))
            .collect();
        for (peer, matched) in targets {
            self.send(
                peer,
                Message::Heartbeat(Heartbeat {
                    term,
                    commit: commit.min(matched),
                    round,
                }),
            );
        }
        self.maybe_confirm_reads();
    }

    pub(super) fn handle_heartbeat(&mut self, from: NodeId, heartbeat: Heartbeat) {
        if !self.accept_leader(from) {
            return;
        }
        self.log
            .commit_to(heartbeat.commit.min(self.log.last_index()));
        self.send(
            from,
            Message::HeartbeatResponse(HeartbeatResponse {
                term: self.term,
                round: heartbeat.round,
                last_index: self.log.last_index(),
            }),
        );
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, response: HeartbeatResponse) {
        let last_index = self.log.last_index();
        let now = self.now;
        let heartbeat_interval = self.config.heartbeat_interval;
        let max_inflight = self.config.max_inflight_messages;
        let Some(progress) = self.role.answering_follower(from, &mut self.stats) else {
            return;
        };
        progress.round_acked = progress.round_acked.max(response.round);
        let mut resend = false;
        match &mut progress.state {
            ProgressState::Snapshot {
                acked,
                sent,
                sent_at,
                ..
            } => {
                // No answer to the last chunk for a heartbeat interval: resend from the last acknowledged byte.
                if now.saturating_since(*sent_at) >= heartbeat_interval {
                    *sent = *acked;
                    resend = true;
                }
            }
            _ => {
                // Behind: the follower lacks entries we sent (lost messages,
                // or a restart that lost unsynced entries), or its answer was
                // lost. Probe at the end of what we sent: its answer either
                // confirms the match or starts the back-off.
                if progress.match_index < last_index {
                    progress.unstall(max_inflight);
                    resend = true;
                }
            }
        }
        self.maybe_confirm_reads();
        if resend {
            self.maybe_send_append(from, true);
        } else {
            self.mark_append(from);
        }
    }
}
