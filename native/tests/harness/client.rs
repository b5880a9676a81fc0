//! A `client --json` process driven one command line at a time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// One `client --json` process.
pub struct ClientProcess {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

impl ClientProcess {
    /// Spawns `command` (a `client --json` command line) with piped stdio.
    pub fn spawn(command: Command) -> ClientProcess {
        Self::spawn_logging(command, Stdio::null())
    }

    /// [`ClientProcess::spawn`], with the client's stderr (its log) going to
    /// `log`.
    pub fn spawn_logging(mut command: Command, log: impl Into<Stdio>) -> ClientProcess {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn a client");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (sender, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        ClientProcess {
            child,
            stdin,
            answers,
        }
    }

    /// Sends one command line; false if the process is gone.
    pub fn send(&mut self, line: &str) -> bool {
        writeln!(self.stdin, "{line}").is_ok() && self.stdin.flush().is_ok()
    }

    /// Sends one command line and waits for its answer: `None` if the process
    /// is gone, or after `limit`.
    pub fn request(&mut self, line: &str, limit: Duration) -> Option<serde_json::Value> {
        if self.send(line) {
            self.answer(limit)
        } else {
            None
        }
    }

    /// The next answer, parsed, or `None` after `limit` or if the process ended.
    pub fn answer(&mut self, limit: Duration) -> Option<serde_json::Value> {
        match self.answers.recv_timeout(limit) {
            Ok(line) => serde_json::from_str(&line).ok(),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
