//! [`FaultFileSystem`]: a model of a disk that loses power, for tests.

mod machine;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use distribkv_core::rng::Rng;

use super::fs::{FileSystem, WritableFile};
use machine::Machine;

/// What survives a power cut besides what was durable; see
/// [`FaultFileSystem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerCut {
    /// Everything not covered by an fsync is lost.
    DropUnsynced,
    /// The last unsynced page of each file is torn at a 512-byte boundary;
    /// the writes before it survive.
    TornPage,
    /// Random prefixes of each file's unsynced writes and of each name's
    /// unsynced changes survive, independently of one another.
    Reorder,
}

impl PowerCut {
    /// Every mode.
    pub const ALL: [PowerCut; 3] = [
        PowerCut::DropUnsynced,
        PowerCut::TornPage,
        PowerCut::Reorder,
    ];
}

/// One operation on the file system, as counted for cut points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSystemOperation {
    /// [`FileSystem::create_dir`].
    CreateFolder(PathBuf),
    /// [`FileSystem::create`].
    CreateFile(PathBuf),
    /// [`WritableFile::write_all`] of `bytes` bytes.
    Write {
        /// The file, by the name it was opened with.
        path: PathBuf,
        /// How many bytes.
        bytes: usize,
    },
    /// [`WritableFile::set_len`].
    SetLength {
        /// The file, by the name it was opened with.
        path: PathBuf,
        /// The new length.
        length: u64,
    },
    /// [`WritableFile::sync_data`].
    SyncFile(PathBuf),
    /// [`FileSystem::rename`].
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// [`FileSystem::remove_file`].
    RemoveFile(PathBuf),
    /// [`FileSystem::sync_dir`].
    SyncFolder(PathBuf),
}

impl fmt::Display for FileSystemOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSystemOperation::CreateFolder(path) => {
                write!(f, "create folder {}", path.display())
            }
            FileSystemOperation::CreateFile(path) => write!(f, "create {}", path.display()),
            FileSystemOperation::Write { path, bytes } => {
                write!(f, "write {bytes} bytes to {}", path.display())
            }
            FileSystemOperation::SetLength { path, length } => {
                write!(f, "set the length of {} to {length}", path.display())
            }
            FileSystemOperation::SyncFile(path) => write!(f, "fsync {}", path.display()),
            FileSystemOperation::Rename { from, to } => {
                write!(f, "rename {} to {}", from.display(), to.display())
            }
            FileSystemOperation::RemoveFile(path) => write!(f, "remove {}", path.display()),
            FileSystemOperation::SyncFolder(path) => write!(f, "fsync folder {}", path.display()),
        }
    }
}

/// A copy of a [`FaultFileSystem`] taken right before an operation.
#[derive(Debug)]
pub struct Fork {
    /// Number of the operation it was taken before (that many operations
    /// had run).
    pub operation: u64,
    /// The operation that came next.
    pub next: FileSystemOperation,
    /// The copy: in memory, independent of the original, its power still on.
    pub file_system: FaultFileSystem,
}

/// Chooses the operations to fork before.
type ForkRule = Arc<dyn Fn(u64, &FileSystemOperation) -> bool + Send + Sync>;

/// A model of a disk that loses power, for tests, with the semantics of
/// LazyFS and of RocksDB's `FaultInjectionTestFS`.
///
/// The model keeps, for every file, what is *durable* (what an fsync
/// covered) apart from what the running process sees, and for every folder,
/// the entry changes (files created, renamed, removed) not yet covered by an
/// fsync of that folder. A [power cut](FaultFileSystem::power_cut) keeps the
/// durable state and, depending on the [`PowerCut`] mode, some of the rest:
///
/// - [`PowerCut::DropUnsynced`]: nothing else. Every write not yet covered by
///   an fsync is lost, and so is every file created, renamed or removed in a
///   folder not fsynced since.
/// - [`PowerCut::TornPage`]: in each file, the unsynced writes reach the disk
///   except the last page of the last one, which is torn at a 512-byte
///   boundary: its sectors after the tear are missing, or read as zeros
///   (the file's length reached the disk but their data did not). Folders
///   keep only what was fsynced.
/// - [`PowerCut::Reorder`]: each file keeps a random prefix of its unsynced
///   writes and each name in a folder a random prefix of its unsynced
///   changes, independently of the other files and names: unsynced writes
///   to different files survive in another order than they were made.
///
/// What the model assumes of a real disk: a 512-byte sector is written whole
/// or not at all, writes within one file reach the disk in order, changes of
/// one name in one folder too, and the contents of a file do not depend on
/// its name being durable (an fsynced file whose creation was lost is simply
/// gone).
///
/// # Backed by a real folder
///
/// [`FaultFileSystem::backed_by`] keeps the model's durable state in a real
/// folder at all times: unsynced data lives only in the process's memory
/// and is written to the real file when it is fsynced, and a file's name
/// appears in the real folder when its folder is fsynced. So a `kill -9` of
/// a process using it is a [`PowerCut::DropUnsynced`] of the machine, and a
/// later process (with any file system) reads what survived.
/// [`FaultFileSystem::in_memory`] keeps everything in memory, for fast
/// in-process tests.
///
/// # Cut points
///
/// Every call that changes something is an *operation*, numbered from 0.
/// [`fork_before`](FaultFileSystem::fork_before) makes the file system keep
/// an in-memory copy of itself right before chosen operations
/// ([`take_forks`](FaultFileSystem::take_forks)): a test runs its workload
/// once and then cuts the power of each copy, as if the power had failed at
/// that point. Cutting the power before an fsync with [`PowerCut::Reorder`]
/// or [`PowerCut::TornPage`] covers a cut *during* that fsync.
///
/// # Handles
///
/// Clones share the same disk. After a [power cut](Self::power_cut), this
/// handle and every file opened through it fail with an error, as the
/// process that used them would be gone; the handle `power_cut` returns is
/// the machine after the restart.
#[derive(Clone)]
pub struct FaultFileSystem {
    shared: Arc<Mutex<Shared>>,
    /// The power-on period this handle belongs to.
    epoch: u64,
}

struct Shared {
    machine: Machine,
    fork_rule: Option<ForkRule>,
    forks: Vec<Fork>,
}

impl fmt::Debug for FaultFileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("FaultFileSystem")
            .field("root", &shared.machine.root())
            .field("backed", &shared.machine.is_backed())
            .field("epoch", &self.epoch)
            .field("operations", &shared.machine.operations())
            .finish_non_exhaustive()
    }
}

impl FaultFileSystem {
    /// A file system held in memory whose only folder at first is `root`
    /// (a path of the caller's choice, never touched on disk). Every path
    /// used must lie inside it.
    pub fn in_memory(root: impl Into<PathBuf>) -> FaultFileSystem {
        FaultFileSystem::start(Machine::in_memory(root.into()))
    }

    /// A file system over the existing real folder `root`, whose content is
    /// its durable state from the start and at all times after: unsynced
    /// data stays in memory until fsynced. Meant for test-sized data: the
    /// model also holds every file in memory.
    pub fn backed_by(root: impl Into<PathBuf>) -> io::Result<FaultFileSystem> {
        Ok(FaultFileSystem::start(Machine::load(root.into())?))
    }

    fn start(machine: Machine) -> FaultFileSystem {
        let epoch = machine.epoch();
        FaultFileSystem {
            shared: Arc::new(Mutex::new(Shared {
                machine,
                fork_rule: None,
                forks: Vec::new(),
            })),
            epoch,
        }
    }

    /// Cuts the power: keeps what was durable and, by `mode`, some of the
    /// rest (random choices drawn from `seed`), then returns the handle of
    /// the restarted machine. This handle, its clones and the files opened
    /// through them fail from now on. A backed file system updates its
    /// folder to what survived.
    pub fn power_cut(&self, mode: PowerCut, seed: u64) -> io::Result<FaultFileSystem> {
        let mut shared = self.lock();
        shared.machine.check_epoch(self.epoch)?;
        shared.machine.power_cut(mode, &mut Rng::new(seed))?;
        Ok(FaultFileSystem {
            shared: self.shared.clone(),
            epoch: shared.machine.epoch(),
        })
    }

    /// How many operations ran so far (the number of the next one).
    pub fn operations(&self) -> u64 {
        self.lock().machine.operations()
    }

    /// From now on, keeps a [`Fork`] before every operation for which
    /// `rule(number, operation)` holds, until [`take_forks`](Self::take_forks).
    pub fn fork_before(
        &self,
        rule: impl Fn(u64, &FileSystemOperation) -> bool + Send + Sync + 'static,
    ) {
        self.lock().fork_rule = Some(Arc::new(rule));
    }

    /// Stops forking.
    pub fn stop_forking(&self) {
        self.lock().fork_rule = None;
    }

    /// The forks kept since the last call, oldest first.
    pub fn take_forks(&self) -> Vec<Fork> {
        std::mem::take(&mut self.lock().forks)
    }

    /// An independent copy of the file system as it is now, in memory.
    pub fn fork(&self) -> FaultFileSystem {
        FaultFileSystem::start(self.lock().machine.in_memory_copy())
    }

    /// Bytes written but not yet fsynced, over all files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.lock().machine.unsynced_bytes()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding this lock comes from a test thread that
        // already failed; the model is updated only after checks pass.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one operation: checks that the power is on, counts it, forks
    /// before it if asked to, then runs `body` on the machine.
    fn operate<T>(
        &self,
        operation: impl FnOnce() -> FileSystemOperation,
        body: impl FnOnce(&mut Machine) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut shared = self.lock();
        shared.machine.check_epoch(self.epoch)?;
        if let Some(rule) = shared.fork_rule.clone() {
            let number = shared.machine.operations();
            let next = operation();
            if rule(number, &next) {
                let file_system = FaultFileSystem::start(shared.machine.in_memory_copy());
                shared.forks.push(Fork {
                    operation: number,
                    next,
                    file_system,
                });
            }
        }
        shared.machine.count_operation();
        body(&mut shared.machine)
    }

    /// Runs a call that changes nothing.
    fn inspect<T>(&self, body: impl FnOnce(&Machine) -> io::Result<T>) -> io::Result<T> {
        let shared = self.lock();
        shared.machine.check_epoch(self.epoch)?;
        body(&shared.machine)
    }
}

impl FileSystem for FaultFileSystem {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.operate(
            || FileSystemOperation::CreateFolder(path.to_owned()),
            |machine| machine.create_dir(path),
        )
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.inspect(|machine| machine.list(path))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inspect(|machine| machine.read(path))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let inode = self.operate(
            || FileSystemOperation::CreateFile(path.to_owned()),
            |machine| machine.create(path),
        )?;
        Ok(Box::new(self.file(inode, path)))
    }

    fn open_at(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        let inode = self.inspect(|machine| machine.open(path))?;
        let mut file = self.file(inode, path);
        file.position = Some(offset);
        Ok(Box::new(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.operate(
            || FileSystemOperation::Rename {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            |machine| machine.rename(from, to),
        )
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.operate(
            || FileSystemOperation::RemoveFile(path.to_owned()),
            |machine| machine.remove_file(path),
        )
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.operate(
            || FileSystemOperation::SyncFolder(path.to_owned()),
            |machine| machine.sync_dir(path),
        )
    }
}

impl FaultFileSystem {
    fn file(&self, inode: u64, path: &Path) -> FaultFile {
        FaultFile {
            file_system: self.clone(),
            inode,
            path: path.to_owned(),
            position: None,
        }
    }
}

/// A file open for writing on a [`FaultFileSystem`].
struct FaultFile {
    file_system: FaultFileSystem,
    inode: u64,
    /// The name it was opened with, for [`FileSystemOperation`]s.
    path: PathBuf,
    /// Where `write_all` writes: the file's end (`None`), or an offset
    /// (opened with [`FileSystem::open_at`]).
    position: Option<u64>,
}

impl fmt::Debug for FaultFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .field("inode", &self.inode)
            .finish_non_exhaustive()
    }
}

impl FaultFile {
    /// One write of `bytes` at `offset`, or at the end (`None`).
    fn write(&self, offset: Option<u64>, bytes: &[u8]) -> io::Result<()> {
        self.file_system.operate(
            || FileSystemOperation::Write {
                path: self.path.clone(),
                bytes: bytes.len(),
            },
            |machine| machine.write(self.inode, offset, bytes),
        )
    }
}

impl WritableFile for FaultFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(self.position, bytes)?;
        if let Some(offset) = &mut self.position {
            *offset += bytes.len() as u64;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.write(Some(offset), bytes)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        self.file_system.operate(
            || FileSystemOperation::SetLength {
                path: self.path.clone(),
                length,
            },
            |machine| machine.set_len(self.inode, length),
        )?;
        self.position = None;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file_system.operate(
            || FileSystemOperation::SyncFile(self.path.clone()),
            |machine| machine.sync_file(self.inode),
        )
    }
}
