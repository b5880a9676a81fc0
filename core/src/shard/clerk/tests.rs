//! The routing clerk alone: routing by configuration, leader hints, a
//! refresh on "wrong group" that keeps the sequence number, follower reads;
//! probes and suspects in `probes`.

use super::*;
use alloc::collections::BTreeMap;
use alloc::vec;

mod probes;

fn config(num: u64, owner: GroupId) -> ShardConfig {
    ShardConfig {
        num,
        shards: vec![owner; 4],
        groups: BTreeMap::from([(100, vec![4, 5, 6]), (101, vec![7, 8, 9])]),
    }
}

fn sent(clerk: &mut ShardClerk) -> (NodeId, HostRequest) {
    match clerk.poll_output() {
        Some(ShardClerkOutput::Send { to, request }) => (to, request),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn id_of(request: &HostRequest) -> u64 {
    request.id()
}

fn get() -> Operation {
    Operation::Get {
        key: Bytes::from_static(b"k"),
    }
}

#[test]
fn routes_by_the_configuration_and_follows_leader_hints() {
    let mut clerk = ShardClerk::new(ShardClerkConfig::new(vec![1, 2, 3]), 1);
    clerk.start(Instant(0), get()).unwrap();
    assert_eq!(clerk.start(Instant(0), get()), Err(ClerkBusy));
    // No configuration yet: ask the controller for the latest.
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 1);
    assert!(matches!(
        request,
        HostRequest::Controller {
            op: ControllerOp::Query(None),
            ..
        }
    ));
    let reply = HostReply::Controller {
        id: id_of(&request),
        result: Ok(ControllerReply::Config(config(1, 100))),
    };
    clerk.handle_reply(Instant(5), 1, reply);
    // Then to the owner's first server.
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 4);
    let HostRequest::Kv { group, seq, .. } = request else {
        panic!("a key-value request");
    };
    assert_eq!((group, seq), (100, 1));
    // Not the leader, try 6: it goes to 6 at once.
    clerk.handle_reply(
        Instant(6),
        to,
        HostReply::Kv {
            id: id_of(&request),
            result: Err(KvError::NotLeader {
                leader_hint: Some(6),
            }),
        },
    );
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 6);
    // A stale refusal (to the attempt at 4) is ignored.
    clerk.handle_reply(
        Instant(7),
        4,
        HostReply::Kv {
            id: 2,
            result: Err(KvError::NotLeader {
                leader_hint: Some(5),
            }),
        },
    );
    assert!(clerk.is_busy());
    assert_eq!(clerk.poll_output(), None);
    clerk.handle_reply(
        Instant(8),
        to,
        HostReply::Kv {
            id: id_of(&request),
            result: Ok(Some(Bytes::from_static(b"v"))),
        },
    );
    assert_eq!(
        clerk.poll_output(),
        Some(ShardClerkOutput::Done(Ok(Some(Bytes::from_static(b"v")))))
    );
    assert!(!clerk.is_busy());
    // The next operation goes straight to the known leader.
    clerk.start(Instant(9), get()).unwrap();
    assert_eq!(sent(&mut clerk).0, 6);
}

#[test]
fn wrong_group_refreshes_and_keeps_the_sequence_number() {
    let mut clerk = ShardClerk::new(ShardClerkConfig::new(vec![1]), 2);
    let put = Operation::Put {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"v"),
    };
    clerk.start(Instant(0), put).unwrap();
    let (_, request) = sent(&mut clerk);
    clerk.handle_reply(
        Instant(1),
        1,
        HostReply::Controller {
            id: id_of(&request),
            result: Ok(ControllerReply::Config(config(1, 100))),
        },
    );
    let (_, first) = sent(&mut clerk);
    clerk.handle_reply(
        Instant(2),
        4,
        HostReply::Kv {
            id: id_of(&first),
            result: Err(KvError::WrongGroup),
        },
    );
    // Refresh: the shard moved to 101 in configuration 2.
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 1);
    clerk.handle_reply(
        Instant(3),
        1,
        HostReply::Controller {
            id: id_of(&request),
            result: Ok(ControllerReply::Config(config(2, 101))),
        },
    );
    let (to, second) = sent(&mut clerk);
    assert_eq!(to, 7);
    let (
        HostRequest::Kv {
            seq: a, client: c1, ..
        },
        HostRequest::Kv {
            seq: b,
            client: c2,
            group,
            ..
        },
    ) = (first, second)
    else {
        panic!("key-value requests");
    };
    assert_eq!(
        (a, c1),
        (b, c2),
        "same session and sequence number across the move"
    );
    assert_eq!(group, 101);
    // Unanswered: the next server after the timeout.
    clerk.handle_timeout(Instant(200));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 8);
    // The shard has not arrived yet: back off, then the same server again.
    clerk.handle_reply(
        Instant(201),
        to,
        HostReply::Kv {
            id: id_of(&request),
            result: Err(KvError::NotArrived),
        },
    );
    assert_eq!(clerk.poll_output(), None);
    assert_eq!(clerk.poll_timeout(), Instant(251));
    clerk.handle_timeout(Instant(251));
    assert_eq!(sent(&mut clerk).0, 8);
}

#[test]
fn follower_reads_spread_over_the_group_and_move_on_after_a_failure() {
    let mut clerk_config = ShardClerkConfig::new(vec![1]);
    clerk_config.follower_reads = true;
    let mut clerk = ShardClerk::new(clerk_config, 3);
    clerk.start(Instant(0), get()).unwrap();
    let (_, request) = sent(&mut clerk);
    clerk.handle_reply(
        Instant(1),
        1,
        HostReply::Controller {
            id: id_of(&request),
            result: Ok(ControllerReply::Config(config(1, 100))),
        },
    );
    let mut asked = alloc::collections::BTreeSet::new();
    let (to, request) = sent(&mut clerk);
    assert!([4, 5, 6].contains(&to));
    let HostRequest::FollowerRead { group, .. } = &request else {
        panic!("a follower read, got {request:?}");
    };
    assert_eq!(*group, 100);
    asked.insert(to);
    // That server knows no leader: the next server, after a pause.
    clerk.handle_reply(
        Instant(2),
        to,
        HostReply::Kv {
            id: id_of(&request),
            result: Err(KvError::NotLeader { leader_hint: None }),
        },
    );
    clerk.handle_timeout(clerk.poll_timeout());
    let (next, request) = sent(&mut clerk);
    assert_ne!(next, to);
    assert!(matches!(request, HostRequest::FollowerRead { .. }));
    clerk.handle_reply(
        Instant(100),
        next,
        HostReply::Kv {
            id: id_of(&request),
            result: Ok(Some(Bytes::from_static(b"v"))),
        },
    );
    assert_eq!(
        clerk.poll_output(),
        Some(ShardClerkOutput::Done(Ok(Some(Bytes::from_static(b"v")))))
    );
    // Many reads land on every server of the group; writes still go
    // to the leader as ordinary requests.
    for i in 0..30 {
        clerk.start(Instant(200 + i), get()).unwrap();
        let (to, request) = sent(&mut clerk);
        asked.insert(to);
        clerk.handle_reply(
            Instant(200 + i),
            to,
            HostReply::Kv {
                id: id_of(&request),
                result: Ok(None),
            },
        );
        assert_eq!(clerk.poll_output(), Some(ShardClerkOutput::Done(Ok(None))));
    }
    assert_eq!(asked.len(), 3, "reads went to {asked:?}");
    let put = Operation::Put {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"v"),
    };
    clerk.start(Instant(300), put).unwrap();
    assert!(matches!(sent(&mut clerk).1, HostRequest::Kv { .. }));
}
