//! The card state file: the card's whole persistent state in ONE file, replaced atomically.
//!
//! File format (all integers big-endian), see `docs/card.md` "Persistence":
//!
//! ```text
//! offset  size  field
//! 0       8     magic "MEDCARD\x1a"
//! 8       2     format version (1)
//! 10      4     payload length N
//! 14      N     payload: CBOR (RFC 8949) of PersistentState
//! 14+N    32    SHA-256 over bytes 0 .. 14+N
//! ```
//!
//! A save never writes the card file in place: it writes a temporary file in the same
//! directory (mode 0600), fsyncs it, renames it over the card file and fsyncs the directory.
//! After a crash at any point the card file holds the old or the new state, whole.
//!
//! Loading is strict: a missing, truncated, corrupt or unknown-version file is refused with a
//! [`LoadError`] that names the file; it is never replaced by a blank card.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::state::{Persist, PersistError, PersistentState};

/// The first 8 bytes of every card file.
pub const MAGIC: [u8; 8] = *b"MEDCARD\x1a";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Magic + version + payload length.
const HEADER_LEN: usize = 8 + 2 + 4;
/// SHA-256 trailer.
const CHECKSUM_LEN: usize = 32;
/// A card file is small (keys, a few certificates, patient objects); refuse anything huge
/// before reading it into memory.
pub const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// A card file that cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// There is no file at `path`.
    #[error("card file {path} does not exist (make one with `card-sim new --out {path}`)")]
    Missing { path: PathBuf },
    /// The file could not be read.
    #[error("could not read card file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Shorter than a header plus checksum, or shorter than its declared payload: torn or cut.
    #[error("card file {path} is truncated: {got} bytes, expected {expected}")]
    Truncated { path: PathBuf, expected: u64, got: u64 },
    /// Longer than its declared payload plus checksum, or over [`MAX_FILE_LEN`].
    #[error("card file {path} is too long: {got} bytes, expected {expected}")]
    TooLong { path: PathBuf, expected: u64, got: u64 },
    /// Not a MedCard card file at all.
    #[error("{path} is not a MedCard card file: magic {got:02x?}, expected {expected:02x?}")]
    BadMagic { path: PathBuf, expected: [u8; 8], got: Vec<u8> },
    /// Written by a newer (or unknown) format.
    #[error("card file {path} has format version {got}; this build reads version {supported}")]
    UnsupportedVersion { path: PathBuf, supported: u16, got: u16 },
    /// The SHA-256 trailer does not match: the file is corrupt.
    #[error("card file {path} is corrupt: checksum mismatch")]
    Checksum { path: PathBuf },
    /// The checksum matches but the payload is not a valid card state.
    #[error("card file {path} holds an invalid card state: {reason}")]
    Decode { path: PathBuf, reason: String },
}

/// The steps of an atomic save, in order. A [`FailPoint`] names one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Create the temporary file (same directory, mode 0600, never an existing file).
    CreateTemp,
    /// Write the encoded state into the temporary file.
    WriteTemp,
    /// fsync the temporary file.
    SyncTemp,
    /// Rename the temporary file over the card file (atomic on POSIX file systems).
    Rename,
    /// fsync the directory so the rename itself is durable.
    SyncDir,
}

impl Step {
    /// Every step, in the order a save performs them.
    pub const ALL: [Step; 5] = [Step::CreateTemp, Step::WriteTemp, Step::SyncTemp, Step::Rename, Step::SyncDir];
}

/// Where an injected failure strikes, simulating a crash there: the save stops (nothing is
/// cleaned up, as after a real crash) and returns [`PersistError::Refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// Before `Step` runs.
    Before(Step),
    /// After `Step` completed.
    After(Step),
    /// In the middle of [`Step::WriteTemp`]: only the first half of the bytes reach the temp file.
    TornWrite,
}

impl FailPoint {
    /// Every failure point of one save, in order.
    pub fn all() -> Vec<FailPoint> {
        let mut all = Vec::new();
        for step in Step::ALL {
            all.push(FailPoint::Before(step));
            if step == Step::WriteTemp {
                all.push(FailPoint::TornWrite);
            }
            all.push(FailPoint::After(step));
        }
        all
    }
}

/// A handle to arm a failure in a [`FileStore`], kept by a test after the store is boxed into
/// a [`crate::Card`]. An armed failure fires once, at the chosen save (the next one unless
/// [`FailSwitch::arm_nth`] skips some) when that save reaches the point.
#[derive(Clone, Debug, Default)]
pub struct FailSwitch(Arc<Mutex<Option<Armed>>>);

#[derive(Clone, Copy, Debug)]
struct Armed {
    point: FailPoint,
    /// Saves still to let through untouched before the targeted one.
    skip: u32,
    /// The save in progress is the targeted one.
    active: bool,
}

impl FailSwitch {
    /// Arm `point` for the next save (replacing any armed point).
    pub fn arm(&self, point: FailPoint) {
        self.arm_nth(0, point);
    }

    /// Arm `point` for the save after `skip` further saves (0 = the next save). A command that
    /// saves twice (a correct PIN: counter down, then back up) is torn in its second save
    /// with `arm_nth(1, ..)`.
    pub fn arm_nth(&self, skip: u32, point: FailPoint) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(Armed { point, skip, active: false });
        }
    }

    /// Disarm. Returns the point if it was still armed (it never fired).
    pub fn disarm(&self) -> Option<FailPoint> {
        self.0.lock().ok().and_then(|mut slot| slot.take()).map(|a| a.point)
    }

    /// A save starts: decides whether it is the targeted one.
    fn begin_save(&self) {
        if let Ok(mut slot) = self.0.lock()
            && let Some(armed) = slot.as_mut()
        {
            if armed.skip == 0 {
                armed.active = true;
            } else {
                armed.skip -= 1;
                armed.active = false;
            }
        }
    }

    /// Fires (and disarms) if `point` is armed for the save in progress.
    fn fires(&self, point: FailPoint) -> bool {
        match self.0.lock() {
            Ok(mut slot) if slot.is_some_and(|a| a.active && a.point == point) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }
}

/// The card's persistent state in one file, replaced atomically on every save.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    fail: FailSwitch,
}

impl FileStore {
    /// A store that saves to `path` (which should already hold the card: see [`create_new`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), fail: FailSwitch::default() }
    }

    /// The card file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The failure-injection handle (tests: the tearing test arms it at every step).
    pub fn fail_switch(&self) -> FailSwitch {
        self.fail.clone()
    }
}

impl Persist for FileStore {
    fn save(&mut self, state: &PersistentState) -> Result<(), PersistError> {
        let bytes = encode(state)?;
        write_atomic(&self.path, &bytes, Finish::Replace, &self.fail)
    }
}

/// Write a new card file at `path` holding `state`. Refuses (with an `AlreadyExists` I/O
/// error) if anything exists at `path`: a card is never overwritten by a fresh one.
pub fn create_new(path: &Path, state: &PersistentState) -> Result<(), PersistError> {
    let bytes = encode(state)?;
    write_atomic(path, &bytes, Finish::NoReplace, &FailSwitch::default())
}

/// Read and check the card file at `path`.
pub fn load(path: &Path) -> Result<PersistentState, LoadError> {
    let io_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing { path: path.to_path_buf() }
        } else {
            LoadError::Io { path: path.to_path_buf(), source }
        }
    };
    let len = std::fs::metadata(path).map_err(io_err)?.len();
    if len > MAX_FILE_LEN {
        return Err(LoadError::TooLong { path: path.to_path_buf(), expected: MAX_FILE_LEN, got: len });
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io_err)?);
    decode(&bytes, path)
}

/// Encode `state` in the card file format.
pub fn encode(state: &PersistentState) -> Result<Zeroizing<Vec<u8>>, PersistError> {
    let mut payload = Zeroizing::new(Vec::new());
    ciborium::into_writer(state, &mut *payload).map_err(|_| PersistError::Refused("card state could not be encoded as CBOR"))?;
    let payload_len = u32::try_from(payload.len()).map_err(|_| PersistError::Refused("card state over 4 GiB"))?;
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + payload.len() + CHECKSUM_LEN));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(&payload);
    let sum = Sha256::digest(&out[..]);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Decode and check a card file's bytes; `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<PersistentState, LoadError> {
    let path_buf = || path.to_path_buf();
    let got = bytes.len() as u64;
    let min = (HEADER_LEN + CHECKSUM_LEN) as u64;
    // Magic first, so a foreign file is named as such even when it is short.
    let magic_len = bytes.len().min(MAGIC.len());
    let magic = bytes.get(..magic_len).unwrap_or_default();
    if magic.is_empty() || Some(magic) != MAGIC.get(..magic_len) {
        return Err(LoadError::BadMagic { path: path_buf(), expected: MAGIC, got: magic.to_vec() });
    }
    let Some((header, _)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(LoadError::Truncated { path: path_buf(), expected: min, got });
    };
    let version = header.get(8..10).and_then(|b| <[u8; 2]>::try_from(b).ok()).map(u16::from_be_bytes).unwrap_or_default();
    if version != FORMAT_VERSION {
        return Err(LoadError::UnsupportedVersion { path: path_buf(), supported: FORMAT_VERSION, got: version });
    }
    let payload_len =
        header.get(10..14).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes).map(u64::from).unwrap_or_default();
    let expected = HEADER_LEN as u64 + payload_len + CHECKSUM_LEN as u64;
    if got < expected {
        return Err(LoadError::Truncated { path: path_buf(), expected, got });
    }
    if got > expected {
        return Err(LoadError::TooLong { path: path_buf(), expected, got });
    }
    // got == expected, so these splits succeed; still, no panicking index on file bytes.
    let (checked, sum) = bytes
        .len()
        .checked_sub(CHECKSUM_LEN)
        .and_then(|checked_len| bytes.split_at_checked(checked_len))
        .ok_or_else(|| LoadError::Truncated { path: path_buf(), expected, got })?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(Sha256::digest(checked).as_slice(), sum)) {
        return Err(LoadError::Checksum { path: path_buf() });
    }
    let payload = checked.get(HEADER_LEN..).unwrap_or_default();
    let mut reader = payload;
    let state: PersistentState =
        ciborium::from_reader(&mut reader).map_err(|e| LoadError::Decode { path: path_buf(), reason: e.to_string() })?;
    if !reader.is_empty() {
        return Err(LoadError::Decode {
            path: path_buf(),
            reason: format!("{} bytes of trailing data after the CBOR state", reader.len()),
        });
    }
    Ok(state)
}

/// How the temporary file becomes the card file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// rename(2): atomically replaces an existing card file.
    Replace,
    /// link(2) then unlink the temp: atomically fails if the card file exists.
    NoReplace,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary file's path: hidden, in the same directory (so rename is atomic), unique.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "card".to_owned());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// The directory holding `path` (for the directory fsync).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_atomic(path: &Path, bytes: &[u8], finish: Finish, fail: &FailSwitch) -> Result<(), PersistError> {
    let injected = |point: FailPoint| -> Result<(), PersistError> {
        if fail.fires(point) {
            tracing::warn!(?point, file = %path.display(), "injected failure while saving card state");
            Err(PersistError::Refused("injected failure (test)"))
        } else {
            Ok(())
        }
    };
    let io = |target: &Path| {
        let target = target.to_path_buf();
        move |source: std::io::Error| PersistError::Io { path: target, source }
    };

    fail.begin_save();
    // 1. Create the temp file: new, 0600.
    injected(FailPoint::Before(Step::CreateTemp))?;
    let mut temp = None;
    for _ in 0..16 {
        let candidate = temp_path(path);
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&candidate) {
            Ok(file) => {
                temp = Some((candidate, file));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&candidate)(e)),
        }
    }
    let Some((temp_path, mut file)) = temp else {
        return Err(PersistError::Refused("no free temporary file name"));
    };
    // From here on a real error removes the temp file; an injected one leaves it (a crash would).
    let cleanup = |e: PersistError| {
        if !matches!(e, PersistError::Refused(_)) {
            let _ = std::fs::remove_file(&temp_path);
        }
        e
    };
    injected(FailPoint::After(Step::CreateTemp)).map_err(cleanup)?;

    // 2. Write the bytes.
    injected(FailPoint::Before(Step::WriteTemp)).map_err(cleanup)?;
    if fail.fires(FailPoint::TornWrite) {
        let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
        let _ = file.write_all(half);
        let _ = file.sync_all();
        tracing::warn!(file = %path.display(), "injected torn write while saving card state");
        return Err(PersistError::Refused("injected torn write (test)"));
    }
    file.write_all(bytes).map_err(io(&temp_path)).map_err(cleanup)?;
    injected(FailPoint::After(Step::WriteTemp)).map_err(cleanup)?;

    // 3. fsync the temp file, so its bytes are on disk before the name points at them.
    injected(FailPoint::Before(Step::SyncTemp)).map_err(cleanup)?;
    file.sync_all().map_err(io(&temp_path)).map_err(cleanup)?;
    drop(file);
    injected(FailPoint::After(Step::SyncTemp)).map_err(cleanup)?;

    // 4. Atomically make it the card file.
    injected(FailPoint::Before(Step::Rename)).map_err(cleanup)?;
    match finish {
        Finish::Replace => std::fs::rename(&temp_path, path).map_err(io(path)).map_err(cleanup)?,
        Finish::NoReplace => {
            std::fs::hard_link(&temp_path, path).map_err(io(path)).map_err(cleanup)?;
            std::fs::remove_file(&temp_path).map_err(io(&temp_path))?;
        }
    }
    injected(FailPoint::After(Step::Rename))?;

    // 5. fsync the directory, so the rename survives a power cut.
    injected(FailPoint::Before(Step::SyncDir))?;
    let dir = parent_dir(path);
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir))?;
    injected(FailPoint::After(Step::SyncDir))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PersistentState {
        PersistentState::blank(0x0102_0304)
    }

    fn encoded() -> Vec<u8> {
        encode(&sample()).expect("encode").to_vec()
    }

    #[test]
    fn encoded_file_starts_with_magic_version_and_length_and_ends_with_sha256() {
        let bytes = encoded();
        assert_eq!(&bytes[..8], b"MEDCARD\x1a");
        assert_eq!(&bytes[8..10], &[0, 1]);
        let len = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
        assert_eq!(bytes.len(), 14 + len + 32);
        let sum = Sha256::digest(&bytes[..14 + len]);
        assert_eq!(&bytes[14 + len..], sum.as_slice());
    }

    #[test]
    fn decode_round_trips_encode() {
        let state = decode(&encoded(), Path::new("x.card")).expect("decode");
        assert!(state == sample());
    }

    #[test]
    fn every_strict_prefix_is_refused_and_names_the_file() {
        let bytes = encoded();
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut], Path::new("/cards/p.card")).err().unwrap_or_else(|| panic!("prefix of {cut} bytes accepted"));
            assert!(err.to_string().contains("/cards/p.card"), "error does not name the file: {err}");
            if cut >= 8 {
                assert!(matches!(err, LoadError::Truncated { .. }), "prefix {cut}: {err:?}");
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = encoded();
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(decode(&flipped, Path::new("p.card")).is_err(), "bit {i} flipped was accepted");
        }
    }

    #[test]
    fn unknown_version_is_refused_as_such() {
        let mut bytes = encoded();
        bytes[9] = 2;
        let err = decode(&bytes, Path::new("p.card")).expect_err("version 2 accepted");
        assert!(matches!(err, LoadError::UnsupportedVersion { got: 2, supported: 1, .. }), "{err:?}");
    }

    #[test]
    fn trailing_bytes_after_checksum_are_refused() {
        let mut bytes = encoded();
        bytes.push(0);
        let err = decode(&bytes, Path::new("p.card")).expect_err("trailing byte accepted");
        assert!(matches!(err, LoadError::TooLong { .. }), "{err:?}");
    }

    #[test]
    fn valid_checksum_over_garbage_payload_is_a_decode_error() {
        let payload = [0xffu8, 0x00, 0x13];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&payload);
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        let err = decode(&bytes, Path::new("p.card")).expect_err("garbage accepted");
        assert!(matches!(err, LoadError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn foreign_file_is_refused_as_bad_magic() {
        let err = decode(b"{\"serial\": 1}", Path::new("p.card")).expect_err("json accepted");
        assert!(matches!(err, LoadError::BadMagic { .. }), "{err:?}");
        let err = decode(b"", Path::new("p.card")).expect_err("empty accepted");
        assert!(matches!(err, LoadError::BadMagic { .. }), "{err:?}");
    }

    #[test]
    fn missing_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.card");
        let err = load(&path).expect_err("missing file loaded");
        assert!(matches!(err, LoadError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains("none.card"));
    }

    #[test]
    fn create_new_writes_a_0600_file_that_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.card");
        create_new(&path, &sample()).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(load(&path).expect("load") == sample());
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("readdir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("p.card")]);
    }

    #[test]
    fn create_new_refuses_to_overwrite_an_existing_card() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.card");
        create_new(&path, &sample()).expect("create");
        let before = std::fs::read(&path).expect("read");
        let err = create_new(&path, &PersistentState::blank(9)).expect_err("overwrote");
        assert!(matches!(&err, PersistError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists), "{err:?}");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn save_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.card");
        create_new(&path, &sample()).expect("create");
        let mut store = FileStore::new(&path);
        let next = PersistentState::blank(77);
        store.save(&next).expect("save");
        assert!(load(&path).expect("load") == next);
        assert_eq!(std::fs::read_dir(dir.path()).expect("readdir").count(), 1);
    }

    #[test]
    fn every_injected_failure_leaves_old_or_new_state_whole() {
        for point in FailPoint::all() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("p.card");
            create_new(&path, &sample()).expect("create");
            let mut store = FileStore::new(&path);
            store.fail_switch().arm(point);
            let next = PersistentState::blank(77);
            let res = store.save(&next);
            assert!(res.is_err(), "{point:?}: injected failure did not fail the save");
            assert!(store.fail_switch().disarm().is_none(), "{point:?} never fired");
            let on_disk = load(&path).expect("card file unreadable after a crash");
            let renamed =
                matches!(point, FailPoint::After(Step::Rename) | FailPoint::Before(Step::SyncDir) | FailPoint::After(Step::SyncDir));
            if renamed {
                assert!(on_disk == next, "{point:?}: expected the new state");
            } else {
                assert!(on_disk == sample(), "{point:?}: expected the old state");
            }
            // A later save (the next process) still works despite the crash leftovers.
            let mut again = FileStore::new(&path);
            again.save(&next).expect("save after crash");
            assert!(load(&path).expect("load") == next);
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes, Path::new("p.card"));
        }

        #[test]
        fn decode_never_panics_with_valid_header_and_random_tail(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = encoded()[..14].to_vec();
            bytes.extend_from_slice(&tail);
            // The checksum cannot match by chance: a random tail is always refused.
            prop_assert!(decode(&bytes, Path::new("p.card")).is_err());
        }
    }
}
