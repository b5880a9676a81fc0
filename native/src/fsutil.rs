//! Small file helpers for the files outside the write-ahead log (the
//! members file, snapshot backups), and the lock on a data folder.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync,
/// rename over `path`, fsync of the folder. A crash leaves the old file or
/// the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Creates the data folder `dir` if missing and takes an exclusive lock on
/// it, held until the returned handle is dropped (or the process ends, a
/// crash included): two servers on one folder would both write its log.
/// Fails with [`std::io::ErrorKind::WouldBlock`] while another process
/// holds it.
pub fn lock_folder(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let folder = std::fs::File::open(dir)?;
    rustix::fs::flock(
        &folder,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )?;
    Ok(folder)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_data_folder_is_locked_by_one_holder_at_a_time() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let held = super::lock_folder(&dir).unwrap();
        assert!(dir.is_dir());
        let error = super::lock_folder(&dir).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
        drop(held);
        super::lock_folder(&dir).unwrap();
    }
}
