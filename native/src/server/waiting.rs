//! What both step loops (the replica's and the sharded host's) keep
//! between a client request and its answer: the requests waiting for one,
//! by the token the core knows them by; and what a storage write the
//! worker refused means.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::storage::{StorageError, StorageEvent};
use crate::transport::ReplyHandle;

/// Client requests the core has not answered after this long are
/// forgotten (their clients have long given up).
pub(crate) const REPLY_EXPIRY: Duration = Duration::from_secs(120);

/// A timer for [`WaitingReplies::expire`]: a few ticks per
/// [`REPLY_EXPIRY`], late ticks delayed rather than bunched.
pub(crate) fn expiry_timer() -> tokio::time::Interval {
    let mut expiry = tokio::time::interval(REPLY_EXPIRY / 4);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    expiry
}

/// A client request waiting for the core's answer.
pub(crate) struct Waiting<R> {
    pub(crate) reply: ReplyHandle<R>,
    since: tokio::time::Instant,
    /// What it asks, for the metrics: `put`, `get`, ..., `status`.
    pub(crate) op: &'static str,
    pub(crate) is_write: bool,
}

/// The client requests waiting for an answer, by token.
pub(crate) struct WaitingReplies<R> {
    waiting: HashMap<u64, Waiting<R>>,
    next_token: u64,
}

impl<R> WaitingReplies<R> {
    pub(crate) fn new() -> WaitingReplies<R> {
        WaitingReplies {
            waiting: HashMap::new(),
            next_token: 1,
        }
    }

    /// Keeps `reply` until the answer to the request comes; returns the
    /// token to hand the core with the request.
    pub(crate) fn insert(
        &mut self,
        reply: ReplyHandle<R>,
        op: &'static str,
        is_write: bool,
    ) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.waiting.insert(
            token,
            Waiting {
                reply,
                since: tokio::time::Instant::now(),
                op,
                is_write,
            },
        );
        token
    }

    /// The request the core answers under `token`, if still waiting.
    pub(crate) fn take(&mut self, token: u64) -> Option<Waiting<R>> {
        self.waiting.remove(&token)
    }

    /// Forgets requests waiting for longer than [`REPLY_EXPIRY`].
    pub(crate) fn expire(&mut self) {
        let now = tokio::time::Instant::now();
        self.waiting
            .retain(|_, waiting| now.duration_since(waiting.since) < REPLY_EXPIRY);
    }

    /// How many requests are waiting.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }
}

/// Why the storage worker refused a write: it refuses writes only after a
/// failure, which it reports on the event channel. `None` if the channel
/// closed without one.
pub(crate) async fn storage_failure(
    events: &mut mpsc::UnboundedReceiver<StorageEvent>,
) -> Option<StorageError> {
    while let Some(event) = events.recv().await {
        if let StorageEvent::Failed { error } = event {
            return Some(error);
        }
    }
    None
}
