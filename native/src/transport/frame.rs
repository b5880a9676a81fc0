//! The one frame format used on every QUIC stream.
//!
//! ```text
//! +---------------+---------------------------+----------------------+
//! | magic+version | payload length            | payload              |
//! | 1 byte: 0xD1  | unsigned LEB128, 1-5 bytes| postcard, `length` B |
//! +---------------+---------------------------+----------------------+
//! ```
//!
//! The first byte is [`FRAME_MAGIC`] (high nibble `0xD`) combined with the
//! format version in the low nibble ([`FRAME_VERSION`], now 1). The header
//! layout (that byte, then the length) is the same for every version, so a
//! frame of another version can be skipped whole and reported as such. The
//! length is bounded by a maximum frame size (default
//! [`DEFAULT_MAX_FRAME_SIZE`], 16 MiB); a longer length is refused before any
//! of the payload is read.
//!
//! Errors come in two kinds ([`FrameError::is_fatal`]):
//! - *recoverable*: the frame was delimited correctly but its payload does not
//!   decode, or its version is unknown. The frame is dropped, logged and
//!   counted; the stream goes on.
//! - *fatal*: the stream is out of sync (the first byte is not a frame
//!   header, the length is malformed or over the limit). The stream must be
//!   closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// High nibble of the first byte of every frame.
pub const FRAME_MAGIC: u8 = 0xD0;
/// Version of the frame format written by this code (low nibble of the first
/// byte).
pub const FRAME_VERSION: u8 = 1;
/// Default bound on a frame's payload length.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// Longest encoding of the length: a `u32` in unsigned LEB128.
const MAX_LENGTH_BYTES: usize = 5;
/// Longest header: the magic/version byte and the length.
pub const MAX_HEADER_SIZE: usize = 1 + MAX_LENGTH_BYTES;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The first byte is not a frame header: the stream is out of sync.
    #[error("not a distribKV frame (first byte {0:#04x})")]
    NotAFrame(u8),
    /// A frame of a format version this code does not speak; it was skipped.
    #[error("unsupported frame version {found} (this node speaks version {FRAME_VERSION})")]
    UnsupportedVersion {
        /// The version found in the header.
        found: u8,
    },
    /// The length field is not a valid LEB128 `u32`.
    #[error("malformed frame length")]
    MalformedLength,
    /// The announced (or, when encoding, actual) payload is over the limit.
    #[error("frame of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The payload length.
        length: u64,
        /// The limit in force.
        max: usize,
    },
    /// The payload does not decode as the expected message type; the frame
    /// was skipped.
    #[error("undecodable frame payload: {0}")]
    Undecodable(postcard::Error),
    /// The message could not be serialized.
    #[error("cannot encode message: {0}")]
    Encode(postcard::Error),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
    /// Reading the stream failed.
    #[error("stream read failed: {0}")]
    Read(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the stream can no longer be read after this error. A
    /// recoverable error concerns one frame, which was skipped.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            FrameError::UnsupportedVersion { .. } | FrameError::Undecodable(_)
        )
    }
}

/// Appends one frame holding `message` to `out`.
///
/// Refuses (and leaves `out` as it was) a message whose encoding exceeds
/// `max_frame_size`.
pub fn encode<T: Serialize + ?Sized>(
    message: &T,
    out: &mut BytesMut,
    max_frame_size: usize,
) -> Result<(), FrameError> {
    let start = out.len();
    // Reserve the longest header, serialize the payload right after it, then
    // write the real header and close the gap.
    out.put_bytes(0, MAX_HEADER_SIZE);
    let payload_start = start + MAX_HEADER_SIZE;
    let encoded = postcard::serialize_with_flavor(message, crate::encoding::BufFlavor(out));
    if let Err(error) = encoded {
        out.truncate(start);
        return Err(FrameError::Encode(error));
    }
    let length = out.len() - payload_start;
    if length > max_frame_size || length > u32::MAX as usize {
        out.truncate(start);
        return Err(FrameError::TooLarge {
            length: length as u64,
            max: max_frame_size,
        });
    }
    let mut header = [0u8; MAX_HEADER_SIZE];
    header[0] = FRAME_MAGIC | FRAME_VERSION;
    let header_len = 1 + write_length(length as u32, &mut header[1..]);
    let header_start = payload_start - header_len;
    out[header_start..payload_start].copy_from_slice(&header[..header_len]);
    if header_start > start {
        out.copy_within(header_start.., start);
        out.truncate(start + header_len + length);
    }
    Ok(())
}

/// Encodes `message` as one frame into a new buffer.
pub fn encode_to_bytes<T: Serialize + ?Sized>(
    message: &T,
    max_frame_size: usize,
) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::new();
    encode(message, &mut out, max_frame_size)?;
    Ok(out.freeze())
}

/// Appends `first`, then whatever `next` yields, one frame each, until `out`
/// holds at least `max_batch_bytes` or `next` has nothing more: everything
/// already queued becomes one stream write. A message that cannot be encoded
/// is handed to `refused` (with `out`, to which it may append a replacement).
/// Returns how many messages were encoded.
pub fn encode_batch<T: Serialize>(
    first: T,
    mut next: impl FnMut() -> Option<T>,
    out: &mut BytesMut,
    (max_frame_size, max_batch_bytes): (usize, usize),
    mut refused: impl FnMut(&mut BytesMut, T, FrameError),
) -> u64 {
    let mut encoded = 0;
    let mut pending = Some(first);
    while let Some(message) = pending.take() {
        match encode(&message, out, max_frame_size) {
            Ok(()) => encoded += 1,
            Err(error) => refused(out, message, error),
        }
        if out.len() < max_batch_bytes {
            pending = next();
        }
    }
    encoded
}

/// Takes the next complete frame's payload off the front of `buf`.
///
/// `Ok(None)`: more bytes are needed (nothing was consumed). A recoverable
/// error consumed the bad frame; a fatal error leaves `buf` unusable.
pub fn decode_payload(
    buf: &mut BytesMut,
    max_frame_size: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first & 0xF0 != FRAME_MAGIC {
        return Err(FrameError::NotAFrame(first));
    }
    let Some((length, length_bytes)) = read_length(&buf[1..])? else {
        return Ok(None);
    };
    if length as u64 > max_frame_size as u64 {
        return Err(FrameError::TooLarge {
            length: length as u64,
            max: max_frame_size,
        });
    }
    let header_len = 1 + length_bytes;
    let total = header_len + length as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(header_len);
    let payload = buf.split_to(length as usize).freeze();
    let version = first & 0x0F;
    if version != FRAME_VERSION {
        return Err(FrameError::UnsupportedVersion { found: version });
    }
    Ok(Some(payload))
}

/// Takes the next complete frame off the front of `buf` and decodes it as a
/// `T`. Same contract as [`decode_payload`].
pub fn decode<T: DeserializeOwned>(
    buf: &mut BytesMut,
    max_frame_size: usize,
) -> Result<Option<T>, FrameError> {
    match decode_payload(buf, max_frame_size)? {
        None => Ok(None),
        Some(payload) => postcard::from_bytes(&payload)
            .map(Some)
            .map_err(FrameError::Undecodable),
    }
}

/// Counters of frames that were dropped, shared by every reader of an
/// endpoint.
#[derive(Debug, Default)]
pub struct FrameCounters {
    /// Frames decoded and handed on.
    pub decoded: AtomicU64,
    /// Frames skipped because their payload did not decode.
    pub undecodable: AtomicU64,
    /// Frames skipped because of an unknown format version.
    pub wrong_version: AtomicU64,
    /// Streams closed because of a fatal framing error.
    pub streams_closed: AtomicU64,
}

/// Reads frames from a byte stream (a QUIC receive stream), skipping and
/// counting recoverable errors.
#[derive(Debug)]
pub struct FrameReader<R> {
    stream: R,
    buffer: BytesMut,
    max_frame_size: usize,
    counters: Arc<FrameCounters>,
    /// Where the frames come from, for logs.
    origin: String,
    /// Bytes read from the stream so far.
    bytes_read: u64,
}

/// Bytes asked of the stream per read, at least.
const READ_CHUNK: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps `stream`. `origin` names the other side in logs.
    pub fn new(
        stream: R,
        max_frame_size: usize,
        counters: Arc<FrameCounters>,
        origin: impl Into<String>,
    ) -> FrameReader<R> {
        FrameReader {
            stream,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            max_frame_size,
            counters,
            origin: origin.into(),
            bytes_read: 0,
        }
    }

    /// Bytes read from the stream so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The underlying stream (for example to stop it after a fatal error).
    pub fn stream_mut(&mut self) -> &mut R {
        &mut self.stream
    }

    /// The next frame's payload; frames of another version are logged,
    /// counted and skipped. `Ok(None)` at a clean end of stream. An error is
    /// fatal: the caller closes the stream.
    pub async fn next_payload(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            match decode_payload(&mut self.buffer, self.max_frame_size) {
                Ok(Some(payload)) => return Ok(Some(payload)),
                Ok(None) => {}
                Err(error) if !error.is_fatal() => {
                    self.counters.wrong_version.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(origin = %self.origin, %error, "dropped a frame");
                    continue;
                }
                Err(error) => return Err(self.fatal(error)),
            }
            if self.buffer.capacity() - self.buffer.len() < READ_CHUNK {
                self.buffer.reserve(READ_CHUNK);
            }
            let read = self.stream.read_buf(&mut self.buffer).await;
            match read {
                Ok(0) if self.buffer.is_empty() => return Ok(None),
                Ok(0) => return Err(self.fatal(FrameError::Truncated(self.buffer.len()))),
                Ok(read) => self.bytes_read += read as u64,
                Err(error) => return Err(FrameError::Read(error)),
            }
        }
    }

    /// The next frame decoded as a `T`; undecodable frames are logged,
    /// counted and skipped. Same contract as [`FrameReader::next_payload`].
    pub async fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        loop {
            let Some(payload) = self.next_payload().await? else {
                return Ok(None);
            };
            match postcard::from_bytes(&payload) {
                Ok(message) => {
                    self.counters.decoded.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(message));
                }
                Err(error) => self.count_undecodable(&FrameError::Undecodable(error)),
            }
        }
    }

    /// The next frame of a request or answer stream: a request id (chosen by
    /// the client) followed by a `T`. A frame whose id does not decode is
    /// counted and skipped; one whose `T` does not decode is counted and
    /// returned as `Err` with its id, so the caller can answer it. Same
    /// contract as [`FrameReader::next_payload`] otherwise. The latter is
    /// logged at debug level only, since the caller answers it.
    pub async fn next_tagged<T: DeserializeOwned>(
        &mut self,
    ) -> Result<Option<(u64, Result<T, postcard::Error>)>, FrameError> {
        loop {
            let Some(payload) = self.next_payload().await? else {
                return Ok(None);
            };
            let Ok((id, body)) = postcard::take_from_bytes::<u64>(&payload) else {
                self.count_undecodable(&FrameError::Undecodable(
                    postcard::Error::DeserializeUnexpectedEnd,
                ));
                continue;
            };
            let decoded = postcard::from_bytes::<T>(body);
            match &decoded {
                Ok(_) => self.count_decoded(),
                Err(error) => {
                    // Counted, and only a debug line: the caller answers it
                    // (a server tells the client its request is undecodable,
                    // a client's request gets the error), so it is not lost
                    // silently. A server of a single group gets one from
                    // every client that starts: the client's first request
                    // asks whether the cluster is sharded
                    // (`shard::client::detect_kind`), a request only a
                    // sharded host decodes.
                    self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        origin = %self.origin,
                        request_id = id,
                        %error,
                        "a frame of another message kind or version, answered as undecodable"
                    );
                }
            }
            return Ok(Some((id, decoded)));
        }
    }

    /// Counts and logs a payload the caller could not decode.
    pub fn count_undecodable(&self, error: &FrameError) {
        self.counters.undecodable.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(origin = %self.origin, %error, "dropped an undecodable frame");
    }

    /// Counts a decoded frame the caller handled itself.
    pub fn count_decoded(&self) {
        self.counters.decoded.fetch_add(1, Ordering::Relaxed);
    }

    fn fatal(&self, error: FrameError) -> FrameError {
        self.counters.streams_closed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(origin = %self.origin, %error, "closing a stream after a framing error");
        error
    }
}

/// Writes `length` as unsigned LEB128 into `out`; returns the bytes used.
fn write_length(mut length: u32, out: &mut [u8]) -> usize {
    let mut used = 0;
    loop {
        let low = (length & 0x7F) as u8;
        length >>= 7;
        if length == 0 {
            out[used] = low;
            return used + 1;
        }
        out[used] = low | 0x80;
        used += 1;
    }
}

/// Reads an unsigned LEB128 `u32`: `Ok(None)` when more bytes are needed.
fn read_length(bytes: &[u8]) -> Result<Option<(u32, usize)>, FrameError> {
    let mut value: u64 = 0;
    for (index, &byte) in bytes.iter().take(MAX_LENGTH_BYTES).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            let value = u32::try_from(value).map_err(|_| FrameError::MalformedLength)?;
            return Ok(Some((value, index + 1)));
        }
    }
    if bytes.len() >= MAX_LENGTH_BYTES {
        Err(FrameError::MalformedLength)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
