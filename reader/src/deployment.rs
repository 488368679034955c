//! How a device takes part in a clinic (`docs/deployment.md`): `<data>/device.json` says which
//! device this is, its role, and where the clinic's shared state lives. No file: the
//! single-device mode (everything in the data directory), the default of `medcard init`.
//!
//! ```text
//! <data>/device.json            {"format":1,"device_id":"kiosk-1","role":"kiosk",
//!                                "postgres":{"url":"postgresql://medcard_kiosk1@db.clinic:5432/medcard",
//!                                            "tls":"require","ca_file":"/etc/medcard/db-ca.pem"}}
//! <data>/keys/postgres.password the database password (0600, like the other keystore files)
//! ```
//!
//! The URL never holds the password (refused when it does): it is printed by `device status`
//! and would end up in logs; the password lives only in the keystore file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::fsutil::{self, FsError};
use crate::store::{AnyStore, DirStore, S3Config, S3Store, StoreError};

/// The device file in the data directory.
pub const DEVICE_FILE: &str = "device.json";
/// The database password file, in the keystore directory.
pub const PG_PASSWORD_FILE: &str = "postgres.password";
/// The object store's secret key file, in the keystore directory.
pub const S3_SECRET_FILE: &str = "s3.secret";
/// The records directory inside the data directory (the single-device store).
pub const RECORDS_DIR: &str = "records";
/// The only format this version reads and writes.
pub const FORMAT: u32 = 1;

/// A device's role: what it may do and which secrets it holds (docs/deployment.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reception kiosk: card checks, consent, check-in (signs codes, unwraps content keys).
    Kiosk,
    /// Ward device: scans codes, opens records with the key in the code, keeps a cache.
    Bedside,
    /// The admin PC: issues and revokes cards, adds records, checkpoints the audit log.
    Admin,
}

impl Role {
    /// The name used in `device.json` and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Kiosk => "kiosk",
            Role::Bedside => "bedside",
            Role::Admin => "admin",
        }
    }

    /// The PostgreSQL group role whose rights a device of this role gets.
    #[must_use]
    pub fn db_group(self) -> &'static str {
        match self {
            Role::Kiosk => "medcard_kiosk",
            Role::Bedside => "medcard_bedside",
            Role::Admin => "medcard_admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = DeploymentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kiosk" => Ok(Role::Kiosk),
            "bedside" => Ok(Role::Bedside),
            "admin" => Ok(Role::Admin),
            _ => Err(DeploymentError::UnknownRole { got: s.to_owned() }),
        }
    }
}

/// Whether the database connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS, the server's certificate checked against `ca_file` (or the system's CAs).
    #[default]
    Require,
    /// Plain TCP: only for a server on the same host or a test (loopback).
    Disable,
}

/// Where the clinic database is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgConfig {
    /// `postgresql://user@host:port/dbname`, without a password.
    pub url: String,
    /// TLS (default `require`).
    #[serde(default)]
    pub tls: Tls,
    /// The CA certificate (PEM) that signed the server's certificate; `None`: the system's CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Where the sealed records are: exactly one of a directory or an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A directory every device of the clinic mounts (a file share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// An S3-compatible object store (the secret key: `keys/s3.secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

/// `device.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// [`FORMAT`].
    pub format: u32,
    /// This device's name in the clinic (in every audit entry it writes).
    pub device_id: String,
    /// What this device is.
    pub role: Role,
    /// The clinic database.
    pub postgres: PgConfig,
    /// The record store; `None`: `<data>/records`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreConfig>,
}

/// `device.json` or the database password could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeploymentError {
    /// Reading or writing the file.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Not the JSON we write.
    #[error("{}: not a MedCard device file: {source}; fix it or join again (`medcard device join`)", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A format this version does not know.
    #[error("{}: device file format {got}, this program reads format {FORMAT}: upgrade MedCard", path.display())]
    Format { path: PathBuf, got: u32 },
    /// A role we do not know (no rights by default).
    #[error("unknown device role {got:?}: use kiosk, bedside or admin")]
    UnknownRole { got: String },
    /// A device id we do not accept.
    #[error("invalid device id {got:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    DeviceId { got: String },
    /// A database URL we cannot use.
    #[error("database URL: {why}; expected postgresql://USER@HOST:PORT/DBNAME")]
    Url { why: String },
    /// A password in the URL.
    #[error(
        "the database URL holds a password: give the password with --db-password-file (kept in the keystore, never printed) and the URL without it"
    )]
    PasswordInUrl,
    /// No password file.
    #[error("{}: no database password for this device: join again with --db-password-file", path.display())]
    NoPassword { path: PathBuf },
    /// An empty password.
    #[error("the database password is empty")]
    EmptyPassword,
    /// `store` names both or neither of `dir` and `s3`.
    #[error("{}: the record store must be exactly one of store.dir and store.s3", path.display())]
    StoreChoice { path: PathBuf },
    /// No secret key for the object store.
    #[error("{}: no secret key for the record store: join again with --s3-secret-file", path.display())]
    NoS3Secret { path: PathBuf },
    /// The record store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a device id: 1 to 64 of A-Z a-z 0-9 . _ - (it goes into audit entries and file names).
pub fn check_device_id(id: &str) -> Result<(), DeploymentError> {
    let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(DeploymentError::DeviceId { got: id.to_owned() }) }
}

/// Checks a database URL: `postgres://` or `postgresql://`, a user, a host, a database name,
/// and no password.
pub fn check_pg_url(url: &str) -> Result<(), DeploymentError> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| DeploymentError::Url { why: "it does not start with postgresql://".into() })?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return Err(DeploymentError::Url { why: "no user name (USER@HOST)".into() });
    };
    if userinfo.contains(':') {
        return Err(DeploymentError::PasswordInUrl);
    }
    if userinfo.is_empty() || host.is_empty() {
        return Err(DeploymentError::Url { why: "an empty user or host".into() });
    }
    let db = rest.get(authority.len()..).unwrap_or_default();
    let db = db.strip_prefix('/').unwrap_or_default().split('?').next().unwrap_or_default();
    if db.is_empty() {
        return Err(DeploymentError::Url { why: "no database name (/DBNAME)".into() });
    }
    if url.contains("password=") {
        return Err(DeploymentError::PasswordInUrl);
    }
    Ok(())
}

impl Deployment {
    /// Parses and checks `device.json`'s bytes (`path` for messages).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, DeploymentError> {
        // The format first, so a newer file says "upgrade" instead of naming an unknown field.
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|source| DeploymentError::Parse { path: path.to_owned(), source })?;
        if head.format != FORMAT {
            return Err(DeploymentError::Format { path: path.to_owned(), got: head.format });
        }
        let d: Deployment = serde_json::from_slice(bytes).map_err(|source| DeploymentError::Parse { path: path.to_owned(), source })?;
        check_device_id(&d.device_id)?;
        check_pg_url(&d.postgres.url)?;
        if let Some(s) = &d.store
            && s.dir.is_some() == s.s3.is_some()
        {
            return Err(DeploymentError::StoreChoice { path: path.to_owned() });
        }
        Ok(d)
    }

    /// The deployment of the data directory `dir`; `None`: single-device mode.
    pub fn load(dir: &Path) -> Result<Option<Self>, DeploymentError> {
        let path = dir.join(DEVICE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        fsutil::check_private(&path, 0o600)?;
        let bytes = fsutil::read_limited(&path, 64 * 1024)?;
        Self::parse(&bytes, &path).map(Some)
    }

    /// Writes `device.json` atomically (0600).
    pub fn save(&self, dir: &Path) -> Result<(), DeploymentError> {
        check_device_id(&self.device_id)?;
        check_pg_url(&self.postgres.url)?;
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        fsutil::write_atomic(&dir.join(DEVICE_FILE), &json)?;
        Ok(())
    }

    /// The password file of the data directory `dir`.
    #[must_use]
    pub fn password_path(dir: &Path) -> PathBuf {
        dir.join(crate::keystore::KEYS_DIR).join(PG_PASSWORD_FILE)
    }

    /// Stores the database password in the keystore directory (0600, atomic).
    pub fn save_password(dir: &Path, password: &str) -> Result<(), DeploymentError> {
        let password = password.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err(DeploymentError::EmptyPassword);
        }
        let keys = dir.join(crate::keystore::KEYS_DIR);
        fsutil::create_dir(&keys, 0o700)?;
        fsutil::write_atomic(&Self::password_path(dir), password.as_bytes())?;
        Ok(())
    }

    /// Stores the object store's secret key in the keystore directory (0600, atomic).
    pub fn save_s3_secret(dir: &Path, secret: &str) -> Result<(), DeploymentError> {
        let secret = secret.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            return Err(DeploymentError::EmptyPassword);
        }
        fsutil::write_atomic(&dir.join(crate::keystore::KEYS_DIR).join(S3_SECRET_FILE), secret.as_bytes())?;
        Ok(())
    }

    /// The object store's secret key (checked 0600).
    pub fn s3_secret(dir: &Path) -> Result<Zeroizing<String>, DeploymentError> {
        let path = dir.join(crate::keystore::KEYS_DIR).join(S3_SECRET_FILE);
        if !path.exists() {
            return Err(DeploymentError::NoS3Secret { path });
        }
        fsutil::check_private(&path, 0o600)?;
        let bytes = Zeroizing::new(fsutil::read_limited(&path, 4096)?);
        Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).trim_end_matches(['\r', '\n']).to_owned()))
    }

    /// The database password (checked 0600).
    pub fn password(dir: &Path) -> Result<Zeroizing<String>, DeploymentError> {
        let path = Self::password_path(dir);
        if !path.exists() {
            return Err(DeploymentError::NoPassword { path });
        }
        fsutil::check_private(&path, 0o600)?;
        let bytes = Zeroizing::new(fsutil::read_limited(&path, 4096)?);
        let text = Zeroizing::new(String::from_utf8_lossy(&bytes).trim_end_matches(['\r', '\n']).to_owned());
        if text.is_empty() {
            return Err(DeploymentError::EmptyPassword);
        }
        Ok(text)
    }
}

/// The record store of the data directory `dir`: the clinic's (`device.json` → `store`: a
/// directory or an S3 bucket), else `<dir>/records`.
pub fn open_store(dir: &Path, deployment: Option<&Deployment>) -> Result<AnyStore, DeploymentError> {
    match deployment.and_then(|d| d.store.as_ref()) {
        Some(StoreConfig { s3: Some(cfg), .. }) => Ok(AnyStore::S3(S3Store::open(cfg, &Deployment::s3_secret(dir)?)?)),
        Some(StoreConfig { dir: Some(d), .. }) => Ok(AnyStore::Dir(DirStore::open(d)?)),
        _ => Ok(AnyStore::Dir(DirStore::open(&dir.join(RECORDS_DIR))?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn sample() -> Deployment {
        Deployment {
            format: FORMAT,
            device_id: "kiosk-1".into(),
            role: Role::Kiosk,
            postgres: PgConfig { url: "postgresql://medcard_k1@db.clinic:5432/medcard".into(), tls: Tls::Require, ca_file: None },
            store: None,
        }
    }

    #[test]
    fn device_file_round_trips_and_is_private() -> R {
        let d = tempfile::tempdir()?;
        assert_eq!(Deployment::load(d.path())?, None);
        sample().save(d.path())?;
        assert_eq!(Deployment::load(d.path())?, Some(sample()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.path().join(DEVICE_FILE))?.permissions().mode() & 0o777, 0o600);
        Ok(())
    }

    #[test]
    fn a_password_in_the_url_is_refused() {
        for url in ["postgresql://u:secret@h/db", "postgresql://u@h/db?password=secret"] {
            assert!(matches!(check_pg_url(url), Err(DeploymentError::PasswordInUrl)), "{url}");
        }
        assert!(check_pg_url("postgresql://u@h:5432/db").is_ok());
        assert!(check_pg_url("postgresql://h/db").is_err());
        assert!(check_pg_url("mysql://u@h/db").is_err());
        assert!(check_pg_url("postgresql://u@h").is_err());
    }

    #[test]
    fn unknown_roles_fields_and_formats_are_refused() {
        let p = Path::new("device.json");
        let good = serde_json::to_string(&sample()).unwrap_or_default();
        assert!(Deployment::parse(good.as_bytes(), p).is_ok());
        let role = good.replace("\"kiosk\"", "\"superuser\"");
        assert!(matches!(Deployment::parse(role.as_bytes(), p), Err(DeploymentError::Parse { .. })));
        let extra = good.replacen('{', "{\"x\":1,", 1);
        assert!(matches!(Deployment::parse(extra.as_bytes(), p), Err(DeploymentError::Parse { .. })));
        let fmt = good.replace("\"format\":1", "\"format\":2");
        assert!(matches!(Deployment::parse(fmt.as_bytes(), p), Err(DeploymentError::Format { got: 2, .. })));
        assert!("nurse".parse::<Role>().is_err());
        assert!(matches!(Deployment::parse(b"\xff", p), Err(DeploymentError::Parse { .. })));
    }

    #[test]
    fn password_is_kept_0600_and_never_empty() -> R {
        let d = tempfile::tempdir()?;
        assert!(matches!(Deployment::password(d.path()), Err(DeploymentError::NoPassword { .. })));
        assert!(matches!(Deployment::save_password(d.path(), "\n"), Err(DeploymentError::EmptyPassword)));
        Deployment::save_password(d.path(), "s3cret\n")?;
        assert_eq!(Deployment::password(d.path())?.as_str(), "s3cret");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(Deployment::password_path(d.path()))?.permissions().mode() & 0o777, 0o600);
        Ok(())
    }
}
