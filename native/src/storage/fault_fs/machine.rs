//! The model behind [`FaultFileSystem`](super::FaultFileSystem): files as
//! inodes with a durable and a volatile content, folders as name tables in
//! a volatile and a durable version, the changes between the two, and the
//! power cut that decides which of them survive.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Seek as _, SeekFrom, Write as _};
use std::path::{Component, Path, PathBuf};

use distribkv_core::rng::Rng;

use super::PowerCut;

mod power_cut;

/// Size of a sector: written whole or not at all.
const SECTOR: u64 = 512;
/// Size of a page of the page cache.
const PAGE: u64 = 4096;
/// Name of the file a backed file system writes a new file's content to
/// before renaming it into place, so that a `kill -9` never leaves a file
/// with part of its durable content.
const STAGING: &str = ".fault-fs-staging";

/// What a name in a folder refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Folder,
}

/// The entries of one folder.
type Folder = BTreeMap<OsString, Node>;

/// Folders by path relative to the root (the root is the empty path).
/// Paths sort parents first.
type Tree = BTreeMap<PathBuf, Folder>;

/// One unsynced change of a file's content.
#[derive(Clone, Debug)]
enum FileChange {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl FileChange {
    fn apply(&self, content: &mut Vec<u8>) {
        match self {
            FileChange::Write { offset, bytes } => {
                let offset = *offset as usize;
                let end = offset + bytes.len();
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[offset..end].copy_from_slice(bytes);
            }
            FileChange::SetLen(length) => content.resize(*length as usize, 0),
        }
    }

    /// The first byte it may change.
    fn first_offset(&self) -> u64 {
        match self {
            FileChange::Write { offset, .. } => *offset,
            FileChange::SetLen(length) => *length,
        }
    }
}

/// A file.
#[derive(Clone, Debug, Default)]
struct Inode {
    /// What an fsync covered: survives any power cut (if the file's name does).
    durable: Vec<u8>,
    /// What the running process sees: `durable` with `unsynced` applied.
    content: Vec<u8>,
    /// Changes since the last fsync, oldest first.
    unsynced: Vec<FileChange>,
}

/// One unsynced change of a folder's entries.
#[derive(Clone, Debug)]
enum EntryChange {
    Link { name: OsString, node: Node },
    Unlink { name: OsString },
    Rename { from: OsString, to: OsString },
}

impl EntryChange {
    fn apply(&self, folder: &mut Folder) {
        match self {
            EntryChange::Link { name, node } => {
                folder.insert(name.clone(), *node);
            }
            EntryChange::Unlink { name } => {
                folder.remove(name);
            }
            EntryChange::Rename { from, to } => {
                if let Some(node) = folder.remove(from) {
                    folder.insert(to.clone(), node);
                }
            }
        }
    }

    /// The names it changes.
    fn names(&self) -> Vec<OsString> {
        match self {
            EntryChange::Link { name, .. } | EntryChange::Unlink { name } => vec![name.clone()],
            EntryChange::Rename { from, to } => vec![from.clone(), to.clone()],
        }
    }
}

/// The whole modelled machine: its disk and its page cache.
#[derive(Clone, Debug)]
pub(super) struct Machine {
    /// Where the files are, as the process names them.
    root: PathBuf,
    /// Whether `root` is a real folder kept equal to the durable state.
    backed: bool,
    /// Power-on period; raised by every power cut.
    epoch: u64,
    /// Operations so far.
    operations: u64,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// The folders as the process sees them.
    volatile: Tree,
    /// The folders as they are durably (including folders whose own entry
    /// is not durable yet: they are reachable only once it is).
    durable: Tree,
    /// Per folder, entry changes since its last fsync, oldest first.
    unsynced_entries: BTreeMap<PathBuf, Vec<EntryChange>>,
}

fn error(kind: io::ErrorKind, message: String) -> io::Error {
    io::Error::new(kind, message)
}

impl Machine {
    /// An empty machine in memory with the folder `root`.
    pub(super) fn in_memory(root: PathBuf) -> Machine {
        let empty: Tree = [(PathBuf::new(), Folder::new())].into();
        Machine {
            root,
            backed: false,
            epoch: 0,
            operations: 0,
            inodes: BTreeMap::new(),
            next_inode: 1,
            volatile: empty.clone(),
            durable: empty,
            unsynced_entries: BTreeMap::new(),
        }
    }

    /// A machine whose durable state is the real folder `root`, loaded now.
    pub(super) fn load(root: PathBuf) -> io::Result<Machine> {
        let mut machine = Machine::in_memory(root);
        machine.backed = true;
        machine.load_folder(PathBuf::new())?;
        machine.volatile = machine.durable.clone();
        Ok(machine)
    }

    fn load_folder(&mut self, relative: PathBuf) -> io::Result<()> {
        let real = self.root.join(&relative);
        let mut folder = Folder::new();
        for entry in fs::read_dir(&real)? {
            let entry = entry?;
            let name = entry.file_name();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                folder.insert(name.clone(), Node::Folder);
                self.load_folder(relative.join(&name))?;
            } else if name == STAGING {
                // Left by a process killed while it made a name durable.
                fs::remove_file(entry.path())?;
            } else if kind.is_file() {
                let content = fs::read(entry.path())?;
                let id = self.new_inode(content.clone());
                self.inodes.get_mut(&id).expect("just added").durable = content;
                folder.insert(name, Node::File(id));
            } else {
                return Err(error(
                    io::ErrorKind::Unsupported,
                    format!("{} is neither a file nor a folder", entry.path().display()),
                ));
            }
        }
        self.durable.insert(relative, folder);
        Ok(())
    }

    /// The same machine in memory only, independent of this one.
    pub(super) fn in_memory_copy(&self) -> Machine {
        Machine {
            backed: false,
            ..self.clone()
        }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn is_backed(&self) -> bool {
        self.backed
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(super) fn operations(&self) -> u64 {
        self.operations
    }

    pub(super) fn count_operation(&mut self) {
        self.operations += 1;
    }

    pub(super) fn unsynced_bytes(&self) -> u64 {
        self.inodes
            .values()
            .flat_map(|inode| &inode.unsynced)
            .map(|change| match change {
                FileChange::Write { bytes, .. } => bytes.len() as u64,
                FileChange::SetLen(_) => 0,
            })
            .sum()
    }

    /// Fails unless the power has stayed on since `epoch`.
    pub(super) fn check_epoch(&self, epoch: u64) -> io::Result<()> {
        if epoch == self.epoch {
            Ok(())
        } else {
            Err(io::Error::other(
                "the power was cut: this file system handle and its files are gone",
            ))
        }
    }

    // ----- paths -----

    /// `path` relative to the root, if it lies inside it (or is the root).
    fn relative(&self, path: &Path) -> io::Result<PathBuf> {
        let outside = || {
            error(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is outside the fault file system at {}",
                    path.display(),
                    self.root.display()
                ),
            )
        };
        let relative = path.strip_prefix(&self.root).map_err(|_| outside())?;
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(outside());
        }
        Ok(relative.to_owned())
    }

    /// Whether `path` is a folder above the root.
    fn is_above_root(&self, path: &Path) -> bool {
        self.root.starts_with(path) && self.root != path
    }

    /// The folder and the name of `path`, which must not be the root.
    fn split(&self, path: &Path) -> io::Result<(PathBuf, OsString)> {
        let relative = self.relative(path)?;
        match (relative.parent(), relative.file_name()) {
            (Some(parent), Some(name)) => Ok((parent.to_owned(), name.to_owned())),
            _ => Err(error(
                io::ErrorKind::InvalidInput,
                format!("{} is the root folder", path.display()),
            )),
        }
    }

    fn volatile_folder(&self, relative: &Path, path: &Path) -> io::Result<&Folder> {
        self.volatile.get(relative).ok_or_else(|| not_found(path))
    }

    fn file_inode(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = self.split(path)?;
        match self.volatile_folder(&parent, path)?.get(&name) {
            Some(Node::File(id)) => Ok(*id),
            Some(Node::Folder) => Err(is_a_folder(path)),
            None => Err(not_found(path)),
        }
    }

    fn new_inode(&mut self, content: Vec<u8>) -> u64 {
        let id = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(
            id,
            Inode {
                content,
                ..Inode::default()
            },
        );
        id
    }

    fn inode(&mut self, id: u64) -> &mut Inode {
        self.inodes
            .get_mut(&id)
            .expect("an inode is collected only once no name or change refers to it")
    }

    /// The inode of an open file, unless it was removed and collected.
    fn open_inode(&mut self, id: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&id).ok_or_else(|| {
            error(
                io::ErrorKind::NotFound,
                "the fault file system does not keep removed files open".into(),
            )
        })
    }

    // ----- what the process does -----

    pub(super) fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        if self.is_above_root(path) || self.relative(path)?.as_os_str().is_empty() {
            return Err(already_exists(path));
        }
        let (parent, name) = self.split(path)?;
        let folder = self.volatile_folder(&parent, path)?;
        if folder.contains_key(&name) {
            return Err(already_exists(path));
        }
        let relative = parent.join(&name);
        self.volatile
            .get_mut(&parent)
            .expect("checked")
            .insert(name.clone(), Node::Folder);
        self.volatile.insert(relative.clone(), Folder::new());
        self.durable.insert(relative, Folder::new());
        self.change_entries(
            parent,
            EntryChange::Link {
                name,
                node: Node::Folder,
            },
        );
        Ok(())
    }

    pub(super) fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let relative = self.relative(path)?;
        Ok(self
            .volatile_folder(&relative, path)?
            .keys()
            .cloned()
            .collect())
    }

    pub(super) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let id = self.file_inode(path)?;
        Ok(self.inodes[&id].content.clone())
    }

    /// Creates or empties the file `path`; returns its inode.
    pub(super) fn create(&mut self, path: &Path) -> io::Result<u64> {
        let (parent, name) = self.split(path)?;
        match self.volatile_folder(&parent, path)?.get(&name) {
            Some(Node::File(id)) => {
                let id = *id;
                self.set_len(id, 0)?;
                Ok(id)
            }
            Some(Node::Folder) => Err(is_a_folder(path)),
            None => {
                let id = self.new_inode(Vec::new());
                self.volatile
                    .get_mut(&parent)
                    .expect("checked")
                    .insert(name.clone(), Node::File(id));
                self.change_entries(
                    parent,
                    EntryChange::Link {
                        name,
                        node: Node::File(id),
                    },
                );
                Ok(id)
            }
        }
    }

    /// The inode of the existing file `path`.
    pub(super) fn open(&self, path: &Path) -> io::Result<u64> {
        self.file_inode(path)
    }

    /// Writes `bytes` at `offset`, or at the file's end (`None`).
    pub(super) fn write(&mut self, id: u64, offset: Option<u64>, bytes: &[u8]) -> io::Result<()> {
        let inode = self.open_inode(id)?;
        let change = FileChange::Write {
            offset: offset.unwrap_or(inode.content.len() as u64),
            bytes: bytes.to_vec(),
        };
        change.apply(&mut inode.content);
        inode.unsynced.push(change);
        Ok(())
    }

    pub(super) fn set_len(&mut self, id: u64, length: u64) -> io::Result<()> {
        let inode = self.open_inode(id)?;
        let change = FileChange::SetLen(length);
        change.apply(&mut inode.content);
        inode.unsynced.push(change);
        Ok(())
    }

    pub(super) fn sync_file(&mut self, id: u64) -> io::Result<()> {
        let changes = std::mem::take(&mut self.open_inode(id)?.unsynced);
        self.make_durable(id, &changes)
    }

    pub(super) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (parent, from_name) = self.split(from)?;
        let (to_parent, to_name) = self.split(to)?;
        if parent != to_parent {
            return Err(error(
                io::ErrorKind::Unsupported,
                format!(
                    "the fault file system renames within a folder only: {} to {}",
                    from.display(),
                    to.display()
                ),
            ));
        }
        let folder = self.volatile_folder(&parent, from)?;
        match (folder.get(&from_name), folder.get(&to_name)) {
            (None, _) => return Err(not_found(from)),
            (Some(Node::Folder), _) => return Err(is_a_folder(from)),
            (_, Some(Node::Folder)) => return Err(is_a_folder(to)),
            _ => {}
        }
        let change = EntryChange::Rename {
            from: from_name,
            to: to_name,
        };
        change.apply(self.volatile.get_mut(&parent).expect("checked"));
        self.change_entries(parent, change);
        Ok(())
    }

    pub(super) fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        self.file_inode(path)?;
        let (parent, name) = self.split(path)?;
        let change = EntryChange::Unlink { name };
        change.apply(self.volatile.get_mut(&parent).expect("checked"));
        self.change_entries(parent, change);
        Ok(())
    }

    pub(super) fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        if self.is_above_root(path) {
            // Nothing is modelled there: the root exists durably.
            return Ok(());
        }
        let relative = self.relative(path)?;
        self.volatile_folder(&relative, path)?;
        let changes = self.unsynced_entries.remove(&relative).unwrap_or_default();
        for change in &changes {
            self.make_entry_durable(&relative, change)?;
        }
        if changes
            .iter()
            .any(|change| !matches!(change, EntryChange::Link { .. }))
        {
            self.forget_unreferenced_files();
        }
        Ok(())
    }

    /// Drops the files no name (volatile or durable) and no unsynced entry
    /// change refers to any more: removed, or replaced by a rename.
    fn forget_unreferenced_files(&mut self) {
        let pending = self
            .unsynced_entries
            .values()
            .flatten()
            .filter_map(|change| match change {
                EntryChange::Link { node, .. } => Some(node),
                _ => None,
            });
        let referenced: BTreeSet<u64> = self
            .volatile
            .values()
            .chain(self.durable.values())
            .flat_map(|folder| folder.values())
            .chain(pending)
            .filter_map(|node| match node {
                Node::File(id) => Some(*id),
                Node::Folder => None,
            })
            .collect();
        self.inodes.retain(|id, _| referenced.contains(id));
    }

    fn change_entries(&mut self, folder: PathBuf, change: EntryChange) {
        self.unsynced_entries
            .entry(folder)
            .or_default()
            .push(change);
    }
}

fn not_found(path: &Path) -> io::Error {
    error(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

fn already_exists(path: &Path) -> io::Error {
    error(
        io::ErrorKind::AlreadyExists,
        format!("{} exists", path.display()),
    )
}

fn is_a_folder(path: &Path) -> io::Error {
    error(
        io::ErrorKind::IsADirectory,
        format!("{} is a folder", path.display()),
    )
}
