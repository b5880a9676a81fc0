//! The clerk alone: a leader hint naming a server it does not know makes
//! it ask for the member list (once at a time, paced), and the list it is
//! fed back sends the operation to that server; a server tried on a guess
//! gets the probe timeout, and one that failed to answer is neither picked
//! nor followed while it is suspected.

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

fn ok(request: &ClientRequest) -> ClientResponse {
    ClientResponse {
        id: request.id,
        result: Ok(Reply::Done(None)),
    }
}

/// A clerk of `servers` whose session is open and whose last write was
/// answered by `leader` at time 0.
fn led_by(servers: Vec<NodeId>, leader: NodeId, seed: u64) -> Clerk {
    let mut clerk = Clerk::new(ClerkConfig::new(servers), seed);
    clerk.start(Instant(0), put()).unwrap();
    let (_, request) = sent(&mut clerk);
    let opened = ClientResponse {
        id: request.id,
        result: Ok(Reply::Opened(9)),
    };
    clerk.handle_response(Instant(0), leader, opened);
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
    assert_eq!(clerk.leader_guess(), Some(leader));
    clerk
}

#[test]
fn a_guess_gets_the_probe_timeout_and_a_known_leader_the_attempt_timeout() {
    // The first server is a guess: 250 ms (the probe timeout).
    let (mut clerk, to, request) = started();
    assert_eq!(clerk.poll_timeout(), Instant(250));
    // Its hint is a sign: the server it names gets 500 ms.
    let other = if to == 1 { 2 } else { 1 };
    clerk.handle_response(Instant(10), to, not_leader(&request, Some(other)));
    let (next, request) = sent(&mut clerk);
    assert_eq!(next, other);
    assert_eq!(clerk.poll_timeout(), Instant(510));
    clerk.handle_response(
        Instant(20),
        other,
        ClientResponse {
            id: request.id,
            result: Ok(Reply::Opened(9)),
        },
    );
    assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
    // So does the server that answered last.
    clerk.start(Instant(30), put()).unwrap();
    assert_eq!(sent(&mut clerk).0, other);
    assert_eq!(clerk.poll_timeout(), Instant(530));
    // Silence there: the next server is a guess again.
    clerk.handle_timeout(Instant(530));
    let (guess, _) = sent(&mut clerk);
    assert_ne!(guess, other);
    assert_eq!(clerk.poll_timeout(), Instant(780));
}

#[test]
fn a_hint_naming_a_server_that_just_went_silent_is_not_followed() {
    for seed in 0..20 {
        // Server 1 led; it stops answering (it hears nobody, say), and
        // the followers still name it until they elect somebody else.
        let mut clerk = led_by(vec![1, 2, 3], 1, seed);
        clerk.start(Instant(100), put()).unwrap();
        assert_eq!(sent(&mut clerk).0, 1);
        clerk.handle_timeout(Instant(600));
        let (follower, request) = sent(&mut clerk);
        assert_ne!(follower, 1);
        clerk.handle_response(Instant(601), follower, not_leader(&request, Some(1)));
        assert_eq!(
            clerk.poll_output(),
            None,
            "not back to the silent server at once"
        );
        clerk.handle_timeout(clerk.poll_timeout());
        let (other, request) = sent(&mut clerk);
        assert_eq!(
            other,
            5 - follower,
            "seed {seed}: the other follower, not server 1"
        );
        // Once one names the new leader, the write goes there.
        clerk.handle_response(Instant(640), other, not_leader(&request, Some(follower)));
        let (leader, request) = sent(&mut clerk);
        assert_eq!(leader, follower);
        clerk.handle_response(Instant(650), leader, ok(&request));
        assert_eq!(clerk.poll_output(), Some(ClerkOutput::Done(Ok(None))));
    }
}

#[test]
fn a_server_that_failed_to_answer_is_not_picked_again_while_others_remain() {
    for seed in 0..50 {
        // Four servers; 1 led and went silent, 4 cannot be reached either.
        let mut clerk = led_by(vec![1, 2, 3, 4], 1, seed);
        clerk.start(Instant(100), put()).unwrap();
        sent(&mut clerk);
        clerk.handle_timeout(Instant(600));
        let mut tried = vec![];
        let mut now = Instant(600);
        while tried.len() < 6 {
            let Some(ClerkOutput::Send { to, request }) = clerk.poll_output() else {
                now = clerk.poll_timeout();
                clerk.handle_timeout(now);
                continue;
            };
            tried.push(to);
            let answer = if to == 4 {
                ClientResponse {
                    id: request.id,
                    result: Err(ServiceError::Unavailable("unreachable".into())),
                }
            } else {
                not_leader(&request, None)
            };
            now = now + 1;
            clerk.handle_response(now, to, answer);
        }
        assert!(
            !tried.contains(&1),
            "seed {seed}: the silent server was tried again: {tried:?}"
        );
        assert!(
            tried.iter().filter(|&&to| to == 4).count() <= 1,
            "seed {seed}: the unreachable server was tried twice: {tried:?}"
        );
    }
}

#[test]
fn an_answer_or_time_clears_the_suspicion() {
    let mut clerk = led_by(vec![1, 2, 3], 1, 4);
    clerk.start(Instant(100), put()).unwrap();
    let (_, late) = sent(&mut clerk);
    clerk.handle_timeout(Instant(600));
    let (follower, request) = sent(&mut clerk);
    // The old leader answers the earlier attempt after all (a refusal):
    // it is reachable, so a hint naming it is followed again.
    clerk.handle_response(Instant(700), 1, not_leader(&late, None));
    clerk.handle_response(Instant(701), follower, not_leader(&request, Some(1)));
    assert_eq!(sent(&mut clerk).0, 1);
    // Without an answer the suspicion lasts one attempt timeout.
    let mut clerk = led_by(vec![1, 2, 3], 1, 4);
    clerk.start(Instant(100), put()).unwrap();
    sent(&mut clerk);
    clerk.handle_timeout(Instant(600));
    let (follower, request) = sent(&mut clerk);
    clerk.handle_response(Instant(1_100), follower, not_leader(&request, Some(1)));
    assert_eq!(sent(&mut clerk).0, 1);
}
