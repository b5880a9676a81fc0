//! Driving a [`ShardedSim`] from an interactive driver (the browser page):
//! operations are started without running the simulator and finish in
//! virtual time as their answers arrive, so the driver can advance time in
//! small slices and draw what happens in between; the messages in flight
//! and the history's linearizability (without the final reads of
//! [`ShardedSim::check_history`], which run the simulator) can be observed
//! at any moment.
//!
//! ```
//! use distribkv_core::sim::sharded::{AdminOp, ShardedConfig, ShardedSim};
//! use distribkv_core::shard::ControllerOp;
//! use distribkv_core::kv::Operation;
//! let mut sim = ShardedSim::new(ShardedConfig::small(7)).unwrap();
//! sim.join_all().unwrap();
//! let op = Operation::Put { key: "x".into(), value: "1".into() };
//! let id = sim.record_admin_invoke(&op);
//! sim.start_admin(AdminOp::Kv(op)).unwrap();
//! let done = sim.run_admin(10_000).expect("answered");
//! sim.settle_admin_kv(id, &done);
//! assert!(sim.history().operation(id).unwrap().is_completed());
//! assert!(sim.check_linearizable(distribkv_core::check::Budget::DEFAULT).is_ok());
//! ```

use alloc::vec::Vec;

use super::{AdminOp, Event, ShardedSim};
use crate::check::{self, Budget, CheckError, Linearizable};
use crate::kv::Operation;
use crate::shard::clerk::{ClerkBusy, ShardClerk, ShardClerkOutput};
use crate::shard::host::{HostBatch, HostMessage, HostReply, HostRequest};
use crate::shard::{GroupId, ShardId};
use crate::sim::network::{Endpoint, Network};

/// A message (or a batch of host messages) scheduled for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Its id, unique in the run: [`ShardedSim::in_flight_message`] and
    /// [`ShardedSim::drop_in_flight`] take it.
    pub id: u64,
    /// When it will be delivered (ms).
    pub deliver_at: u64,
    /// Sender: a host (of a reply, the host that answers), or a clerk (0 is
    /// the admin clerk, 1.. the workload's).
    pub from: Endpoint,
    /// Receiver.
    pub to: Endpoint,
    /// The kinds of the messages it carries (`AppendEntries`, `ShardPush`,
    /// `Kv`, `KvReply`, ...), in order.
    pub kinds: Vec<&'static str>,
    /// The shard moves it carries: (shard, from group, to group, configuration).
    pub pushes: Vec<(ShardId, GroupId, GroupId, u64)>,
    /// The groups its Raft messages belong to (in order, repeated).
    pub groups: Vec<GroupId>,
}

/// What an in-flight item carries, borrowed from the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InFlightContent<'a> {
    /// A batch of host messages (Raft messages of any group, shard
    /// pushes, configuration queries, ...).
    Batch(&'a HostBatch),
    /// A clerk's request to a host.
    Request {
        /// The clerk (0: the admin clerk, 1.. the workload's).
        from: u64,
        /// The host.
        to: crate::raft::NodeId,
        /// The request.
        request: &'a HostRequest,
    },
    /// A host's reply to a clerk.
    Reply {
        /// The host that replies (the `to` of the request it answers).
        from: crate::raft::NodeId,
        /// The clerk.
        clerk: u64,
        /// The reply.
        reply: &'a HostReply,
    },
}

/// One in-flight item with its content, for a driver's inspector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightMessage<'a> {
    /// Its id ([`InFlight::id`]).
    pub id: u64,
    /// When it will be delivered (ms).
    pub deliver_at: u64,
    /// What it carries.
    pub content: InFlightContent<'a>,
}

/// A workload clerk, as a driver shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadClient {
    /// Its number (1..): its endpoint is `Endpoint::Client(number)`.
    pub number: u64,
    /// The history id of its operation in flight.
    pub pending: Option<u64>,
    /// The configuration number it routes by.
    pub config_num: Option<u64>,
}

impl ShardedSim {
    /// Records in the history that the admin clerk (client 0) invokes the
    /// key-value operation `op` now; its history id. Start it with
    /// [`ShardedSim::start_admin`] (now or later: an invocation recorded
    /// early only widens the operation's interval).
    pub fn record_admin_invoke(&mut self, op: &Operation) -> u64 {
        self.record_invoke(0, op)
    }

    /// Starts an operation on the admin clerk (client 0) without running
    /// the simulator; refused while the admin clerk runs another one.
    pub fn start_admin(&mut self, op: AdminOp) -> Result<(), ClerkBusy> {
        if self.is_admin_busy() {
            return Err(ClerkBusy);
        }
        let now = self.now;
        match op {
            AdminOp::Kv(op) => self.clients[0].clerk.start(now, op)?,
            AdminOp::Controller(op) => self.clients[0].clerk.start_controller(now, op)?,
        }
        self.drain_clerk(0);
        Ok(())
    }

    /// Processes the next event or timer, however far ahead; false if
    /// nothing is scheduled.
    pub fn step_once(&mut self) -> bool {
        self.step(u64::MAX)
    }

    /// Whether the admin clerk runs an operation whose answer has not been
    /// taken by [`ShardedSim::run_admin`].
    pub fn is_admin_busy(&self) -> bool {
        self.clients[0].clerk.is_busy() || self.admin_result.is_some()
    }

    /// Runs until the admin clerk's operation ends or `limit` ms have
    /// passed; its result, if it ended (time then stops at that moment).
    pub fn run_admin(&mut self, limit: u64) -> Option<ShardClerkOutput> {
        self.run_until(limit, |s| s.admin_result.is_some());
        self.admin_result.take()
    }

    /// Records in the history how the admin key-value operation `id` ended.
    pub fn settle_admin_kv(&mut self, id: u64, output: &ShardClerkOutput) {
        let Some(op) = self.history.operation(id).map(|o| o.kind.clone()) else {
            return;
        };
        match output {
            ShardClerkOutput::Done(Ok(value)) => {
                let value = if op.is_write() {
                    None
                } else {
                    value.as_ref().map(|v| v.to_vec())
                };
                if let Err(e) = self.history.complete(id, self.now.as_millis(), value) {
                    self.violations.push(alloc::format!("history: {e:?}"));
                }
            }
            _ => {
                let _ = self.history.fail_unknown(id);
            }
        }
    }

    /// Gives up the admin clerk's operation (a fresh admin clerk takes its
    /// place; the old request may still take effect, as from a client that
    /// gave up). The key-value operation `id`, if given, ends with an
    /// unknown outcome.
    pub fn abandon_admin(&mut self, id: Option<u64>) {
        let seed = self.rng.next_u64();
        self.clients[0].clerk = ShardClerk::new(self.config.clerk(), seed);
        self.admin_result = None;
        if let Some(id) = id {
            let _ = self.history.fail_unknown(id);
        }
    }

    /// The network (partitions, cuts), to read.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Whether workload operations are being started.
    pub fn is_workload_running(&self) -> bool {
        self.workload
    }

    /// The workload clerks (client 1..).
    pub fn workload_clients(&self) -> Vec<WorkloadClient> {
        self.clients
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, c)| WorkloadClient {
                number: i as u64,
                pending: c.pending,
                config_num: c.clerk.cached_config().map(|c| c.num),
            })
            .collect()
    }

    /// Everything scheduled for delivery, in delivery order.
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.events
            .iter()
            .filter_map(|((at, id), event)| {
                let mut item = InFlight {
                    id: *id,
                    deliver_at: *at,
                    from: Endpoint::Node(0),
                    to: Endpoint::Node(0),
                    kinds: Vec::new(),
                    pushes: Vec::new(),
                    groups: Vec::new(),
                };
                match event {
                    Event::Batch(batch) => {
                        item.from = Endpoint::Node(batch.from);
                        item.to = Endpoint::Node(batch.to);
                        for m in &batch.messages {
                            item.kinds.push(m.kind());
                            match m {
                                HostMessage::ShardPush {
                                    from_group,
                                    to_group,
                                    config_num,
                                    shard,
                                    ..
                                } => {
                                    item.pushes
                                        .push((*shard, *from_group, *to_group, *config_num))
                                }
                                HostMessage::Raft { group, .. } => item.groups.push(*group),
                                _ => {}
                            }
                        }
                    }
                    Event::Request { to, from, request } => {
                        item.from = Endpoint::Client(*from);
                        item.to = Endpoint::Node(*to);
                        item.kinds.push(match request {
                            HostRequest::Controller { .. } => "Controller",
                            HostRequest::Kv { group, .. } => {
                                item.groups.push(*group);
                                "Kv"
                            }
                            HostRequest::FollowerRead { group, .. } => {
                                item.groups.push(*group);
                                "FollowerRead"
                            }
                            HostRequest::Export { group, .. } => {
                                item.groups.push(*group);
                                "Export"
                            }
                        });
                    }
                    Event::Reply { clerk, from, reply } => {
                        item.from = Endpoint::Node(*from);
                        item.to = Endpoint::Client(*clerk);
                        item.kinds.push(match reply {
                            HostReply::Controller { .. } => "ControllerReply",
                            HostReply::Kv { .. } => "KvReply",
                            HostReply::Export { .. } => "ExportReply",
                        });
                    }
                    Event::Synced { .. } => return None,
                }
                Some(item)
            })
            .collect()
    }

    /// The in-flight item `id` with its content; `None` once delivered or
    /// dropped (or for an unknown id).
    pub fn in_flight_message(&self, id: u64) -> Option<InFlightMessage<'_>> {
        let ((at, _), event) = self.events.iter().find(|((_, seq), _)| *seq == id)?;
        let content = match event {
            Event::Batch(batch) => InFlightContent::Batch(batch),
            Event::Request { to, from, request } => InFlightContent::Request {
                from: *from,
                to: *to,
                request,
            },
            Event::Reply { clerk, from, reply } => InFlightContent::Reply {
                from: *from,
                clerk: *clerk,
                reply,
            },
            Event::Synced { .. } => return None,
        };
        Some(InFlightMessage {
            id,
            deliver_at: *at,
            content,
        })
    }

    /// Loses the in-flight item `id` in the network, as if the network had
    /// dropped it; false if it is no longer in flight.
    pub fn drop_in_flight(&mut self, id: u64) -> bool {
        let Some(key) = self
            .events
            .iter()
            .find(|((_, seq), event)| *seq == id && !matches!(event, Event::Synced { .. }))
            .map(|(key, _)| *key)
        else {
            return false;
        };
        self.events.remove(&key);
        self.note(None, None, "drop", || {
            alloc::format!("message {id} dropped")
        });
        true
    }

    /// Linearizability of the history as it stands, per key across every
    /// shard move; operations still pending count as of unknown outcome.
    /// Unlike [`ShardedSim::check_history`] it reads nothing back and does
    /// not run the simulator.
    pub fn check_linearizable(&self, budget: Budget) -> Result<Linearizable, CheckError> {
        let mut operations = self.history.operations().to_vec();
        for o in &mut operations {
            if !o.is_completed() {
                o.outcome = check::Outcome::Unknown;
            }
        }
        check::check_linearizable(&operations, budget)
    }
}

#[cfg(test)]
mod tests {
    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::format;

    use super::super::ShardedConfig;
    use super::*;
    use crate::raft::NodeId;
    use crate::shard::ControllerOp;

    /// (clerk, correlation id) of a request or the reply that echoes it.
    fn request_key(clerk: u64, request: &HostRequest) -> (u64, u64) {
        (clerk, request.id())
    }

    fn reply_key(clerk: u64, reply: &HostReply) -> (u64, u64) {
        (clerk, reply.id())
    }

    #[test]
    fn a_reply_in_flight_comes_from_the_host_its_request_went_to() {
        let config = ShardedConfig::small(5);
        let join = ControllerOp::Join(config.host.groups.clone());
        let mut sim = ShardedSim::new(config).unwrap();
        sim.enable_journal(100_000);
        // Nothing runs before the loop watches: every request is seen.
        sim.start_admin(AdminOp::Controller(join)).unwrap();
        sim.start_workload();
        // Every attempt has its own correlation id, so (clerk, id) names
        // the host the request went to; a request is in flight at least
        // from the step that sent it until the step that delivers it.
        let mut sent: BTreeMap<(u64, u64), NodeId> = BTreeMap::new();
        let mut repliers = BTreeSet::new();
        let mut replies = BTreeSet::new();
        for _ in 0..4_000 {
            for item in sim.in_flight() {
                let message = sim.in_flight_message(item.id).expect("in flight");
                match message.content {
                    InFlightContent::Request { from, to, request } => {
                        assert_eq!(
                            sent.insert(request_key(from, request), to).unwrap_or(to),
                            to
                        );
                    }
                    InFlightContent::Reply { from, clerk, reply } => {
                        let to = sent.get(&reply_key(clerk, reply));
                        assert_eq!(to, Some(&from), "reply {reply:?} to clerk {clerk}");
                        assert_eq!(item.from, Endpoint::Node(from), "in_flight() agrees");
                        assert_eq!(item.to, Endpoint::Client(clerk));
                        repliers.insert(from);
                        replies.insert(item.id);
                    }
                    InFlightContent::Batch(_) => {}
                }
            }
            sim.step_once();
        }
        assert!(replies.len() > 50, "only {} replies seen", replies.len());
        // The controller answers from its leader, the groups from theirs:
        // more than one host replies, and never host 0 (ids are 1..=5).
        assert!(repliers.len() > 1, "{repliers:?}");
        assert!(!repliers.contains(&0), "{repliers:?}");
        // The journal names the sender of each delivered reply the same way.
        let mut journal_replies = 0;
        for line in sim.journal_since(0) {
            if !matches!(line.kind, "KvReply" | "ControllerReply") {
                continue;
            }
            let text = line.text();
            let matched = sent.iter().any(|((clerk, id), to)| {
                text.starts_with(&format!("{to}->c{clerk} {} #{id} ", line.kind))
            });
            assert!(matched, "{text}");
            journal_replies += 1;
        }
        assert!(journal_replies > 50, "only {journal_replies} reply lines");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
}
