//! Power cuts on the fault-injecting file system, at every operation of
//! random workloads (appends, segment rolls, snapshots taken and installed,
//! compaction, restarts and earlier cuts), of a segment roll, and of the
//! storage worker's group commits. After every cut the storage must recover
//! (a refusal fails the test: a power cut is no corruption), hold a state
//! that some prefix of the writes produces, keep every write it had
//! acknowledged durable, and never go back to an older term.
//!
//! `DISTRIBKV_POWER_CUT_RUNS=N` sets the number of random workloads (default
//! 16); `DISTRIBKV_POWER_CUT_SEED=S` replays the workload of one seed, as
//! printed on failure.

mod storage_support;

/// Named `storage` so that `cargo test storage` selects these tests.
mod storage {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use distribkv_core::raft::{PersistedState, Write};
    use distribkv_core::rng::Rng;
    use distribkv_native::storage::{
        FaultFileSystem, FaultInjector, FileSystem, FileSystemOperation, Fork, PowerCut,
        RaftStorage, StorageEvent, StorageOptions, StorageWorker,
    };
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use crate::storage_support::{IDENTITY, Model, Step, entry, oracle, simple_writes, step};

    /// The machine's root; the data folder is two levels below, so that
    /// recovery creates folders too.
    const ROOT: &str = "/machine";

    fn data_dir() -> PathBuf {
        PathBuf::from(ROOT).join("node-2").join("data")
    }

    fn segment(number: u64) -> PathBuf {
        data_dir().join(format!("wal-{number:020}.log"))
    }

    fn options_on(
        fs: &FaultFileSystem,
        segment_size: u64,
        write_buffer_size: usize,
    ) -> StorageOptions {
        StorageOptions {
            segment_size,
            write_buffer_size,
            faults: FaultInjector::new(),
            file_system: std::sync::Arc::new(fs.clone()),
        }
    }

    fn with_file_system(options: &StorageOptions, fs: &FaultFileSystem) -> StorageOptions {
        options_on(fs, options.segment_size, options.write_buffer_size)
    }

    /// What a cut may leave: `states[n]` is the state after the first `n`
    /// writes since the storage was opened; at least `acked` of them had been
    /// acknowledged durable, and at most `appended` had been handed to the
    /// storage.
    struct Allowed<'a> {
        states: &'a [PersistedState],
        acked: usize,
        appended: usize,
    }

    /// Where a cut happened, for failure messages.
    struct CutPoint<'a> {
        operation: u64,
        next: Option<&'a FileSystemOperation>,
        mode: PowerCut,
        seed: u64,
    }

    impl std::fmt::Display for CutPoint<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "power cut ({:?}, seed {}) ", self.mode, self.seed)?;
            match self.next {
                Some(next) => write!(f, "before operation {} ({next})", self.operation),
                None => write!(f, "after operation {}", self.operation),
            }
        }
    }

    /// Cuts the power of `fs`, recovers the data folder, and checks what
    /// came back. Returns the storage, what it recovered, how many writes
    /// that is, and the machine after the cut.
    fn cut_and_recover(
        fs: &FaultFileSystem,
        point: &CutPoint,
        options: &StorageOptions,
        allowed: &Allowed,
    ) -> Result<(RaftStorage, PersistedState, usize, FaultFileSystem), String> {
        let after = fs
            .power_cut(point.mode, point.seed)
            .map_err(|e| format!("{point}: the model failed: {e}"))?;
        let options = with_file_system(options, &after);
        let (storage, recovered) = RaftStorage::open(data_dir(), IDENTITY, options)
            .map_err(|e| format!("{point}: recovery refused the folder: {e}"))?;
        let floor = &allowed.states[allowed.acked];
        if recovered.hard_state.term < floor.hard_state.term {
            return Err(format!(
                "{point}: the term went back from {} (acknowledged) to {}",
                floor.hard_state.term, recovered.hard_state.term
            ));
        }
        let upper = allowed.appended.min(allowed.states.len() - 1);
        match (allowed.acked..=upper).find(|&n| allowed.states[n] == recovered) {
            Some(n) => Ok((storage, recovered, n, after)),
            None => {
                let lost = (0..allowed.acked)
                    .rev()
                    .find(|&n| allowed.states[n] == recovered)
                    .map_or("a state no prefix of the writes gives".to_owned(), |n| {
                        format!("the state after {n} writes")
                    });
                Err(format!(
                    "{point}: {} writes were acknowledged, at most {upper} appended, but recovery gave {lost}: \
                     hard state {:?}, snapshot at {:?}, last index {}",
                    allowed.acked,
                    recovered.hard_state,
                    recovered.snapshot.as_ref().map(|s| s.meta.index),
                    recovered.last_index(),
                ))
            }
        }
    }

    /// A write that follows `state`, for checking that a recovered storage
    /// takes writes again.
    fn next_write(state: &PersistedState, seq: u64) -> Write {
        let term = state
            .entries
            .last()
            .map_or(state.hard_state.term, |e| e.term)
            .max(state.hard_state.term)
            .max(1);
        Write {
            seq,
            entries: vec![entry(state.last_index() + 1, term, 50)],
            ..Write::default()
        }
    }

    /// After a cut and recovery: one more write, synced, must be there after
    /// a clean restart.
    fn check_it_writes_again(
        mut storage: RaftStorage,
        recovered: PersistedState,
        fs: &FaultFileSystem,
        options: &StorageOptions,
        point: &CutPoint,
    ) -> Result<(), String> {
        let write = next_write(&recovered, 1);
        storage
            .append(&write)
            .and_then(|()| storage.sync())
            .map_err(|e| format!("{point}: after recovery, a write failed: {e}"))?;
        drop(storage);
        let (_, reopened) = RaftStorage::open(data_dir(), IDENTITY, with_file_system(options, fs))
            .map_err(|e| format!("{point}: after recovery and one write, a restart failed: {e}"))?;
        let mut expected = recovered;
        expected.apply(&write);
        if reopened != expected {
            return Err(format!(
                "{point}: a write made after recovery is not there after a restart"
            ));
        }
        Ok(())
    }

    /// The seeds of the random workloads: `DISTRIBKV_POWER_CUT_SEED` alone,
    /// or `DISTRIBKV_POWER_CUT_RUNS` (default 16) of them from a fixed start.
    fn workload_seeds() -> (Vec<u64>, bool) {
        if let Some(seed) = std::env::var("DISTRIBKV_POWER_CUT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            return (vec![seed], false);
        }
        let runs = std::env::var("DISTRIBKV_POWER_CUT_RUNS")
            .ok()
            .and_then(|s| s.parse().ok());
        let default = runs.is_none();
        (
            (1..=runs.unwrap_or(16)).map(|i| 7_000 + i).collect(),
            default,
        )
    }

    /// Tallies of a random workload.
    #[derive(Default)]
    struct Tally {
        cut_points: u64,
        operations: u64,
        writes: u64,
        restarts_checked: u64,
    }

    /// One random workload on an in-memory machine with a fork before every
    /// operation; each fork is cut with every mode and recovered.
    struct Workload {
        seed: u64,
        rng: Rng,
        fs: FaultFileSystem,
        options: StorageOptions,
        storage: Option<RaftStorage>,
        model: Model,
        /// States since the storage was opened: `states[n]` after `n` writes.
        states: Vec<PersistedState>,
        /// Number of the first operation each write's `append` could run.
        append_started: Vec<u64>,
        /// After each sync: operations run when it returned, and how many
        /// writes it acknowledged.
        acks: Vec<(u64, usize)>,
        tally: Tally,
    }

    impl Workload {
        fn new(seed: u64) -> Workload {
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
                append_started: Vec::new(),
                acks: Vec::new(),
                tally: Tally::default(),
            };
            workload.open();
            workload
        }

        fn fail(&self, message: String) -> ! {
            panic!(
                "{message}\nworkload seed {} (segment size {}, write buffer {}); replay: \
                 DISTRIBKV_POWER_CUT_SEED={} cargo test -p distribkv-native --test storage_power_cut random",
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
            self.append_started.clear();
            self.acks = vec![(0, 0)];
            self.check_forks();
        }

        fn storage(&mut self) -> &mut RaftStorage {
            self.storage.as_mut().expect("the storage is open")
        }

        fn run(mut self, steps: &[Step]) -> Tally {
            for step in steps {
                if let Some(write) = self.model.write_for(step) {
                    self.append_started.push(self.fs.operations());
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
            self.acks.push((self.fs.operations(), writes));
            let compacted = self.storage().maybe_compact();
            compacted.unwrap_or_else(|e| self.fail(format!("compaction failed: {e}")));
        }

        /// How many writes were acknowledged and appended at most, for a cut
        /// before `operation`.
        fn bounds_at(&self, operation: u64) -> (usize, usize) {
            let acked = self
                .acks
                .iter()
                .filter(|(returned, _)| *returned <= operation)
                .map(|(_, writes)| *writes)
                .max()
                .unwrap_or(0);
            // A write that needs no operation (an empty one) may be
            // acknowledged at the very operation its append started at.
            let appended = self
                .append_started
                .partition_point(|&start| start < operation);
            (acked, appended.max(acked))
        }

        /// Checks every fork taken since the last call, with every mode.
        fn check_forks(&mut self) {
            for fork in self.fs.take_forks() {
                self.check_fork(fork);
            }
        }

        fn check_fork(&mut self, fork: Fork) {
            let (acked, appended) = self.bounds_at(fork.operation);
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
                            if let Err(message) = check_it_writes_again(
                                storage,
                                recovered,
                                &after,
                                &self.options,
                                &point,
                            ) {
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
            let (acked, appended) = self.bounds_at(operation);
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
    fn steps_for(seed: u64, count: usize) -> Vec<Step> {
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

    #[test]
    fn random_cut_points_lose_no_acknowledged_write() {
        let started = Instant::now();
        let (seeds, default) = workload_seeds();
        let mut total = Tally::default();
        for &seed in &seeds {
            let tally = Workload::new(seed).run(&steps_for(seed, 200));
            total.cut_points += tally.cut_points;
            total.operations += tally.operations;
            total.writes += tally.writes;
            total.restarts_checked += tally.restarts_checked;
        }
        println!(
            "power cuts: {} cut points over {} workloads ({} file-system operations, {} writes), \
             0 acknowledged writes lost, {} recovered storages written to and restarted, in {:.1} s",
            total.cut_points,
            seeds.len(),
            total.operations,
            total.writes,
            total.restarts_checked,
            started.elapsed().as_secs_f64()
        );
        if default {
            assert!(
                total.cut_points >= 10_000,
                "{} cut points",
                total.cut_points
            );
        }
    }

    /// Issue 15: cuts at every point of a segment roll that comes right after
    /// a group commit (before, during and after the seal's fsync, around the
    /// creation of the next segment and its folder's fsync) restart cleanly.
    #[test]
    fn every_cut_point_of_a_segment_roll_restarts_cleanly() {
        let fs = FaultFileSystem::in_memory(ROOT);
        let options = options_on(&fs, 400, 0);
        let (mut storage, _) = RaftStorage::open(data_dir(), IDENTITY, options.clone()).unwrap();
        let writes = simple_writes(20, 30);
        let states: Vec<_> = (0..=writes.len()).map(|n| oracle(&writes[..n])).collect();
        let length = |fs: &FaultFileSystem| fs.read(&segment(1)).unwrap().len() as u64;
        // Group commits of one write each, until the next one cannot fit.
        let mut next = 0;
        let mut frame = 0;
        while next < 2 || length(&fs) + frame <= options.segment_size {
            let before = length(&fs);
            storage.append(&writes[next]).unwrap();
            storage.sync().unwrap();
            frame = length(&fs) - before;
            next += 1;
        }
        let mut acks = vec![(fs.operations(), next)];
        fs.fork_before(|_, _| true);
        for write in &writes[next..next + 2] {
            storage.append(write).unwrap();
            storage.sync().unwrap();
            acks.push((fs.operations(), acks.last().unwrap().1 + 1));
        }
        let mut forks = fs.take_forks();
        let end = fs.operations();
        forks.push(Fork {
            operation: end,
            next: FileSystemOperation::SyncFolder(data_dir()),
            file_system: fs.fork(),
        });

        let temporary = data_dir().join("wal-00000000000000000002.log.tmp");
        let roll: Vec<FileSystemOperation> = forks.iter().take(9).map(|f| f.next.clone()).collect();
        assert_eq!(
            roll,
            [
                FileSystemOperation::Write {
                    path: segment(1),
                    bytes: 10
                },
                FileSystemOperation::SyncFile(segment(1)),
                FileSystemOperation::CreateFile(temporary.clone()),
                FileSystemOperation::Write {
                    path: temporary.clone(),
                    bytes: 40
                },
                FileSystemOperation::SyncFile(temporary.clone()),
                FileSystemOperation::Rename {
                    from: temporary,
                    to: segment(2)
                },
                FileSystemOperation::SyncFolder(data_dir()),
                FileSystemOperation::Write {
                    path: segment(2),
                    bytes: frame as usize
                },
                FileSystemOperation::SyncFile(segment(2)),
            ],
            "the seal is written and fsynced before the next segment is created"
        );

        let mut rng = Rng::new(15);
        let mut cut_points = 0;
        for (position, fork) in forks.iter().enumerate() {
            let is_end = position + 1 == forks.len();
            let allowed = Allowed {
                states: &states,
                acked: acks
                    .iter()
                    .filter(|(returned, _)| *returned <= fork.operation)
                    .map(|(_, n)| *n)
                    .max()
                    .unwrap(),
                appended: next + 2,
            };
            for (mode, repeats) in [
                (PowerCut::DropUnsynced, 1),
                (PowerCut::TornPage, 8),
                (PowerCut::Reorder, 16),
            ] {
                for _ in 0..repeats {
                    let point = CutPoint {
                        operation: fork.operation,
                        next: (!is_end).then_some(&fork.next),
                        mode,
                        seed: rng.next_u64(),
                    };
                    let copy = fork.file_system.fork();
                    let (storage, recovered, _, after) =
                        cut_and_recover(&copy, &point, &options, &allowed)
                            .unwrap_or_else(|message| panic!("{message}"));
                    check_it_writes_again(storage, recovered, &after, &options, &point)
                        .unwrap_or_else(|message| panic!("{message}"));
                    cut_points += 1;
                }
            }
        }
        println!(
            "segment roll: {cut_points} cut points over {} operations, all restarted cleanly",
            forks.len()
        );
    }

    #[test]
    fn acknowledged_writes_in_new_nested_folders_survive_a_power_cut() {
        let fs = FaultFileSystem::in_memory(ROOT);
        let options = options_on(&fs, 64 << 20, 1 << 20);
        let (mut storage, _) = RaftStorage::open(data_dir(), IDENTITY, options.clone()).unwrap();
        let writes = simple_writes(3, 20);
        for write in &writes {
            storage.append(write).unwrap();
        }
        assert_eq!(storage.sync().unwrap(), Some(3));
        let after = fs.power_cut(PowerCut::DropUnsynced, 1).unwrap();
        let (_, recovered) =
            RaftStorage::open(data_dir(), IDENTITY, with_file_system(&options, &after)).unwrap();
        assert_eq!(recovered, oracle(&writes));
    }

    /// On a fault file system backed by a real folder, the folder holds only
    /// what was fsynced: a process that stops without any cut (as after
    /// `kill -9`) leaves what a power cut keeps, and the next process, on
    /// the real file system, recovers exactly the acknowledged writes.
    #[test]
    fn a_backed_fault_file_system_leaves_the_next_process_what_a_power_cut_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node-2").join("data");
        let writes = {
            let mut model = Model::default();
            steps_for(99, 300)
                .iter()
                .filter_map(|step| model.write_for(step))
                .take(64)
                .collect::<Vec<_>>()
        };
        let machine = FaultFileSystem::backed_by(dir.path()).unwrap();
        let options = StorageOptions {
            segment_size: 600,
            // Every record reaches the file system at once.
            write_buffer_size: 0,
            file_system: std::sync::Arc::new(machine.clone()),
            ..StorageOptions::default()
        };
        let (mut storage, _) = RaftStorage::open(&data, IDENTITY, options).unwrap();
        let mut acked = 0;
        for (position, write) in writes.iter().enumerate() {
            storage.append(write).unwrap();
            if position % 7 == 3 {
                storage.sync().unwrap();
                storage.maybe_compact().unwrap();
                acked = position + 1;
            }
        }
        assert!(acked < writes.len() && machine.unsynced_bytes() > 0);
        // What the model says a power cut keeps now.
        let cut = machine.fork().power_cut(PowerCut::DropUnsynced, 1).unwrap();
        let cut_options = StorageOptions {
            file_system: std::sync::Arc::new(cut),
            ..StorageOptions::default()
        };
        let (_, expected) = RaftStorage::open(&data, IDENTITY, cut_options).unwrap();
        // The process dies: its memory (the page cache of the model) is gone.
        drop(storage);
        drop(machine);
        let (_, recovered) = RaftStorage::open(&data, IDENTITY, StorageOptions::default()).unwrap();
        assert_eq!(recovered, expected);
        // Segment rolls fsync records appended after the last sync too.
        let kept = (acked..=writes.len())
            .find(|&n| oracle(&writes[..n]) == recovered)
            .expect("a prefix of the writes");
        println!(
            "{acked} writes acknowledged, {kept} kept, {} appended",
            writes.len()
        );
    }

    /// The worker reports a write durable only once an fsync covering it has
    /// returned: every fsync is held, and while it is, the power is cut with
    /// every mode; everything reported durable before must survive.
    #[test]
    fn the_worker_reports_a_write_durable_only_after_its_fsync() {
        let fs = FaultFileSystem::in_memory(ROOT);
        let options = options_on(&fs, 700, 1 << 20);
        let faults = options.faults.clone();
        let (storage, _) = RaftStorage::open(data_dir(), IDENTITY, options.clone()).unwrap();
        let mut model = Model::default();
        let steps = steps_for(15, 400);
        let writes: Vec<Write> = steps
            .iter()
            .filter_map(|step| model.write_for(step))
            .take(120)
            .collect();
        let states: Vec<_> = (0..=writes.len()).map(|n| oracle(&writes[..n])).collect();
        assert_eq!(writes.last().unwrap().seq, writes.len() as u64);

        faults.hold_syncs();
        let (worker, mut events) = StorageWorker::spawn(storage, 8).unwrap();
        let feeder = {
            let writes = writes.clone();
            std::thread::spawn(move || {
                for write in writes {
                    worker.blocking_persist(write).unwrap();
                }
                worker
            })
        };
        let mut acked = 0usize;
        let mut held = 0;
        let mut cut_points = 0;
        let mut rng = Rng::new(16);
        let deadline = Instant::now() + Duration::from_secs(300);
        while acked < writes.len() {
            assert!(
                Instant::now() < deadline,
                "the worker is stuck at {acked} of {} writes",
                writes.len()
            );
            let is_held = faults.wait_for_held_sync(Duration::from_millis(20));
            while let Ok(event) = events.try_recv() {
                match event {
                    StorageEvent::Durable { seq } => acked = acked.max(seq as usize),
                    StorageEvent::Failed { error } => panic!("the worker failed: {error}"),
                }
            }
            if !is_held {
                continue;
            }
            held += 1;
            // The worker waits before an fsync: cut the power now.
            let now = fs.fork();
            let allowed = Allowed {
                states: &states,
                acked,
                appended: writes.len(),
            };
            for mode in PowerCut::ALL {
                let point = CutPoint {
                    operation: now.operations(),
                    next: None,
                    mode,
                    seed: rng.next_u64(),
                };
                let copy = now.fork();
                if let Err(message) = cut_and_recover(&copy, &point, &options, &allowed) {
                    panic!("while fsync {held} was held, {message}");
                }
                cut_points += 1;
            }
            faults.release_one_sync();
        }
        faults.release_syncs();
        let worker = feeder.join().unwrap();
        drop(worker.shutdown());
        assert!(held > 50, "{held} fsyncs held");
        println!(
            "worker: {cut_points} cut points at {held} held fsyncs, 0 acknowledged writes lost"
        );
    }
}
