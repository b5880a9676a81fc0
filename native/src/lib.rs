//! distribkv-native library.

pub mod tls;
pub mod transport;
