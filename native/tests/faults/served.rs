//! Whether the followers answered reads. A run whose clients read with
//! `--follower-reads` must see some read answered by a node that was not
//! the leader, and a run whose clients read at the leaders none: otherwise
//! the option would be tested by histories that never exercised it.
//!
//! Each server of the run serves its metrics at [`METRICS_ARGS`]'s address
//! inside its own namespace (the same address in each, as on separate
//! machines), and a look sums `distribkv_server_follower_reads_served_total`
//! over the running nodes. The counter starts again at 0 when a node
//! restarts, so the runs look after every fault, once it is healed and the
//! clients have worked a while, and at the end.

use super::NsCluster;
use super::harness::Hosts;

/// The servers' metrics address, the same inside every node's namespace.
pub const METRICS_ARGS: [&str; 2] = ["--metrics-addr", "127.0.0.1:9101"];

/// The counter's sample in the Prometheus text.
const SAMPLE: &str = "distribkv_server_follower_reads_served_total ";

/// What the looks saw.
#[derive(Debug, Default)]
pub struct Served {
    /// The sum over the nodes that answered, at each look.
    looks: Vec<u64>,
    /// Nodes that answered a look.
    answered: usize,
    /// Nodes that did not answer a look (starting, or stopped).
    unanswered: usize,
}

impl Served {
    /// Reads every running node's counter (at most 5 s each).
    pub fn look(&mut self, cluster: &NsCluster) {
        let mut sum = 0;
        for id in 1..=cluster.hosts.size() {
            if !cluster.is_running(id) {
                continue;
            }
            match served_by(cluster, id) {
                Some(count) => {
                    sum += count;
                    self.answered += 1;
                }
                None => self.unanswered += 1,
            }
        }
        self.looks.push(sum);
    }

    /// A finding unless the counters agree with where the clients read.
    pub fn check(&self, at_followers: bool, findings: &mut Vec<String>) {
        if self.answered == 0 {
            findings.push(format!(
                "follower reads: no node's metrics answered ({})",
                self.render()
            ));
            return;
        }
        let most = self.looks.iter().copied().max().unwrap_or(0);
        if at_followers && most == 0 {
            findings.push(format!(
                "follower reads: the clients read with --follower-reads, yet no node \
                 answered one while not the leader ({})",
                self.render()
            ));
        }
        if !at_followers && most > 0 {
            findings.push(format!(
                "follower reads: the clients read at the leaders, yet followers answered \
                 reads ({})",
                self.render()
            ));
        }
    }

    /// The looks, for the report.
    pub fn render(&self) -> String {
        format!(
            "follower reads served, summed over the running nodes at each look: {:?}; \
             {} answer(s), {} node(s) did not answer a look",
            self.looks, self.answered, self.unanswered
        )
    }
}

/// Node `id`'s counter, from `GET /metrics` inside its namespace.
fn served_by(cluster: &NsCluster, id: usize) -> Option<u64> {
    let port = METRICS_ARGS[1].rsplit(':').next()?;
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && \
         printf 'GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && \
         cat <&3"
    );
    let output = cluster
        .hosts
        .on_node(id, "timeout")
        .args(["5", "bash", "-c", &script])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix(SAMPLE))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}
