//! `check()`: Raft safety per group and linearizability across moves.

use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::CONTROLLER;
use distribkv_core::sim::sharded::ShardedSim;
use serde::Serialize;

use crate::linearizability::Verdict;

/// One group's safety verdict.
#[derive(Clone, Debug, Serialize)]
pub struct GroupCheck {
    /// The group (0: the controller).
    pub group: GroupId,
    /// No violation.
    pub ok: bool,
    /// Its violations.
    pub violations: Vec<String>,
}

/// `check()`.
#[derive(Clone, Debug, Serialize)]
pub struct ShardedCheck<'a> {
    /// Nothing wrong found.
    pub ok: bool,
    /// Every violation, in words.
    pub violations: Vec<String>,
    /// Raft safety per group.
    pub groups: Vec<GroupCheck>,
    /// Violations not tied to a group (the driver's).
    pub other: Vec<String>,
    /// Linearizability of the history, per key across moves.
    pub linearizability: &'a Verdict,
}

/// `check()`.
pub fn check<'a>(sim: &ShardedSim, verdict: &'a Verdict) -> ShardedCheck<'a> {
    let all = sim.violations();
    let mut groups: Vec<GroupCheck> = core::iter::once(CONTROLLER)
        .chain(sim.config().host.groups.keys().copied())
        .map(|group| GroupCheck {
            group,
            ok: true,
            violations: Vec::new(),
        })
        .collect();
    let mut other = Vec::new();
    for v in &all {
        let group = v
            .strip_prefix("group ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|g| g.parse::<GroupId>().ok());
        match group.and_then(|g| groups.iter_mut().find(|c| c.group == g)) {
            Some(check) => {
                check.ok = false;
                check.violations.push(v.clone());
            }
            None => other.push(v.clone()),
        }
    }
    let mut violations = all;
    violations.extend(verdict.summary.clone());
    ShardedCheck {
        ok: violations.is_empty(),
        violations,
        groups,
        other,
        linearizability: verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distribkv_core::sim::sharded::ShardedConfig;

    #[test]
    fn safety_violations_are_split_by_group() {
        let sim = ShardedSim::new(ShardedConfig::small(4)).unwrap();
        let verdict = Verdict {
            ok: true,
            key: None,
            ops: Vec::new(),
            text: String::from("linearizable"),
            decided: true,
            summary: None,
        };
        let result = check(&sim, &verdict);
        assert!(result.ok);
        let groups: Vec<GroupId> = result.groups.iter().map(|g| g.group).collect();
        assert_eq!(groups, [0, 100, 101, 102]);
    }
}
