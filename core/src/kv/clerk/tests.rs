//! The clerk alone: a leader hint naming a server it does not know makes
//! it ask for the member list (once at a time, paced), and the list it is
//! fed back sends the operation to that server.

use super::*;
use alloc::vec;

fn put() -> Operation {
    Operation::Put {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"v"),
    }
}

fn sent(clerk: &mut Clerk) -> (NodeId, ClientRequest) {
    match clerk.poll_output() {
        Some(ClerkOutput::Send { to, request }) => (to, request),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn not_leader(request: &ClientRequest, hint: Option<NodeId>) -> ClientResponse {
    ClientResponse {
        id: request.id,
        result: Err(ServiceError::NotLeader { leader_hint: hint }),
    }
}

/// A clerk of servers 1 to 3 that has sent a write.
fn started() -> (Clerk, NodeId, ClientRequest) {
    let mut clerk = Clerk::new(ClerkConfig::new(vec![1, 2, 3]), 5);
    clerk.start(Instant(0), put()).unwrap();
    let (to, request) = sent(&mut clerk);
    (clerk, to, request)
}

#[test]
fn a_hint_naming_an_unknown_server_asks_for_the_members() {
    let (mut clerk, to, request) = started();
    clerk.handle_response(Instant(1), to, not_leader(&request, Some(4)));
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Discover { hint: 4 }));
    assert!(clerk.is_discovering());
    // Meanwhile it goes on with the servers it knows, after a back-off.
    assert_eq!(clerk.poll_output(), None);
    clerk.handle_timeout(clerk.poll_timeout());
    let (again, request) = sent(&mut clerk);
    assert_ne!(again, 4);
    // The same hint again while the list is on its way: no second request.
    clerk.handle_response(Instant(30), again, not_leader(&request, Some(4)));
    assert_eq!(clerk.poll_output(), None);
    // The member list names 4: the write goes there at once, same stamp.
    clerk.handle_members(Instant(40), vec![1, 2, 3, 4]);
    assert!(!clerk.is_discovering());
    let (to, retried) = sent(&mut clerk);
    assert_eq!(to, 4);
    assert_eq!(retried.body, request.body, "a retry keeps its nonce");
    assert_eq!(clerk.leader_guess(), Some(4));
    clerk.handle_response(
        Instant(41),
        4,
        ClientResponse {
            id: retried.id,
            result: Ok(Reply::Opened(9)),
        },
    );
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
}

#[test]
fn known_or_missing_hints_ask_for_nothing() {
    let (mut clerk, to, request) = started();
    let other = if to == 1 { 2 } else { 1 };
    clerk.handle_response(Instant(1), to, not_leader(&request, Some(other)));
    assert_eq!(
        sent(&mut clerk).0,
        other,
        "a known leader is followed at once"
    );
    let (mut clerk, to, request) = started();
    clerk.handle_response(Instant(1), to, not_leader(&request, None));
    assert_eq!(clerk.poll_output(), None, "no hint: only a back-off");
}

#[test]
fn a_hint_that_stays_unknown_asks_once_per_attempt_timeout() {
    let (mut clerk, to, request) = started();
    clerk.handle_response(Instant(1), to, not_leader(&request, Some(7)));
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Discover { hint: 7 }));
    // The list does not name 7 (a stale hint): nothing is sent at once.
    clerk.handle_members(Instant(10), vec![1, 2, 3]);
    assert_eq!(clerk.poll_output(), None);
    let mut discoveries = 0;
    let mut now = Instant(10);
    while now < Instant(1_400) {
        now = clerk.poll_timeout();
        clerk.handle_timeout(now);
        while let Some(output) = clerk.poll_output() {
            match output {
                ClerkOutput::Send { to, request } => {
                    clerk.handle_response(now, to, not_leader(&request, Some(7)));
                }
                ClerkOutput::Discover { hint } => {
                    assert_eq!(hint, 7);
                    discoveries += 1;
                    clerk.handle_members(now, vec![1, 2, 3]);
                }
                ClerkOutput::Done(result) => panic!("gave up early: {result:?}"),
            }
        }
    }
    // Default attempt timeout 500 ms: asked again at about 501 and 1001.
    assert_eq!(discoveries, 2);
}

#[test]
fn new_servers_keep_a_follower_read_on_its_server() {
    let mut config = ClerkConfig::new(vec![1, 2, 3]);
    config.follower_reads = true;
    let mut clerk = Clerk::new(config, 3);
    clerk
        .start(
            Instant(0),
            Operation::Get {
                key: Bytes::from_static(b"k"),
            },
        )
        .unwrap();
    let (to, request) = sent(&mut clerk);
    assert!(matches!(request.body, RequestBody::FollowerRead { .. }));
    // The list grows in front of it: the read stays with its server, which
    // it asks again after a "busy".
    clerk.set_servers(vec![5, 1, 2, 3]);
    let busy = ClientResponse {
        id: request.id,
        result: Err(ServiceError::Busy),
    };
    clerk.handle_response(Instant(1), to, busy);
    clerk.handle_timeout(clerk.poll_timeout());
    let (next, again) = sent(&mut clerk);
    assert_eq!(next, to);
    assert_eq!(again.body, request.body);
}
