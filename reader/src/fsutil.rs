//! Small file helpers for the clinic data directory: atomic replace, private modes, strict reads.
//!
//! Every write goes to a fresh temporary file in the same directory (created exclusively, mode
//! 0600), is fsynced, renamed over the target, and the directory is fsynced: a crash leaves the
//! old or the new file, whole, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file-system failure, with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// An I/O error on `path` while doing `operation`.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A secret file or directory readable or writable by others.
    #[error(
        "{} has mode {mode:o}, but must not be accessible to group or others (expected {expected:o}): run `chmod {expected:o} {}`",
        path.display(),
        path.display()
    )]
    Permissive { path: PathBuf, mode: u32, expected: u32 },
}

fn io<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError::Io { operation, path: path.to_path_buf(), source }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically with mode 0600 (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f: File = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory (so a rename in it is durable).
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory", dir))
}

/// Creates `dir` (and parents) if missing; the last component gets `mode`. An existing directory
/// is left as it is (its mode is checked by [`check_private`] where that matters).
pub fn create_dir(dir: &Path, mode: u32) -> Result<(), FsError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new().recursive(true).create(parent).map_err(io("create directory", parent))?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create directory", dir)(e)),
    }
    // The umask may have removed bits we wanted; never added any.
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(io("set permissions of", dir))
}

/// Refuses `path` if group or others have any access to it.
pub fn check_private(path: &Path, expected: u32) -> Result<(), FsError> {
    let meta = fs::metadata(path).map_err(io("read metadata of", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FsError::Permissive { path: path.to_path_buf(), mode, expected });
    }
    Ok(())
}

/// Reads a whole file, refusing one larger than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FsError> {
    let meta = fs::metadata(path).map_err(io("read", path))?;
    if meta.len() > limit {
        return Err(FsError::Io {
            operation: "read",
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("file is {} bytes, more than the {limit} expected", meta.len()),
            ),
        });
    }
    fs::read(path).map_err(io("read", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("x.json");
        write_atomic(&p, b"one")?;
        write_atomic(&p, b"two")?;
        assert_eq!(fs::read(&p)?, b"two");
        assert_eq!(fs::metadata(&p)?.permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1, "only the target remains: {names:?}");
        Ok(())
    }

    #[test]
    fn check_private_refuses_group_readable_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("k");
        write_atomic(&p, b"k")?;
        assert!(check_private(&p, 0o600).is_ok());
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640))?;
        let err = check_private(&p, 0o600);
        assert!(matches!(err, Err(FsError::Permissive { mode: 0o640, .. })), "{err:?}");
        Ok(())
    }
}
