//! Each simulated node reads its own clock: the simulator's virtual time
//! seen through an offset and a rate. Real machines' clocks disagree on the
//! time (offset) and drift apart (rate); leader leases depend on the rates
//! staying within the bound the nodes are configured with
//! (`Config::max_clock_drift_percent`), and the session log clock depends on
//! the offsets. The simulator's own time, the clients' and the trace's stay
//! the "real" time.

use crate::time::Instant;

/// One parts-per-million unit of rate: a rate of `PPM` is real time.
const PPM: i128 = 1_000_000;

/// How one node's clock reads the simulator's time: `offset + t * (1 +
/// rate_ppm / 10^6)`, rounded down. The default is an exact clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    /// Milliseconds the clock is ahead of the simulator's time at time zero.
    pub offset: u64,
    /// How much faster (positive) or slower (negative) than real time the
    /// clock runs, in parts per million: 50,000 is 5% fast. Must be above
    /// -1,000,000 (a clock that stands still or runs backwards is refused).
    pub rate_ppm: i64,
}

impl NodeClock {
    /// Whether the clock is usable: it moves forward.
    pub fn is_valid(&self) -> bool {
        i128::from(self.rate_ppm) > -PPM
    }

    /// Whether the clock reads the simulator's time (the common case, kept cheap).
    fn is_exact(&self) -> bool {
        self.offset == 0 && self.rate_ppm == 0
    }

    fn rate(&self) -> i128 {
        PPM + i128::from(self.rate_ppm)
    }

    /// What the clock reads at simulator time `at`.
    pub fn local(&self, at: Instant) -> Instant {
        if at == Instant::NEVER || self.is_exact() {
            return at;
        }
        let elapsed = i128::from(at.as_millis()) * self.rate() / PPM;
        let local = i128::from(self.offset) + elapsed;
        Instant(local.clamp(0, i128::from(u64::MAX - 1)) as u64)
    }

    /// The first simulator time at which the clock reads `local` or later.
    pub fn global(&self, local: Instant) -> Instant {
        if local == Instant::NEVER || self.is_exact() {
            return local;
        }
        let Some(elapsed) = local.as_millis().checked_sub(self.offset) else {
            return Instant::ZERO;
        };
        // The smallest t with floor(t * rate / PPM) >= elapsed.
        let scaled = i128::from(elapsed) * PPM;
        let rate = self.rate();
        let t = (scaled + rate - 1) / rate;
        Instant(t.clamp(0, i128::from(u64::MAX - 1)) as u64)
    }

    /// Whether every pair of these clocks keeps within the drift a lease
    /// allows for (`Config::max_clock_drift_percent`): a span the fastest
    /// clock measures as `100` units, the slowest measures as at least
    /// `100 - drift_percent`. Then a lease the leader measures as
    /// `election_timeout_min * (100 - drift) / 100` on its clock ends, in
    /// real time, no later than `election_timeout_min` measured by any
    /// follower on its own clock.
    pub fn within_drift_bound(clocks: &[NodeClock], drift_percent: u64) -> bool {
        let fastest = clocks
            .iter()
            .map(NodeClock::rate)
            .max()
            .unwrap_or(PPM)
            .max(PPM);
        let slowest = clocks
            .iter()
            .map(NodeClock::rate)
            .min()
            .unwrap_or(PPM)
            .min(PPM);
        let keep = 100 - i128::from(drift_percent.min(100));
        fastest * keep <= slowest * 100
    }

    /// The largest rate deviation (ppm, either way) that keeps any two clocks
    /// within `drift_percent` of each other: `(1 + r) / (1 - r) = 100 / (100 -
    /// drift)`, so `r = drift / (200 - drift)`.
    pub fn max_rate_ppm(drift_percent: u64) -> i64 {
        let drift = i128::from(drift_percent.min(99));
        (PPM * drift / (200 - drift)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_clock_reads_the_simulator_time() {
        let clock = NodeClock::default();
        for t in [0, 1, 999, 123_456] {
            assert_eq!(clock.local(Instant(t)), Instant(t));
            assert_eq!(clock.global(Instant(t)), Instant(t));
        }
        assert_eq!(clock.local(Instant::NEVER), Instant::NEVER);
        assert_eq!(clock.global(Instant::NEVER), Instant::NEVER);
    }

    #[test]
    fn a_deadline_fires_exactly_when_the_clock_reaches_it() {
        for clock in [
            NodeClock {
                offset: 0,
                rate_ppm: 50_000,
            },
            NodeClock {
                offset: 7,
                rate_ppm: -50_000,
            },
            NodeClock {
                offset: 1_000,
                rate_ppm: 333_333,
            },
            NodeClock {
                offset: 3,
                rate_ppm: -700_000,
            },
        ] {
            for local in 0..3_000 {
                let at = clock.global(Instant(local));
                assert!(clock.local(at) >= Instant(local), "{clock:?} {local}");
                if at > Instant::ZERO {
                    assert!(clock.local(at - 1) < Instant(local), "{clock:?} {local}");
                }
            }
            let mut previous = Instant::ZERO;
            for t in 0..3_000 {
                let local = clock.local(Instant(t));
                assert!(local >= previous, "a clock never goes back");
                previous = local;
            }
        }
    }

    #[test]
    fn drift_bound() {
        let max = NodeClock::max_rate_ppm(10);
        assert_eq!(max, 52_631);
        let fast = NodeClock {
            offset: 0,
            rate_ppm: max,
        };
        let slow = NodeClock {
            offset: 5,
            rate_ppm: -max,
        };
        assert!(NodeClock::within_drift_bound(&[fast, slow], 10));
        let faster = NodeClock {
            offset: 0,
            rate_ppm: max + 2_000,
        };
        assert!(!NodeClock::within_drift_bound(&[faster, slow], 10));
        assert!(NodeClock::within_drift_bound(&[], 0));
        assert!(
            !NodeClock {
                offset: 0,
                rate_ppm: -1_000_000
            }
            .is_valid()
        );
    }
}
