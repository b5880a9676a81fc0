//! The distribkv-native command line.

fn main() {}
