//! The bedside device (`docs/checkin-scan.md`): a clinic data directory, its database and a
//! record store, scanning QR codes and opening cached records **with their audit entries**. The
//! `medcard scan` command and the desktop app both call this, so neither adds security logic of
//! its own; they only choose what to show.
//!
//! Audit entries (ids and outcomes only, never record contents), written in one transaction per
//! operation:
//!
//! | operation | entries |
//! |---|---|
//! | verified scan | `qr.scanned` subject patient id, outcome `ok`, detail `qr=<id> iss=<issuer> kid=<hex> records=<n>`; then one `record.read` per record, subject its locator, detail `qr=<id> cache=<cache id> patient=<id>` |
//! | refused scan | `qr.refused` subject `-`, outcome [`ScanError::outcome`], detail the message (at most 400 characters, then `...`) |
//! | cached record shown | `record.read` subject its locator, outcome `ok`, detail `cached=<id> patient=<id>` |
//! | cached record gone | `record.read` subject the cache id, outcome `cache-refused` |
//!
//! A failure to write the audit log is [`BedsideError::Audit`]: the caller must not show the
//! record (fail closed).

use std::path::Path;

use crate::audit::{AuditError, Event, EventKind, Outcome};
use crate::clinic_state::{ClinicError, ClinicState};
use crate::db::{CacheRow, ClinicDb, DbError};
use crate::keystore::{self, Keystore, KeystoreError};
use crate::scan_flow::{self, ScanError, Scanned};
use crate::staff::Action;
use crate::staff_card::EntrySigner;
use crate::store::{AnyStore, DirStore, StoreError};

/// The records directory inside the data directory (the default store).
pub const RECORDS_DIR: &str = crate::deployment::RECORDS_DIR;

/// The longest refusal message kept in a `qr.refused` entry, in characters.
pub const MAX_REFUSAL_DETAIL: usize = 400;

/// Why a bedside operation did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BedsideError {
    /// The code was refused; the refusal is in the audit log (`qr.refused`). Show
    /// [`ScanError::verdict`], the message and [`ScanError::advice`].
    #[error(transparent)]
    Refused(ScanError),
    /// The audit log could not be written: nothing may be shown (fail closed).
    #[error("could not write the audit log: {0}")]
    Audit(#[from] AuditError),
    /// The keystore (data directory missing, not initialised, permissions, ...).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The clinic database could not be opened or read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The record store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The trust list (this clinic's CA, or a trust file in `<data>/trust/`) is unusable.
    #[error(transparent)]
    Trust(crate::clinic_state::ClinicError),
    /// The clinic deployment (`device.json`) or the clinic log (clinic mode).
    #[error(transparent)]
    Clinic(ClinicError),
    /// This clinic requires a staff sign-in to read records, and there was none (audited).
    #[error(
        "this clinic requires a clinician's staff card to read records: insert your staff card and sign in with its PIN (in the command line: --staff-reader READER), then scan again"
    )]
    StaffSessionRequired,
    /// The signed-in staff member's role may not read records (audited).
    #[error(transparent)]
    NotPermitted(crate::Error),
    /// The staff card could not sign the access entry (removed, or it answered garbage): the
    /// record is not shown. A scanned code's records stay in this device's cache: sign in again
    /// and open them with `--cached`.
    #[error(
        "the staff card could not sign the access (was it removed?): nothing is shown; sign in again and open the record from the cache: {0}"
    )]
    Signing(crate::Error),
}

/// Who reads at the bedside.
pub enum Reader<'a> {
    /// The device or its operating-system user (`cli:<user>`, `desktop:<user>`): allowed only
    /// while the clinic has no staff cards.
    Device(&'a str),
    /// A signed-in member of staff, whose card signs each entry.
    Staff(&'a mut dyn EntrySigner),
}

impl From<ClinicError> for BedsideError {
    fn from(e: ClinicError) -> Self {
        match e {
            ClinicError::Audit(a) => BedsideError::Audit(a),
            ClinicError::Db(d) => BedsideError::Audit(AuditError::Db(d)),
            other => BedsideError::Clinic(other),
        }
    }
}

/// An open bedside device: keystore, clinic database, record store.
#[derive(Debug)]
pub struct Bedside {
    /// The clinic keystore (trust list, database key).
    pub ks: Keystore,
    /// The clinic database (cache, one-time ids, audit log).
    pub db: ClinicDb,
    /// Where sealed records are fetched from.
    pub store: AnyStore,
    /// The clinic state: in clinic mode (`device.json`), the clinic database that spends
    /// one-time codes for every device and holds the clinic-wide audit log.
    pub state: ClinicState,
    /// The trust list, loaded once and reloaded only when `<data>/trust/` changes (its
    /// modification time: every add, remove or replace renames a file in it), so a scan does
    /// not re-parse every trust file (4.95 s per scan with 40k entries before).
    trust: Option<(Option<std::time::SystemTime>, qr::TrustList)>,
}

impl Bedside {
    /// Opens the data directory `data_dir` (default as [`keystore::data_dir`]: `$MEDCARD_HOME`,
    /// else `$XDG_DATA_HOME/medcard`, else `~/.local/share/medcard`), its database, and the
    /// record store `store_dir` (default: the clinic's store in `device.json`, else
    /// `<data>/records`).
    pub fn open(data_dir: Option<&Path>, store_dir: Option<&Path>) -> Result<Bedside, BedsideError> {
        let dir = keystore::data_dir(data_dir)?;
        let ks = Keystore::open(&dir)?;
        let db = ClinicDb::open_clinic(&ks)?;
        let state = ClinicState::new(&ks);
        let store = match store_dir {
            Some(s) => AnyStore::Dir(DirStore::open(s)?),
            None => {
                let d = state.deployment().map_err(BedsideError::Clinic)?;
                crate::deployment::open_store(&dir, d.as_ref()).map_err(|e| BedsideError::Clinic(ClinicError::Deployment(e)))?
            }
        };
        Ok(Bedside { ks, db, store, state, trust: None })
    }

    /// Scans QR `text` at `now` ([`scan_flow::scan`] against this device's trust list; one-time
    /// use unless `reusable`) and audits the outcome as `actor`. `Ok`: verified, the records are
    /// cached and may be shown. [`BedsideError::Refused`]: refused and audited. Once the clinic
    /// has staff cards this is refused ([`BedsideError::StaffSessionRequired`]): use
    /// [`Bedside::scan_as`] with a staff session.
    pub fn scan_text(&mut self, text: &str, now: i64, reusable: bool, actor: &str) -> Result<Scanned, BedsideError> {
        self.scan_as(text, now, reusable, Reader::Device(actor))
    }

    /// Checks that `who` may read records here, before anything is spent; audits a refusal as
    /// `kind` (`qr.refused` for a scan, `record.read` for the cache).
    fn check_reader(&self, who: &Reader<'_>, now: i64, kind: EventKind) -> Result<(), BedsideError> {
        let refusal = match who {
            Reader::Device(actor) => {
                if !self.state.staff_required()? {
                    return Ok(());
                }
                (event(now, actor, kind, "-", Outcome::NoStaffSession, "no staff sign-in".into()), BedsideError::StaffSessionRequired)
            }
            Reader::Staff(s) => {
                let session = s.session();
                if session.permits(Action::ScanAndRead) {
                    return Ok(());
                }
                let e = crate::Error::NotPermitted {
                    staff_id: session.staff_id().to_owned(),
                    role: session.role(),
                    action: Action::ScanAndRead,
                };
                let detail = format!("staff={} role={}", session.staff_id(), session.role());
                (event(now, &session.actor(), kind, "-", Outcome::NotPermitted, detail), BedsideError::NotPermitted(e))
            }
        };
        self.state.audit(std::slice::from_ref(&refusal.0))?;
        Err(refusal.1)
    }

    /// Writes `events`, each signed by the staff card when a member of staff reads.
    fn audit_as(&self, who: &mut Reader<'_>, mut events: Vec<Event>) -> Result<(), BedsideError> {
        if let Reader::Staff(signer) = who {
            for ev in &mut events {
                signer.sign(ev).map_err(BedsideError::Signing)?;
            }
        }
        self.state.audit(&events)?;
        Ok(())
    }

    /// [`Bedside::scan_text`] as `who`: a member of staff signs every entry with their card.
    pub fn scan_as(&mut self, text: &str, now: i64, reusable: bool, mut who: Reader<'_>) -> Result<Scanned, BedsideError> {
        self.check_reader(&who, now, EventKind::QrRefused)?;
        let actor = match &who {
            Reader::Device(a) => (*a).to_owned(),
            Reader::Staff(s) => s.session().actor(),
        };
        let stamp = std::fs::metadata(self.ks.data_dir().join(crate::clinic_state::TRUST_DIR)).and_then(|m| m.modified()).ok();
        let trust = match self.trust.take() {
            Some((at, list)) if at == stamp && stamp.is_some() => list,
            _ => crate::clinic_state::trust_list(&self.ks).map_err(BedsideError::Trust)?,
        };
        let trust = &self.trust.insert((stamp, trust)).1;
        match scan_flow::scan_with(&self.db, &self.store, trust, text, now, reusable, Some(&self.state)) {
            Ok(s) => {
                let c = s.verified.claims();
                let qr_id = hex::encode(&c.cti);
                let kid = hex::encode(&s.verified.by().kid);
                let mut events = Vec::with_capacity(1 + s.rows.len());
                events.push(event(
                    now,
                    &actor,
                    EventKind::QrScanned,
                    &c.pointer.patient_id,
                    Outcome::Ok,
                    format!("qr={qr_id} iss={} kid={kid} records={}", c.iss, s.rows.len()),
                ));
                for r in &s.rows {
                    events.push(event(
                        now,
                        &actor,
                        EventKind::RecordRead,
                        &r.locator,
                        Outcome::Ok,
                        format!("qr={qr_id} cache={} patient={}", r.qr_id, r.patient_id),
                    ));
                }
                self.audit_as(&mut who, events)?;
                Ok(s)
            }
            Err(e) => {
                let ev = event(now, &actor, EventKind::QrRefused, "-", e.outcome(), refusal_detail(e.to_string()));
                self.audit_as(&mut who, vec![ev])?;
                Err(BedsideError::Refused(e))
            }
        }
    }

    /// The cached record `id` (a cache id from [`ClinicDb::cache_list`]) if it may still be shown
    /// at `now` ([`scan_flow::open_cached`]: expired codes and revoked consent are purged first),
    /// audited as `actor`: `record.read` `ok`, or `cache-refused` and `Ok(None)` when it is gone.
    pub fn open_cached(&mut self, id: &str, now: i64, actor: &str) -> Result<Option<CacheRow>, BedsideError> {
        self.open_cached_as(id, now, Reader::Device(actor))
    }

    /// [`Bedside::open_cached`] as `who` (a member of staff signs the entry with their card).
    pub fn open_cached_as(&mut self, id: &str, now: i64, mut who: Reader<'_>) -> Result<Option<CacheRow>, BedsideError> {
        self.check_reader(&who, now, EventKind::RecordRead)?;
        let actor = match &who {
            Reader::Device(a) => (*a).to_owned(),
            Reader::Staff(s) => s.session().actor(),
        };
        let row = scan_flow::open_cached(&mut self.db, id, now)?;
        let ev = match &row {
            Some(r) => event(now, &actor, EventKind::RecordRead, &r.locator, Outcome::Ok, format!("cached={id} patient={}", r.patient_id)),
            None => event(now, &actor, EventKind::RecordRead, id, Outcome::CacheRefused, "not in the cache or no longer valid".into()),
        };
        self.audit_as(&mut who, vec![ev])?;
        Ok(row)
    }
}

fn event(time: i64, actor: &str, kind: EventKind, subject: &str, outcome: Outcome, detail: String) -> Event {
    Event { time, kind, actor: actor.to_owned(), subject: subject.to_owned(), outcome, detail }
}

/// The `qr.refused` detail: the refusal's message, cut after [`MAX_REFUSAL_DETAIL`] characters
/// when it is longer than that many bytes.
fn refusal_detail(msg: String) -> String {
    if msg.len() > MAX_REFUSAL_DETAIL { format!("{}...", msg.chars().take(MAX_REFUSAL_DETAIL).collect::<String>()) } else { msg }
}

#[cfg(test)]
#[path = "bedside_tests.rs"]
mod tests;
