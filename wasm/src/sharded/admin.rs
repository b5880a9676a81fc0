//! The page's operations (`put`, `append`, `get`, `join`, `leave`, `move`):
//! queued, run one at a time on the routing clerk while time advances, and
//! given up after `adminTimeoutMs`.

use distribkv_core::kv::Operation;
use distribkv_core::shard::clerk::ShardClerkOutput;
use distribkv_core::shard::controller::{ControllerOp, ControllerReply};
use distribkv_core::sim::sharded::AdminOp;
use serde::Serialize;

use super::ShardedSimulation;

/// Ended page operations kept for `state().admin.done`.
const ADMIN_DONE_KEPT: usize = 20;

/// A page operation waiting for, or running on, the routing clerk.
#[derive(Clone, Debug)]
pub(super) struct AdminTask {
    /// What it does.
    pub(super) op: AdminOp,
    /// Its history id (key-value operations).
    pub(super) history: Option<u64>,
    /// When it was asked (ms).
    pub(super) asked_at: u64,
    /// When it started on the clerk (ms), once started.
    pub(super) started_at: Option<u64>,
}

/// An ended page operation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminDone {
    /// What it did (`join 100 101`, `move shard 3 to 101`, `put x`).
    pub op: String,
    /// When it was asked.
    pub asked_at: u64,
    /// When it ended.
    pub ended_at: u64,
    /// `"ok"`, `"refused"` or `"timeout"`.
    pub outcome: &'static str,
    /// The controller's or the group's answer, in words (a refusal as the
    /// command line words it: `group 101 is not in the configuration`).
    pub text: String,
    /// A refusal's name and argument (`UnknownGroup(101)`, `WrongGroup`),
    /// for programs; `null` unless refused.
    pub error: Option<String>,
}

/// Describes an admin operation in words.
pub(super) fn describe_op(op: &AdminOp) -> String {
    match op {
        AdminOp::Kv(op) => {
            let key = String::from_utf8_lossy(op.key()).into_owned();
            match op {
                Operation::Put { value, .. } => {
                    format!("put {key} {}", String::from_utf8_lossy(value))
                }
                Operation::Append { value, .. } => {
                    format!("append {key} {}", String::from_utf8_lossy(value))
                }
                Operation::Get { .. } => format!("get {key}"),
                Operation::Delete { .. } => format!("delete {key}"),
            }
        }
        AdminOp::Controller(ControllerOp::Join(groups)) => {
            let ids: Vec<String> = groups.keys().map(|g| g.to_string()).collect();
            format!("join {}", ids.join(" "))
        }
        AdminOp::Controller(ControllerOp::Leave(groups)) => {
            let ids: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            format!("leave {}", ids.join(" "))
        }
        AdminOp::Controller(ControllerOp::Move { shard, group }) => {
            format!("move shard {shard} to {group}")
        }
        AdminOp::Controller(ControllerOp::Query(_)) => String::from("query"),
        AdminOp::Controller(ControllerOp::Retire { group, .. }) => format!("retire {group}"),
    }
}

impl ShardedSimulation {
    pub(super) fn ask(&mut self, op: AdminOp) -> Option<u64> {
        let history = match &op {
            AdminOp::Kv(kv) => Some(self.sim.record_admin_invoke(kv)),
            AdminOp::Controller(_) => None,
        };
        self.queue.push_back(AdminTask {
            op,
            history,
            asked_at: self.sim.now().as_millis(),
            started_at: None,
        });
        self.maybe_start_admin();
        history
    }

    /// Starts the next queued operation if the clerk is free.
    pub(super) fn maybe_start_admin(&mut self) {
        let Some(task) = self.queue.front_mut() else {
            return;
        };
        if task.started_at.is_some() || self.sim.is_admin_busy() {
            return;
        }
        if self.sim.start_admin(task.op.clone()).is_ok() {
            task.started_at = Some(self.sim.now().as_millis());
        }
    }

    /// Ends the running operation with `output` (`None`: given up).
    pub(super) fn finish_admin(&mut self, output: Option<ShardClerkOutput>) {
        let Some(task) = self.queue.pop_front() else {
            return;
        };
        let mut error = None;
        let (outcome, text) = match &output {
            None => {
                self.sim.abandon_admin(task.history);
                (
                    "timeout",
                    String::from("no answer in time: given up (it may still take effect)"),
                )
            }
            Some(output) => {
                if let Some(id) = task.history {
                    self.sim.settle_admin_kv(id, output);
                }
                match output {
                    ShardClerkOutput::Done(Ok(Some(value))) => {
                        ("ok", String::from_utf8_lossy(value).into_owned())
                    }
                    ShardClerkOutput::Done(Ok(None)) => ("ok", String::new()),
                    ShardClerkOutput::Done(Err(e)) => {
                        error = Some(format!("{e:?}"));
                        ("refused", e.to_string())
                    }
                    ShardClerkOutput::ControllerDone(ControllerReply::Config(c)) => {
                        ("ok", format!("configuration {}", c.num))
                    }
                    ShardClerkOutput::ControllerDone(ControllerReply::Refused(e)) => {
                        error = Some(format!("{e:?}"));
                        ("refused", e.to_string())
                    }
                    ShardClerkOutput::ControllerDone(ControllerReply::Done) => {
                        ("ok", String::from("done"))
                    }
                    ShardClerkOutput::Send { .. } => ("ok", String::new()),
                }
            }
        };
        self.done.push_back(AdminDone {
            op: describe_op(&task.op),
            asked_at: task.asked_at,
            ended_at: self.sim.now().as_millis(),
            outcome,
            text,
            error,
        });
        while self.done.len() > ADMIN_DONE_KEPT {
            self.done.pop_front();
        }
    }

    /// Advances time to `until` (not before now), processing every event up
    /// to it (those at `until` too), running the page's operations on the
    /// way.
    pub(super) fn advance_to(&mut self, until: u64) {
        loop {
            self.maybe_start_admin();
            let now = self.sim.now().as_millis();
            let running = self.queue.front().and_then(|t| t.started_at);
            let Some(started) = running else {
                self.sim.run_for(until.saturating_sub(now));
                return;
            };
            let deadline = started + self.admin_timeout;
            let stop = until.min(deadline);
            let output = self.sim.run_admin(stop.saturating_sub(now));
            let now = self.sim.now().as_millis();
            if output.is_some() {
                self.finish_admin(output);
            } else if now >= deadline {
                self.finish_admin(None);
            } else if now >= until {
                return;
            }
        }
    }
}
