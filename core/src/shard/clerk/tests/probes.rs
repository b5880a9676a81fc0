//! Probes and suspects: a server tried on a guess gets `probe_ms`, one
//! that failed to answer is not asked again, nor followed to, while
//! another remains, any answer clears that, and a late success of an
//! earlier attempt completes the operation.

use super::*;

/// Retry 1 s, probe 300 ms, back off 25 ms: probes stand out.
fn timing(follower_reads: bool) -> ShardClerkConfig {
    let mut config = ShardClerkConfig::new(vec![1]);
    config.retry_ms = 1000;
    config.probe_ms = 300;
    config.backoff_ms = 25;
    config.follower_reads = follower_reads;
    config
}

/// A clerk whose get, started at 0, learned configuration 1 (group 100 on
/// hosts 4, 5, 6) at 5 and went to the group: where, and the request.
fn routed(follower_reads: bool, seed: u64) -> (ShardClerk, NodeId, HostRequest) {
    let mut clerk = ShardClerk::new(timing(follower_reads), seed);
    clerk.start(Instant(0), get()).unwrap();
    let (_, request) = sent(&mut clerk);
    let reply = HostReply::Controller {
        id: id_of(&request),
        result: Ok(ControllerReply::Config(config(1, 100))),
    };
    clerk.handle_reply(Instant(5), 1, reply);
    let (to, request) = sent(&mut clerk);
    (clerk, to, request)
}

fn answer(
    clerk: &mut ShardClerk,
    now: u64,
    from: NodeId,
    request: &HostRequest,
    result: Result<Option<Bytes>, KvError>,
) {
    let reply = HostReply::Kv {
        id: id_of(request),
        result,
    };
    clerk.handle_reply(Instant(now), from, reply);
}

fn hint(to: NodeId) -> Result<Option<Bytes>, KvError> {
    Err(KvError::NotLeader {
        leader_hint: Some(to),
    })
}

/// A clerk that knows 4 leads group 100 (it answered at 10), with a get
/// started at 20 on its way there: the request.
fn led_by_4() -> (ShardClerk, HostRequest) {
    let (mut clerk, to, request) = routed(false, 7);
    assert_eq!(to, 4);
    answer(&mut clerk, 10, 4, &request, Ok(None));
    assert_eq!(clerk.poll_output(), Some(ShardClerkOutput::Done(Ok(None))));
    clerk.start(Instant(20), get()).unwrap();
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 4);
    assert_eq!(
        clerk.poll_timeout(),
        Instant(1020),
        "a known leader: retry_ms"
    );
    (clerk, request)
}

#[test]
fn a_guess_gets_the_probe_timeout_and_a_sign_the_whole_retry() {
    let mut clerk = ShardClerk::new(timing(false), 5);
    clerk.start(Instant(0), get()).unwrap();
    // The controller's first server, a guess.
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 1);
    assert_eq!(clerk.poll_timeout(), Instant(300));
    let reply = HostReply::Controller {
        id: id_of(&request),
        result: Ok(ControllerReply::Config(config(1, 100))),
    };
    clerk.handle_reply(Instant(5), 1, reply);
    // The group's first server: a guess too.
    assert_eq!(sent(&mut clerk).0, 4);
    assert_eq!(clerk.poll_timeout(), Instant(305));
    // Silent: the next server, still a guess.
    clerk.handle_timeout(Instant(305));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 5);
    assert_eq!(clerk.poll_timeout(), Instant(605));
    // Its hint names 6: the whole retry there.
    answer(&mut clerk, 310, 5, &request, hint(6));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 6);
    assert_eq!(clerk.poll_timeout(), Instant(1310));
    answer(&mut clerk, 320, 6, &request, Ok(None));
    assert_eq!(clerk.poll_output(), Some(ShardClerkOutput::Done(Ok(None))));
    // It answered: the next operation gives it the whole retry, and so
    // does a refresh at the controller, which answered too.
    clerk.start(Instant(400), get()).unwrap();
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 6);
    assert_eq!(clerk.poll_timeout(), Instant(1400));
    answer(&mut clerk, 410, 6, &request, Err(KvError::WrongGroup));
    assert_eq!(sent(&mut clerk).0, 1);
    assert_eq!(clerk.poll_timeout(), Instant(1410));
}

#[test]
fn a_hint_naming_a_server_that_just_timed_out_is_not_followed() {
    let (mut clerk, _) = led_by_4();
    clerk.handle_timeout(Instant(1020));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 5);
    assert_eq!(clerk.poll_timeout(), Instant(1320), "a guess: probe_ms");
    // 5 still names 4, which just went silent: ask the others after the
    // back-off instead.
    answer(&mut clerk, 1030, 5, &request, hint(4));
    assert_eq!(clerk.poll_output(), None, "no request to 4");
    assert_eq!(clerk.poll_timeout(), Instant(1055));
    clerk.handle_timeout(Instant(1055));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 6);
    answer(&mut clerk, 1060, 6, &request, hint(4));
    assert_eq!(clerk.poll_output(), None);
    clerk.handle_timeout(Instant(1085));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 5, "4 skipped");
    // The suspicion ends one retry after the timeout: the hint is followed.
    answer(&mut clerk, 2020, 5, &request, hint(4));
    assert_eq!(sent(&mut clerk).0, 4);
    assert_eq!(clerk.poll_timeout(), Instant(3020));
}

#[test]
fn a_server_that_failed_to_answer_is_not_picked_while_another_remains() {
    let (mut clerk, _) = led_by_4();
    clerk.handle_timeout(Instant(1020));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 5);
    // 5 knows no leader: the next one after the back-off.
    answer(
        &mut clerk,
        1030,
        5,
        &request,
        Err(KvError::NotLeader { leader_hint: None }),
    );
    clerk.handle_timeout(Instant(1055));
    assert_eq!(sent(&mut clerk).0, 6);
    assert_eq!(clerk.poll_timeout(), Instant(1355));
    // 6 is silent too: after it comes 4, but 4 is suspected; 5 is not.
    clerk.handle_timeout(Instant(1355));
    assert_eq!(sent(&mut clerk).0, 5);
    // Every other one suspected: simply the next.
    clerk.handle_timeout(Instant(1655));
    assert_eq!(sent(&mut clerk).0, 6);
}

#[test]
fn an_unreachable_server_is_suspected() {
    let (mut clerk, request) = led_by_4();
    // Another attempt's failure is not this one's.
    clerk.handle_unreachable(Instant(25), 4, id_of(&request) + 1);
    assert_eq!(clerk.poll_timeout(), Instant(1020));
    clerk.handle_unreachable(Instant(30), 4, id_of(&request));
    assert_eq!(clerk.poll_output(), None);
    assert_eq!(clerk.poll_timeout(), Instant(55), "after the back-off");
    clerk.handle_timeout(Instant(55));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 5);
    answer(&mut clerk, 60, 5, &request, hint(4));
    assert_eq!(clerk.poll_output(), None, "not back to 4");
    clerk.handle_timeout(Instant(85));
    assert_eq!(sent(&mut clerk).0, 6);
}

#[test]
fn any_answer_clears_the_suspicion_and_a_late_success_completes() {
    let (mut clerk, first) = led_by_4();
    clerk.handle_timeout(Instant(1020));
    let (_, request) = sent(&mut clerk);
    answer(&mut clerk, 1030, 5, &request, hint(4));
    assert_eq!(clerk.poll_output(), None, "4 suspected");
    clerk.handle_timeout(Instant(1055));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 6);
    // A late refusal from 4 to the first attempt: stale, but 4 answers.
    answer(&mut clerk, 1058, 4, &first, Err(KvError::Busy));
    assert_eq!(clerk.poll_output(), None);
    answer(&mut clerk, 1060, 6, &request, hint(4));
    let (to, request) = sent(&mut clerk);
    assert_eq!(to, 4, "followed again");
    // A slow leader given only a probe: its late answer completes the get.
    clerk.handle_timeout(Instant(2060));
    let (to, _) = sent(&mut clerk);
    assert_eq!(to, 5);
    answer(
        &mut clerk,
        2070,
        4,
        &request,
        Ok(Some(Bytes::from_static(b"v"))),
    );
    assert_eq!(
        clerk.poll_output(),
        Some(ShardClerkOutput::Done(Ok(Some(Bytes::from_static(b"v")))))
    );
    assert!(!clerk.is_busy());
    // An answer to an operation that is over is ignored.
    answer(&mut clerk, 2080, 4, &first, Ok(None));
    assert_eq!(clerk.poll_output(), None);
}

#[test]
fn follower_reads_get_the_whole_retry_and_avoid_silent_servers() {
    let servers = [4, 5, 6];
    for seed in 0..6 {
        let (mut clerk, to, request) = routed(true, seed);
        assert!(matches!(request, HostRequest::FollowerRead { .. }));
        assert_eq!(clerk.poll_timeout(), Instant(1005), "no probe for reads");
        let at = servers.iter().position(|s| *s == to).unwrap();
        clerk.handle_timeout(Instant(1005));
        let (next, request) = sent(&mut clerk);
        assert_eq!(next, servers[(at + 1) % 3]);
        assert!(matches!(request, HostRequest::FollowerRead { .. }));
        // It names the silent one: not followed, the third one instead.
        answer(&mut clerk, 1010, next, &request, hint(to));
        assert_eq!(clerk.poll_output(), None);
        clerk.handle_timeout(Instant(1035));
        let (third, request) = sent(&mut clerk);
        assert_eq!(third, servers[(at + 2) % 3]);
        assert!(matches!(request, HostRequest::FollowerRead { .. }));
        answer(&mut clerk, 1040, third, &request, Ok(None));
        assert_eq!(clerk.poll_output(), Some(ShardClerkOutput::Done(Ok(None))));
    }
}
