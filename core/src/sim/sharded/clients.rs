//! The admin clerk, the workload clients and the history checks.

use super::*;

impl ShardedSim {
    /// Runs one operation through the admin clerk, for at most `limit` ms.
    pub fn admin(&mut self, op: AdminOp, limit: u64) -> Result<ShardClerkOutput, TimedOut> {
        let now = self.now;
        self.admin_result = None;
        let started = match op {
            AdminOp::Kv(op) => self.clients[0].clerk.start(now, op),
            AdminOp::Controller(op) => self.clients[0].clerk.start_controller(now, op),
        };
        if started.is_err() {
            return Err(TimedOut);
        }
        self.drain_clerk(0);
        self.run_until(limit, |s| s.admin_result.is_some());
        match self.admin_result.take() {
            Some(result) => Ok(result),
            None => {
                // Abandon it: a fresh admin clerk (the old one's request
                // may still take effect, as a client that gave up).
                let seed = self.rng.next_u64();
                self.clients[0].clerk = ShardClerk::new(self.config.clerk(), seed);
                Err(TimedOut)
            }
        }
    }

    /// A controller operation through the admin clerk (10 s of virtual time at most).
    pub fn controller(&mut self, op: ControllerOp) -> Result<ControllerReply, TimedOut> {
        match self.admin(AdminOp::Controller(op), 10_000)? {
            ShardClerkOutput::ControllerDone(reply) => Ok(reply),
            _ => Err(TimedOut),
        }
    }

    /// Joins these groups (with their configured servers).
    pub fn join(&mut self, groups: &[GroupId]) -> Result<ControllerReply, TimedOut> {
        let map = groups
            .iter()
            .filter_map(|g| self.config.host.groups.get(g).map(|s| (*g, s.clone())))
            .collect();
        self.controller(ControllerOp::Join(map))
    }

    /// Joins every configured group at once.
    pub fn join_all(&mut self) -> Result<ControllerReply, TimedOut> {
        let groups: Vec<GroupId> = self.config.host.groups.keys().copied().collect();
        self.join(&groups)
    }

    /// Removes these groups.
    pub fn leave(&mut self, groups: &[GroupId]) -> Result<ControllerReply, TimedOut> {
        self.controller(ControllerOp::Leave(groups.to_vec()))
    }

    /// The latest configuration, from the controller.
    pub fn query(&mut self) -> Result<ShardConfig, TimedOut> {
        match self.controller(ControllerOp::Query(None))? {
            ControllerReply::Config(c) => Ok(c),
            _ => Err(TimedOut),
        }
    }

    /// A key-value operation through the admin clerk (10 s at most),
    /// recorded in the history as client 0's.
    pub fn kv(&mut self, op: Operation, limit: u64) -> Result<Option<Bytes>, KvOutcome> {
        let id = self.record_invoke(0, &op);
        match self.admin(AdminOp::Kv(op.clone()), limit) {
            Ok(ShardClerkOutput::Done(Ok(value))) => {
                self.record_complete(id, &op, value.clone());
                Ok(value)
            }
            Ok(ShardClerkOutput::Done(Err(e))) => {
                let _ = self.history.fail_unknown(id);
                Err(KvOutcome::Refused(e))
            }
            _ => {
                let _ = self.history.fail_unknown(id);
                Err(KvOutcome::TimedOut)
            }
        }
    }

    /// `put`, through [`ShardedSim::kv`], with 10 s of virtual time.
    pub fn put(&mut self, key: &str, value: &str) -> Result<Option<Bytes>, KvOutcome> {
        self.kv(
            Operation::Put {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
            10_000,
        )
    }

    /// `append`, through [`ShardedSim::kv`].
    pub fn append(&mut self, key: &str, value: &str) -> Result<Option<Bytes>, KvOutcome> {
        self.kv(
            Operation::Append {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
            10_000,
        )
    }

    /// `get`, through [`ShardedSim::kv`].
    pub fn get(&mut self, key: &str) -> Result<Option<Bytes>, KvOutcome> {
        self.kv(
            Operation::Get {
                key: Bytes::copy_from_slice(key.as_bytes()),
            },
            10_000,
        )
    }

    pub(super) fn record_invoke(&mut self, client: u64, op: &Operation) -> u64 {
        let kind = match op {
            Operation::Put { value, .. } => check::OpKind::Put(value.to_vec()),
            Operation::Append { value, .. } => check::OpKind::Append(value.to_vec()),
            Operation::Delete { .. } => check::OpKind::Delete,
            Operation::Get { .. } => check::OpKind::Get,
        };
        self.history
            .invoke(client, op.key().to_vec(), kind, self.now.as_millis())
    }

    pub(super) fn record_complete(&mut self, id: u64, op: &Operation, value: Option<Bytes>) {
        let value = if op.is_write() {
            None
        } else {
            value.map(|v| v.to_vec())
        };
        if let Err(e) = self.history.complete(id, self.now.as_millis(), value) {
            self.violations.push(format!("history: {e:?}"));
        }
    }

    /// Starts the workload clients: appends of unique tokens, gets and a
    /// few puts on `keys` keys, back to back.
    pub fn start_workload(&mut self) {
        self.workload = true;
        let now = self.now;
        for i in 1..self.clients.len() as u64 {
            if !self.clients[i as usize].clerk.is_busy() {
                self.next_workload_op(i, now);
            }
        }
    }

    /// Stops starting new workload operations (those in flight continue).
    pub fn stop_workload(&mut self) {
        self.workload = false;
    }

    /// Whether a workload operation is still in flight.
    pub fn workload_pending(&self) -> bool {
        self.clients.iter().skip(1).any(|c| c.pending.is_some())
    }

    pub(super) fn next_workload_op(&mut self, index: u64, now: Instant) {
        let key = format!("k{}", self.rng.index(self.config.keys.max(1) as usize));
        let key = Bytes::from(key);
        let roll = self.rng.index(10);
        let client = &mut self.clients[index as usize];
        client.count += 1;
        let op = match roll {
            0..=5 => Operation::Append {
                key,
                value: Bytes::from(format!("[c{index}.{}]", client.count)),
            },
            6..=8 => Operation::Get { key },
            _ => Operation::Put {
                key,
                value: Bytes::from(format!("(p{index}.{})", client.count)),
            },
        };
        let id = self.record_invoke(index, &op);
        let client = &mut self.clients[index as usize];
        client.pending = Some(id);
        let _ = client.clerk.start(now, op);
        self.drain_clerk(index);
    }

    pub(super) fn complete_workload(&mut self, index: u64, output: ShardClerkOutput) {
        let Some(id) = self.clients[index as usize].pending.take() else {
            return;
        };
        let op = match self.history.operation(id) {
            Some(op) => op.kind.clone(),
            None => return,
        };
        match output {
            ShardClerkOutput::Done(Ok(value)) => {
                let value = if op.is_write() {
                    None
                } else {
                    value.map(|v| v.to_vec())
                };
                if let Err(e) = self.history.complete(id, self.now.as_millis(), value) {
                    self.violations.push(format!("history: {e:?}"));
                }
            }
            other => {
                if other == ShardClerkOutput::Done(Err(KvError::SessionExpired)) {
                    self.expired_sessions += 1;
                }
                let _ = self.history.fail_unknown(id);
            }
        }
    }

    /// Checks the history: linearizable per key (every shard move included),
    /// and, with the final value of each key read through the service
    /// (call after healing), every acknowledged append present exactly once.
    pub fn check_history(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        let keys: BTreeSet<Vec<u8>> = self
            .history
            .operations()
            .iter()
            .map(|o| o.key.clone())
            .collect();
        let mut final_values = BTreeMap::new();
        for key in keys {
            let op = Operation::Get {
                key: Bytes::from(key.clone()),
            };
            match self.kv(op, 30_000) {
                Ok(Some(value)) => {
                    final_values.insert(key, value.to_vec());
                }
                Ok(None) => {}
                Err(e) => failures.push(format!(
                    "final read of {} failed: {e:?}",
                    check::DisplayBytes(&key)
                )),
            }
        }
        let mut operations = self.history.operations().to_vec();
        // Still pending at the end: unknown outcome.
        for o in &mut operations {
            if !o.is_completed() {
                o.outcome = check::Outcome::Unknown;
            }
        }
        match check::check_linearizable(&operations, check::Budget::DEFAULT) {
            Ok(_) => {}
            Err(check::CheckError::GaveUp(g)) => {
                failures.push(format!("linearizability: undecided ({g})"))
            }
            Err(e) => failures.push(format!("linearizability: {e}")),
        }
        if failures.is_empty() {
            let options = check::AppendCheckOptions {
                reject_unexplained_text: true,
            };
            if let Err(e) = check::check_appends(&operations, &final_values, options) {
                failures.push(format!("exactly-once appends: {e}"));
            }
        }
        failures
    }
}

/// An operation for the admin clerk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// A key-value operation.
    Kv(Operation),
    /// A controller operation.
    Controller(ControllerOp),
}

/// How an admin key-value operation ended, when not with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutcome {
    /// Refused for certain.
    Refused(KvError),
    /// Not answered in time (it may still take effect).
    TimedOut,
}
