//! The clinic keystore: clinic id, issuer P-256 key (which is also the clinic CA key), the
//! clinic CA certificate and a 32-byte master secret, under `<data>/keys/`. See
//! `docs/clinic-keys.md` for the layout and the key derivations.
//!
//! ```text
//! <data>/keys/            0700
//!   master.key            0600  32 bytes: the master secret (HKDF input key material)
//!   issuer.key            0600  32 bytes: the issuer/CA P-256 private scalar, big-endian
//!   ca.crt                0600  DER X.509: the self-signed clinic CA certificate (issuer key)
//!   clinic.json           0600  {"format":1,"clinic_id":..,"created":..,"issuer_kid":..}
//! ```
//! A bedside device of a clinic (`medcard device join --role bedside`) holds neither the master
//! secret nor the issuer key: it opens records with the key in the QR code. Its keystore is
//! ```text
//! <data>/keys/            0700
//!   device.key            0600  32 bytes: this device's own secret (its local database key)
//!   ca.crt                0600  the clinic CA certificate (to verify codes)
//!   clinic.json           0600  {...,"holds":"device"}
//! ```
//! `clinic.json` is written last: a directory without it is a half-made clinic, refused by
//! [`Keystore::open`] and never overwritten by [`Keystore::init`].
//!
//! Sub-keys come from the master secret with HKDF-SHA256 (RFC 5869), no salt, and one info
//! string per purpose ([`KeyPurpose::info`]); each output is 32 bytes.

use std::fmt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use p256::ecdsa::{SigningKey, VerifyingKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::fsutil::{self, FsError};
use crate::piv::{ManagementKey, MgmtAlgorithm};
use crate::x509::{self, CertError};

/// Name of the keys directory inside the data directory.
pub const KEYS_DIR: &str = "keys";
const MASTER_FILE: &str = "master.key";
const ISSUER_FILE: &str = "issuer.key";
const CA_FILE: &str = "ca.crt";
const CLINIC_FILE: &str = "clinic.json";
const DEVICE_KEY_FILE: &str = "device.key";
/// Validity of the clinic CA certificate: 20 years.
const CA_VALIDITY_SECS: i64 = 20 * 365 * 86_400;
/// Upper bound for reading any keystore file.
const MAX_FILE: u64 = 64 * 1024;

/// The environment variable naming the data directory.
pub const ENV_HOME: &str = "MEDCARD_HOME";

/// A keystore failure. Messages say what to do next; none contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// No clinic in the data directory.
    #[error("no clinic in {}: run `medcard init --clinic-id ID` first (or pass --data / set MEDCARD_HOME)", dir.display())]
    NotInitialized { dir: PathBuf },
    /// `init` found an existing (possibly half-made) clinic.
    #[error("a clinic already exists in {} (found {}): refusing to overwrite it", dir.display(), found.display())]
    AlreadyExists { dir: PathBuf, found: PathBuf },
    /// A keystore file has the wrong size or content.
    #[error("keystore file {} is corrupt: expected {expected}, got {got}; restore it from a backup", path.display())]
    Corrupt { path: PathBuf, expected: &'static str, got: String },
    /// A secret this keystore does not hold (a bedside device's keystore has no clinic secrets).
    #[error(
        "this device ({}) holds no {what}: it is a bedside device, which opens records only with the key in the QR code; \
         do this on a kiosk or the admin PC (docs/deployment.md, \"Secrets and rights per device\")",
        dir.display()
    )]
    NotHeld { dir: PathBuf, what: &'static str },
    /// A card management key could not be made from the derived bytes.
    #[error("cannot make the card management key: {0}")]
    ManagementKey(#[source] crate::piv::PivError),
    /// The issuer key file does not match the CA certificate or clinic.json.
    #[error("keystore in {} is inconsistent: {what}; restore the keys directory from a backup", dir.display())]
    Inconsistent { dir: PathBuf, what: String },
    /// A clinic id we do not accept.
    #[error("invalid clinic id {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    InvalidClinicId(String),
    /// No data directory could be determined.
    #[error("no data directory: pass --data DIR or set MEDCARD_HOME (HOME is not set either)")]
    NoDataDir,
    /// File-system failure.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Making the CA certificate failed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] crate::random::RandomError),
}

/// What a derived key is for. Each purpose has its own HKDF info string, so keys for different
/// purposes are independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyPurpose {
    /// The AES-256 management key (`9B`) of the card with this serial.
    /// info = `"MedCard v1 card management key"` ‖ serial (4 bytes big-endian).
    CardManagement { serial: u32 },
    /// The clinic database (SQLCipher) key. info = `"MedCard v1 clinic database key"`.
    Database,
    /// The key that wraps record content keys. info = `"MedCard v1 record key-wrap key"`.
    RecordKeyWrap,
    /// The key for audit-log purposes that need a secret (e.g. MACs).
    /// info = `"MedCard v1 audit log key"`.
    Audit,
}

impl KeyPurpose {
    /// The HKDF info bytes of this purpose.
    #[must_use]
    pub fn info(self) -> Vec<u8> {
        match self {
            KeyPurpose::CardManagement { serial } => {
                let mut v = b"MedCard v1 card management key".to_vec();
                v.extend_from_slice(&serial.to_be_bytes());
                v
            }
            KeyPurpose::Database => b"MedCard v1 clinic database key".to_vec(),
            KeyPurpose::RecordKeyWrap => b"MedCard v1 record key-wrap key".to_vec(),
            KeyPurpose::Audit => b"MedCard v1 audit log key".to_vec(),
        }
    }
}

/// HKDF-SHA256(IKM = master, salt = none, info = purpose.info(), L = 32).
#[must_use]
pub fn derive(master: &[u8; 32], purpose: KeyPurpose) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(None, master);
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 255 * 32 limit: expand cannot fail.
    if hk.expand(&purpose.info(), out.as_mut_slice()).is_err() {
        out.iter_mut().for_each(|b| *b = 0);
    }
    out
}

/// The data directory: `explicit`, else `$MEDCARD_HOME`, else `$XDG_DATA_HOME/medcard`, else
/// `$HOME/.local/share/medcard`.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf, KeystoreError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var(ENV_HOME) {
        return Ok(p);
    }
    if let Some(p) = var("XDG_DATA_HOME") {
        return Ok(p.join("medcard"));
    }
    var("HOME").map(|h| h.join(".local").join("share").join("medcard")).ok_or(KeystoreError::NoDataDir)
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClinicFile {
    format: u32,
    clinic_id: String,
    created: i64,
    issuer_kid: String,
    /// Which secrets the keystore holds; absent in keystores made before bedside devices had
    /// their own (they hold the clinic's).
    #[serde(default, skip_serializing_if = "Holds::is_clinic")]
    holds: Holds,
}

/// Which secrets a keystore holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Holds {
    /// The clinic's master secret and issuer key (single device, kiosk, admin PC).
    #[default]
    Clinic,
    /// Only a device key of its own and the CA certificate (a bedside device of a clinic).
    Device,
}

impl Holds {
    fn is_clinic(&self) -> bool {
        *self == Holds::Clinic
    }
}

/// The clinic's own secrets: what signs codes and credentials and what everything else derives from.
struct ClinicSecrets {
    issuer: SigningKey,
    master: Zeroizing<[u8; 32]>,
}

/// The secret a keystore's local database key comes from.
enum Secrets {
    Clinic(ClinicSecrets),
    Device(Zeroizing<[u8; 32]>),
}

/// An open clinic keystore. Secrets are zeroized on drop and redacted in `Debug`.
pub struct Keystore {
    data_dir: PathBuf,
    clinic_id: String,
    created: i64,
    /// The issuer (= CA) public key, from ca.crt.
    issuer_public: VerifyingKey,
    secrets: Secrets,
    ca_der: Vec<u8>,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("data_dir", &self.data_dir)
            .field("clinic_id", &self.clinic_id)
            .field("issuer_kid", &hex::encode(self.issuer_kid()))
            .field("holds", &self.holds())
            .field("secrets", &"<redacted>")
            .finish()
    }
}

fn check_clinic_id(id: &str) -> Result<(), KeystoreError> {
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(KeystoreError::InvalidClinicId(id.to_owned())) }
}

fn random32() -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let mut b = Zeroizing::new([0u8; 32]);
    crate::random::fill(b.as_mut_slice())?;
    Ok(b)
}

fn parse_clinic_file(path: &Path, bytes: &[u8]) -> Result<ClinicFile, KeystoreError> {
    let meta: ClinicFile = serde_json::from_slice(bytes).map_err(|e| KeystoreError::Corrupt {
        path: path.into(),
        expected: "clinic JSON {format, clinic_id, created, issuer_kid[, holds]}",
        got: e.to_string(),
    })?;
    if meta.format != 1 {
        return Err(KeystoreError::Corrupt { path: path.into(), expected: "format 1", got: format!("format {}", meta.format) });
    }
    check_clinic_id(&meta.clinic_id)?;
    Ok(meta)
}

fn read_secret32(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    fsutil::check_private(path, 0o600)?;
    let bytes = Zeroizing::new(fsutil::read_limited(path, MAX_FILE)?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(KeystoreError::Corrupt { path: path.into(), expected: "32 bytes", got: format!("{} bytes", bytes.len()) });
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

impl Keystore {
    /// The keys directory of `data_dir`.
    #[must_use]
    pub fn keys_dir(data_dir: &Path) -> PathBuf {
        data_dir.join(KEYS_DIR)
    }

    /// Creates a new clinic in `data_dir` (created if missing). Refuses if any keystore file
    /// already exists. `now` (Unix seconds) is the CA's notBefore.
    pub fn init(data_dir: &Path, clinic_id: &str, now: i64) -> Result<Keystore, KeystoreError> {
        check_clinic_id(clinic_id)?;
        let keys = Self::keys_dir(data_dir);
        for f in [CLINIC_FILE, MASTER_FILE, ISSUER_FILE, CA_FILE] {
            let p = keys.join(f);
            if p.exists() {
                return Err(KeystoreError::AlreadyExists { dir: data_dir.into(), found: p });
            }
        }
        fsutil::create_dir(data_dir, 0o700)?;
        fsutil::create_dir(&keys, 0o700)?;
        fsutil::check_private(&keys, 0o700)?;
        let master = random32()?;
        let issuer = loop {
            let scalar = random32()?;
            if let Ok(k) = SigningKey::from_slice(scalar.as_slice()) {
                break k;
            }
        };
        let subject = x509::subject_ca(clinic_id);
        let spec = x509::CertSpec {
            subject: subject.clone(),
            not_before: now - 300,
            not_after: now + CA_VALIDITY_SECS,
            ca: true,
            key_usage: x509::KU_KEY_CERT_SIGN | x509::KU_CRL_SIGN | x509::KU_DIGITAL_SIGNATURE,
        };
        let ca_der = x509::build(&spec, &VerifyingKey::from(&issuer), &subject, &issuer)?;
        fsutil::write_atomic(&keys.join(MASTER_FILE), master.as_slice())?;
        fsutil::write_atomic(&keys.join(ISSUER_FILE), &Zeroizing::new(issuer.to_bytes().to_vec()))?;
        fsutil::write_atomic(&keys.join(CA_FILE), &ca_der)?;
        let ks = Keystore {
            data_dir: data_dir.into(),
            clinic_id: clinic_id.into(),
            created: now,
            issuer_public: VerifyingKey::from(&issuer),
            secrets: Secrets::Clinic(ClinicSecrets { issuer, master }),
            ca_der,
        };
        let meta = ClinicFile {
            format: 1,
            clinic_id: clinic_id.into(),
            created: now,
            issuer_kid: hex::encode(ks.issuer_kid()),
            holds: Holds::Clinic,
        };
        let json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        fsutil::write_atomic(&keys.join(CLINIC_FILE), &json)?;
        Ok(ks)
    }

    /// Copies the clinic's keystore from `from_keys` (another device's `<data>/keys`, carried
    /// over a secure channel) into `data_dir` and opens it: how a kiosk or the admin PC of a
    /// clinic of many devices gets the keys that sign codes and unwrap content keys
    /// (docs/deployment.md). Refuses to replace an existing keystore; the copy is checked like
    /// any keystore before it is used.
    pub fn join(data_dir: &Path, from_keys: &Path) -> Result<Keystore, KeystoreError> {
        let keys = Self::keys_dir(data_dir);
        for f in [CLINIC_FILE, MASTER_FILE, ISSUER_FILE, CA_FILE] {
            let p = keys.join(f);
            if p.exists() {
                return Err(KeystoreError::AlreadyExists { dir: data_dir.into(), found: p });
            }
        }
        let mut files = Vec::with_capacity(4);
        for f in [CLINIC_FILE, MASTER_FILE, ISSUER_FILE, CA_FILE] {
            files.push((f, Zeroizing::new(fsutil::read_limited(&from_keys.join(f), MAX_FILE)?)));
        }
        fsutil::create_dir(data_dir, 0o700)?;
        fsutil::create_dir(&keys, 0o700)?;
        fsutil::check_private(&keys, 0o700)?;
        // clinic.json last: until it is there the directory is "not initialised", never half a keystore.
        files.sort_by_key(|(f, _)| *f == CLINIC_FILE);
        for (f, bytes) in &files {
            fsutil::write_atomic(&keys.join(f), bytes)?;
        }
        Self::open(data_dir)
    }

    /// A bedside device's keystore (least privilege, docs/deployment.md): the clinic id and CA
    /// certificate from `from_keys` (another device's `<data>/keys`) and a new random device key
    /// of its own for the local database. Neither the master secret nor the issuer key is read or
    /// copied. Refuses to replace an existing keystore.
    pub fn join_device(data_dir: &Path, from_keys: &Path) -> Result<Keystore, KeystoreError> {
        let keys = Self::keys_dir(data_dir);
        for f in [CLINIC_FILE, MASTER_FILE, ISSUER_FILE, CA_FILE, DEVICE_KEY_FILE] {
            let p = keys.join(f);
            if p.exists() {
                return Err(KeystoreError::AlreadyExists { dir: data_dir.into(), found: p });
            }
        }
        let from_clinic = from_keys.join(CLINIC_FILE);
        let mut meta = parse_clinic_file(&from_clinic, &fsutil::read_limited(&from_clinic, MAX_FILE)?)?;
        let ca_der = fsutil::read_limited(&from_keys.join(CA_FILE), MAX_FILE)?;
        meta.holds = Holds::Device;
        let device_key = random32()?;
        fsutil::create_dir(data_dir, 0o700)?;
        fsutil::create_dir(&keys, 0o700)?;
        fsutil::check_private(&keys, 0o700)?;
        fsutil::write_atomic(&keys.join(DEVICE_KEY_FILE), device_key.as_slice())?;
        fsutil::write_atomic(&keys.join(CA_FILE), &ca_der)?;
        let json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        // clinic.json last, as in init.
        fsutil::write_atomic(&keys.join(CLINIC_FILE), &json)?;
        Self::open(data_dir)
    }

    /// Opens the clinic in `data_dir`, checking modes (0700 directory, 0600 files), sizes and
    /// that the issuer key, CA certificate and clinic.json agree.
    pub fn open(data_dir: &Path) -> Result<Keystore, KeystoreError> {
        let keys = Self::keys_dir(data_dir);
        let clinic_path = keys.join(CLINIC_FILE);
        if !clinic_path.exists() {
            return Err(KeystoreError::NotInitialized { dir: data_dir.into() });
        }
        fsutil::check_private(&keys, 0o700)?;
        fsutil::check_private(&clinic_path, 0o600)?;
        let meta_bytes = fsutil::read_limited(&clinic_path, MAX_FILE)?;
        let meta = parse_clinic_file(&clinic_path, &meta_bytes)?;
        let secrets = match meta.holds {
            Holds::Clinic => {
                let master = read_secret32(&keys.join(MASTER_FILE))?;
                let issuer_path = keys.join(ISSUER_FILE);
                let scalar = read_secret32(&issuer_path)?;
                let issuer = SigningKey::from_slice(scalar.as_slice()).map_err(|_| KeystoreError::Corrupt {
                    path: issuer_path,
                    expected: "a P-256 private scalar in 1..n-1",
                    got: "a value out of range".into(),
                })?;
                Secrets::Clinic(ClinicSecrets { issuer, master })
            }
            Holds::Device => {
                // A device keystore that has the clinic's secrets next to it is not what its
                // clinic.json says: refuse rather than guess which one is meant.
                for f in [MASTER_FILE, ISSUER_FILE] {
                    if keys.join(f).exists() {
                        return Err(KeystoreError::Inconsistent {
                            dir: data_dir.into(),
                            what: format!("clinic.json says this device holds only its own key, but {f} is there; remove {f}"),
                        });
                    }
                }
                Secrets::Device(read_secret32(&keys.join(DEVICE_KEY_FILE))?)
            }
        };
        let ca_path = keys.join(CA_FILE);
        fsutil::check_private(&ca_path, 0o600)?;
        let ca_der = fsutil::read_limited(&ca_path, MAX_FILE)?;
        let ca_keys = qr::trust::from_certificate_der(&ca_der, "ca.crt").map_err(|e| KeystoreError::Corrupt {
            path: ca_path.clone(),
            expected: "a DER X.509 certificate with a P-256 key",
            got: e.to_string(),
        })?;
        let Some(ca_key) = ca_keys.first().map(|k| k.key) else {
            return Err(KeystoreError::Corrupt {
                path: ca_path,
                expected: "a DER X.509 certificate with a P-256 key",
                got: "no key".into(),
            });
        };
        if let Secrets::Clinic(c) = &secrets
            && VerifyingKey::from(&c.issuer) != ca_key
        {
            return Err(KeystoreError::Inconsistent { dir: data_dir.into(), what: "ca.crt is not for issuer.key".into() });
        }
        let ks = Keystore {
            data_dir: data_dir.into(),
            clinic_id: meta.clinic_id,
            created: meta.created,
            issuer_public: ca_key,
            secrets,
            ca_der,
        };
        if meta.issuer_kid != hex::encode(ks.issuer_kid()) {
            return Err(KeystoreError::Inconsistent {
                dir: data_dir.into(),
                what: format!("clinic.json names issuer kid {}, issuer.key has {}", meta.issuer_kid, hex::encode(ks.issuer_kid())),
            });
        }
        Ok(ks)
    }

    /// The data directory.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The clinic id (also the consent token's audience and the credential's issuer).
    #[must_use]
    pub fn clinic_id(&self) -> &str {
        &self.clinic_id
    }
    /// When the clinic was created (Unix seconds).
    #[must_use]
    pub fn created(&self) -> i64 {
        self.created
    }
    /// Which secrets this keystore holds.
    #[must_use]
    pub fn holds(&self) -> Holds {
        match self.secrets {
            Secrets::Clinic(_) => Holds::Clinic,
            Secrets::Device(_) => Holds::Device,
        }
    }
    fn clinic_secrets(&self, what: &'static str) -> Result<&ClinicSecrets, KeystoreError> {
        match &self.secrets {
            Secrets::Clinic(c) => Ok(c),
            Secrets::Device(_) => Err(KeystoreError::NotHeld { dir: self.data_dir.clone(), what }),
        }
    }
    /// The issuer (and CA) signing key; [`KeystoreError::NotHeld`] on a bedside device.
    pub fn issuer_key(&self) -> Result<&SigningKey, KeystoreError> {
        Ok(&self.clinic_secrets("issuer key")?.issuer)
    }
    /// A [`qr::Signer`] over the issuer key (for COSE_Sign1 credentials and QR codes).
    pub fn issuer_signer(&self) -> Result<qr::SoftwareSigner, KeystoreError> {
        Ok(qr::SoftwareSigner::new(self.issuer_key()?.clone()))
    }
    /// The issuer public key.
    #[must_use]
    pub fn issuer_public(&self) -> VerifyingKey {
        self.issuer_public
    }
    /// The issuer kid ([`qr::kid_for`]).
    #[must_use]
    pub fn issuer_kid(&self) -> [u8; qr::cose::KID_LEN] {
        qr::kid_for(&self.issuer_public())
    }
    /// The clinic CA certificate (DER).
    #[must_use]
    pub fn ca_certificate_der(&self) -> &[u8] {
        &self.ca_der
    }
    /// The CA subject, for issuing certificates under it.
    #[must_use]
    pub fn ca_subject(&self) -> Vec<(&'static [u8], String)> {
        x509::subject_ca(&self.clinic_id)
    }
    /// A 32-byte key derived from the master secret for `purpose` (HKDF-SHA256, see [`derive`]);
    /// [`KeyPurpose::Database`] is [`Keystore::database_key`]. Any other purpose on a bedside
    /// device is [`KeystoreError::NotHeld`].
    pub fn derive_key(&self, purpose: KeyPurpose) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        if purpose == KeyPurpose::Database {
            return Ok(self.database_key());
        }
        Ok(derive(&self.clinic_secrets("master secret")?.master, purpose))
    }
    /// The key of this device's own database: derived from the master secret, or on a bedside
    /// device from its device key (same HKDF info).
    #[must_use]
    pub fn database_key(&self) -> Zeroizing<[u8; 32]> {
        match &self.secrets {
            Secrets::Clinic(c) => derive(&c.master, KeyPurpose::Database),
            Secrets::Device(d) => derive(d, KeyPurpose::Database),
        }
    }
    /// The AES-256 management key for the card with `serial`.
    pub fn card_management_key(&self, serial: u32) -> Result<ManagementKey, KeystoreError> {
        let k = self.derive_key(KeyPurpose::CardManagement { serial })?;
        ManagementKey::new(MgmtAlgorithm::Aes256, k.as_slice()).map_err(KeystoreError::ManagementKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    type R = Result<(), Box<dyn std::error::Error>>;
    const NOW: i64 = 1_795_000_000;

    #[test]
    fn init_then_open_gives_the_same_clinic_and_keys() -> R {
        let dir = tempfile::tempdir()?;
        let a = Keystore::init(dir.path(), "clinic-a", NOW)?;
        let b = Keystore::open(dir.path())?;
        assert_eq!(b.clinic_id(), "clinic-a");
        assert_eq!(a.issuer_public(), b.issuer_public());
        assert_eq!(a.derive_key(KeyPurpose::Database)?, b.derive_key(KeyPurpose::Database)?);
        for f in [MASTER_FILE, ISSUER_FILE, CA_FILE, CLINIC_FILE] {
            let mode = std::fs::metadata(dir.path().join(KEYS_DIR).join(f))?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        let mode = std::fs::metadata(dir.path().join(KEYS_DIR))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        Ok(())
    }

    #[test]
    fn init_refuses_to_overwrite_an_existing_clinic() -> R {
        let dir = tempfile::tempdir()?;
        let a = Keystore::init(dir.path(), "clinic-a", NOW)?;
        let err = Keystore::init(dir.path(), "clinic-b", NOW);
        assert!(matches!(err, Err(KeystoreError::AlreadyExists { .. })), "{err:?}");
        assert_eq!(Keystore::open(dir.path())?.issuer_public(), a.issuer_public(), "old clinic untouched");
        Ok(())
    }

    #[test]
    fn derived_keys_differ_per_purpose_and_per_card() -> R {
        let dir = tempfile::tempdir()?;
        let ks = Keystore::init(dir.path(), "c", NOW)?;
        let keys = [
            ks.derive_key(KeyPurpose::Database)?,
            ks.derive_key(KeyPurpose::RecordKeyWrap)?,
            ks.derive_key(KeyPurpose::Audit)?,
            ks.derive_key(KeyPurpose::CardManagement { serial: 1 })?,
            ks.derive_key(KeyPurpose::CardManagement { serial: 2 })?,
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in keys.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        Ok(())
    }

    #[test]
    fn derive_matches_rfc5869_construction_with_a_fixed_master() {
        // Independent recomputation: HKDF = HMAC-based extract (salt = 32 zero bytes) + expand.
        use hmac_check::hkdf_sha256;
        let master = [0x0Bu8; 32];
        let ours = derive(&master, KeyPurpose::Database);
        let reference = hkdf_sha256(&master, b"MedCard v1 clinic database key");
        assert_eq!(ours.as_slice(), reference.as_slice());
    }

    mod hmac_check {
        use sha2::{Digest, Sha256};
        fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
            let mut k = [0u8; 64];
            k.iter_mut().zip(key).for_each(|(d, s)| *d = *s);
            let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
            let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5C).collect();
            let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
            Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
        }
        pub fn hkdf_sha256(ikm: &[u8], info: &[u8]) -> [u8; 32] {
            let prk = hmac(&[0u8; 32], ikm);
            let mut m = info.to_vec();
            m.push(1);
            hmac(&prk, &m)
        }
    }

    #[test]
    fn open_without_a_clinic_says_to_run_init() -> R {
        let dir = tempfile::tempdir()?;
        let err = Keystore::open(dir.path());
        assert!(matches!(err, Err(KeystoreError::NotInitialized { .. })), "{err:?}");
        assert!(err.err().map(|e| e.to_string()).unwrap_or_default().contains("medcard init"));
        Ok(())
    }

    #[test]
    fn open_refuses_truncated_master_key() -> R {
        let dir = tempfile::tempdir()?;
        Keystore::init(dir.path(), "c", NOW)?;
        fsutil::write_atomic(&dir.path().join(KEYS_DIR).join(MASTER_FILE), &[1; 31])?;
        let err = Keystore::open(dir.path());
        assert!(matches!(&err, Err(KeystoreError::Corrupt { got, .. }) if got == "31 bytes"), "{err:?}");
        Ok(())
    }

    #[test]
    fn open_refuses_a_group_readable_issuer_key() -> R {
        let dir = tempfile::tempdir()?;
        Keystore::init(dir.path(), "c", NOW)?;
        let p = dir.path().join(KEYS_DIR).join(ISSUER_FILE);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        let err = Keystore::open(dir.path());
        assert!(matches!(err, Err(KeystoreError::Fs(FsError::Permissive { .. }))), "{err:?}");
        Ok(())
    }

    #[test]
    fn open_refuses_an_issuer_key_that_does_not_match_the_ca() -> R {
        let dir = tempfile::tempdir()?;
        Keystore::init(dir.path(), "c", NOW)?;
        fsutil::write_atomic(&dir.path().join(KEYS_DIR).join(ISSUER_FILE), &[7; 32])?;
        let err = Keystore::open(dir.path());
        assert!(matches!(err, Err(KeystoreError::Inconsistent { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn open_refuses_a_missing_ca_certificate() -> R {
        let dir = tempfile::tempdir()?;
        Keystore::init(dir.path(), "c", NOW)?;
        std::fs::remove_file(dir.path().join(KEYS_DIR).join(CA_FILE))?;
        assert!(matches!(Keystore::open(dir.path()), Err(KeystoreError::Fs(_))));
        Ok(())
    }

    #[test]
    fn a_bedside_keystore_holds_no_clinic_secret_and_refuses_what_needs_one() -> R {
        let admin = tempfile::tempdir()?;
        let clinic = Keystore::init(admin.path(), "clinic-a", NOW)?;
        let bed = tempfile::tempdir()?;
        let ks = Keystore::join_device(&bed.path().join("bed"), &admin.path().join(KEYS_DIR))?;
        let keys = bed.path().join("bed").join(KEYS_DIR);
        assert!(!keys.join(MASTER_FILE).exists() && !keys.join(ISSUER_FILE).exists());
        let master = std::fs::read(admin.path().join(KEYS_DIR).join(MASTER_FILE))?;
        let issuer = std::fs::read(admin.path().join(KEYS_DIR).join(ISSUER_FILE))?;
        for e in std::fs::read_dir(&keys)? {
            let bytes = std::fs::read(e?.path())?;
            assert!(!bytes.windows(32).any(|w| w == master.as_slice() || w == issuer.as_slice()), "a clinic secret was copied");
        }
        // What it verifies with is the clinic's; what it opens its own database with is not.
        let reopened = Keystore::open(&bed.path().join("bed"))?;
        assert_eq!(reopened.holds(), Holds::Device);
        assert_eq!(reopened.clinic_id(), "clinic-a");
        assert_eq!(reopened.issuer_public(), clinic.issuer_public());
        assert_eq!(reopened.database_key(), ks.database_key());
        assert_ne!(ks.database_key(), clinic.database_key());
        for err in [
            ks.issuer_key().err(),
            ks.issuer_signer().err(),
            ks.derive_key(KeyPurpose::RecordKeyWrap).err(),
            ks.card_management_key(7).err(),
        ] {
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains("holds no") && text.contains("bedside device"), "{text}");
        }
        Ok(())
    }

    #[test]
    fn a_bedside_keystore_with_the_master_secret_next_to_it_is_refused() -> R {
        let admin = tempfile::tempdir()?;
        Keystore::init(admin.path(), "clinic-a", NOW)?;
        let bed = tempfile::tempdir()?;
        Keystore::join_device(bed.path(), &admin.path().join(KEYS_DIR))?;
        std::fs::copy(admin.path().join(KEYS_DIR).join(MASTER_FILE), bed.path().join(KEYS_DIR).join(MASTER_FILE))?;
        let err = Keystore::open(bed.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("master.key is there"), "{err}");
        Ok(())
    }

    #[test]
    fn a_keystore_written_before_bedside_keys_still_opens_as_a_clinic_keystore() -> R {
        let dir = tempfile::tempdir()?;
        Keystore::init(dir.path(), "c", NOW)?;
        let json = std::fs::read_to_string(dir.path().join(KEYS_DIR).join(CLINIC_FILE))?;
        assert!(!json.contains("holds"), "{json}");
        assert_eq!(Keystore::open(dir.path())?.holds(), Holds::Clinic);
        Ok(())
    }

    #[test]
    fn debug_output_redacts_the_secrets() -> R {
        let dir = tempfile::tempdir()?;
        let ks = Keystore::init(dir.path(), "c", NOW)?;
        let dbg = format!("{ks:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&hex::encode(ks.derive_key(KeyPurpose::RecordKeyWrap)?.as_slice())));
        assert!(!dbg.contains(&hex::encode(ks.issuer_key()?.to_bytes())));
        Ok(())
    }

    #[test]
    fn clinic_ids_with_path_characters_are_refused() {
        assert!(check_clinic_id("a/b").is_err());
        assert!(check_clinic_id("").is_err());
        assert!(check_clinic_id("clinic-a.example_1").is_ok());
    }
}
