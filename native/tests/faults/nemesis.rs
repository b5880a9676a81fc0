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
//!
//! [`inject`] (in `nemesis/injection.rs`) puts one fault in place on a
//! running cluster.

mod injection;

use std::fmt;
use std::time::Duration;

use super::rng::Rng;

pub use injection::inject;

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
