//! Per-node clocks and leader leases: with the nodes' clocks inside the
//! drift bound the lease allows for, lease reads stay linearizable; with the
//! leader's clock running slow and the followers' fast beyond that bound,
//! the old leader's lease outlives the followers' promise, a new leader
//! commits a write, and the history check catches the stale read. (The
//! seed sweep runs lease reads with drifting clocks inside the bound.)
#![cfg(feature = "sim")]

use bytes::Bytes;
use distribkv_core::kv::Operation;
use distribkv_core::sim::{Endpoint, NodeClock, OpStatus, Sim, SimConfig};

/// Node 1 leads with clock `leader`; the others run `follower`. The leader
/// is then cut off with client 2, the others elect a new leader, client 1
/// writes x=2 there, and client 2 reads x at the old leader as soon as the
/// write is acknowledged.
fn partitioned_leader_read(leader: NodeClock, follower: NodeClock) -> Sim {
    let mut config = SimConfig {
        nodes: 5,
        seed: 11,
        clocks: vec![leader, follower, follower, follower, follower],
        client_attempt_timeout: 20,
        ..SimConfig::default()
    };
    config.raft.lease_reads = true;
    config.raft.check_quorum = true;
    config.raft.max_clock_drift_percent = 10;
    config.network.latency = (1, 2);
    let mut sim = Sim::new(config);
    sim.campaign(1).unwrap();
    sim.run_for(50);
    assert_eq!(sim.leader(), Some(1));
    let (writer, reader) = (sim.add_client(), sim.add_client());
    let key = || Bytes::from_static(b"x");
    let put = |value: &'static str| Operation::Put {
        key: key(),
        value: Bytes::from_static(value.as_bytes()),
    };
    sim.invoke(Some(writer), put("1")).unwrap();
    sim.invoke(Some(reader), Operation::Get { key: key() })
        .unwrap();
    sim.run_for(300);
    assert!(sim.history().iter().all(|e| e.is_complete()));
    sim.partition_endpoints(vec![
        vec![Endpoint::Node(1), Endpoint::Client(reader)],
        vec![
            Endpoint::Node(2),
            Endpoint::Node(3),
            Endpoint::Node(4),
            Endpoint::Node(5),
            Endpoint::Client(writer),
        ],
    ]);
    let write = sim.invoke(Some(writer), put("2")).unwrap() as usize - 1;
    let written = sim.run_until_condition(2_000, |sim| {
        sim.history()[write].status() != OpStatus::Pending
    });
    assert!(written && sim.history()[write].is_complete());
    // In the same millisecond the write completed: the history check
    // orders invocations and completions by when they happened, not by
    // the millisecond, so the read must see the write.
    sim.invoke(Some(reader), Operation::Get { key: key() })
        .unwrap();
    sim.run_for(500);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    sim
}

fn clock(rate_ppm: i64) -> NodeClock {
    NodeClock {
        offset: 0,
        rate_ppm,
    }
}

#[test]
fn lease_reads_are_linearizable_with_drift_inside_the_bound() {
    let max = NodeClock::max_rate_ppm(10);
    let (slow, fast) = (clock(-max), clock(max));
    assert!(NodeClock::within_drift_bound(&[slow, fast], 10));
    let sim = partitioned_leader_read(slow, fast);
    let read = sim.history().last().unwrap();
    assert!(
        read.status() != OpStatus::Ok || read.value().map(|v| &v[..]) == Some(&b"2"[..]),
        "the read after the write sees it (or fails at the cut-off leader): {read:?}"
    );
    sim.check_linearizability()
        .expect("lease reads within the drift bound are linearizable");
}

#[test]
fn drift_beyond_the_bound_is_caught_as_a_stale_read() {
    // The leader's clock runs at half speed, the followers' at one and a
    // half: a span the followers measure as 100 ms, the leader measures as
    // 33 ms, far beyond the 10% the lease allows for.
    let (slow, fast) = (clock(-500_000), clock(500_000));
    assert!(!NodeClock::within_drift_bound(&[slow, fast], 10));
    let sim = partitioned_leader_read(slow, fast);
    let read = sim.history().last().unwrap();
    assert_eq!(
        read.value().map(|v| &v[..]),
        Some(&b"1"[..]),
        "the old leader served the read from its lease: {read:?}"
    );
    let error = sim
        .check_linearizability()
        .expect_err("the checker sees the stale read");
    assert!(format!("{error}").contains("not linearizable"), "{error}");
}
