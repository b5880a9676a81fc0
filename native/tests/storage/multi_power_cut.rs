//! Power cuts under the multi-group log, at every file-system operation of
//! random workloads of many groups (steps touching several groups, segment
//! rolls, snapshots, purges that copy live entries and delete segments,
//! group removals, restarts and earlier cuts). After every cut the log must
//! recover (a refusal fails the test: a power cut is no corruption), hold
//! the state of every group after some prefix of the steps (a step is all
//! or nothing), keep every step it had acknowledged durable, and never give
//! a group an older term than an acknowledged one.
//!
//! `DISTRIBKV_POWER_CUT_RUNS=N` sets the number of random workloads
//! (default 4); `DISTRIBKV_POWER_CUT_SEED=S` replays one, as printed on failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use distribkv_core::raft::PersistedState;
use distribkv_core::rng::Rng;
use distribkv_core::shard::GroupId;
use distribkv_native::storage::multi::{MultiStorage, MultiStorageOptions};
use distribkv_native::storage::{FaultFileSystem, FaultInjector, Fork, PowerCut, StorageOptions};

use crate::multi_support::Groups;
use crate::power_cut_support::{Acks, recovered_prefix, workload_seeds};
use crate::support::IDENTITY;

const ROOT: &str = "/machine";
/// Groups a workload writes to.
const GROUPS: u64 = 6;

type States = BTreeMap<GroupId, PersistedState>;

fn data_dir() -> PathBuf {
    PathBuf::from(ROOT).join("host-3").join("data")
}

fn on(options: &MultiStorageOptions, fs: &FaultFileSystem) -> MultiStorageOptions {
    MultiStorageOptions {
        storage: StorageOptions {
            file_system: Arc::new(fs.clone()),
            faults: FaultInjector::new(),
            ..options.storage.clone()
        },
        ..options.clone()
    }
}

#[derive(Default)]
struct Tally {
    cut_points: u64,
    operations: u64,
    steps: u64,
    restarts_checked: u64,
    segments_removed: usize,
    entries_rewritten: usize,
}

struct Workload {
    seed: u64,
    rng: Rng,
    fs: FaultFileSystem,
    options: MultiStorageOptions,
    storage: Option<MultiStorage>,
    groups: Groups,
    /// `states[n]`: every group after the first `n` operations (steps
    /// and removals) since the storage was opened.
    states: Vec<States>,
    /// When each operation was appended and acknowledged.
    acks: Acks,
    tally: Tally,
}

impl Workload {
    fn new(seed: u64) -> Workload {
        let mut rng = Rng::new(seed);
        let fs = FaultFileSystem::in_memory(ROOT);
        fs.fork_before(|_, _| true);
        let options = MultiStorageOptions {
            storage: StorageOptions {
                segment_size: [300, 900, 64 << 20][rng.index(3)],
                write_buffer_size: [0, 400, 1 << 20][rng.index(3)],
                ..StorageOptions::default()
            },
            purge_after: [500, 2_000][rng.index(2)],
            rewrite_limit: [150, 1 << 20][rng.index(2)],
            ..MultiStorageOptions::default()
        };
        let options = on(&options, &fs);
        let mut workload = Workload {
            seed,
            rng,
            fs,
            options,
            storage: None,
            groups: Groups::default(),
            states: Vec::new(),
            acks: Acks::default(),
            tally: Tally::default(),
        };
        workload.open();
        workload
    }

    fn fail(&self, message: String) -> ! {
        panic!(
            "{message}\nworkload seed {} ({:?} segment size, purge after {}, rewrite limit {}); replay: \
                 DISTRIBKV_POWER_CUT_SEED={} cargo test -p distribkv-native --test storage multi_power_cut::",
            self.seed,
            self.options.storage.segment_size,
            self.options.purge_after,
            self.options.rewrite_limit,
            self.seed
        )
    }

    fn open(&mut self) {
        let opened = MultiStorage::open(data_dir(), IDENTITY, on(&self.options, &self.fs));
        let (storage, recovered) =
            opened.unwrap_or_else(|e| self.fail(format!("a restart without a cut failed: {e}")));
        self.storage = Some(storage);
        self.groups = Groups::recovered(&recovered, self.groups.seq);
        self.states = vec![recovered];
        self.acks = Acks::default();
        self.check_forks();
    }

    fn storage(&mut self) -> &mut MultiStorage {
        self.storage.as_mut().expect("the storage is open")
    }

    fn run(mut self, steps: usize) -> Tally {
        for _ in 0..steps {
            let roll = self.rng.index(100);
            match roll {
                0..=64 => {
                    let count = 1 + self.rng.index(4);
                    let step = self.groups.step(&mut self.rng, GROUPS, count);
                    self.acks.started(self.fs.operations());
                    let appended = self.storage().append(&step);
                    appended.unwrap_or_else(|e| self.fail(format!("append failed: {e}")));
                    self.states.push(self.groups.states());
                    self.tally.steps += 1;
                }
                65..=68 => {
                    let existing = self.groups.existing();
                    if existing.is_empty() {
                        continue;
                    }
                    let group = existing[self.rng.index(existing.len())];
                    self.acks.started(self.fs.operations());
                    let removed = self.storage().remove_group(group);
                    removed.unwrap_or_else(|e| self.fail(format!("removal failed: {e}")));
                    self.groups.remove(group);
                    self.states.push(self.groups.states());
                }
                69..=93 => self.sync(),
                94..=96 => {
                    self.sync();
                    self.check_forks();
                    self.storage = None;
                    self.open();
                }
                _ => self.cut_in_place(),
            }
            self.check_forks();
        }
        self.sync();
        self.check_forks();
        self.cut_in_place();
        self.tally.operations = self.fs.operations();
        self.tally
    }

    fn sync(&mut self) {
        let synced = self.storage().sync();
        synced.unwrap_or_else(|e| self.fail(format!("sync failed: {e}")));
        let operations = self.fs.operations();
        self.acks.acknowledged(operations, self.states.len() - 1);
        let purged = self.storage().maybe_compact();
        let purge = purged.unwrap_or_else(|e| self.fail(format!("purge failed: {e}")));
        self.tally.segments_removed += purge.segments_removed;
        self.tally.entries_rewritten += purge.entries_rewritten;
    }

    /// Cuts `fs`'s power, recovers, and checks the outcome; returns the
    /// storage, what it recovered and the machine after the cut.
    fn cut_and_check(
        &self,
        fs: &FaultFileSystem,
        mode: PowerCut,
        seed: u64,
        operation: u64,
        next: &str,
    ) -> Result<(MultiStorage, States, FaultFileSystem), String> {
        let (acked, appended) = self.acks.bounds_at(operation);
        let point =
            format!("power cut ({mode:?}, seed {seed}) before operation {operation} ({next})");
        let after = fs
            .power_cut(mode, seed)
            .map_err(|e| format!("{point}: the model failed: {e}"))?;
        let (storage, recovered) =
            MultiStorage::open(data_dir(), IDENTITY, on(&self.options, &after))
                .map_err(|e| format!("{point}: recovery refused the folder: {e}"))?;
        let upper = appended.min(self.states.len() - 1);
        // A group's term never goes back while it lives (a group removed
        // since the acknowledgement may come back new, at term 0).
        for (group, floor) in &self.states[acked] {
            let lived = self.states[acked..=upper]
                .iter()
                .all(|states| states.contains_key(group));
            if let Some(state) = recovered.get(group)
                && lived
                && state.hard_state.term < floor.hard_state.term
            {
                return Err(format!(
                    "{point}: group {group}'s term went back from {} (acknowledged) to {}",
                    floor.hard_state.term, state.hard_state.term
                ));
            }
        }
        recovered_prefix(&self.states, acked, appended, &recovered)
            .map_err(|lost| format!("{point}: {lost}"))?;
        Ok((storage, recovered, after))
    }

    fn check_forks(&mut self) {
        for fork in self.fs.take_forks() {
            self.check_fork(fork);
        }
    }

    fn check_fork(&mut self, fork: Fork) {
        for mode in PowerCut::ALL {
            let seed = self.rng.next_u64();
            let copy = fork.file_system.fork();
            let next = fork.next.to_string();
            match self.cut_and_check(&copy, mode, seed, fork.operation, &next) {
                Ok((storage, recovered, after)) => {
                    if self.rng.chance(0.2) {
                        self.check_it_writes_again(storage, recovered, &after);
                    }
                }
                Err(message) => self.fail(message),
            }
            self.tally.cut_points += 1;
        }
    }

    /// A recovered log takes a step again, and keeps it across a restart.
    fn check_it_writes_again(
        &mut self,
        mut storage: MultiStorage,
        recovered: States,
        fs: &FaultFileSystem,
    ) {
        let mut groups = Groups::recovered(&recovered, 0);
        let step = groups.step(&mut self.rng, GROUPS, 2);
        if let Err(e) = storage.append(&step).and_then(|()| storage.sync()) {
            self.fail(format!("after recovery, a step failed: {e}"));
        }
        drop(storage);
        match MultiStorage::open(data_dir(), IDENTITY, on(&self.options, fs)) {
            Ok((_, reopened)) if reopened == groups.states() => {}
            Ok(_) => self.fail("a step made after recovery is not there after a restart".into()),
            Err(e) => self.fail(format!(
                "after recovery and one step, a restart failed: {e}"
            )),
        }
        self.tally.restarts_checked += 1;
    }

    fn cut_in_place(&mut self) {
        self.check_forks();
        let operation = self.fs.operations();
        let mode = PowerCut::ALL[self.rng.index(3)];
        let seed = self.rng.next_u64();
        let fs = self.fs.clone();
        let outcome = self.cut_and_check(&fs, mode, seed, operation, "end");
        let (storage, _, after) = outcome.unwrap_or_else(|message| self.fail(message));
        self.tally.cut_points += 1;
        drop(storage);
        self.storage = None;
        self.fs = after;
        self.open();
    }
}

#[test]
fn random_cut_points_lose_no_acknowledged_step_of_any_group() {
    let started = Instant::now();
    let (seeds, default) = workload_seeds(4, 14_000);
    let mut total = Tally::default();
    for &seed in &seeds {
        let tally = Workload::new(seed).run(150);
        total.cut_points += tally.cut_points;
        total.operations += tally.operations;
        total.steps += tally.steps;
        total.restarts_checked += tally.restarts_checked;
        total.segments_removed += tally.segments_removed;
        total.entries_rewritten += tally.entries_rewritten;
    }
    println!(
        "multi-group power cuts: {} cut points over {} workloads ({} file-system operations, \
             {} steps, {} segments purged, {} entries rewritten), 0 acknowledged steps lost, \
             {} recovered logs written to and restarted, in {:.1} s",
        total.cut_points,
        seeds.len(),
        total.operations,
        total.steps,
        total.segments_removed,
        total.entries_rewritten,
        total.restarts_checked,
        started.elapsed().as_secs_f64()
    );
    if default {
        assert!(total.cut_points >= 3_000, "{} cut points", total.cut_points);
        assert!(total.segments_removed > 0 && total.entries_rewritten > 0);
    }
}
