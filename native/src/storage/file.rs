//! The only place that writes and fsyncs files: every call maps its error to a
//! [`StorageError::Io`] naming the file, and passes the [`FaultInjector`].

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::StorageError;
use super::fault::{FaultInjector, disk_full};

/// An open file the storage writes to, with its path for error messages.
#[derive(Debug)]
pub(crate) struct DataFile {
    file: File,
    path: PathBuf,
    faults: FaultInjector,
}

impl DataFile {
    /// Opens an existing file for appending at its end.
    pub(crate) fn open_append(
        path: &Path,
        faults: &FaultInjector,
    ) -> Result<DataFile, StorageError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| StorageError::io("open", path, e))?;
        Ok(DataFile {
            file,
            path: path.to_owned(),
            faults: faults.clone(),
        })
    }

    /// Creates (or truncates) a file for writing.
    pub(crate) fn create(path: &Path, faults: &FaultInjector) -> Result<DataFile, StorageError> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| StorageError::io("create", path, e))?;
        Ok(DataFile {
            file,
            path: path.to_owned(),
            faults: faults.clone(),
        })
    }

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
        self.faults
            .before_sync()
            .and_then(|()| self.file.sync_all())
            .map_err(|e| StorageError::io("fsync", &self.path, e))
    }
}

/// Makes the folder's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path, faults: &FaultInjector) -> Result<(), StorageError> {
    faults
        .before_sync()
        .and_then(|()| File::open(dir))
        .and_then(|folder| folder.sync_all())
        .map_err(|e| StorageError::io("fsync folder", dir, e))
}

/// Writes a whole file so that after a crash it is either absent (or its older
/// version) or complete: write to `temporary`, fsync, rename over `path`,
/// fsync the folder.
pub(crate) fn write_atomically(
    path: &Path,
    temporary: &Path,
    parts: &[&[u8]],
    faults: &FaultInjector,
) -> Result<(), StorageError> {
    let mut file = DataFile::create(temporary, faults)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_data()?;
    drop(file);
    fs::rename(temporary, path).map_err(|e| StorageError::io("rename into place", path, e))?;
    sync_dir(parent_of(path), faults)
}

/// Removes a file.
pub(crate) fn remove(path: &Path) -> Result<(), StorageError> {
    fs::remove_file(path).map_err(|e| StorageError::io("remove", path, e))
}

/// The folder holding `path`.
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}
