//! Helpers of the multi-group storage tests: a model of many groups, each
//! driven by the single-group [`Model`] (whose oracle is
//! `PersistedState::apply`), turned into host steps.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use distribkv_core::raft::{PersistedState, Write};
use distribkv_core::rng::Rng;
use distribkv_core::shard::GroupId;
use distribkv_core::shard::host::HostWrite;
use distribkv_native::storage::StorageOptions;
use distribkv_native::storage::multi::MultiStorageOptions;

use crate::support::{Model, Step};

/// A random write step (no sync, reopen or crash).
pub fn random_step(rng: &mut Rng) -> Step {
    match rng.index(14) {
        0..=6 => Step::Append {
            count: 1 + rng.index(4),
            new_term: rng.chance(0.2),
            with_vote: rng.chance(0.2),
            size: rng.index(200),
        },
        7 | 8 => Step::Overwrite {
            back: rng.index(8) as u64,
            count: 1 + rng.index(3),
            size: rng.index(80),
        },
        9 => Step::Vote {
            new_term: rng.chance(0.5),
            candidate: 1 + rng.index(3) as u64,
        },
        10 | 11 => Step::SnapshotAtEntry {
            pick: rng.index(1000),
            then_append: rng.index(3),
        },
        12 => Step::SnapshotElsewhere {
            offset: rng.index(8) as i64 - 3,
        },
        _ => Step::Empty,
    }
}

/// Many groups' models and the host's step numbering.
#[derive(Debug, Default)]
pub struct Groups {
    models: BTreeMap<GroupId, Model>,
    /// Groups whose state the storage holds (a group exists once it has
    /// had a non-empty write).
    existing: BTreeSet<GroupId>,
    /// `seq` of the last host step.
    pub seq: u64,
}

impl Groups {
    /// The expected recovered state of every group.
    pub fn states(&self) -> BTreeMap<GroupId, PersistedState> {
        self.existing
            .iter()
            .map(|g| (*g, self.models[g].state.clone()))
            .collect()
    }

    /// Starts from what a storage recovered.
    pub fn recovered(states: &BTreeMap<GroupId, PersistedState>, seq: u64) -> Groups {
        let mut groups = Groups {
            seq,
            ..Groups::default()
        };
        for (group, state) in states {
            let max_term = state
                .entries
                .iter()
                .map(|e| e.term)
                .chain(state.snapshot.iter().map(|s| s.meta.term))
                .chain([state.hard_state.term])
                .max()
                .unwrap_or(0);
            groups.models.insert(
                *group,
                Model {
                    state: state.clone(),
                    max_term,
                    seq: 0,
                },
            );
            groups.existing.insert(*group);
        }
        groups
    }

    /// A host step with writes for `count` random groups among `1..=universe`
    /// (a group may get two writes).
    pub fn step(&mut self, rng: &mut Rng, universe: u64, count: usize) -> HostWrite {
        self.seq += 1;
        let mut writes: Vec<(GroupId, Write)> = Vec::new();
        for _ in 0..count {
            let group = 1 + rng.index(universe as usize) as u64;
            let model = self.models.entry(group).or_default();
            let write = model
                .write_for(&random_step(rng))
                .expect("write steps make writes");
            if !write.is_empty() {
                self.existing.insert(group);
            }
            writes.push((group, write));
        }
        HostWrite {
            seq: self.seq,
            writes,
        }
    }

    /// Forgets `group` (removed from the storage).
    pub fn remove(&mut self, group: GroupId) {
        self.models.remove(&group);
        self.existing.remove(&group);
    }

    /// The groups the storage holds.
    pub fn existing(&self) -> Vec<GroupId> {
        self.existing.iter().copied().collect()
    }
}

/// A host step holding one write of one group.
pub fn write_of(group: GroupId, seq: u64, write: Write) -> HostWrite {
    HostWrite {
        seq,
        writes: vec![(group, write)],
    }
}

/// 2 KiB segments, no write buffer: every write reaches the files, and a
/// few writes roll segments.
pub fn small_segments() -> MultiStorageOptions {
    MultiStorageOptions {
        storage: StorageOptions {
            segment_size: 2048,
            write_buffer_size: 0,
            ..StorageOptions::default()
        },
        ..MultiStorageOptions::default()
    }
}
