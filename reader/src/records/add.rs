//! Adding a record to the clinic (`docs/records.md`): seal the document under a fresh content
//! key, put it in the store, index it with the key wrapped under the clinic's key-wrap key, and
//! audit `record.added` (subject the record id, outcome `ok`, detail
//! `patient=<id> category=<category> locator=<locator>`). The index row and its audit entry
//! commit in one transaction: a record is indexed only if its addition is audited.

use std::path::Path;

use crate::audit::{self, AuditError, Event, EventKind, Outcome};
use crate::category::Category;
use crate::clinic_state::{ClinicError, ClinicState};
use crate::db::{ClinicDb, DbError};
use crate::keystore::{KeyPurpose, Keystore};
use crate::sealed::{self as records, ContentKey, RecordError, RecordMeta};
use crate::store::{Locator, RecordStore, StoreError};

/// What the caller says about a new record (the record id and time are chosen here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// The patient's id.
    pub patient_id: String,
    /// The category (what consent covers).
    pub category: Category,
    /// Media type of the document (see [`media_type_for`]).
    pub media_type: String,
    /// Author (clinician or system id).
    pub author: String,
}

/// A record added to the store and the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedRecord {
    /// The sealed metadata (fresh record id, `created` = the `now` given).
    pub meta: RecordMeta,
    /// Where the sealed record is.
    pub locator: Locator,
    /// Size of the sealed record in bytes.
    pub size: u64,
}

/// Why a record was not added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// Sealing failed (bad metadata, unreadable file, too large, random source).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The store could not keep the sealed record.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index row could not be written (nothing indexed).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit entry could not be written: the index row was rolled back with it.
    #[error("could not write the audit log: {0}")]
    Audit(#[from] AuditError),
    /// Clinic mode: the clinic database (index row and audit entry roll back together).
    #[error(transparent)]
    Clinic(#[from] ClinicError),
    /// This device holds no key-wrap key (a bedside device).
    #[error(transparent)]
    Keystore(#[from] crate::keystore::KeystoreError),
    /// The content key could not be wrapped.
    #[error(transparent)]
    KeyWrap(#[from] crate::sealed::keywrap::KeyWrapError),
}

/// [`add_record_file`] for the clinic of `state`: in clinic mode the index row and its
/// `record.added` entry go to the clinic database (one transaction), so every kiosk sees the
/// record; in single-device mode, to this device's database.
pub fn add_record_file_in(
    ks: &Keystore,
    state: &ClinicState,
    store: &dyn RecordStore,
    new: &NewRecord,
    path: &Path,
    now: i64,
) -> Result<AddedRecord, AddError> {
    if !state.is_clinic()? {
        let db = state.db()?;
        return add_record_file(ks, &db, store, new, path, now, state.actor());
    }
    // The key-wrap key first: a device without it (bedside) stores nothing.
    let wrap = ks.derive_key(KeyPurpose::RecordKeyWrap)?;
    let (meta, key, locator, size) = seal_and_store(store, new, now, |meta, key| records::seal_file(meta, path, key))?;
    let wrapped = crate::sealed::keywrap::wrap(&wrap, &meta.record_id, &key)?;
    let event = record_added(&meta, &locator, now, state.actor());
    state.insert_record_shared(&meta, &locator, size, &wrapped, &event)?;
    Ok(AddedRecord { meta, locator, size })
}

/// Seals the document of `new` under a fresh content key and record id and puts it in the store
/// (the one sealed buffer is dropped once stored). Nothing is indexed yet.
fn seal_and_store(
    store: &dyn RecordStore,
    new: &NewRecord,
    now: i64,
    seal: impl FnOnce(&RecordMeta, &ContentKey) -> Result<Vec<u8>, RecordError>,
) -> Result<(RecordMeta, ContentKey, Locator, u64), AddError> {
    let meta = RecordMeta {
        record_id: records::new_record_id()?,
        patient_id: new.patient_id.clone(),
        category: new.category,
        media_type: new.media_type.clone(),
        created: now,
        author: new.author.clone(),
    };
    let key = records::new_content_key()?;
    let sealed = seal(&meta, &key)?;
    let size = sealed.len() as u64;
    let locator = store.put(&sealed)?;
    drop(sealed);
    Ok((meta, key, locator, size))
}

fn record_added(meta: &RecordMeta, locator: &Locator, now: i64, actor: &str) -> Event {
    Event {
        time: now,
        kind: EventKind::RecordAdded,
        actor: actor.to_owned(),
        subject: meta.record_id.clone(),
        outcome: Outcome::Ok,
        detail: format!("patient={} category={} locator={locator}", meta.patient_id, meta.category),
    }
}

/// The media type for a document file name: `.json` FHIR JSON, `.xml` FHIR XML, `.pdf`, `.txt` /
/// `.text`, `.png`, `.jpg` / `.jpeg` (any case), else `application/octet-stream`.
#[must_use]
pub fn media_type_for(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") => "application/fhir+json",
        Some("pdf") => "application/pdf",
        Some("txt" | "text") => "text/plain",
        Some("xml") => "application/fhir+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Adds `document` as a new record of `new` at `now`, audited as `actor`.
pub fn add_record(
    ks: &Keystore,
    db: &ClinicDb,
    store: &dyn RecordStore,
    new: &NewRecord,
    document: &[u8],
    now: i64,
    actor: &str,
) -> Result<AddedRecord, AddError> {
    add_with(ks, db, store, new, now, actor, |meta, key| records::seal(meta, document, key))
}

/// [`add_record`] for the file at `path`, read straight into the sealed buffer
/// ([`records::seal_file`]: one copy of the document in memory).
pub fn add_record_file(
    ks: &Keystore,
    db: &ClinicDb,
    store: &dyn RecordStore,
    new: &NewRecord,
    path: &Path,
    now: i64,
    actor: &str,
) -> Result<AddedRecord, AddError> {
    add_with(ks, db, store, new, now, actor, |meta, key| records::seal_file(meta, path, key))
}

fn add_with(
    ks: &Keystore,
    db: &ClinicDb,
    store: &dyn RecordStore,
    new: &NewRecord,
    now: i64,
    actor: &str,
    seal: impl FnOnce(&RecordMeta, &ContentKey) -> Result<Vec<u8>, RecordError>,
) -> Result<AddedRecord, AddError> {
    let wrap = ks.derive_key(KeyPurpose::RecordKeyWrap)?;
    let (meta, key, locator, size) = seal_and_store(store, new, now, seal)?;
    let event = record_added(&meta, &locator, now, actor);
    let path = db.path().to_path_buf();
    let sql = |operation: &'static str| {
        let path = path.clone();
        move |source| DbError::Sqlite { path, operation, source }
    };
    // The index row and its audit entry: one immediate transaction on the database's connection.
    let tx =
        rusqlite::Transaction::new_unchecked(db.conn(), rusqlite::TransactionBehavior::Immediate).map_err(sql("begin adding a record"))?;
    db.insert_record(&meta, &locator, size, &key, &wrap)?;
    audit::append_in(&tx, &path, &event)?;
    tx.commit().map_err(sql("commit the added record"))?;
    Ok(AddedRecord { meta, locator, size })
}
