//! The file-system seam: every file and folder operation of the storage (log
//! segments, snapshots, the identity file, the data folder itself) goes
//! through a [`FileSystem`], so that tests can put a model of a disk that
//! loses power underneath (`FaultFileSystem`, with the test-only feature
//! `fault-injection`).
//!
//! The seam is narrow on purpose: it has exactly the calls the storage
//! makes, with the durability rules of POSIX spelled out on each, and
//! nothing else. [`StdFileSystem`] is the real one, over [`std::fs`].

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek as _, SeekFrom, Write as _};
use std::path::Path;

/// The file and folder operations the storage needs.
///
/// Durability follows POSIX: bytes written to a file are durable once
/// [`WritableFile::sync_data`] returns; a file's or folder's *name* (its
/// creation, a rename, a removal) is durable once its folder was synced
/// with [`sync_dir`](Self::sync_dir) afterwards. Until then a power cut may
/// undo any of it.
pub trait FileSystem: fmt::Debug + Send + Sync {
    /// Creates the folder `path`. Fails with [`io::ErrorKind::AlreadyExists`]
    /// if something exists there and with [`io::ErrorKind::NotFound`] if its
    /// parent does not exist.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries of the folder `path`, in no particular order.
    fn list(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// The whole content of the file `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// `length` bytes of the file `path` from byte `offset` on. Fails with
    /// [`io::ErrorKind::UnexpectedEof`] if the file ends before. The
    /// default reads the whole file.
    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let data = self.read(path)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(length) {
            Some(end) if end <= data.len() => Ok(data[start..end].to_vec()),
            _ => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        }
    }

    /// Creates the file `path`, or empties it if it exists, and opens it for
    /// writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;

    /// Opens the existing file `path` for writing from byte `offset` on:
    /// [`WritableFile::write_all`] overwrites what is there (a log segment
    /// whose space after its last record was filled with zeros in advance).
    fn open_at(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>>;

    /// Renames `from` to `to` (in the same folder), replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes the empty folder `path`, if the file system can: the default
    /// leaves it (callers treat an empty folder left behind as absent).
    fn remove_empty_dir(&self, path: &Path) -> io::Result<()> {
        let _ = path;
        Ok(())
    }

    /// Makes the entries of the folder `path` durable: the files and folders
    /// created, renamed and removed in it so far.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// A file open for writing at a position: its end when it was created,
/// the offset it was opened at with [`FileSystem::open_at`].
pub trait WritableFile: fmt::Debug + Send {
    /// Writes all of `bytes` at the position, which moves past them.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Writes all of `bytes` at byte `offset`, extending the file if they
    /// reach past its end; the position does not move.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;

    /// Cuts (or extends with zeros) the file to `length` bytes; the
    /// position moves to the new end.
    fn set_len(&mut self, length: u64) -> io::Result<()>;

    /// Makes the file's content and length durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The real file system, through [`std::fs`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFileSystem;

impl FileSystem for StdFileSystem {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        let mut buffer = vec![0; length];
        File::open(path)?.read_exact_at(&mut buffer, offset)?;
        Ok(buffer)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn open_at(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(StdFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_empty_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// A file of the real file system: the file's own position is the
/// position (`write_at` uses `pwrite`, which leaves it where it is).
#[derive(Debug)]
struct StdFile(File);

impl WritableFile for StdFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        self.0.write_all_at(bytes, offset)
    }

    fn set_len(&mut self, length: u64) -> io::Result<()> {
        self.0.set_len(length)?;
        self.0.seek(SeekFrom::End(0)).map(drop)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}
