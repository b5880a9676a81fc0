//! Simulated clients: clerks running operations, and the steady workload.

use alloc::collections::VecDeque;
use alloc::string::String;
use bytes::Bytes;

use super::config::check_probability;
use super::{Event, HistoryEntry, Sim, SimClient, SimError, Workload};
use crate::kv::{Clerk, ClerkConfig, Operation};
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
            Some(n) if n >= 1 && n as usize <= self.clients.len() => n,
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
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Number of clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Client `number`'s clerk.
    pub fn clerk(&self, number: u64) -> Option<&Clerk> {
        self.clients
            .get((number as usize).wrapping_sub(1))
            .map(|c| &c.clerk)
    }

    /// Whether client `number` runs the workload.
    pub fn is_workload_client(&self, number: u64) -> bool {
        self.clients
            .get((number as usize).wrapping_sub(1))
            .is_some_and(|c| c.workload)
    }
}
