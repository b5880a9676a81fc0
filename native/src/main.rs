//! The distribkv-native command line. See `distribkv-native --help` and the
//! [`distribkv_native::cli`] module for the exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use distribkv_native::cli::{self, Cli, CliError, Command, note};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_node = cli.command.is_node();
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
    let outcome = match runtime(&cli.command) {
        Ok(runtime) => runtime.block_on(cli::run(&cli.command)),
        Err(error) => {
            note(format_args!(
                "error: cannot start the async runtime: {error}"
            ));
            return ExitCode::from(if is_node { 1 } else { 2 });
        }
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(CliError::Arguments(error)) => error.exit(),
        // The reader of the output went away (`| head`): nothing to say.
        Err(error @ CliError::Io(_)) if error.is_broken_pipe() => {
            ExitCode::from(error.exit_code(is_node))
        }
        Err(error) => {
            note(format_args!("error: {error}"));
            ExitCode::from(error.exit_code(is_node))
        }
    }
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
