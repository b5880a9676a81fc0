//! distribkv-native: the distribKV core driven over QUIC with durable storage.

pub mod storage;
pub mod tls;
pub mod transport;
