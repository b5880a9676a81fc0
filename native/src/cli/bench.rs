//! `distribkv-native bench`: a closed-loop load generator.
//!
//! `--clients` sessions run concurrently, each with its own clerk (so every
//! write goes through the same exactly-once path as any client), sharing a
//! few QUIC connections. Each session opens its session and warms up first;
//! then all start together and, until the duration is over, issue one
//! operation at a time: a linearizable `get` with probability `--reads`,
//! else a `put` of `--value-size` bytes, on a key drawn uniformly from
//! `--keys` keys of 8 bytes (`k0000042`). Every operation's latency, from
//! start to answer, goes into an HDR histogram.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use distribkv_core::kv::Operation;
use distribkv_core::rng::Rng;
use hdrhistogram::Histogram;

use super::{CliError, ClusterArgs};
use crate::kv_client::{self, KvSession, SessionTiming};
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
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Bytes per written value.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Fraction of operations that are reads (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub reads: f64,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// QUIC connections shared by the clients (default: one per 64
    /// clients, at least 1, at most 8).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
}

/// What one client measured.
struct Tally {
    latencies: Histogram<u64>,
    ops: u64,
    errors: u64,
    last_error: Option<String>,
}

/// Runs the benchmark and prints the summary.
pub async fn run(args: &BenchArgs) -> Result<u8, CliError> {
    if !(0.0..=1.0).contains(&args.reads) {
        return Err(CliError::Demo(format!(
            "--reads {} must be between 0.0 and 1.0",
            args.reads
        )));
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err(CliError::Demo(format!(
            "--duration {} must be a positive number of seconds",
            args.duration
        )));
    }
    let value = Bytes::from(vec![b'v'; args.value_size]);
    kv_client::validate(&Operation::Put {
        key: Bytes::from_static(b"k0000000"),
        value: value.clone(),
    })?;
    let servers = crate::addr::parse_address_list(&args.cluster.cluster)?;
    let certs = CertSet::load(&args.cluster.certs)?;
    let connections = args
        .connections
        .unwrap_or((args.clients as usize).div_ceil(64).clamp(1, 8))
        .max(1);
    let mut transports = Vec::new();
    for _ in 0..connections {
        transports.push(Arc::new(kv_client::connect(servers.clone(), &certs)?));
    }

    let clients = args.clients as usize;
    let timing = SessionTiming {
        attempt_timeout_ms: 2000,
        ..SessionTiming::default()
    };
    let done = Arc::new(AtomicU64::new(0));
    let start_gate = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let duration = Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let transport = transports[client % connections].clone();
        let seed = crate::transport::random_u64();
        let gate = start_gate.clone();
        let done = done.clone();
        let value = value.clone();
        let (keys, reads) = (args.keys, args.reads);
        tasks.push(tokio::spawn(async move {
            let mut session = KvSession::new(transport, timing, seed);
            let mut rng = Rng::new(seed);
            // Opens the session (a registration) and the connection.
            let warm_up = session
                .execute(Operation::Get {
                    key: Bytes::from_static(b"k0000000"),
                })
                .await;
            gate.wait().await;
            let mut tally = Tally {
                latencies: Histogram::new_with_bounds(1, 60_000_000, 3)
                    .expect("valid histogram bounds"),
                ops: 0,
                errors: 0,
                last_error: warm_up.err().map(|e| e.to_string()),
            };
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                let key = Bytes::from(format!("k{:07}", rng.index(keys as usize)));
                let operation = if rng.chance(reads) {
                    Operation::Get { key }
                } else {
                    Operation::Put {
                        key,
                        value: value.clone(),
                    }
                };
                let started = Instant::now();
                match session.execute(operation).await {
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
        }));
    }
    start_gate.wait().await;
    let started = Instant::now();
    let progress = show_progress(done.clone(), duration);
    let mut latencies =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let (mut ops, mut errors, mut last_error) = (0u64, 0u64, None);
    for task in tasks {
        let tally = task
            .await
            .map_err(|error| CliError::Demo(format!("a client task failed: {error}")))?;
        latencies
            .add(&tally.latencies)
            .map_err(|error| CliError::Demo(error.to_string()))?;
        ops += tally.ops;
        errors += tally.errors;
        last_error = tally.last_error.or(last_error);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
        let _ = progress.await;
    }
    for transport in &transports {
        transport.close().await;
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    let quantile = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            ms(latencies.value_at_quantile(q))
        }
    };
    let ops_per_sec = ops as f64 / seconds;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let summary = serde_json::json!({
            "ops": ops,
            "seconds": round3(seconds),
            "opsPerSec": round3(ops_per_sec),
            "p50Ms": round3(quantile(0.5)),
            "p90Ms": round3(quantile(0.9)),
            "p99Ms": round3(quantile(0.99)),
            "maxMs": round3(if latencies.is_empty() { 0.0 } else { ms(latencies.max()) }),
            "errors": errors,
            "clients": args.clients,
            "connections": connections,
            "valueSize": args.value_size,
            "keys": args.keys,
            "reads": args.reads,
        });
        writeln!(stdout, "{summary}")?;
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
        writeln!(stdout, "ops        {ops}")?;
        writeln!(stdout, "seconds    {seconds:.2}")?;
        writeln!(stdout, "ops/s      {ops_per_sec:.0}")?;
        writeln!(
            stdout,
            "latency    p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            quantile(0.5),
            quantile(0.9),
            quantile(0.99),
            if latencies.is_empty() {
                0.0
            } else {
                ms(latencies.max())
            }
        )?;
        writeln!(stdout, "errors     {errors}")?;
    }
    stdout.flush()?;
    if let Some(error) = last_error.filter(|_| errors > 0 || ops == 0) {
        eprintln!("last error: {error}");
    }
    Ok(if ops == 0 { 2 } else { 0 })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A progress bar on stderr, only when it is a terminal.
fn show_progress(done: Arc<AtomicU64>, duration: Duration) -> Option<tokio::task::JoinHandle<()>> {
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
