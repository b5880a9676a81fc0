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

/// [`Fnv`] as a [`core::hash::Hasher`], for `#[derive(Hash)]` types whose
/// hash must be the same on every platform (the simulator's trace hash is
/// pinned and checked on x86_64 and wasm32).
///
/// The standard `Hasher` writes `usize` and `isize` (lengths of slices and
/// vectors, enum discriminants, `usize` fields) in their native width, 8 bytes
/// on x86_64 but 4 on wasm32; this one always writes them as 8 little-endian
/// bytes, and every other integer little-endian too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortableHasher(Fnv);

impl PortableHasher {
    /// A fresh hasher.
    pub const fn new() -> PortableHasher {
        PortableHasher(Fnv::new())
    }
}

impl core::hash::Hasher for PortableHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u8(&mut self, value: u8) {
        self.0.write(&[value]);
    }

    fn write_u16(&mut self, value: u16) {
        self.0.write(&value.to_le_bytes());
    }

    fn write_u32(&mut self, value: u32) {
        self.0.write(&value.to_le_bytes());
    }

    fn write_u64(&mut self, value: u64) {
        self.0.write_u64(value);
    }

    fn write_u128(&mut self, value: u128) {
        self.0.write(&value.to_le_bytes());
    }

    fn write_usize(&mut self, value: usize) {
        self.0.write_u64(value as u64);
    }

    fn write_i8(&mut self, value: i8) {
        self.write_u8(value as u8);
    }

    fn write_i16(&mut self, value: i16) {
        self.write_u16(value as u16);
    }

    fn write_i32(&mut self, value: i32) {
        self.write_u32(value as u32);
    }

    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }

    fn write_i128(&mut self, value: i128) {
        self.write_u128(value as u128);
    }

    fn write_isize(&mut self, value: isize) {
        self.write_u64(value as i64 as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::{Hash, Hasher};

    #[test]
    fn usize_and_isize_hash_as_eight_bytes() {
        let mut native = PortableHasher::new();
        (3usize).hash(&mut native);
        (-2isize).hash(&mut native);
        let mut wide = PortableHasher::new();
        3u64.hash(&mut wide);
        (-2i64).hash(&mut wide);
        assert_eq!(native.finish(), wide.finish());
    }

    #[test]
    fn a_slice_hashes_its_length_as_eight_bytes_then_its_bytes() {
        let mut hasher = PortableHasher::new();
        [1u8, 2, 3][..].hash(&mut hasher);
        let expected = Fnv::new().write_u64(3).write(&[1, 2, 3]).finish();
        assert_eq!(hasher.finish(), expected);
    }
}
