//! A small seeded PRNG (xoshiro256**), identical on every platform.
//!
//! The core owns no global randomness: each node and the simulator carry one
//! of these, seeded by the caller.

/// Deterministic pseudo-random number generator (xoshiro256**, seeded by SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            state: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform value in `low..high` (`low` if the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        // Lemire's multiply-shift; the tiny bias is irrelevant here and the
        // result is identical on every platform.
        low + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// A uniform value in `low..=high`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high == u64::MAX {
            return if low == 0 {
                self.next_u64()
            } else {
                low + self.range(0, high - low + 1)
            };
        }
        self.range(low, high + 1)
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits mapped to [0, 1): exact and platform independent.
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }

    /// A uniform index into a slice of length `len` (`len` must be non-zero).
    pub fn index(&mut self, len: usize) -> usize {
        self.range(0, len as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn known_first_values_are_stable_across_platforms() {
        // Pinned so that a change to the generator (which would change every
        // simulated run) is a deliberate decision.
        let mut rng = Rng::new(42);
        let first: [u64; 2] = [rng.next_u64(), rng.next_u64()];
        assert_eq!(first, [RNG42_FIRST, RNG42_SECOND]);
    }

    const RNG42_FIRST: u64 = 1546998764402558742;
    const RNG42_SECOND: u64 = 6990951692964543102;

    #[test]
    fn range_stays_in_bounds() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let v = rng.range(150, 300);
            assert!((150..300).contains(&v));
        }
        assert_eq!(rng.range(5, 5), 5);
        for _ in 0..1000 {
            assert!(rng.range_inclusive(3, 4) <= 4);
        }
    }
}
