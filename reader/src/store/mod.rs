//! The record store: content-addressed blobs (sealed records) behind a trait, with a local
//! directory backend. See `docs/records.md` ("Locators").
//!
//! A locator is the URI `medcard-store:sha256/<64 lower-case hex digits>`: the SHA-256 of the
//! stored bytes (the whole COSE_Encrypt0). It names content, not a place, so the same locator
//! works against any backend holding the blob (a later S3 backend maps it to an object key).
//! Every read recomputes the digest and refuses bytes that do not match.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub mod s3;

pub use s3::{S3Config, S3Store};

/// The locator scheme and algorithm prefix.
pub const LOCATOR_PREFIX: &str = "medcard-store:sha256/";
/// Largest blob a store reads back.
pub const MAX_BLOB: u64 = crate::sealed::MAX_RECORD;

/// A content address: SHA-256 of the blob.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locator([u8; 32]);

impl Locator {
    /// The locator of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Locator(Sha256::digest(bytes).into())
    }
    /// From a digest.
    #[must_use]
    pub fn from_digest(d: [u8; 32]) -> Self {
        Locator(d)
    }
    /// The digest.
    #[must_use]
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }
    /// The digest in lower-case hex.
    #[must_use]
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{LOCATOR_PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locator({self})")
    }
}

impl FromStr for Locator {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| StoreError::BadLocator { locator: s.chars().take(120).collect(), why: why.to_owned() };
        let hex_part = s.strip_prefix(LOCATOR_PREFIX).ok_or_else(|| bad("expected the prefix medcard-store:sha256/"))?;
        if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad("expected 64 lower-case hex digits after medcard-store:sha256/"));
        }
        let mut d = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut d).map_err(|_| bad("invalid hex"))?;
        Ok(Locator(d))
    }
}

/// A store failure, naming the locator and the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Not a locator this store understands.
    #[error("unknown or malformed record locator {locator:?}: {why}")]
    BadLocator { locator: String, why: String },
    /// No blob for this locator.
    #[error("record {locator} is not in the store (no file {})", path.display())]
    NotFound { locator: Locator, path: PathBuf },
    /// The stored bytes do not hash to the locator: the file was altered or damaged.
    #[error("record {locator} failed its integrity check: file {} has SHA-256 {got}; it was altered or damaged and was not used (left untouched)", path.display())]
    DigestMismatch { locator: Locator, path: PathBuf, got: String },
    /// The blob is larger than any record.
    #[error("record {locator}: file {} is {len} bytes, more than the limit of {limit}", path.display())]
    TooLarge { locator: Locator, path: PathBuf, len: u64, limit: u64 },
    /// The object store cannot be reached, or has no quorum (a 5xx): retrying later may work.
    #[error("record store unavailable ({endpoint}): {message}; check that the object store runs and this device reaches it")]
    Unavailable { endpoint: String, message: String },
    /// The object store refused the request (credentials, bucket, permissions).
    #[error(
        "record store {endpoint}, bucket {bucket}: {operation} refused: {message}; check the bucket name and the access key in device.json and keys/s3.secret"
    )]
    S3 { endpoint: String, bucket: String, operation: &'static str, status: u16, message: String },
    /// The object store configuration is not usable.
    #[error("record store {endpoint}: {why}")]
    S3Config { endpoint: String, why: String },
    /// An I/O error.
    #[error("record store: {operation} {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The record store a device uses: a directory, or an S3 bucket (clinic mode).
#[derive(Debug)]
pub enum AnyStore {
    /// A local or mounted directory.
    Dir(DirStore),
    /// An S3-compatible object store.
    S3(S3Store),
}

impl AnyStore {
    /// Where the records are, for messages (`/path` or `s3://bucket at endpoint`).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            AnyStore::Dir(d) => d.root().display().to_string(),
            AnyStore::S3(s) => s.describe(),
        }
    }
}

impl RecordStore for AnyStore {
    fn put(&self, bytes: &[u8]) -> Result<Locator, StoreError> {
        match self {
            AnyStore::Dir(d) => d.put(bytes),
            AnyStore::S3(s) => s.put(bytes),
        }
    }
    fn get(&self, locator: &Locator) -> Result<Vec<u8>, StoreError> {
        match self {
            AnyStore::Dir(d) => d.get(locator),
            AnyStore::S3(s) => s.get(locator),
        }
    }
    fn contains(&self, locator: &Locator) -> Result<bool, StoreError> {
        match self {
            AnyStore::Dir(d) => d.contains(locator),
            AnyStore::S3(s) => s.contains(locator),
        }
    }
    fn delete(&self, locator: &Locator) -> Result<(), StoreError> {
        match self {
            AnyStore::Dir(d) => d.delete(locator),
            AnyStore::S3(s) => s.delete(locator),
        }
    }
}

/// A content-addressed blob store.
pub trait RecordStore {
    /// Stores `bytes` durably and returns their locator. Storing the same bytes again is a no-op.
    fn put(&self, bytes: &[u8]) -> Result<Locator, StoreError>;
    /// Reads the blob, checking its digest.
    fn get(&self, locator: &Locator) -> Result<Vec<u8>, StoreError>;
    /// Whether a blob is present (without checking it).
    fn contains(&self, locator: &Locator) -> Result<bool, StoreError>;
    /// Removes a blob; removing one that is not there is not an error (a retried purge).
    fn delete(&self, locator: &Locator) -> Result<(), StoreError>;
}

/// The local-directory backend: `<root>/sha256/<first 2 hex>/<64 hex>`, files 0600.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { operation, path, source }
}

impl DirStore {
    /// The store's directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A store rooted at `root` (created 0700 if missing).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(io("create directory", root))?;
        Ok(DirStore { root: root.to_path_buf() })
    }

    /// The file that holds `locator`'s blob.
    #[must_use]
    pub fn path_of(&self, locator: &Locator) -> PathBuf {
        let hex = locator.hex();
        self.root.join("sha256").join(hex.get(..2).unwrap_or("00")).join(hex)
    }

    fn read_checked(&self, locator: &Locator, path: &Path) -> Result<Vec<u8>, StoreError> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { locator: *locator, path: path.to_path_buf() });
            }
            Err(e) => return Err(io("open", path)(e)),
        };
        let len = f.metadata().map_err(io("stat", path))?.len();
        if len > MAX_BLOB {
            return Err(StoreError::TooLarge { locator: *locator, path: path.to_path_buf(), len, limit: MAX_BLOB });
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        (&mut f).take(MAX_BLOB + 1).read_to_end(&mut buf).map_err(io("read", path))?;
        let got: [u8; 32] = Sha256::digest(&buf).into();
        if &got != locator.digest() {
            return Err(StoreError::DigestMismatch { locator: *locator, path: path.to_path_buf(), got: hex::encode(got) });
        }
        Ok(buf)
    }
}

/// Writes `bytes` to `path` atomically: exclusive temp file in the same directory, write, fsync,
/// rename over `path`, fsync the directory. A crash leaves no file or the whole file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl RecordStore for DirStore {
    fn put(&self, bytes: &[u8]) -> Result<Locator, StoreError> {
        let locator = Locator::of(bytes);
        let path = self.path_of(&locator);
        // Same content, same name: an intact copy is already durable.
        if path.exists() && self.read_checked(&locator, &path).is_ok() {
            return Ok(locator);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io("create directory", &dir))?;
        // The new directory entries must survive a crash too.
        for d in [dir.as_path(), dir.parent().unwrap_or(&self.root)] {
            File::open(d).and_then(|f| f.sync_all()).map_err(io("fsync directory", d))?;
        }
        write_atomic(&path, bytes)?;
        Ok(locator)
    }

    fn get(&self, locator: &Locator) -> Result<Vec<u8>, StoreError> {
        self.read_checked(locator, &self.path_of(locator))
    }

    fn contains(&self, locator: &Locator) -> Result<bool, StoreError> {
        let path = self.path_of(locator);
        path.try_exists().map_err(io("stat", &path))
    }

    fn delete(&self, locator: &Locator) -> Result<(), StoreError> {
        let path = self.path_of(locator);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("remove", &path)(e)),
        }
        let dir = path.parent().unwrap_or(&self.root);
        File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory", dir))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn store() -> Option<(tempfile::TempDir, DirStore)> {
        let dir = tempfile::tempdir().ok()?;
        let s = DirStore::open(&dir.path().join("records")).ok()?;
        Some((dir, s))
    }

    #[test]
    fn locator_round_trips_and_names_the_sha256() {
        let l = Locator::of(b"abc");
        let s = l.to_string();
        assert_eq!(s, "medcard-store:sha256/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(s.parse::<Locator>().ok(), Some(l));
    }

    #[test]
    fn malformed_locators_are_refused() {
        for bad in [
            "",
            "medcard-store:sha256/",
            "medcard-store:sha256/BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "medcard-store:sha1/ba7816bf8f01cfea414140de5dae2223b00361a3",
            "s3://bucket/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "medcard-store:sha256/../../etc/passwd",
        ] {
            assert!(matches!(bad.parse::<Locator>(), Err(StoreError::BadLocator { .. })), "{bad}");
        }
    }

    #[test]
    fn put_then_get_returns_the_same_bytes() {
        let Some((_d, s)) = store() else { panic!("tempdir") };
        for blob in [vec![], vec![1u8; 1024], (0..100_000u32).map(|i| i as u8).collect()] {
            let l = s.put(&blob);
            assert!(l.is_ok());
            let l = l.unwrap_or_else(|_| Locator::of(b""));
            assert_eq!(l, Locator::of(&blob));
            assert_eq!(s.get(&l).ok(), Some(blob.clone()));
            assert_eq!(s.put(&blob).ok(), Some(l), "second put of the same bytes");
        }
    }

    #[test]
    fn a_flipped_byte_in_the_file_is_an_integrity_error_and_the_file_is_left_alone() {
        let Some((_d, s)) = store() else { panic!("tempdir") };
        let blob = b"sealed record bytes".to_vec();
        let l = s.put(&blob).unwrap_or_else(|_| Locator::of(b""));
        let path = s.path_of(&l);
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x80;
            }
            assert!(std::fs::write(&path, &bad).is_ok());
            match s.get(&l) {
                Err(StoreError::DigestMismatch { path: p, .. }) => assert_eq!(p, path),
                other => panic!("byte {i}: {other:?}"),
            }
            assert_eq!(std::fs::read(&path).ok(), Some(bad), "the damaged file is not rewritten");
        }
    }

    #[test]
    fn missing_and_truncated_files_are_named_errors() {
        let Some((_d, s)) = store() else { panic!("tempdir") };
        let l = Locator::of(b"never stored");
        assert!(matches!(s.get(&l), Err(StoreError::NotFound { .. })));
        let l = s.put(b"0123456789").unwrap_or_else(|_| Locator::of(b""));
        assert!(std::fs::write(s.path_of(&l), b"01234").is_ok());
        let err = s.get(&l);
        assert!(matches!(err, Err(StoreError::DigestMismatch { .. })));
        assert!(err.err().map(|e| e.to_string()).unwrap_or_default().contains(&l.to_string()));
    }
}
