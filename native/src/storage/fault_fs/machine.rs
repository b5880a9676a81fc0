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

    pub(super) fn write(&mut self, id: u64, bytes: &[u8]) -> io::Result<()> {
        let inode = self.open_inode(id)?;
        let change = FileChange::Write {
            offset: inode.content.len() as u64,
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

    // ----- the power cut -----

    /// Keeps the durable state and, by `mode`, some of the rest; then the
    /// process's view restarts from what survived and the epoch moves on.
    pub(super) fn power_cut(&mut self, mode: PowerCut, rng: &mut Rng) -> io::Result<()> {
        let ids: Vec<u64> = self.inodes.keys().copied().collect();
        for id in ids {
            let unsynced = std::mem::take(&mut self.inode(id).unsynced);
            if unsynced.is_empty() {
                continue;
            }
            let surviving = match mode {
                PowerCut::DropUnsynced => Vec::new(),
                PowerCut::Reorder => {
                    let kept = rng.range_inclusive(0, unsynced.len() as u64) as usize;
                    unsynced[..kept].to_vec()
                }
                PowerCut::TornPage => torn(&unsynced, rng),
            };
            self.make_durable(id, &surviving)?;
        }
        let folders = std::mem::take(&mut self.unsynced_entries);
        // Parents first, so that a folder whose entry survives is in place
        // before its own entries are.
        for (folder, changes) in folders {
            let surviving = match mode {
                PowerCut::DropUnsynced | PowerCut::TornPage => Vec::new(),
                PowerCut::Reorder => reordered(changes, rng),
            };
            for change in &surviving {
                self.make_entry_durable(&folder, change)?;
            }
        }
        self.collect_garbage();
        self.volatile = self.durable.clone();
        for inode in self.inodes.values_mut() {
            inode.content = inode.durable.clone();
        }
        self.epoch += 1;
        Ok(())
    }

    /// Drops the folders that are not durably reachable and the files no
    /// durable name refers to.
    fn collect_garbage(&mut self) {
        let reachable: BTreeSet<PathBuf> = self
            .durable
            .keys()
            .filter(|folder| self.is_durably_reachable(folder))
            .cloned()
            .collect();
        self.durable.retain(|folder, _| reachable.contains(folder));
        let linked: BTreeSet<u64> = self
            .durable
            .values()
            .flat_map(|folder| folder.values())
            .filter_map(|node| match node {
                Node::File(id) => Some(*id),
                Node::Folder => None,
            })
            .collect();
        self.inodes.retain(|id, _| linked.contains(id));
    }

    /// Whether every folder on the way from the root to `folder` is durably
    /// in its parent.
    fn is_durably_reachable(&self, folder: &Path) -> bool {
        let mut parent = PathBuf::new();
        for component in folder.components() {
            let name = component.as_os_str();
            match self.durable.get(&parent).and_then(|f| f.get(name)) {
                Some(Node::Folder) => parent.push(name),
                _ => return false,
            }
        }
        true
    }

    // ----- making things durable, and the backing folder -----

    /// Applies `changes` to the durable content of inode `id`, and to every
    /// real file that holds it.
    fn make_durable(&mut self, id: u64, changes: &[FileChange]) -> io::Result<()> {
        let Some(first) = changes.iter().map(FileChange::first_offset).min() else {
            return Ok(());
        };
        let inode = self.inode(id);
        for change in changes {
            change.apply(&mut inode.durable);
        }
        if !self.backed {
            return Ok(());
        }
        let durable = &self.inodes[&id].durable;
        let first = first.min(durable.len() as u64);
        for real in self.real_names_of(id) {
            let mut file = OpenOptions::new().write(true).open(&real)?;
            file.set_len(first)?;
            file.seek(SeekFrom::Start(first))?;
            file.write_all(&durable[first as usize..])?;
        }
        Ok(())
    }

    /// The real paths of the durable, reachable names of inode `id`.
    fn real_names_of(&self, id: u64) -> Vec<PathBuf> {
        self.durable
            .iter()
            .filter(|(folder, _)| self.is_durably_reachable(folder))
            .flat_map(|(folder, entries)| {
                entries
                    .iter()
                    .filter(move |(_, node)| **node == Node::File(id))
                    .map(move |(name, _)| self.root.join(folder).join(name))
            })
            .collect()
    }

    /// Applies an entry change of `folder` to the durable tree, and to the
    /// backing folder if `folder` is durably reachable.
    fn make_entry_durable(&mut self, folder: &Path, change: &EntryChange) -> io::Result<()> {
        change.apply(self.durable.entry(folder.to_owned()).or_default());
        if !self.backed || !self.is_durably_reachable(folder) {
            return Ok(());
        }
        let real = self.root.join(folder);
        match change {
            EntryChange::Link { name, node } => self.materialise(&folder.join(name), *node),
            EntryChange::Unlink { name } => fs::remove_file(real.join(name)),
            EntryChange::Rename { from, to } => fs::rename(real.join(from), real.join(to)),
        }
    }

    /// Writes the durable `node` at `relative` into the backing folder, with
    /// everything durably inside it if it is a folder.
    fn materialise(&self, relative: &Path, node: Node) -> io::Result<()> {
        let real = self.root.join(relative);
        match node {
            Node::File(id) => {
                let staging = real.with_file_name(STAGING);
                fs::write(&staging, &self.inodes[&id].durable)?;
                fs::rename(&staging, &real)
            }
            Node::Folder => {
                fs::create_dir(&real)?;
                let entries = self.durable.get(relative).cloned().unwrap_or_default();
                for (name, node) in entries {
                    self.materialise(&relative.join(name), node)?;
                }
                Ok(())
            }
        }
    }
}

/// The surviving part of a file's unsynced changes in a
/// [`PowerCut::TornPage`]: everything before the last write, and the last
/// write up to a 512-byte boundary in its last page; the sectors after the
/// tear are missing, or (by chance) zeros up to the write's end.
fn torn(unsynced: &[FileChange], rng: &mut Rng) -> Vec<FileChange> {
    let Some(last) = unsynced
        .iter()
        .rposition(|c| matches!(c, FileChange::Write { bytes, .. } if !bytes.is_empty()))
    else {
        return Vec::new();
    };
    let FileChange::Write { offset, bytes } = &unsynced[last] else {
        unreachable!("found above");
    };
    let end = offset + bytes.len() as u64;
    let page = (end - 1) / PAGE * PAGE;
    let low = (*offset).max(page);
    let mut tears = vec![low];
    tears.extend(
        (low / SECTOR + 1..)
            .map(|sector| sector * SECTOR)
            .take_while(|&boundary| boundary < end),
    );
    let tear = tears[rng.index(tears.len())];
    let mut surviving = unsynced[..last].to_vec();
    let mut kept = bytes[..(tear - offset) as usize].to_vec();
    if rng.chance(0.5) {
        kept.resize(bytes.len(), 0);
    }
    surviving.push(FileChange::Write {
        offset: *offset,
        bytes: kept,
    });
    surviving
}

/// The surviving part of a folder's unsynced entry changes in a
/// [`PowerCut::Reorder`]: each change survives by chance, but only if every
/// earlier change of the same names did.
fn reordered(changes: Vec<EntryChange>, rng: &mut Rng) -> Vec<EntryChange> {
    let mut lost: BTreeSet<OsString> = BTreeSet::new();
    let mut surviving = Vec::new();
    for change in changes {
        let names = change.names();
        let follows_a_loss = names.iter().any(|name| lost.contains(name));
        if !follows_a_loss && rng.chance(0.5) {
            surviving.push(change);
        } else {
            lost.extend(names);
        }
    }
    surviving
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
