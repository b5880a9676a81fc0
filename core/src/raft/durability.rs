//! Durability and the output queue: what a node stages for its driver to
//! persist, the messages held until a write is durable, the driver's
//! acknowledgements ([`Input::Persisted`](super::Input::Persisted)), and the
//! flush that turns all of it into [`Output`]s in the order the driver must
//! execute them.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::api::{Output, Rejected};
use super::message::{Envelope, Message};
use super::node::{Node, Role};
use super::types::{Entry, HardState, LogIndex, NodeId, Snapshot, Term};

/// A message that may leave only once a write is durable.
#[derive(Clone, Debug)]
pub(super) struct Held {
    pub after_seq: u64,
    pub term: Term,
    pub envelope: Envelope,
}

/// A write emitted but not yet acknowledged.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingWrite {
    seq: u64,
    /// The log is durable up to here (and matches memory) once this write is.
    last_index: LogIndex,
    /// Until then, only up to here: the write truncates after this index.
    clip: LogIndex,
    hard_state: Option<HardState>,
}

impl Node {
    pub(super) fn handle_persisted(&mut self, seq: u64) -> Result<(), Rejected> {
        let last = self.next_seq - 1;
        if seq > last {
            return Err(Rejected::UnknownWrite { seq, last });
        }
        if seq <= self.acked_seq {
            return Ok(());
        }
        self.acked_seq = seq;
        while self.pending_writes.front().is_some_and(|w| w.seq <= seq) {
            let write = self.pending_writes.pop_front().expect("checked non-empty");
            self.durable_index = write.last_index;
            if let Some(hard_state) = write.hard_state {
                self.durable_hard_state = hard_state;
            }
        }
        for write in &self.pending_writes {
            self.durable_index = self.durable_index.min(write.clip);
        }
        // Release messages whose write is now durable; drop those from an
        // older term (their premise may have been truncated away since).
        while self.held.front().is_some_and(|h| h.after_seq <= seq) {
            let held = self.held.pop_front().expect("checked non-empty");
            if held.term == self.term {
                self.staged.push_back(Output::Send(held.envelope));
            } else {
                self.stats.held_dropped += 1;
            }
        }
        self.on_durable();
        Ok(())
    }

    /// Durable state advanced: count the candidate's own vote, the leader's own log.
    fn on_durable(&mut self) {
        match &mut self.role {
            Role::Candidate {
                votes,
                self_vote_seq,
            } if *self_vote_seq <= self.acked_seq => {
                votes.record(self.id, true);
                self.check_election();
            }
            // The commit rule, unless it cannot find anything: with two
            // voters or more a majority above the commit index includes
            // another node, so some follower must have a match index above
            // it. A leader's own write is usually durable before any
            // follower has answered for it (the answers come later and run
            // the rule themselves).
            Role::Leader(leader) => {
                let commit = self.log.commit();
                if self.log.membership().voters.len() < 2
                    || leader.progress.values().any(|p| p.match_index > commit)
                {
                    self.maybe_commit();
                }
            }
            _ => {}
        }
    }

    /// Frees the memory of the node's empty queues (outputs, staged
    /// messages, messages held for a write, writes not yet acknowledged,
    /// followers a leader owes an AppendEntries):
    /// they keep their capacity after a step, which is what a busy node
    /// wants and about 1.3 KiB that an idle one does not need. A driver of
    /// many groups calls it for groups that have gone quiet; it changes no
    /// behaviour.
    pub fn release_buffers(&mut self) {
        if self.outputs.is_empty() {
            self.outputs = VecDeque::new();
        }
        if self.staged.is_empty() {
            self.staged = VecDeque::new();
        }
        if self.held.is_empty() {
            self.held = VecDeque::new();
        }
        if self.pending_writes.is_empty() {
            self.pending_writes = VecDeque::new();
        }
        if let Role::Leader(leader) = &mut self.role
            && leader.append_needed.is_empty()
        {
            leader.append_needed = Vec::new();
        }
        self.apply_buffer = Vec::new();
    }

    /// Hands back the vector of an [`Output::Apply`] once its entries are
    /// applied: the next apply reuses its memory instead of allocating
    /// (a host of many groups applies for each of them at every step).
    /// Optional; its contents are dropped, so it changes no behaviour.
    pub fn recycle_applied(&mut self, mut entries: Vec<Entry>) {
        entries.clear();
        if entries.capacity() > self.apply_buffer.capacity() {
            self.apply_buffer = entries;
        }
    }

    // ---- outputs ---------------------------------------------------------

    /// Queues a message to send now.
    pub(super) fn send(&mut self, to: NodeId, message: Message) {
        self.staged.push_back(Output::Send(Envelope {
            from: self.id,
            to,
            message,
        }));
    }

    /// Queues a message that may leave only once everything written so far is durable.
    pub(super) fn send_when_durable(&mut self, to: NodeId, message: Message) {
        let after_seq = if self.staged_write.is_empty() {
            self.next_seq - 1
        } else {
            self.next_seq
        };
        let envelope = Envelope {
            from: self.id,
            to,
            message,
        };
        if after_seq <= self.acked_seq {
            self.staged.push_back(Output::Send(envelope));
        } else {
            self.held.push_back(Held {
                after_seq,
                term: self.term,
                envelope,
            });
        }
    }

    /// The seq the currently staged write will get.
    pub(super) fn staged_seq(&self) -> u64 {
        self.next_seq
    }

    /// Stages the current term and vote for persistence.
    pub(super) fn stage_hard_state(&mut self) {
        self.staged_write.hard_state = Some(HardState {
            term: self.term,
            voted_for: self.voted_for,
        });
    }

    /// Stages entries (already in the in-memory log) for persistence, with the
    /// truncate-then-append semantics of
    /// [`Write::entries`](super::storage::Write::entries).
    pub(super) fn stage_entries(&mut self, entries: impl IntoIterator<Item = Entry>) {
        let mut entries = entries.into_iter().peekable();
        let Some(first) = entries.peek().map(|e| e.index) else {
            return;
        };
        self.staged_clip = self.staged_clip.min(first - 1);
        let staged = &mut self.staged_write.entries;
        match staged.first().map(|e| e.index) {
            Some(staged_first) if first >= staged_first => {
                staged.truncate((first - staged_first) as usize);
            }
            _ => staged.clear(),
        }
        staged.extend(entries);
    }

    /// [`Node::stage_entries`] for a vector: when nothing is staged yet, the
    /// vector itself becomes the write's entries (a follower stages an
    /// AppendEntries' entries without copying them).
    pub(super) fn stage_entry_vec(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first().map(|e| e.index) else {
            return;
        };
        if self.staged_write.entries.is_empty() {
            self.staged_clip = self.staged_clip.min(first - 1);
            self.staged_write.entries = entries;
        } else {
            self.stage_entries(entries);
        }
    }

    /// Stages a snapshot for persistence. `replaced_from` is set when the
    /// install dropped log entries after that index (a snapshot from the
    /// leader that did not match the log).
    pub(super) fn stage_snapshot(&mut self, snapshot: Snapshot, replaced_from: Option<LogIndex>) {
        if let Some(index) = replaced_from {
            self.staged_clip = self.staged_clip.min(index);
        }
        let index = snapshot.meta.index;
        // Entries staged earlier that the snapshot covers are dropped by it;
        // if the log did not keep what follows, drop those too.
        let kept_first = self.log.first_index();
        self.staged_write
            .entries
            .retain(|e| e.index > index && e.index >= kept_first);
        if self.log.is_empty() {
            self.staged_write.entries.clear();
        }
        self.staged_write.snapshot = Some(Box::new(snapshot));
    }

    /// Whether draining now would give any output: exactly what the next
    /// flush looks at (outputs not yet drained, staged messages or write,
    /// committed entries not yet applied, a leader's AppendEntries or read
    /// round to send). A multi-group host uses it to skip draining a group
    /// whose input changed nothing to hand out (a leader's own
    /// [`Input::Persisted`](super::Input::Persisted), usually).
    pub fn has_pending_output(&self) -> bool {
        if !self.outputs.is_empty()
            || !self.staged.is_empty()
            || !self.staged_write.is_empty()
            || self.log.commit() > self.log.applied()
        {
            return true;
        }
        match &self.role {
            Role::Leader(leader) => {
                leader.append_to_all
                    || !leader.append_needed.is_empty()
                    || leader.reads.round_needed()
            }
            _ => false,
        }
    }

    /// Every output at once, appended to `into`: exactly what calling
    /// [`Node::poll_output`] until `None` would return, in the same order,
    /// with one flush instead of two (the last `poll_output` flushes again
    /// to find nothing) and no call per output. When `into` is empty the
    /// node's queue is swapped with it, so nothing is moved one by one and
    /// both buffers keep their capacity (a multi-group host passes the same
    /// scratch queue to every group it drains). A driver that feeds the
    /// node while executing these outputs (a compaction, say) calls it
    /// again for what that produced.
    pub fn drain_outputs(&mut self, into: &mut VecDeque<Output>) {
        if self.outputs.is_empty() {
            self.flush();
        }
        move_queue(&mut self.outputs, into);
    }

    /// Moves everything produced since the last drain into the output queue:
    /// the write first, then AppendEntries, messages, applies and reads.
    /// Called only on an empty output queue: the staged outputs become the
    /// queue by a swap of the two buffers, not one move per output.
    // Out of line: `poll_output` runs once per output and flushes once
    // per drain, and inlined this body made every call save and restore
    // the registers it needs.
    #[inline(never)]
    pub(super) fn flush(&mut self) {
        debug_assert!(self.outputs.is_empty(), "flushed only when drained");
        if !self.staged_write.is_empty() {
            let mut write = core::mem::take(&mut self.staged_write);
            write.seq = self.next_seq;
            self.next_seq += 1;
            let clip = core::mem::replace(&mut self.staged_clip, LogIndex::MAX);
            self.durable_index = self.durable_index.min(clip);
            self.pending_writes.push_back(PendingWrite {
                seq: write.seq,
                last_index: self.log.last_index(),
                clip,
                hard_state: write.hard_state,
            });
            // Ahead of everything staged so far and of what the sends
            // below stage: the write leaves first.
            self.staged.push_front(Output::Persist(write));
        }
        self.send_pending_appends();
        self.maybe_start_read_round();
        core::mem::swap(&mut self.outputs, &mut self.staged);
        let applied = self.log.applied();
        let commit = self.log.commit();
        if commit > applied {
            let mut entries = core::mem::take(&mut self.apply_buffer);
            entries.extend(self.log.entries(applied + 1, commit).cloned());
            if let Role::Leader(leader) = &mut self.role {
                let bytes: usize = entries.iter().map(Entry::size).sum();
                leader.uncommitted_bytes = leader.uncommitted_bytes.saturating_sub(bytes);
            }
            self.log.applied_to(commit);
            self.outputs.push_back(Output::Apply(entries));
        }
    }
}

/// Moves everything in `from` to the end of `into`, in order: by swapping
/// the two when `into` is empty, so that both keep their capacity and
/// nothing is moved one by one (the drains of a node and of a host).
pub(crate) fn move_queue<T>(from: &mut VecDeque<T>, into: &mut VecDeque<T>) {
    if into.is_empty() {
        core::mem::swap(into, from);
    } else {
        into.extend(from.drain(..));
    }
}
