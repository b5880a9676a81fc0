//! Snapshots and log compaction (§7): the application compacts the log,
//! the leader streams its snapshot in bounded chunks to a follower whose
//! missing entries were compacted away, and the follower installs it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::Bytes;

use super::api::{Output, Rejected};
use super::message::{InstallSnapshot, InstallSnapshotResponse, Message};
use super::node::{Node, SnapshotAssembly};
use super::progress::ProgressState;
use super::types::{LogIndex, NodeId, Snapshot, SnapshotMeta};

/// Chunks of a snapshot sent ahead of the follower's acknowledgement.
const SNAPSHOT_WINDOW_CHUNKS: u64 = 4;

impl Node {
    /// The application snapshotted its state at `index`: drop the log up to it.
    pub(super) fn compact(&mut self, index: LogIndex, data: Bytes) -> Result<(), Rejected> {
        let snapshot_index = self.log.snapshot().index;
        let applied = self.log.applied();
        if index <= snapshot_index || index > applied {
            return Err(Rejected::CompactionIndex {
                index,
                snapshot_index,
                applied,
            });
        }
        let meta = SnapshotMeta {
            index,
            term: self
                .log
                .term_at(index)
                .expect("applied entries above the snapshot are held"),
            membership: self.log.membership_at(index),
        };
        self.log.install_snapshot(meta.clone());
        self.snapshot_data = data.clone();
        self.stage_snapshot(Snapshot { meta, data }, None);
        Ok(())
    }

    /// Sends the next chunks of the snapshot to `peer`, within the window.
    pub(super) fn maybe_send_snapshot(&mut self, peer: NodeId) {
        let chunk = self.config.snapshot_chunk_bytes as u64;
        let meta = self.log.snapshot().clone();
        let data = self.snapshot_data.clone();
        let total_len = data.len() as u64;
        let now = self.now;
        let term = self.term;
        let Some(progress) = self.role.follower_progress(peer) else {
            return;
        };
        let ProgressState::Snapshot {
            index,
            acked,
            sent,
            sent_at,
        } = &mut progress.state
        else {
            return;
        };
        if *index != meta.index {
            // A newer snapshot replaced the one being sent: start over with it.
            *index = meta.index;
            *acked = 0;
            *sent = 0;
        }
        let mut messages = Vec::new();
        while (*sent < total_len || (total_len == 0 && *sent == 0 && messages.is_empty()))
            && *sent < *acked + SNAPSHOT_WINDOW_CHUNKS * chunk
        {
            let offset = *sent;
            let end = (offset + chunk).min(total_len);
            messages.push(InstallSnapshot {
                term,
                meta: meta.clone(),
                total_len,
                offset,
                data: data.slice(offset as usize..end as usize),
                done: end == total_len,
            });
            *sent = end;
            *sent_at = now;
            if end == total_len {
                break;
            }
        }
        for message in messages {
            self.stats.snapshot_chunks_sent += 1;
            self.send(peer, Message::InstallSnapshot(Box::new(message)));
        }
    }

    pub(super) fn handle_install_snapshot(&mut self, from: NodeId, chunk: InstallSnapshot) {
        if !self.accept_leader(from) {
            return;
        }
        let index = chunk.meta.index;
        let respond = |node: &mut Node, received: u64, done: bool| {
            let response = Message::InstallSnapshotResponse(InstallSnapshotResponse {
                term: node.term,
                snapshot_index: index,
                received,
                done,
            });
            if done {
                node.send_when_durable(from, response);
            } else {
                node.send(from, response);
            }
        };
        if index <= self.log.commit() {
            // We already have everything it covers.
            self.incoming_snapshot = None;
            respond(self, chunk.total_len, true);
            return;
        }
        let same = self
            .incoming_snapshot
            .as_ref()
            .is_some_and(|a| a.meta == chunk.meta && a.total_len == chunk.total_len);
        if !same {
            if chunk.offset != 0 {
                respond(self, 0, false);
                return;
            }
            self.incoming_snapshot = Some(SnapshotAssembly {
                meta: chunk.meta.clone(),
                total_len: chunk.total_len,
                data: Vec::with_capacity(chunk.total_len.min(1 << 24) as usize),
            });
        }
        let assembly = self.incoming_snapshot.as_mut().expect("created above");
        let received = assembly.data.len() as u64;
        if chunk.offset != received {
            // A duplicate or a gap: tell the leader where we are.
            respond(self, received, false);
            return;
        }
        assembly.data.extend_from_slice(&chunk.data);
        let received = assembly.data.len() as u64;
        if !chunk.done {
            respond(self, received, false);
            return;
        }
        let assembly = self.incoming_snapshot.take().expect("checked above");
        let meta = assembly.meta;
        let data = Bytes::from(assembly.data);
        let old_commit = self.log.commit();
        let keeps_log = self.log.term_at(meta.index) == Some(meta.term);
        self.log.install_snapshot(meta.clone());
        self.snapshot_data = data.clone();
        let snapshot = Snapshot { meta, data };
        self.stage_snapshot(snapshot.clone(), (!keeps_log).then_some(old_commit));
        self.staged
            .push_back(Output::ApplySnapshot(Box::new(snapshot)));
        self.stats.snapshots_installed += 1;
        respond(self, received, true);
    }

    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        response: InstallSnapshotResponse,
    ) {
        let Some(progress) = self.role.answering_follower(from, &mut self.stats) else {
            return;
        };
        let ProgressState::Snapshot {
            index, acked, sent, ..
        } = &mut progress.state
        else {
            return;
        };
        if response.snapshot_index != *index {
            return;
        }
        if response.done {
            // Installed and durable: continue with entries right after it.
            let installed = *index;
            progress.update_match(installed);
            progress.next_index = installed + 1;
            progress.become_probe();
            self.maybe_commit();
            self.mark_append(from);
            return;
        }
        if response.received < *acked {
            // The follower started over (it restarted, or a new leader's
            // snapshot interrupted the transfer).
            *sent = response.received;
        }
        *acked = response.received;
        if *sent < *acked {
            *sent = *acked;
        }
        self.maybe_send_snapshot(from);
    }
}
