//! Virtual time. The core never reads a clock: every input carries `now`.

use core::fmt;
use core::ops::{Add, Sub};

/// A point in time, in milliseconds since an arbitrary origin chosen by the driver.
///
/// The simulator starts at zero; the native driver uses milliseconds since it
/// started. Only differences and order matter to the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant(pub u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);
    /// A time later than any the core will see; used for "no deadline".
    pub const NEVER: Instant = Instant(u64::MAX);

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for Instant {
    type Output = Instant;
    fn add(self, millis: u64) -> Instant {
        Instant(self.0.saturating_add(millis))
    }
}

impl Sub<u64> for Instant {
    type Output = Instant;
    fn sub(self, millis: u64) -> Instant {
        Instant(self.0.saturating_sub(millis))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}
