//! The distribkv-native command line. See `distribkv-native --help` and the
//! [`distribkv_native::cli`] module for the exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use distribkv_core::kv::Operation;
use distribkv_native::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_node = matches!(
        cli.command,
        Command::Server(_) | Command::Demo(_) | Command::Certs(_)
    );
    // Servers log at info by default, client commands only warnings; their
    // failures exit 1, a client-side failure exits 2.
    let default_filter = if is_node { "info" } else { "warn" };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(if is_node { 1 } else { 2 })
        }
    }
}

fn run(command: Command) -> anyhow::Result<u8> {
    if let Command::Certs(args) = &command {
        cli::certs(args)?;
        return Ok(0);
    }
    let runtime = runtime(&command).context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let code = match command {
            Command::Certs(_) => 0,
            Command::Server(args) => {
                cli::server::run(&args).await?;
                0
            }
            Command::Put(args) => {
                let operation = Operation::Put {
                    key: args.key.into_bytes().into(),
                    value: args.value.into_bytes().into(),
                };
                cli::client::one_shot(&args.cluster, operation).await?
            }
            Command::Append(args) => {
                let operation = Operation::Append {
                    key: args.key.into_bytes().into(),
                    value: args.value.into_bytes().into(),
                };
                cli::client::one_shot(&args.cluster, operation).await?
            }
            Command::Get(args) => {
                let operation = Operation::Get {
                    key: args.key.into_bytes().into(),
                };
                cli::client::one_shot(&args.cluster, operation).await?
            }
            Command::Delete(args) => {
                let operation = Operation::Delete {
                    key: args.key.into_bytes().into(),
                };
                cli::client::one_shot(&args.cluster, operation).await?
            }
            Command::Client(args) => cli::client::line_client(&args).await?,
            Command::Status(args) => cli::client::status(&args).await?,
            Command::Bench(args) => cli::bench::run(&args).await?,
            Command::Demo(args) => {
                cli::demo::run(&args).await?;
                0
            }
        };
        Ok(code)
    })
}

/// The async runtime for `command`.
///
/// A server runs on one thread (its storage worker has a thread of its
/// own): on a small machine shared by several nodes, waking tasks across
/// worker threads cost more than it gained (measured with `bench`, see
/// docs/BENCHMARKS.md). Client commands and `bench` use two worker threads.
/// `DISTRIBKV_WORKER_THREADS` overrides both (1 selects the single-threaded
/// runtime).
fn runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let default = match command {
        Command::Server(_) => 1,
        _ => 2,
    };
    let threads = std::env::var("DISTRIBKV_WORKER_THREADS")
        .ok()
        .and_then(|text| text.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default);
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
