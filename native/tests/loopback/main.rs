//! Every native test that runs on one machine's loopback interface, in one
//! test binary (one link instead of one per file):
//!
//! - [`transport`]: the QUIC transport in-process: peer links, client
//!   requests, mutual TLS, bad frames (and throughput figures, ignored by
//!   default);
//! - [`server`]: one server in-process with a storage fault injector;
//! - [`cli`]: the command-line contract: output formats, exit codes, bad
//!   input, `certs` and `demo`;
//! - [`cluster`]: a real 3-node cluster of server processes: replication,
//!   crashes, restarts, snapshots, pauses, damaged files;
//! - [`membership`]: `member` commands and `server --join` on a real
//!   cluster under a workload checked for linearizability (the workload
//!   of the fault tests);
//! - [`metrics`]: `--metrics-addr`: `/metrics`, `/livez`, `/readyz`;
//! - [`snapshot`]: backups saved, checked and restored into a new cluster;
//! - [`rolling`]: a rolling restart of every node with no failed operation;
//! - [`rotation`]: certificates rotated with SIGHUP, without a restart;
//! - [`sharded`]: a sharded cluster (`server --shards`): `shard` commands,
//!   key routing, moves and a group join under a checked workload, a
//!   group leader killed during a move.
//!
//! The multi-process tests share the harness of `tests/harness` with the
//! fault tests across network namespaces (`tests/faults`), and run one
//! cluster at a time.

#[path = "../harness/mod.rs"]
mod harness;

mod cli;
mod cluster;
mod membership;
mod metrics;
#[path = "../faults/rng.rs"]
#[allow(dead_code)]
mod rng;
mod rolling;
mod rotation;
mod server;
mod sharded;
mod snapshot;
mod transport;
#[path = "../faults/workload.rs"]
#[allow(dead_code)]
mod workload;
