//! A replica: one Raft node plus the key-value state machine, serving
//! clients. This is what every driver runs (the simulator, the browser and
//! the native server), so none of them holds service logic of its own.
//!
//! The run loop is the node's: feed [`ReplicaInput`]s with
//! [`Replica::handle`], drain [`ReplicaOutput`]s with
//! [`Replica::poll_output`], and wake up at [`Replica::poll_timeout`].
//! Persist before acknowledging with `ReplicaInput::Persisted`; send
//! messages and replies as they come.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::codec::DecodeError;
use super::store::{KvStore, StoreLimits};
use super::{ClientRequest, ClientResponse, NodeStatus};
use crate::hash::Fnv;
use crate::raft::{
    Config, ConfigError, Entry, Envelope, Input, LogIndex, MembershipChange, Node, NodeId, Output,
    PersistedState, Rejected, Term, Write,
};
use crate::time::Instant;

mod backup;
pub use backup::{BACKUP_CHUNK_BYTES, BACKUP_IDLE_MS, BACKUPS_HELD};
mod clients;
mod members;
#[cfg(test)]
mod tests;

/// Identifies where a client request came from, so the reply can go back
/// there (a connection, a simulated client). Chosen by the driver.
pub type ReplyTo = u64;

/// Configuration of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// The Raft node's configuration.
    pub raft: Config,
    /// State machine limits (must be the same on every replica).
    pub limits: StoreLimits,
    /// Take a snapshot once this many entries were applied since the last one (0: never).
    pub snapshot_every: u64,
    /// Record every applied entry for `Replica::drain_applied` (the
    /// simulator's checkers use it; ignored without the `sim` feature, where
    /// nothing drains the records).
    pub record_applied: bool,
}

impl ReplicaConfig {
    /// Defaults for node `id` of a cluster of `voters`: snapshot every 10,000 entries.
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> ReplicaConfig {
        ReplicaConfig {
            raft: Config::new(id, voters),
            limits: StoreLimits::default(),
            snapshot_every: 10_000,
            record_applied: false,
        }
    }
}

/// Input to a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaInput {
    /// Time has passed.
    Timeout,
    /// A message from a peer replica.
    Peer(Envelope),
    /// A request from a client.
    Client {
        /// Where to send the reply.
        from: ReplyTo,
        /// The request.
        request: ClientRequest,
    },
    /// Writes up to this seq are durable.
    Persisted(u64),
    /// Campaign now.
    Campaign,
    /// Hand leadership to this node.
    TransferLeadership(NodeId),
    /// Snapshot the state machine and compact the log now.
    Snapshot,
    /// Change the membership by one server (leader only).
    ChangeMembership(MembershipChange),
}

/// Output of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaOutput {
    /// Make durable, then acknowledge with [`ReplicaInput::Persisted`].
    Persist(Write),
    /// Send to a peer.
    Send(Envelope),
    /// Answer a client.
    Reply {
        /// Where the request came from.
        to: ReplyTo,
        /// The answer.
        response: ClientResponse,
    },
}

/// An entry (or snapshot) applied to the state machine, for checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedRecord {
    /// The entry at `index` of `term`, whose payload hashes to `digest` ([`crate::raft::Payload::digest`]).
    Entry {
        /// Index.
        index: LogIndex,
        /// Term.
        term: Term,
        /// FNV hash of the payload.
        digest: u64,
    },
    /// The state machine was replaced by a snapshot at `index` whose data hashes to `digest`.
    Snapshot {
        /// Index.
        index: LogIndex,
        /// Term.
        term: Term,
        /// FNV hash of the snapshot data.
        digest: u64,
    },
}

/// Why a replica could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaError {
    /// The Raft configuration is invalid.
    Config(ConfigError),
    /// The persisted snapshot does not decode.
    Snapshot(DecodeError),
}

impl core::fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReplicaError::Config(e) => write!(f, "invalid configuration: {e}"),
            ReplicaError::Snapshot(e) => write!(f, "persisted snapshot is corrupt: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReplicaError {}

/// A Raft node and the key-value state machine it replicates.
#[derive(Clone, Debug)]
pub struct Replica {
    node: Node,
    store: KvStore,
    snapshot_every: u64,
    writes: BTreeMap<LogIndex, Vec<clients::WriteWaiter>>,
    proposed: BTreeMap<clients::WriteKey, LogIndex>,
    reads: BTreeMap<u64, clients::ReadWaiter>,
    /// Follower reads waiting for their index. Unlike `reads`, they are not
    /// failed when this replica is not the leader: the node answers every
    /// one of them (`ReadReady` or `ReadFailed`).
    follower_reads: BTreeMap<u64, clients::ReadWaiter>,
    ready_reads: VecDeque<(LogIndex, clients::ReadWaiter)>,
    next_read_id: u64,
    outputs: VecDeque<ReplicaOutput>,
    applied_records: Option<Vec<AppliedRecord>>,
    failure: Option<String>,
    /// The backup snapshots being fetched.
    backups: backup::HeldBackups,
    /// Follower reads answered while this replica was not the leader.
    follower_reads_served: u64,
}

impl Replica {
    /// A replica that has never run (its node owes no leader a lease, see
    /// [`Node::new`]).
    pub fn new(config: ReplicaConfig, seed: u64, now: Instant) -> Result<Replica, ReplicaError> {
        let store = KvStore::new(config.limits);
        let node = Node::new(config.raft.clone(), seed, now).map_err(ReplicaError::Config)?;
        Ok(Replica::with_node(node, store, &config))
    }

    /// A replica restarting from its stable storage.
    pub fn restart(
        config: ReplicaConfig,
        seed: u64,
        now: Instant,
        persisted: PersistedState,
    ) -> Result<Replica, ReplicaError> {
        let store = match &persisted.snapshot {
            Some(snapshot) => KvStore::restore(snapshot.data.clone(), config.limits)
                .map_err(ReplicaError::Snapshot)?,
            None => KvStore::new(config.limits),
        };
        let node = Node::restart(config.raft.clone(), seed, now, persisted)
            .map_err(ReplicaError::Config)?;
        Ok(Replica::with_node(node, store, &config))
    }

    fn with_node(node: Node, store: KvStore, config: &ReplicaConfig) -> Replica {
        Replica {
            node,
            store,
            snapshot_every: config.snapshot_every,
            writes: BTreeMap::new(),
            proposed: BTreeMap::new(),
            reads: BTreeMap::new(),
            follower_reads: BTreeMap::new(),
            ready_reads: VecDeque::new(),
            next_read_id: 1,
            outputs: VecDeque::new(),
            applied_records: (cfg!(any(test, feature = "sim")) && config.record_applied)
                .then(Vec::new),
            failure: None,
            backups: backup::HeldBackups::default(),
            follower_reads_served: 0,
        }
    }

    /// Feeds one input. Client requests never fail here: their errors are replies.
    pub fn handle(&mut self, now: Instant, input: ReplicaInput) -> Result<(), Rejected> {
        match input {
            ReplicaInput::Timeout => {
                self.backups.drop_idle(now);
                self.node.handle(now, Input::Timeout).map(drop)
            }
            ReplicaInput::Peer(envelope) => {
                self.node.handle(now, Input::Message(envelope)).map(drop)
            }
            ReplicaInput::Persisted(seq) => self.node.handle(now, Input::Persisted(seq)).map(drop),
            ReplicaInput::Campaign => self.node.handle(now, Input::Campaign).map(drop),
            ReplicaInput::TransferLeadership(to) => self
                .node
                .handle(now, Input::TransferLeadership(to))
                .map(drop),
            ReplicaInput::ChangeMembership(change) => self
                .node
                .handle(now, Input::ChangeMembership(change))
                .map(drop),
            ReplicaInput::Snapshot => {
                self.drain_node();
                let applied = self.node.log().applied();
                if applied > self.node.log().snapshot().index {
                    let data = self.store.snapshot();
                    self.node.handle(
                        now,
                        Input::Compact {
                            index: applied,
                            data,
                        },
                    )?;
                }
                Ok(())
            }
            ReplicaInput::Client { from, request } => {
                self.handle_client(now, from, request);
                Ok(())
            }
        }
    }

    /// Proposes raw bytes to the Raft node, bypassing sessions (for tests of
    /// the Raft layer; the state machine skips commands it cannot decode).
    /// A test hook: only in tests and with the `sim` feature.
    #[cfg(any(test, feature = "sim"))]
    pub fn propose_raw(
        &mut self,
        now: Instant,
        command: bytes::Bytes,
    ) -> Result<(LogIndex, Term), Rejected> {
        use crate::raft::Accepted;
        match self.node.handle(now, Input::Propose(command))? {
            Accepted::Appended { index, term } => Ok((index, term)),
            Accepted::Done => Err(Rejected::NotLeader {
                leader_hint: self.node.leader(),
            }),
        }
    }

    /// The next output, or `None` until the next input.
    pub fn poll_output(&mut self) -> Option<ReplicaOutput> {
        if self.outputs.is_empty() {
            self.drain_node();
        }
        self.outputs.pop_front()
    }

    /// When the replica next needs [`ReplicaInput::Timeout`].
    pub fn poll_timeout(&self) -> Instant {
        self.node.poll_timeout()
    }

    /// Takes everything the node produced and acts on it.
    fn drain_node(&mut self) {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(write) => self.outputs.push_back(ReplicaOutput::Persist(write)),
                Output::Send(envelope) => self.outputs.push_back(ReplicaOutput::Send(envelope)),
                Output::Apply(entries) => self.apply(entries),
                Output::ApplySnapshot(snapshot) => {
                    match KvStore::restore(snapshot.data.clone(), self.store.limits()) {
                        Ok(store) => self.store = store,
                        // The leader produced it from the same code: a decode
                        // failure means corrupted state; stop serving rather
                        // than diverge.
                        Err(e) => {
                            self.failure = Some(alloc::format!(
                                "snapshot at {} is corrupt: {e}",
                                snapshot.meta.index
                            ))
                        }
                    }
                    if let Some(records) = &mut self.applied_records {
                        records.push(AppliedRecord::Snapshot {
                            index: snapshot.meta.index,
                            term: snapshot.meta.term,
                            digest: digest(&snapshot.data),
                        });
                    }
                }
                Output::ReadReady { id, index } => self.read_ready(id, index),
                Output::ReadFailed { id, .. } => self.read_failed(id),
            }
        }
        self.serve_ready_reads();
        if !self.node.is_leader() {
            self.fail_pending();
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        let last = entries.last().map(|e| e.index);
        for entry in entries {
            let applied = self.store.apply_entry(&entry);
            if let Some(records) = &mut self.applied_records {
                records.push(AppliedRecord::Entry {
                    index: entry.index,
                    term: entry.term,
                    digest: entry.payload.digest(),
                });
            }
            self.answer_writes(&entry, &applied);
        }
        if let Some(last) = last
            && self.snapshot_every > 0
            && last >= self.node.log().snapshot().index + self.snapshot_every
        {
            let data = self.store.snapshot();
            let now = self.node.now();
            if let Some(records) = &mut self.applied_records {
                records.push(AppliedRecord::Snapshot {
                    index: last,
                    term: self.node.log().term_at(last).unwrap_or(0),
                    digest: digest(&data),
                });
            }
            // Cannot fail: `last` is applied and above the snapshot.
            let _ = self.node.handle(now, Input::Compact { index: last, data });
        }
    }

    /// This replica's status.
    pub fn status(&self) -> NodeStatus {
        let log = self.node.log();
        NodeStatus {
            id: self.node.id(),
            role: self.node.role().name().to_string(),
            term: self.node.term(),
            leader: self.node.leader(),
            commit_index: log.commit(),
            applied_index: log.applied(),
            last_index: log.last_index(),
            durable_index: self.node.durable_index(),
            snapshot_index: log.snapshot().index,
            keys: self.store.len() as u64,
            sessions: self.store.sessions().len() as u64,
            fingerprint: self.store.fingerprint(),
            voters: self.node.membership().voters.clone(),
            learners: self.node.membership().learners.clone(),
            ready: self.node.leader().is_some() && log.applied() >= log.commit(),
            followers: self
                .node
                .progress()
                .map(|progress| {
                    // Members only: a removed node the leader still
                    // tells about its removal is no follower.
                    let membership = self.node.membership();
                    progress
                        .iter()
                        .filter(|(id, _)| membership.contains(**id))
                        .map(|(id, p)| (*id, p.match_index))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The Raft node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The state machine.
    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// Why the replica stopped serving, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Entries and snapshots applied since the last call (empty unless
    /// `record_applied` is set). For the simulator's checkers: only in tests
    /// and with the `sim` feature.
    #[cfg(any(test, feature = "sim"))]
    pub fn drain_applied(&mut self) -> Vec<AppliedRecord> {
        self.applied_records
            .as_mut()
            .map(core::mem::take)
            .unwrap_or_default()
    }

    /// Follower reads ([`RequestBody::FollowerRead`](super::RequestBody::FollowerRead))
    /// this replica answered with a value while it was not the leader, since
    /// it started: the reads it took off its leader.
    pub fn follower_reads_served(&self) -> u64 {
        self.follower_reads_served
    }

    /// Requests waiting for an answer here.
    pub fn pending_requests(&self) -> usize {
        self.writes.values().map(Vec::len).sum::<usize>()
            + self.reads.len()
            + self.follower_reads.len()
            + self.ready_reads.len()
    }
}

/// FNV hash of bytes.
pub fn digest(data: &[u8]) -> u64 {
    let mut hash = Fnv::new();
    hash.write(data);
    hash.finish()
}
