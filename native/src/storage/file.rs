//! The only place that touches files: every call goes through the storage's
//! [`FileSystem`], asks the [`FaultInjector`] first, and maps its error to a
//! [`StorageError::Io`] naming the file.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::StorageError;
use super::fault::{FaultInjector, disk_full};
use super::fs::{FileSystem, WritableFile};

/// The file system the storage uses, with its fault switches.
#[derive(Clone, Debug)]
pub(crate) struct Disk {
    file_system: Arc<dyn FileSystem>,
    faults: FaultInjector,
}

impl Disk {
    /// Operations on `file_system`, subject to `faults`.
    pub(crate) fn new(file_system: Arc<dyn FileSystem>, faults: FaultInjector) -> Disk {
        Disk {
            file_system,
            faults,
        }
    }

    /// Creates the folder `dir` and every missing folder above it, and makes
    /// each one's entry durable by syncing its parent: a folder created but
    /// not recorded durably in its parent may vanish at a power cut, with
    /// everything written inside it.
    pub(crate) fn create_folder(&self, dir: &Path) -> Result<(), StorageError> {
        let mut created = Vec::new();
        self.create_missing(dir, &mut created)?;
        // Top down, once every new folder exists.
        for folder in created {
            self.sync_dir(parent_of(folder))?;
        }
        Ok(())
    }

    /// Creates `dir`, after its missing ancestors; records the new folders,
    /// top down.
    fn create_missing<'a>(
        &self,
        dir: &'a Path,
        created: &mut Vec<&'a Path>,
    ) -> Result<(), StorageError> {
        let error = |e| StorageError::io("create folder", dir, e);
        match self.file_system.create_dir(dir) {
            Ok(()) => created.push(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
                let Some(parent) = parent else {
                    return Err(error(e));
                };
                self.create_missing(parent, created)?;
                match self.file_system.create_dir(dir) {
                    Ok(()) => created.push(dir),
                    // Created meanwhile by someone else.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(error(e)),
                }
            }
            Err(e) => return Err(error(e)),
        }
        Ok(())
    }

    /// The names in the folder `dir`.
    pub(crate) fn list(&self, dir: &Path) -> Result<Vec<OsString>, StorageError> {
        self.file_system
            .list(dir)
            .map_err(|e| StorageError::io("list", dir, e))
    }

    /// The content of the file `path`.
    pub(crate) fn read(&self, path: &Path) -> Result<Vec<u8>, StorageError> {
        self.file_system
            .read(path)
            .map_err(|e| StorageError::io("read", path, e))
    }

    /// `length` bytes of the file `path` from `offset` on.
    pub(crate) fn read_at(
        &self,
        path: &Path,
        offset: u64,
        length: usize,
    ) -> Result<Vec<u8>, StorageError> {
        self.file_system
            .read_at(path, offset, length)
            .map_err(|e| StorageError::io("read", path, e))
    }

    /// Opens an existing file for writing from byte `offset` on.
    pub(crate) fn open_at(&self, path: &Path, offset: u64) -> Result<DataFile, StorageError> {
        let file = self
            .file_system
            .open_at(path, offset)
            .map_err(|e| StorageError::io("open", path, e))?;
        Ok(self.data_file(file, path))
    }

    /// Creates (or empties) a file for writing.
    pub(crate) fn create(&self, path: &Path) -> Result<DataFile, StorageError> {
        let file = self
            .file_system
            .create(path)
            .map_err(|e| StorageError::io("create", path, e))?;
        Ok(self.data_file(file, path))
    }

    fn data_file(&self, file: Box<dyn WritableFile>, path: &Path) -> DataFile {
        DataFile {
            file,
            path: path.to_owned(),
            faults: self.faults.clone(),
        }
    }

    /// Makes the folder's entries (created, renamed, removed files) durable.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<(), StorageError> {
        self.faults
            .before_sync()
            .and_then(|()| self.file_system.sync_dir(dir))
            .map_err(|e| StorageError::io("fsync folder", dir, e))
    }

    /// Writes a whole file so that after a crash it is either absent (or its
    /// older version) or complete: write to `temporary`, fsync, rename over
    /// `path`, fsync the folder.
    pub(crate) fn write_atomically(
        &self,
        path: &Path,
        temporary: &Path,
        parts: &[&[u8]],
    ) -> Result<(), StorageError> {
        self.write_and_rename(path, temporary, parts)?;
        self.sync_dir(parent_of(path))
    }

    /// The first half of [`write_atomically`](Self::write_atomically): the
    /// content is durable under `temporary`, then renamed to `path`; the
    /// rename is not durable yet.
    pub(crate) fn write_and_rename(
        &self,
        path: &Path,
        temporary: &Path,
        parts: &[&[u8]],
    ) -> Result<(), StorageError> {
        let mut file = self.create(temporary)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_data()?;
        drop(file);
        self.file_system
            .rename(temporary, path)
            .map_err(|e| StorageError::io("rename into place", path, e))
    }

    /// Removes an empty folder, where the file system can (see
    /// [`FileSystem::remove_empty_dir`]).
    pub(crate) fn remove_empty_dir(&self, dir: &Path) -> Result<(), StorageError> {
        self.file_system
            .remove_empty_dir(dir)
            .map_err(|e| StorageError::io("remove folder", dir, e))
    }

    /// Removes a file.
    pub(crate) fn remove(&self, path: &Path) -> Result<(), StorageError> {
        self.file_system
            .remove_file(path)
            .map_err(|e| StorageError::io("remove", path, e))
    }
}

/// An open file the storage writes to, with its path for error messages.
#[derive(Debug)]
pub(crate) struct DataFile {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    faults: FaultInjector,
}

impl DataFile {
    /// Writes all of `bytes` (or as much as an injected full disk admits, then fails).
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let admitted = self.faults.admit_write(bytes.len());
        self.file
            .write_all(&bytes[..admitted])
            .map_err(|e| StorageError::io("write to", &self.path, e))?;
        if admitted < bytes.len() {
            return Err(StorageError::io("write to", &self.path, disk_full()));
        }
        Ok(())
    }

    /// Writes all of `bytes` at the position over bytes the file already
    /// has (zeros written ahead): no new blocks are needed, so an injected
    /// full disk does not fail it, as a real one would not.
    pub(crate) fn overwrite(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.file
            .write_all(bytes)
            .map_err(|e| StorageError::io("write to", &self.path, e))
    }

    /// Writes all of `bytes` at byte `offset` without moving the position
    /// (or as much as an injected full disk admits, then fails).
    pub(crate) fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StorageError> {
        let admitted = self.faults.admit_write(bytes.len());
        self.file
            .write_at(offset, &bytes[..admitted])
            .map_err(|e| StorageError::io("write to", &self.path, e))?;
        if admitted < bytes.len() {
            return Err(StorageError::io("write to", &self.path, disk_full()));
        }
        Ok(())
    }

    /// Makes the file's data (and the metadata needed to read it, such as its
    /// length) durable: `fdatasync`.
    pub(crate) fn sync_data(&mut self) -> Result<(), StorageError> {
        self.faults
            .before_sync()
            .and_then(|()| self.file.sync_data())
            .map_err(|e| StorageError::io("fsync", &self.path, e))
    }

    /// Cuts the file to `length` bytes and makes that durable.
    pub(crate) fn truncate(&mut self, length: u64) -> Result<(), StorageError> {
        self.file
            .set_len(length)
            .map_err(|e| StorageError::io("truncate", &self.path, e))?;
        self.sync_data()
    }
}

/// The folder holding `path`.
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}
