//! Putting a planned fault in place on a running cluster: the leader or the
//! member a fault means is looked up when it starts, then the firewall, the
//! relay, signals or membership changes do the rest.

use std::process::Stdio;
use std::time::Duration;

use super::{Fault, Target, group};
use crate::NsCluster;
use crate::harness::{BINARY, Hosts};
use crate::relay::LinkFaults;

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
