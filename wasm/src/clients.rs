//! The clients: one-off operations (`put`, `append`, `get`, `delete`) run
//! by the simulator's clerks, the steady workload, and what the clients
//! see (`history()`, `clients()`).

use bytes::Bytes;
use distribkv_core::kv::Operation;
use wasm_bindgen::prelude::*;

use crate::args::{self, error};
use crate::config::{self, MAX_CLIENTS};
use crate::{Simulation, to_js, view};

impl Simulation {
    /// Runs `operation` on client `client` (a number from 1; naming one that
    /// does not exist yet opens it and every one before it), or on any idle
    /// client if absent. Returns the operation id.
    fn invoke(&mut self, client: &JsValue, operation: Operation) -> Result<f64, JsError> {
        let client = args::optional_integer(client, "client")?;
        if let Some(number) = client {
            if number == 0 || number > MAX_CLIENTS {
                return Err(error(format!(
                    "client must be 1 to {MAX_CLIENTS}, not {number}"
                )));
            }
            while (self.sim.client_count() as u64) < number {
                self.sim.add_client();
            }
        }
        let id = self
            .sim
            .invoke(client, operation)
            .map_err(|e| self.fail(e))?;
        Ok(id as f64)
    }

    /// Reads `key` and `value`, then invokes the write `operation` makes of them.
    fn invoke_write(
        &mut self,
        key: &JsValue,
        value: &JsValue,
        client: &JsValue,
        operation: fn(Bytes, Bytes) -> Operation,
    ) -> Result<f64, JsError> {
        let key = Bytes::from(args::string(key, "key")?);
        let value = Bytes::from(args::string(value, "value")?);
        self.invoke(client, operation(key, value))
    }

    /// Reads `key`, then invokes the operation `operation` makes of it.
    fn invoke_on_key(
        &mut self,
        key: &JsValue,
        client: &JsValue,
        operation: fn(Bytes) -> Operation,
    ) -> Result<f64, JsError> {
        let key = Bytes::from(args::string(key, "key")?);
        self.invoke(client, operation(key))
    }
}

#[wasm_bindgen]
impl Simulation {
    /// `put key value`; returns the operation id. Without `client`, an idle
    /// client runs it (a new one if all are busy); with one, that client
    /// runs it after what it is doing.
    pub fn put(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        self.invoke_write(&key, &value, &client, |key, value| Operation::Put {
            key,
            value,
        })
    }

    /// `append key value` (a missing key counts as empty); returns the operation id.
    pub fn append(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        self.invoke_write(&key, &value, &client, |key, value| Operation::Append {
            key,
            value,
        })
    }

    /// `get key` (linearizable, via ReadIndex); returns the operation id.
    pub fn get(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        self.invoke_on_key(&key, &client, |key| Operation::Get { key })
    }

    /// `delete key`; returns the operation id.
    pub fn delete(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] client: JsValue,
    ) -> Result<f64, JsError> {
        self.invoke_on_key(&key, &client, |key| Operation::Delete { key })
    }

    /// Starts, changes or (with `clients: 0`) stops a steady workload.
    /// Absent fields keep their current values.
    #[wasm_bindgen(js_name = setWorkload)]
    pub fn set_workload(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "WorkloadConfig")] workload: JsValue,
    ) -> Result<(), JsError> {
        let workload = config::workload(&workload, self.sim.workload())?;
        self.sim.set_workload(workload).map_err(|e| self.fail(e))
    }

    /// Every client: `[{ id, busy, leaderGuess, seq, workload, session }]`.
    #[wasm_bindgen(unchecked_return_type = "ClientInfo[]")]
    pub fn clients(&self) -> Result<JsValue, JsError> {
        to_js(&view::clients(&self.sim))
    }

    /// Every operation invoked so far, in invocation order (`history()[id - 1]`
    /// is operation `id`). `opts.from` (extension) returns only the operations
    /// with `id >= from`, so a caller can re-read from its oldest pending one.
    #[wasm_bindgen(unchecked_return_type = "HistoryOp[]")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ from?: number }")] opts: JsValue,
    ) -> Result<JsValue, JsError> {
        let from = args::history_from(&opts)?;
        let skip = usize::try_from(from - 1).unwrap_or(usize::MAX);
        let ops: Vec<view::HistoryView> = self
            .sim
            .history()
            .iter()
            .skip(skip)
            .map(view::HistoryView::from)
            .collect();
        to_js(&ops)
    }
}
