//! One-line renderings of messages and events (for traces, golden files and
//! the browser), the digests folded into the trace hash, and the trace the
//! simulator keeps (the last `trace_capacity` lines, packets rendered only
//! when read).

use core::hash::{Hash, Hasher};

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::network::Endpoint;
use super::{Packet, PacketPayload, Sim};
use crate::hash::PortableHasher;
use crate::kv::{Command, Operation, Reply, RequestBody};
use crate::raft::{Entry, Message, Payload};
use crate::time::Instant;

/// A short rendering of an entry: `index/term` and its command.
pub fn describe_entry(entry: &Entry) -> String {
    format!(
        "{}/{} {}",
        entry.index,
        entry.term,
        describe_payload(&entry.payload)
    )
}

/// A short rendering of a payload (`noop`, `put x=1 (c1#2)`, ...).
pub fn describe_payload(payload: &Payload) -> String {
    match payload {
        Payload::Noop => String::from("noop"),
        Payload::Command(data) => match Command::decode(data.clone()) {
            Ok(_) => Command::describe(data),
            // A raw command (proposed directly, in tests): show it if it is text.
            Err(_) => match core::str::from_utf8(data) {
                Ok(text) if text.len() <= 32 && text.chars().all(|c| !c.is_control()) => {
                    format!("{text:?}")
                }
                _ => format!("<{} bytes>", data.len()),
            },
        },
        Payload::Membership(m) if m.learners.is_empty() => {
            format!("membership voters {:?}", m.voters)
        }
        Payload::Membership(m) => {
            format!("membership voters {:?} learners {:?}", m.voters, m.learners)
        }
    }
}

fn describe_entries(entries: &[Entry]) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = entries.iter().take(SHOWN).map(describe_entry).collect();
    if entries.len() > SHOWN {
        parts.push(format!("... {} more", entries.len() - SHOWN));
    }
    format!("[{}]", parts.join(", "))
}

/// One line describing a Raft message's fields.
pub fn describe_message(message: &Message) -> String {
    match message {
        Message::RequestVote(m) => format!(
            "term={} last={}/{}{}",
            m.term,
            m.last_log_index,
            m.last_log_term,
            if m.transfer { " transfer" } else { "" }
        ),
        Message::RequestVoteResponse(m) => {
            format!(
                "term={} {}",
                m.term,
                if m.granted { "granted" } else { "rejected" }
            )
        }
        Message::AppendEntries(m) => format!(
            "term={} prev={}/{} entries={} commit={}",
            m.term,
            m.prev_log_index,
            m.prev_log_term,
            describe_entries(&m.entries),
            m.leader_commit
        ),
        Message::AppendEntriesResponse(m) => match (m.success, m.conflict) {
            (true, _) => format!("term={} ok match={}", m.term, m.index),
            (false, Some(hint)) => format!(
                "term={} reject prev={} hint={}/{}",
                m.term, m.index, hint.index, hint.term
            ),
            (false, None) => format!("term={} reject", m.term),
        },
        Message::Heartbeat(m) => format!("term={} commit={} round={}", m.term, m.commit, m.round),
        Message::HeartbeatResponse(m) => {
            format!("term={} round={} last={}", m.term, m.round, m.last_index)
        }
        Message::InstallSnapshot(m) => format!(
            "term={} snapshot={}/{} bytes={}..{} of {}{}",
            m.term,
            m.meta.index,
            m.meta.term,
            m.offset,
            m.offset + m.data.len() as u64,
            m.total_len,
            if m.done { " done" } else { "" }
        ),
        Message::InstallSnapshotResponse(m) => format!(
            "term={} snapshot={} received={}{}",
            m.term,
            m.snapshot_index,
            m.received,
            if m.done { " installed" } else { "" }
        ),
        Message::TimeoutNow(m) => format!("term={}", m.term),
        Message::ReadIndex(m) => format!("term={} id={}", m.term, m.id),
        Message::ReadIndexResponse(m) => match m.index {
            Some(index) => format!("term={} id={} index={index}", m.term, m.id),
            None => format!("term={} id={} failed", m.term, m.id),
        },
    }
}

fn describe_operation(operation: &Operation) -> String {
    let key = String::from_utf8_lossy(operation.key());
    match operation {
        Operation::Put { value, .. } => format!("put {key}={}", String::from_utf8_lossy(value)),
        Operation::Append { value, .. } => {
            format!("append {key}+={}", String::from_utf8_lossy(value))
        }
        Operation::Delete { .. } => format!("delete {key}"),
        Operation::Get { .. } => format!("get {key}"),
    }
}

/// The kind of a packet: the Raft RPC name, `ClientRequest` or `ClientResponse`.
pub fn packet_kind(payload: &PacketPayload) -> &'static str {
    match payload {
        PacketPayload::Raft(message) => message.kind(),
        PacketPayload::Request(_) => "ClientRequest",
        PacketPayload::Response(_) => "ClientResponse",
    }
}

/// One line describing a packet's content.
pub fn describe_packet(payload: &PacketPayload) -> String {
    match payload {
        PacketPayload::Raft(message) => describe_message(message),
        PacketPayload::Request(request) => match &request.body {
            RequestBody::Open { operation, .. } => format!(
                "#{} {} (new session)",
                request.id,
                describe_operation(operation)
            ),
            RequestBody::Operation {
                client,
                seq,
                operation,
            } => {
                format!(
                    "#{} {} (session {client} seq {seq})",
                    request.id,
                    describe_operation(operation)
                )
            }
            RequestBody::Status => format!("#{} status", request.id),
            RequestBody::Members { .. } => format!("#{} members", request.id),
            RequestBody::ChangeMembers(change) => format!("#{} {change:?}", request.id),
            RequestBody::Backup { index, offset } => {
                format!("#{} backup {index:?} from {offset}", request.id)
            }
            RequestBody::FollowerRead { key } => {
                format!(
                    "#{} get {} (follower read)",
                    request.id,
                    String::from_utf8_lossy(key)
                )
            }
        },
        PacketPayload::Response(response) => match &response.result {
            Ok(Reply::Opened(id)) => format!("#{} ok, opened session {id}", response.id),
            Ok(Reply::Done(Some(value))) => {
                format!("#{} ok {}", response.id, String::from_utf8_lossy(value))
            }
            Ok(Reply::Done(None)) => format!("#{} ok", response.id),
            Ok(Reply::Status(_)) => format!("#{} status", response.id),
            Ok(Reply::Members(_)) => format!("#{} members", response.id),
            Ok(Reply::Backup(chunk)) => format!(
                "#{} backup at {} ({} of {} bytes)",
                response.id,
                chunk.index,
                chunk.data.len(),
                chunk.total
            ),
            Err(error) => format!("#{} error: {error}", response.id),
        },
    }
}

/// `from->to Kind fields`.
pub fn describe(packet: &Packet) -> String {
    format!(
        "{}->{} {} {}",
        packet.from,
        packet.to,
        packet_kind(&packet.payload),
        describe_packet(&packet.payload)
    )
}

/// A digest of a packet, for the trace hash: its endpoints and every field
/// of its content, entry payloads and snapshot chunks included, through the
/// derived [`Hash`] of the message types and a [`PortableHasher`], so the
/// digest is the same on 64-bit and 32-bit platforms.
pub fn packet_digest(from: Endpoint, to: Endpoint, payload: &PacketPayload) -> u64 {
    let mut hasher = PortableHasher::new();
    (from, to, payload).hash(&mut hasher);
    hasher.finish()
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// Position in the trace (from 1).
    pub seq: u64,
    /// Virtual time.
    pub at: Instant,
    /// Where it happened.
    pub endpoint: Option<Endpoint>,
    /// Short kind: `deliver`, `drop`, `timeout`, `role`, `commit`, `crash`, ...
    pub kind: &'static str,
    /// What to render (packets are rendered only when read).
    detail: TraceDetail,
}

/// The content of a trace line, rendered lazily.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TraceDetail {
    Text(String),
    Packet(Box<Packet>, &'static str),
}

impl TraceLine {
    /// The line's text, e.g. `1->2 AppendEntries term=2 prev=5/1 ...`.
    pub fn text(&self) -> String {
        match &self.detail {
            TraceDetail::Text(text) => text.clone(),
            TraceDetail::Packet(packet, suffix) => format!("{}{suffix}", describe(packet)),
        }
    }
}

impl Sim {
    pub(super) fn trace_line(
        &mut self,
        endpoint: Option<Endpoint>,
        kind: &'static str,
        text: impl FnOnce() -> String,
    ) {
        if self.config.trace_capacity == 0 {
            return;
        }
        self.push_trace(endpoint, kind, TraceDetail::Text(text()));
    }

    /// Traces a packet event; the packet is rendered only if the line is read.
    pub(super) fn trace_packet(
        &mut self,
        endpoint: Option<Endpoint>,
        kind: &'static str,
        packet: &Packet,
        suffix: &'static str,
    ) {
        if self.config.trace_capacity == 0 {
            return;
        }
        self.push_trace(
            endpoint,
            kind,
            TraceDetail::Packet(Box::new(packet.clone()), suffix),
        );
    }

    fn push_trace(&mut self, endpoint: Option<Endpoint>, kind: &'static str, detail: TraceDetail) {
        self.trace_seq += 1;
        if self.trace.len() == self.config.trace_capacity {
            self.trace.pop_front();
        }
        self.trace.push_back(TraceLine {
            seq: self.trace_seq,
            at: self.now,
            endpoint,
            kind,
            detail,
        });
    }
}
