//! Faults and operator actions on the simulated cluster, as the page and
//! the guided tours call them: crashes and restarts, partitions and cut
//! links, loss, duplication and latency, elections, leadership transfer,
//! snapshots, dropped messages and membership changes. Each one checks its
//! arguments and hands the call to the core's simulator
//! ([`distribkv_core::sim::Sim`]).

use distribkv_core::raft::{MembershipChange, NodeId};
use distribkv_core::sim::{Sim, SimError};
use wasm_bindgen::prelude::*;

use crate::Simulation;
use crate::args::{self, error};

impl Simulation {
    /// Reads a node id and runs `act` on it.
    fn on_node(
        &mut self,
        id: &JsValue,
        act: impl FnOnce(&mut Sim, NodeId) -> Result<(), SimError>,
    ) -> Result<(), JsError> {
        let id = args::integer(id, "node id")?;
        act(&mut self.sim, id).map_err(|e| self.fail(e))
    }

    /// Reads the two ends of a link (`from`, `to`) and runs `act` on them.
    fn on_link(
        &mut self,
        from: &JsValue,
        to: &JsValue,
        act: impl FnOnce(&mut Sim, NodeId, NodeId) -> Result<(), SimError>,
    ) -> Result<(), JsError> {
        let from = args::integer(from, "from")?;
        let to = args::integer(to, "to")?;
        act(&mut self.sim, from, to).map_err(|e| self.fail(e))
    }

    /// Reads a probability (`what` names it) and runs `act` on it.
    fn on_rate(
        &mut self,
        rate: &JsValue,
        what: &str,
        act: impl FnOnce(&mut Sim, f64) -> Result<(), SimError>,
    ) -> Result<(), JsError> {
        let rate = args::number(rate, what)?;
        act(&mut self.sim, rate).map_err(|e| self.fail(e))
    }

    /// Asks the leader for a membership change about node `id`.
    fn change_membership(
        &mut self,
        id: &JsValue,
        change: fn(NodeId) -> MembershipChange,
    ) -> Result<(), JsError> {
        self.on_node(id, |sim, id| sim.change_membership(change(id)))
    }
}

#[wasm_bindgen]
impl Simulation {
    /// Crashes node `id`: its volatile state and unsynced writes are lost.
    pub fn crash(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.on_node(&id, Sim::crash)
    }

    /// Restarts node `id` from what its disk holds.
    pub fn restart(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.on_node(&id, Sim::restart)
    }

    /// Splits the nodes into groups that reach only each other
    /// (`[[1, 2], [3, 4, 5]]`); unlisted nodes are alone. Replaces any
    /// earlier partition; clients reach every node.
    pub fn partition(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number[][]")] groups: JsValue,
    ) -> Result<(), JsError> {
        let outer = args::array(&groups, "partition groups")
            .map_err(|_| error(format!(
                "partition expects an array of arrays of node ids, like [[1, 2], [3, 4, 5]], not {}",
                args::describe(&groups)
            )))?;
        let mut parsed = Vec::with_capacity(outer.len());
        for (i, group) in outer.iter().enumerate() {
            let members = args::array(group, &format!("partition group {i}"))?;
            let what = format!("node id in partition group {i}");
            let ids = members.iter().map(|member| args::integer(member, &what));
            parsed.push(ids.collect::<Result<Vec<NodeId>, JsError>>()?);
        }
        self.sim.partition(&parsed).map_err(|e| self.fail(e))
    }

    /// Removes the partition and every cut link.
    pub fn heal(&mut self) {
        self.sim.heal();
    }

    /// Cuts the link from node `from` to node `to` (one direction).
    #[wasm_bindgen(js_name = cutLink)]
    pub fn cut_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        self.on_link(&from, &to, Sim::cut_link)
    }

    /// Restores the link from node `from` to node `to`.
    #[wasm_bindgen(js_name = restoreLink)]
    pub fn restore_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        self.on_link(&from, &to, Sim::restore_link)
    }

    /// Probability (0..1) that a packet is lost.
    #[wasm_bindgen(js_name = setDropRate)]
    pub fn set_drop_rate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] rate: JsValue,
    ) -> Result<(), JsError> {
        self.on_rate(&rate, "drop rate", Sim::set_drop_rate)
    }

    /// Probability (0..1) that a packet is delivered twice.
    #[wasm_bindgen(js_name = setDuplicateRate)]
    pub fn set_duplicate_rate(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] rate: JsValue,
    ) -> Result<(), JsError> {
        self.on_rate(&rate, "duplicate rate", Sim::set_duplicate_rate)
    }

    /// One-way latency range for packets sent from now on, ms.
    #[wasm_bindgen(js_name = setLatency)]
    pub fn set_latency(
        &mut self,
        #[wasm_bindgen(js_name = minMs, unchecked_param_type = "number")] min_ms: JsValue,
        #[wasm_bindgen(js_name = maxMs, unchecked_param_type = "number")] max_ms: JsValue,
    ) -> Result<(), JsError> {
        let min = args::integer(&min_ms, "minimum latency")?;
        let max = args::integer(&max_ms, "maximum latency")?;
        args::check_latency(max, "maximum latency")?;
        self.sim.set_latency(min, max).map_err(|e| self.fail(e))
    }

    /// Node `id`'s election timer fires now.
    #[wasm_bindgen(js_name = triggerElection)]
    pub fn trigger_election(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.on_node(&id, Sim::campaign)
    }

    /// Asks the current leader to hand leadership to node `to`.
    #[wasm_bindgen(js_name = transferLeadership)]
    pub fn transfer_leadership(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        self.on_node(&to, Sim::transfer_leadership)
    }

    /// Node `id` snapshots its state machine and compacts its log now.
    pub fn snapshot(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.on_node(&id, Sim::snapshot)
    }

    /// Drops the packet `msgId` in flight; returns whether it was in flight.
    #[wasm_bindgen(js_name = dropMessage)]
    pub fn drop_message(
        &mut self,
        #[wasm_bindgen(js_name = msgId, unchecked_param_type = "number")] msg_id: JsValue,
    ) -> Result<bool, JsError> {
        let id = args::integer(&msg_id, "message id")?;
        Ok(self.sim.drop_packet(id))
    }

    // ---- membership --------------------------------------------------------

    /// Starts a new machine (the next node id, at most 9 in all) that knows
    /// the current membership; returns its id. It takes part once added with
    /// `addLearner` (then `promote`).
    #[wasm_bindgen(js_name = addNode)]
    pub fn add_node(&mut self) -> Result<f64, JsError> {
        self.sim
            .add_node()
            .map(|id| id as f64)
            .map_err(|e| self.fail(e))
    }

    /// Asks the leader to add node `id` as a learner (it receives the log, does not vote).
    #[wasm_bindgen(js_name = addLearner)]
    pub fn add_learner(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.change_membership(&id, MembershipChange::AddLearner)
    }

    /// Asks the leader to make node `id` a voter.
    pub fn promote(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.change_membership(&id, MembershipChange::AddVoter)
    }

    /// Asks the leader to remove node `id` from the cluster.
    #[wasm_bindgen(js_name = removeMember)]
    pub fn remove_member(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<(), JsError> {
        self.change_membership(&id, MembershipChange::Remove)
    }
}
