//! The power-cut model itself: what each kind of cut keeps of unsynced
//! writes and unsynced folder changes, forks, stale handles, and the backed
//! variant whose real folder always holds the durable state.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use distribkv_native::storage::{
    FaultFileSystem, FileSystem, FileSystemOperation, PowerCut, WritableFile,
};

fn root() -> PathBuf {
    PathBuf::from("/machine")
}

fn at(name: &str) -> PathBuf {
    root().join(name)
}

/// A file system with the folder `data`, durably.
fn with_folder() -> FaultFileSystem {
    let fs = FaultFileSystem::in_memory(root());
    fs.create_dir(&at("data")).unwrap();
    fs.sync_dir(&root()).unwrap();
    fs
}

/// Creates `path` with `content`, fsyncs it and its folder.
fn durable_file(fs: &FaultFileSystem, path: &Path, content: &[u8]) -> Box<dyn WritableFile> {
    let mut file = fs.create(path).unwrap();
    file.write_all(content).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(path.parent().unwrap()).unwrap();
    file
}

fn names(fs: &FaultFileSystem, folder: &Path) -> BTreeSet<String> {
    fs.list(folder)
        .unwrap()
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect()
}

fn is_not_found<T: std::fmt::Debug>(result: io::Result<T>) -> bool {
    matches!(result, Err(e) if e.kind() == io::ErrorKind::NotFound)
}

#[test]
fn a_cut_keeps_what_was_fsynced_and_drops_the_rest() {
    let fs = with_folder();
    let path = at("data/log");
    let mut file = durable_file(&fs, &path, b"synced ");
    file.write_all(b"unsynced").unwrap();
    assert_eq!(
        fs.read(&path).unwrap(),
        b"synced unsynced",
        "the process sees its writes"
    );
    assert_eq!(fs.unsynced_bytes(), 8);
    let after = fs.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    assert_eq!(after.read(&path).unwrap(), b"synced ");
    assert_eq!(after.unsynced_bytes(), 0);
}

#[test]
fn names_not_fsynced_in_their_folder_may_vanish() {
    let fs = with_folder();
    let kept = at("data/kept");
    durable_file(&fs, &kept, b"k");
    // Created and fsynced, but its folder was not.
    let mut new = fs.create(&at("data/new")).unwrap();
    new.write_all(b"n").unwrap();
    new.sync_data().unwrap();
    fs.rename(&kept, &at("data/renamed")).unwrap();
    let after = fs.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    assert_eq!(names(&after, &at("data")), BTreeSet::from(["kept".into()]));
    assert_eq!(after.read(&kept).unwrap(), b"k");

    after.remove_file(&kept).unwrap();
    assert!(is_not_found(after.read(&kept)));
    let again = after.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    assert_eq!(
        again.read(&kept).unwrap(),
        b"k",
        "the removal was not durable"
    );
}

#[test]
fn a_new_folder_not_fsynced_in_its_parent_vanishes_with_its_files() {
    let fs = FaultFileSystem::in_memory(root());
    fs.create_dir(&at("a")).unwrap();
    fs.create_dir(&at("a/b")).unwrap();
    durable_file(&fs, &at("a/b/file"), b"x");
    fs.sync_dir(&at("a")).unwrap();
    // The root was never fsynced: `a` may be lost, and `b` and the file with it.
    let after = fs.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    assert!(names(&after, &root()).is_empty());
    assert!(is_not_found(after.read(&at("a/b/file"))));

    after.create_dir(&at("a")).unwrap();
    after.create_dir(&at("a/b")).unwrap();
    durable_file(&after, &at("a/b/file"), b"y");
    after.sync_dir(&at("a")).unwrap();
    after.sync_dir(&root()).unwrap();
    let again = after.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    assert_eq!(again.read(&at("a/b/file")).unwrap(), b"y");
}

#[test]
fn a_torn_page_keeps_the_writes_before_it_and_a_sector_aligned_part_of_it() {
    let head = vec![7u8; 100];
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let mut whole = head.clone();
    whole.extend_from_slice(&body);
    let mut tears = BTreeSet::new();
    let mut zero_filled = 0;
    for seed in 0..200 {
        let fs = with_folder();
        let path = at("data/log");
        let mut file = durable_file(&fs, &path, &head);
        file.write_all(&body[..3000]).unwrap();
        file.write_all(&body[3000..]).unwrap();
        let after = fs.power_cut(PowerCut::TornPage, seed).unwrap();
        let content = after.read(&path).unwrap();
        // Up to the tear: what was written; after it: nothing, or zeros.
        let tear = content
            .iter()
            .zip(&whole)
            .position(|(a, b)| a != b)
            .unwrap_or(content.len());
        assert!(content[tear..].iter().all(|&b| b == 0), "seed {seed}");
        if content.len() == whole.len() && tear < whole.len() {
            zero_filled += 1;
        } else {
            assert_eq!(content.len(), tear, "seed {seed}");
        }
        // The last page of the last write starts at 8192 (file offset);
        // the first write, 100..3100, survives whole.
        assert!(
            (8192..whole.len()).contains(&tear),
            "seed {seed}: tear at {tear}"
        );
        assert_eq!(tear % 512, 0, "seed {seed}: tear at {tear}");
        tears.insert(tear);
    }
    assert_eq!(
        tears.len(),
        4,
        "every sector boundary of the last page: {tears:?}"
    );
    assert!((50..150).contains(&zero_filled), "{zero_filled}");
}

#[test]
fn reordered_writes_and_names_survive_in_part_and_independently() {
    let mut file_outcomes = BTreeSet::new();
    let mut name_outcomes = BTreeSet::new();
    for seed in 0..300 {
        let fs = with_folder();
        let (a, b) = (at("data/a"), at("data/b"));
        let mut first = durable_file(&fs, &a, b"");
        let mut second = durable_file(&fs, &b, b"");
        for chunk in [b"1", b"2", b"3"] {
            first.write_all(chunk).unwrap();
            second.write_all(chunk).unwrap();
        }
        for name in ["x", "y", "z"] {
            let mut file = fs.create(&at(&format!("data/{name}"))).unwrap();
            file.write_all(name.as_bytes()).unwrap();
            file.sync_data().unwrap();
        }
        // An atomic write: the temporary is complete before the rename.
        let mut temporary = fs.create(&at("data/tmp")).unwrap();
        temporary.write_all(b"whole").unwrap();
        temporary.sync_data().unwrap();
        fs.rename(&at("data/tmp"), &at("data/final")).unwrap();

        let after = fs.power_cut(PowerCut::Reorder, seed).unwrap();
        let (kept_a, kept_b) = (after.read(&a).unwrap(), after.read(&b).unwrap());
        assert!(b"123".starts_with(&kept_a) && b"123".starts_with(&kept_b));
        file_outcomes.insert((kept_a.len(), kept_b.len()));
        let present = names(&after, &at("data"));
        for name in ["x", "y", "z"] {
            if present.contains(name) {
                assert_eq!(
                    after.read(&at(&format!("data/{name}"))).unwrap(),
                    name.as_bytes()
                );
            }
        }
        // The rename may be lost, and the creation too; but the content
        // was fsynced before the rename, so whichever name is there has it.
        match (present.contains("tmp"), present.contains("final")) {
            (true, false) => assert_eq!(after.read(&at("data/tmp")).unwrap(), b"whole"),
            (false, true) => assert_eq!(after.read(&at("data/final")).unwrap(), b"whole"),
            (false, false) => {}
            (true, true) => panic!("seed {seed}: both names of one file"),
        }
        name_outcomes.insert(["x", "y", "z"].map(|name| present.contains(name)).to_vec());
    }
    assert_eq!(
        file_outcomes.len(),
        16,
        "every pair of prefixes: {file_outcomes:?}"
    );
    assert_eq!(
        name_outcomes.len(),
        8,
        "every subset of the names: {name_outcomes:?}"
    );
}

#[test]
fn after_a_cut_the_old_handle_and_its_files_fail() {
    let fs = with_folder();
    let mut file = durable_file(&fs, &at("data/log"), b"a");
    let after = fs.power_cut(PowerCut::DropUnsynced, 1).unwrap();
    assert!(file.write_all(b"b").is_err());
    assert!(file.sync_data().is_err());
    assert!(fs.read(&at("data/log")).is_err());
    assert!(fs.create_dir(&at("other")).is_err());
    assert!(fs.power_cut(PowerCut::DropUnsynced, 1).is_err());
    assert_eq!(after.read(&at("data/log")).unwrap(), b"a");
}

#[test]
fn forks_are_independent_copies_taken_before_chosen_operations() {
    let fs = with_folder();
    fs.fork_before(|_, operation| matches!(operation, FileSystemOperation::SyncFile(_)));
    let start = fs.operations();
    let path = at("data/log");
    let mut file = fs.create(&path).unwrap();
    file.write_all(b"one").unwrap();
    file.sync_data().unwrap();
    file.write_all(b"two").unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(&at("data")).unwrap();
    let forks = fs.take_forks();
    assert_eq!(forks.len(), 2);
    assert_eq!(forks[0].operation, start + 2);
    assert_eq!(forks[0].next, FileSystemOperation::SyncFile(path.clone()));
    assert_eq!(forks[1].operation, start + 4);
    assert_eq!(forks[0].file_system.read(&path).unwrap(), b"one");
    assert_eq!(forks[1].file_system.read(&path).unwrap(), b"onetwo");
    // Before the first fsync, neither the content nor the name was durable.
    let cut = forks[0]
        .file_system
        .power_cut(PowerCut::DropUnsynced, 1)
        .unwrap();
    assert!(is_not_found(cut.read(&path)));
    // The original is untouched, and keeps running.
    assert_eq!(fs.read(&path).unwrap(), b"onetwo");
    file.write_all(b"three").unwrap();
    assert!(fs.take_forks().is_empty());
    assert_eq!(
        fs.power_cut(PowerCut::DropUnsynced, 1)
            .unwrap()
            .read(&path)
            .unwrap(),
        b"onetwo"
    );
}

#[test]
fn paths_outside_the_root_are_refused() {
    let fs = with_folder();
    assert!(fs.create(Path::new("/elsewhere/file")).is_err());
    assert!(fs.create(&at("data/../escape")).is_err());
    // The folders above the root exist; syncing them is harmless.
    assert_eq!(
        fs.create_dir(Path::new("/")).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    fs.sync_dir(Path::new("/")).unwrap();
}

fn real_names(folder: &Path) -> BTreeSet<String> {
    fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn a_backed_file_system_keeps_its_folder_equal_to_the_durable_state() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("old"), b"before").unwrap();
    let machine = FaultFileSystem::backed_by(dir.path()).unwrap();
    assert_eq!(machine.read(&dir.path().join("old")).unwrap(), b"before");
    let data = dir.path().join("data");
    machine.create_dir(&data).unwrap();
    assert!(!data.exists(), "not durable until its parent is fsynced");
    machine.sync_dir(dir.path()).unwrap();
    assert!(data.is_dir());

    let log = data.join("log");
    let mut file = machine.create(&log).unwrap();
    file.write_all(b"abc").unwrap();
    file.sync_data().unwrap();
    assert!(!log.exists(), "the name is not durable yet");
    machine.sync_dir(&data).unwrap();
    assert_eq!(fs::read(&log).unwrap(), b"abc");
    file.write_all(b"def").unwrap();
    assert_eq!(
        fs::read(&log).unwrap(),
        b"abc",
        "unsynced data stays in memory"
    );
    file.sync_data().unwrap();
    assert_eq!(fs::read(&log).unwrap(), b"abcdef");
    file.write_all(b"ghi").unwrap();
    machine.rename(&log, &data.join("moved")).unwrap();
    machine.remove_file(&dir.path().join("old")).unwrap();
    assert_eq!(real_names(&data), BTreeSet::from(["log".into()]));
    assert!(dir.path().join("old").exists());

    // A kill -9 of the process: the folder is what a power cut keeps.
    drop(file);
    drop(machine);
    let restarted = FaultFileSystem::backed_by(dir.path()).unwrap();
    assert_eq!(restarted.read(&log).unwrap(), b"abcdef");
    assert_eq!(
        real_names(dir.path()),
        BTreeSet::from(["data".into(), "old".into()])
    );

    // A cut that keeps unsynced changes writes them to the folder.
    let mut file = restarted.open_at(&log, 6).unwrap();
    file.write_all(b"ghi").unwrap();
    restarted.rename(&log, &data.join("moved")).unwrap();
    let mut kept_everything = false;
    for seed in 0..64 {
        let copy = restarted.fork();
        let after = copy.power_cut(PowerCut::Reorder, seed).unwrap();
        if after
            .read(&data.join("moved"))
            .is_ok_and(|c| c == b"abcdefghi")
        {
            kept_everything = true;
            break;
        }
    }
    assert!(kept_everything, "some cut keeps both unsynced changes");
    let after = restarted.power_cut(PowerCut::Reorder, 3).unwrap();
    for name in real_names(&data) {
        assert_eq!(
            fs::read(data.join(&name)).unwrap(),
            after.read(&data.join(&name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        real_names(&data),
        names(&after, &data),
        "the folder holds what survived"
    );
}
