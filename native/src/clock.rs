//! The drivers' clock: milliseconds for the core, monotonic within a
//! process and roughly comparable across the nodes of a cluster.
//!
//! The core never reads a clock; every input carries a
//! [`distribkv_core::time::Instant`]. The native driver starts its clock at
//! the wall-clock time (milliseconds since the Unix epoch) when the process
//! started, then advances it with the monotonic clock only, so it never goes
//! backwards even if the wall clock is stepped. Starting from wall-clock time
//! keeps the leaders' clocks close to each other, which matters for one
//! thing only: the log clock the state machine uses to expire idle client
//! sessions (each command records the proposing leader's `now`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use distribkv_core::time::Instant;

/// A monotonic millisecond clock whose origin is the Unix epoch at start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: tokio::time::Instant,
    origin_ms: u64,
}

impl Clock {
    /// A clock reading the current wall-clock time now, monotonic from here on.
    pub fn start() -> Clock {
        let origin_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            started: tokio::time::Instant::now(),
            origin_ms,
        }
    }

    /// The current time, for the core.
    pub fn now(&self) -> Instant {
        Instant(self.origin_ms + self.started.elapsed().as_millis() as u64)
    }

    /// The tokio instant at which the core's `deadline` is reached, or `None`
    /// for [`Instant::NEVER`].
    pub fn deadline(&self, deadline: Instant) -> Option<tokio::time::Instant> {
        if deadline == Instant::NEVER {
            return None;
        }
        let after = deadline.as_millis().saturating_sub(self.origin_ms);
        // Far-away deadlines are clamped: tokio cannot represent arbitrary ones.
        Some(self.started + Duration::from_millis(after.min(1 << 40)))
    }
}

/// Sleeps until `deadline` (from [`Clock::deadline`]), or forever without one.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deadlines_map_back_to_the_same_millisecond() {
        let clock = Clock::start();
        let now = clock.now();
        let at = clock.deadline(now + 5).unwrap();
        tokio::time::sleep_until(at).await;
        assert!(clock.now() >= now + 5);
        assert_eq!(clock.deadline(Instant::NEVER), None);
    }
}
