//! Watching a cluster through `status --json`: every node's status line,
//! the leader they agree on, and waiting for a leader, an applied index or a
//! converged cluster.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Cluster, Hosts, StatusLine};

/// How long one `status` command may take before it is killed: each node
/// gets 5 s to answer, in parallel.
const STATUS_LIMIT: Duration = Duration::from_secs(15);

impl<H: Hosts> Cluster<H> {
    /// The status of every node that answers, by id.
    pub fn status(&self) -> Vec<StatusLine> {
        let Ok(mut child) = self
            .client_command("status")
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            return Vec::new();
        };
        let mut output = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = output.read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        while started.elapsed() < STATUS_LIMIT {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = reader.join().unwrap_or_default();
        let mut statuses: Vec<StatusLine> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        statuses.sort_by_key(|s| s.id);
        statuses
    }

    /// Node `id`'s status, if it answers.
    pub fn status_of(&self, id: usize) -> Option<StatusLine> {
        self.status().into_iter().find(|s| s.id == id as u64)
    }

    /// The leader a majority of the current members agrees on (same term),
    /// if any.
    pub fn agreed_leader(&self, statuses: &[StatusLine]) -> Option<usize> {
        let is_member = |s: &&StatusLine| self.current.contains(&(s.id as usize));
        let leader = statuses
            .iter()
            .filter(is_member)
            .find(|s| s.role == "leader")?;
        let agreeing = statuses
            .iter()
            .filter(is_member)
            .filter(|s| s.leader == Some(leader.id) && s.term == leader.term)
            .count();
        (agreeing * 2 > self.current.len()).then_some(leader.id as usize)
    }

    /// Waits up to `limit` for a leader a majority agrees on.
    pub fn wait_for_leader(&self, limit: Duration) -> Option<usize> {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.agreed_leader(&self.status()) {
                return Some(leader);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The leader a majority agrees on within `limit`; panics without one.
    pub fn leader(&self, limit: Duration) -> usize {
        self.wait_for_leader(limit).unwrap_or_else(|| {
            panic!(
                "no leader within {limit:?}:\n{}",
                render_statuses(&self.status())
            )
        })
    }

    /// Waits until node `id` has applied at least `index`; panics after `limit`.
    pub fn wait_applied(&self, id: usize, index: u64, limit: Duration) -> StatusLine {
        let started = Instant::now();
        loop {
            if let Some(status) = self.status_of(id)
                && status.applied_index >= index
            {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "node {id} did not apply {index} within {limit:?}:\n{}",
                render_statuses(&self.status())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `limit` until every current member answers, a leader is
    /// agreed on by all, nothing is left uncommitted, and every member has
    /// applied the same index with the same state fingerprint. Returns the
    /// statuses, or the last ones seen as the error.
    pub fn wait_converged(&self, limit: Duration) -> Result<Vec<StatusLine>, String> {
        let started = Instant::now();
        loop {
            let mut statuses = self.status();
            statuses.retain(|s| self.current.contains(&(s.id as usize)));
            if converged(&statuses, self.current.len()) {
                return Ok(statuses);
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "not converged within {limit:?}; last statuses:\n{}",
                    render_statuses(&statuses)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// True if `statuses` show one leader for all `size` nodes and identical,
/// fully applied state everywhere.
pub fn converged(statuses: &[StatusLine], size: usize) -> bool {
    if statuses.len() != size {
        return false;
    }
    let Some(leader) = statuses.iter().find(|s| s.role == "leader") else {
        return false;
    };
    let first = &statuses[0];
    statuses.iter().all(|s| {
        s.leader == Some(leader.id)
            && s.term == leader.term
            && s.commit_index == s.applied_index
            && s.applied_index == first.applied_index
            && s.fingerprint == first.fingerprint
    }) && leader.last_index == leader.commit_index
}

/// One line per status (the plain `status` format, with the fingerprint).
pub fn render_statuses(statuses: &[StatusLine]) -> String {
    if statuses.is_empty() {
        return "  (no node answered)".into();
    }
    statuses
        .iter()
        .map(|s| format!("  {} fingerprint {:016x}", s.text(), s.fingerprint))
        .collect::<Vec<_>>()
        .join("\n")
}
