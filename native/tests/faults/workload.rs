//! Concurrent clients and the history they record.
//!
//! Each worker thread drives one `distribkv-native client --json` process
//! (in the clients' namespace) over its stdin and stdout, one operation at
//! a time, and records every invocation and completion in a shared
//! [`History`] of the core's checker. An `{"ok":false}` answer, or no
//! answer within [`ANSWER_LIMIT`], leaves the outcome unknown; after a
//! missing answer the process is killed and a new one (a new session)
//! takes over.
//!
//! Keys `a0.E`, `a1.E`, `a2.E` only see appends and gets, so every
//! acknowledged append must be in their final value; `E` is the minute of
//! the run, so that a soak's values stay far below the 1 MiB value limit
//! (and cheap to check). Keys `m0`, `m1` see puts, appends, deletes and
//! gets. Append tokens (`[c3.17]`: client 3, its 17th
//! operation) and put values (`p3.18`) are unique and never contain one
//! another, as the exactly-once check needs.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use distribkv_core::check::{History, OpKind, Operation};

use super::harness::ClientProcess;
use super::rng::Rng;

/// Keys that only see appends and gets (with the minute appended: `a0.3`).
pub const APPEND_KEYS: [&str; 3] = ["a0", "a1", "a2"];
/// Keys that see every kind of operation.
pub const MIXED_KEYS: [&str; 2] = ["m0", "m1"];
/// The append-only keys move on to new names this often.
pub const KEY_EPOCH: Duration = Duration::from_secs(60);

/// True for the append-only keys (`a0.3`), false for `m0`.
pub fn is_append_only(key: &[u8]) -> bool {
    key.first() == Some(&b'a')
}

/// How long a worker waits for an answer before it gives the operation up
/// as unknown (the client itself gives up after 15 s and answers
/// `{"ok":false}`).
pub const ANSWER_LIMIT: Duration = Duration::from_secs(20);

/// How an operation ended, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Acknowledged.
    Ok,
    /// `{"ok":false}`: outcome unknown.
    Error,
    /// No answer in time (or the client died): outcome unknown.
    NoAnswer,
}

/// The shared history, with times in microseconds since `t0`.
pub struct Recorder {
    t0: Instant,
    history: Mutex<History>,
    /// `endings[id]`, once settled.
    endings: Mutex<Vec<Option<Ending>>>,
}

impl Recorder {
    /// An empty history starting now.
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            t0: Instant::now(),
            history: Mutex::new(History::new()),
            endings: Mutex::new(Vec::new()),
        })
    }

    /// Microseconds since the start.
    pub fn now(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    /// Records an invocation now; returns its id.
    pub fn invoke(&self, client: u64, key: &str, kind: OpKind) -> u64 {
        let mut history = self.history.lock().unwrap();
        let id = history.invoke(client, key, kind, self.now());
        self.endings.lock().unwrap().push(None);
        id
    }

    /// Records an acknowledgement now (`value`: what a get read).
    pub fn complete(&self, id: u64, value: Option<Vec<u8>>) {
        let at = self.now();
        self.history
            .lock()
            .unwrap()
            .complete(id, at, value)
            .expect("a well-formed history");
        self.endings.lock().unwrap()[id as usize] = Some(Ending::Ok);
    }

    /// Records an unknown outcome.
    pub fn fail(&self, id: u64, ending: Ending) {
        self.history
            .lock()
            .unwrap()
            .fail_unknown(id)
            .expect("a well-formed history");
        self.endings.lock().unwrap()[id as usize] = Some(ending);
    }

    /// Every operation so far (pending ones with an unknown outcome).
    pub fn operations(&self) -> Vec<Operation> {
        self.history.lock().unwrap().operations().to_vec()
    }

    /// How each operation ended (`None`: still pending).
    pub fn endings(&self) -> Vec<Option<Ending>> {
        self.endings.lock().unwrap().clone()
    }
}

/// What a worker does between operations.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Pause after each operation, up to this many ms (uniform).
    pub max_think_ms: u64,
}

/// Running workers.
pub struct Workload {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// The history they record.
    pub recorder: Arc<Recorder>,
}

impl Workload {
    /// Starts `clients` workers; `command` makes a `client --json` command
    /// line; operations are drawn from `rng`'s sub-streams.
    pub fn start(
        clients: usize,
        rng: &Rng,
        pace: Pace,
        command: impl Fn() -> Command + Send + Sync + 'static,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Recorder::new();
        let command = Arc::new(command);
        let workers = (1..=clients as u64)
            .map(|client| {
                let stop = stop.clone();
                let recorder = recorder.clone();
                let command = command.clone();
                let rng = rng.fork(client);
                std::thread::spawn(move || {
                    run_worker(client, rng, pace, &*command, &recorder, &stop);
                })
            })
            .collect();
        Workload {
            stop,
            workers,
            recorder,
        }
    }

    /// Asks every worker to stop after its current operation and waits for them.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The next operation of client `client` in minute `epoch`: key, kind,
/// command line.
fn next_operation(rng: &mut Rng, client: u64, n: u64, epoch: u64) -> (String, OpKind, String) {
    let token = format!("[c{client}.{n}]");
    let value = format!("p{client}.{n}");
    if rng.chance(0.6) {
        let key = format!("{}.{epoch}", rng.pick(&APPEND_KEYS));
        if rng.chance(0.55) {
            let line = format!("append {key} {token}");
            (key, OpKind::Append(token.into_bytes()), line)
        } else {
            let line = format!("get {key}");
            (key, OpKind::Get, line)
        }
    } else {
        let key = rng.pick(&MIXED_KEYS).to_string();
        match rng.below(10) {
            0..=2 => {
                let line = format!("put {key} {value}");
                (key, OpKind::Put(value.into_bytes()), line)
            }
            3..=5 => {
                let line = format!("append {key} {token}");
                (key, OpKind::Append(token.into_bytes()), line)
            }
            6 => {
                let line = format!("delete {key}");
                (key, OpKind::Delete, line)
            }
            _ => {
                let line = format!("get {key}");
                (key, OpKind::Get, line)
            }
        }
    }
}

/// Environment variable: a folder where each worker's client processes
/// append their log (stderr), `client-<n>.log`; with `RUST_LOG` (for example
/// `distribkv_native=debug`) it shows every attempt and connection.
const CLIENT_LOGS_VARIABLE: &str = "DISTRIBKV_FAULT_CLIENT_LOGS";

/// Worker `client`'s log file, if [`CLIENT_LOGS_VARIABLE`] asks for one.
fn client_log(client: u64) -> Option<std::fs::File> {
    let dir = std::path::PathBuf::from(std::env::var_os(CLIENT_LOGS_VARIABLE)?);
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("client-{client}.log")))
        .ok()
}

fn run_worker(
    client: u64,
    mut rng: Rng,
    pace: Pace,
    command: &dyn Fn() -> Command,
    recorder: &Recorder,
    stop: &AtomicBool,
) {
    let spawn = |command: Command| match client_log(client) {
        Some(log) => ClientProcess::spawn_logging(command, log),
        None => ClientProcess::spawn(command),
    };
    let mut process = spawn(command());
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let epoch = recorder.now() / KEY_EPOCH.as_micros() as u64;
        let (key, kind, line) = next_operation(&mut rng, client, n, epoch);
        let is_get = kind == OpKind::Get;
        let id = recorder.invoke(client, &key, kind);
        let answer = process.request(&line, ANSWER_LIMIT);
        match answer {
            Some(answer) if answer["ok"] == true => {
                let value = if is_get {
                    answer["value"].as_str().map(|v| v.as_bytes().to_vec())
                } else {
                    None
                };
                recorder.complete(id, value);
            }
            Some(_) => recorder.fail(id, Ending::Error),
            None => {
                recorder.fail(id, Ending::NoAnswer);
                // A new session: the old process may still be retrying.
                process = spawn(command());
            }
        }
        if pace.max_think_ms > 0 {
            std::thread::sleep(Duration::from_millis(rng.below(pace.max_think_ms + 1)));
        }
    }
}
