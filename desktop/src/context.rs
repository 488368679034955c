//! What every view needs: the clinic's data directory, the record store, the card reader, the
//! clock, and the settings (timeouts). Work threads open the keystore and database themselves
//! from the directory (each open is a few file reads), so nothing here is shared across threads
//! but paths and the card source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reader::Keystore;
use reader::clinic::ClinicState;
use reader::store::{AnyStore, DirStore};

use crate::card_source::CardSource;

/// Timeouts and defaults, all overridable on the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The kiosk goes back to "insert your card" after this long without a touch.
    pub kiosk_idle: Duration,
    /// How long a check-in QR code is valid (seconds).
    pub qr_valid_for: i64,
    /// The bedside hides a shown record after this long.
    pub record_hide: Duration,
    /// A staff session (bedside, admin) ends after this long without activity (`--staff-idle`;
    /// default [`reader::staff_card::DEFAULT_IDLE_SECS`], at least 10 s).
    pub staff_idle: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kiosk_idle: Duration::from_secs(90),
            qr_valid_for: 600,
            record_hide: Duration::from_secs(120),
            staff_idle: Duration::from_secs(reader::staff_card::DEFAULT_IDLE_SECS.unsigned_abs()),
        }
    }
}

/// The app's environment.
#[derive(Debug, Clone)]
pub struct AppContext {
    /// The clinic data directory (`medcard init`).
    pub data_dir: PathBuf,
    /// The record store directory (`--store`); `None`: the data directory's own (the clinic's
    /// store in clinic mode, else `<data>/records`).
    pub store_dir: Option<PathBuf>,
    /// The card reader (the kiosk's patient cards, the admin's card issuing).
    pub source: CardSource,
    /// The staff card readers offered at sign-in (`--staff-reader`); empty: the PC/SC readers
    /// found on this computer.
    pub staff_readers: Vec<CardSource>,
    /// Timeouts.
    pub settings: Settings,
    /// Who acts, as audit entries name them (`desktop:<os user>`).
    pub actor: String,
    /// A fixed clock (tests and `MEDCARD_NOW`), else the system clock.
    pub fixed_now: Option<i64>,
    /// Where Save PNG, Save as… and Export certificate write (`--export-dir`, else
    /// [`reader::export::resolve_dir`]); empty when nothing names one. Never inside `data_dir`.
    pub export_dir: PathBuf,
}

/// Something went wrong opening the clinic: the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The keystore (clinic keys) could not be opened.
    #[error("cannot open the clinic in {dir}: {source}; create one with `medcard init --clinic-id ID --data {dir}` or start with --demo")]
    Keystore { dir: String, source: reader::KeystoreError },
    /// The clinic database could not be opened.
    #[error("cannot open the clinic database: {0}")]
    State(#[from] reader::clinic::ClinicError),
    /// The record store could not be opened.
    #[error("cannot open the record store {dir}: {msg}")]
    Store { dir: String, msg: String },
}

/// The keystore, clinic state and record store, opened for one piece of work.
pub struct Opened {
    /// Clinic keys.
    pub ks: Keystore,
    /// Clinic database (audited flows).
    pub state: ClinicState,
    /// Encrypted records.
    pub store: AnyStore,
}

impl AppContext {
    /// The environment for the clinic in `data_dir`.
    #[must_use]
    pub fn new(data_dir: &Path, source: CardSource) -> Self {
        AppContext {
            data_dir: data_dir.to_owned(),
            store_dir: None,
            source,
            staff_readers: Vec::new(),
            settings: Settings::default(),
            actor: format!("desktop:{}", reader::audit::os_user()),
            fixed_now: None,
            export_dir: reader::export::resolve_dir(None).unwrap_or_default(),
        }
    }

    /// Saves `bytes` in the export folder as `<stem>.<ext>` (a name the app chooses; `-2`, … when
    /// taken): a new file, mode 0600, never inside the data directory
    /// ([`reader::export::save_new`]). Files of the app older than a day go first. Returns where
    /// the file went.
    ///
    /// # Errors
    /// No export folder, one inside the data directory, or the file could not be written.
    pub fn export(&self, stem: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf, reader::export::ExportError> {
        if self.export_dir.as_os_str().is_empty() {
            return Err(reader::export::ExportError::NoExportDir);
        }
        self.purge_exports();
        reader::export::save_new(&self.data_dir, &self.export_dir, stem, ext, bytes)
    }

    /// Removes the app's files older than [`reader::export::MAX_AGE`] from the export folder
    /// (best effort: a folder that cannot be listed is left alone). Returns how many went.
    pub fn purge_exports(&self) -> usize {
        if self.export_dir.as_os_str().is_empty() {
            return 0;
        }
        reader::export::purge_older_than(&self.export_dir, std::time::SystemTime::now(), reader::export::MAX_AGE).unwrap_or(0)
    }

    /// Unix seconds now (the fixed clock when set).
    #[must_use]
    pub fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(system_now)
    }

    /// Opens keys, database and store.
    ///
    /// # Errors
    /// A message that says what to do.
    pub fn open(&self) -> Result<Opened, OpenError> {
        let ks =
            Keystore::open(&self.data_dir).map_err(|source| OpenError::Keystore { dir: self.data_dir.display().to_string(), source })?;
        let state = ClinicState::open(&ks)?.with_actor(&self.actor);
        let store = match &self.store_dir {
            Some(d) => AnyStore::Dir(DirStore::open(d).map_err(|e| OpenError::Store { dir: d.display().to_string(), msg: e.to_string() })?),
            None => {
                let d = state.deployment()?;
                reader::deployment::open_store(&self.data_dir, d.as_ref())
                    .map_err(|e| OpenError::Store { dir: self.data_dir.display().to_string(), msg: e.to_string() })?
            }
        };
        Ok(Opened { ks, state, store })
    }

    /// Whether the disk holding the data directory is (all but) full, so that a storage failure
    /// can be named for what it is ("free disk space") rather than as a broken installation.
    #[must_use]
    pub fn disk_full(&self) -> bool {
        rustix::fs::statvfs(&self.data_dir).is_ok_and(|v| nearly_full(v.f_bavail.saturating_mul(v.f_frsize)))
    }
}

/// Less than this much free space counts as a full disk (SQLite needs room for its journal).
const FULL_BELOW: u64 = 1 << 20;

/// Whether `available` bytes is too little to work with. Pure.
#[must_use]
pub fn nearly_full(available: u64) -> bool {
    available < FULL_BELOW
}

/// The system clock in Unix seconds; `MEDCARD_NOW` replaces it in test builds only, as for the
/// CLI ([`reader::clock`]); an unparsable value is ignored here (the app has no error path at start).
#[must_use]
pub fn system_now() -> i64 {
    reader::clock::now().unwrap_or_else(|_| reader::clock::system_now())
}

/// "9:58" for a countdown of seconds (0:00 when past).
#[must_use]
pub fn countdown(secs: i64) -> String {
    let s = secs.max(0);
    if s >= 3600 { format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60) } else { format!("{}:{:02}", s / 60, s % 60) }
}

#[cfg(test)]
mod tests {
    use super::{countdown, nearly_full};

    #[test]
    fn under_a_mebibyte_free_counts_as_a_full_disk() {
        assert!(nearly_full(0));
        assert!(nearly_full(1_048_575));
        assert!(!nearly_full(1_048_576));
    }

    #[test]
    fn countdown_reads_like_a_clock_and_stops_at_zero() {
        assert_eq!(countdown(598), "9:58");
        assert_eq!(countdown(5), "0:05");
        assert_eq!(countdown(-3), "0:00");
        assert_eq!(countdown(3725), "1:02:05");
    }
}
