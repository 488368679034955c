//! Files handed to people: the check-in QR PNG, a decrypted record, a certificate, a signed
//! checkpoint. One check for the `medcard` CLI (`--out`) and the desktop app (Save PNG, Save
//! as…, Export certificate), apart from [`crate::fsutil::write_atomic`], which replaces the data
//! directory's own files:
//!
//! - an export is **created exclusively** (mode 0600, `O_EXCL`: never over an existing file,
//!   never through a symlink at the last component);
//! - **never inside the clinic data directory**: the parent folder is resolved (symlinks, `..`)
//!   and anything inside the resolved data directory is refused, so no export can replace or
//!   add to `keys/`, `clinic.db`, `records/` or `trust/`;
//! - the desktop writes into the **export folder** ([`resolve_dir`]: `--export-dir`, else
//!   `$MEDCARD_EXPORT_DIR`, else `$XDG_RUNTIME_DIR/medcard-exports`, else
//!   `~/.cache/medcard/exports`) under names the app chooses ([`save_new`]), and purges it
//!   ([`purge_older_than`], [`purge_saved_records`]).
//!
//! What is left: a process that can swap directories on the resolved path between the check
//! and the create (the parent is resolved, then opened by that path) could still redirect a
//! *new* file; it can never replace an existing one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::fsutil::FsError;

/// The environment variable naming the export folder.
pub const ENV_EXPORT_DIR: &str = "MEDCARD_EXPORT_DIR";
/// How long the desktop keeps a file in its export folder: the longest a check-in QR code can
/// be valid (`--qr-minutes` 1440).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Every file the app names in the export folder starts with this (the purge touches nothing else).
pub const PREFIX: &str = "medcard-";
/// Saved bedside records: `medcard-record-<cache id>.<ext>`, removed with their cache entry.
pub const RECORD_PREFIX: &str = "medcard-record-";

/// An export was refused or failed; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The target resolves to a place inside the clinic data directory.
    #[error(
        "{} is inside the clinic data directory {}: exports never go there (they could replace the clinic's keys or database); choose a file outside it",
        path.display(),
        data_dir.display()
    )]
    InsideDataDir { path: PathBuf, data_dir: PathBuf },
    /// The target exists (an export never replaces a file).
    #[error("{} already exists: an export never replaces a file; choose a new name or move the old file away", path.display())]
    Exists { path: PathBuf },
    /// The path names no file (empty, `.`, `..`, or ends in `/`).
    #[error("{:?} does not name a file: give a file name such as clinic-ca.pem", path.display().to_string())]
    NoFileName { path: PathBuf },
    /// The folder the file should go into does not exist or cannot be resolved.
    #[error("the folder {} cannot be used ({source}): create it first or choose another one", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No export folder is configured and there is no default.
    #[error("no export folder: set --export-dir DIR or MEDCARD_EXPORT_DIR (neither $XDG_RUNTIME_DIR nor $HOME is set)")]
    NoExportDir,
    /// Writing failed (disk full, permissions).
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Writing to standard output failed (a closed pipe).
    #[error("could not write the export to standard output: {0}")]
    Stdout(#[source] std::io::Error),
}

/// The export folder: `explicit` (`--export-dir`), else `$MEDCARD_EXPORT_DIR`, else
/// `$XDG_RUNTIME_DIR/medcard-exports` (a per-user tmpfs: gone at logout or reboot), else
/// `$XDG_CACHE_HOME/medcard/exports`, else `~/.cache/medcard/exports`. Not created here.
///
/// # Errors
/// [`ExportError::NoExportDir`] when nothing names a folder.
pub fn resolve_dir(explicit: Option<&Path>) -> Result<PathBuf, ExportError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var(ENV_EXPORT_DIR) {
        return Ok(p);
    }
    if let Some(p) = var("XDG_RUNTIME_DIR").filter(|p| p.is_dir()) {
        return Ok(p.join("medcard-exports"));
    }
    if let Some(p) = var("XDG_CACHE_HOME") {
        return Ok(p.join("medcard").join("exports"));
    }
    var("HOME").map(|h| h.join(".cache").join("medcard").join("exports")).ok_or(ExportError::NoExportDir)
}

/// `path` made absolute against the current directory (no file-system access).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The data directory as it resolves on disk (symlinks followed); as given when it does not exist.
fn resolved_data_dir(data_dir: &Path) -> PathBuf {
    fs::canonicalize(data_dir).unwrap_or_else(|_| absolute(data_dir))
}

/// Where `path` really points, checked to lie outside `data_dir`: the parent folder resolved
/// (symlinks, `..`), joined with the file name. Touches nothing.
///
/// # Errors
/// No file name, a parent that does not resolve, or a target inside the data directory.
pub fn check_outside(data_dir: &Path, path: &Path) -> Result<PathBuf, ExportError> {
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) if !path.as_os_str().to_string_lossy().ends_with('/') => n.to_owned(),
        _ => return Err(ExportError::NoFileName { path: path.to_path_buf() }),
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let data = resolved_data_dir(data_dir);
    // Inside the data directory is said first, even for a folder that does not exist (yet).
    let target = resolve_lenient(parent)?.join(&name);
    if target.starts_with(&data) || data.starts_with(&target) {
        return Err(ExportError::InsideDataDir { path: path.to_path_buf(), data_dir: data });
    }
    let parent = fs::canonicalize(parent).map_err(|source| ExportError::Folder { path: parent.to_path_buf(), source })?;
    Ok(parent.join(name))
}

/// `path` resolved as far as it exists (the nearest existing ancestor canonicalized, the rest
/// appended as given, `..` and `.` applied lexically).
fn resolve_lenient(path: &Path) -> Result<PathBuf, ExportError> {
    let abs = absolute(path);
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while fs::symlink_metadata(existing).is_err() {
        match (existing.parent(), existing.components().next_back()) {
            (Some(p), Some(c)) => {
                rest.push(c.as_os_str().to_owned());
                existing = p;
            }
            _ => break,
        }
    }
    let mut resolved = fs::canonicalize(existing).map_err(|source| ExportError::Folder { path: path.to_path_buf(), source })?;
    for c in rest.iter().rev() {
        match c.to_str() {
            Some("..") => {
                resolved.pop();
            }
            Some(".") => {}
            _ => resolved.push(c),
        }
    }
    Ok(resolved)
}

/// [`check_outside`], and `path` must not exist yet: the check a command makes before work it
/// cannot undo (a card session, a one-time scan, a checkpoint), so a refused `--out` costs nothing.
///
/// # Errors
/// As [`check_outside`], or [`ExportError::Exists`].
pub fn check_new(data_dir: &Path, path: &Path) -> Result<PathBuf, ExportError> {
    let target = check_outside(data_dir, path)?;
    if fs::symlink_metadata(&target).is_ok() {
        return Err(ExportError::Exists { path: path.to_path_buf() });
    }
    Ok(target)
}

/// Writes `bytes` to the new file `path` (created exclusively, mode 0600, fsynced), after
/// [`check_outside`]. Returns where it went (resolved). A partly written file is removed.
///
/// # Errors
/// See [`ExportError`]: inside the data directory, an existing file, no such folder, I/O.
pub fn write_new_export(data_dir: &Path, path: &Path, bytes: &[u8]) -> Result<PathBuf, ExportError> {
    let target = check_outside(data_dir, path)?;
    let mut f = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&target) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ExportError::Exists { path: path.to_path_buf() });
        }
        Err(source) => return Err(FsError::Io { operation: "create", path: path.to_path_buf(), source }.into()),
    };
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(source) = written {
        let _ = fs::remove_file(&target);
        return Err(FsError::Io { operation: "write", path: path.to_path_buf(), source }.into());
    }
    Ok(target)
}

/// Creates the new folder `path` (mode 0700) for several exports, after [`check_outside`].
///
/// # Errors
/// As [`write_new_export`] (an existing folder is refused too).
pub fn create_new_dir(data_dir: &Path, path: &Path) -> Result<PathBuf, ExportError> {
    let target = check_outside(data_dir, path)?;
    match fs::DirBuilder::new().mode(0o700).create(&target) {
        Ok(()) => Ok(target),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(ExportError::Exists { path: path.to_path_buf() }),
        Err(source) => Err(FsError::Io { operation: "create directory", path: path.to_path_buf(), source }.into()),
    }
}

/// The export folder `dir` ready for use: created (mode 0700, parents as needed) when missing,
/// refused when it resolves inside the data directory. Returns it resolved.
///
/// # Errors
/// Inside the data directory, or it cannot be created.
pub fn prepare_dir(data_dir: &Path, dir: &Path) -> Result<PathBuf, ExportError> {
    // Check before creating anything: resolved as far as it exists, it must be outside.
    let data = resolved_data_dir(data_dir);
    let resolved = resolve_lenient(dir)?;
    if resolved.starts_with(&data) {
        return Err(ExportError::InsideDataDir { path: dir.to_path_buf(), data_dir: data });
    }
    if !resolved.is_dir() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&resolved).map_err(|source| FsError::Io {
            operation: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fs::canonicalize(&resolved).map_err(|source| ExportError::Folder { path: dir.to_path_buf(), source })
}

/// A name for an export: ASCII letters, digits, `-`, `_` and `.` only (anything else becomes
/// `-`), never starting with a dot, at most 64 characters.
#[must_use]
pub fn safe_name(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).take(64).collect();
    while out.starts_with('.') {
        out.replace_range(..1, "-");
    }
    out
}

/// Saves `bytes` in the export folder `dir` as `<stem>.<ext>` (or `<stem>-2.<ext>`, … when
/// taken), a name the app chooses ([`safe_name`]); the folder is prepared first
/// ([`prepare_dir`]). Returns the file's path.
///
/// # Errors
/// As [`prepare_dir`] and [`write_new_export`].
pub fn save_new(data_dir: &Path, dir: &Path, stem: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf, ExportError> {
    let dir = prepare_dir(data_dir, dir)?;
    let (stem, ext) = (safe_name(stem), safe_name(ext));
    for n in 1..=100u32 {
        let name = if n == 1 { format!("{stem}.{ext}") } else { format!("{stem}-{n}.{ext}") };
        match write_new_export(data_dir, &dir.join(&name), bytes) {
            Err(ExportError::Exists { .. }) => continue,
            other => return other,
        }
    }
    Err(ExportError::Exists { path: dir.join(format!("{stem}.{ext}")) })
}

/// The app's files (`medcard-*`) in the export folder `dir`: (path, name, modified).
fn own_files(dir: &Path) -> Result<Vec<(PathBuf, String, SystemTime)>, ExportError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FsError::Io { operation: "list", path: dir.to_path_buf(), source }.into()),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Regular files only (a symlink is not followed, a folder not entered).
        let Ok(meta) = fs::symlink_metadata(e.path()) else { continue };
        if name.starts_with(PREFIX) && meta.file_type().is_file() {
            out.push((e.path(), name, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        }
    }
    Ok(out)
}

/// Removes the app's files (`medcard-*`) in the export folder last modified more than `max_age`
/// before `now`. Returns how many went.
///
/// # Errors
/// The folder cannot be listed (a missing folder is empty).
pub fn purge_older_than(dir: &Path, now: SystemTime, max_age: Duration) -> Result<usize, ExportError> {
    let mut n = 0;
    for (path, _, modified) in own_files(dir)? {
        if now.duration_since(modified).is_ok_and(|age| age > max_age) && fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Removes the saved bedside records (`medcard-record-<cache id>…`) whose cache id is not in
/// `cached`: a record leaves the export folder when it leaves the cache (code expired, consent
/// withdrawn). Returns how many went.
///
/// # Errors
/// The folder cannot be listed (a missing folder is empty).
pub fn purge_saved_records(dir: &Path, cached: &[String]) -> Result<usize, ExportError> {
    let mut n = 0;
    for (path, name, _) in own_files(dir)? {
        let Some(rest) = name.strip_prefix(RECORD_PREFIX) else { continue };
        let id: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect();
        let kept = cached.iter().any(|c| record_file_id(c) == id);
        if !kept && fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// The id a saved record's file name carries for cache id `cache_id`: the first 16 hex digits
/// of its SHA-256 (short, a fixed alphabet, and distinct for the records of one record index,
/// whose cache ids share the QR id).
#[must_use]
pub fn record_file_id(cache_id: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(cache_id.as_bytes());
    hex::encode(d.get(..8).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn clinic() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("clinic");
        fs::create_dir_all(data.join("keys")).unwrap();
        fs::write(data.join("keys").join("master.key"), b"secret").unwrap();
        (t, data)
    }

    #[test]
    fn an_export_never_lands_inside_the_data_directory_by_any_path() {
        let (t, data) = clinic();
        let out = t.path().join("out");
        fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(data.join("keys"), out.join("link")).unwrap();
        for p in [
            data.join("keys").join("master.key"),
            data.join("keys").join("new"),
            data.join("clinic.db"),
            out.join("..").join("clinic").join("x"),
            out.join("link").join("x"),
            data.clone(),
        ] {
            let e = write_new_export(&data, &p, b"png");
            assert!(matches!(e, Err(ExportError::InsideDataDir { .. })), "{p:?}: {e:?}");
        }
        assert_eq!(fs::read(data.join("keys").join("master.key")).unwrap(), b"secret");
        assert!(!data.join("keys").join("new").exists());
        // Also when the data directory is named through a symlink.
        std::os::unix::fs::symlink(&data, t.path().join("data-link")).unwrap();
        let e = write_new_export(&t.path().join("data-link"), &data.join("x"), b"png");
        assert!(matches!(e, Err(ExportError::InsideDataDir { .. })), "{e:?}");
        assert!(matches!(prepare_dir(&data, &data.join("exports")), Err(ExportError::InsideDataDir { .. })));
        let e = write_new_export(&data, &data.join("trust").join("new.pem"), b"x");
        assert!(matches!(e, Err(ExportError::InsideDataDir { .. })), "a missing folder inside is named as inside: {e:?}");
        let e = write_new_export(&data, &out.join("missing").join("..").join("..").join("clinic").join("y"), b"x");
        assert!(matches!(e, Err(ExportError::InsideDataDir { .. })), "{e:?}");
        assert!(!data.join("exports").exists(), "nothing created inside");
    }

    #[test]
    fn an_export_is_new_private_and_never_replaces_a_file_or_follows_a_symlink() {
        let (t, data) = clinic();
        let p = t.path().join("qr.png");
        let got = write_new_export(&data, &p, b"one").unwrap();
        assert_eq!(fs::read(&got).unwrap(), b"one");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(write_new_export(&data, &p, b"two"), Err(ExportError::Exists { .. })));
        assert_eq!(fs::read(&p).unwrap(), b"one");
        // A dangling symlink outside, pointing into the data directory: not followed.
        let link = t.path().join("innocent.png");
        std::os::unix::fs::symlink(data.join("keys").join("planted"), &link).unwrap();
        assert!(matches!(write_new_export(&data, &link, b"x"), Err(ExportError::Exists { .. })));
        assert!(!data.join("keys").join("planted").exists());
        for bad in ["", ".", "..", "dir/"] {
            assert!(matches!(write_new_export(&data, Path::new(bad), b"x"), Err(ExportError::NoFileName { .. })), "{bad:?}");
        }
        let e = write_new_export(&data, &t.path().join("no-such").join("x"), b"x").unwrap_err();
        assert!(matches!(e, ExportError::Folder { .. }) && e.to_string().contains("create it first"), "{e}");
    }

    #[test]
    fn save_new_chooses_a_free_name_in_a_private_export_folder() {
        let (t, data) = clinic();
        let dir = t.path().join("exports").join("today");
        let a = save_new(&data, &dir, "medcard-checkin-ab/../12", "png", b"1").unwrap();
        let b = save_new(&data, &dir, "medcard-checkin-ab/../12", "png", b"2").unwrap();
        assert_eq!(a.file_name().unwrap(), "medcard-checkin-ab-..-12.png");
        assert_eq!(b.file_name().unwrap(), "medcard-checkin-ab-..-12-2.png");
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(safe_name(".hidden"), "-hidden");
    }

    #[test]
    fn the_purge_removes_old_files_and_records_gone_from_the_cache_but_nothing_else() {
        let (t, data) = clinic();
        let dir = prepare_dir(&data, &t.path().join("exports")).unwrap();
        let (a, b) = (record_file_id("abc-123"), record_file_id("def.456"));
        let (ra, rb) = (format!("medcard-record-{a}.pdf"), format!("medcard-record-{b}-2.txt"));
        for n in ["medcard-checkin-1.png", ra.as_str(), rb.as_str(), "notes.txt"] {
            fs::write(dir.join(n), b"x").unwrap();
        }
        let now = SystemTime::now();
        assert_eq!(purge_older_than(&dir, now, MAX_AGE).unwrap(), 0);
        assert_eq!(purge_older_than(&dir, now + MAX_AGE + Duration::from_secs(5), MAX_AGE).unwrap(), 3);
        assert!(dir.join("notes.txt").exists(), "only the app's own files");
        for n in [&ra, &rb] {
            fs::write(dir.join(n), b"x").unwrap();
        }
        assert_eq!(purge_saved_records(&dir, &["abc-123".into()]).unwrap(), 1);
        assert!(dir.join(&ra).exists() && !dir.join(&rb).exists());
        assert_eq!(a.len(), 16);
        assert_ne!(record_file_id("q.1"), record_file_id("q.2"));
        assert_eq!(purge_older_than(&t.path().join("missing"), now, MAX_AGE).unwrap(), 0);
    }

    #[test]
    fn the_export_folder_comes_from_the_flag_first() {
        assert_eq!(resolve_dir(Some(Path::new("/x/y"))).unwrap(), PathBuf::from("/x/y"));
    }
}
