//! What the power-cut tests of the single-group storage and of the
//! multi-group log share: the seeds of their random workloads, the record of
//! what was appended and acknowledged when, and the check that a recovered
//! state is one a cut may leave.
#![allow(dead_code)]

/// The seeds of the random workloads: `DISTRIBKV_POWER_CUT_SEED` alone, or
/// `DISTRIBKV_POWER_CUT_RUNS` (default `default_runs`) of them counting up
/// from `first`. The flag says whether the default number was used (the
/// tests assert their coverage only then).
pub fn workload_seeds(default_runs: u64, first: u64) -> (Vec<u64>, bool) {
    if let Some(seed) = std::env::var("DISTRIBKV_POWER_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return (vec![seed], false);
    }
    let runs = std::env::var("DISTRIBKV_POWER_CUT_RUNS")
        .ok()
        .and_then(|s| s.parse().ok());
    let default = runs.is_none();
    (
        (1..=runs.unwrap_or(default_runs))
            .map(|i| first + i)
            .collect(),
        default,
    )
}

/// When each write since the storage was opened was handed to it and when
/// syncs acknowledged them, in file-system operation numbers: from these, a
/// cut before an operation knows which writes must survive and which may.
#[derive(Debug)]
pub struct Acks {
    /// Number of the first operation each write's `append` could run.
    started: Vec<u64>,
    /// After each sync: operations run when it returned, and how many
    /// writes it acknowledged.
    acked: Vec<(u64, usize)>,
}

impl Default for Acks {
    fn default() -> Acks {
        Acks {
            started: Vec::new(),
            acked: vec![(0, 0)],
        }
    }
}

impl Acks {
    /// The next write's `append` starts at `operation`.
    pub fn started(&mut self, operation: u64) {
        self.started.push(operation);
    }

    /// A sync that returned after `operation` acknowledged the first
    /// `writes` writes.
    pub fn acknowledged(&mut self, operation: u64, writes: usize) {
        self.acked.push((operation, writes));
    }

    /// How many writes were acknowledged, and how many appended at most,
    /// for a cut before `operation`.
    pub fn bounds_at(&self, operation: u64) -> (usize, usize) {
        let acked = self
            .acked
            .iter()
            .filter(|(returned, _)| *returned <= operation)
            .map(|(_, writes)| *writes)
            .max()
            .unwrap_or(0);
        // A write that needs no operation (an empty one) may be
        // acknowledged at the very operation its append started at.
        let appended = self.started.partition_point(|&start| start < operation);
        (acked, appended.max(acked))
    }
}

/// Which prefix of the writes a recovered state is: `states[n]` is the
/// state after the first `n` writes, at least `acked` of which were
/// acknowledged and at most `appended` handed to the storage. The answer is
/// the `n` (the first that fits), or a message saying what was lost.
pub fn recovered_prefix<S: PartialEq>(
    states: &[S],
    acked: usize,
    appended: usize,
    recovered: &S,
) -> Result<usize, String> {
    let upper = appended.min(states.len() - 1);
    if let Some(n) = (acked..=upper).find(|&n| states[n] == *recovered) {
        return Ok(n);
    }
    let lost = (0..acked)
        .rev()
        .find(|&n| states[n] == *recovered)
        .map_or("a state no prefix of the writes gives".to_owned(), |n| {
            format!("the state after {n} writes")
        });
    Err(format!(
        "{acked} writes were acknowledged, at most {upper} appended, but recovery gave {lost}"
    ))
}
