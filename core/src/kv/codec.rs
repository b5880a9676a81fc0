//! A tiny binary codec (LEB128 varints and length-prefixed bytes) for log
//! commands and KV snapshots: the state machine's own formats, identical on
//! every platform and independent of any serialization library.

use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An encoder with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Encoder {
        Encoder {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    /// An unsigned varint.
    #[inline]
    pub fn varint(&mut self, mut value: u64) -> &mut Self {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
        self
    }

    /// Length-prefixed bytes.
    #[inline]
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
        self
    }

    /// Raw bytes, no prefix.
    #[inline]
    pub fn raw(&mut self, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(value);
        self
    }

    /// The encoded bytes.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

/// Why decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    Truncated,
    /// A varint longer than 64 bits.
    Overflow,
    /// An unknown tag or version.
    Invalid(&'static str),
    /// Bytes left over after the value.
    Trailing,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "input ends in the middle of a value"),
            DecodeError::Overflow => write!(f, "varint overflows 64 bits"),
            DecodeError::Invalid(what) => write!(f, "invalid {what}"),
            DecodeError::Trailing => write!(f, "trailing bytes after the value"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Reads values from a byte buffer; slices share the input's storage.
#[derive(Debug)]
pub struct Decoder {
    input: Bytes,
    position: usize,
}

impl Decoder {
    /// Decodes from `input`.
    pub fn new(input: Bytes) -> Decoder {
        Decoder { input, position: 0 }
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let value = *self
            .input
            .get(self.position)
            .ok_or(DecodeError::Truncated)?;
        self.position += 1;
        Ok(value)
    }

    /// An unsigned varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::Overflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Overflow)
    }

    /// A varint that must fit in `usize` and not exceed what is left.
    #[inline]
    pub fn length(&mut self) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        if len > (self.input.len() - self.position) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(len as usize)
    }

    /// Length-prefixed bytes.
    // Always: whether plain `#[inline]` took in the command decoder
    // changed with unrelated edits elsewhere (about 10k instructions per
    // round of 64 writes either way).
    #[inline(always)]
    pub fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.length()?;
        self.raw(len)
    }

    /// `len` raw bytes.
    #[inline]
    pub fn raw(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        if len > self.input.len() - self.position {
            return Err(DecodeError::Truncated);
        }
        let value = self.input.slice(self.position..self.position + len);
        self.position += len;
        Ok(value)
    }

    /// Fails unless everything was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.position == self.input.len() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = Encoder::default();
        e.u8(7)
            .varint(0)
            .varint(127)
            .varint(128)
            .varint(u64::MAX)
            .bytes(b"hello")
            .bytes(b"");
        let mut d = Decoder::new(e.finish());
        assert_eq!(d.u8(), Ok(7));
        for expected in [0, 127, 128, u64::MAX] {
            assert_eq!(d.varint(), Ok(expected));
        }
        assert_eq!(d.bytes().as_deref(), Ok(&b"hello"[..]));
        assert_eq!(d.bytes().as_deref(), Ok(&b""[..]));
        assert_eq!(d.finish(), Ok(()));
        assert_eq!(d.u8(), Err(DecodeError::Truncated));
    }

    #[test]
    fn rejects_bad_input() {
        let cases: [(&[u8], DecodeError); 3] = [
            (&[0xff; 11], DecodeError::Overflow),
            (&[0x80], DecodeError::Truncated),
            (&[5, b'a'], DecodeError::Truncated),
        ];
        for (input, expected) in cases {
            let mut d = Decoder::new(Bytes::copy_from_slice(input));
            let got = if input.len() == 2 {
                d.bytes().map(|_| 0)
            } else {
                d.varint()
            };
            assert_eq!(got, Err(expected), "{input:?}");
        }
    }
}
