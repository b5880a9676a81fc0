//! Fault injection for tests: failing fsyncs, a disk that fills up, and fsyncs
//! held back on demand (all of them, or released one at a time).
//!
//! Every file write and fsync of the storage goes through
//! [`DataFile`](super::file::DataFile), which asks the storage's
//! [`FaultInjector`] first. Without faults armed this costs one uncontended
//! mutex lock per buffer flush and per fsync, which is nothing next to the
//! system calls themselves.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A switchboard of disk faults shared between a test and the storage it drives.
///
/// Clones share the same switches: keep one in the test, pass another in
/// [`StorageOptions::faults`](super::StorageOptions::faults).
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    plan: Mutex<FaultPlan>,
    /// Signalled when syncs are released or start waiting.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct FaultPlan {
    /// Every fsync fails with `EIO` while set.
    fail_syncs: bool,
    /// Bytes that may still be written before the disk is full; `None` is unlimited.
    write_budget: Option<u64>,
    /// While set, every fsync waits until it is cleared.
    hold_syncs: bool,
    /// How many fsyncs are waiting because of `hold_syncs`.
    syncs_waiting: usize,
    /// Held fsyncs released one by one and not yet resumed.
    permits: usize,
}

impl FaultInjector {
    /// A switchboard with no fault armed.
    pub fn new() -> FaultInjector {
        FaultInjector::default()
    }

    /// Makes every fsync from now on fail with `EIO` (until [`heal`](Self::heal)).
    pub fn fail_syncs(&self) {
        self.plan().fail_syncs = true;
    }

    /// Lets only `bytes` more bytes reach files; the write that crosses the
    /// limit is written partially and fails with "no space left on device".
    pub fn fill_disk_after(&self, bytes: u64) {
        self.plan().write_budget = Some(bytes);
    }

    /// Makes every fsync wait until [`release_syncs`](Self::release_syncs).
    pub fn hold_syncs(&self) {
        self.plan().hold_syncs = true;
    }

    /// Lets held fsyncs (and later ones) proceed.
    pub fn release_syncs(&self) {
        {
            let mut plan = self.plan();
            plan.hold_syncs = false;
            plan.permits = 0;
        }
        self.shared.changed.notify_all();
    }

    /// While syncs are held, lets one fsync proceed: one that waits, or else
    /// the next one to come.
    pub fn release_one_sync(&self) {
        self.plan().permits += 1;
        self.shared.changed.notify_all();
    }

    /// How many fsyncs are currently waiting because syncs are held.
    pub fn syncs_waiting(&self) -> usize {
        self.plan().syncs_waiting
    }

    /// Waits up to `timeout` until an fsync is held (waiting, and not
    /// released by [`release_one_sync`](Self::release_one_sync)); returns
    /// whether one is. The thread that called it does nothing meanwhile, so
    /// the test sees the files exactly as they are before that fsync.
    pub fn wait_for_held_sync(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut plan = self.plan();
        while plan.syncs_waiting <= plan.permits {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            plan = self
                .shared
                .changed
                .wait_timeout(plan, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    /// Disarms every fault and releases held fsyncs.
    pub fn heal(&self) {
        {
            let mut plan = self.plan();
            plan.fail_syncs = false;
            plan.write_budget = None;
            plan.hold_syncs = false;
            plan.permits = 0;
        }
        self.shared.changed.notify_all();
    }

    fn plan(&self) -> MutexGuard<'_, FaultPlan> {
        // A panic while holding this lock can only come from a test thread
        // that already failed; the plan itself is always consistent.
        self.shared
            .plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many of `wanted` bytes may be written now; consumes that budget.
    pub(crate) fn admit_write(&self, wanted: usize) -> usize {
        let mut plan = self.plan();
        match plan.write_budget {
            None => wanted,
            Some(budget) => {
                let admitted = budget.min(wanted as u64);
                plan.write_budget = Some(budget - admitted);
                admitted as usize
            }
        }
    }

    /// Called before every fsync: waits while syncs are held, then fails if
    /// syncs are set to fail.
    pub(crate) fn before_sync(&self) -> io::Result<()> {
        let mut plan = self.plan();
        if plan.hold_syncs {
            plan.syncs_waiting += 1;
            self.shared.changed.notify_all();
            while plan.hold_syncs && plan.permits == 0 {
                plan = self
                    .shared
                    .changed
                    .wait(plan)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if plan.hold_syncs {
                plan.permits -= 1;
            }
            plan.syncs_waiting -= 1;
        }
        if plan.fail_syncs {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }
}

/// Linux's "I/O error", what a failing fsync reports.
const EIO: i32 = 5;

/// The error a write gets when the injected disk is full.
pub(crate) fn disk_full() -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        "no space left on device (injected)",
    )
}
