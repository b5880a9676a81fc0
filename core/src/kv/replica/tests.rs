//! A single-node replica driven by hand with a clerk: how many log entries
//! a client's writes take, and that a retried write is applied at most once.

use alloc::vec::Vec;
use bytes::Bytes;

use super::*;
use crate::kv::clerk::{Clerk, ClerkConfig, ClerkOutput};
use crate::kv::{Command, Operation, Reply, RequestBody, ServiceError};

/// Node 1 of a one-node cluster, elected.
fn leader() -> (Replica, Instant) {
    let mut replica = Replica::new(ReplicaConfig::new(1, [1]), 7, Instant(0)).unwrap();
    let now = replica.poll_timeout();
    replica.handle(now, ReplicaInput::Timeout).unwrap();
    settle(&mut replica, now);
    assert!(replica.node().is_leader());
    assert_eq!(replica.node().log().last_index(), 1, "the leader's no-op");
    (replica, now)
}

/// Acknowledges every write as durable until the replica has nothing more
/// to do; the replies it gave.
fn settle(replica: &mut Replica, now: Instant) -> Vec<(ReplyTo, ClientResponse)> {
    let mut replies = Vec::new();
    while let Some(output) = replica.poll_output() {
        match output {
            ReplicaOutput::Persist(write) => {
                replica
                    .handle(now, ReplicaInput::Persisted(write.seq))
                    .unwrap();
            }
            ReplicaOutput::Send(_) => {}
            ReplicaOutput::Reply { to, response } => replies.push((to, response)),
        }
    }
    replies
}

/// The request the clerk sends next.
fn next_request(clerk: &mut Clerk) -> ClientRequest {
    match clerk.poll_output() {
        Some(ClerkOutput::Send { to: 1, request }) => request,
        other => panic!("expected a request to node 1, got {other:?}"),
    }
}

fn append(value: &'static str) -> Operation {
    Operation::Append {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(value.as_bytes()),
    }
}

fn value(replica: &Replica) -> Option<&[u8]> {
    replica.store().get(b"k").map(|v| &v[..])
}

#[test]
fn a_one_shot_write_is_one_log_entry_and_one_round() {
    let (mut replica, now) = leader();
    let mut clerk = Clerk::new(ClerkConfig::new(alloc::vec![1]), 3);
    clerk.start(now, append("a")).unwrap();
    let request = next_request(&mut clerk);
    assert!(
        matches!(request.body, RequestBody::Open { .. }),
        "{request:?}"
    );
    replica
        .handle(now, ReplicaInput::Client { from: 9, request })
        .unwrap();
    let replies = settle(&mut replica, now);
    assert_eq!(replies.len(), 1);
    let (to, response) = replies.into_iter().next().unwrap();
    assert_eq!(to, 9);
    assert_eq!(response.result, Ok(Reply::Opened(2)));
    clerk.handle_response(now, 1, response);
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
    assert_eq!(clerk.attempts(), 0, "done after one round");
    // One entry: the no-op, then the write that opened session 2.
    assert_eq!(replica.node().log().last_index(), 2);
    assert_eq!(clerk.session(), Some(2));
    assert_eq!(value(&replica), Some(&b"a"[..]));
    // The next write is a write in that session: one entry again.
    clerk.start(now, append("b")).unwrap();
    let request = next_request(&mut clerk);
    assert!(
        matches!(
            request.body,
            RequestBody::Operation {
                client: 2,
                seq: 2,
                ..
            }
        ),
        "{request:?}"
    );
    replica
        .handle(now, ReplicaInput::Client { from: 9, request })
        .unwrap();
    let (_, response) = settle(&mut replica, now).pop().unwrap();
    assert_eq!(response.result, Ok(Reply::Done(None)));
    assert_eq!(replica.node().log().last_index(), 3);
}

#[test]
fn a_retried_first_write_is_applied_at_most_once() {
    let (mut replica, now) = leader();
    let mut clerk = Clerk::new(ClerkConfig::new(alloc::vec![1]), 3);
    clerk.start(now, append("a")).unwrap();
    let first = next_request(&mut clerk);
    // The first attempt reaches the log; a retry arrives before it commits
    // (it joins the same entry), and the answers are lost.
    replica
        .handle(
            now,
            ReplicaInput::Client {
                from: 1,
                request: first.clone(),
            },
        )
        .unwrap();
    let mut pending_retry = first.clone();
    pending_retry.id += 100;
    replica
        .handle(
            now,
            ReplicaInput::Client {
                from: 2,
                request: pending_retry,
            },
        )
        .unwrap();
    let replies = settle(&mut replica, now);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|(_, r)| r.result == Ok(Reply::Opened(2)))
    );
    assert_eq!(replica.node().log().last_index(), 2, "one entry for both");
    // The clerk times out and retries with the same nonce: answered from
    // the session, with no new entry and nothing applied again.
    let later = now + 1_000;
    clerk.handle_timeout(later);
    let retry = next_request(&mut clerk);
    assert_ne!(retry.id, first.id);
    assert_eq!(retry.body, first.body, "same nonce, same write");
    replica
        .handle(
            later,
            ReplicaInput::Client {
                from: 3,
                request: retry,
            },
        )
        .unwrap();
    let (_, response) = settle(&mut replica, later).pop().unwrap();
    assert_eq!(response.result, Ok(Reply::Opened(2)));
    assert_eq!(replica.node().log().last_index(), 2);
    assert_eq!(value(&replica), Some(&b"a"[..]));
    clerk.handle_response(later, 1, response);
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
    assert_eq!(clerk.session(), Some(2));
}

#[test]
fn a_retry_proposed_again_by_a_new_leader_is_applied_once() {
    // Two copies of one opening in the log, as when a leader crashed after
    // replicating it and the client retried at the next leader.
    let (mut replica, now) = leader();
    let open = Command::Open {
        nonce: 42,
        at: now.as_millis(),
        operation: append("a"),
    };
    replica.propose_raw(now, open.encode()).unwrap();
    replica.propose_raw(now, open.encode()).unwrap();
    settle(&mut replica, now);
    assert_eq!(replica.node().log().last_index(), 3);
    assert_eq!(value(&replica), Some(&b"a"[..]));
    assert_eq!(replica.store().sessions().len(), 1);
}

/// Three replicas, node 1 elected, every message delivered until none is
/// left; the replies each gave.
fn three_replicas() -> (Vec<Replica>, Instant) {
    let mut replicas: Vec<Replica> = (1..=3)
        .map(|id| Replica::new(ReplicaConfig::new(id, [1, 2, 3]), 7, Instant(0)).unwrap())
        .collect();
    let now = replicas[0].poll_timeout();
    replicas[0].handle(now, ReplicaInput::Timeout).unwrap();
    deliver_all(&mut replicas, now, &[]);
    assert!(replicas[0].node().is_leader());
    (replicas, now)
}

/// Delivers messages between `replicas` until none is left, except to and
/// from the `cut` ones; the replies given, by replica.
fn deliver_all(
    replicas: &mut [Replica],
    now: Instant,
    cut: &[NodeId],
) -> Vec<Vec<(ReplyTo, ClientResponse)>> {
    let mut replies = alloc::vec![Vec::new(); replicas.len()];
    loop {
        let mut messages = Vec::new();
        for (at, replica) in replicas.iter_mut().enumerate() {
            while let Some(output) = replica.poll_output() {
                match output {
                    ReplicaOutput::Persist(write) => {
                        replica
                            .handle(now, ReplicaInput::Persisted(write.seq))
                            .unwrap();
                    }
                    ReplicaOutput::Send(envelope) => messages.push(envelope),
                    ReplicaOutput::Reply { to, response } => replies[at].push((to, response)),
                }
            }
        }
        if messages.is_empty() {
            return replies;
        }
        for envelope in messages {
            if cut.contains(&envelope.from) || cut.contains(&envelope.to) {
                continue;
            }
            let to = envelope.to as usize - 1;
            replicas[to]
                .handle(now, ReplicaInput::Peer(envelope))
                .unwrap();
        }
    }
}

fn members_request(linearizable: bool) -> ClientRequest {
    ClientRequest {
        id: 9,
        body: RequestBody::Members { linearizable },
    }
}

#[test]
fn a_linearizable_member_list_waits_for_the_leader_to_confirm_it_leads() {
    let (mut replicas, now) = three_replicas();
    // Confirmed by a majority: answered by the leader.
    replicas[0]
        .handle(
            now,
            ReplicaInput::Client {
                from: 5,
                request: members_request(true),
            },
        )
        .unwrap();
    let replies = deliver_all(&mut replicas, now, &[]);
    match &replies[0][..] {
        [
            (
                5,
                ClientResponse {
                    result: Ok(Reply::Members(status)),
                    ..
                },
            ),
        ] => {
            assert_eq!((status.node, status.leader), (1, Some(1)));
            assert_eq!(status.members.len(), 3);
        }
        other => panic!("expected the member list, got {other:?}"),
    }

    // Node 1 is cut off (a new leader may be elected behind it): its own
    // view is still given on request, but a linearizable list is not, since
    // no majority confirms that it leads.
    for linearizable in [false, true] {
        replicas[0]
            .handle(
                now,
                ReplicaInput::Client {
                    from: 6,
                    request: members_request(linearizable),
                },
            )
            .unwrap();
    }
    let replies = deliver_all(&mut replicas, now, &[1]);
    assert!(
        matches!(
            &replies[0][..],
            [(
                6,
                ClientResponse {
                    result: Ok(Reply::Members(_)),
                    ..
                }
            )]
        ),
        "only the plain request is answered: {:?}",
        replies[0]
    );

    // A follower refuses a linearizable list and names the leader.
    replicas[1]
        .handle(
            now,
            ReplicaInput::Client {
                from: 7,
                request: members_request(true),
            },
        )
        .unwrap();
    let replies = deliver_all(&mut replicas, now, &[1]);
    assert!(
        matches!(
            &replies[1][..],
            [(
                7,
                ClientResponse {
                    result: Err(ServiceError::NotLeader {
                        leader_hint: Some(1)
                    }),
                    ..
                }
            )]
        ),
        "{:?}",
        replies[1]
    );
}

fn follower_read(id: u64) -> ClientRequest {
    ClientRequest {
        id,
        body: RequestBody::FollowerRead {
            key: Bytes::from_static(b"k"),
        },
    }
}

/// A follower read answered by a follower counts in
/// `follower_reads_served` (what `distribkv_server_follower_reads_served`
/// reports); one the leader answers, or a plain read, does not.
#[test]
fn a_follower_read_answered_by_a_follower_is_counted_there() {
    let (mut replicas, now) = three_replicas();
    replicas[0]
        .handle(
            now,
            ReplicaInput::Client {
                from: 5,
                request: ClientRequest {
                    id: 1,
                    body: RequestBody::Open {
                        nonce: 1,
                        operation: append("x"),
                    },
                },
            },
        )
        .unwrap();
    deliver_all(&mut replicas, now, &[]);
    for (at, id) in [(1, 2), (2, 3), (0, 4)] {
        replicas[at]
            .handle(
                now,
                ReplicaInput::Client {
                    from: 6,
                    request: follower_read(id),
                },
            )
            .unwrap();
    }
    replicas[0]
        .handle(
            now,
            ReplicaInput::Client {
                from: 6,
                request: ClientRequest {
                    id: 5,
                    body: RequestBody::Operation {
                        client: 1,
                        seq: 1,
                        operation: Operation::Get {
                            key: Bytes::from_static(b"k"),
                        },
                    },
                },
            },
        )
        .unwrap();
    let replies = deliver_all(&mut replicas, now, &[]);
    for (at, expected) in [(0, 2), (1, 1), (2, 1)] {
        let values: Vec<_> = replies[at]
            .iter()
            .map(|(_, response)| response.result.clone())
            .collect();
        assert_eq!(values.len(), expected, "replica {}: {values:?}", at + 1);
        for value in values {
            assert_eq!(value, Ok(Reply::Done(Some(Bytes::from_static(b"x")))));
        }
    }
    let served: Vec<u64> = replicas
        .iter()
        .map(Replica::follower_reads_served)
        .collect();
    assert_eq!(served, [0, 1, 1]);

    // A follower cut off from its leader cannot get a read index: its read
    // is not answered, and not counted.
    replicas[1]
        .handle(
            now,
            ReplicaInput::Client {
                from: 6,
                request: follower_read(6),
            },
        )
        .unwrap();
    let replies = deliver_all(&mut replicas, now, &[2]);
    assert!(replies[1].is_empty(), "{:?}", replies[1]);
    assert_eq!(replicas[1].follower_reads_served(), 1);
}

/// A request and the server it goes to.
fn next_send(clerk: &mut Clerk) -> (u64, ClientRequest) {
    match clerk.poll_output() {
        Some(ClerkOutput::Send { to, request }) => (to, request),
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn a_slow_answer_to_an_earlier_attempt_completes_the_operation() {
    // Over slow links a write may be answered after the attempt timeout
    // sent the clerk to another server: the late success still counts
    // (same session sequence number, applied once), and a late error
    // steers nothing.
    let mut clerk = Clerk::new(ClerkConfig::new(alloc::vec![1, 2, 3]), 7);
    let now = Instant::ZERO;
    clerk.start(now, append("a")).unwrap();
    let (slow_server, first) = next_send(&mut clerk);
    // The attempt timeout.
    let later = clerk.poll_timeout();
    clerk.handle_timeout(later);
    let (other_server, second) = next_send(&mut clerk);
    assert_ne!(other_server, slow_server);
    assert_eq!(second.body, first.body, "a retry of the same write");
    // A late error of the first attempt is stale: ignored.
    clerk.handle_response(
        later,
        slow_server,
        ClientResponse {
            id: first.id,
            result: Err(ServiceError::NotLeader { leader_hint: None }),
        },
    );
    assert_eq!(clerk.poll_output(), None);
    assert!(clerk.is_busy());
    // Its late success answers the write.
    clerk.handle_response(
        later,
        slow_server,
        ClientResponse {
            id: first.id,
            result: Ok(Reply::Opened(9)),
        },
    );
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
    assert_eq!(clerk.session(), Some(9));
    assert_eq!(clerk.leader_guess(), Some(slow_server));
    // An answer to an attempt of an operation already done counts for
    // nothing in the next one.
    clerk.start(later, append("b")).unwrap();
    let (_, third) = next_send(&mut clerk);
    clerk.handle_response(
        later,
        other_server,
        ClientResponse {
            id: second.id,
            result: Ok(Reply::Done(None)),
        },
    );
    assert_eq!(clerk.poll_output(), None);
    assert!(clerk.is_busy());
    clerk.handle_response(
        later,
        slow_server,
        ClientResponse {
            id: third.id,
            result: Ok(Reply::Done(None)),
        },
    );
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
}

/// Writes a value of 1 MiB to key `big{i}` through `clerk`.
fn write_big(replica: &mut Replica, now: Instant, clerk: &mut Clerk, i: u8) {
    let put = Operation::Put {
        key: Bytes::from(alloc::format!("big{i}")),
        value: Bytes::from(alloc::vec![b'a' + i; crate::kv::MAX_VALUE_BYTES]),
    };
    clerk.start(now, put).unwrap();
    let request = next_request(clerk);
    replica
        .handle(now, ReplicaInput::Client { from: 9, request })
        .unwrap();
    let (_, response) = settle(replica, now).pop().unwrap();
    clerk.handle_response(now, 1, response);
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
}

/// Asks `replica` for a backup chunk: of a new snapshot (`index: None`) or
/// of the one at `index`, from `offset`.
fn backup_chunk(
    replica: &mut Replica,
    now: Instant,
    index: Option<LogIndex>,
    offset: u64,
) -> Result<crate::kv::BackupChunk, ServiceError> {
    let request = ClientRequest {
        id: 77,
        body: RequestBody::Backup { index, offset },
    };
    replica
        .handle(now, ReplicaInput::Client { from: 4, request })
        .unwrap();
    let mut replies = settle(replica, now);
    assert_eq!(replies.len(), 1, "{replies:?}");
    match replies.pop().unwrap().1.result? {
        Reply::Backup(chunk) => Ok(chunk),
        other => panic!("not a backup chunk: {other:?}"),
    }
}

/// Backups running together fetch their snapshots to the end: the leader
/// holds up to [`BACKUPS_HELD`] snapshots, each until its last chunk is
/// served; a fifth takes the place of the one asked for least recently;
/// one not asked for in [`BACKUP_IDLE_MS`] is dropped.
#[test]
fn backups_running_together_each_fetch_their_snapshot() {
    assert_eq!(BACKUPS_HELD, 4);
    let (mut replica, now) = leader();
    // Five snapshots of 5 to 9 MiB, two or three chunks each, at five
    // indexes.
    let mut clerk = Clerk::new(ClerkConfig::new(alloc::vec![1]), 5);
    for i in 0..4 {
        write_big(&mut replica, now, &mut clerk, i);
    }
    let mut taken = Vec::new();
    for i in 4..9 {
        write_big(&mut replica, now, &mut clerk, i);
        let first = backup_chunk(&mut replica, now, None, 0).unwrap();
        assert_eq!(first.offset, 0);
        assert!(first.total > first.data.len() as u64, "more than a chunk");
        taken.push(first);
    }
    let at = |i: usize| Instant(now.as_millis() + i as u64);
    // Snapshot 0 was asked for least recently: the fifth took its place.
    let after_first = |first: &crate::kv::BackupChunk| (Some(first.index), first.data.len() as u64);
    let (index, offset) = after_first(&taken[0]);
    assert!(backup_chunk(&mut replica, at(1), index, offset).is_err());
    for (i, first) in taken.iter().enumerate().skip(1) {
        let (index, mut offset) = after_first(first);
        while offset < first.total {
            let chunk = backup_chunk(&mut replica, at(i), index, offset).unwrap();
            assert_eq!((chunk.index, chunk.total), (first.index, first.total));
            offset += chunk.data.len() as u64;
        }
        // Let go once its last chunk is served.
        assert!(backup_chunk(&mut replica, at(i), index, 0).is_err());
    }
    // One not asked for in the idle time is dropped at the next timeout.
    let first = backup_chunk(&mut replica, now, None, 0).unwrap();
    let idle = Instant(now.as_millis() + BACKUP_IDLE_MS / 2);
    replica.handle(idle, ReplicaInput::Timeout).unwrap();
    settle(&mut replica, idle);
    assert!(backup_chunk(&mut replica, idle, Some(first.index), 1).is_ok());
    let later = Instant(idle.as_millis() + BACKUP_IDLE_MS);
    replica.handle(later, ReplicaInput::Timeout).unwrap();
    settle(&mut replica, later);
    let gone = backup_chunk(&mut replica, later, Some(first.index), 1);
    assert!(
        matches!(&gone, Err(ServiceError::Unavailable(why)) if why.contains("no longer held")),
        "{gone:?}"
    );
}
