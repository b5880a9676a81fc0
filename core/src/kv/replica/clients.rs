//! Serving clients: reads, writes and their retries, and the answers that
//! wait for the log.
//!
//! A request is checked against the limits once, here, before anything
//! reaches the log. A write is named by its session and sequence number, or
//! by its client's nonce for the first write that opens the session
//! ([`WriteKey`]); a retry is answered from the session table if the write
//! was applied, joins the waiting entry if it is in the log, and is proposed
//! otherwise. Losing leadership fails every waiting request with `NotLeader`:
//! the outcome is unknown here, and the client retries elsewhere under the
//! same name.

use alloc::string::ToString;
use bytes::Bytes;

use super::{Replica, ReplicaOutput, ReplyTo};
use crate::kv::session::SessionCheck;
use crate::kv::store::Applied;
use crate::kv::{
    ClientId, ClientRequest, ClientResponse, Command, Operation, Reply, RequestBody, ServiceError,
};
use crate::raft::{Accepted, Entry, Input, LogIndex, Rejected, Term};
use crate::time::Instant;

/// A write as its retries name it, so that a retry is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum WriteKey {
    /// Write `seq` of session `client`.
    Write(ClientId, u64),
    /// The first write of the session the client's nonce opens.
    Open(u64),
}

impl WriteKey {
    /// The answer to this write once it took effect in session `client`.
    fn reply(self, client: ClientId) -> Reply {
        match self {
            WriteKey::Write(..) => Reply::Done(None),
            WriteKey::Open(_) => Reply::Opened(client),
        }
    }
}

/// A client waiting for its write to be applied.
#[derive(Clone, Debug)]
pub(super) struct WriteWaiter {
    term: Term,
    to: ReplyTo,
    request: u64,
    key: WriteKey,
}

/// A client waiting for a read.
#[derive(Clone, Debug)]
pub(super) struct ReadWaiter {
    pub(super) to: ReplyTo,
    pub(super) request: u64,
    /// What is read.
    pub(super) what: ReadPurpose,
    /// A follower read ([`RequestBody::FollowerRead`]), counted in
    /// [`Replica::follower_reads_served`] when a replica that is not the
    /// leader answers it.
    pub(super) follower: bool,
}

/// What a linearizable read serves once its index is applied.
#[derive(Clone, Debug)]
pub(super) enum ReadPurpose {
    /// The value of a key.
    Get(Bytes),
    /// A backup snapshot.
    Backup,
    /// The member list.
    Members,
}

impl Replica {
    pub(super) fn reply(&mut self, to: ReplyTo, request: u64, result: Result<Reply, ServiceError>) {
        self.outputs.push_back(ReplicaOutput::Reply {
            to,
            response: ClientResponse {
                id: request,
                result,
            },
        });
    }

    pub(super) fn not_leader(&self) -> ServiceError {
        ServiceError::NotLeader {
            leader_hint: self.node.leader().filter(|&l| l != self.node.id()),
        }
    }

    /// Serves one client request: its status, a read, or a write (checked
    /// against the limits first, here and only here on this side).
    pub(super) fn handle_client(&mut self, now: Instant, from: ReplyTo, request: ClientRequest) {
        let id = request.id;
        if let Some(why) = &self.failure {
            let error = ServiceError::Unavailable(why.clone());
            self.reply(from, id, Err(error));
            return;
        }
        let (key, operation) = match request.body {
            RequestBody::Status => {
                let status = self.status();
                self.reply(from, id, Ok(Reply::Status(status)));
                return;
            }
            RequestBody::Members { linearizable } => {
                self.handle_members(now, from, id, linearizable);
                return;
            }
            RequestBody::ChangeMembers(change) => {
                self.handle_member_change(now, from, id, change);
                return;
            }
            RequestBody::Backup { index, offset } => {
                self.handle_backup(now, from, id, index, offset);
                return;
            }
            RequestBody::FollowerRead { key } => {
                let operation = Operation::Get { key };
                let limits = self.store.limits();
                match operation.validate(limits.max_key_bytes, limits.max_value_bytes) {
                    Ok(()) => {
                        let Operation::Get { key } = operation else {
                            unreachable!("built as a get above")
                        };
                        self.handle_follower_read(now, from, id, key);
                    }
                    Err(error) => self.reply(from, id, Err(error)),
                }
                return;
            }
            RequestBody::Operation {
                client,
                seq,
                operation,
            } => (WriteKey::Write(client, seq), operation),
            RequestBody::Open { nonce, operation } => (WriteKey::Open(nonce), operation),
        };
        let limits = self.store.limits();
        if let Err(error) = operation.validate(limits.max_key_bytes, limits.max_value_bytes) {
            self.reply(from, id, Err(error));
            return;
        }
        match operation {
            Operation::Get { key } => self.handle_read(now, from, id, ReadPurpose::Get(key)),
            write => self.handle_write(now, from, id, key, write),
        }
    }

    /// A linearizable read: served once a ReadIndex round confirms the
    /// leadership and the state machine caught up with it.
    pub(super) fn handle_read(
        &mut self,
        now: Instant,
        from: ReplyTo,
        request: u64,
        what: ReadPurpose,
    ) {
        let read = self.next_read_id;
        self.next_read_id += 1;
        match self.node.handle(now, Input::ReadIndex(read)) {
            Ok(_) => {
                let waiter = ReadWaiter {
                    to: from,
                    request,
                    what,
                    follower: false,
                };
                self.reads.insert(read, waiter);
            }
            Err(rejected) => {
                let error = self.service_error(rejected);
                self.reply(from, request, Err(error));
            }
        }
    }

    /// A linearizable read served here whatever this replica's role: the
    /// node asks its leader for a read index when it is a follower
    /// ([`Input::FollowerRead`]), and the read is answered from this
    /// replica's state machine once it has applied that index.
    fn handle_follower_read(&mut self, now: Instant, from: ReplyTo, request: u64, key: Bytes) {
        let read = self.next_read_id;
        self.next_read_id += 1;
        match self.node.handle(now, Input::FollowerRead(read)) {
            Ok(_) => {
                let waiter = ReadWaiter {
                    to: from,
                    request,
                    what: ReadPurpose::Get(key),
                    follower: true,
                };
                self.follower_reads.insert(read, waiter);
            }
            Err(rejected) => {
                let error = self.service_error(rejected);
                self.reply(from, request, Err(error));
            }
        }
    }

    /// A write: answered from the session if it was applied already, joined
    /// to its entry if it is in the log already, proposed otherwise.
    fn handle_write(
        &mut self,
        now: Instant,
        from: ReplyTo,
        request: u64,
        key: WriteKey,
        operation: Operation,
    ) {
        if !self.node.is_leader() {
            let error = self.not_leader();
            self.reply(from, request, Err(error));
            return;
        }
        if let Some(answer) = self.applied_answer(key) {
            self.reply(from, request, answer);
            return;
        }
        if let Some(&index) = self.proposed.get(&key) {
            let term = self.node.term();
            self.writes.entry(index).or_default().push(WriteWaiter {
                term,
                to: from,
                request,
                key,
            });
            return;
        }
        let at = now.as_millis();
        let command = match key {
            WriteKey::Write(client, seq) => Command::Write {
                client,
                seq,
                at,
                operation,
            },
            WriteKey::Open(nonce) => Command::Open {
                nonce,
                at,
                operation,
            },
        };
        self.propose(now, from, request, key, command);
    }

    /// The answer to a write the state machine already applied (or whose
    /// answer was already given), if it did.
    fn applied_answer(&self, key: WriteKey) -> Option<Result<Reply, ServiceError>> {
        let sessions = self.store.sessions();
        let (client, seq) = match key {
            WriteKey::Write(client, seq) => (client, seq),
            WriteKey::Open(nonce) => match sessions.opened_by(nonce) {
                Some(client) => (client, 1),
                // Applied once, in a session since dropped.
                None if sessions.dropped_opening(nonce).is_some() => {
                    return Some(Err(ServiceError::SessionExpired));
                }
                None => return None,
            },
        };
        match sessions.check(client, seq) {
            SessionCheck::Duplicate(result) => Some(result.map(|()| key.reply(client))),
            SessionCheck::Stale => Some(Err(ServiceError::StaleSequence)),
            SessionCheck::Fresh | SessionCheck::Unknown | SessionCheck::Expired => None,
        }
    }

    fn propose(
        &mut self,
        now: Instant,
        from: ReplyTo,
        request: u64,
        key: WriteKey,
        command: Command,
    ) {
        match self.node.handle(now, Input::Propose(command.encode())) {
            Ok(Accepted::Appended { index, term }) => {
                self.proposed.insert(key, index);
                self.writes.entry(index).or_default().push(WriteWaiter {
                    term,
                    to: from,
                    request,
                    key,
                });
            }
            Ok(Accepted::Done) => {}
            Err(rejected) => {
                let error = self.service_error(rejected);
                self.reply(from, request, Err(error));
            }
        }
    }

    pub(super) fn service_error(&self, rejected: Rejected) -> ServiceError {
        match rejected {
            Rejected::NotLeader { .. } => self.not_leader(),
            Rejected::TooLarge { size, limit } => ServiceError::ValueTooLarge { size, limit },
            _ => ServiceError::Busy,
        }
    }

    /// Answers the writes waiting for `entry`, which the state machine just
    /// applied with the outcome `applied`.
    pub(super) fn answer_writes(&mut self, entry: &Entry, applied: &Applied) {
        let Some(waiters) = self.writes.remove(&entry.index) else {
            return;
        };
        for waiter in waiters {
            self.proposed.remove(&waiter.key);
            let result = if waiter.term != entry.term {
                // Our entry was replaced by another leader's: not applied (yet).
                Err(self.not_leader())
            } else {
                match applied {
                    Applied::Write { client, result, .. } => {
                        result.clone().map(|()| waiter.key.reply(*client))
                    }
                    Applied::Refused { error, .. } => Err(error.clone()),
                    Applied::Registered(_) | Applied::Nothing | Applied::Undecodable => Err(
                        ServiceError::Unavailable("entry did not decode".to_string()),
                    ),
                }
            };
            self.reply(waiter.to, waiter.request, result);
        }
    }

    /// ReadIndex `id` is confirmed at `index`: served once applied there.
    pub(super) fn read_ready(&mut self, id: u64, index: LogIndex) {
        if let Some(waiter) = self
            .reads
            .remove(&id)
            .or_else(|| self.follower_reads.remove(&id))
        {
            self.ready_reads.push_back((index, waiter));
        }
    }

    /// ReadIndex `id` could not be confirmed (leadership lost).
    pub(super) fn read_failed(&mut self, id: u64) {
        if let Some(waiter) = self
            .reads
            .remove(&id)
            .or_else(|| self.follower_reads.remove(&id))
        {
            let error = self.not_leader();
            self.reply(waiter.to, waiter.request, Err(error));
        }
    }

    /// Answers the reads whose index the state machine has reached.
    pub(super) fn serve_ready_reads(&mut self) {
        let applied = self.node.log().applied();
        while self
            .ready_reads
            .front()
            .is_some_and(|(index, _)| *index <= applied)
        {
            let (_, waiter) = self.ready_reads.pop_front().expect("checked non-empty");
            let result = match &waiter.what {
                ReadPurpose::Get(key) => {
                    if waiter.follower && !self.node.is_leader() {
                        self.follower_reads_served += 1;
                    }
                    Ok(Reply::Done(self.store.get(key).cloned()))
                }
                ReadPurpose::Members => Ok(Reply::Members(self.members())),
                ReadPurpose::Backup => {
                    self.start_backup(waiter.to, waiter.request);
                    continue;
                }
            };
            self.reply(waiter.to, waiter.request, result);
        }
    }

    /// Leadership is lost: the outcome of pending writes is unknown here.
    /// Clients retry elsewhere with the same sequence number (or nonce),
    /// which the sessions make safe.
    pub(super) fn fail_pending(&mut self) {
        if self.writes.is_empty() && self.reads.is_empty() {
            return;
        }
        let error = self.not_leader();
        let writes = core::mem::take(&mut self.writes);
        self.proposed.clear();
        for waiter in writes.into_values().flatten() {
            self.reply(waiter.to, waiter.request, Err(error.clone()));
        }
        let reads = core::mem::take(&mut self.reads);
        for waiter in reads.into_values() {
            self.reply(waiter.to, waiter.request, Err(error.clone()));
        }
    }
}
