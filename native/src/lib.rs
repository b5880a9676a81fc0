//! distribkv-native: the distribKV core driven over QUIC with durable storage.
//!
//! - [`server`]: one node: the replica's step loop between the QUIC
//!   [`transport`] and the durable [`storage`];
//! - [`shard`]: a sharded host (many groups behind the core's `Host`) and
//!   the routing client;
//! - [`kv_client`]: the core's clerk driven over QUIC, for every client command;
//! - [`cli`]: the command line (its contract is in DESIGN.md);
//! - [`tls`]: the cluster CA and mutual TLS;
//! - [`addr`], [`clock`]: address lists and the drivers' clock.

pub mod addr;
pub mod backup;
pub mod cli;
pub mod clock;
mod encoding;
pub mod fsutil;
pub mod kv_client;
pub mod server;
pub mod shard;
pub mod storage;
pub mod tls;
pub mod transport;
