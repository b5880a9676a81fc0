//! `distribkv-native bench`: a load generator, closed-loop or at a fixed rate.
//!
//! `--clients` sessions run concurrently, each with its own clerk (so every
//! write goes through the same exactly-once path as any client), sharing a
//! few QUIC connections. Each session warms up first (its connection opens);
//! then all start together and, until the duration is over, issue one
//! operation at a time: a linearizable `get` with probability `--reads`,
//! else a `put` of `--value-size` bytes, on a key drawn uniformly from
//! `--keys` keys of 8 bytes (`k0000042`). Every operation's latency, from
//! start to answer, goes into an HDR histogram.
//!
//! Without `--rate` each session sends its next operation as soon as the
//! last is answered (closed loop: the cluster's best throughput for that
//! many clients). With `--rate R` the sessions share a schedule of R
//! operations per second, each taking every `clients`-th slot; a session
//! waits for its next slot, and one that is late sends at once. An
//! operation's latency then counts from its slot, not from when it was
//! sent, so a cluster that cannot keep up shows it in the latencies
//! instead of slowing the load down (no coordinated omission). This gives
//! latency at a given load, and CPU per operation compared at equal load.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use distribkv_core::kv::{MAX_VALUE_BYTES, Operation};
use distribkv_core::rng::Rng;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

use super::client::{AnySession, Connected};
use super::{CliError, ClusterArgs};
use crate::kv_client::{KvCluster, KvSession, SessionTiming, ValidOperation};
use crate::shard::client::{ShardTiming, ShardedSession};
use crate::tls::CertSet;

/// `bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Concurrent clients (sessions), each with one operation in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub clients: u64,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_duration)]
    pub duration: f64,
    /// Bytes per written value.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(0..=MAX_VALUE_BYTES as u64))]
    pub value_size: u64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Operations per second for all clients together, on a fixed
    /// schedule (default: none, each client sends as soon as it is answered).
    #[arg(long, value_name = "OPS", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Fraction of operations that are reads (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub reads: f64,
    /// Read routing: `--follower-reads` spreads the reads over every node.
    #[command(flatten)]
    pub read_routing: super::ReadArgs,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// QUIC connections shared by the clients, 1 to 1024 (default: one per 64
    /// clients, at least 1, at most 8). Against a sharded cluster N is the
    /// number of clerks, each connected to every host; its default is the
    /// same number divided by the number of hosts, rounded up, so that
    /// about as many connections are open in all.
    #[arg(long, value_name = "N", value_parser = parse_connections)]
    pub connections: Option<usize>,
}

/// The longest `--duration`, seconds (a year): far beyond any benchmark,
/// and short enough that the deadline, now plus the duration, is a time
/// the clock can represent.
const MAX_DURATION_SECS: f64 = 365.0 * 24.0 * 3600.0;

fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if seconds > 0.0 && seconds <= MAX_DURATION_SECS {
        Ok(seconds)
    } else {
        Err(format!(
            "must be a positive number of seconds, at most {MAX_DURATION_SECS} (a year)"
        ))
    }
}

/// The most `--connections` accepts: each is opened (a handshake with
/// every host) before the load starts, one after another.
const MAX_CONNECTIONS: usize = 1024;

fn parse_connections(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count) if (1..=MAX_CONNECTIONS).contains(&count) => Ok(count),
        _ => Err(format!(
            "must be a number of connections from 1 to {MAX_CONNECTIONS}"
        )),
    }
}

/// The most `--rate` accepts: a slot every microsecond for one client.
const MAX_RATE: f64 = 10_000_000.0;

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if rate > 0.0 && rate <= MAX_RATE {
        Ok(rate)
    } else {
        Err(format!(
            "must be a number of operations per second above 0, at most {MAX_RATE}"
        ))
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    let fraction: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&fraction) {
        Ok(fraction)
    } else {
        Err("must be between 0.0 and 1.0".into())
    }
}

/// Why the benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A client task panicked or was cancelled.
    #[error("a client task failed: {0}")]
    ClientTask(#[from] tokio::task::JoinError),
    /// The latency histograms could not be merged.
    #[error("cannot merge latency histograms: {0}")]
    Histogram(#[from] hdrhistogram::AdditionError),
}

/// What the clients measured, together.
struct Tally {
    latencies: Histogram<u64>,
    ops: u64,
    errors: u64,
    last_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // Invariant: 1 µs to 60 s at 3 significant digits is a valid range.
            latencies: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
            ops: 0,
            errors: 0,
            last_error: None,
        }
    }

    fn add(&mut self, other: Tally) -> Result<(), BenchError> {
        self.latencies.add(&other.latencies)?;
        self.ops += other.ops;
        self.errors += other.errors;
        self.last_error = other.last_error.or(self.last_error.take());
        Ok(())
    }

    /// The latency at quantile `q`, ms (0 without samples).
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            0.0
        } else {
            self.latencies.value_at_quantile(q) as f64 / 1000.0
        }
    }
}

/// What one client does: which keys, how many reads, what it writes.
#[derive(Clone)]
struct Load {
    keys: u64,
    reads: f64,
    follower_reads: bool,
    value: Bytes,
    duration: Duration,
    /// With `--rate`: the time between two slots of the whole schedule.
    slot: Option<Duration>,
    /// The number of clients (each takes every `clients`-th slot).
    clients: u64,
}

impl Load {
    /// The next operation, drawn from `rng`.
    fn next_operation(&self, rng: &mut Rng) -> Operation {
        let key = Bytes::from(format!("k{:07}", rng.index(self.keys as usize)));
        if rng.chance(self.reads) {
            Operation::Get { key }
        } else {
            Operation::Put {
                key,
                value: self.value.clone(),
            }
        }
    }
}

/// The `--json` summary: one object, fields in this order, camelCase.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    ops: u64,
    seconds: f64,
    ops_per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    clients: u64,
    connections: usize,
    value_size: u64,
    keys: u64,
    reads: f64,
    /// The `--rate` asked for (null: closed loop).
    rate: Option<f64>,
}

/// Runs the benchmark and prints the summary.
pub async fn run(args: &BenchArgs) -> Result<u8, CliError> {
    let transports = connect(args).await?;
    let load = Load {
        keys: args.keys,
        reads: args.reads,
        follower_reads: args.read_routing.follower_reads,
        value: Bytes::from(vec![b'v'; args.value_size as usize]),
        duration: Duration::from_secs_f64(args.duration),
        slot: args.rate.map(|rate| Duration::from_secs_f64(1.0 / rate)),
        clients: args.clients,
    };
    let done = Arc::new(AtomicU64::new(0));
    let start_gate = Arc::new(Barrier::new(args.clients as usize + 1));
    let tasks: Vec<JoinHandle<Tally>> = (0..args.clients as usize)
        .map(|client| {
            let transport = transports[client % transports.len()].clone();
            let client = run_client(
                client as u64,
                transport,
                load.clone(),
                start_gate.clone(),
                done.clone(),
            );
            tokio::spawn(client)
        })
        .collect();
    start_gate.wait().await;
    let started = Instant::now();
    let progress = show_progress(done, load.duration);
    let mut tally = Tally::new();
    for task in tasks {
        tally.add(task.await.map_err(BenchError::from)?)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
        let _ = progress.await;
    }
    for transport in &transports {
        transport.close().await;
    }
    print_summary(args, transports.len(), &tally, seconds)?;
    if let Some(error) = &tally.last_error
        && (tally.errors > 0 || tally.ops == 0)
    {
        crate::cli::note(format_args!("last error: {error}"));
    }
    Ok(if tally.ops == 0 { 2 } else { 0 })
}

/// The QUIC connections the clients share, to every member of the
/// cluster's configuration.
///
/// Against a sharded cluster, each client's operations are routed by key,
/// so the load spreads over every shard (and every group's leader).
async fn connect(args: &BenchArgs) -> Result<Vec<Connected>, CliError> {
    let servers = crate::addr::parse_address_list(&args.cluster.cluster)?;
    let certs = CertSet::load(&args.cluster.certs)?;
    let default = (args.clients as usize).div_ceil(64).clamp(1, 8);
    let detected = crate::shard::client::detect_kind(&servers, &certs).await?;
    if let crate::shard::client::Detected::Silent = detected {
        // Nothing to measure: say so now rather than after the duration of
        // every client's timeouts.
        return Err(CliError::Shard(format!(
            "no server answered at {} (are the servers running, and are the certificates \
             the cluster's?)",
            args.cluster.cluster
        )));
    }
    if let crate::shard::client::Detected::Sharded(cluster) = detected {
        let cluster = *cluster;
        // Each clerk holds a connection to every host: spread the default
        // number over the hosts, or each host's connections would carry a
        // fraction of its load each (one reply per packet, more packets and
        // more CPU per write on both sides; see docs/BENCHMARKS.md).
        let connections = args
            .connections
            .unwrap_or(default.div_ceil(cluster.hosts.len().max(1)))
            .max(1);
        let mut all = Vec::with_capacity(connections);
        for _ in 1..connections {
            all.push(Connected::Sharded(Arc::new(cluster.reconnect(&certs)?)));
        }
        all.push(Connected::Sharded(Arc::new(cluster)));
        return Ok(all);
    }
    let connections = args.connections.unwrap_or(default).max(1);
    let mut all = Vec::with_capacity(connections);
    for _ in 0..connections {
        let cluster = KvCluster::connect(servers.clone(), &certs).await?;
        all.push(Connected::Single(Arc::new(cluster)));
    }
    Ok(all)
}

/// One client, number `index`: warms up, waits at `start_gate` for the
/// others, then runs operations one at a time until the load's duration is
/// over (with a rate, in its slots: `index`, `index + clients`, ...).
async fn run_client(
    index: u64,
    cluster: Connected,
    load: Load,
    start_gate: Arc<Barrier>,
    done: Arc<AtomicU64>,
) -> Tally {
    let seed = crate::transport::random_u64();
    let timing = SessionTiming {
        attempt_timeout_ms: 2000,
        ..SessionTiming::default()
    };
    let mut session = match cluster {
        Connected::Single(cluster) => AnySession::Single(KvSession::new(cluster, timing, seed)),
        Connected::Sharded(cluster) => AnySession::Sharded(ShardedSession::new(
            cluster,
            ShardTiming {
                retry_ms: 2000,
                ..ShardTiming::default()
            },
            seed,
        )),
    };
    session.set_follower_reads(load.follower_reads);
    let mut rng = Rng::new(seed);
    let mut tally = Tally::new();
    // Opens the connection. Invariant: a get of an 8-byte key is valid.
    let warm_up = ValidOperation::new(Operation::Get {
        key: Bytes::from_static(b"k0000000"),
    })
    .expect("a valid get");
    tally.last_error = session.execute(warm_up).await.err().map(|e| e.to_string());
    start_gate.wait().await;
    let start = Instant::now();
    let deadline = start + load.duration;
    let mut schedule = load
        .slot
        .map(|slot| Schedule::new(start, slot, index, load.clients));
    while Instant::now() < deadline {
        let started = match &mut schedule {
            None => Instant::now(),
            Some(schedule) => {
                let due = schedule.next_due();
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                due
            }
        };
        let outcome = match ValidOperation::new(load.next_operation(&mut rng)) {
            Ok(operation) => session.execute(operation).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(_) => {
                let micros = started.elapsed().as_micros() as u64;
                tally.latencies.saturating_record(micros.max(1));
                tally.ops += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tally.errors += 1;
                tally.last_error = Some(error.to_string());
            }
        }
    }
    tally
}

/// One client's slots in a schedule of one slot every `slot`, shared by
/// `clients` clients: slot `index`, `index + clients`, and so on from
/// `start`. Due times are computed from the start, not from the previous
/// one, so that a client running late does not shift the rest.
struct Schedule {
    start: Instant,
    slot: Duration,
    clients: u64,
    /// The number of this client's next slot in the whole schedule.
    next: u64,
}

impl Schedule {
    fn new(start: Instant, slot: Duration, index: u64, clients: u64) -> Schedule {
        Schedule {
            start,
            slot,
            clients: clients.max(1),
            next: index,
        }
    }

    /// When this client's next operation is due; moves on to the one after.
    fn next_due(&mut self) -> Instant {
        let due = self.start + self.slot.mul_f64(self.next as f64);
        self.next += self.clients;
        due
    }
}

/// Prints the summary: one JSON object with `--json`, else text.
fn print_summary(
    args: &BenchArgs,
    connections: usize,
    tally: &Tally,
    seconds: f64,
) -> Result<(), CliError> {
    let max_ms = if tally.latencies.is_empty() {
        0.0
    } else {
        tally.latencies.max() as f64 / 1000.0
    };
    let summary = Summary {
        ops: tally.ops,
        seconds: round3(seconds),
        ops_per_sec: round3(tally.ops as f64 / seconds),
        p50_ms: round3(tally.quantile_ms(0.5)),
        p90_ms: round3(tally.quantile_ms(0.9)),
        p99_ms: round3(tally.quantile_ms(0.99)),
        max_ms: round3(max_ms),
        errors: tally.errors,
        clients: args.clients,
        connections,
        value_size: args.value_size,
        keys: args.keys,
        reads: args.reads,
        rate: args.rate,
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&summary)?)?;
    } else {
        writeln!(
            stdout,
            "{} clients, {:.0}% reads, {}-byte values, {} keys, {} connections",
            args.clients,
            args.reads * 100.0,
            args.value_size,
            args.keys,
            connections
        )?;
        if let Some(rate) = args.rate {
            writeln!(
                stdout,
                "rate       {rate} ops/s asked (latency counts from each operation's slot)"
            )?;
        }
        writeln!(stdout, "ops        {}", summary.ops)?;
        writeln!(stdout, "seconds    {seconds:.2}")?;
        writeln!(stdout, "ops/s      {:.0}", tally.ops as f64 / seconds)?;
        writeln!(
            stdout,
            "latency    p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            tally.quantile_ms(0.5),
            tally.quantile_ms(0.9),
            tally.quantile_ms(0.99),
            max_ms
        )?;
        writeln!(stdout, "errors     {}", summary.errors)?;
    }
    stdout.flush()?;
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A progress bar on stderr, only when it is a terminal.
fn show_progress(done: Arc<AtomicU64>, duration: Duration) -> Option<JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let elapsed = started.elapsed();
            let ops = done.load(Ordering::Relaxed);
            bar.set_position(elapsed.as_millis().min(duration.as_millis()) as u64);
            bar.set_message(format!(
                "{ops} ops, {:.0} ops/s",
                ops as f64 / elapsed.as_secs_f64().max(0.001)
            ));
            if elapsed >= duration {
                bar.finish_and_clear();
                break;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_takes_every_clients_th_slot_counted_from_the_start() {
        let start = Instant::now();
        let slot = Duration::from_micros(250);
        let mut second = Schedule::new(start, slot, 1, 4);
        let due: Vec<Duration> = (0..3).map(|_| second.next_due() - start).collect();
        assert_eq!(
            due,
            [250, 1250, 2250].map(Duration::from_micros),
            "slots 1, 5 and 9"
        );
        // All four clients together cover every slot once.
        let mut all: Vec<Duration> = (0..4)
            .flat_map(|index| {
                let mut schedule = Schedule::new(start, slot, index, 4);
                (0..3).map(move |_| schedule.next_due() - start)
            })
            .collect();
        all.sort();
        let expected: Vec<Duration> = (0..12).map(|n| slot * n).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn rates_must_be_positive_and_bounded() {
        assert_eq!(parse_rate("2500"), Ok(2500.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for bad in ["0", "-3", "nan", "inf", "1e9", "fast", ""] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn connections_must_be_positive_and_bounded() {
        assert_eq!(parse_connections("1"), Ok(1));
        assert_eq!(parse_connections("1024"), Ok(1024));
        for bad in ["0", "1025", "18446744073709551615", "-1", "many", ""] {
            assert!(parse_connections(bad).is_err(), "{bad:?} accepted");
        }
        // From the command line: 0 was taken as 1, and u64::MAX made
        // `connect` panic reserving room for that many.
        use clap::Parser as _;
        for bad in ["0", "18446744073709551615"] {
            let args = [
                "distribkv-native",
                "bench",
                "--cluster",
                "127.0.0.1:1",
                "--certs",
                "c",
                "--connections",
                bad,
            ];
            let error = crate::cli::Cli::try_parse_from(args)
                .unwrap_err()
                .to_string();
            assert!(error.contains("--connections"), "{bad}: {error}");
        }
    }

    #[test]
    fn durations_must_be_positive_and_fit_the_clock() {
        assert_eq!(parse_duration("10"), Ok(10.0));
        assert_eq!(parse_duration("0.5"), Ok(0.5));
        assert_eq!(parse_duration("31536000"), Ok(MAX_DURATION_SECS));
        for bad in [
            "0", "-1", "nan", "inf", "1e30", "1e19", "31536001", "long", "",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
