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
//!   refuses `lease_reads` ([`HostError::LeaseReads`]). A group's entry in
//!   the host's timer set may be earlier than its node's deadline: it is
//!   re-armed lazily (a follower pushes its election deadline back on
//!   every append), and when it comes due the host re-registers the real
//!   deadline instead of feeding the node. A node gets
//!   [`Input::Timeout`] only once its own deadline has passed;
//! - per-group costs are kept to the work itself: a Raft message is routed
//!   with one lookup, a step's batches and write are sized once, and a
//!   group quiet for an election timeout (or hibernating) has its node
//!   free its empty queues ([`Node::release_buffers`]), so an idle replica
//!   holds little memory while a busy one keeps them from step to step.
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
//! # Follower reads
//!
//! [`HostRequest::FollowerRead`] lets any replica of a group serve a
//! linearizable get (TiKV's follower read): its node asks the group's
//! leader for a read index ([`Input::FollowerRead`]), the leader confirms
//! it with a heartbeat round as for its own reads, and the replica answers
//! once it has applied that index, checking ownership on that state: a
//! replica that lagged behind a move answers [`KvError::WrongGroup`],
//! never a value its group no longer owns (the argument is on
//! `serve_ready_reads` in `apply.rs`). A replica with reads pending does
//! not hibernate.
//!
//! # Backups
//!
//! [`HostRequest::Export`] takes one shard's data and sessions at a
//! linearizable point, for a backup of the whole service (the native
//! `snapshot save`, shard after shard): it waits for a read index exactly
//! as a follower read does, at any replica, and exports the shard if the
//! group serves it on the state that applied that index, with the same
//! argument. The export is held by the host and fetched in chunks of
//! [`EXPORT_CHUNK_BYTES`] (a shard may be larger than a message) until
//! its last chunk is served; up to [`EXPORTS_HELD`] are held per host (the
//! least recently used gives way, and one idle for [`EXPORT_IDLE_MS`] is
//! dropped), so a chunk of an export let go since is refused with
//! [`KvError::Busy`] and the backup starts that shard over.
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
//! 2. for each shard it is `Sending`, the leader pushes the shard's data,
//!    sessions and session tombstones to one server of the new owner
//!    ([`HostMessage::ShardPush`]): the one that acknowledged last (its
//!    leader, as only a leader proposes an insertion), or the next of its
//!    servers when the previous round went unanswered for a poll interval,
//!    so a push costs the shard's size once per round, not once per
//!    server. The new owner's leader proposes it to its own log and
//!    answers [`HostMessage::ShardAck`] as soon as the insertion is
//!    applied; any of its servers also answers a push of a shard it has
//!    already received (or whose configuration it has gone past);
//! 3. on the acknowledgement, the old owner's leader proposes
//!    [`GroupCommand::DeleteShard`].
//!
//! A shard whose export (its keys and values, and its sessions) is larger
//! than [`HostConfig::shard_part_bytes`] (1 MiB by default) moves in parts
//! instead, so that no message and no log entry grows with the shard's
//! keys (an entry is limited to `Config::max_entry_bytes`; a shard is
//! not): each [`HostMessage::ShardPushPart`] carries the keys that follow
//! the largest key the new owner reported holding, in order, up to about
//! that size (at least one key), and the last part the sessions, in a part
//! of their own (of no keys) if they would make the last keys' part larger
//! than a part. The sessions are not split: a shard's session table must
//! fit an entry (at the default limits, a hundred thousand sessions and as
//! many tombstones take about 3.8 MB, under an entry's 4 MiB). The new owner's
//! leader proposes a part only if it follows what the shard holds
//! (`GroupCommand::InsertShardPart`, whose apply checks the same on every
//! replica, so a repeated or reordered part is ignored) and answers
//! [`HostMessage::ShardPartAck`] with its progress, at once and again when
//! the part is applied; the old owner then sends the next part to the
//! server that answered. It keeps up to
//! [`HostConfig::shard_parts_in_flight`] parts on their way ahead of that
//! progress (each part's `after` the largest key of the one before), and
//! the new owner's leader also proposes a part that comes after the last
//! one it proposed, so their round trips overlap. A part that does not
//! follow the one before in the log (one lost on the way) is ignored at
//! apply, like those after it; the old owner starts its window over from
//! the progress it heard after a poll interval without new progress, and
//! the new owner proposes again the part after what it holds once its
//! last proposal is a poll interval old. Which parts are sent and
//! proposed is only the hosts' guess: the apply's check alone decides
//! what goes in, so the arguments below do not depend on it. The shard stays `Pulling` (answering
//! `NotArrived`) until the last part is applied, and is acknowledged with
//! [`HostMessage::ShardAck`] as a whole: steps 3 and the arguments below
//! are the same, the data of the parts being a partition of the frozen
//! shard in key order (the old owner's copy does not change while
//! `Sending`). The parts already in are part of the group's state, so a
//! snapshot keeps them.
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
//! command is ignored by every replica alike. Which server a push goes to
//! is only a guess kept by the host (not replicated): a wrong guess costs
//! a poll interval, never safety. (e) exactly-once across dropped sessions:
//! a session dropped by expiry or eviction leaves a tombstone of its
//! client's latest sequence number, which moves with the shard like the
//! sessions, so a retry from before the drop is refused at the old owner
//! and at the new one alike ([`crate::kv::session`]). Liveness needs a
//! majority of each of the two groups and the retries of the poll timer.
//!
//! # Retirement: groups that left
//!
//! A group that left the configuration (Leave) hands its shards over as
//! above and then holds nothing; its replicas are retired so that nothing
//! is kept forever (no state machine, node, timers, peer bookkeeping or log
//! on any host). The protocol:
//!
//! 1. on the poll timer, every replica (leader or not) of a group that has
//!    applied a configuration without its group and holds no shard (every
//!    `Sending` shard was acknowledged by its new owner and deleted), and
//!    has been so for [`HostConfig::retire_after_ms`], asks a controller
//!    server ([`HostMessage::RetireQuery`] with its configuration number),
//!    again every tenth of that interval (at least a poll);
//! 2. a controller server that has applied the group's retirement answers
//!    [`HostMessage::Retired`]; otherwise, if it leads the controller group
//!    and the conditions of [`ControllerOp::Retire`] hold, it proposes the
//!    retirement to the controller's log: the group was a member of an
//!    earlier configuration and is in none from the asker's to the latest;
//! 3. a host told [`HostMessage::Retired`] by a controller server or by a
//!    server of the group drops its replica (pending requests are answered
//!    as for a lost leadership), remembers the group as retired, and emits
//!    [`HostOutput::Retired`] for its storage. It tells the group's other
//!    servers at once, and answers any later Raft message of that group
//!    with [`HostMessage::Retired`], so a replica that lagged (never
//!    applied the Leave, or was down) learns it from its first vote request
//!    or append, and never recreates the group.
//!
//! Safety argument: (a) no data is lost: the asking replica applied a
//! state, committed in its group's log, where the group owns no shard and
//! every shard it owned was deleted only after its new owner acknowledged
//! the insertion (committed in the new owner's log, see above); a lagging
//! replica holds a prefix of that log, so dropping it loses nothing either.
//! (b) the group is never needed again: the controller retires it only if
//! no configuration from the asker's on gives it a shard, so no group ever
//! waits for a push from it; and it refuses any later Join
//! of that id ([`ControllerError::Retired`](super::ControllerError::Retired)), since its replicas are gone.
//! An old owner may still be pushing to it, though: one whose
//! acknowledgement was lost, and which lagged while the new owner went on
//! through later configurations and retired. A host that retired the
//! group acknowledges such a push itself: the retired group went past the
//! push's configuration (the controller retires it only from a
//! configuration after every one that gives it a shard), which it could
//! do only once it had inserted every shard it pulled in it.
//! A Join that the controller's log orders before the retirement makes the
//! retirement refused, and the group steps into that configuration as
//! usual. (c) Raft's safety holds: dropping a replica is a crash that never
//! restarts, and [`HostMessage::Retired`] is only believed from a
//! controller server or a server of the group, which say it only once the
//! controller's log holds the retirement. (d) clients: a request routed
//! with an old configuration to a host that retired the group is answered
//! [`KvError::WrongGroup`], as for any group not hosted, and the clerk asks
//! the controller again. Until [`HostConfig::retire_after_ms`] has passed,
//! a group that left may join again under its id (6.5840's tests do).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use super::controller::{
    Controller, ControllerCommand, ControllerOp, ControllerReply, ShardConfig,
};
use super::group::{GroupApplied, GroupCommand, KvError, ShardKv, ShardStatus};
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

mod apply;
mod clients;
mod config;
mod exports;
mod groups;
mod hibernation;
mod inbound;
mod messages;
mod migration;
mod retire;
mod step;

use apply::{Outbox, restore};
use clients::failed;
pub use config::{HostConfig, HostError, SHARD_PART_BYTES, SHARD_PARTS_IN_FLIGHT};
use exports::HeldExports;
pub use exports::{EXPORT_IDLE_MS, EXPORTS_HELD};
use groups::GroupMap;
pub use messages::{
    EXPORT_CHUNK_BYTES, ExportChunk, HostBatch, HostInput, HostMessage, HostOutput, HostRejected,
    HostReply, HostRequest, HostStats, HostWrite,
};
use migration::{PartWindow, PushTarget};

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
    Export,
}

#[derive(Clone, Debug)]
struct Waiter {
    term: Term,
    to: ReplyTo,
    id: u64,
    kind: ReplyKind,
}

/// A follower read ([`HostRequest::FollowerRead`]) or a shard's export
/// ([`HostRequest::Export`]) waiting for its read index, or for its
/// replica to apply that far.
#[derive(Clone, Debug)]
struct ReadWaiter {
    to: ReplyTo,
    id: u64,
    what: ReadWhat,
}

/// What a [`ReadWaiter`] reads once its index is applied.
#[derive(Clone, Debug)]
enum ReadWhat {
    /// A key's value.
    Key(Bytes),
    /// A shard's data and sessions, for a backup.
    Export(ShardId),
}

/// One hosted replica: a Raft node and its state machine.
#[derive(Clone, Debug)]
struct Hosted {
    node: Node,
    machine: Machine,
    waiters: BTreeMap<LogIndex, Waiter>,
    /// Follower reads waiting for their read index, by the read id given
    /// to the node.
    reads: BTreeMap<u64, ReadWaiter>,
    /// Follower reads whose index is confirmed, waiting until this replica
    /// has applied that far (then the ownership check and the read happen
    /// on the state at or after the read index).
    ready_reads: Vec<(LogIndex, ReadWaiter)>,
    /// The deadline registered in the host's timer set: never later than
    /// the node's own (re-armed lazily at the end of a drain, see `host::apply`).
    deadline: Instant,
    /// The last internal command proposed, and when (not repeated sooner than a poll).
    last_internal: Option<(Bytes, Instant)>,
    /// No timeouts are fed while set (see the module docs).
    hibernating: bool,
    /// Followers that agreed to hibernate in the leader's current term.
    hibernate_acks: BTreeSet<NodeId>,
    /// (last index, commit index, term) at the last change, and when it changed.
    activity: ((LogIndex, LogIndex, Term), Instant),
    /// Since when this replica has applied a configuration without its
    /// group and holds no shard (see "Retirement"), and when it next asks
    /// the controller to retire the group.
    left: Option<(Instant, Instant)>,
    /// In the host's `touched` list since its last drain: the hot paths
    /// (messages, proposals, acknowledgements, timeouts) list it once
    /// instead of once per input (see [`Hosted::touch`]).
    queued: bool,
}

impl Hosted {
    /// Lists `group` (this replica's id) in `touched` for the next drain,
    /// unless it is listed already. Other paths may push a group directly:
    /// the drain sorts and deduplicates the list anyway.
    #[inline]
    fn touch(&mut self, group: GroupId, touched: &mut Vec<GroupId>) {
        if !self.queued {
            self.queued = true;
            touched.push(group);
        }
    }
}

/// A server hosting replicas of many groups. See the module documentation.
#[derive(Clone, Debug)]
pub struct Host {
    config: HostConfig,
    /// Boxed: a replica is about a kilobyte, and the vector moves its
    /// elements when it grows or a group retires.
    groups: GroupMap,
    timers: BTreeSet<(Instant, GroupId)>,
    next_poll: Instant,
    now: Instant,
    /// Groups fed since their last drain (duplicates allowed: sorted and
    /// deduplicated when drained, cheaper than a set per message).
    touched: Vec<GroupId>,
    writes: Vec<(GroupId, Write)>,
    outbox: Outbox,
    /// Groups drained in this flush: the capacity of a new outbox or write vector.
    step_groups: usize,
    replies: Vec<(ReplyTo, HostReply)>,
    outputs: VecDeque<HostOutput>,
    /// Scratch queue that each drained group's outputs are swapped into.
    node_outputs: VecDeque<Output>,
    next_seq: u64,
    /// (host write seq, group, group write seq) for every group write of
    /// the host writes not yet acknowledged, in host seq order.
    unacked: VecDeque<(u64, GroupId, u64)>,
    /// The groups a `Persisted` acknowledges, with their seqs (kept for
    /// the next acknowledgement's capacity).
    acks: Vec<(GroupId, u64)>,
    applied: Vec<(GroupId, AppliedRecord)>,
    stats: HostStats,
    /// The other hosts this one shares a group with, with when a batch
    /// last came from each, and when one last went to each.
    peers: BTreeMap<NodeId, (Instant, Instant)>,
    /// Where the shards moving to each group are pushed: one of its
    /// servers, the one believed to lead it (see `poll_migrations`).
    push_targets: BTreeMap<GroupId, PushTarget>,
    /// Insertions proposed here from a push, by (group, configuration,
    /// shard): the host and group that pushed, acknowledged as soon as the
    /// insertion is applied.
    push_senders: BTreeMap<(GroupId, u64, ShardId), (NodeId, GroupId)>,
    /// Shards moving in parts, on the new owner's leader, by (group,
    /// configuration, shard): the progress last reported to the old owner,
    /// and the `after` of the last part proposed here, and when. See
    /// `migration`.
    parts_acked: BTreeMap<(GroupId, u64, ShardId), Option<Bytes>>,
    parts_proposed: BTreeMap<(GroupId, u64, ShardId), (Option<Bytes>, Instant)>,
    /// Shards moving in parts, on the old owner's leader, by (old owner,
    /// configuration, shard): the progress heard and the parts in flight.
    part_windows: BTreeMap<(GroupId, u64, ShardId), PartWindow>,
    /// The read id of the next follower read (unique on this host).
    next_read: u64,
    /// Groups retired here: never hosted again (see "Retirement").
    retired: BTreeSet<GroupId>,
    /// Groups retired since the last drain, announced after its write.
    newly_retired: Vec<GroupId>,
    /// The shard exports backups are fetching (see "Backups").
    exports: HeldExports,
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
            if group != CONTROLLER && config.retired.contains(&group) {
                continue;
            }
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
                    reads: BTreeMap::new(),
                    ready_reads: Vec::new(),
                    deadline: Instant::NEVER,
                    last_internal: None,
                    hibernating: false,
                    hibernate_acks: BTreeSet::new(),
                    activity: ((0, 0, 0), now),
                    left: None,
                    queued: false,
                }),
            );
        }
        let groups = GroupMap::from_sorted(groups.into_iter().collect());
        let mut host = Host {
            next_poll: Instant(now.as_millis() + config.poll_ms),
            config,
            groups,
            timers: BTreeSet::new(),
            now,
            touched: Vec::new(),
            writes: Vec::new(),
            outbox: Outbox::default(),
            step_groups: 0,
            replies: Vec::new(),
            outputs: VecDeque::new(),
            node_outputs: VecDeque::new(),
            next_seq: 1,
            unacked: VecDeque::new(),
            acks: Vec::new(),
            applied: Vec::new(),
            stats: HostStats::default(),
            peers: BTreeMap::new(),
            push_targets: BTreeMap::new(),
            push_senders: BTreeMap::new(),
            parts_acked: BTreeMap::new(),
            parts_proposed: BTreeMap::new(),
            part_windows: BTreeMap::new(),
            next_read: 1,
            retired: BTreeSet::new(),
            newly_retired: Vec::new(),
            exports: HeldExports::default(),
        };
        host.retired = host.config.retired.clone();
        host.retired.remove(&CONTROLLER);
        host.peers = host
            .peer_hosts()
            .into_iter()
            .map(|p| (p, (now, now)))
            .collect();
        host.touched = host.groups.keys().copied().collect();
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

    /// The groups retired here (see "Retirement").
    pub fn retired(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.retired.iter().copied()
    }

    /// Counters.
    pub fn stats(&self) -> &HostStats {
        &self.stats
    }

    /// The shards this host keeps a record of moving (sent in parts, or
    /// pulled in parts or pushed here): `(group, configuration, shard)`.
    /// Each is forgotten within a poll interval once its move is over here,
    /// so this is empty on a host whose groups have settled.
    pub fn moves_recorded(&self) -> BTreeSet<(GroupId, u64, ShardId)> {
        let sending = self.part_windows.keys();
        let receiving = self.parts_acked.keys().chain(self.parts_proposed.keys());
        sending
            .chain(receiving)
            .chain(self.push_senders.keys())
            .copied()
            .collect()
    }

    /// Entries and snapshots applied since the last call, per group (empty
    /// unless `record_applied` is set).
    pub fn drain_applied(&mut self) -> Vec<(GroupId, AppliedRecord)> {
        core::mem::take(&mut self.applied)
    }
}
