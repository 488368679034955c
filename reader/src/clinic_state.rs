//! The card side's clinic state: issued cards, revocations and the highest consent version per
//! patient live in the clinic database (`<data>/clinic.db`, SQLCipher, key from the keystore;
//! see `docs/database.md` and [`tables`]); every change commits in one transaction with its
//! audit entry. Other clinics' trust files stay files:
//!
//! ```text
//! <data>/clinic.db             cards, card_revocations, consent_versions, audit_entries, ...
//! <data>/trust/                trusted issuers of other clinics: one PEM/DER/COSE_Key file each
//! ```
//!
//! In clinic mode (`device.json`, docs/deployment.md) the same operations go to the clinic
//! database ([`pg`]), the trust list included; the device keeps a copy of the revocation and
//! trust lists ([`copies`]) for when that database does not answer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub mod copies;
pub mod pg;
pub mod tables;

pub use copies::LocalCopies;

pub use pg::{PgClinic, PgError, SpendOutcome, Spent};
pub use tables::{ConsentNote, ConsentVersion};

use crate::audit::{AuditError, Event, EventKind, Outcome};
use crate::db::{ClinicDb, DbError, RecordRow};
use crate::deployment::{Deployment, DeploymentError};
use crate::fsutil::{self, FsError};
use crate::keystore::{Keystore, KeystoreError};
use crate::sealed::RecordMeta;
use crate::store::Locator;

/// Directory of other clinics' trust files.
pub const TRUST_DIR: &str = "trust";
/// The actor named in audit entries when none is set ([`ClinicState::with_actor`]).
pub const DEFAULT_ACTOR: &str = "reader";

/// The clinic state could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClinicError {
    /// File-system failure (trust files).
    #[error(transparent)]
    Fs(#[from] FsError),
    /// An older consent version than one already seen.
    #[error("consent token version {got} for patient {patient_id} is older than version {highest} already seen: refusing a replayed token")]
    ConsentReplay { patient_id: String, got: u64, highest: u64 },
    /// A consent token with the version of one already seen, but different content.
    #[error(
        "consent token version {version} for patient {patient_id} differs from the version {version} token already seen: refusing a forged or replayed token; ask the patient to set consent again"
    )]
    ConsentConflict { patient_id: String, version: u64 },
    /// Something in `trust/` that is not a regular file (a symlink, a directory).
    #[error("{} is not a regular file: trust files must be plain files; remove it (`rm {}`) and add the clinic again", path.display(), path.display())]
    TrustNotAFile { path: PathBuf },
    /// A trust entry of that name exists already.
    #[error("a trust entry named {name:?} already exists: remove it first (`medcard trust remove {name}`)")]
    TrustExists { name: String },
    /// No trust entry of that name.
    #[error("no trust entry named {name:?} (see `medcard trust list`)")]
    TrustMissing { name: String },
    /// A trust entry name we do not accept.
    #[error("invalid trust entry name {name:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    TrustName { name: String },
    /// A trust file larger than any certificate or key we accept.
    #[error("trust file {name:?} is {size} bytes, at most 1 MiB is accepted: check the file")]
    TrustTooLarge { name: String, size: usize },
    /// A trust file that does not parse as a trusted key.
    #[error("{source}: remove it with `medcard trust remove {name}`")]
    TrustFile {
        name: String,
        #[source]
        source: qr::trust::TrustError,
    },
    /// This clinic's own CA certificate does not load as a trusted key.
    #[error("this clinic's CA certificate: {0}")]
    OwnCertificate(#[source] qr::trust::TrustError),
    /// The clinic database cannot be opened or used: nothing was done on the card's behalf.
    #[error("{0}")]
    Db(#[from] DbError),
    /// The audit log could not be written: the operation is not done (fail closed).
    #[error("could not write the audit log: {0}")]
    Audit(#[from] AuditError),
    /// The keystore (for the database key).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// `device.json` or the database password (clinic mode).
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The clinic database (clinic mode).
    #[error(transparent)]
    Shared(#[from] PgError),
    /// Clinic mode, database unreachable: whether the card is revoked cannot be known, so the
    /// card is not accepted (fail closed).
    #[error("cannot check whether card {serial} is revoked: {source}; the card is not accepted until the clinic database is reachable")]
    RevocationUnknown {
        serial: u32,
        #[source]
        source: PgError,
    },
    /// A queued audit entry on this device could not be read back.
    #[error("this device's audit queue: {0}")]
    Queue(String),
}

impl ClinicError {
    /// Whether this is the clinic database being unreachable (the device may go on offline
    /// where that is safe: the bedside's cached records).
    #[must_use]
    pub fn is_clinic_db_unavailable(&self) -> bool {
        match self {
            ClinicError::Shared(e) | ClinicError::RevocationUnknown { source: e, .. } => e.is_unavailable(),
            _ => false,
        }
    }
}

/// The clinic mode's shared backend of one data directory: the deployment and a kept
/// connection, opened on first use and again after it broke.
pub struct Shared {
    dir: PathBuf,
    deployment: Deployment,
    pg: Option<PgClinic>,
}

impl Shared {
    /// The deployment (`device.json`).
    #[must_use]
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Runs `f` on the connection (connecting first when there is none or it broke); a
    /// connection that turned out unreachable is dropped so the next call reconnects.
    pub fn with_pg<R>(&mut self, f: impl FnOnce(&mut PgClinic) -> Result<R, PgError>) -> Result<R, ClinicError> {
        if self.pg.as_ref().is_some_and(PgClinic::is_closed) {
            self.pg = None;
        }
        let pg = match self.pg.take() {
            Some(pg) => self.pg.insert(pg),
            None => {
                let password = Deployment::password(&self.dir)?;
                let c = PgClinic::connect(&self.deployment.postgres, &password, &self.deployment.device_id)?;
                self.pg.insert(c)
            }
        };
        let r = f(pg);
        if matches!(&r, Err(e) if e.is_unavailable()) {
            self.pg = None;
        }
        Ok(r?)
    }
}

/// Which mode a data directory is in, found on first use.
enum Backend {
    Unknown,
    Local,
    Clinic(Box<Shared>),
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

impl IssuedCard {
    /// The row of a card issued with credential claims `c`, for holder text `holder` (the patient
    /// id, or a staff card's `staff:<role>:<id>`) and name `name`.
    #[must_use]
    pub fn of(c: &crate::card_claims::CardClaims, holder: String, name: String) -> Self {
        IssuedCard {
            serial: c.card_serial,
            patient_id: holder,
            name,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            kid_9e: hex::encode(qr::kid_for(&c.key_9e)),
            kid_9c: hex::encode(qr::kid_for(&c.key_9c)),
        }
    }
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

/// The clinic's card-side state in a data directory. The database is opened on first use and
/// the connection kept (shared by clones, behind a mutex, so `&self` methods can be called from
/// the closures the card flows take); every change is its own transaction.
#[derive(Clone)]
pub struct ClinicState {
    dir: PathBuf,
    /// The database key; `None`: derived from the keystore in `dir` when needed.
    key: Option<Zeroizing<[u8; 32]>>,
    actor: String,
    conn: Arc<Mutex<Option<ClinicDb>>>,
    backend: Arc<Mutex<Backend>>,
}

/// The former name, from when this state lived in JSON files.
pub type ClinicFiles = ClinicState;

impl std::fmt::Debug for ClinicState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicState").field("dir", &self.dir).field("key", &"<redacted>").field("actor", &self.actor).finish()
    }
}

impl ClinicState {
    /// The state of the clinic whose keystore is `ks` (the database is opened on first use).
    #[must_use]
    pub fn new(ks: &Keystore) -> Self {
        ClinicState {
            dir: ks.data_dir().to_path_buf(),
            key: Some(ks.database_key()),
            actor: DEFAULT_ACTOR.to_owned(),
            conn: Arc::default(),
            backend: Arc::new(Mutex::new(Backend::Unknown)),
        }
    }

    /// [`ClinicState::new`], opening the database now: a command that must leave an audit trail
    /// calls this before touching a card, so it fails with a plain error instead of acting
    /// unaudited.
    pub fn open(ks: &Keystore) -> Result<Self, ClinicError> {
        let s = Self::new(ks);
        s.ensure_open()?;
        Ok(s)
    }

    /// Opens the database now if it is not open: the card flows call this before their first
    /// APDU, so a clinic that could not audit refuses before acting.
    pub fn ensure_open(&self) -> Result<(), ClinicError> {
        self.with_db(|_| Ok(()))
    }

    /// The state in `dir` (for tests and tools): the key comes from the keystore there.
    #[must_use]
    pub fn at(dir: &Path) -> Self {
        ClinicState {
            dir: dir.to_path_buf(),
            key: None,
            actor: DEFAULT_ACTOR.to_owned(),
            conn: Arc::default(),
            backend: Arc::new(Mutex::new(Backend::Unknown)),
        }
    }

    /// Names `actor` (device, clinician, `cli:<user>`) in the audit entries written through this.
    #[must_use]
    pub fn with_actor(mut self, actor: &str) -> Self {
        actor.clone_into(&mut self.actor);
        self
    }

    /// The actor named in audit entries.
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Runs `f` on the kept connection, opening the database first if needed.
    fn with_db<R>(&self, f: impl FnOnce(&mut ClinicDb) -> Result<R, ClinicError>) -> Result<R, ClinicError> {
        // A panic elsewhere while holding the lock leaves at worst a rolled-back transaction.
        let mut guard = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let db = match guard.take() {
            Some(db) => guard.insert(db),
            None => guard.insert(self.db()?),
        };
        f(db)
    }

    /// Opens a new connection to the clinic database (tools and tests; the state's own
    /// operations share one kept connection).
    pub fn db(&self) -> Result<ClinicDb, ClinicError> {
        let path = self.dir.join(crate::db::DB_FILE);
        match &self.key {
            Some(key) => Ok(ClinicDb::open(&path, key)?),
            None => {
                let ks = Keystore::open(&self.dir)?;
                Ok(ClinicDb::open(&path, &ks.database_key())?)
            }
        }
    }

    /// Runs `f` on the shared backend in clinic mode; `Ok(None)` in single-device mode.
    fn shared<R>(&self, f: impl FnOnce(&mut Shared) -> Result<R, ClinicError>) -> Result<Option<R>, ClinicError> {
        let mut guard = self.backend.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*guard, Backend::Unknown) {
            *guard = match Deployment::load(&self.dir)? {
                None => Backend::Local,
                Some(deployment) => Backend::Clinic(Box::new(Shared { dir: self.dir.clone(), deployment, pg: None })),
            };
        }
        match &mut *guard {
            Backend::Clinic(s) => f(s).map(Some),
            Backend::Local | Backend::Unknown => Ok(None),
        }
    }

    /// The deployment, in clinic mode (`None`: single-device mode).
    pub fn deployment(&self) -> Result<Option<Deployment>, ClinicError> {
        self.shared(|s| Ok(s.deployment.clone()))
    }

    /// Whether this data directory is a device of a clinic (`device.json`).
    pub fn is_clinic(&self) -> Result<bool, ClinicError> {
        Ok(self.shared(|_| Ok(()))?.is_some())
    }

    /// Runs `f` on the clinic database (clinic mode only; `Ok(None)` in single-device mode).
    pub fn with_clinic_db<R>(&self, f: impl FnOnce(&mut PgClinic) -> Result<R, PgError>) -> Result<Option<R>, ClinicError> {
        self.shared(|s| s.with_pg(f))
    }

    /// All issued cards.
    pub fn cards(&self) -> Result<Vec<IssuedCard>, ClinicError> {
        if let Some(v) = self.with_clinic_db(PgClinic::cards)? {
            return Ok(v);
        }
        self.with_db(|db| Ok(db.issued_cards()?))
    }

    /// The issued card with `serial`, if any.
    pub fn card(&self, serial: u32) -> Result<Option<IssuedCard>, ClinicError> {
        if let Some(v) = self.with_clinic_db(|pg| pg.card(serial))? {
            return Ok(v);
        }
        self.with_db(|db| Ok(db.issued_card(serial)?))
    }

    /// Records an issuance (replacing an earlier one of the same serial) and its audit entry.
    pub fn record_issued(&self, card: &IssuedCard, credential: &[u8], now: i64) -> Result<(), ClinicError> {
        let actor = self.actor.clone();
        if self.with_clinic_db(|pg| pg.record_card_issued(card, credential, &actor, now))?.is_some() {
            return Ok(());
        }
        self.with_db(|db| Ok(db.record_card_issued(card, credential, &self.actor, now)?))?;
        Ok(())
    }

    /// All revocations.
    pub fn revocations(&self) -> Result<Vec<Revocation>, ClinicError> {
        if let Some(v) = self.with_clinic_db(PgClinic::revocations)? {
            return Ok(v);
        }
        self.with_db(|db| Ok(db.card_revocations()?))
    }

    /// Clinic mode: refreshes this device's copy of the revocation and trust lists from the
    /// clinic database (one transaction on each side's view: the copy is replaced whole) and
    /// returns it; `Ok(None)` in single-device mode. Unreachable: the error, the old copy kept.
    pub fn refresh_local_copies(&self, now: i64) -> Result<Option<LocalCopies>, ClinicError> {
        let Some((revocations, trust_files)) = self.with_clinic_db(|pg| Ok((pg.revocations()?, pg.trust_files()?)))? else {
            return Ok(None);
        };
        self.with_db(|db| Ok(db.replace_copies(&revocations, &trust_files, now)?))?;
        Ok(Some(LocalCopies { revocations, trust_files, refreshed_at: Some(now) }))
    }

    /// This device's copy of the clinic's revocation and trust lists, as last refreshed.
    pub fn local_copies(&self) -> Result<LocalCopies, ClinicError> {
        self.with_db(|db| Ok(db.copies()?))
    }

    /// Whether `serial` is revoked. Clinic mode: asked of the clinic database every time (a
    /// revocation made anywhere counts from the next check on); unreachable is
    /// [`ClinicError::RevocationUnknown`], never "not revoked".
    pub fn is_revoked(&self, serial: u32) -> Result<bool, ClinicError> {
        match self.with_clinic_db(|pg| pg.revocation(serial)) {
            Ok(Some(r)) => return Ok(r.is_some()),
            Ok(None) => {}
            Err(ClinicError::Shared(source)) => return Err(ClinicError::RevocationUnknown { serial, source }),
            Err(e) => return Err(e),
        }
        self.with_db(|db| Ok(db.card_revocation(serial)?.is_some()))
    }

    /// [`ClinicState::is_revoked`], falling back in clinic mode, when the clinic database does
    /// not answer, to this device's copy of the revocation list: `(revoked, Some(refreshed_at))`
    /// says the answer came from the copy as last refreshed then (`Some(0)`: never refreshed, an
    /// empty copy). For a staff sign-in at a bedside, which must still open its cached records
    /// while the database is down (docs/staff.md, "Sessions"); the kiosk keeps refusing.
    pub fn is_revoked_or_copy(&self, serial: u32) -> Result<(bool, Option<i64>), ClinicError> {
        match self.is_revoked(serial) {
            Ok(r) => Ok((r, None)),
            Err(ClinicError::RevocationUnknown { .. }) => {
                let copy = self.local_copies()?;
                Ok((copy.revocations.iter().any(|r| r.serial == serial), Some(copy.refreshed_at.unwrap_or(0))))
            }
            Err(e) => Err(e),
        }
    }

    /// Verifies the whole audit log: the clinic's in clinic mode, else this device's (every row,
    /// every checkpoint, every staff signature; `docs/audit-log.md`). `Ok(Err(finding))` names
    /// the first problem.
    pub fn verify_audit(
        &self,
        issuer: &p256::ecdsa::VerifyingKey,
    ) -> Result<Result<crate::audit::VerifyReport, crate::audit::Finding>, ClinicError> {
        let shared = self.with_clinic_db(|pg| {
            let cps = pg.audit_checkpoints()?;
            let mut failed = None;
            let r = crate::audit::verify_rows(cps, issuer, |sink| {
                if let Err(e) = pg.audit_rows(sink) {
                    failed = Some(e);
                }
                Ok(())
            });
            Ok((r, failed))
        })?;
        match shared {
            Some((_, Some(e))) => Err(ClinicError::Shared(e)),
            Some((r, None)) => Ok(r?),
            None => self.with_db(|db| Ok(crate::audit::verify(db, issuer)?)),
        }
    }

    /// The audit entries at or after `since`: the clinic log in clinic mode, else this device's.
    pub fn audit_entries(&self, since: Option<i64>) -> Result<Vec<crate::audit::Entry>, ClinicError> {
        if let Some(e) = self.with_clinic_db(|pg| pg.audit_entries(since))? {
            return Ok(e);
        }
        self.with_db(|db| Ok(crate::audit::entries(db, 0, since)?))
    }

    /// Whether this clinic requires a staff sign-in to read records: it does from its first staff
    /// card on (`docs/staff.md`, "Sessions"). Clinic mode: asked of the clinic database, and
    /// noted in this device's database once true, so a device that cannot reach the clinic
    /// database keeps requiring sign-ins.
    pub fn staff_required(&self) -> Result<bool, ClinicError> {
        match self.with_clinic_db(PgClinic::has_staff_cards) {
            Ok(Some(true)) => {
                self.with_db(|db| {
                    if !db.staff_required_noted()? {
                        db.note_staff_required(crate::clock::now().unwrap_or(0))?;
                    }
                    Ok(())
                })?;
                Ok(true)
            }
            Ok(Some(false)) => self.with_db(|db| Ok(db.staff_required_noted()?)),
            Ok(None) => self.with_db(|db| Ok(db.has_staff_cards()?)),
            Err(e) if e.is_clinic_db_unavailable() => self.with_db(|db| Ok(db.staff_required_noted()?)),
            Err(e) => Err(e),
        }
    }

    /// Revokes `serial` (idempotent: a second revocation keeps the first), audited.
    pub fn revoke(&self, serial: u32, now: i64, reason: &str) -> Result<Revocation, ClinicError> {
        let actor = self.actor.clone();
        if let Some(r) = self.with_clinic_db(|pg| pg.revoke(serial, now, reason, &actor))? {
            return Ok(r);
        }
        self.with_db(|db| Ok(db.revoke_card(serial, now, reason, &self.actor)?))
    }

    /// The highest consent version seen for `patient_id`.
    pub fn highest_consent_version(&self, patient_id: &str) -> Result<Option<u64>, ClinicError> {
        if let Some(v) = self.with_clinic_db(|pg| pg.highest_consent_version(patient_id))? {
            return Ok(v);
        }
        self.with_db(|db| Ok(db.highest_consent_version(patient_id)?))
    }

    /// Accepts consent token `c` if its version is not older than the highest seen (an equal
    /// version is the same token read again), remembers it and appends `event` (kind, outcome)
    /// in the same transaction; an older version is audited as refused and is
    /// [`ClinicError::ConsentReplay`]. Returns the highest version seen before. Clinic mode:
    /// the highest version seen at any device of the clinic.
    pub fn note_consent(&self, c: &ConsentVersion<'_>, event: (EventKind, Outcome), now: i64) -> Result<Option<u64>, ClinicError> {
        let actor = self.actor.clone();
        let note = match self.with_clinic_db(|pg| pg.note_consent(c, event, &actor, now))? {
            Some(n) => n,
            None => self.with_db(|db| Ok(db.note_consent_version(c, event, &self.actor, now)?))?,
        };
        match note {
            ConsentNote::Accepted { highest_before } => Ok(highest_before),
            ConsentNote::Refused { highest } => {
                Err(ClinicError::ConsentReplay { patient_id: c.patient_id.to_owned(), got: c.version, highest })
            }
            ConsentNote::Conflict { version } => Err(ClinicError::ConsentConflict { patient_id: c.patient_id.to_owned(), version }),
        }
    }

    /// The records index, optionally of one patient, oldest first (clinic mode: the clinic's).
    pub fn records(&self, patient_id: Option<&str>) -> Result<Vec<RecordRow>, ClinicError> {
        if let Some(v) = self.with_clinic_db(|pg| pg.records(patient_id))? {
            return Ok(v);
        }
        self.with_db(|db| Ok(db.records(patient_id)?))
    }

    /// One record's index row.
    pub fn record(&self, record_id: &str) -> Result<RecordRow, ClinicError> {
        if let Some(v) = self.with_clinic_db(|pg| pg.record(record_id))? {
            return v.ok_or_else(|| ClinicError::Db(DbError::NotFound { what: "record", id: record_id.to_owned() }));
        }
        self.with_db(|db| Ok(db.record(record_id)?))
    }

    /// Clinic mode: adds a record's index row (key already wrapped) with its `record.added`
    /// entry, in one transaction of the clinic database. `Ok(false)`: single-device mode,
    /// nothing done (the caller writes the local index).
    pub fn insert_record_shared(
        &self,
        meta: &RecordMeta,
        locator: &Locator,
        size: u64,
        wrapped_key: &[u8],
        event: &Event,
    ) -> Result<bool, ClinicError> {
        Ok(self.with_clinic_db(|pg| pg.insert_record(meta, locator, size, wrapped_key, event, event.time))?.is_some())
    }

    /// Appends audit events in one transaction (one database open for all). Clinic mode: to
    /// the clinic log, after this device's queued entries; when the clinic database is
    /// unreachable they are queued on this device (durably, in its database) and sent, each
    /// exactly once, by the next append or `medcard device sync`.
    pub fn audit(&self, events: &[Event]) -> Result<(), ClinicError> {
        if events.is_empty() {
            return Ok(());
        }
        let queued = self.shared(|s| {
            let now = events.iter().map(|e| e.time).max().unwrap_or(0);
            let with_ids: Vec<(String, Event)> = events.iter().map(|e| (pg::new_entry_id(), e.clone())).collect();
            let sent = self.flush_queue_into(s, now).and_then(|_| s.with_pg(|pg| pg.append_audit(&with_ids, now)));
            match sent {
                Ok(_) => Ok(()),
                Err(e) if e.is_clinic_db_unavailable() => self.with_db(|db| Ok(crate::audit::queue::enqueue(db, &with_ids, now)?)),
                Err(e) => Err(e),
            }
        })?;
        if queued.is_some() {
            return Ok(());
        }
        self.with_db(|db| {
            let path = db.path().to_path_buf();
            let err = |source| ClinicError::Db(DbError::Sqlite { path: path.clone(), operation: "append audit entries", source });
            let tx = db.conn_mut().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
            for e in events {
                crate::audit::append_in(&tx, &path, e)?;
            }
            tx.commit().map_err(err)?;
            Ok(())
        })
    }

    /// Sends this device's queued audit entries to the clinic log (clinic mode; each exactly
    /// once: the clinic log skips an entry id it has). Returns how many were queued before.
    pub fn flush_audit_queue(&self, now: i64) -> Result<usize, ClinicError> {
        Ok(self.shared(|s| self.flush_queue_into(s, now))?.unwrap_or(0))
    }

    /// The number of entries queued on this device.
    pub fn queued_audit_entries(&self) -> Result<u64, ClinicError> {
        self.with_db(|db| Ok(crate::audit::queue::len(db)?))
    }

    fn flush_queue_into(&self, s: &mut Shared, now: i64) -> Result<usize, ClinicError> {
        let queued = self.with_db(|db| {
            crate::audit::queue::queued(db).map_err(|e| match e {
                crate::audit::queue::QueueError::Db(d) => ClinicError::Db(d),
                other => ClinicError::Queue(other.to_string()),
            })
        })?;
        if queued.is_empty() {
            return Ok(0);
        }
        s.with_pg(|pg| pg.append_audit(&queued, now))?;
        // Sent (or already there): forget them. A crash before this line sends them again,
        // and the clinic log skips them by entry id.
        let ids: Vec<&str> = queued.iter().map(|(id, _)| id.as_str()).collect();
        self.with_db(|db| Ok(crate::audit::queue::forget(db, &ids)?))?;
        Ok(queued.len())
    }

    /// An event by this state's actor.
    #[must_use]
    pub fn event(&self, now: i64, kind: EventKind, subject: &str, outcome: Outcome, detail: String) -> Event {
        Event { time: now, kind, actor: self.actor.clone(), subject: subject.to_owned(), outcome, detail }
    }

    /// The directory of other clinics' trust files.
    #[must_use]
    pub fn trust_dir(&self) -> PathBuf {
        self.dir.join(TRUST_DIR)
    }

    /// The other clinics' trust files: (name, bytes), sorted by name. Refuses (naming the
    /// `chmod` that fixes it) a `trust/` directory open to group or others (it must be 0700),
    /// such a file (0600), and anything in it that is not a regular file (a symlink, say).
    ///
    /// Clinic mode: the clinic's trust list from the clinic database; when it does not answer,
    /// this device's copy ([`ClinicState::local_copies`]).
    pub fn trust_files(&self) -> Result<Vec<(String, Vec<u8>)>, ClinicError> {
        match self.with_clinic_db(PgClinic::trust_files) {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) if e.is_clinic_db_unavailable() => return Ok(self.local_copies()?.trust_files),
            Err(e) => return Err(e),
        }
        self.local_trust_files()
    }

    /// The trust files in `<data>/trust/` (single-device mode; in clinic mode, what the admin PC
    /// had before it joined, sent to the clinic database by `device join`).
    pub fn local_trust_files(&self) -> Result<Vec<(String, Vec<u8>)>, ClinicError> {
        let dir = self.trust_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        fsutil::check_private(&dir, 0o700)?;
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|source| FsError::Io { operation: "list", path: dir.clone(), source })?;
        for e in entries {
            let e = e.map_err(|source| FsError::Io { operation: "list", path: dir.clone(), source })?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|source| FsError::Io {
                operation: "read metadata of",
                path: path.clone(),
                source,
            })?;
            if !meta.file_type().is_file() {
                return Err(ClinicError::TrustNotAFile { path });
            }
            fsutil::check_private(&path, 0o600)?;
            out.push((name, fsutil::read_limited(&path, 1024 * 1024)?));
        }
        out.sort();
        Ok(out)
    }

    /// The trust file `name`, if there is one.
    pub fn trust_file(&self, name: &str) -> Result<Option<Vec<u8>>, ClinicError> {
        check_trust_name(name)?;
        Ok(self.trust_files()?.into_iter().find(|(n, _)| n == name).map(|(_, b)| b))
    }

    /// Stores a trust file under `name` (refuses to replace one). Clinic mode: in the clinic
    /// database, for every device.
    pub fn add_trust_file(&self, name: &str, bytes: &[u8]) -> Result<(), ClinicError> {
        check_trust_name(name)?;
        if bytes.len() > pg::MAX_TRUST_FILE {
            return Err(ClinicError::TrustTooLarge { name: name.to_owned(), size: bytes.len() });
        }
        let now = crate::clock::now().unwrap_or_else(|_| crate::clock::system_now());
        match self.with_clinic_db(|pg| pg.add_trust_file(name, bytes, now))? {
            Some(true) => return Ok(()),
            Some(false) => return Err(ClinicError::TrustExists { name: name.to_owned() }),
            None => {}
        }
        let dir = self.trust_dir();
        fsutil::create_dir(&dir, 0o700)?;
        fsutil::check_private(&dir, 0o700)?;
        let p = dir.join(name);
        if p.exists() {
            return Err(ClinicError::TrustExists { name: name.to_owned() });
        }
        fsutil::write_atomic(&p, bytes)?;
        Ok(())
    }

    /// Removes the trust file `name`.
    pub fn remove_trust_file(&self, name: &str) -> Result<(), ClinicError> {
        check_trust_name(name)?;
        match self.with_clinic_db(|pg| pg.remove_trust_file(name))? {
            Some(true) => return Ok(()),
            Some(false) => return Err(ClinicError::TrustMissing { name: name.to_owned() }),
            None => {}
        }
        let p = self.trust_dir().join(name);
        if !p.exists() {
            return Err(ClinicError::TrustMissing { name: name.to_owned() });
        }
        std::fs::remove_file(&p).map_err(|source| FsError::Io { operation: "remove", path: p, source })?;
        fsutil::sync_dir(&self.trust_dir())?;
        Ok(())
    }
}

/// Whether `name` is a trust file name: 1-64 of `A-Z a-z 0-9 . _ -`, not starting with a dot
/// (so never a path).
#[must_use]
pub fn is_trust_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && !name.starts_with('.') && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn check_trust_name(name: &str) -> Result<(), ClinicError> {
    if is_trust_name(name) { Ok(()) } else { Err(ClinicError::TrustName { name: name.to_owned() }) }
}

/// The trust list: this clinic's issuer key plus every trust file in `<data>/trust/`.
pub fn trust_list(ks: &Keystore) -> Result<qr::TrustList, ClinicError> {
    let mut t = qr::TrustList::new();
    t.add_file(ks.ca_certificate_der(), "this clinic").map_err(ClinicError::OwnCertificate)?;
    for (name, bytes) in ClinicFiles::new(ks).trust_files()? {
        t.add_file(&bytes, &name).map_err(|source| ClinicError::TrustFile { name, source })?;
    }
    Ok(t)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn clinic() -> Result<(tempfile::TempDir, ClinicState), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ks = Keystore::init(dir.path(), "clinic-t", 1_700_000_000)?;
        Ok((dir, ClinicState::new(&ks).with_actor("test")))
    }

    fn token<'a>(patient: &'a str, version: u64, scope: &'a [crate::category::Category]) -> ConsentVersion<'a> {
        ConsentVersion { patient_id: patient, version, token: b"token", scope, iat: 1, exp: 2 }
    }

    type Kinds = Vec<(String, String, String)>;

    fn kinds(state: &ClinicState) -> Result<Kinds, Box<dyn std::error::Error>> {
        let db = state.db()?;
        Ok(crate::audit::entries(&db, 0, None)?.into_iter().map(|e| (e.kind, e.subject, e.outcome)).collect())
    }

    #[test]
    fn older_consent_version_is_refused_and_audited_and_equal_is_accepted() -> R {
        let (_d, c) = clinic()?;
        let scope = [crate::category::Category::Labs];
        c.note_consent(&token("P-1", 3, &scope), (EventKind::ConsentSet, Outcome::Ok), 10)?;
        c.note_consent(&token("P-1", 3, &scope), (EventKind::ConsentSet, Outcome::Ok), 11)?;
        let err = c.note_consent(&token("P-1", 2, &scope), (EventKind::ConsentSet, Outcome::Ok), 12);
        assert!(matches!(err, Err(ClinicError::ConsentReplay { got: 2, highest: 3, .. })), "{err:?}");
        c.note_consent(&token("P-2", 1, &scope), (EventKind::ConsentSet, Outcome::Ok), 13)?;
        assert_eq!(c.highest_consent_version("P-1")?, Some(3));
        let k = kinds(&c)?;
        let k: Vec<_> = k.iter().map(|(k, s, o)| (k.as_str(), s.as_str(), o.as_str())).collect();
        // The equal version changed nothing, so it left no entry.
        assert_eq!(k, [("consent.set", "P-1", "ok"), ("consent.refused", "P-1", "older-version"), ("consent.set", "P-2", "ok")]);
        Ok(())
    }

    #[test]
    fn equal_consent_version_with_another_token_is_refused_and_audited() -> R {
        let (_d, c) = clinic()?;
        let scope = [crate::category::Category::Labs];
        c.note_consent(&token("P-1", 3, &scope), (EventKind::ConsentSet, Outcome::Ok), 10)?;
        let forged = ConsentVersion { token: b"another token", ..token("P-1", 3, &scope) };
        let err = c.note_consent(&forged, (EventKind::ConsentSet, Outcome::Ok), 11);
        assert!(matches!(err, Err(ClinicError::ConsentConflict { version: 3, .. })), "{err:?}");
        let k = kinds(&c)?;
        assert_eq!(k.last().map(|(k, s, o)| (k.as_str(), s.as_str(), o.as_str())), Some(("consent.refused", "P-1", "conflicting-token")));
        Ok(())
    }

    #[test]
    fn revoking_consent_marks_the_earlier_versions_revoked() -> R {
        let (_d, c) = clinic()?;
        c.note_consent(&token("P-1", 1, &[crate::category::Category::Labs]), (EventKind::ConsentSet, Outcome::Ok), 10)?;
        c.note_consent(&token("P-1", 2, &[]), (EventKind::ConsentRevoked, Outcome::Ok), 20)?;
        let db = c.db()?;
        let revoked: Vec<(i64, Option<i64>)> = db
            .conn()
            .prepare("SELECT version, revoked_at FROM consent_versions ORDER BY version")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        assert_eq!(revoked, vec![(1, Some(20)), (2, None)]);
        Ok(())
    }

    #[test]
    fn revocation_is_remembered_once_and_each_attempt_audited() -> R {
        let (_d, c) = clinic()?;
        assert!(!c.is_revoked(7)?);
        let first = c.revoke(7, 100, "lost")?;
        let again = c.revoke(7, 200, "again")?;
        assert_eq!(first, again);
        assert!(c.is_revoked(7)?);
        assert_eq!(c.revocations()?.len(), 1);
        let k = kinds(&c)?;
        assert_eq!(k[0], ("card.revoked".into(), "7".into(), "ok".into()));
        assert_eq!(k[1], ("card.revoked".into(), "7".into(), "already-revoked".into()));
        Ok(())
    }

    #[test]
    fn reissue_replaces_the_card_record_and_keeps_its_revocation() -> R {
        let (_d, c) = clinic()?;
        let card = |name: &str| IssuedCard {
            serial: 5,
            patient_id: "P".into(),
            name: name.into(),
            issued_at: 1,
            expires_at: 2,
            kid_9e: "e9".into(),
            kid_9c: "c9".into(),
        };
        c.record_issued(&card("a"), b"cred-a", 1)?;
        c.revoke(5, 2, "lost")?;
        c.record_issued(&card("b"), b"cred-b", 3)?;
        assert_eq!(c.cards()?, vec![card("b")]);
        assert!(c.is_revoked(5)?, "re-issuing does not lift a revocation");
        let issued: Vec<_> = kinds(&c)?.into_iter().filter(|(k, _, _)| k == "card.issued").collect();
        assert_eq!(issued.len(), 2);
        Ok(())
    }

    #[test]
    fn state_with_a_foreign_database_is_a_plain_error() -> R {
        let (d, _) = clinic()?;
        let other = tempfile::tempdir()?;
        let ks_b = Keystore::init(other.path(), "clinic-b", 1_700_000_000)?;
        // Clinic B's database key on clinic A's file.
        ClinicState::at(d.path()).db()?;
        std::fs::copy(d.path().join(crate::db::DB_FILE), other.path().join(crate::db::DB_FILE))?;
        let err = ClinicState::open(&ks_b);
        assert!(matches!(err, Err(ClinicError::Db(DbError::WrongKey { .. }))), "{err:?}");
        Ok(())
    }

    #[test]
    fn trust_names_with_path_separators_are_refused() {
        assert!(check_trust_name("../x").is_err());
        assert!(check_trust_name(".hidden").is_err());
        assert!(check_trust_name("clinic-b.pem").is_ok());
    }
}
