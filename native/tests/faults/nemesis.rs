//! The nemesis: a seeded schedule of faults, and their injection.
//!
//! [`plan`] turns a seed into a list of faults with how long each is held
//! and how long the cluster is left alone afterwards. Every kind of fault
//! appears once, in a seeded order, and more follow at random until the
//! planned time is used up. Which nodes a fault hits is part of the plan,
//! except "the leader", which is looked up when the fault starts; a planned
//! node is a position in the current member list (`Cluster::current`), so a
//! plan stays valid after a member was replaced. The same
//! seed gives the same schedule; the cluster's reaction to it (elections,
//! timing) is real and varies from run to run.

use std::fmt;
use std::time::Duration;

use std::process::Stdio;

use super::NsCluster;
use super::harness::{BINARY, Hosts};
use super::relay::LinkFaults;
use super::rng::Rng;

/// Who a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Whichever node leads when the fault starts.
    Leader,
    /// This node.
    Node(usize),
}

/// One fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `minority` | everyone else, both ways.
    Partition {
        /// The smaller side.
        minority: Vec<usize>,
    },
    /// `left` and `right` cannot talk to each other; `bridge` talks to both.
    Bridge {
        /// One side.
        left: Vec<usize>,
        /// The node that sees both sides.
        bridge: usize,
        /// The other side.
        right: Vec<usize>,
    },
    /// The leader | everyone else, both ways.
    IsolateLeader,
    /// One direction only: `target` hears nobody (`deaf`), or nobody hears it.
    OneWay {
        /// The node.
        target: Target,
        /// Whether it is the target's incoming traffic that is lost.
        deaf: bool,
    },
    /// Every node drops each incoming datagram with this probability.
    Loss {
        /// Per datagram.
        probability: f64,
    },
    /// kill -9, restarted (same data folder) when the fault ends.
    KillRestart {
        /// The node.
        target: Target,
    },
    /// SIGSTOP, SIGCONT when the fault ends.
    Pause {
        /// The node.
        target: Target,
    },
    /// kill -9 of every node at once, all restarted when the fault ends.
    CrashAll,
    /// The relay delays every datagram on the links of `target` (both
    /// ways), or on every link: `delay_ms` plus up to `jitter_ms`.
    SlowLinks {
        /// Whose links; `None`: every link.
        target: Option<Target>,
        /// Fixed delay, ms (up to 500).
        delay_ms: u64,
        /// Extra uniform delay, ms.
        jitter_ms: u64,
    },
    /// The relay reorders and duplicates datagrams on every link.
    Disorder {
        /// Probability that a datagram is held back behind later ones.
        reorder: f64,
        /// Probability that a datagram is sent twice.
        duplicate: f64,
    },
    /// The relay flips one bit of a fraction of the datagrams on every
    /// link; QUIC must refuse them (they count as lost).
    WireBitRot {
        /// Per datagram.
        probability: f64,
    },
    /// The power of one node is cut (its unsynced writes dropped, torn or
    /// kept in part, by the fault file system's model), restarted when the
    /// fault ends. Only on `--fault-power-cut` servers.
    PowerCut {
        /// The node.
        target: Target,
    },
    /// The power of every node is cut at once, all restarted when the
    /// fault ends. Only on `--fault-power-cut` servers.
    PowerCutAll,
    /// A follower is removed (`member remove`), stopped and its data folder
    /// wiped; a new server under a new id starts on a spare host with
    /// `--join`, and `member add` brings it in (as a learner, promoted once
    /// caught up). The cluster keeps its size. The membership changes are
    /// done while the fault starts; the hold only follows them.
    ReplaceFollower {
        /// The follower: this position in the member list, or the next one
        /// if it leads.
        slot: usize,
    },
}

impl Fault {
    /// A short name of the fault's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Bridge { .. } => "bridge",
            Fault::IsolateLeader => "isolate-leader",
            Fault::OneWay { .. } => "one-way",
            Fault::Loss { .. } => "loss",
            Fault::KillRestart { .. } => "kill-restart",
            Fault::Pause { .. } => "pause",
            Fault::CrashAll => "crash-all",
            Fault::SlowLinks { .. } => "slow-links",
            Fault::Disorder { .. } => "disorder",
            Fault::WireBitRot { .. } => "wire-bit-rot",
            Fault::PowerCut { .. } => "power-cut",
            Fault::PowerCutAll => "power-cut-all",
            Fault::ReplaceFollower { .. } => "replace-follower",
        }
    }

    /// Whether every node goes down at once (nothing acknowledged before
    /// it may be lost).
    pub fn is_whole_cluster_down(&self) -> bool {
        matches!(self, Fault::CrashAll | Fault::PowerCutAll)
    }
}

/// Renders a group of nodes: `{1,3}`.
pub fn group(nodes: &[usize]) -> String {
    let ids: Vec<String> = nodes.iter().map(usize::to_string).collect();
    format!("{{{}}}", ids.join(","))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Leader => f.write_str("the leader"),
            Target::Node(id) => write!(f, "node {id}"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { minority } => write!(f, "partition {} | rest", group(minority)),
            Fault::Bridge {
                left,
                bridge,
                right,
            } => write!(
                f,
                "bridge {} | {} | {} (node {bridge} sees both sides)",
                group(left),
                bridge,
                group(right)
            ),
            Fault::IsolateLeader => f.write_str("isolate the leader"),
            Fault::OneWay { target, deaf: true } => write!(f, "{target} hears nobody"),
            Fault::OneWay {
                target,
                deaf: false,
            } => write!(f, "nobody hears {target}"),
            Fault::Loss { probability } => {
                write!(f, "random loss {:.0}% everywhere", probability * 100.0)
            }
            Fault::KillRestart { target } => write!(f, "kill -9 {target}, restart"),
            Fault::Pause { target } => write!(f, "SIGSTOP {target}, SIGCONT"),
            Fault::CrashAll => f.write_str("kill -9 every node, restart all"),
            Fault::SlowLinks {
                target,
                delay_ms,
                jitter_ms,
            } => {
                let whose = target.map_or("every link".to_string(), |t| format!("links of {t}"));
                write!(f, "{whose} slow: {delay_ms} ms + up to {jitter_ms} ms")
            }
            Fault::Disorder { reorder, duplicate } => write!(
                f,
                "every link reorders {:.0}% and duplicates {:.0}% of datagrams",
                reorder * 100.0,
                duplicate * 100.0
            ),
            Fault::WireBitRot { probability } => write!(
                f,
                "one bit flipped in {:.1}% of datagrams on every link",
                probability * 100.0
            ),
            Fault::PowerCut { target } => write!(f, "power cut of {target}, restart"),
            Fault::PowerCutAll => f.write_str("power cut of every node, restart all"),
            Fault::ReplaceFollower { slot } => write!(
                f,
                "replace the follower at position {slot} by a new node (member remove, wipe, join, member add)"
            ),
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// What.
    pub fault: Fault,
    /// How long it lasts.
    pub hold: Duration,
    /// How long the cluster is left alone afterwards.
    pub quiet: Duration,
}

/// Kinds of fault on any cluster.
const KINDS: usize = 12;
/// Kinds of fault on a cluster of `--fault-power-cut` servers: the power
/// cuts too.
const KINDS_WITH_POWER_CUTS: usize = 14;
/// The kind number of [`Fault::ReplaceFollower`].
const REPLACE_KIND: usize = 11;
/// At most this many replacements per run: each needs a spare host (a
/// network has at most 9).
pub const MAX_REPLACEMENTS: usize = 2;

fn draw(rng: &mut Rng, kind: usize, nodes: usize) -> Planned {
    let mut ids: Vec<usize> = (1..=nodes).collect();
    rng.shuffle(&mut ids);
    let target = |rng: &mut Rng, ids: &[usize]| {
        if rng.chance(0.65) {
            Target::Leader
        } else {
            Target::Node(ids[0])
        }
    };
    let minority_size = if nodes >= 5 { rng.between(1, 2) } else { 1 } as usize;
    let fault = match kind {
        0 => {
            let mut minority = ids[..minority_size].to_vec();
            minority.sort();
            Fault::Partition { minority }
        }
        1 => {
            let side = (nodes - 1) / 2;
            let mut left = ids[..side].to_vec();
            let mut right = ids[side + 1..].to_vec();
            left.sort();
            right.sort();
            Fault::Bridge {
                left,
                bridge: ids[side],
                right,
            }
        }
        2 => Fault::IsolateLeader,
        3 => Fault::OneWay {
            target: target(rng, &ids),
            deaf: rng.chance(0.5),
        },
        4 => Fault::Loss {
            probability: *rng.pick(&[0.05, 0.1, 0.2, 0.3]),
        },
        5 => Fault::KillRestart {
            target: target(rng, &ids),
        },
        6 => Fault::Pause {
            target: target(rng, &ids),
        },
        7 => Fault::CrashAll,
        8 => Fault::SlowLinks {
            target: rng.chance(0.6).then(|| target(rng, &ids)),
            delay_ms: *rng.pick(&[50, 150, 300, 500]),
            jitter_ms: *rng.pick(&[0, 20, 100]),
        },
        9 => Fault::Disorder {
            reorder: *rng.pick(&[0.1, 0.3]),
            duplicate: *rng.pick(&[0.05, 0.2]),
        },
        10 => Fault::WireBitRot {
            probability: *rng.pick(&[0.01, 0.05, 0.2]),
        },
        11 => Fault::ReplaceFollower { slot: ids[0] },
        12 => Fault::PowerCut {
            target: target(rng, &ids),
        },
        _ => Fault::PowerCutAll,
    };
    let hold_ms = match fault {
        Fault::CrashAll | Fault::PowerCutAll => rng.between(300, 1500),
        Fault::KillRestart { .. } | Fault::Pause { .. } | Fault::PowerCut { .. } => {
            rng.between(1500, 4000)
        }
        Fault::ReplaceFollower { .. } => rng.between(500, 1500),
        _ => rng.between(2500, 5000),
    };
    Planned {
        fault,
        hold: Duration::from_millis(hold_ms),
        quiet: Duration::from_millis(rng.between(1500, 3000)),
    }
}

/// The schedule for `nodes` nodes: every kind of fault once (seeded order),
/// then random ones until `total` is planned. Power cuts only if
/// `power_cuts` (the servers run with `--fault-power-cut`).
pub fn plan(rng: &mut Rng, nodes: usize, total: Duration, power_cuts: bool) -> Vec<Planned> {
    let kinds_here = if power_cuts {
        KINDS_WITH_POWER_CUTS
    } else {
        KINDS
    };
    let mut kinds: Vec<usize> = (0..kinds_here).collect();
    rng.shuffle(&mut kinds);
    let mut schedule: Vec<Planned> = kinds
        .into_iter()
        .map(|kind| draw(rng, kind, nodes))
        .collect();
    let planned =
        |schedule: &[Planned]| -> Duration { schedule.iter().map(|p| p.hold + p.quiet).sum() };
    while planned(&schedule) < total {
        let mut kind = rng.below(kinds_here as u64) as usize;
        if kind == REPLACE_KIND && replacements(&schedule) >= MAX_REPLACEMENTS {
            kind = (kind + 1) % kinds_here;
        }
        schedule.push(draw(rng, kind, nodes));
    }
    schedule
}

/// How many members `schedule` replaces (the spare hosts it needs).
pub fn replacements(schedule: &[Planned]) -> usize {
    schedule
        .iter()
        .filter(|p| matches!(p.fault, Fault::ReplaceFollower { .. }))
        .count()
}

/// Renders a plan, one fault per line.
pub fn render_plan(schedule: &[Planned]) -> String {
    let mut at = Duration::ZERO;
    let mut lines = Vec::new();
    for planned in schedule {
        lines.push(format!(
            "  +{:>6.1}s  {} for {:.1}s, then {:.1}s quiet",
            at.as_secs_f64(),
            planned.fault,
            planned.hold.as_secs_f64(),
            planned.quiet.as_secs_f64()
        ));
        at += planned.hold + planned.quiet;
    }
    lines.join("\n")
}

/// The leader now, if one is agreed on within a few seconds; otherwise any
/// node reporting itself leader; otherwise `fallback`.
fn current_leader(cluster: &NsCluster, fallback: usize) -> (usize, bool) {
    let statuses = cluster.status();
    if let Some(leader) = cluster.agreed_leader(&statuses) {
        return (leader, true);
    }
    if let Some(leader) = cluster.wait_for_leader(Duration::from_secs(5)) {
        return (leader, true);
    }
    (fallback, false)
}

/// The id of the member at `slot` (1-based) of the current member list.
fn member_at(cluster: &NsCluster, slot: usize) -> usize {
    cluster.current[(slot - 1) % cluster.current.len()]
}

/// The node `target` means now; a "leader" fault that finds no leader hits node 1.
fn resolve(cluster: &NsCluster, target: Target) -> (usize, String) {
    match target {
        Target::Node(slot) => {
            let id = member_at(cluster, slot);
            (id, format!("node {id}"))
        }
        Target::Leader => match current_leader(cluster, member_at(cluster, 1)) {
            (id, true) => (id, format!("node {id} (the leader)")),
            (id, false) => (id, format!("node {id} (no leader found)")),
        },
    }
}

/// Injects `fault`; returns what was actually done (the leader resolved)
/// and `now()` taken once the fault is fully in place (the leader lookup
/// and the firewall commands take a few to a few hundred milliseconds).
pub fn inject(
    cluster: &mut NsCluster,
    fault: &Fault,
    now: &dyn Fn() -> u64,
) -> Result<(String, u64), String> {
    let leader = match fault {
        Fault::IsolateLeader => Some(resolve(cluster, Target::Leader)),
        Fault::OneWay { target, .. }
        | Fault::KillRestart { target }
        | Fault::Pause { target }
        | Fault::PowerCut { target }
        | Fault::SlowLinks {
            target: Some(target),
            ..
        } => Some(resolve(cluster, *target)),
        _ => None,
    };
    if let Fault::ReplaceFollower { slot } = fault {
        // The fault starts with the membership changes, not after them.
        let started = now();
        return Ok((replace_follower(cluster, *slot)?, started));
    }
    let description = apply(cluster, fault, leader)?;
    Ok((description, now()))
}

/// `member <verb> <args>` from the clients' host; its output, or why it failed.
fn member(cluster: &NsCluster, verb: &str, args: &[&str]) -> Result<(), String> {
    let output = cluster
        .hosts
        .on_clients(BINARY)
        .args(["member", verb, "--cluster", &cluster.peers(), "--certs"])
        .arg(&cluster.certs)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("member {verb}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "member {verb} {args:?}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// [`Fault::ReplaceFollower`]: removes a follower, wipes it, and adds a new
/// node under a new id on the next spare host. Every earlier fault is
/// healed and every member runs (the scenario restores them after each
/// fault), so the cluster keeps a majority throughout.
fn replace_follower(cluster: &mut NsCluster, slot: usize) -> Result<String, String> {
    let Some(leader) = cluster.wait_for_leader(Duration::from_secs(20)) else {
        return Ok("replace a follower: skipped, no leader agreed on within 20s".to_string());
    };
    let current = cluster.current.clone();
    let start = (slot - 1) % current.len();
    let victim = (0..current.len())
        .map(|k| current[(start + k) % current.len()])
        .find(|&id| id != leader)
        .ok_or("no follower to replace")?;
    let new = current
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .max(cluster.members)
        + 1;
    if new > cluster.size() {
        return Err(format!("no spare host for node {new}"));
    }
    let victim_text = victim.to_string();
    member(cluster, "remove", &[&victim_text])?;
    cluster.current.retain(|&id| id != victim);
    // A removed follower stops by itself once it learns it; it may not
    // have yet, and its files go anyway.
    cluster.kill(victim);
    let data_dir = cluster.nodes[victim - 1].data_dir.clone();
    std::fs::remove_dir_all(&data_dir).map_err(|e| format!("wipe {}: {e}", data_dir.display()))?;
    cluster.spawn(new);
    let address = cluster.hosts.address(new);
    let new_text = new.to_string();
    member(cluster, "add", &[&new_text, &address])?;
    cluster.current.push(new);
    Ok(format!(
        "replace follower {victim} (leader {leader}): member remove {victim}, data wiped; \
         node {new} joins from a spare host, member add {new} (learner, promoted)"
    ))
}

fn apply(
    cluster: &mut NsCluster,
    fault: &Fault,
    resolved: Option<(usize, String)>,
) -> Result<String, String> {
    let target = || resolved.clone().expect("resolved above");
    let all: Vec<usize> = cluster.current.clone();
    let at = |slots: &[usize]| -> Vec<usize> {
        let mut ids: Vec<usize> = slots.iter().map(|&slot| member_at(cluster, slot)).collect();
        ids.sort();
        ids
    };
    let others = |id: usize| -> Vec<usize> { all.iter().copied().filter(|&o| o != id).collect() };
    Ok(match fault {
        Fault::Partition { minority } => {
            let minority = &at(minority);
            let majority: Vec<usize> = all
                .iter()
                .copied()
                .filter(|id| !minority.contains(id))
                .collect();
            cluster.hosts.cut_between(minority, &majority)?;
            format!("partition {} | {}", group(minority), group(&majority))
        }
        Fault::Bridge {
            left,
            bridge,
            right,
        } => {
            let (left, bridge, right) = (&at(left), member_at(cluster, *bridge), &at(right));
            cluster.hosts.cut_between(left, right)?;
            format!(
                "bridge {} | {bridge} | {} (node {bridge} sees both sides)",
                group(left),
                group(right)
            )
        }
        Fault::IsolateLeader => {
            let (id, who) = target();
            cluster.hosts.cut_between(&[id], &others(id))?;
            format!("isolate {who} from {}", group(&others(id)))
        }
        Fault::OneWay { deaf, .. } => {
            let (id, who) = target();
            if *deaf {
                cluster.hosts.block(id, &others(id))?;
                format!("{who} hears nobody (its own datagrams still go out)")
            } else {
                for other in others(id) {
                    cluster.hosts.block(other, &[id])?;
                }
                format!("nobody hears {who} (it still hears everyone)")
            }
        }
        Fault::Loss { probability } => {
            for &id in &all {
                cluster.hosts.lose_randomly(id, *probability)?;
            }
            format!(
                "random loss: every node drops {:.0}% of incoming datagrams",
                probability * 100.0
            )
        }
        Fault::KillRestart { .. } => {
            let (id, who) = target();
            cluster.kill(id);
            format!("kill -9 {who}")
        }
        Fault::Pause { .. } => {
            let (id, who) = target();
            cluster.pause(id);
            format!("SIGSTOP {who}")
        }
        Fault::CrashAll => {
            cluster.kill_all();
            "kill -9 every node".to_string()
        }
        Fault::SlowLinks {
            target: whose,
            delay_ms,
            jitter_ms,
        } => {
            let faults = LinkFaults {
                delay_ms: *delay_ms,
                jitter_ms: *jitter_ms,
                ..LinkFaults::default()
            };
            let delay = format!("{delay_ms} ms + up to {jitter_ms} ms");
            if whose.is_some() {
                let (id, who) = target();
                cluster.hosts.slow_links(&[id], &others(id), faults, true);
                format!("links of {who} slow: {delay}, both ways")
            } else {
                cluster.hosts.slow_links(&all, &all, faults, false);
                format!("every link slow: {delay}")
            }
        }
        Fault::Disorder { reorder, duplicate } => {
            let faults = LinkFaults {
                jitter_ms: 20,
                reorder: *reorder,
                duplicate: *duplicate,
                ..LinkFaults::default()
            };
            cluster.hosts.slow_links(&all, &all, faults, false);
            format!(
                "every link: jitter 20 ms, {:.0}% reordered, {:.0}% duplicated",
                reorder * 100.0,
                duplicate * 100.0
            )
        }
        Fault::WireBitRot { probability } => {
            let faults = LinkFaults {
                corrupt: *probability,
                ..LinkFaults::default()
            };
            cluster.hosts.slow_links(&all, &all, faults, false);
            format!(
                "every link flips a bit in {:.1}% of datagrams",
                probability * 100.0
            )
        }
        Fault::PowerCut { .. } => {
            let (id, who) = target();
            cluster.power_cut(id);
            format!("power cut of {who}")
        }
        Fault::PowerCutAll => {
            cluster.power_cut_all();
            "power cut of every node".to_string()
        }
        Fault::ReplaceFollower { .. } => unreachable!("done by replace_follower"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_has_every_kind_and_depends_only_on_the_seed() {
        for (nodes, power_cuts, count) in [
            (3, true, KINDS_WITH_POWER_CUTS),
            (5, true, KINDS_WITH_POWER_CUTS),
            (3, false, KINDS),
            (5, false, KINDS),
        ] {
            let schedule = plan(
                &mut Rng::new(7),
                nodes,
                Duration::from_secs(120),
                power_cuts,
            );
            let again = plan(
                &mut Rng::new(7),
                nodes,
                Duration::from_secs(120),
                power_cuts,
            );
            assert_eq!(schedule, again);
            let mut kinds: Vec<&str> = schedule[..count].iter().map(|p| p.fault.kind()).collect();
            kinds.sort();
            kinds.dedup();
            assert_eq!(kinds.len(), count, "{}", render_plan(&schedule));
            if !power_cuts {
                assert!(
                    schedule
                        .iter()
                        .all(|p| !p.fault.kind().starts_with("power")),
                    "{}",
                    render_plan(&schedule)
                );
            }
            let replacing = replacements(&schedule);
            assert!((1..=MAX_REPLACEMENTS).contains(&replacing));
            let planned: Duration = schedule.iter().map(|p| p.hold + p.quiet).sum();
            assert!(planned >= Duration::from_secs(120));
            for planned in &schedule {
                match &planned.fault {
                    Fault::Partition { minority } => {
                        assert!(!minority.is_empty() && minority.len() * 2 < nodes)
                    }
                    Fault::Bridge {
                        left,
                        bridge,
                        right,
                    } => {
                        assert_eq!(left.len() + right.len() + 1, nodes);
                        assert!(!left.contains(bridge) && !right.contains(bridge));
                    }
                    _ => {}
                }
            }
        }
        assert_ne!(
            plan(&mut Rng::new(7), 3, Duration::ZERO, true),
            plan(&mut Rng::new(8), 3, Duration::ZERO, true)
        );
    }
}
