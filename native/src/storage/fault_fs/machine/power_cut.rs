//! The power cut and the durable side of the model: what survives a cut
//! (by its mode: torn pages, reordered folder changes), the garbage left
//! behind, and how synced changes reach the backing folder.

use super::*;

impl Machine {
    // ----- the power cut -----

    /// Keeps the durable state and, by `mode`, some of the rest; then the
    /// process's view restarts from what survived and the epoch moves on.
    pub(in super::super) fn power_cut(&mut self, mode: PowerCut, rng: &mut Rng) -> io::Result<()> {
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
    pub(super) fn collect_garbage(&mut self) {
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
    pub(super) fn is_durably_reachable(&self, folder: &Path) -> bool {
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
    pub(super) fn make_durable(&mut self, id: u64, changes: &[FileChange]) -> io::Result<()> {
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
    pub(super) fn real_names_of(&self, id: u64) -> Vec<PathBuf> {
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
    pub(super) fn make_entry_durable(
        &mut self,
        folder: &Path,
        change: &EntryChange,
    ) -> io::Result<()> {
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
    pub(super) fn materialise(&self, relative: &Path, node: Node) -> io::Result<()> {
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
