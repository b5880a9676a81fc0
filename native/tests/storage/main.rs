//! The native storage's tests, one binary: the write-ahead log of one group
//! and the multi-group log, their recovery, the fault file system and the
//! power cuts on it, bit rot, older format versions, the storage worker and
//! the sharded host's store. One module per concern, the helpers shared once.
//!
//! `cargo test -p distribkv-native --test storage <module>` runs one of them,
//! e.g. `power_cut` or `recovery`; test names
//! read `<module>::<test>`.

mod multi_support;
mod power_cut_support;
mod support;

mod bit_rot;
mod fault_fs;
mod faults;
mod format_versions;
mod multi;
mod multi_bit_rot;
mod multi_format_versions;
mod multi_power_cut;
mod multi_purge;
mod multi_retire;
mod power_cut;
mod recovery;
mod roundtrip;
mod sharded_store;
mod throughput;
mod worker;
