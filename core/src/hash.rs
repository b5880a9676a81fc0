//! FNV-1a, a tiny platform-independent hash for trace hashes and log fingerprints.

/// Incremental 64-bit FNV-1a hasher. Same bytes in, same value out, on every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A fresh hasher.
    pub const fn new() -> Fnv {
        Fnv(Self::OFFSET)
    }

    /// A hasher that continues from a previous value (for hash chains).
    pub const fn from_value(value: u64) -> Fnv {
        Fnv(value)
    }

    /// Feed bytes.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
        self
    }

    /// Feed a `u64` in little-endian order.
    pub fn write_u64(&mut self, value: u64) -> &mut Self {
        self.write(&value.to_le_bytes())
    }

    /// The current value.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}
