//! Checkers over client histories.
//!
//! - [`history`]: the [`Operation`]s every part of distribKV records (the
//!   simulator, the browser, the native fault tests), and a [`History`]
//!   builder for recorders.
//! - [`linearizability`]: [`check_linearizable`], which decides whether a
//!   history is linearizable with respect to the sequential key-value model.
//! - [`appends`]: [`check_appends`], the exactly-once check for workloads that
//!   append unique tokens, against the final values read after healing.
//! - [`chunked`]: [`Chunked`], the append-only list histories are kept in,
//!   whose clones share what it held before.

pub mod appends;
pub mod chunked;
pub mod history;
pub mod linearizability;

pub use appends::{AppendCheckError, AppendCheckOptions, AppendViolation, check_appends};
pub use chunked::Chunked;
pub use history::{DisplayBytes, DisplayValue, History, OpKind, Operation, Outcome, SettleError};
pub use linearizability::{
    Budget, CheckError, GaveUp, Linearizable, MalformedHistory, Violation, check_linearizable,
};
