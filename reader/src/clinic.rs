//! Clinic-side records kept as small JSON files in the data directory, each replaced atomically
//! and read-modify-written under an exclusive lock (`<data>/.clinic.lock`), so two `medcard`
//! processes cannot lose each other's update. Behind this module so they can move into the
//! clinic database (issue 5) later.
//!
//! ```text
//! <data>/cards.json            issued cards, one entry per card serial (latest issuance)
//! <data>/revoked.json          revoked card serials
//! <data>/consent-versions.json highest consent token version seen per patient id
//! <data>/trust/                trusted issuers of other clinics: one PEM/DER/COSE_Key file each
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::fsutil::{self, FsError};
use crate::keystore::Keystore;

const CARDS: &str = "cards.json";
const REVOKED: &str = "revoked.json";
const CONSENT_VERSIONS: &str = "consent-versions.json";
/// Directory of other clinics' trust files.
pub const TRUST_DIR: &str = "trust";
const LOCK: &str = ".clinic.lock";
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A clinic record file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClinicError {
    /// Not the JSON this module writes.
    #[error("clinic file {} is corrupt ({why}); restore it from a backup", path.display())]
    Corrupt { path: PathBuf, why: String },
    /// File-system failure.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// An older consent version than one already seen.
    #[error(
        "consent token version {got} for patient {patient_id} is older than version {highest} already seen: refusing a replayed token"
    )]
    ConsentReplay { patient_id: String, got: u64, highest: u64 },
    /// A trust entry name we do not accept, or that does not exist.
    #[error("{0}")]
    Trust(String),
}

/// An issued card, as the clinic remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCard {
    /// Card serial.
    pub serial: u32,
    /// Patient id.
    pub patient_id: String,
    /// Patient name (kept at the clinic only; not written to the card's credential).
    pub name: String,
    /// Issued at (Unix seconds).
    pub issued_at: i64,
    /// Credential expiry.
    pub expires_at: i64,
    /// kid of the card's 9E key (hex).
    pub kid_9e: String,
    /// kid of the card's 9C key (hex).
    pub kid_9c: String,
}

/// A revoked card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Card serial.
    pub serial: u32,
    /// Revoked at (Unix seconds).
    pub revoked_at: i64,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardsFile {
    format: u32,
    cards: Vec<IssuedCard>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokedFile {
    format: u32,
    revoked: Vec<Revocation>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentFile {
    format: u32,
    highest: BTreeMap<String, u64>,
}

/// The clinic's record files in a data directory.
#[derive(Debug, Clone)]
pub struct ClinicFiles {
    dir: PathBuf,
}

struct Locked(#[allow(dead_code)] File);

impl ClinicFiles {
    /// The records of the clinic whose keystore is `ks`.
    #[must_use]
    pub fn new(ks: &Keystore) -> Self {
        ClinicFiles { dir: ks.data_dir().to_path_buf() }
    }

    /// The records in `dir` (for tests and tools).
    #[must_use]
    pub fn at(dir: &Path) -> Self {
        ClinicFiles { dir: dir.to_path_buf() }
    }

    fn lock(&self) -> Result<Locked, ClinicError> {
        let p = self.dir.join(LOCK);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|source| FsError::Io { operation: "open lock file", path: p.clone(), source })?;
        f.lock().map_err(|source| FsError::Io { operation: "lock", path: p, source })?;
        Ok(Locked(f))
    }

    fn load<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ClinicError> {
        let path = self.dir.join(name);
        if !path.exists() {
            return Ok(T::default());
        }
        let bytes = fsutil::read_limited(&path, MAX_FILE)?;
        serde_json::from_slice(&bytes).map_err(|e| ClinicError::Corrupt { path, why: e.to_string() })
    }

    fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<(), ClinicError> {
        let json = serde_json::to_vec_pretty(value)
            .map_err(|e| ClinicError::Corrupt { path: self.dir.join(name), why: e.to_string() })?;
        fsutil::write_atomic(&self.dir.join(name), &json)?;
        Ok(())
    }

    /// All issued cards.
    pub fn cards(&self) -> Result<Vec<IssuedCard>, ClinicError> {
        Ok(self.load::<CardsFile>(CARDS)?.cards)
    }

    /// The issued card with `serial`, if any.
    pub fn card(&self, serial: u32) -> Result<Option<IssuedCard>, ClinicError> {
        Ok(self.cards()?.into_iter().find(|c| c.serial == serial))
    }

    /// Records an issuance (replacing an earlier one of the same serial).
    pub fn record_issued(&self, card: IssuedCard) -> Result<(), ClinicError> {
        let _l = self.lock()?;
        let mut f: CardsFile = self.load(CARDS)?;
        f.format = 1;
        f.cards.retain(|c| c.serial != card.serial);
        f.cards.push(card);
        f.cards.sort_by_key(|c| c.serial);
        self.save(CARDS, &f)
    }

    /// All revocations.
    pub fn revocations(&self) -> Result<Vec<Revocation>, ClinicError> {
        Ok(self.load::<RevokedFile>(REVOKED)?.revoked)
    }

    /// Whether `serial` is revoked.
    pub fn is_revoked(&self, serial: u32) -> Result<bool, ClinicError> {
        Ok(self.revocations()?.iter().any(|r| r.serial == serial))
    }

    /// Revokes `serial` (idempotent: a second revocation keeps the first).
    pub fn revoke(&self, serial: u32, now: i64, reason: &str) -> Result<Revocation, ClinicError> {
        let _l = self.lock()?;
        let mut f: RevokedFile = self.load(REVOKED)?;
        f.format = 1;
        if let Some(r) = f.revoked.iter().find(|r| r.serial == serial) {
            return Ok(r.clone());
        }
        let r = Revocation { serial, revoked_at: now, reason: reason.to_owned() };
        f.revoked.push(r.clone());
        self.save(REVOKED, &f)?;
        Ok(r)
    }

    /// The highest consent version seen for `patient_id`.
    pub fn highest_consent_version(&self, patient_id: &str) -> Result<Option<u64>, ClinicError> {
        Ok(self.load::<ConsentFile>(CONSENT_VERSIONS)?.highest.get(patient_id).copied())
    }

    /// Accepts consent `version` for `patient_id` if it is not older than the highest seen, and
    /// remembers it. An equal version is accepted (the same token read again).
    pub fn note_consent_version(&self, patient_id: &str, version: u64) -> Result<(), ClinicError> {
        let _l = self.lock()?;
        let mut f: ConsentFile = self.load(CONSENT_VERSIONS)?;
        f.format = 1;
        let highest = f.highest.get(patient_id).copied().unwrap_or(0);
        if version < highest {
            return Err(ClinicError::ConsentReplay { patient_id: patient_id.to_owned(), got: version, highest });
        }
        if version > highest || !f.highest.contains_key(patient_id) {
            f.highest.insert(patient_id.to_owned(), version);
            self.save(CONSENT_VERSIONS, &f)?;
        }
        Ok(())
    }

    /// The directory of other clinics' trust files.
    #[must_use]
    pub fn trust_dir(&self) -> PathBuf {
        self.dir.join(TRUST_DIR)
    }

    /// The other clinics' trust files: (name, bytes), sorted by name.
    pub fn trust_files(&self) -> Result<Vec<(String, Vec<u8>)>, ClinicError> {
        let dir = self.trust_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let entries =
            std::fs::read_dir(&dir).map_err(|source| FsError::Io { operation: "list", path: dir.clone(), source })?;
        for e in entries {
            let e = e.map_err(|source| FsError::Io { operation: "list", path: dir.clone(), source })?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            out.push((name, fsutil::read_limited(&e.path(), 1024 * 1024)?));
        }
        out.sort();
        Ok(out)
    }

    /// Stores a trust file under `name` (refuses to replace one).
    pub fn add_trust_file(&self, name: &str, bytes: &[u8]) -> Result<(), ClinicError> {
        check_trust_name(name)?;
        let dir = self.trust_dir();
        fsutil::create_dir(&dir, 0o700)?;
        let p = dir.join(name);
        if p.exists() {
            return Err(ClinicError::Trust(format!(
                "a trust entry named {name:?} already exists: remove it first (`medcard trust remove {name}`)"
            )));
        }
        fsutil::write_atomic(&p, bytes)?;
        Ok(())
    }

    /// Removes the trust file `name`.
    pub fn remove_trust_file(&self, name: &str) -> Result<(), ClinicError> {
        check_trust_name(name)?;
        let p = self.trust_dir().join(name);
        if !p.exists() {
            return Err(ClinicError::Trust(format!("no trust entry named {name:?} (see `medcard trust list`)")));
        }
        std::fs::remove_file(&p).map_err(|source| FsError::Io { operation: "remove", path: p, source })?;
        fsutil::sync_dir(&self.trust_dir())?;
        Ok(())
    }
}

fn check_trust_name(name: &str) -> Result<(), ClinicError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ClinicError::Trust(format!("invalid trust entry name {name:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")))
    }
}

/// The trust list: this clinic's issuer key plus every trust file in `<data>/trust/`.
pub fn trust_list(ks: &Keystore) -> Result<qr::TrustList, crate::Error> {
    let mut t = qr::TrustList::new();
    t.add_file(ks.ca_certificate_der(), "this clinic")
        .map_err(|e| crate::Error::InvalidInput(format!("this clinic's CA certificate: {e}")))?;
    for (name, bytes) in ClinicFiles::new(ks).trust_files()? {
        t.add_file(&bytes, &name).map_err(|e| crate::Error::InvalidInput(format!("{e}: remove it with `medcard trust remove {name}`")))?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn older_consent_version_is_refused_and_equal_is_accepted() -> R {
        let dir = tempfile::tempdir()?;
        let c = ClinicFiles::at(dir.path());
        c.note_consent_version("P-1", 3)?;
        c.note_consent_version("P-1", 3)?;
        let err = c.note_consent_version("P-1", 2);
        assert!(matches!(err, Err(ClinicError::ConsentReplay { got: 2, highest: 3, .. })), "{err:?}");
        c.note_consent_version("P-2", 1)?;
        assert_eq!(c.highest_consent_version("P-1")?, Some(3));
        Ok(())
    }

    #[test]
    fn revocation_is_remembered_once() -> R {
        let dir = tempfile::tempdir()?;
        let c = ClinicFiles::at(dir.path());
        assert!(!c.is_revoked(7)?);
        let first = c.revoke(7, 100, "lost")?;
        let again = c.revoke(7, 200, "again")?;
        assert_eq!(first, again);
        assert!(c.is_revoked(7)?);
        assert_eq!(c.revocations()?.len(), 1);
        Ok(())
    }

    #[test]
    fn reissue_replaces_the_card_record() -> R {
        let dir = tempfile::tempdir()?;
        let c = ClinicFiles::at(dir.path());
        let card = |name: &str| IssuedCard {
            serial: 5,
            patient_id: "P".into(),
            name: name.into(),
            issued_at: 1,
            expires_at: 2,
            kid_9e: String::new(),
            kid_9c: String::new(),
        };
        c.record_issued(card("a"))?;
        c.record_issued(card("b"))?;
        assert_eq!(c.cards()?, vec![card("b")]);
        Ok(())
    }

    #[test]
    fn corrupt_revocation_file_is_a_plain_error() -> R {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(REVOKED), b"{not json")?;
        let err = ClinicFiles::at(dir.path()).is_revoked(1);
        assert!(matches!(err, Err(ClinicError::Corrupt { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn trust_names_with_path_separators_are_refused() {
        assert!(check_trust_name("../x").is_err());
        assert!(check_trust_name(".hidden").is_err());
        assert!(check_trust_name("clinic-b.pem").is_ok());
    }
}
