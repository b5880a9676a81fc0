//! The multi-group host: one server holding replicas of many Raft groups
//! (shard groups, and possibly the controller group) behind one step
//! function.
//!
//! # The run loop
//!
//! Exactly as for a single [`Node`]: feed a
//! [`HostInput`] with [`Host::handle`], drain [`HostOutput`]s with
//! [`Host::poll_output`] until `None`, sleep until the next input or
//! [`Host::poll_timeout`]. What changes is the granularity:
//!
//! - every message between two hosts is a [`HostBatch`]: all the messages
//!   of all groups that one input produced for one destination travel as
//!   one batch, each tagged with its group ([`HostMessage::Raft`]);
//! - all the writes of all groups that one input produced come out as one
//!   [`HostWrite`], acknowledged with one [`HostInput::Persisted`]: one
//!   fsync for the whole host (group commit across groups). A group's
//!   messages that depend on its writes are held back by its node until the
//!   acknowledgement, as for a single node, so the driver may send every
//!   batch as soon as it is polled;
//! - timers are coalesced: every group deadline is rounded up to the next
//!   multiple of [`HostConfig::tick_ms`], so the heartbeats of all the
//!   groups a host leads leave in the same step, and thus in one batch per
//!   destination host per tick (CockroachDB's coalesced heartbeats, by
//!   construction rather than by a special message). Rounding a deadline
//!   up only ever makes a timeout fire later, never earlier: election
//!   safety does not depend on timing at all, and CheckQuorum (a leader
//!   steps down when it has not heard from a quorum within an election
//!   timeout) only steps down later, by less than one tick. Leader leases
//!   would need that tick in their drift allowance, which is why a host
//!   refuses `lease_reads` ([`HostError::LeaseReads`]).
//!
//! # Hibernation
//!
//! With [`HostConfig::hibernate_after_ms`] set, a group that has had no
//! traffic for that long goes quiet (TiKV's hibernate regions): no timers,
//! no heartbeats. The protocol:
//!
//! 1. on its host's tick, the leader of a group whose every replica holds
//!    exactly its log (commit = applied = durable = last index on the
//!    leader, every follower's match index = last index), with no request
//!    waiting and no shard moving, sends [`HostMessage::Hibernate`] (term,
//!    index) to each follower;
//! 2. a follower agrees only if it follows that leader in that term and its
//!    own log is at that index, committed, applied and durable: it stops
//!    feeding its node timeouts and answers [`HostMessage::HibernateAck`];
//! 3. once every member agreed in the same term, with no change in
//!    between, the leader stops its timers too.
//!
//! A hibernating replica wakes (feeds [`Input::Wake`] and resumes its
//! timers) on any Raft message of its group other than a heartbeat of the
//! current term between its leader and followers, on a proposal (client
//! request, configuration step, shard insertion or deletion), and on a
//! suspected failure: hosts that hold sleeping groups send each other
//! [`HostMessage::Alive`] once per heartbeat interval when they have nothing
//! else to send, and a host that hears nothing at all from a peer for an
//! election timeout wakes every sleeping group that peer is a member of.
//! At rest, two hosts then exchange one small batch per heartbeat interval
//! in each direction, whatever the number of groups.
//!
//! Safety argument: hibernation only withholds [`Input::Timeout`] from a
//! node (and [`Input::Wake`] only restarts timers from now): no message is
//! forged, none is altered, no state is changed behind the node's back.
//! Raft's safety properties (Election Safety, Log Matching, Leader
//! Completeness, State Machine Safety) hold whatever the timing, so they
//! hold here. CheckQuorum is not weakened either: its job is to make a
//! leader cut off from its quorum stop serving within an election
//! timeout; a hibernating leader serves nothing (every request wakes it
//! first, and requests commit through the log, so a stale leader can
//! acknowledge nothing without a quorum), and once awake it checks its
//! quorum an election timeout later, like a newly elected leader. Leader
//! stickiness (a follower refusing votes while it hears from a leader)
//! counts from the follower's last contact with the leader, which ages
//! while it sleeps, so a hibernating follower never refuses a legitimate
//! election longer than an awake one would. What hibernation costs is
//! latency: a sleeping follower whose leader died learns it through the
//! host-level silence, an election timeout after the last batch, and then
//! campaigns (PreVote first).
//!
//! # Shard migration
//!
//! Every [`HostConfig::poll_ms`] the host acts for each shard group it
//! leads (see [`super::group`] for the state machine):
//!
//! 1. a settled group wants the configuration after its own: the host asks
//!    one controller server (rotating) once per configuration number its
//!    settled groups want ([`HostMessage::ConfigQuery`], so polling costs
//!    the same for one group or ten thousand); configurations are
//!    immutable, so any controller replica that has it may answer
//!    ([`HostMessage::ConfigReply`]), and the leader of every group waiting
//!    for that number proposes it to its own log;
//! 2. for each shard it is `Sending`, the leader pushes the shard's data
//!    and sessions to the new owner's servers ([`HostMessage::ShardPush`]);
//!    the new owner's leader proposes it to its own log, and once it is
//!    applied there (or the group has gone past that configuration) any of
//!    its servers answers [`HostMessage::ShardAck`];
//! 3. on the acknowledgement, the old owner's leader proposes
//!    [`GroupCommand::DeleteShard`].
//!
//! Safety argument: (a) a shard is served by at most one group at any
//! point of the history: a group serves a shard only while `Serving` in
//! configuration `n`; the old owner stops serving it when it applies
//! configuration `n` (its `Sending` state starts there), and the new owner
//! starts only when it applies the insertion of data that the old owner
//! exported after that point, so every write the old owner acknowledged is
//! in the data, and no write reaches the old owner afterwards. (b) data is
//! never lost: the old owner deletes only after the new owner's
//! acknowledgement, which is only sent once the insertion is applied,
//! i.e. committed in the new owner's log. (c) exactly-once: sessions move
//! with the data in the same insertion, so a retry at the new owner finds
//! the session state the old owner had when it stopped serving. (d) every
//! step is a log entry checked against the applied state (configuration
//! number and shard status), so duplicates, reordering and retries of these
//! messages, or a leader change mid-move, are harmless: a stale or repeated
//! command is ignored by every replica alike. Liveness needs a majority of
//! each of the two groups and the retries of the poll timer.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use super::controller::{
    Controller, ControllerCommand, ControllerOp, ControllerReply, ShardConfig,
};
use super::group::{GroupApplied, GroupCommand, KvError, ShardKv};
use super::{GroupId, ShardId};
use crate::kv::codec::DecodeError;
use crate::kv::{AppliedRecord, Operation, ReplyTo, StoreLimits};
use crate::raft::{
    Accepted, Config, ConfigError, Entry, Envelope, Input, LogIndex, Message, Node, NodeId, Output,
    PersistedState, Rejected, Term, Write,
};
use crate::time::Instant;

/// The group id of the shard controller in host messages.
pub const CONTROLLER: GroupId = 0;

/// Most shards a service may have (each configuration lists every shard's owner).
pub const MAX_SHARDS: u32 = 1 << 16;

/// How a host behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// This host's id (non-zero); it is the Raft node id of every replica here.
    pub id: NodeId,
    /// Number of shards of the service.
    pub shards: u32,
    /// The controller group's servers (host ids). If this host is one, it
    /// holds a controller replica.
    pub controller: Vec<NodeId>,
    /// The shard groups replicated here, with their servers (host ids).
    pub groups: BTreeMap<GroupId, Vec<NodeId>>,
    /// Raft timing and limits of every group (its `id`, `voters` and
    /// `learners` are set per group).
    pub raft: Config,
    /// State machine limits (the same on every host).
    pub limits: StoreLimits,
    /// Snapshot a group once this many entries were applied since its last one (0: never).
    pub snapshot_every: u64,
    /// Timer granularity, ms: group deadlines are rounded up to a multiple.
    pub tick_ms: u64,
    /// How often leaders ask for the next configuration and push shards, ms.
    pub poll_ms: u64,
    /// Record applied entries for [`Host::drain_applied`] (the simulator's checkers).
    pub record_applied: bool,
    /// Let a group with no traffic hibernate after this many ms (0: never).
    pub hibernate_after_ms: u64,
}

impl HostConfig {
    /// Host `id` with the default timing (Raft defaults, tick 10 ms, poll 100 ms).
    pub fn new(id: NodeId, shards: u32, controller: Vec<NodeId>) -> HostConfig {
        HostConfig {
            id,
            shards,
            controller,
            groups: BTreeMap::new(),
            raft: Config::new(id, [id]),
            limits: StoreLimits::default(),
            snapshot_every: 10_000,
            tick_ms: 10,
            poll_ms: 100,
            record_applied: false,
            hibernate_after_ms: 0,
        }
    }
}

/// Why a host could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// A group's Raft configuration is invalid.
    Config(GroupId, ConfigError),
    /// A group's persisted snapshot does not decode.
    Snapshot(GroupId, DecodeError),
    /// Group 0 is the controller's: shard groups need other ids.
    ReservedGroup,
    /// A listed group does not have this host among its servers.
    NotAMember(GroupId),
    /// Zero shards or more than [`MAX_SHARDS`], or a zero tick or poll interval.
    Timing,
    /// Lease reads are not supported across coalesced timers.
    LeaseReads,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Config(g, e) => write!(f, "group {g}: invalid configuration: {e}"),
            HostError::Snapshot(g, e) => write!(f, "group {g}: persisted snapshot is corrupt: {e}"),
            HostError::ReservedGroup => write!(f, "group 0 is reserved for the controller"),
            HostError::NotAMember(g) => write!(f, "this host is not a server of group {g}"),
            HostError::Timing => write!(
                f,
                "shards must be 1 to {MAX_SHARDS}, and tick_ms and poll_ms positive"
            ),
            HostError::LeaseReads => write!(f, "lease reads are not supported on a host"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HostError {}

/// A message between hosts, tagged with the group it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HostMessage {
    /// A Raft message of one group.
    Raft {
        /// The group.
        group: GroupId,
        /// The message (`from`/`to` are host ids).
        envelope: Envelope,
    },
    /// A shard group's leader asks a controller server for configuration `num`.
    ConfigQuery {
        /// The asking group.
        group: GroupId,
        /// The configuration wanted.
        num: u64,
    },
    /// A controller server's answer.
    ConfigReply {
        /// The group that asked.
        group: GroupId,
        /// The configuration.
        config: ShardConfig,
    },
    /// The old owner hands a shard over.
    ShardPush {
        /// The old owner.
        from_group: GroupId,
        /// The new owner.
        to_group: GroupId,
        /// The configuration the shard moves in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
        /// Its data and sessions ([`super::group::encode_shard`]).
        data: Bytes,
    },
    /// A leader proposes that its group hibernate: every replica is at
    /// `index`, nothing is moving.
    Hibernate {
        /// The group.
        group: GroupId,
        /// The leader's term.
        term: Term,
        /// Its last (committed, applied) index.
        index: LogIndex,
    },
    /// A follower agreed and stopped its timers for `group`.
    HibernateAck {
        /// The group.
        group: GroupId,
        /// The term it agreed in.
        term: Term,
    },
    /// Nothing else to send: this host is alive (sent only while some
    /// group is hibernating, at most once per heartbeat interval per peer).
    Alive,
    /// The new owner has the shard: the old owner may delete it.
    ShardAck {
        /// The old owner (the group that pushed).
        group: GroupId,
        /// The configuration the shard moved in.
        config_num: u64,
        /// The shard.
        shard: ShardId,
    },
}

impl HostMessage {
    /// A short name for traces (`Raft/AppendEntries`, `ShardPush`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            HostMessage::Raft { envelope, .. } => envelope.message.kind(),
            HostMessage::ConfigQuery { .. } => "ConfigQuery",
            HostMessage::ConfigReply { .. } => "ConfigReply",
            HostMessage::ShardPush { .. } => "ShardPush",
            HostMessage::ShardAck { .. } => "ShardAck",
            HostMessage::Hibernate { .. } => "Hibernate",
            HostMessage::HibernateAck { .. } => "HibernateAck",
            HostMessage::Alive => "Alive",
        }
    }
}

/// Everything one step produced for one destination host.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HostBatch {
    /// Sending host.
    pub from: NodeId,
    /// Receiving host.
    pub to: NodeId,
    /// The messages, in the order they were produced.
    pub messages: Vec<HostMessage>,
}

/// The writes of every group that one step produced: make them durable
/// (in order), then acknowledge with [`HostInput::Persisted`]`(seq)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostWrite {
    /// Position in the host's write stream.
    pub seq: u64,
    /// Each group's writes, in order (apply each to that group's storage
    /// as [`Write`] documents).
    pub writes: Vec<(GroupId, Write)>,
}

/// A client's request to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HostRequest {
    /// A shard controller request (to a controller server).
    Controller {
        /// Correlation id, echoed in the reply.
        id: u64,
        /// Client id (random, chosen by the client).
        client: u64,
        /// Sequence number of the client's changes.
        seq: u64,
        /// What is asked.
        op: ControllerOp,
    },
    /// A key-value operation for one group.
    Kv {
        /// Correlation id, echoed in the reply.
        id: u64,
        /// The group the client believes owns the key.
        group: GroupId,
        /// Client id (random, chosen by the client).
        client: u64,
        /// Sequence number of the client's writes.
        seq: u64,
        /// The operation.
        op: Operation,
    },
}

/// A host's answer to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum HostReply {
    /// Answer to [`HostRequest::Controller`].
    Controller {
        /// The request's id.
        id: u64,
        /// The controller's reply, or why this server could not get one.
        result: Result<ControllerReply, KvError>,
    },
    /// Answer to [`HostRequest::Kv`].
    Kv {
        /// The request's id.
        id: u64,
        /// The value read (gets), or why it failed.
        result: Result<Option<Bytes>, KvError>,
    },
}

/// Input to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostInput {
    /// Time has passed.
    Timeout,
    /// A batch from another host.
    Batch(HostBatch),
    /// A client request.
    Client {
        /// Where the reply goes.
        from: ReplyTo,
        /// The request.
        request: HostRequest,
    },
    /// Host writes up to this seq are durable.
    Persisted(u64),
}

/// Output of a host, in the order the driver must execute them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOutput {
    /// Make durable, then acknowledge.
    Persist(HostWrite),
    /// Send to another host.
    Send(HostBatch),
    /// Answer a client.
    Reply {
        /// Where the request came from.
        to: ReplyTo,
        /// The answer.
        reply: HostReply,
    },
}

/// Why the host refused an input (driver misuse).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostRejected {
    /// `Persisted(seq)` names a write never emitted.
    UnknownWrite {
        /// The seq acknowledged.
        seq: u64,
        /// The last seq emitted.
        last: u64,
    },
}

/// What a host dropped or did, for tests and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Batches received.
    pub batches_received: u64,
    /// Batches sent.
    pub batches_sent: u64,
    /// Messages inside received batches.
    pub messages_received: u64,
    /// Batches for another host, and Raft messages whose addresses disagree with their batch.
    pub misaddressed: u64,
    /// Messages for a group not hosted here.
    pub unknown_group: u64,
    /// Shard pushes and configuration replies that did not fit the group's state.
    pub ignored: u64,
    /// Times a group went to sleep here.
    pub hibernations: u64,
    /// Times a hibernating group woke up here.
    pub wakes: u64,
    /// Wakes caused by a peer host gone silent.
    pub suspicions: u64,
}

/// The state machine of a hosted group.
#[derive(Clone, Debug)]
enum Machine {
    Controller(Controller),
    Kv(ShardKv),
}

/// Which kind of request a waiter answers.
#[derive(Clone, Copy, Debug)]
enum ReplyKind {
    Controller,
    Kv,
}

#[derive(Clone, Debug)]
struct Waiter {
    term: Term,
    to: ReplyTo,
    id: u64,
    kind: ReplyKind,
}

/// One hosted replica: a Raft node and its state machine.
#[derive(Clone, Debug)]
struct Hosted {
    node: Node,
    machine: Machine,
    waiters: BTreeMap<LogIndex, Waiter>,
    /// The deadline registered in the host's timer set.
    deadline: Instant,
    /// The last internal command proposed, and when (not repeated sooner than a poll).
    last_internal: Option<(Bytes, Instant)>,
    /// No timeouts are fed while set (see the module docs).
    hibernating: bool,
    /// Followers that agreed to hibernate in the leader's current term.
    hibernate_acks: BTreeSet<NodeId>,
    /// (last index, commit index, term) at the last change, and when it changed.
    activity: ((LogIndex, LogIndex, Term), Instant),
}

/// A server hosting replicas of many groups. See the module documentation.
#[derive(Clone, Debug)]
pub struct Host {
    config: HostConfig,
    /// Boxed: B-tree nodes hold eleven values inline, and a replica is
    /// about a kilobyte, so unboxed half-full nodes would double it.
    groups: BTreeMap<GroupId, Box<Hosted>>,
    timers: BTreeSet<(Instant, GroupId)>,
    next_poll: Instant,
    now: Instant,
    touched: BTreeSet<GroupId>,
    writes: Vec<(GroupId, Write)>,
    outbox: BTreeMap<NodeId, Vec<HostMessage>>,
    replies: Vec<(ReplyTo, HostReply)>,
    outputs: VecDeque<HostOutput>,
    next_seq: u64,
    /// Host write seq → the last seq of each group it carried.
    unacked: BTreeMap<u64, Vec<(GroupId, u64)>>,
    applied: Vec<(GroupId, AppliedRecord)>,
    stats: HostStats,
    /// The other hosts this one shares a group with, with when a batch
    /// last came from each, and when one last went to each.
    peers: BTreeMap<NodeId, (Instant, Instant)>,
}

impl Host {
    /// A host that has never run.
    pub fn new(config: HostConfig, seed: u64, now: Instant) -> Result<Host, HostError> {
        Host::restart(config, seed, now, BTreeMap::new())
    }

    /// A host restarting from each group's stable storage.
    pub fn restart(
        config: HostConfig,
        seed: u64,
        now: Instant,
        mut persisted: BTreeMap<GroupId, PersistedState>,
    ) -> Result<Host, HostError> {
        if config.shards == 0
            || config.shards > MAX_SHARDS
            || config.tick_ms == 0
            || config.poll_ms == 0
        {
            return Err(HostError::Timing);
        }
        if config.raft.lease_reads {
            return Err(HostError::LeaseReads);
        }
        if config.groups.contains_key(&CONTROLLER) {
            return Err(HostError::ReservedGroup);
        }
        let mut members: Vec<(GroupId, &Vec<NodeId>)> =
            config.groups.iter().map(|(g, s)| (*g, s)).collect();
        if config.controller.contains(&config.id) {
            members.push((CONTROLLER, &config.controller));
        }
        let mut groups = BTreeMap::new();
        for (group, servers) in members {
            if !servers.contains(&config.id) {
                return Err(HostError::NotAMember(group));
            }
            let mut raft = config.raft.clone();
            raft.id = config.id;
            raft.voters = servers.clone();
            raft.learners = Vec::new();
            let state = persisted.remove(&group).unwrap_or_default();
            let empty = if group == CONTROLLER {
                Machine::Controller(Controller::new(config.shards))
            } else {
                Machine::Kv(ShardKv::new(group, config.shards, config.limits))
            };
            let machine = match &state.snapshot {
                Some(snapshot) => restore(&empty, snapshot.data.clone())
                    .map_err(|e| HostError::Snapshot(group, e))?,
                None => empty,
            };
            let group_seed = seed ^ group.wrapping_add(1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            let node = Node::restart(raft, group_seed, now, state)
                .map_err(|e| HostError::Config(group, e))?;
            groups.insert(
                group,
                Box::new(Hosted {
                    node,
                    machine,
                    waiters: BTreeMap::new(),
                    deadline: Instant::NEVER,
                    last_internal: None,
                    hibernating: false,
                    hibernate_acks: BTreeSet::new(),
                    activity: ((0, 0, 0), now),
                }),
            );
        }
        let mut host = Host {
            next_poll: Instant(now.as_millis() + config.poll_ms),
            config,
            groups,
            timers: BTreeSet::new(),
            now,
            touched: BTreeSet::new(),
            writes: Vec::new(),
            outbox: BTreeMap::new(),
            replies: Vec::new(),
            outputs: VecDeque::new(),
            next_seq: 1,
            unacked: BTreeMap::new(),
            applied: Vec::new(),
            stats: HostStats::default(),
            peers: BTreeMap::new(),
        };
        let id = host.config.id;
        let peers: BTreeSet<NodeId> = host
            .groups
            .values()
            .flat_map(|h| h.node.membership().members().collect::<Vec<_>>())
            .filter(|p| *p != id)
            .collect();
        host.peers = peers.into_iter().map(|p| (p, (now, now))).collect();
        let ids: Vec<GroupId> = host.groups.keys().copied().collect();
        host.touched.extend(ids);
        host.flush();
        Ok(host)
    }

    /// This host's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Its configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The Raft node of a hosted group.
    pub fn node(&self, group: GroupId) -> Option<&Node> {
        self.groups.get(&group).map(|h| &h.node)
    }

    /// Every hosted group's node, by group id.
    pub fn nodes(&self) -> impl Iterator<Item = (GroupId, &Node)> {
        self.groups.iter().map(|(g, h)| (*g, &h.node))
    }

    /// The shard state machine of a hosted group.
    pub fn kv(&self, group: GroupId) -> Option<&ShardKv> {
        match &self.groups.get(&group)?.machine {
            Machine::Kv(kv) => Some(kv),
            Machine::Controller(_) => None,
        }
    }

    /// The controller replica, if this host holds one.
    pub fn controller(&self) -> Option<&Controller> {
        match &self.groups.get(&CONTROLLER)?.machine {
            Machine::Controller(c) => Some(c),
            Machine::Kv(_) => None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &HostStats {
        &self.stats
    }

    /// Entries and snapshots applied since the last call, per group (empty
    /// unless `record_applied` is set).
    pub fn drain_applied(&mut self) -> Vec<(GroupId, AppliedRecord)> {
        core::mem::take(&mut self.applied)
    }

    /// When the host next needs [`HostInput::Timeout`]: the earliest group
    /// deadline or poll, rounded up to a multiple of the tick. Valid once
    /// the outputs are drained.
    pub fn poll_timeout(&self) -> Instant {
        let mut first = self
            .timers
            .first()
            .map_or(Instant::NEVER, |(t, _)| *t)
            .min(self.next_poll);
        if self.config.hibernate_after_ms > 0 {
            // Host liveness: send `Alive`, and suspect silent peers.
            first = first.min(Instant(
                self.now.as_millis() + self.config.raft.heartbeat_interval,
            ));
        }
        if first == Instant::NEVER {
            return first;
        }
        let tick = self.config.tick_ms;
        Instant(first.as_millis().div_ceil(tick).saturating_mul(tick))
    }

    /// The next output, or `None` until the next input. Everything the
    /// inputs fed since the last drain produced comes out together: one
    /// write, one batch per destination.
    pub fn poll_output(&mut self) -> Option<HostOutput> {
        if self.outputs.is_empty() {
            self.flush();
        }
        self.outputs.pop_front()
    }

    /// Feeds one input. Bad input from peers and clients is dropped,
    /// counted or answered; only driver misuse is an error. Several inputs
    /// may be fed before draining [`Host::poll_output`]: their writes and
    /// messages are then batched together.
    pub fn handle(&mut self, now: Instant, input: HostInput) -> Result<(), HostRejected> {
        self.now = self.now.max(now);
        let now = self.now;
        match input {
            HostInput::Timeout => {
                while let Some(&(deadline, group)) = self.timers.first() {
                    if deadline > now {
                        break;
                    }
                    self.timers.pop_first();
                    if let Some(hosted) = self.groups.get_mut(&group) {
                        hosted.deadline = Instant::NEVER;
                        let _ = hosted.node.handle(now, Input::Timeout);
                        self.touched.insert(group);
                    }
                }
                if now >= self.next_poll {
                    self.next_poll = Instant(now.as_millis() + self.config.poll_ms);
                    self.poll_migrations(now);
                }
                if self.config.hibernate_after_ms > 0 {
                    self.maybe_hibernate(now);
                    self.check_peers(now);
                }
            }
            HostInput::Batch(batch) => {
                self.stats.batches_received += 1;
                if batch.to != self.config.id {
                    self.stats.misaddressed += 1;
                } else {
                    if let Some((seen, _)) = self.peers.get_mut(&batch.from) {
                        *seen = now;
                    }
                    for message in batch.messages {
                        self.handle_message(now, batch.from, message);
                    }
                }
            }
            HostInput::Client { from, request } => self.handle_client(now, from, request),
            HostInput::Persisted(seq) => {
                let last = self.next_seq - 1;
                if seq > last {
                    return Err(HostRejected::UnknownWrite { seq, last });
                }
                let mut acks: BTreeMap<GroupId, u64> = BTreeMap::new();
                while let Some(entry) = self.unacked.first_entry() {
                    if *entry.key() > seq {
                        break;
                    }
                    for (group, group_seq) in entry.remove() {
                        acks.insert(group, group_seq);
                    }
                }
                for (group, group_seq) in acks {
                    if let Some(hosted) = self.groups.get_mut(&group) {
                        let _ = hosted.node.handle(now, Input::Persisted(group_seq));
                        self.touched.insert(group);
                    }
                }
            }
        }
        Ok(())
    }

    fn handle_message(&mut self, now: Instant, from: NodeId, message: HostMessage) {
        self.stats.messages_received += 1;
        match message {
            HostMessage::Raft { group, envelope } => {
                if envelope.from != from || envelope.to != self.config.id {
                    self.stats.misaddressed += 1;
                    return;
                }
                if !self.groups.contains_key(&group) {
                    self.stats.unknown_group += 1;
                    return;
                }
                // A heartbeat (or its answer) of the current term between a
                // hibernating group's leader and followers changes nothing:
                // it does not wake the group. Anything else does.
                let benign = self.groups.get(&group).is_some_and(|h| {
                    let term = h.node.term();
                    match &envelope.message {
                        Message::Heartbeat(m) => m.term == term && h.node.leader() == Some(from),
                        Message::HeartbeatResponse(m) => m.term == term && h.node.is_leader(),
                        _ => false,
                    }
                });
                if !benign {
                    self.wake(now, group);
                }
                if let Some(hosted) = self.groups.get_mut(&group) {
                    let _ = hosted.node.handle(now, Input::Message(envelope));
                    self.touched.insert(group);
                }
            }
            HostMessage::Hibernate { group, term, index } => {
                let Some(hosted) = self.groups.get_mut(&group) else {
                    self.stats.unknown_group += 1;
                    return;
                };
                let node = &hosted.node;
                let log = node.log();
                let agrees = !node.is_leader()
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
                        self.touched.insert(group);
                    }
                    self.outbox
                        .entry(from)
                        .or_default()
                        .push(HostMessage::HibernateAck { group, term });
                } else {
                    self.stats.ignored += 1;
                }
            }
            HostMessage::HibernateAck { group, term } => {
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
                        self.touched.insert(group);
                    }
                }
            }
            HostMessage::Alive => {}
            HostMessage::ConfigQuery { group, num } => {
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
            HostMessage::ConfigReply { group: _, config } => {
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
                        Machine::Kv(kv) if kv.config().num + 1 == config.num && kv.is_settled() => {
                            Some(*g)
                        }
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
            HostMessage::ShardPush {
                from_group,
                to_group,
                config_num,
                shard,
                data,
            } => {
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
            HostMessage::ShardAck {
                group,
                config_num,
                shard,
            } => {
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
        }
    }

    /// Proposes a configuration step, an insertion or a deletion, if this
    /// replica leads its group and did not propose the same command within
    /// the last poll interval.
    fn propose_internal(&mut self, now: Instant, group: GroupId, command: GroupCommand) {
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
    fn poll_migrations(&mut self, now: Instant) {
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

    /// Asks this host's replica of `group` to hand its leadership to host
    /// `to` (leadership transfer, §3.10 of the Raft dissertation), e.g. to
    /// spread the groups' leaders over the hosts. Refused unless it leads
    /// the group; what it sends comes out with the next drain.
    pub fn transfer_leadership(
        &mut self,
        now: Instant,
        group: GroupId,
        to: NodeId,
    ) -> Result<(), Rejected> {
        self.now = self.now.max(now);
        let now = self.now;
        self.wake(now, group);
        let Some(hosted) = self.groups.get_mut(&group) else {
            return Err(Rejected::NotLeader { leader_hint: None });
        };
        hosted.node.handle(now, Input::TransferLeadership(to))?;
        self.touched.insert(group);
        Ok(())
    }

    /// Whether `group` is hibernating here.
    pub fn is_hibernating(&self, group: GroupId) -> bool {
        self.groups.get(&group).is_some_and(|h| h.hibernating)
    }

    /// Resumes the timers of a hibernating group.
    fn wake(&mut self, now: Instant, group: GroupId) {
        let Some(hosted) = self.groups.get_mut(&group) else {
            return;
        };
        hosted.hibernate_acks.clear();
        if !hosted.hibernating {
            return;
        }
        hosted.hibernating = false;
        hosted.activity.1 = now;
        self.stats.wakes += 1;
        let _ = hosted.node.handle(now, Input::Wake);
        self.touched.insert(group);
    }

    /// Asks the followers of every idle group this host leads to hibernate.
    fn maybe_hibernate(&mut self, now: Instant) {
        let after = self.config.hibernate_after_ms;
        let id = self.config.id;
        for (group, hosted) in &self.groups {
            let node = &hosted.node;
            if hosted.hibernating
                || !node.is_leader()
                || !hosted.waiters.is_empty()
                || node.transfer_target().is_some()
                || now.as_millis() < hosted.activity.1.as_millis() + after
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
                        .entry(member)
                        .or_default()
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
    fn check_peers(&mut self, now: Instant) {
        let heartbeat = self.config.raft.heartbeat_interval;
        let suspect_after = self.config.raft.election_timeout_min;
        let any_hibernating = self.groups.values().any(|h| h.hibernating);
        let mut silent = Vec::new();
        for (peer, (seen, sent)) in &self.peers {
            if any_hibernating && now.as_millis() >= sent.as_millis() + heartbeat {
                self.outbox
                    .entry(*peer)
                    .or_default()
                    .push(HostMessage::Alive);
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

    fn handle_client(&mut self, now: Instant, from: ReplyTo, request: HostRequest) {
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
                self.touched.insert(group);
            }
            Ok(Accepted::Done) | Err(Rejected::NotLeader { .. }) => {
                let leader_hint = hosted.node.leader();
                self.reply(from, kind, id, Err(KvError::NotLeader { leader_hint }));
            }
            Err(_) => self.reply(from, kind, id, Err(KvError::Busy)),
        }
    }

    fn reply(&mut self, to: ReplyTo, kind: ReplyKind, id: u64, result: Result<(), KvError>) {
        let reply = match result {
            Ok(()) => unreachable!("only failures are answered directly"),
            Err(e) => failed(kind, id, e),
        };
        self.replies.push((to, reply));
    }

    /// Drains every touched group, then turns what they produced into
    /// outputs: one write, one batch per destination, the replies.
    fn flush(&mut self) {
        // Messages to this host itself (a controller server asking itself,
        // a group pushing to a co-located replica) are handled at once;
        // each round can only answer the previous one, so this ends.
        for _ in 0..4 {
            while let Some(group) = self.touched.pop_first() {
                self.drain_group(group);
            }
            let Some(local) = self.outbox.remove(&self.config.id) else {
                break;
            };
            let (id, now) = (self.config.id, self.now);
            for message in local {
                self.handle_message(now, id, message);
            }
        }
        if !self.writes.is_empty() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let writes = core::mem::take(&mut self.writes);
            let mut last: BTreeMap<GroupId, u64> = BTreeMap::new();
            for (group, write) in &writes {
                last.insert(*group, write.seq);
            }
            self.unacked.insert(seq, last.into_iter().collect());
            self.outputs
                .push_back(HostOutput::Persist(HostWrite { seq, writes }));
        }
        for (to, messages) in core::mem::take(&mut self.outbox) {
            if to == self.config.id {
                continue;
            }
            if let Some((_, sent)) = self.peers.get_mut(&to) {
                *sent = self.now;
            }
            self.stats.batches_sent += 1;
            self.outputs.push_back(HostOutput::Send(HostBatch {
                from: self.config.id,
                to,
                messages,
            }));
        }
        for (to, reply) in core::mem::take(&mut self.replies) {
            self.outputs.push_back(HostOutput::Reply { to, reply });
        }
    }

    fn drain_group(&mut self, group: GroupId) {
        let Some(hosted) = self.groups.get_mut(&group) else {
            return;
        };
        let record = self.config.record_applied;
        while let Some(output) = hosted.node.poll_output() {
            match output {
                Output::Persist(write) => self.writes.push((group, write)),
                Output::Send(envelope) => self
                    .outbox
                    .entry(envelope.to)
                    .or_default()
                    .push(HostMessage::Raft { group, envelope }),
                Output::Apply(entries) => {
                    let last = entries.last().map(|e| e.index);
                    for entry in entries {
                        apply_entry(hosted, &entry, &mut self.replies);
                        if record {
                            self.applied.push((
                                group,
                                AppliedRecord::Entry {
                                    index: entry.index,
                                    term: entry.term,
                                    digest: entry.payload.digest(),
                                },
                            ));
                        }
                    }
                    if let Some(last) = last
                        && self.config.snapshot_every > 0
                        && last >= hosted.node.log().snapshot().index + self.config.snapshot_every
                    {
                        let data = snapshot(&hosted.machine);
                        if record {
                            self.applied.push((
                                group,
                                AppliedRecord::Snapshot {
                                    index: last,
                                    term: hosted.node.log().term_at(last).unwrap_or(0),
                                    digest: crate::kv::replica::digest(&data),
                                },
                            ));
                        }
                        let now = hosted.node.now();
                        // Cannot fail: `last` is applied and above the snapshot.
                        let _ = hosted
                            .node
                            .handle(now, Input::Compact { index: last, data });
                    }
                }
                Output::ApplySnapshot(snapshot) => {
                    // The leader made it with the same code: a snapshot that
                    // does not decode leaves the state as it was (and the
                    // checkers' digests then tell the replicas apart).
                    if let Ok(machine) = restore(&hosted.machine, snapshot.data.clone()) {
                        hosted.machine = machine;
                    }
                    if record {
                        self.applied.push((
                            group,
                            AppliedRecord::Snapshot {
                                index: snapshot.meta.index,
                                term: snapshot.meta.term,
                                digest: crate::kv::replica::digest(&snapshot.data),
                            },
                        ));
                    }
                }
                Output::ReadReady { .. } | Output::ReadFailed { .. } => {}
            }
        }
        if !hosted.node.is_leader() && !hosted.waiters.is_empty() {
            let leader_hint = hosted.node.leader();
            for (_, waiter) in core::mem::take(&mut hosted.waiters) {
                self.replies.push((
                    waiter.to,
                    failed(waiter.kind, waiter.id, KvError::NotLeader { leader_hint }),
                ));
            }
        }
        let log = hosted.node.log();
        let mark = (log.last_index(), log.commit(), hosted.node.term());
        if mark != hosted.activity.0 {
            hosted.activity = (mark, hosted.node.now());
            hosted.hibernate_acks.clear();
        }
        let deadline = if hosted.hibernating {
            Instant::NEVER
        } else {
            hosted.node.poll_timeout()
        };
        if deadline != hosted.deadline {
            self.timers.remove(&(hosted.deadline, group));
            hosted.deadline = deadline;
            if deadline != Instant::NEVER {
                self.timers.insert((deadline, group));
            }
        }
    }
}

fn failed(kind: ReplyKind, id: u64, error: KvError) -> HostReply {
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

fn apply_entry(hosted: &mut Hosted, entry: &Entry, replies: &mut Vec<(ReplyTo, HostReply)>) {
    let reply = match &mut hosted.machine {
        Machine::Controller(c) => c
            .apply(entry.index, &entry.payload)
            .map(|r| (ReplyKind::Controller, Ok(r), None)),
        Machine::Kv(kv) => match kv.apply(entry.index, &entry.payload) {
            Some(GroupApplied::Client(result)) => Some((ReplyKind::Kv, Err(()), Some(result))),
            _ => None,
        },
    };
    let Some(waiter) = hosted.waiters.remove(&entry.index) else {
        return;
    };
    let reply = match reply {
        Some(_) if waiter.term != entry.term => failed(
            waiter.kind,
            waiter.id,
            KvError::NotLeader {
                leader_hint: hosted.node.leader(),
            },
        ),
        Some((ReplyKind::Controller, Ok(r), _)) => HostReply::Controller {
            id: waiter.id,
            result: Ok(r),
        },
        Some((_, _, Some(result))) => HostReply::Kv {
            id: waiter.id,
            result,
        },
        // Our proposal's index holds something else: ours was lost.
        _ => failed(
            waiter.kind,
            waiter.id,
            KvError::NotLeader {
                leader_hint: hosted.node.leader(),
            },
        ),
    };
    replies.push((waiter.to, reply));
}

fn snapshot(machine: &Machine) -> Bytes {
    match machine {
        Machine::Controller(c) => c.snapshot(),
        Machine::Kv(kv) => kv.snapshot(),
    }
}

fn restore(like: &Machine, data: Bytes) -> Result<Machine, DecodeError> {
    Ok(match like {
        Machine::Controller(_) => Machine::Controller(Controller::restore(data)?),
        Machine::Kv(kv) => Machine::Kv(kv.restore(data)?),
    })
}

#[cfg(test)]
mod tests;
