//! The sharded host's store (`shard::store`): a data folder of the
//! one-log-per-group layout (`groups/controller/`, `groups/group-N/`, each a
//! single-group log) is converted into the multi-group log, every group's
//! term, vote, log and snapshot intact; a power cut at any file-system
//! operation of the conversion leaves a folder that opens to the same
//! states; a folder in `groups/` that is no group's is refused, naming it,
//! with nothing changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use distribkv_core::raft::PersistedState;
use distribkv_core::rng::Rng;
use distribkv_core::shard::GroupId;
use distribkv_native::shard::store::{self, HostStoreError, legacy_group_dir};
use distribkv_native::storage::multi::MultiStorageOptions;
use distribkv_native::storage::{
    FaultFileSystem, FaultInjector, FileSystem, PowerCut, RaftStorage, StorageOptions,
};

use crate::multi_support::random_step;
use crate::support::{IDENTITY, Model};

type States = BTreeMap<GroupId, PersistedState>;

/// Groups of the old layout: the controller's and three shard groups.
const OLD_GROUPS: [GroupId; 4] = [0, 1, 2, 7];
/// A group the host holds that the old folder had no log for.
const NEW_GROUP: GroupId = 9;

fn options_on(file_system: Arc<dyn FileSystem>) -> MultiStorageOptions {
    MultiStorageOptions {
        storage: StorageOptions {
            segment_size: 1_500,
            file_system,
            faults: FaultInjector::new(),
            ..StorageOptions::default()
        },
        ..MultiStorageOptions::default()
    }
}

fn held() -> BTreeSet<GroupId> {
    OLD_GROUPS.iter().copied().chain([NEW_GROUP]).collect()
}

/// Writes a folder of the old layout under `data_dir`: random writes
/// (entries, overwrites, votes, snapshots) per group, each group's log
/// in its own single-group storage. Returns what each recovers.
fn write_old_layout(data_dir: &Path, options: &MultiStorageOptions, seed: u64) -> States {
    let mut rng = Rng::new(seed);
    let mut expected = States::new();
    for group in OLD_GROUPS {
        let dir = legacy_group_dir(data_dir, group);
        let (mut storage, _) = RaftStorage::open(&dir, IDENTITY, options.storage.clone())
            .expect("a new single-group log");
        let mut model = Model::default();
        for _ in 0..40 {
            if let Some(write) = model.write_for(&random_step(&mut rng)) {
                storage.append(&write).expect("append");
            }
        }
        storage.sync().expect("sync");
        storage.maybe_compact().expect("compact");
        drop(storage);
        let (_, state) = RaftStorage::open(&dir, IDENTITY, options.storage.clone())
            .expect("the old log reopens");
        assert_eq!(
            state, model.state,
            "group {group}: the old log is the model's"
        );
        expected.insert(group, state);
    }
    expected.insert(NEW_GROUP, PersistedState::default());
    expected
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_old_folder_is_converted_with_every_group_intact() {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    let options = MultiStorageOptions::default();
    let options = options_on(options.storage.file_system);
    let expected = write_old_layout(&data_dir, &options, 7);
    assert!(
        expected.values().any(|s| s.snapshot.is_some()),
        "the workload snapshots"
    );
    // An interrupted write's temporary file, which opening the old log
    // removes: the conversion must not trip over it.
    let stray_temporary = legacy_group_dir(&data_dir, 1).join("wal-00000000000000000042.log.tmp");
    std::fs::write(&stray_temporary, b"half a segment").unwrap();

    let (log, states) = store::open(&data_dir, IDENTITY, options.clone(), &held())
        .expect("the old folder is converted");
    assert_eq!(
        states, expected,
        "every group's state survives the conversion"
    );
    assert_eq!(log.groups().count(), OLD_GROUPS.len());
    drop(log);
    assert_eq!(
        names(&data_dir),
        BTreeSet::from(["wal".to_string()]),
        "the old files are gone"
    );
    assert!(
        names(&data_dir.join("wal"))
            .iter()
            .any(|n| n.starts_with("mwal-"))
    );

    // Reopened, the log holds the same; the converted log takes new writes.
    let (_, again) = store::open(&data_dir, IDENTITY, options, &held()).expect("reopen");
    assert_eq!(again, expected);
}

#[test]
fn a_folder_in_groups_that_is_no_groups_is_refused_untouched() {
    let temporary = tempfile::tempdir().unwrap();
    let data_dir = temporary.path().join("data");
    let options = options_on(MultiStorageOptions::default().storage.file_system);
    write_old_layout(&data_dir, &options, 8);
    let stray = data_dir.join("groups").join("notes");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("todo.txt"), b"keep me").unwrap();
    let before = names(&data_dir.join("groups"));

    let error = store::open(&data_dir, IDENTITY, options, &held())
        .expect_err("an unknown folder is refused");
    assert!(
        matches!(&error, HostStoreError::UnknownGroupFolder { path } if *path == stray),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&stray.display().to_string())
            && message.contains("move it out of the data folder"),
        "{message}"
    );
    assert_eq!(names(&data_dir), BTreeSet::from(["groups".to_string()]));
    assert_eq!(names(&data_dir.join("groups")), before);
}

const ROOT: &str = "/machine";

fn machine_data_dir() -> PathBuf {
    PathBuf::from(ROOT).join("host-1").join("data")
}

/// A power cut before any file-system operation of a conversion, in
/// every mode: the folder then opens (converting, or finishing the
/// deletion of the old files) to every group's state, and a second
/// open finds the same with no old file left.
#[test]
fn a_power_cut_anywhere_in_a_conversion_loses_nothing() {
    let fs = FaultFileSystem::in_memory(ROOT);
    let options = options_on(Arc::new(fs.clone()));
    let expected = write_old_layout(&machine_data_dir(), &options, 11);
    fs.fork_before(|_, _| true);
    let _ = fs.take_forks();
    let (_, states) = store::open(&machine_data_dir(), IDENTITY, options, &held())
        .expect("the conversion without a cut");
    assert_eq!(states, expected);
    let forks = fs.take_forks();
    fs.stop_forking();
    assert!(forks.len() > 50, "only {} operations", forks.len());
    let mut rng = Rng::new(3);
    let mut checked = 0;
    for fork in forks {
        for mode in PowerCut::ALL {
            let seed = rng.next_u64();
            let point = format!(
                "power cut ({mode:?}, seed {seed}) before operation {} ({})",
                fork.operation, fork.next
            );
            let after = fork
                .file_system
                .fork()
                .power_cut(mode, seed)
                .unwrap_or_else(|e| panic!("{point}: the model failed: {e}"));
            let options = options_on(Arc::new(after.clone()));
            let (log, states) =
                store::open(&machine_data_dir(), IDENTITY, options.clone(), &held())
                    .unwrap_or_else(|e| panic!("{point}: the folder was refused: {e}"));
            assert_eq!(states, expected, "{point}: the groups' states differ");
            drop(log);
            let (_, again) = store::open(&machine_data_dir(), IDENTITY, options, &held())
                .unwrap_or_else(|e| panic!("{point}: the second open failed: {e}"));
            assert_eq!(again, expected, "{point}: the second open differs");
            for group in OLD_GROUPS {
                let left = after
                    .list(&legacy_group_dir(&machine_data_dir(), group))
                    .unwrap_or_default();
                assert!(left.is_empty(), "{point}: group {group} left {left:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 150);
}
