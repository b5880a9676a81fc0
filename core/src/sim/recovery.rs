//! What a crashed node comes back as: the replica its disk restores. The
//! drivers draw a down node from this one view (its role, term, vote, log,
//! commit index and state machine after a restart) instead of working the
//! restart rules out again.

use alloc::format;

use super::{Sim, SimError, index_of};
use crate::kv::Replica;
use crate::raft::NodeId;

impl Sim {
    /// The replica node `id` would be if it restarted now from what its
    /// disk holds, built by the same [`Replica::restart`] as
    /// [`Sim::restart`]: its role (a follower, or a learner if its log says
    /// so), the term and vote it persisted, its log, commit and applied
    /// indexes at its snapshot, the state machine restored from that
    /// snapshot, and no leader. Nothing in the simulation changes (the
    /// preview's timers come from a fixed seed, not from the run's).
    ///
    /// Fails with [`SimError::NodeUp`] for a node that is up, and
    /// [`SimError::UnknownNode`] for an id outside the cluster.
    pub fn restart_preview(&self, id: NodeId) -> Result<Replica, SimError> {
        let node = self
            .nodes
            .get(index_of(id))
            .ok_or(SimError::UnknownNode(id))?;
        if node.replica.is_some() {
            return Err(SimError::NodeUp(id));
        }
        Replica::restart(
            node.config.clone(),
            0,
            node.clock.local(self.now),
            node.disk.persisted().clone(),
        )
        .map_err(|e| SimError::Config(format!("{e}")))
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use crate::raft::{MembershipChange, RoleKind};
    use crate::sim::{Sim, SimConfig, SimError};

    #[test]
    fn a_crashed_node_previews_what_it_restarts_as() {
        let mut sim = Sim::new(SimConfig {
            nodes: 3,
            seed: 4,
            snapshot_every: 5,
            ..SimConfig::default()
        });
        sim.run_for(1_000);
        for i in 0..12 {
            sim.put("k", &format!("{i}"));
            sim.run_for(50);
        }
        let leader = sim.leader().expect("a leader");
        let id = leader % 3 + 1;
        assert_eq!(sim.restart_preview(id).err(), Some(SimError::NodeUp(id)));
        assert_eq!(sim.restart_preview(9).err(), Some(SimError::UnknownNode(9)));
        sim.crash(id).unwrap();
        let hash = sim.trace_hash();
        let preview = sim.restart_preview(id).unwrap();
        assert_eq!(sim.trace_hash(), hash, "a preview changes nothing");
        sim.restart(id).unwrap();
        let restarted = sim.replica(id).unwrap();
        let (a, b) = (preview.node(), restarted.node());
        assert_eq!(a.role(), RoleKind::Follower);
        assert_eq!(
            (a.role(), a.term(), a.voted_for()),
            (b.role(), b.term(), b.voted_for())
        );
        assert_eq!(a.leader(), None);
        assert!(a.log().snapshot().index > 0, "snapshots every 5 entries");
        assert_eq!(a.log().commit(), a.log().snapshot().index);
        assert_eq!(
            (a.log().last_index(), a.log().commit(), a.log().applied()),
            (b.log().last_index(), b.log().commit(), b.log().applied())
        );
        assert!(preview.store().iter().eq(restarted.store().iter()));
    }

    #[test]
    fn a_crashed_learner_restarts_as_a_learner() {
        let mut sim = Sim::new(SimConfig {
            nodes: 3,
            seed: 9,
            ..SimConfig::default()
        });
        sim.run_for(1_000);
        let id = sim.add_node().unwrap();
        sim.change_membership(MembershipChange::AddLearner(id))
            .unwrap();
        assert!(sim.run_until_condition(2_000, |sim| {
            sim.replica(id)
                .is_some_and(|r| r.node().role() == RoleKind::Learner)
        }));
        sim.crash(id).unwrap();
        assert_eq!(
            sim.restart_preview(id).unwrap().node().role(),
            RoleKind::Learner
        );
    }
}
