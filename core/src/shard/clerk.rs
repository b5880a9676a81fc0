//! The routing clerk (sans-IO): caches the latest configuration it knows,
//! sends each operation to the leader of the group owning the key's shard,
//! refreshes the configuration from the controller when a group answers
//! "wrong group", and keeps one client id and sequence number per
//! operation across every retry, so a write applies once even if its shard
//! moves between two attempts (the sessions move with the shard).
//!
//! Run loop: [`ShardClerk::start`] (or [`ShardClerk::start_controller`]) an
//! operation, drain [`ShardClerk::poll_output`] (requests to send, then the
//! completion), feed replies with [`ShardClerk::handle_reply`] (and
//! requests that could not be sent with [`ShardClerk::handle_unreachable`])
//! and call [`ShardClerk::handle_timeout`] at [`ShardClerk::poll_timeout`]. One
//! operation at a time; it is retried until it completes.
//!
//! With [`ShardClerkConfig::follower_reads`], a get goes to any server of
//! the owning group, drawn at random for each read, as a
//! [`HostRequest::FollowerRead`]: reads spread over every host, with the
//! same guarantees (the server serves it after a read index round with its
//! group's leader, and checks ownership on the state at that index).
//!
//! After a leader change, per group (and for the controller) the clerk
//! gives a server it tries **on a guess** only [`ShardClerkConfig::probe_ms`]
//! (see there), and **suspects** a server whose attempt timed out, or that
//! the driver reports unreachable ([`ShardClerk::handle_unreachable`]),
//! for one `retry_ms`: it picks the others first, and a leader hint naming
//! it is not followed. Any answer from it clears the suspicion. The late
//! success of an earlier attempt of the operation completes it (every
//! attempt carries the same session and sequence number), so a slow leader
//! given only a probe loses nothing.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

use super::controller::{ControllerOp, ControllerReply, ShardConfig};
use super::group::KvError;
use super::host::{HostReply, HostRequest};
use super::{GroupId, shard_of};
use crate::kv::Operation;
use crate::kv::clerk::Suspects;
use crate::raft::NodeId;
use crate::rng::Rng;
use crate::time::Instant;

/// How a clerk behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardClerkConfig {
    /// The controller's servers (host ids).
    pub controller: Vec<NodeId>,
    /// A request unanswered for this long is sent to the next server, ms.
    pub retry_ms: u64,
    /// How long to wait for an answer from a server tried without any sign
    /// that it leads its group (or the controller), ms (at most
    /// `retry_ms`): the first guess, or the next server after a timeout, an
    /// unreachable server or a refusal without a leader hint. A server that
    /// does not lead answers at once (`NotLeader`), so silence there means a
    /// dead, paused or cut off server, not a slow commit; a leader that is
    /// merely slow loses nothing, since the clerk still takes its late
    /// answer, and a follower's hint sends the retry back to it with the
    /// whole `retry_ms`. Follower reads always get `retry_ms`.
    pub probe_ms: u64,
    /// Wait before retrying a shard that has not arrived, or an unowned one, ms.
    pub backoff_ms: u64,
    /// Send gets to any server of the owning group, drawn at random for
    /// each read, followers included ([`HostRequest::FollowerRead`]).
    /// Off by default.
    pub follower_reads: bool,
}

impl ShardClerkConfig {
    /// A clerk of the controller at `controller`: retry after 100 ms (a
    /// probe too: the simulator's commits take up to about 80 ms, so a
    /// shorter probe would move on from live leaders), back off 50 ms.
    pub fn new(controller: Vec<NodeId>) -> ShardClerkConfig {
        ShardClerkConfig {
            controller,
            retry_ms: 100,
            probe_ms: 100,
            backoff_ms: 50,
            follower_reads: false,
        }
    }
}

/// What the clerk asks of its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardClerkOutput {
    /// Send this request to host `to`.
    Send {
        /// The host.
        to: NodeId,
        /// The request.
        request: HostRequest,
    },
    /// The key-value operation completed: the value read (gets), a
    /// definite refusal ([`KvError::TooLarge`]), or an unknown outcome
    /// ([`KvError::SessionExpired`]: the write's session was dropped while
    /// it was retried).
    Done(Result<Option<Bytes>, KvError>),
    /// The controller operation completed.
    ControllerDone(ControllerReply),
}

/// The clerk is already running an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClerkBusy;

#[derive(Clone, Debug)]
enum Task {
    Kv(Operation),
    Controller(ControllerOp),
}

#[derive(Clone, Debug)]
struct Current {
    task: Task,
    seq: u64,
    /// Fetching the latest configuration before (re)sending a key-value operation.
    refreshing: bool,
    /// Correlation id of the attempt in flight (0: none, waiting to resend).
    attempt: u64,
    /// Correlation id of this operation's first attempt: ids from it on are
    /// its attempts.
    first_attempt: u64,
    /// The server the latest attempt went to.
    sent_to: Option<NodeId>,
    /// A follower read: the position, among the owning group's servers, of
    /// the one asked (drawn at random, moved on after a failure).
    read_server: Option<usize>,
}

/// A sans-IO client of the sharded service. See the module documentation.
#[derive(Clone, Debug)]
pub struct ShardClerk {
    config: ShardClerkConfig,
    client: u64,
    seq: u64,
    next_attempt: u64,
    cached: Option<ShardConfig>,
    /// Index of the server believed to lead each group (controller: `CONTROLLER`).
    leaders: BTreeMap<GroupId, usize>,
    /// The groups (and the controller) whose entry in `leaders` rests on a
    /// sign (that server's own answer, or a hint naming it) rather than a
    /// guess: a guess is only given `probe_ms`.
    known: BTreeSet<GroupId>,
    /// Hosts that recently failed to answer (an attempt timed out, or the
    /// driver could not reach them), with the end of the suspicion: the
    /// clerk tries the others first and does not follow hints to them
    /// meanwhile. Any answer from one clears it.
    suspects: Suspects,
    current: Option<Current>,
    deadline: Instant,
    outputs: VecDeque<ShardClerkOutput>,
    /// Draws the server of each follower read.
    rng: Rng,
    /// Attempts given up after a probe (`probe_ms`, shorter than
    /// `retry_ms`) went unanswered.
    probes_expired: u64,
}

/// The controller's entry in `leaders` (no shard group uses `u64::MAX`).
const CONTROLLER_SLOT: GroupId = u64::MAX;

impl ShardClerk {
    /// A clerk with a random client id drawn from `seed`.
    pub fn new(config: ShardClerkConfig, seed: u64) -> ShardClerk {
        let mut rng = Rng::new(seed);
        let client = rng.next_u64() | 1;
        ShardClerk {
            config,
            client,
            seq: 0,
            next_attempt: 1,
            cached: None,
            leaders: BTreeMap::new(),
            known: BTreeSet::new(),
            suspects: Suspects::default(),
            probes_expired: 0,
            current: None,
            deadline: Instant::NEVER,
            outputs: VecDeque::new(),
            rng,
        }
    }

    /// Turns follower reads on or off (from the next operation on).
    pub fn set_follower_reads(&mut self, on: bool) {
        self.config.follower_reads = on;
    }

    /// The client id.
    pub fn client(&self) -> u64 {
        self.client
    }

    /// The configuration the clerk routes by.
    pub fn cached_config(&self) -> Option<&ShardConfig> {
        self.cached.as_ref()
    }

    /// How many attempts were given up after a probe went unanswered (a
    /// server tried on a guess, given `probe_ms` when that is shorter than
    /// `retry_ms`).
    pub fn probes_expired(&self) -> u64 {
        self.probes_expired
    }

    /// Whether an operation is running.
    pub fn is_busy(&self) -> bool {
        self.current.is_some()
    }

    /// Starts a key-value operation.
    pub fn start(&mut self, now: Instant, op: Operation) -> Result<(), ClerkBusy> {
        self.begin(now, Task::Kv(op))
    }

    /// Starts a controller operation (Join, Leave, Move, Query).
    pub fn start_controller(&mut self, now: Instant, op: ControllerOp) -> Result<(), ClerkBusy> {
        self.begin(now, Task::Controller(op))
    }

    fn begin(&mut self, now: Instant, task: Task) -> Result<(), ClerkBusy> {
        if self.current.is_some() {
            return Err(ClerkBusy);
        }
        let is_read = matches!(&task, Task::Kv(op) if !op.is_write());
        self.seq += 1;
        let refreshing = matches!(task, Task::Kv(_)) && self.cached.is_none();
        let read_server =
            (is_read && self.config.follower_reads).then(|| self.rng.next_u64() as usize);
        self.current = Some(Current {
            task,
            seq: self.seq,
            refreshing,
            attempt: 0,
            first_attempt: self.next_attempt,
            sent_to: None,
            read_server,
        });
        self.send(now);
        Ok(())
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<ShardClerkOutput> {
        self.outputs.pop_front()
    }

    /// When to call [`ShardClerk::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }

    /// Time has passed: resend an unanswered request to the next server.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.deadline {
            return;
        }
        let Some(current) = &self.current else {
            self.deadline = Instant::NEVER;
            return;
        };
        if current.attempt != 0 {
            // Unanswered: that server may be down; try the next one.
            if self.attempt_timeout(self.slot()) < self.config.retry_ms {
                self.probes_expired += 1;
            }
            if let Some(server) = current.sent_to {
                self.suspect(now, server);
            }
            self.next_server(now);
        }
        self.send(now);
    }

    /// The group (or the controller) the current attempt goes to.
    fn slot(&self) -> GroupId {
        match &self.current {
            Some(Current {
                task: Task::Kv(op),
                refreshing: false,
                ..
            }) => self.owner(op),
            _ => CONTROLLER_SLOT,
        }
    }

    /// Whether the current attempt is a follower read.
    fn is_follower_read(&self) -> bool {
        matches!(
            &self.current,
            Some(Current {
                read_server: Some(_),
                refreshing: false,
                ..
            })
        )
    }

    fn owner(&self, op: &Operation) -> GroupId {
        match &self.cached {
            Some(c) => c.owner(shard_of(op.key(), c.shards.len() as u32)),
            None => 0,
        }
    }

    fn servers(&self, slot: GroupId) -> &[NodeId] {
        if slot == CONTROLLER_SLOT {
            return &self.config.controller;
        }
        self.cached
            .as_ref()
            .and_then(|c| c.groups.get(&slot))
            .map_or(&[], |s| s.as_slice())
    }

    fn send(&mut self, now: Instant) {
        let Some(current) = &self.current else {
            return;
        };
        if let (Task::Kv(op), false) = (&current.task, current.refreshing)
            && self.owner(op) == 0
        {
            // No owner known: refresh (the service may have no group yet).
            if let Some(c) = &mut self.current {
                c.refreshing = true;
            }
        }
        let slot = self.slot();
        let servers = self.servers(slot);
        if servers.is_empty() {
            self.deadline = Instant(now.as_millis() + self.config.backoff_ms);
            return;
        }
        let index = self.position(slot) % servers.len();
        let to = servers[index];
        let id = self.next_attempt;
        self.next_attempt += 1;
        let Some(current) = &mut self.current else {
            return;
        };
        current.attempt = id;
        current.sent_to = Some(to);
        let (client, seq) = (self.client, current.seq);
        let request = match (&current.task, current.refreshing) {
            (Task::Kv(_), true) => HostRequest::Controller {
                id,
                client,
                seq: 0,
                op: ControllerOp::Query(None),
            },
            (Task::Kv(Operation::Get { key }), false) if current.read_server.is_some() => {
                HostRequest::FollowerRead {
                    id,
                    group: slot,
                    key: key.clone(),
                }
            }
            (Task::Kv(op), false) => HostRequest::Kv {
                id,
                group: slot,
                client,
                seq,
                op: op.clone(),
            },
            (Task::Controller(op), _) => HostRequest::Controller {
                id,
                client,
                seq,
                op: op.clone(),
            },
        };
        self.outputs
            .push_back(ShardClerkOutput::Send { to, request });
        self.deadline = Instant(now.as_millis() + self.attempt_timeout(slot));
    }

    /// Waits `backoff_ms`, then sends again.
    fn back_off(&mut self, now: Instant) {
        if let Some(c) = &mut self.current {
            c.attempt = 0;
        }
        self.deadline = Instant(now.as_millis() + self.config.backoff_ms);
    }

    /// Host `from` answered. Of the replies to earlier attempts, only a
    /// key-value success is taken (it answers the operation as well as the
    /// latest attempt's would: every attempt carries the same session and
    /// sequence number, and a read was served after the operation began);
    /// the rest are stale and ignored. Any reply clears the suspicion of
    /// `from`.
    /// An export's answer ([`HostReply::Export`]: the clerk never asks for
    /// one) is ignored.
    pub fn handle_reply(&mut self, now: Instant, from: NodeId, reply: HostReply) {
        self.suspects.clear(from);
        let (id, hint) = match &reply {
            HostReply::Controller { id, result } => (*id, result.as_ref().err()),
            HostReply::Kv { id, result } => (*id, result.as_ref().err()),
            HostReply::Export { .. } => return,
        };
        // A hint naming a server that just failed to answer is most likely
        // stale: a leader that went silent is still named by followers
        // that have not noticed yet. Following it would wait out another
        // attempt there; the others are asked instead until one names
        // somebody else or the suspicion ends.
        let suspect_hint = match hint {
            Some(KvError::NotLeader {
                leader_hint: Some(hint),
            }) => self.is_suspect(now, *hint),
            _ => false,
        };
        let Some(current) = &self.current else {
            return;
        };
        let refreshing = current.refreshing;
        if current.attempt != id || id == 0 {
            let earlier = id >= current.first_attempt && id < self.next_attempt;
            if let (
                true,
                Task::Kv(_),
                HostReply::Kv {
                    result: Ok(value), ..
                },
            ) = (earlier, &current.task, reply)
            {
                self.finish(Ok(value));
            }
            return;
        }
        // A follower read's answer says nothing about who leads.
        let leads = !self.is_follower_read()
            && match &reply {
                HostReply::Controller { result, .. } => result.is_ok(),
                HostReply::Kv { result, .. } => !matches!(
                    result,
                    Err(KvError::NotLeader { .. } | KvError::Busy | KvError::WrongGroup)
                ),
                HostReply::Export { .. } => false,
            };
        let slot = self.slot();
        if leads {
            self.known.insert(slot);
        }
        match reply {
            HostReply::Controller { result, .. } => match result {
                Ok(ControllerReply::Config(config)) if refreshing => {
                    let newer = self.cached.as_ref().is_none_or(|c| config.num > c.num);
                    let unchanged = !newer;
                    if newer {
                        self.adopt(config);
                    }
                    if let Some(c) = &mut self.current {
                        c.refreshing = false;
                    }
                    if unchanged {
                        // Nothing new yet: the groups are mid-change.
                        self.back_off(now);
                    } else {
                        self.send(now);
                    }
                }
                Ok(reply) if !refreshing => {
                    self.current = None;
                    self.deadline = Instant::NEVER;
                    self.outputs
                        .push_back(ShardClerkOutput::ControllerDone(reply));
                }
                Ok(_) => self.send(now),
                Err(KvError::NotLeader {
                    leader_hint: Some(hint),
                }) if !suspect_hint => {
                    self.follow(now, slot, Some(hint));
                    self.send(now);
                }
                Err(_) => {
                    self.follow(now, slot, None);
                    self.back_off(now);
                }
            },
            HostReply::Kv { result, .. } => match result {
                Ok(value) => self.finish(Ok(value)),
                Err(KvError::TooLarge) => self.finish(Err(KvError::TooLarge)),
                Err(KvError::SessionExpired) => {
                    // Its session in the shard was dropped after this write,
                    // or a later one, was applied: the outcome is unknown.
                    self.finish(Err(KvError::SessionExpired))
                }
                Err(KvError::Stale) => {
                    // Only a duplicate of an answered request is stale, and
                    // this clerk runs one request at a time: unreachable
                    // with a correct service; report it rather than loop.
                    self.finish(Err(KvError::Stale))
                }
                Err(KvError::WrongGroup) => {
                    if let Some(c) = &mut self.current {
                        c.refreshing = true;
                    }
                    self.send(now);
                }
                Err(KvError::NotArrived) => self.back_off(now),
                Err(KvError::NotLeader {
                    leader_hint: Some(hint),
                }) if !suspect_hint => {
                    self.follow(now, slot, Some(hint));
                    self.send(now);
                }
                Err(KvError::NotLeader { .. }) => {
                    // An election is under way (no hint), or the hint names
                    // a suspect: give it a moment, ask the others.
                    self.follow(now, slot, None);
                    self.back_off(now);
                }
                Err(KvError::Busy) => {
                    self.follow(now, slot, None);
                    self.back_off(now);
                }
            },
            HostReply::Export { .. } => {}
        }
    }

    fn finish(&mut self, result: Result<Option<Bytes>, KvError>) {
        self.current = None;
        self.deadline = Instant::NEVER;
        self.outputs.push_back(ShardClerkOutput::Done(result));
    }
}

mod pick;
#[cfg(test)]
mod tests;
