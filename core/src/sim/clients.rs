//! Simulated clients: adding them, running their operations through their
//! clerks (queue, start, route what the clerk sends, record how each ends),
//! and the steady workload.

use alloc::collections::VecDeque;
use alloc::string::String;
use bytes::Bytes;

use super::config::check_probability;
use super::{
    Endpoint, Event, HistoryEntry, PacketPayload, Sim, SimClient, SimError, Workload, index_of,
};
use crate::kv::{Clerk, ClerkConfig, ClerkOutput, Operation};
use crate::raft::NodeId;

impl Sim {
    /// Adds a client; returns its number (1, 2, ...).
    pub fn add_client(&mut self) -> u64 {
        let number = self.clients.len() as u64 + 1;
        let mut config = ClerkConfig::new((1..=self.nodes.len() as NodeId).collect());
        config.attempt_timeout = self.config.client_attempt_timeout;
        config.give_up_after = self.config.client_give_up;
        config.follower_reads = self.config.follower_reads;
        let seed = self.rng.next_u64();
        self.clients.push(SimClient {
            clerk: Clerk::new(config, seed),
            current: None,
            queue: VecDeque::new(),
            workload: false,
            ops: 0,
        });
        number
    }

    /// Starts `operation` from `client` (`None`: an idle client, or a new one).
    /// Returns the operation id (its position in the history, from 1).
    pub fn invoke(&mut self, client: Option<u64>, operation: Operation) -> Result<u64, SimError> {
        let number = match client {
            Some(n) if index_of(n) < self.clients.len() => n,
            Some(n) => return Err(SimError::UnknownClient(n)),
            None => match self
                .clients
                .iter()
                .position(|c| c.current.is_none() && !c.workload)
            {
                Some(i) => i as u64 + 1,
                None => self.add_client(),
            },
        };
        Ok(self.enqueue(number, operation))
    }

    /// `put key value` from an idle client.
    pub fn put(&mut self, key: &str, value: &str) -> u64 {
        let op = Operation::Put {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        };
        self.invoke(None, op).expect("an idle client always exists")
    }

    /// `append key value` from an idle client.
    pub fn append(&mut self, key: &str, value: &str) -> u64 {
        let op = Operation::Append {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        };
        self.invoke(None, op).expect("an idle client always exists")
    }

    /// `get key` from an idle client.
    pub fn get(&mut self, key: &str) -> u64 {
        let op = Operation::Get {
            key: Bytes::copy_from_slice(key.as_bytes()),
        };
        self.invoke(None, op).expect("an idle client always exists")
    }

    /// `delete key` from an idle client.
    pub fn delete(&mut self, key: &str) -> u64 {
        let op = Operation::Delete {
            key: Bytes::copy_from_slice(key.as_bytes()),
        };
        self.invoke(None, op).expect("an idle client always exists")
    }

    /// Starts (or, with zero clients, stops) a steady client workload.
    pub fn set_workload(&mut self, workload: Workload) -> Result<(), SimError> {
        check_probability("read fraction", workload.read_fraction)?;
        if workload.keys == 0 && workload.clients > 0 {
            return Err(SimError::BadValue(String::from(
                "a workload needs at least one key",
            )));
        }
        self.hash
            .write(b"workload")
            .write_u64(workload.clients as u64)
            .write_u64(workload.interval);
        while self.clients.len() < workload.clients {
            self.add_client();
        }
        for (i, client) in self.clients.iter_mut().enumerate() {
            client.workload = i < workload.clients;
        }
        for number in 1..=workload.clients as u64 {
            if self.clients[number as usize - 1].current.is_none() {
                self.schedule(self.now, Event::Workload { client: number });
            }
        }
        self.workload = (workload.clients > 0).then_some(workload);
        Ok(())
    }

    /// The workload in effect.
    pub fn workload(&self) -> Option<&Workload> {
        self.workload.as_ref()
    }

    /// Every operation invoked so far, in invocation order.
    pub fn history(&self) -> &crate::check::Chunked<HistoryEntry> {
        &self.history
    }

    /// Number of clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Client `number`'s clerk.
    pub fn clerk(&self, number: u64) -> Option<&Clerk> {
        self.clients.get(index_of(number)).map(|c| &c.clerk)
    }

    /// Whether client `number` runs the workload.
    pub fn is_workload_client(&self, number: u64) -> bool {
        self.clients
            .get(index_of(number))
            .is_some_and(|c| c.workload)
    }
}

// ---- running operations ----------------------------------------------------

impl Sim {
    /// Queues `operation` at client `number`; returns its id.
    pub(super) fn enqueue(&mut self, number: u64, operation: Operation) -> u64 {
        let id = self.history.len() as u64 + 1;
        self.hash
            .write(b"invoke")
            .write_u64(number)
            .write(operation.key());
        self.history.push(HistoryEntry {
            id,
            client: number,
            operation,
            invoked_at: self.now,
            completed_at: None,
            invoked_order: 0,
            completed_order: None,
            outcome: None,
            attempts: 0,
        });
        let client = &mut self.clients[number as usize - 1];
        client.queue.push_back(id as usize - 1);
        self.start_next(number);
        id
    }

    fn start_next(&mut self, number: u64) {
        let now = self.now;
        let client = &mut self.clients[number as usize - 1];
        if client.current.is_some() {
            return;
        }
        let Some(position) = client.queue.pop_front() else {
            return;
        };
        let operation = self.history[position].operation.clone();
        if client.clerk.start(now, operation).is_ok() {
            client.current = Some(position);
            self.history_order += 1;
            let entry = &mut self.history[position];
            entry.invoked_at = now;
            entry.invoked_order = self.history_order;
        }
        self.drain_clerk(number);
    }

    pub(super) fn drain_clerk(&mut self, number: u64) {
        let index = number as usize - 1;
        loop {
            let Some(output) = self.clients[index].clerk.poll_output() else {
                break;
            };
            match output {
                ClerkOutput::Send { to, request } => {
                    self.transmit(
                        Endpoint::Client(number),
                        Endpoint::Node(to),
                        PacketPayload::Request(request),
                    );
                }
                ClerkOutput::Discover { .. } => {
                    // Every machine the simulator runs is a possible
                    // member, as `add_node` tells the clerks.
                    let servers = (1..=self.nodes.len() as NodeId).collect();
                    let now = self.now;
                    self.clients[index].clerk.handle_members(now, servers);
                }
                ClerkOutput::Done(result) => {
                    let attempts = self.clients[index].clerk.attempts();
                    let client = &mut self.clients[index];
                    let Some(position) = client.current.take() else {
                        continue;
                    };
                    client.ops += 1;
                    self.history_order += 1;
                    let entry = &mut self.history[position];
                    entry.completed_at = Some(self.now);
                    entry.completed_order = Some(self.history_order);
                    entry.attempts = entry.attempts.max(attempts);
                    entry.outcome = Some(result);
                    self.hash.write(b"done").write_u64(entry.id);
                    let is_workload = self.clients[index].workload;
                    if is_workload && let Some(workload) = &self.workload {
                        let pause = workload.pause(&mut self.rng);
                        self.schedule(self.now + pause, Event::Workload { client: number });
                    }
                    self.start_next(number);
                }
            }
        }
        if let Some(position) = self.clients[index].current {
            let attempts = self.clients[index].clerk.attempts();
            self.history[position].attempts = attempts;
        }
    }

    pub(super) fn workload_tick(&mut self, number: u64) {
        let Some(workload) = self.workload.clone() else {
            return;
        };
        let index = number as usize - 1;
        if !self.clients[index].workload || self.clients[index].current.is_some() {
            return;
        }
        let n = self.clients[index].ops + 1;
        let operation = workload.next_operation(&mut self.rng, number, n);
        self.enqueue(number, operation);
    }
}
