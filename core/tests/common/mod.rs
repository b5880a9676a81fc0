//! A tester in the style of the MIT 6.5840 labs, on the simulator: servers
//! that can be disconnected, crashed and restarted, and the lab's helpers
//! (`check_one_leader`, `one`, `n_committed`, ...), all in virtual time.
#![allow(dead_code)]

pub mod golden;

use bytes::Bytes;
use distribkv_core::raft::{LogIndex, NodeId, Payload, RoleKind, Term};
use distribkv_core::rng::Rng;
use distribkv_core::sim::{Endpoint, Sim, SimConfig};

/// The lab's election timeout bound: a leader must exist within this after a failure.
pub const ELECTION_TIMEOUT: u64 = 1000;

pub struct Lab {
    pub sim: Sim,
    pub n: usize,
    connected: Vec<bool>,
    pub rng: Rng,
}

/// A lab command: distinct bytes per value.
pub fn cmd(value: u64) -> Bytes {
    Bytes::from(format!("cmd-{value}"))
}

pub fn digest(command: &Bytes) -> u64 {
    Payload::Command(command.clone()).digest()
}

impl Lab {
    pub fn new(n: usize, seed: u64, reliable: bool) -> Lab {
        Lab::with(n, seed, reliable, |_| {})
    }

    pub fn with(n: usize, seed: u64, reliable: bool, tweak: impl FnOnce(&mut SimConfig)) -> Lab {
        let mut config = SimConfig {
            nodes: n,
            seed,
            snapshot_every: 0,
            ..SimConfig::default()
        };
        config.network.latency = (1, 10);
        if !reliable {
            // The lab's unreliable network: ~10% loss, short delays, and
            // some packets held back for a long time.
            config.network.drop_rate = 0.1;
            config.network.latency = (1, 27);
            config.network.long_delay_rate = 0.05;
            config.network.long_delay = (200, 2000);
        }
        tweak(&mut config);
        Lab {
            sim: Sim::new(config),
            n,
            connected: vec![true; n],
            rng: Rng::new(seed ^ 0x1AB),
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        1..=self.n as NodeId
    }

    fn apply_connectivity(&mut self) {
        let mut groups: Vec<Vec<Endpoint>> = vec![
            self.ids()
                .filter(|&i| self.connected[i as usize - 1])
                .map(Endpoint::Node)
                .collect(),
        ];
        for id in self.ids().filter(|&i| !self.connected[i as usize - 1]) {
            groups.push(vec![Endpoint::Node(id)]);
        }
        if groups.len() == 1 {
            self.sim.heal();
        } else {
            self.sim.partition_endpoints(groups);
        }
    }

    /// A command with a random value.
    pub fn random_cmd(&mut self) -> Bytes {
        cmd(self.rng.next_u64() % 1_000_000_000)
    }

    /// one() with a random command.
    pub fn one_random(&mut self, expected: usize, retry: bool) -> LogIndex {
        let command = self.random_cmd();
        self.one(command, expected, retry)
    }

    /// start() with a random command.
    pub fn start_random(&mut self, id: NodeId) -> Option<(LogIndex, Term)> {
        let command = self.random_cmd();
        self.start(id, command)
    }

    pub fn disconnect(&mut self, id: NodeId) {
        self.connected[id as usize - 1] = false;
        self.apply_connectivity();
    }

    pub fn connect(&mut self, id: NodeId) {
        self.connected[id as usize - 1] = true;
        self.apply_connectivity();
    }

    pub fn is_connected(&self, id: NodeId) -> bool {
        self.connected[id as usize - 1]
    }

    pub fn crash(&mut self, id: NodeId) {
        if self.sim.replica(id).is_some() {
            self.sim.crash(id).unwrap();
        }
    }

    pub fn restart(&mut self, id: NodeId) {
        if self.sim.replica(id).is_none() {
            self.sim.restart(id).unwrap();
        }
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.sim.replica(id).is_some()
    }

    pub fn sleep(&mut self, ms: u64) {
        self.sim.run_for(ms);
        self.assert_safe();
    }

    pub fn assert_safe(&self) {
        assert!(
            self.sim.violations().is_empty(),
            "safety violations: {:?}",
            self.sim.violations()
        );
    }

    /// The lab's checkOneLeader: within a few election timeouts there is
    /// exactly one leader among the connected, up servers in the latest term.
    pub fn check_one_leader(&mut self) -> NodeId {
        for _ in 0..10 {
            let pause = self.rng.range_inclusive(450, 550);
            self.sleep(pause);
            let mut leaders: std::collections::BTreeMap<Term, Vec<NodeId>> = Default::default();
            for id in self.ids() {
                if !self.is_connected(id) {
                    continue;
                }
                if let Some(replica) = self.sim.replica(id)
                    && replica.node().role() == RoleKind::Leader
                {
                    leaders.entry(replica.node().term()).or_default().push(id);
                }
            }
            for (term, ids) in &leaders {
                assert!(
                    ids.len() <= 1,
                    "term {term} has {} leaders: {ids:?}",
                    ids.len()
                );
            }
            if let Some((_, ids)) = leaders.last_key_value() {
                return ids[0];
            }
        }
        panic!("expected one leader, got none");
    }

    /// The leader, found as soon as one exists (bounded by `limit` ms).
    pub fn wait_for_leader(&mut self, limit: u64) -> Option<(NodeId, u64)> {
        let start = self.sim.now();
        let connected = self.connected.clone();
        let found = self.sim.run_until_condition(limit, |sim| {
            (1..=connected.len() as NodeId).any(|id| {
                connected[id as usize - 1]
                    && sim
                        .replica(id)
                        .is_some_and(|r| r.node().role() == RoleKind::Leader)
            })
        });
        self.assert_safe();
        if !found {
            return None;
        }
        let leader = self
            .ids()
            .filter(|&id| self.is_connected(id))
            .filter_map(|id| self.sim.replica(id))
            .filter(|r| r.node().role() == RoleKind::Leader)
            .max_by_key(|r| r.node().term())
            .map(|r| r.node().id())?;
        Some((leader, self.sim.now().saturating_since(start)))
    }

    /// All connected servers agree on the term.
    pub fn check_terms(&self) -> Term {
        let mut term = None;
        for id in self.ids().filter(|&id| self.is_connected(id)) {
            if let Some(replica) = self.sim.replica(id) {
                let t = replica.node().term();
                match term {
                    None => term = Some(t),
                    Some(other) => assert_eq!(other, t, "servers disagree on the term"),
                }
            }
        }
        term.expect("no connected server")
    }

    /// No connected server believes it leads.
    pub fn check_no_leader(&self) {
        for id in self.ids().filter(|&id| self.is_connected(id)) {
            if let Some(replica) = self.sim.replica(id) {
                assert_ne!(
                    replica.node().role(),
                    RoleKind::Leader,
                    "server {id} leads, but there should be no leader"
                );
            }
        }
    }

    /// How many servers applied `index`, and the digest they agree on.
    pub fn n_committed(&self, index: LogIndex) -> (usize, Option<u64>) {
        let mut count = 0;
        let mut value = None;
        for id in self.ids() {
            if let Some(digest) = self.sim.applied_digest(id, index) {
                if let Some(previous) = value {
                    assert_eq!(
                        previous, digest,
                        "servers applied different entries at {index}"
                    );
                }
                value = Some(digest);
                count += 1;
            }
        }
        (count, value)
    }

    /// Proposes at server `id`, if it is up and leads.
    pub fn start(&mut self, id: NodeId, command: Bytes) -> Option<(LogIndex, Term)> {
        self.sim.propose(id, command).ok()
    }

    /// The lab's one(): submit `command` to whichever server leads and wait
    /// until at least `expected` servers applied it. Panics after 10 s.
    pub fn one(&mut self, command: Bytes, expected: usize, retry: bool) -> LogIndex {
        let want = digest(&command);
        let deadline = self.sim.now() + 10_000;
        let mut starter = 0;
        while self.sim.now() < deadline {
            let mut index = None;
            for _ in 0..self.n {
                starter = starter % self.n + 1;
                if !self.is_connected(starter as NodeId) {
                    continue;
                }
                if let Some((i, _)) = self.start(starter as NodeId, command.clone()) {
                    index = Some(i);
                    break;
                }
            }
            if let Some(index) = index {
                let until = self.sim.now() + 2_000;
                while self.sim.now() < until {
                    let (count, value) = self.n_committed(index);
                    if count >= expected && value == Some(want) {
                        return index;
                    }
                    self.sleep(20);
                }
                if !retry {
                    panic!("one({command:?}) failed to reach agreement on {expected} servers");
                }
            } else {
                self.sleep(50);
            }
        }
        panic!("one({command:?}) failed to reach agreement in 10 s");
    }

    /// Waits until at least `n` servers applied `index` (lab's wait()); None if
    /// a server moved past `start_term` meanwhile.
    pub fn wait(&mut self, index: LogIndex, n: usize, start_term: Option<Term>) -> Option<u64> {
        let mut pause = 10;
        for _ in 0..30 {
            let (count, _) = self.n_committed(index);
            if count >= n {
                break;
            }
            self.sleep(pause);
            if pause < 1000 {
                pause *= 2;
            }
            if let Some(term) = start_term
                && self
                    .ids()
                    .filter_map(|id| self.sim.replica(id))
                    .any(|r| r.node().term() > term)
            {
                return None;
            }
        }
        let (count, value) = self.n_committed(index);
        assert!(
            count >= n,
            "only {count} servers applied index {index}, wanted {n}"
        );
        value
    }

    pub fn rpc_count(&self) -> u64 {
        self.sim.stats().rpcs_sent
    }

    pub fn bytes_sent(&self) -> u64 {
        self.sim.stats().bytes_sent
    }
}
