//! The client side, sans-IO: a clerk finds the leader (following hints) and
//! runs one operation at a time, retrying with the same sequence number
//! after a timeout or a `NotLeader` answer, so a retried write is applied at
//! most once. Its first write opens its session in the same log entry
//! ([`RequestBody::Open`]), retried with the same nonce. It gives up after a configurable deadline
//! with [`ClerkError::Unknown`]: the operation may or may not have taken effect.
//!
//! Run loop: [`Clerk::start`] an operation, send every
//! [`ClerkOutput::Send`], feed answers with [`Clerk::handle_response`] and time with [`Clerk::handle_timeout`],
//! until [`ClerkOutput::Done`]. On a [`ClerkOutput::Discover`], ask the
//! servers for the cluster's member list and feed what it says back with
//! [`Clerk::handle_members`] (meanwhile the clerk goes on with the servers
//! it knows).
//!
//! Membership changes under a running clerk: a leader hint that names a
//! server the clerk does not know (a member added after it started) is the
//! one sign of them it sees, so that hint, and only that, makes it ask for
//! the member list: at most one request outstanding, and at most one per
//! attempt timeout, so a hint that stays unknown (a stale hint naming a
//! removed server) costs one member list per attempt timeout, not one per
//! answer.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use super::{ClientId, ClientRequest, ClientResponse, Operation, Reply, RequestBody, ServiceError};
use crate::raft::NodeId;
use crate::rng::Rng;
use crate::time::Instant;

mod pick;
mod suspects;
pub(crate) use suspects::Suspects;

/// Timing of a clerk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClerkConfig {
    /// The servers, in any order.
    pub servers: Vec<NodeId>,
    /// How long to wait for an answer before trying another server, ms.
    pub attempt_timeout: u64,
    /// How long to wait for an answer from a server tried without any sign
    /// that it leads, ms (at most `attempt_timeout`): the first guess, or
    /// one picked at random after a timeout, an unavailable server or a
    /// refusal without a leader hint. A server that does not lead answers
    /// at once (`NotLeader`), so silence there means a dead, paused or cut
    /// off server, not a slow commit; a leader that is merely slow loses
    /// nothing, since the clerk still takes its late answer, and a
    /// follower's hint sends the retry back to it with the whole
    /// `attempt_timeout`.
    pub probe_timeout: u64,
    /// Pause before retrying when no leader is known (an election is likely under way), ms.
    pub retry_backoff: u64,
    /// Give up on an operation after this long, ms (`None`: never).
    pub give_up_after: Option<u64>,
    /// Send reads to any server, chosen at random for each read, followers
    /// included ([`RequestBody::FollowerRead`]): a follower asks its leader
    /// for a read index and serves the read itself, so reads spread over
    /// every server, with the same linearizability as reads at the leader.
    /// Off by default.
    pub follower_reads: bool,
}

impl ClerkConfig {
    /// Defaults: 500 ms per attempt (250 ms for a probe), 20 ms back-off,
    /// give up after 10 s.
    pub fn new(servers: Vec<NodeId>) -> ClerkConfig {
        ClerkConfig {
            servers,
            attempt_timeout: 500,
            probe_timeout: 250,
            retry_backoff: 20,
            give_up_after: Some(10_000),
            follower_reads: false,
        }
    }
}

/// How an operation ended without success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClerkError {
    /// The outcome is unknown: the operation may or may not have taken effect.
    Unknown(String),
    /// The operation was refused and certainly did not take effect.
    Refused(ServiceError),
}

impl fmt::Display for ClerkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClerkError::Unknown(why) => write!(f, "outcome unknown: {why}"),
            ClerkError::Refused(error) => write!(f, "refused: {error}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClerkError {}

/// Output of a clerk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClerkOutput {
    /// Send this request to server `to`.
    Send {
        /// The server.
        to: NodeId,
        /// The request.
        request: ClientRequest,
    },
    /// The current operation finished: `Ok(value)` (a get's value; `None` for
    /// writes and missing keys).
    Done(Result<Option<Bytes>, ClerkError>),
    /// A leader hint named server `hint`, which is not among the servers the
    /// clerk knows: ask the servers it knows for the member list (learning
    /// the new members' addresses) and feed the servers it lists back with
    /// [`Clerk::handle_members`]. The clerk does not wait: it goes on with
    /// the servers it knows until then.
    Discover {
        /// The server the hint named.
        hint: NodeId,
    },
}

/// The clerk is already running an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// How the operation in progress is sent, the same on every attempt.
#[derive(Clone, Copy, Debug)]
enum Stamp {
    /// A read: no session needed.
    Read,
    /// The first write, which opens the session.
    Open {
        /// Identifies the opening across retries.
        nonce: u64,
    },
    /// A write in the open session.
    Write {
        /// The session.
        client: ClientId,
        /// Its sequence number.
        seq: u64,
    },
}

/// The operation in progress.
#[derive(Clone, Debug)]
struct Current {
    operation: Operation,
    stamp: Stamp,
    give_up_at: Option<Instant>,
    /// Answer expected by then; otherwise try the next server.
    attempt_deadline: Instant,
    /// Waiting out a back-off before the next send.
    resend_at: Option<Instant>,
    /// Correlation id of the latest request sent.
    request_id: u64,
    /// The server the latest request went to.
    sent_to: Option<NodeId>,
    /// Correlation id of this operation's first request: ids from it to
    /// `request_id` are its attempts.
    first_request_id: u64,
    attempts: u32,
    last_error: Option<String>,
    /// For a follower read: the position of the server it goes to.
    read_server: Option<usize>,
}

/// A sans-IO client.
#[derive(Clone, Debug)]
pub struct Clerk {
    config: ClerkConfig,
    rng: Rng,
    /// Open session, if any.
    client: Option<ClientId>,
    /// Last sequence number used in the session.
    seq: u64,
    /// Index into `config.servers` of the presumed leader.
    leader: usize,
    /// Whether `leader` rests on a sign (its own answer, or a hint naming
    /// it) rather than a guess: a guess is only given `probe_timeout`.
    leader_known: bool,
    /// Servers that recently failed to answer (an attempt timed out, or
    /// the transport could not reach them), with the end of the
    /// suspicion: the clerk tries the others first and does not follow
    /// hints to them meanwhile. Any answer from one clears it.
    suspects: Suspects,
    current: Option<Current>,
    next_request_id: u64,
    /// The leader hint that asked for the member list still outstanding
    /// ([`ClerkOutput::Discover`]), if any.
    discovering: Option<NodeId>,
    /// No new [`ClerkOutput::Discover`] before this (one per attempt timeout).
    next_discovery_at: Instant,
    outputs: VecDeque<ClerkOutput>,
}

impl Clerk {
    /// A clerk with no session yet; `seed` picks servers when no leader is known.
    pub fn new(config: ClerkConfig, seed: u64) -> Clerk {
        let mut rng = Rng::new(seed);
        let leader = if config.servers.is_empty() {
            0
        } else {
            rng.index(config.servers.len())
        };
        Clerk {
            config,
            rng,
            client: None,
            seq: 0,
            leader,
            leader_known: false,
            suspects: Suspects::default(),
            current: None,
            next_request_id: 1,
            discovering: None,
            next_discovery_at: Instant::ZERO,
            outputs: VecDeque::new(),
        }
    }

    /// Starts an operation.
    pub fn start(&mut self, now: Instant, operation: Operation) -> Result<(), Busy> {
        if self.current.is_some() {
            return Err(Busy);
        }
        // Reads need no session (they are idempotent and never logged); a
        // write needs one, opened by the write itself if there is none yet.
        let stamp = match (self.client, operation.is_write()) {
            (_, false) => Stamp::Read,
            (Some(client), true) => {
                self.seq += 1;
                Stamp::Write {
                    client,
                    seq: self.seq,
                }
            }
            (None, true) => Stamp::Open {
                nonce: self.rng.next_u64().max(1),
            },
        };
        let read_server = (matches!(stamp, Stamp::Read)
            && self.config.follower_reads
            && !self.config.servers.is_empty())
        .then(|| self.rng.index(self.config.servers.len()));
        self.current = Some(Current {
            operation,
            stamp,
            give_up_at: self.config.give_up_after.map(|ms| now + ms),
            attempt_deadline: now,
            resend_at: None,
            request_id: 0,
            sent_to: None,
            first_request_id: self.next_request_id,
            attempts: 0,
            last_error: None,
            read_server,
        });
        self.send_attempt(now);
        Ok(())
    }

    /// Feeds an answer (from `from`) or a timeout.
    pub fn handle_response(&mut self, now: Instant, from: NodeId, response: ClientResponse) {
        // An answer, even a late one or a refusal, shows that `from` is
        // reachable; `Unavailable` is how a driver reports one that is not.
        if !matches!(response.result, Err(ServiceError::Unavailable(_))) {
            self.suspects.clear(from);
        }
        let suspect_hint = match &response.result {
            Err(ServiceError::NotLeader {
                leader_hint: Some(hint),
            }) => self.is_suspect(now, *hint),
            _ => false,
        };
        let Some(current) = &mut self.current else {
            return;
        };
        if response.id != current.request_id {
            // An earlier attempt of this operation. Its success answers the
            // operation as well as the latest attempt's would: every attempt
            // of a write carries the same session sequence number (or
            // nonce), so it took effect once, and a read was served after
            // the operation was invoked. So a slow server's answer (a write
            // over slow links, answered after the attempt timeout sent the
            // clerk elsewhere) is not thrown away. Its errors are stale:
            // only the latest attempt's steer the clerk.
            let earlier =
                response.id >= current.first_request_id && response.id < current.request_id;
            if !(earlier && response.result.is_ok()) {
                return;
            }
        }
        // A follower read's answer says nothing about who leads.
        if current.read_server.is_none()
            && let Some(position) = self.config.servers.iter().position(|&s| s == from)
        {
            self.leader = position;
            self.leader_known = true;
        }
        match response.result {
            Ok(Reply::Opened(client)) => {
                self.client = Some(client);
                self.seq = 1;
                self.current = None;
                self.outputs.push_back(ClerkOutput::Done(Ok(None)));
            }
            Ok(Reply::Done(value)) => {
                self.current = None;
                self.outputs.push_back(ClerkOutput::Done(Ok(value)));
            }
            Ok(Reply::Status(_) | Reply::Members(_) | Reply::Backup(_)) => {}
            Err(ServiceError::NotLeader { leader_hint }) => {
                current.last_error = Some(alloc::format!(
                    "{}",
                    ServiceError::NotLeader { leader_hint }
                ));
                // A hint naming a server that just failed to answer is
                // most likely stale: a leader that went silent is still
                // named by followers that have not noticed yet. Following
                // it would wait out another attempt there; the other
                // servers are asked instead until one names somebody else
                // or the suspicion ends.
                let suspect = suspect_hint;
                match leader_hint
                    .filter(|_| !suspect)
                    .and_then(|hint| self.config.servers.iter().position(|&s| s == hint))
                {
                    Some(position) => {
                        match &mut current.read_server {
                            // A follower that knows no leader: the hinted
                            // server serves the read.
                            Some(server) => *server = position,
                            None => {
                                self.leader = position;
                                self.leader_known = true;
                            }
                        }
                        self.send_attempt(now);
                    }
                    None => {
                        if let Some(hint) = leader_hint.filter(|_| !suspect) {
                            self.maybe_discover(now, hint);
                        }
                        self.next_server(now);
                        self.back_off(now);
                    }
                }
            }
            Err(ServiceError::Busy) => {
                current.last_error = Some(String::from("busy"));
                self.back_off(now);
            }
            Err(ServiceError::SessionExpired) => {
                self.client = None;
                if current.operation.is_write() {
                    // The write may have been applied before the session expired.
                    self.finish_unknown(String::from("session expired"));
                } else {
                    self.send_attempt(now);
                }
            }
            Err(ServiceError::Unavailable(why)) => {
                current.last_error = Some(why);
                self.suspect(now, from);
                self.next_server(now);
                self.back_off(now);
            }
            Err(error) if error.is_definite() => {
                self.current = None;
                self.outputs
                    .push_back(ClerkOutput::Done(Err(ClerkError::Refused(error))));
            }
            Err(error) => {
                let text = alloc::format!("{error}");
                self.finish_unknown(text);
            }
        }
    }

    /// Time has passed: retry or give up as due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(current) = &self.current else {
            return;
        };
        if current.give_up_at.is_some_and(|t| now >= t) {
            let why = current
                .last_error
                .clone()
                .unwrap_or_else(|| String::from("no answer from the cluster"));
            self.finish_unknown(why);
            return;
        }
        if current.resend_at.is_some_and(|t| now >= t) {
            self.send_attempt(now);
        } else if current.resend_at.is_none() && now >= current.attempt_deadline {
            let silent = current.sent_to;
            if let Some(current) = &mut self.current {
                current.last_error = Some(String::from("timed out waiting for an answer"));
            }
            if let Some(server) = silent {
                self.suspect(now, server);
            }
            self.next_server(now);
            self.send_attempt(now);
        }
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<ClerkOutput> {
        self.outputs.pop_front()
    }

    /// When the clerk next needs [`Clerk::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        let Some(current) = &self.current else {
            return Instant::NEVER;
        };
        let retry = current.resend_at.unwrap_or(current.attempt_deadline);
        current.give_up_at.map_or(retry, |t| t.min(retry))
    }

    /// Whether an operation is in progress.
    pub fn is_busy(&self) -> bool {
        self.current.is_some()
    }

    /// Turns follower reads ([`ClerkConfig::follower_reads`]) on or off,
    /// from the next operation on.
    pub fn set_follower_reads(&mut self, on: bool) {
        self.config.follower_reads = on;
    }

    /// Replaces the list of servers (the cluster's membership changed).
    pub fn set_servers(&mut self, servers: Vec<NodeId>) {
        let position = |id: Option<NodeId>| {
            id.and_then(|id| servers.iter().position(|&s| s == id))
                .unwrap_or(0)
        };
        let guess = self.leader_guess();
        self.leader_known &= guess.is_some_and(|id| servers.contains(&id));
        self.leader = position(guess);
        if let Some(current) = &mut self.current
            && let Some(server) = &mut current.read_server
        {
            *server = position(self.config.servers.get(*server).copied());
        }
        self.config.servers = servers;
    }

    /// Feeds the answer to a [`ClerkOutput::Discover`]: the servers the
    /// member list names (or, if no server answered, the ones known
    /// before). If they include the server whose hint asked for them, the
    /// operation in progress goes there at once.
    pub fn handle_members(&mut self, now: Instant, servers: Vec<NodeId>) {
        let hint = self.discovering.take();
        self.set_servers(servers);
        let Some(position) =
            hint.and_then(|hint| self.config.servers.iter().position(|&s| s == hint))
        else {
            return;
        };
        match self.current.as_mut().map(|c| &mut c.read_server) {
            None => {
                self.leader = position;
                self.leader_known = true;
            }
            // A follower read goes where a leader hint points too (see
            // `handle_response`).
            Some(Some(server)) => {
                *server = position;
                self.send_attempt(now);
            }
            Some(None) => {
                self.leader = position;
                self.leader_known = true;
                self.send_attempt(now);
            }
        }
    }

    /// Whether a [`ClerkOutput::Discover`] awaits its
    /// [`Clerk::handle_members`].
    pub fn is_discovering(&self) -> bool {
        self.discovering.is_some()
    }

    /// The open session, if any.
    pub fn session(&self) -> Option<ClientId> {
        self.client
    }

    /// Last sequence number used.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The server the clerk believes leads.
    pub fn leader_guess(&self) -> Option<NodeId> {
        self.config.servers.get(self.leader).copied()
    }

    /// Requests sent for the current operation so far.
    pub fn attempts(&self) -> u32 {
        self.current.as_ref().map_or(0, |c| c.attempts)
    }

    fn finish_unknown(&mut self, why: String) {
        self.current = None;
        self.outputs
            .push_back(ClerkOutput::Done(Err(ClerkError::Unknown(why))));
    }

    fn send_attempt(&mut self, now: Instant) {
        let server = self
            .current
            .as_ref()
            .and_then(|c| c.read_server)
            .unwrap_or(self.leader);
        let Some(&to) = self.config.servers.get(server) else {
            self.finish_unknown(String::from("no servers configured"));
            return;
        };
        let Some(current) = &mut self.current else {
            return;
        };
        let operation = current.operation.clone();
        let body = match current.stamp {
            Stamp::Read if current.read_server.is_some() => RequestBody::FollowerRead {
                key: Bytes::copy_from_slice(operation.key()),
            },
            Stamp::Read => RequestBody::Operation {
                client: self.client.unwrap_or(0),
                seq: 0,
                operation,
            },
            Stamp::Open { nonce } => RequestBody::Open { nonce, operation },
            Stamp::Write { client, seq } => RequestBody::Operation {
                client,
                seq,
                operation,
            },
        };
        let id = self.next_request_id;
        self.next_request_id += 1;
        current.request_id = id;
        current.attempts += 1;
        current.resend_at = None;
        current.sent_to = Some(to);
        let timeout = if current.read_server.is_none() && !self.leader_known {
            self.config.probe_timeout.min(self.config.attempt_timeout)
        } else {
            self.config.attempt_timeout
        };
        current.attempt_deadline = now + timeout;
        self.outputs.push_back(ClerkOutput::Send {
            to,
            request: ClientRequest { id, body },
        });
    }
}

#[cfg(test)]
mod tests;
