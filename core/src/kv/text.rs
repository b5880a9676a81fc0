//! Serde for keys and values: text in human-readable formats (JSON, which
//! the browser reads) when the bytes are UTF-8, raw bytes otherwise and in
//! binary formats (postcard, the drivers' wire encoding, which therefore
//! reads and writes exactly what [`Bytes`]'s own serde does).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;

/// Serializes `bytes`: a string if the format is human-readable and the
/// bytes are UTF-8, bytes otherwise.
pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    match core::str::from_utf8(bytes) {
        Ok(text) if serializer.is_human_readable() => serializer.serialize_str(text),
        _ => serializer.serialize_bytes(bytes),
    }
}

/// Deserializes what [`serialize`] wrote (a human-readable format may hold
/// a string, bytes or a sequence of bytes).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    if deserializer.is_human_readable() {
        deserializer.deserialize_any(BytesOrText)
    } else {
        deserializer.deserialize_byte_buf(BytesOrText)
    }
}

struct BytesOrText;

impl<'de> Visitor<'de> for BytesOrText {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or bytes")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Bytes, E> {
        Ok(Bytes::from(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(bytes))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Bytes::from(bytes))
    }
}

/// The same for an optional value (`null` when absent).
pub(crate) mod option {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    struct Text<'a>(&'a Bytes);

    impl Serialize for Text<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            super::serialize(self.0, serializer)
        }
    }

    struct Owned(Bytes);

    impl<'de> Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Owned, D::Error> {
            super::deserialize(deserializer).map(Owned)
        }
    }

    /// Serializes `value` as `null` or as [`super::serialize`] does.
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Bytes>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Text).serialize(serializer)
    }

    /// Deserializes what [`serialize`] wrote.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Bytes>, D::Error> {
        Ok(Option::<Owned>::deserialize(deserializer)?.map(|owned| owned.0))
    }
}
