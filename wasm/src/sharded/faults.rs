//! Faults: host crashes and restarts, partitions, one-way link cuts and
//! dropped messages.

use distribkv_core::sim::{Endpoint, Network};
use wasm_bindgen::prelude::*;

use super::ShardedSimulation;
use crate::args::{self, error};

impl ShardedSimulation {
    /// Reads the two hosts of a link (`from`, `to`) and runs `act` on the
    /// network with them.
    fn on_link(
        &mut self,
        from: &JsValue,
        to: &JsValue,
        act: impl FnOnce(&mut Network, Endpoint, Endpoint),
    ) -> Result<(), JsError> {
        let (from, to) = (self.host_id(from)?, self.host_id(to)?);
        act(
            self.sim.network_mut(),
            Endpoint::Node(from),
            Endpoint::Node(to),
        );
        Ok(())
    }
}

#[wasm_bindgen]
impl ShardedSimulation {
    // ---- faults ------------------------------------------------------------

    /// Crashes a host: every replica it holds stops; unsynced writes are
    /// lost. A host that is down already throws (`host 2 is down`), as
    /// `Simulation.crash` does for a node.
    pub fn crash(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] host: JsValue,
    ) -> Result<(), JsError> {
        let id = self.host_id(&host)?;
        if !self.sim.is_up(id) {
            return Err(error(format!("host {id} is down")));
        }
        self.sim.crash(id);
        Ok(())
    }

    /// Restarts a crashed host from its disk (every group it holds). A
    /// host that is up throws (`host 2 is already up`), as
    /// `Simulation.restart` does for a node.
    pub fn restart(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] host: JsValue,
    ) -> Result<(), JsError> {
        let id = self.host_id(&host)?;
        if self.sim.is_up(id) {
            return Err(error(format!("host {id} is already up")));
        }
        self.sim.restart(id);
        Ok(())
    }

    /// Splits the hosts into sides (`[[1, 2], [3, 4, 5]]`); a host left
    /// out reaches no one. Clients reach every host.
    pub fn partition(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number[][]")] sides: JsValue,
    ) -> Result<(), JsError> {
        let mut seen = Vec::new();
        let mut groups = Vec::new();
        for (i, side) in args::array(&sides, "sides")?.iter().enumerate() {
            let mut endpoints = Vec::new();
            for (j, host) in args::array(side, &format!("sides[{i}]"))?
                .iter()
                .enumerate()
            {
                let id = self.host_id(host).map_err(|_| {
                    error(format!(
                        "sides[{i}][{j}] is not a host id (1 to {})",
                        self.sim.config().hosts
                    ))
                })?;
                if seen.contains(&id) {
                    return Err(error(format!("host {id} is on two sides")));
                }
                seen.push(id);
                endpoints.push(Endpoint::Node(id));
            }
            groups.push(endpoints);
        }
        if groups.len() < 2 {
            return Err(error("a partition needs at least two sides"));
        }
        self.sim.network_mut().partition(groups);
        Ok(())
    }

    /// Removes the partition and every cut link.
    pub fn heal(&mut self) {
        self.sim.network_mut().heal();
    }

    /// Cuts the link from one host to another (one direction).
    #[wasm_bindgen(js_name = cutLink)]
    pub fn cut_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        self.on_link(&from, &to, Network::cut_link)
    }

    /// Restores a link cut by `cutLink`.
    #[wasm_bindgen(js_name = restoreLink)]
    pub fn restore_link(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] to: JsValue,
    ) -> Result<(), JsError> {
        self.on_link(&from, &to, Network::restore_link)
    }

    /// Loses the item in flight `id` in the network; false if it was
    /// already delivered or dropped.
    #[wasm_bindgen(js_name = dropMessage)]
    pub fn drop_message(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] id: JsValue,
    ) -> Result<bool, JsError> {
        let id = args::integer_u64(&id, "message id")?;
        Ok(self.sim.drop_in_flight(id))
    }
}
