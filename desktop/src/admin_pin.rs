//! The clinic admin PIN that guards the admin view (the keystore itself has no passphrase).
//!
//! Stored in `<data>/keys/admin-pin` (mode 0600, written atomically) as one line:
//!
//! ```text
//! medcard-admin-pin v1 argon2id m=19456 t=2 p=1 salt=<32 hex> hash=<64 hex>
//! ```
//!
//! Argon2id (RFC 9106) with a random 16-byte salt and the OWASP parameters (19 MiB, 2 passes,
//! 1 lane); a candidate is hashed with the stored parameters and compared in constant time.
//! The file is read strictly: any other shape, or parameters outside sane bounds (a corrupt or
//! hostile file must not make the app allocate gigabytes), is [`AdminPinError::Corrupt`], and
//! the view stays locked (fail closed); so does a file that group or others can read (as for
//! the keystore's files). The PIN is never logged nor put in an error.

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use reader::audit::{EventKind, Outcome};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The file name under `<data>/keys/`.
pub const FILE: &str = "admin-pin";
/// Shortest admin PIN.
pub const MIN_LEN: usize = 6;
/// Longest admin PIN.
pub const MAX_LEN: usize = 12;

const MAGIC: &str = "medcard-admin-pin";
const VERSION: &str = "v1";
const ALG: &str = "argon2id";
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Parameters for new hashes (OWASP: m = 19 MiB, t = 2, p = 1).
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Bounds on stored parameters (KiB, passes, lanes).
const M_RANGE: std::ops::RangeInclusive<u32> = 8..=(256 * 1024);
const T_RANGE: std::ops::RangeInclusive<u32> = 1..=16;
const P_RANGE: std::ops::RangeInclusive<u32> = 1..=8;
/// The file is one short line; anything larger is not ours.
const MAX_FILE: u64 = 512;

/// The admin PIN could not be set or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminPinError {
    /// No admin PIN has been set for this clinic.
    #[error("no admin PIN is set for this clinic: set one with `medcard-desktop --set-admin-pin --data {}`", data_dir.display())]
    NotSet { data_dir: PathBuf },
    /// The stored file is not a valid admin PIN hash.
    #[error("the admin PIN file {} is damaged ({why}): set the PIN again with `medcard-desktop --set-admin-pin`", path.display())]
    Corrupt { path: PathBuf, why: String },
    /// A new PIN that does not meet the rules (the message never contains the PIN).
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing the file failed.
    #[error(transparent)]
    Fs(#[from] reader::fsutil::FsError),
    /// Hashing failed (out of memory, no random source).
    #[error("could not hash the admin PIN: {0}")]
    Hash(String),
    /// A PIN is set and the current PIN given to change it is wrong (or missing).
    #[error("the current admin PIN is wrong: nothing was changed (the attempt is in the audit log)")]
    WrongOldPin,
    /// The change could not be written to the audit log, so it was undone.
    #[error("the admin PIN change could not be written to the audit log ({0}), so nothing was changed")]
    Audit(#[source] reader::Error),
}

/// What [`change`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChange {
    /// No PIN was set: this is the first.
    First,
    /// The PIN was replaced (the current one was given).
    Changed,
    /// The stored file was damaged (not a PIN hash): replaced without the current PIN.
    ReplacedDamaged,
}

/// Sets the admin PIN of the clinic in `data_dir`, as `medcard-desktop --set-admin-pin` does:
/// when a PIN is set, `old` must be it (checked first, so a wrong or missing one is refused
/// before the new one is even looked at); a damaged PIN file may be replaced without it (its
/// message tells IT to do so). Every outcome is audited as `admin.pin_set` by `actor` at `now`
/// (`ok` with detail `first` / `changed` / `replaced-damaged`, or `wrong-old-pin`), never the
/// PIN; a change that cannot be audited is undone (fail closed).
///
/// # Errors
/// [`AdminPinError::WrongOldPin`], a new PIN that breaks the rules, no clinic, a file others can
/// read (fix its mode first), [`AdminPinError::Audit`], or I/O.
pub fn change(data_dir: &Path, old: Option<&str>, new: &str, actor: &str, now: i64) -> Result<PinChange, AdminPinError> {
    let audit = |outcome: Outcome, detail: &str| -> Result<(), AdminPinError> {
        let ks = reader::Keystore::open(data_dir).map_err(|e| AdminPinError::Audit(e.into()))?;
        let state = reader::clinic::ClinicState::open(&ks).map_err(|e| AdminPinError::Audit(e.into()))?.with_actor(actor);
        let ev = state.event(now, EventKind::AdminPinSet, "admin-pin", outcome, detail.to_owned());
        state.audit(&[ev]).map_err(|e| AdminPinError::Audit(e.into()))
    };
    let file = path(data_dir);
    let kind = if !file.exists() {
        PinChange::First
    } else {
        match verify(data_dir, old.unwrap_or_default()) {
            Ok(true) => PinChange::Changed,
            Ok(false) => {
                audit(Outcome::WrongOldPin, "")?;
                return Err(AdminPinError::WrongOldPin);
            }
            Err(AdminPinError::Corrupt { .. }) => PinChange::ReplacedDamaged,
            Err(e) => return Err(e),
        }
    };
    let previous = match kind {
        PinChange::First => None,
        _ => Some(Zeroizing::new(reader::fsutil::read_limited(&file, MAX_FILE * 16)?)),
    };
    set(data_dir, new)?;
    let detail = match kind {
        PinChange::First => "first",
        PinChange::Changed => "changed",
        PinChange::ReplacedDamaged => "replaced-damaged",
    };
    if let Err(e) = audit(Outcome::Ok, detail) {
        // Undo: the change must not stand without its entry.
        let _ = match &previous {
            Some(bytes) => reader::fsutil::write_atomic(&file, bytes),
            None => std::fs::remove_file(&file).map_err(|source| reader::fsutil::FsError::Io {
                operation: "remove",
                path: file.clone(),
                source,
            }),
        };
        return Err(e);
    }
    Ok(kind)
}

/// Where the admin PIN hash of the clinic in `data_dir` lives.
#[must_use]
pub fn path(data_dir: &Path) -> PathBuf {
    reader::Keystore::keys_dir(data_dir).join(FILE)
}

/// Whether an admin PIN file exists (it may still be damaged: [`verify`] says).
#[must_use]
pub fn is_set(data_dir: &Path) -> bool {
    path(data_dir).is_file()
}

/// Checks a new admin PIN: 6 to 12 characters, no spaces or control characters.
///
/// # Errors
/// [`AdminPinError::Invalid`] saying what is wrong (never echoing the PIN).
pub fn check_new(pin: &str) -> Result<(), AdminPinError> {
    let n = pin.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(AdminPinError::Invalid(format!("an admin PIN has {MIN_LEN} to {MAX_LEN} characters (this one has {n})")));
    }
    if pin.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AdminPinError::Invalid("an admin PIN cannot contain spaces or control characters".into()));
    }
    Ok(())
}

/// A parsed admin PIN file.
struct Stored {
    m: u32,
    t: u32,
    p: u32,
    salt: [u8; SALT_LEN],
    hash: Zeroizing<[u8; HASH_LEN]>,
}

fn hash_with(pin: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; HASH_LEN]>, AdminPinError> {
    let params = Params::new(m, t, p, Some(HASH_LEN)).map_err(|e| AdminPinError::Hash(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    argon.hash_password_into(pin.as_bytes(), salt, out.as_mut_slice()).map_err(|e| AdminPinError::Hash(e.to_string()))?;
    Ok(out)
}

/// The file's line for `pin` with a fresh salt.
fn encode(pin: &str) -> Result<String, AdminPinError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| AdminPinError::Hash(format!("no random source: {e}")))?;
    let hash = hash_with(pin, &salt, M_COST, T_COST, P_COST)?;
    Ok(format!(
        "{MAGIC} {VERSION} {ALG} m={M_COST} t={T_COST} p={P_COST} salt={} hash={}\n",
        hex::encode(salt),
        hex::encode(hash.as_slice())
    ))
}

/// Parses the file's text strictly (exact fields, in order, bounded parameters).
fn decode(text: &str) -> Result<Stored, String> {
    let mut f = text.trim_end_matches('\n').split(' ');
    let mut next = |what: &str| f.next().ok_or_else(|| format!("missing {what}"));
    if next("the header")? != MAGIC {
        return Err("not an admin PIN file".into());
    }
    let v = next("the version")?;
    if v != VERSION {
        return Err(format!("unknown version {v:?}"));
    }
    let a = next("the algorithm")?;
    if a != ALG {
        return Err(format!("unknown algorithm {a:?}"));
    }
    let num = |field: &str, key: &str, range: std::ops::RangeInclusive<u32>| -> Result<u32, String> {
        let v: u32 = field
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| format!("bad {key} field"))?;
        if range.contains(&v) { Ok(v) } else { Err(format!("{key}={v} is out of range")) }
    };
    let m = num(next("m")?, "m", M_RANGE)?;
    let t = num(next("t")?, "t", T_RANGE)?;
    let p = num(next("p")?, "p", P_RANGE)?;
    let bytes = |field: &str, key: &str, out: &mut [u8]| -> Result<(), String> {
        let h = field.strip_prefix(key).and_then(|r| r.strip_prefix('=')).ok_or_else(|| format!("bad {key} field"))?;
        hex::decode_to_slice(h, out).map_err(|_| format!("bad {key} field"))
    };
    let mut salt = [0u8; SALT_LEN];
    bytes(next("the salt")?, "salt", &mut salt)?;
    let mut hash = Zeroizing::new([0u8; HASH_LEN]);
    bytes(next("the hash")?, "hash", hash.as_mut_slice())?;
    if f.next().is_some() {
        return Err("trailing data".into());
    }
    Ok(Stored { m, t, p, salt, hash })
}

/// Writes the admin PIN of the clinic in `data_dir` (replacing any), unchecked and unaudited:
/// the building block of [`change`], which `--set-admin-pin` uses. The clinic must exist.
///
/// # Errors
/// A PIN that breaks the rules, no clinic, or the file could not be written.
pub fn set(data_dir: &Path, pin: &str) -> Result<(), AdminPinError> {
    check_new(pin)?;
    let keys = reader::Keystore::keys_dir(data_dir);
    if !keys.is_dir() {
        return Err(AdminPinError::Invalid(format!("there is no clinic in {}: create one with `medcard init` first", data_dir.display())));
    }
    let line = Zeroizing::new(encode(pin)?);
    reader::fsutil::write_atomic(&path(data_dir), line.as_bytes())?;
    Ok(())
}

/// Whether `pin` is the admin PIN of the clinic in `data_dir` (slow by design: run it off the
/// UI thread).
///
/// # Errors
/// No PIN set, a damaged file, or the file could not be read.
pub fn verify(data_dir: &Path, pin: &str) -> Result<bool, AdminPinError> {
    let p = path(data_dir);
    if !p.exists() {
        return Err(AdminPinError::NotSet { data_dir: data_dir.to_owned() });
    }
    // Like the keystore's files: a hash others can read can be guessed offline.
    reader::fsutil::check_private(&p, 0o600)?;
    let raw = reader::fsutil::read_limited(&p, MAX_FILE)?;
    let text = std::str::from_utf8(&raw).map_err(|_| AdminPinError::Corrupt { path: p.clone(), why: "not text".into() })?;
    let stored = decode(text).map_err(|why| AdminPinError::Corrupt { path: p.clone(), why })?;
    let got = hash_with(pin, &stored.salt, stored.m, stored.t, stored.p)?;
    Ok(bool::from(got.as_slice().ct_eq(stored.hash.as_slice())))
}

/// Slows down guessing: after [`Throttle::FREE_TRIES`] wrong PINs in a row each further try
/// waits longer (5 s, 10 s, 20 s, ... up to 5 minutes). Pure: times are seconds on any
/// monotonic clock the caller uses (the UI passes egui's input time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throttle {
    failures: u32,
    last_failure: f64,
}

impl Throttle {
    /// Wrong PINs allowed before a delay.
    pub const FREE_TRIES: u32 = 3;
    /// The longest delay (seconds).
    pub const MAX_DELAY: f64 = 300.0;

    /// Notes a wrong PIN at `now`.
    pub fn failed(&mut self, now: f64) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
    }

    /// Forgets the failures (after the right PIN).
    pub fn succeeded(&mut self) {
        *self = Throttle::default();
    }

    /// Wrong PINs in a row.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay imposed after the current run of failures (0 during the free tries).
    #[must_use]
    pub fn delay(&self) -> f64 {
        Self::delay_after(self.failures)
    }

    /// The delay after `failures` wrong PINs in a row.
    #[must_use]
    pub fn delay_after(failures: u32) -> f64 {
        if failures < Self::FREE_TRIES {
            return 0.0;
        }
        let doublings = (failures - Self::FREE_TRIES).min(16);
        (5.0 * f64::from(1u32 << doublings)).min(Self::MAX_DELAY)
    }

    /// The state the audit log describes ([`from_log`]): `failures` wrong PINs in a row, the
    /// next try allowed `wait_left` seconds after `now`.
    pub fn resume(&mut self, failures: u32, wait_left: f64, now: f64) {
        self.failures = failures;
        self.last_failure = now + wait_left - Self::delay_after(failures);
    }

    /// Seconds left before another try is allowed at `now` (0: allowed).
    #[must_use]
    pub fn wait_left(&self, now: f64) -> f64 {
        (self.last_failure + self.delay() - now).max(0.0)
    }
}

/// How far the audit log says the guessing has gone, so a restart of the app does not reset it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogThrottle {
    /// Wrong admin PINs since the last right one (within the window read).
    pub failures: u32,
    /// Seconds before another try is allowed (0: allowed).
    pub wait_left: i64,
}

/// Reads the unlock attempts (`(time, right)`, oldest first, as the `admin.unlock` entries of
/// the audit log) at Unix time `now`. Pure.
#[must_use]
pub fn from_log(attempts: &[(i64, bool)], now: i64) -> LogThrottle {
    let failures = attempts.iter().rev().take_while(|(_, right)| !right).count();
    let failures = u32::try_from(failures).unwrap_or(u32::MAX);
    let wait_left = attempts.last().filter(|(_, right)| !right).map_or(0, |(t, _)| {
        #[allow(clippy::cast_possible_truncation)] // at most MAX_DELAY seconds
        let delay = Throttle::delay_after(failures).ceil() as i64;
        t.saturating_add(delay).saturating_sub(now).max(0)
    });
    LogThrottle { failures, wait_left }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_log_keeps_the_wait_after_wrong_pins_across_a_restart() {
        // Three wrong PINs just now: the fourth try waits 5 s, counted from the last failure.
        let wrong3 = [(100, false), (101, false), (102, false)];
        assert_eq!(from_log(&wrong3, 103), LogThrottle { failures: 3, wait_left: 4 });
        assert_eq!(from_log(&wrong3, 200), LogThrottle { failures: 3, wait_left: 0 });
        // A right PIN ends the run; fewer than three wrong ones cost nothing.
        assert_eq!(from_log(&[(1, false), (2, false), (3, false), (4, true), (5, false)], 5), LogThrottle { failures: 1, wait_left: 0 });
        assert_eq!(from_log(&[], 5), LogThrottle { failures: 0, wait_left: 0 });
        // Ten in a row: the longest wait.
        let many: Vec<(i64, bool)> = (0..10).map(|t| (t, false)).collect();
        assert_eq!(from_log(&many, 9), LogThrottle { failures: 10, wait_left: 300 });
        // Resumed into the UI clock: the same wait.
        let mut t = Throttle::default();
        t.resume(3, 4.0, 50.0);
        assert!((t.wait_left(50.0) - 4.0).abs() < 1e-9 && t.wait_left(54.0) == 0.0);
    }

    fn clinic() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(reader::Keystore::keys_dir(d.path())).unwrap();
        d
    }

    #[test]
    fn the_right_pin_verifies_and_a_wrong_one_does_not() {
        let d = clinic();
        set(d.path(), "246810").unwrap();
        assert!(verify(d.path(), "246810").unwrap());
        assert!(!verify(d.path(), "246811").unwrap());
        assert!(!verify(d.path(), "2468100").unwrap());
        assert!(!verify(d.path(), "").unwrap());
    }

    #[test]
    fn the_file_is_private_salted_and_never_holds_the_pin() {
        let d = clinic();
        set(d.path(), "s3cret-PIN").unwrap();
        let p = path(d.path());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let first = std::fs::read_to_string(&p).unwrap();
        assert!(!first.contains("s3cret-PIN"));
        assert!(first.starts_with("medcard-admin-pin v1 argon2id m=19456 t=2 p=1 salt="), "{first}");
        // Setting the same PIN again draws a new salt, so the file changes.
        set(d.path(), "s3cret-PIN").unwrap();
        assert_ne!(std::fs::read_to_string(&p).unwrap(), first);
        assert!(verify(d.path(), "s3cret-PIN").unwrap());
    }

    #[test]
    fn a_hash_file_others_can_read_is_refused() {
        let d = clinic();
        set(d.path(), "246810").unwrap();
        std::fs::set_permissions(path(d.path()), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(verify(d.path(), "246810"), Err(AdminPinError::Fs(_))));
        // Setting the PIN again writes a private file.
        set(d.path(), "246810").unwrap();
        assert!(verify(d.path(), "246810").unwrap());
    }

    #[test]
    fn no_pin_set_is_its_own_error_that_says_how_to_set_one() {
        let d = clinic();
        assert!(!is_set(d.path()));
        let e = verify(d.path(), "246810").unwrap_err();
        assert!(matches!(e, AdminPinError::NotSet { .. }), "{e:?}");
        assert!(e.to_string().contains("--set-admin-pin"), "{e}");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_panic_nor_a_match() {
        let d = clinic();
        set(d.path(), "246810").unwrap();
        let good = std::fs::read_to_string(path(d.path())).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\xff\xfe".to_vec(),
            b"medcard-admin-pin v1".to_vec(),
            good.replace("v1", "v2").into_bytes(),
            good.replace("argon2id", "argon2d").into_bytes(),
            good.replace("m=19456", "m=4294967295").into_bytes(),
            good.replace("t=2", "t=0").into_bytes(),
            good.replace("p=1", "p=x").into_bytes(),
            good.replace("salt=", "salt=zz").into_bytes(),
            format!("{} extra\n", good.trim_end()).into_bytes(),
            vec![b'a'; 4096],
        ];
        // Every prefix of the good line.
        cases.extend((0..good.len() - 1).map(|n| good.as_bytes().get(..n).unwrap().to_vec()));
        for bytes in cases {
            std::fs::write(path(d.path()), &bytes).unwrap();
            match verify(d.path(), "246810") {
                Err(AdminPinError::Corrupt { .. } | AdminPinError::Fs(_)) => {}
                other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(&bytes)),
            }
        }
    }

    #[test]
    fn new_pins_must_have_6_to_12_characters_without_spaces_and_errors_never_echo_them() {
        for bad in ["", "12345", "1234567890123", "123 456", "12345\n"] {
            let e = check_new(bad).unwrap_err();
            assert!(bad.trim().is_empty() || !e.to_string().contains(bad.trim()), "{e}");
        }
        for good in ["123456", "abcdefghijkl", "Zürich-2026"] {
            check_new(good).unwrap();
        }
    }

    #[test]
    fn setting_a_pin_without_a_clinic_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(set(d.path(), "246810"), Err(AdminPinError::Invalid(_))));
        assert!(!is_set(d.path()));
    }

    #[test]
    fn three_wrong_pins_are_free_then_each_try_waits_longer() {
        let mut t = Throttle::default();
        for i in 0..3 {
            assert_eq!(t.wait_left(f64::from(i)), 0.0);
            t.failed(f64::from(i));
        }
        assert_eq!(t.delay(), 5.0);
        assert_eq!(t.wait_left(2.0), 5.0);
        assert_eq!(t.wait_left(7.0), 0.0);
        t.failed(7.0);
        assert_eq!(t.delay(), 10.0);
        for _ in 0..40 {
            t.failed(100.0);
        }
        assert_eq!(t.delay(), Throttle::MAX_DELAY);
        t.succeeded();
        assert_eq!((t.failures(), t.wait_left(100.0)), (0, 0.0));
    }
}
