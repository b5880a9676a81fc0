//! A random workload on an in-memory machine with a fork before every
//! file-system operation; each fork is cut with every mode and recovered.

use distribkv_core::raft::PersistedState;
use distribkv_core::rng::Rng;
use distribkv_native::storage::{FaultFileSystem, Fork, PowerCut, RaftStorage, StorageOptions};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::cut::{
    Allowed, CutPoint, ROOT, check_it_writes_again, cut_and_recover, data_dir, options_on,
    with_file_system,
};
use crate::power_cut_support::Acks;
use crate::support::{IDENTITY, Model, Step, step};

/// Tallies of a random workload.
#[derive(Default)]
pub struct Tally {
    pub cut_points: u64,
    pub operations: u64,
    pub writes: u64,
    pub restarts_checked: u64,
}

/// One random workload on an in-memory machine with a fork before every
/// operation; each fork is cut with every mode and recovered.
pub struct Workload {
    seed: u64,
    rng: Rng,
    fs: FaultFileSystem,
    options: StorageOptions,
    storage: Option<RaftStorage>,
    model: Model,
    /// States since the storage was opened: `states[n]` after `n` writes.
    states: Vec<PersistedState>,
    /// When each write was appended and acknowledged.
    acks: Acks,
    tally: Tally,
}

impl Workload {
    pub fn new(seed: u64) -> Workload {
        let mut rng = Rng::new(seed);
        let segment_size = [200, 600, 1500, 64 << 20][rng.index(4)];
        let write_buffer_size = [0, 400, 1 << 20][rng.index(3)];
        let fs = FaultFileSystem::in_memory(ROOT);
        fs.fork_before(|_, _| true);
        let options = options_on(&fs, segment_size, write_buffer_size);
        let mut workload = Workload {
            seed,
            rng,
            fs,
            options,
            storage: None,
            model: Model::default(),
            states: Vec::new(),
            acks: Acks::default(),
            tally: Tally::default(),
        };
        workload.open();
        workload
    }

    fn fail(&self, message: String) -> ! {
        panic!(
            "{message}\nworkload seed {} (segment size {}, write buffer {}); replay: \
             DISTRIBKV_POWER_CUT_SEED={} cargo test -p distribkv-native --test storage -- --exact \
             power_cut::random_cut_points_lose_no_acknowledged_write",
            self.seed, self.options.segment_size, self.options.write_buffer_size, self.seed
        )
    }

    /// Opens the storage on the current machine; the forks of recovery
    /// itself are checked against the state it recovered.
    fn open(&mut self) {
        let options = with_file_system(&self.options, &self.fs);
        let (storage, recovered) = RaftStorage::open(data_dir(), IDENTITY, options)
            .unwrap_or_else(|e| self.fail(format!("a restart without a cut failed: {e}")));
        self.storage = Some(storage);
        self.model.state = recovered.clone();
        self.states = vec![recovered];
        self.acks = Acks::default();
        self.check_forks();
    }

    fn storage(&mut self) -> &mut RaftStorage {
        self.storage.as_mut().expect("the storage is open")
    }

    pub fn run(mut self, steps: &[Step]) -> Tally {
        for step in steps {
            if let Some(write) = self.model.write_for(step) {
                self.acks.started(self.fs.operations());
                let appended = self.storage().append(&write);
                appended.unwrap_or_else(|e| self.fail(format!("append failed: {e}")));
                self.states.push(self.model.state.clone());
                self.tally.writes += 1;
            } else {
                match step {
                    Step::Sync => self.sync(),
                    Step::Reopen => {
                        self.sync();
                        self.check_forks();
                        self.storage = None;
                        self.open();
                    }
                    Step::Crash => self.cut_in_place(),
                    _ => unreachable!("write steps are handled above"),
                }
            }
            self.check_forks();
        }
        self.sync();
        self.check_forks();
        // The end of the workload is a cut point too.
        self.cut_in_place();
        self.tally.operations = self.fs.operations();
        self.tally
    }

    fn sync(&mut self) {
        let synced = self.storage().sync();
        let durable = synced.unwrap_or_else(|e| self.fail(format!("sync failed: {e}")));
        let writes = self.states.len() - 1;
        assert_eq!(
            durable.is_some(),
            writes > 0,
            "sync acknowledges what was appended"
        );
        self.acks.acknowledged(self.fs.operations(), writes);
        let compacted = self.storage().maybe_compact();
        compacted.unwrap_or_else(|e| self.fail(format!("compaction failed: {e}")));
    }

    /// Checks every fork taken since the last call, with every mode.
    fn check_forks(&mut self) {
        for fork in self.fs.take_forks() {
            self.check_fork(fork);
        }
    }

    fn check_fork(&mut self, fork: Fork) {
        let (acked, appended) = self.acks.bounds_at(fork.operation);
        let allowed = Allowed {
            states: &self.states,
            acked,
            appended,
        };
        for mode in PowerCut::ALL {
            let point = CutPoint {
                operation: fork.operation,
                next: Some(&fork.next),
                mode,
                seed: self.rng.next_u64(),
            };
            let copy = fork.file_system.fork();
            match cut_and_recover(&copy, &point, &self.options, &allowed) {
                Ok((storage, recovered, _, after)) => {
                    // Some of the recovered storages are driven on.
                    if self.rng.chance(0.25) {
                        if let Err(message) =
                            check_it_writes_again(storage, recovered, &after, &self.options, &point)
                        {
                            self.fail(message);
                        }
                        self.tally.restarts_checked += 1;
                    }
                }
                Err(message) => self.fail(message),
            }
            self.tally.cut_points += 1;
        }
    }

    /// Cuts the power of the running machine and goes on from what
    /// survived.
    fn cut_in_place(&mut self) {
        self.check_forks();
        let operation = self.fs.operations();
        let point = CutPoint {
            operation,
            next: None,
            mode: PowerCut::ALL[self.rng.index(3)],
            seed: self.rng.next_u64(),
        };
        let (acked, appended) = self.acks.bounds_at(operation);
        let allowed = Allowed {
            states: &self.states,
            acked,
            appended,
        };
        let outcome = cut_and_recover(&self.fs, &point, &self.options, &allowed);
        let (storage, _, _, after) = outcome.unwrap_or_else(|message| self.fail(message));
        self.tally.cut_points += 1;
        // Start again from a restart on what survived, with forks.
        drop(storage);
        self.storage = None;
        self.fs = after;
        self.open();
    }
}

/// The steps of the workload of `seed`, drawn from the same strategy as
/// the round-trip tests.
pub fn steps_for(seed: u64, count: usize) -> Vec<Step> {
    let mut bytes = [0u8; 32];
    let mut rng = Rng::new(seed);
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let strategy = step();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}
