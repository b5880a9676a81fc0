//! distribkv-native library.
