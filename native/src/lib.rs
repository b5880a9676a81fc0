//! distribkv-native library.

pub mod storage;
