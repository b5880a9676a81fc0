//! The journal of a [`ShardedSim`]: what happened, one line per event, for
//! an interactive driver's event log (the browser page). Off unless
//! [`ShardedSim::enable_journal`] is called; it keeps the newest lines up
//! to a capacity, each numbered so that a reader asks only for what it has
//! not seen ([`ShardedSim::journal_since`]).
//!
//! It records every message delivered to a running host (heartbeats, their
//! answers and `Alive` left out: they would drown the rest), the clients'
//! requests and the hosts' replies, role and term changes of every replica,
//! each group's configuration and shard status changes, crashes, restarts
//! and dropped messages. Recording never changes the run: the same seed
//! gives the same run with the journal on or off.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::ShardedSim;
use crate::raft::{Message, NodeId, RoleKind};
use crate::shard::GroupId;
use crate::shard::controller::{ControllerOp, ControllerReply};
use crate::shard::host::{Host, HostBatch, HostMessage, HostReply, HostRequest};
use crate::sim::trace::describe_message;

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLine {
    /// Position in the journal (from 1).
    pub seq: u64,
    /// Virtual time (ms).
    pub at: u64,
    /// The host it happened on (the receiver of a message), if any.
    pub host: Option<NodeId>,
    /// The group it concerns (0: the controller), if one.
    pub group: Option<GroupId>,
    /// Short kind: a message's name (`AppendEntries`, `ShardPush`, `Kv`,
    /// ...), or `role`, `shard`, `crash`, `restart`, `drop`.
    pub kind: &'static str,
    /// What to render: a message is kept as it was and rendered only when
    /// read ([`JournalLine::text`]), so recording costs a clone, not a
    /// formatting, per delivery.
    detail: Detail,
}

/// The content of a journal line, rendered lazily.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Detail {
    Text(String),
    Message {
        from: NodeId,
        to: NodeId,
        message: HostMessage,
    },
    Request {
        from: u64,
        to: NodeId,
        request: HostRequest,
    },
    Reply {
        from: NodeId,
        clerk: u64,
        reply: HostReply,
    },
}

impl JournalLine {
    /// The line, e.g. `4->5 group 100 AppendEntries term=2 prev=5/1 ...`.
    pub fn text(&self) -> String {
        match &self.detail {
            Detail::Text(text) => text.clone(),
            Detail::Message { from, to, message } => {
                format!("{from}->{to} {}", describe_host_message(message))
            }
            Detail::Request { from, to, request } => {
                format!("c{from}->{to} {}", describe_request(request))
            }
            Detail::Reply { from, clerk, reply } => {
                format!("{from}->c{clerk} {}", describe_reply(reply))
            }
        }
    }
}

/// The newest lines, up to a capacity.
#[derive(Clone, Debug)]
pub(super) struct Journal {
    lines: VecDeque<JournalLine>,
    seq: u64,
    capacity: usize,
}

/// Each replica's role and term on one host, to compare before and after an input.
pub(super) type Roles = Vec<(GroupId, RoleKind, u64)>;

/// The roles and terms of `host`'s replicas.
pub(super) fn roles(host: &Host) -> Roles {
    host.nodes()
        .map(|(g, node)| (g, node.role(), node.term()))
        .collect()
}

fn role_word(role: RoleKind) -> &'static str {
    match role {
        RoleKind::Leader => "leader",
        RoleKind::Follower => "follower",
        RoleKind::Candidate => "candidate",
        RoleKind::PreCandidate => "pre-candidate",
        RoleKind::Learner => "learner",
    }
}

fn is_quiet(message: &HostMessage) -> bool {
    match message {
        HostMessage::Raft { envelope, .. } => matches!(
            envelope.message,
            Message::Heartbeat(_) | Message::HeartbeatResponse(_)
        ),
        HostMessage::Alive => true,
        _ => false,
    }
}

/// The group a host message concerns (a push: its new owner).
fn message_group(message: &HostMessage) -> Option<GroupId> {
    match message {
        HostMessage::Raft { group, .. }
        | HostMessage::ConfigQuery { group, .. }
        | HostMessage::ConfigReply { group, .. }
        | HostMessage::ShardAck { group, .. }
        | HostMessage::ShardPartAck { group, .. }
        | HostMessage::Hibernate { group, .. }
        | HostMessage::HibernateAck { group, .. }
        | HostMessage::RetireQuery { group, .. }
        | HostMessage::Retired { group } => Some(*group),
        HostMessage::ShardPush { to_group, .. } | HostMessage::ShardPushPart { to_group, .. } => {
            Some(*to_group)
        }
        HostMessage::Alive => None,
    }
}

fn describe_host_message(message: &HostMessage) -> String {
    match message {
        HostMessage::Raft { group, envelope } => format!(
            "group {group} {} {}",
            envelope.message.kind(),
            describe_message(&envelope.message)
        ),
        HostMessage::ConfigQuery { group, num } => format!("group {group} ConfigQuery num={num}"),
        HostMessage::ConfigReply { group, config } => {
            format!("group {group} ConfigReply num={}", config.num)
        }
        HostMessage::ShardPush {
            from_group,
            to_group,
            config_num,
            shard,
            data,
        } => format!(
            "ShardPush shard {shard} of config {config_num}, group {from_group} to {to_group} ({} bytes)",
            data.len()
        ),
        HostMessage::ShardAck {
            group,
            config_num,
            shard,
        } => format!("ShardAck shard {shard} of config {config_num} to group {group}"),
        HostMessage::ShardPushPart {
            from_group,
            to_group,
            config_num,
            shard,
            after,
            last,
            data,
        } => format!(
            "ShardPushPart shard {shard} of config {config_num}, group {from_group} to {to_group}, after {}{} ({} bytes)",
            after
                .as_ref()
                .map_or(String::from("the start"), |k| String::from_utf8_lossy(k)
                    .into_owned()),
            if *last { ", the last" } else { "" },
            data.len()
        ),
        HostMessage::ShardPartAck {
            group,
            config_num,
            shard,
            held,
        } => format!(
            "ShardPartAck shard {shard} of config {config_num} to group {group}, up to {}",
            held.as_ref()
                .map_or(String::from("nothing"), |k| String::from_utf8_lossy(k)
                    .into_owned())
        ),
        HostMessage::Hibernate { group, term, index } => {
            format!("group {group} Hibernate term={term} index={index}")
        }
        HostMessage::HibernateAck { group, term } => {
            format!("group {group} HibernateAck term={term}")
        }
        HostMessage::Alive => String::from("Alive"),
        HostMessage::RetireQuery { group, config_num } => {
            format!("group {group} RetireQuery config={config_num}")
        }
        HostMessage::Retired { group } => format!("group {group} Retired"),
    }
}

/// A client request in words.
fn describe_request(request: &HostRequest) -> String {
    match request {
        HostRequest::Controller { id, op, .. } => {
            let what = match op {
                ControllerOp::Join(groups) => {
                    let ids: Vec<String> = groups.keys().map(|g| format!("{g}")).collect();
                    format!("join {}", ids.join(" "))
                }
                ControllerOp::Leave(groups) => {
                    let ids: Vec<String> = groups.iter().map(|g| format!("{g}")).collect();
                    format!("leave {}", ids.join(" "))
                }
                ControllerOp::Move { shard, group } => format!("move shard {shard} to {group}"),
                ControllerOp::Query(num) => match num {
                    Some(num) => format!("query {num}"),
                    None => String::from("query latest"),
                },
                ControllerOp::Retire { group, config_num } => {
                    format!("retire {group} (config {config_num})")
                }
            };
            format!("Controller #{id} {what}")
        }
        HostRequest::Kv {
            id, group, seq, op, ..
        } => {
            let key = String::from_utf8_lossy(op.key());
            let what = match op {
                crate::kv::Operation::Put { value, .. } => {
                    format!("put {key}={}", String::from_utf8_lossy(value))
                }
                crate::kv::Operation::Append { value, .. } => {
                    format!("append {key}+={}", String::from_utf8_lossy(value))
                }
                crate::kv::Operation::Get { .. } => format!("get {key}"),
                crate::kv::Operation::Delete { .. } => format!("delete {key}"),
            };
            format!("Kv #{id} group {group} {what} (seq {seq})")
        }
        HostRequest::FollowerRead { id, group, key } => format!(
            "FollowerRead #{id} group {group} get {}",
            String::from_utf8_lossy(key)
        ),
        HostRequest::Export {
            id,
            group,
            shard,
            at,
            offset,
        } => match at {
            None => format!("Export #{id} group {group} shard {shard}"),
            Some(at) => {
                format!("Export #{id} group {group} shard {shard} at {at} from byte {offset}")
            }
        },
    }
}

fn describe_reply(reply: &HostReply) -> String {
    match reply {
        HostReply::Controller { id, result } => match result {
            Ok(ControllerReply::Done) => format!("ControllerReply #{id} done"),
            Ok(ControllerReply::Config(config)) => {
                format!("ControllerReply #{id} configuration {}", config.num)
            }
            Ok(ControllerReply::Refused(e)) => format!("ControllerReply #{id} refused: {e}"),
            Err(e) => format!("ControllerReply #{id} error: {e}"),
        },
        HostReply::Kv { id, result } => match result {
            Ok(Some(value)) => format!("KvReply #{id} ok {}", String::from_utf8_lossy(value)),
            Ok(None) => format!("KvReply #{id} ok"),
            Err(e) => format!("KvReply #{id} error: {e}"),
        },
        HostReply::Export { id, result } => match result {
            Ok(chunk) => format!(
                "ExportReply #{id} shard {} at {} (configuration {}): bytes {} to {} of {}",
                chunk.shard,
                chunk.index,
                chunk.config,
                chunk.offset,
                chunk.offset + chunk.data.len() as u64,
                chunk.total
            ),
            Err(e) => format!("ExportReply #{id} error: {e}"),
        },
    }
}

impl Journal {
    fn push(
        &mut self,
        at: u64,
        host: Option<NodeId>,
        group: Option<GroupId>,
        kind: &'static str,
        detail: Detail,
    ) {
        self.seq += 1;
        self.lines.push_back(JournalLine {
            seq: self.seq,
            at,
            host,
            group,
            kind,
            detail,
        });
        while self.lines.len() > self.capacity {
            self.lines.pop_front();
        }
    }
}

impl ShardedSim {
    /// Starts the journal (see the module documentation), keeping the
    /// newest `capacity` lines; a journal already on keeps its lines.
    pub fn enable_journal(&mut self, capacity: usize) {
        let journal = self.journal.get_or_insert_with(|| Journal {
            lines: VecDeque::new(),
            seq: 0,
            capacity,
        });
        journal.capacity = capacity.max(1);
    }

    /// The journal's lines after `seq` (all kept ones for 0), oldest first.
    pub fn journal_since(&self, seq: u64) -> impl Iterator<Item = &JournalLine> {
        self.journal
            .iter()
            .flat_map(|j| j.lines.iter())
            .filter(move |line| line.seq > seq)
    }

    /// Records a line (if the journal is on).
    pub(super) fn note(
        &mut self,
        host: Option<NodeId>,
        group: Option<GroupId>,
        kind: &'static str,
        text: impl FnOnce() -> String,
    ) {
        self.note_detail(host, group, kind, || Detail::Text(text()));
    }

    fn note_detail(
        &mut self,
        host: Option<NodeId>,
        group: Option<GroupId>,
        kind: &'static str,
        detail: impl FnOnce() -> Detail,
    ) {
        let at = self.now.as_millis();
        if let Some(journal) = &mut self.journal {
            journal.push(at, host, group, kind, detail());
        }
    }

    /// Records the delivery of `batch` (to a running host).
    pub(super) fn note_batch(&mut self, batch: &HostBatch) {
        if self.journal.is_none() {
            return;
        }
        for message in batch.messages.iter().filter(|m| !is_quiet(m)) {
            self.note_detail(
                Some(batch.to),
                message_group(message),
                message.kind(),
                || Detail::Message {
                    from: batch.from,
                    to: batch.to,
                    message: message.clone(),
                },
            );
        }
    }

    /// Records a client request's delivery.
    pub(super) fn note_request(&mut self, from: u64, to: NodeId, request: &HostRequest) {
        if self.journal.is_none() {
            return;
        }
        let (kind, group) = match request {
            HostRequest::Controller { .. } => ("Controller", Some(0)),
            HostRequest::Kv { group, .. } => ("Kv", Some(*group)),
            HostRequest::FollowerRead { group, .. } => ("FollowerRead", Some(*group)),
            HostRequest::Export { group, .. } => ("Export", Some(*group)),
        };
        self.note_detail(Some(to), group, kind, || Detail::Request {
            from,
            to,
            request: request.clone(),
        });
    }

    /// Records the delivery to clerk `clerk` of a reply from host `from`.
    pub(super) fn note_reply(&mut self, clerk: u64, from: NodeId, reply: &HostReply) {
        if self.journal.is_none() {
            return;
        }
        let kind = match reply {
            HostReply::Controller { .. } => "ControllerReply",
            HostReply::Kv { .. } => "KvReply",
            HostReply::Export { .. } => "ExportReply",
        };
        self.note_detail(None, None, kind, || Detail::Reply {
            from,
            clerk,
            reply: reply.clone(),
        });
    }

    /// Records the role and term changes on host `id` since `before`.
    pub(super) fn note_roles(&mut self, id: NodeId, before: &Roles) {
        let Some(host) = self.host(id) else {
            return;
        };
        let after = roles(host);
        for (g, role, term) in after {
            let was = before.iter().find(|(x, _, _)| *x == g);
            if was.is_some_and(|(_, r, t)| *r == role && *t == term) {
                continue;
            }
            let text = match was {
                Some((_, r, _)) if *r == role => {
                    format!("host {id} group {g}: term {term} ({})", role_word(role))
                }
                _ => format!("host {id} group {g}: {} in term {term}", role_word(role)),
            };
            self.note(Some(id), Some(g), "role", || text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ShardedConfig, ShardedSim};
    use super::*;
    use crate::sim::sharded::InFlightContent;

    fn busy(journal: bool) -> ShardedSim {
        let mut sim = ShardedSim::new(ShardedConfig::small(5)).unwrap();
        if journal {
            sim.enable_journal(10_000);
        }
        sim.join_all().unwrap();
        sim.start_workload();
        sim.run_for(500);
        sim.crash(2);
        sim.run_for(1_000);
        sim.restart(2);
        sim.run_for(500);
        sim
    }

    #[test]
    fn the_journal_records_deliveries_roles_moves_and_faults_without_changing_the_run() {
        let quiet = busy(false);
        let sim = busy(true);
        assert_eq!(
            sim.history().operations(),
            quiet.history().operations(),
            "the journal changes nothing"
        );
        assert_eq!(sim.now(), quiet.now());
        assert_eq!(quiet.journal_since(0).count(), 0);
        let lines: Vec<&JournalLine> = sim.journal_since(0).collect();
        let kinds: alloc::collections::BTreeSet<&str> = lines.iter().map(|l| l.kind).collect();
        for kind in [
            "AppendEntries",
            "Kv",
            "KvReply",
            "role",
            "shard",
            "crash",
            "restart",
        ] {
            assert!(kinds.contains(kind), "no {kind} line: {kinds:?}");
        }
        assert!(!kinds.contains("Heartbeat") && !kinds.contains("Alive"));
        // numbered from 1, in order, in time order
        assert!(
            lines
                .windows(2)
                .all(|w| w[1].seq == w[0].seq + 1 && w[1].at >= w[0].at)
        );
        assert_eq!(lines[0].seq, 1);
        let crash = lines.iter().find(|l| l.kind == "crash").unwrap();
        // messages are rendered when read: sender, receiver, group, kind, fields
        let append = lines.iter().find(|l| l.kind == "AppendEntries").unwrap();
        let text = append.text();
        assert!(
            text.contains(&format!(
                "->{} group {} AppendEntries term=",
                append.host.unwrap(),
                append.group.unwrap()
            )),
            "{text}"
        );
        let kv = lines.iter().find(|l| l.kind == "Kv").unwrap();
        assert!(
            kv.text().starts_with('c') && kv.text().contains(" Kv #"),
            "{}",
            kv.text()
        );
        let restart = lines.iter().find(|l| l.kind == "restart").unwrap();
        assert_eq!((crash.host, restart.host), (Some(2), Some(2)));
        assert_eq!(restart.at - crash.at, 1_000);
        assert!(
            lines.iter().any(|l| l.kind == "role"
                && l.text().contains("leader in term")
                && l.group.is_some())
        );
        // reading from a position gives only what follows it
        let tail: Vec<u64> = sim.journal_since(crash.seq).map(|l| l.seq).collect();
        assert_eq!(tail.first(), Some(&(crash.seq + 1)));
    }

    #[test]
    fn the_journal_keeps_its_newest_lines() {
        let mut sim = ShardedSim::new(ShardedConfig::small(5)).unwrap();
        sim.enable_journal(50);
        sim.join_all().unwrap();
        sim.run_for(500);
        let lines: Vec<u64> = sim.journal_since(0).map(|l| l.seq).collect();
        assert_eq!(lines.len(), 50);
        assert!(lines[0] > 1, "the oldest are gone");
    }

    #[test]
    fn an_in_flight_item_can_be_looked_up_and_dropped_by_id() {
        let mut sim = ShardedSim::new(ShardedConfig::small(5)).unwrap();
        sim.enable_journal(1_000);
        sim.join_all().unwrap();
        sim.start_workload();
        let item = loop {
            sim.step_once();
            if let Some(item) = sim
                .in_flight()
                .into_iter()
                .find(|m| m.kinds.contains(&"AppendEntries"))
            {
                break item;
            }
        };
        let message = sim.in_flight_message(item.id).expect("in flight");
        assert_eq!(message.deliver_at, item.deliver_at);
        match message.content {
            InFlightContent::Batch(batch) => {
                assert_eq!(crate::sim::network::Endpoint::Node(batch.to), item.to);
                assert_eq!(batch.messages.len(), item.kinds.len());
            }
            other => panic!("a batch, not {other:?}"),
        }
        assert!(sim.drop_in_flight(item.id));
        assert!(sim.in_flight_message(item.id).is_none());
        assert!(sim.in_flight().iter().all(|m| m.id != item.id));
        assert!(!sim.drop_in_flight(item.id), "already gone");
        assert!(sim.journal_since(0).any(|l| l.kind == "drop"));
        sim.run_for(2_000);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
}
