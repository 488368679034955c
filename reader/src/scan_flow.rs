//! Bedside scan (`docs/checkin-scan.md`): QR text → verified pointer (trust list, clock) →
//! one-time id check → record(s) fetched, checked and cached → shown. Every outcome is audited
//! by the caller from [`ScanError::outcome`]; [`crate::bedside::Bedside::scan_text`] does both.
//!
//! Three outcomes, as verifier apps show them: **verified**; **issuer unknown** (well-formed,
//! but no key in the trust list has the code's kid, so its signature cannot be checked: import
//! the issuer's trust list); **invalid** (any other layer, or the record checks, refused it).

use rusqlite::{OptionalExtension, params};

use crate::audit::Outcome;
use crate::category::{self, Category};
use crate::clinic_state::{ClinicError, ClinicState, SpendOutcome};
use crate::db::{CacheRow, ClinicDb, DbError};
use crate::record_index::{self, INDEX_MEDIA_TYPE, IndexEntry, IndexError};
use crate::records;
use crate::records::fetch::{self, FetchError};
use crate::store::{Locator, RecordStore, StoreError};

/// The verdict class of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Signature valid, issuer trusted, claims and time fine, records checked.
    Verified,
    /// No trusted key has the code's kid.
    IssuerUnknown,
    /// Refused.
    Invalid,
}

/// Why a scan was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The QR text was refused by a layer of the verifier.
    #[error("{0}")]
    Qr(qr::VerifyError),
    /// The one-time QR id was used before (`device`: where, in clinic mode).
    #[error("this QR code (id {qr_id}) was already used at {used_at}{}: it is valid once; ask the patient to check in again",
        device.as_deref().map(|d| format!(" on device {d}")).unwrap_or_default())]
    AlreadyUsed { qr_id: String, used_at: String, device: Option<String> },
    /// Clinic mode: the clinic database could not say whether the code was used elsewhere, so
    /// it is not accepted (the code was not spent: scan it again when the database is back).
    #[error("cannot check whether this code was already used: {0}")]
    ClinicDb(Box<ClinicError>),
    /// Fetching or checking the record failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The record index is malformed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A record the index names is another record, or in another category, than the index says.
    #[error("record index: record {locator}: it is {record_id} in {category}, but the index names {index_record_id} in {index_category}")]
    IndexMismatch { locator: String, record_id: String, category: Category, index_record_id: String, index_category: Category },
    /// The bedside database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Text too long to be a QR code.
    #[error("QR text of {got} characters: a QR code holds at most {limit}; refusing it")]
    TooLong { got: usize, limit: usize },
}

/// The longest text a QR code can hold (version 40, alphanumeric, level L).
pub const MAX_QR_TEXT: usize = 4296;

impl ScanError {
    /// Which of the three outcomes this is.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        match self {
            ScanError::Qr(qr::VerifyError::UnknownKid { .. }) => Verdict::IssuerUnknown,
            _ => Verdict::Invalid,
        }
    }

    /// The audit outcome (`qr.refused` entries).
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            ScanError::Qr(e) => match e {
                qr::VerifyError::UnknownKid { .. } => Outcome::IssuerUnknown,
                qr::VerifyError::Time(_) => Outcome::ExpiredOrNotYetValid,
                qr::VerifyError::IssuerMismatch { .. } => Outcome::IssuerMismatch,
                qr::VerifyError::Lifetime { .. } => Outcome::TooLongLived,
                e => Outcome::Invalid(e.layer()),
            },
            ScanError::AlreadyUsed { .. } => Outcome::AlreadyUsed,
            ScanError::Fetch(FetchError::Store(StoreError::DigestMismatch { .. })) => Outcome::StoreIntegrity,
            ScanError::Fetch(FetchError::Record(_)) => Outcome::RecordIntegrity,
            ScanError::Fetch(_) => Outcome::FetchFailed,
            ScanError::Index(_) | ScanError::IndexMismatch { .. } => Outcome::BadIndex,
            ScanError::Db(_) => Outcome::DbFailed,
            ScanError::ClinicDb(e) if e.is_clinic_db_unavailable() => Outcome::ClinicDbUnavailable,
            ScanError::ClinicDb(_) => Outcome::DbFailed,
            ScanError::TooLong { .. } => Outcome::TooLong,
        }
    }

    /// What the operator should do, after the message.
    #[must_use]
    pub fn advice(&self) -> &'static str {
        match self {
            ScanError::Qr(qr::VerifyError::UnknownKid { .. }) => {
                "the issuing clinic is not in this device's trust list: import its trust list (`medcard trust import`) if it should be trusted"
            }
            ScanError::Qr(qr::VerifyError::Time(_)) => "ask the patient to check in again for a fresh code",
            ScanError::Qr(qr::VerifyError::Prefix(_)) => "this is not a MedCard code (MC1:)",
            ScanError::Qr(qr::VerifyError::IssuerMismatch { .. }) => {
                "a trusted clinic's key signed a code in another clinic's name: do not use it, and report it to IT (the clinic whose key signed it should be asked)"
            }
            ScanError::Qr(qr::VerifyError::Lifetime { .. }) => "no kiosk issues codes valid this long: do not use it, and report it to IT",
            ScanError::Qr(_) => "the code is damaged or forged: do not use it; ask the patient to check in again",
            ScanError::AlreadyUsed { .. } => "ask the patient to check in again",
            ScanError::Fetch(_) | ScanError::Index(_) | ScanError::IndexMismatch { .. } => {
                "the record store does not hold the record the code names intact: report it to IT"
            }
            ScanError::Db(_) => "the device database failed: report it to IT",
            ScanError::ClinicDb(_) => {
                "records already opened on this device can still be shown from its cache; scan this code again when the clinic database is reachable (tell IT)"
            }
            ScanError::TooLong { .. } => "not a QR code of ours",
        }
    }

    /// Whether trying again later may succeed (the record store unreachable): in clinic mode
    /// such a failure does not spend the code.
    #[must_use]
    pub fn retryable(&self) -> bool {
        matches!(self, ScanError::Fetch(FetchError::Store(StoreError::Io { .. } | StoreError::Unavailable { .. })))
    }
}

/// A successful scan.
#[derive(Debug)]
pub struct Scanned {
    /// The verified code.
    pub verified: qr::Verified,
    /// The cached rows, one per record (in index order).
    pub rows: Vec<CacheRow>,
    /// Whether the code pointed at a record index.
    pub index: bool,
}

/// Whether `qr_id` was used here; when it was, when.
pub fn used_at(db: &ClinicDb, qr_id: &str) -> Result<Option<i64>, DbError> {
    db.conn().query_row("SELECT used_at FROM qr_used WHERE cti = ?1", [qr_id], |r| r.get(0)).optional().map_err(|source| DbError::Sqlite {
        path: db.path().to_owned(),
        operation: "look up used QR id",
        source,
    })
}

/// Marks `qr_id` used at `now` (kept until `exp`); false if it already was (a concurrent scan).
pub fn mark_used(db: &ClinicDb, qr_id: &str, now: i64, exp: i64) -> Result<bool, DbError> {
    let n = db
        .conn()
        .execute("INSERT OR IGNORE INTO qr_used (cti, used_at, exp) VALUES (?1, ?2, ?3)", params![qr_id, now, exp])
        .map_err(|source| DbError::Sqlite { path: db.path().to_owned(), operation: "mark QR id used", source })?;
    Ok(n == 1)
}

/// Verifies `text` against `trust` at `now` (60 s skew), checks the one-time id (unless
/// `reusable`), fetches and checks the pointed record(s) and caches them. Nothing is cached
/// unless every record checks out. A one-time id is spent once the code verified (before the
/// fetch), so a code that fails later cannot be retried: fail closed.
pub fn scan(
    db: &ClinicDb,
    store: &dyn RecordStore,
    trust: &qr::TrustList,
    text: &str,
    now: i64,
    reusable: bool,
) -> Result<Scanned, ScanError> {
    scan_with(db, store, trust, text, now, reusable, None)
}

/// [`scan`], and in clinic mode (`clinic` is a device of a clinic) the one-time id is spent in
/// the clinic database, for every device at once: the spend and the fetch are one transaction
/// there, committed when the records checked out or failed for good, rolled back when the
/// store could not be reached ([`ScanError::retryable`]: scanning again may work). The
/// database unreachable is [`ScanError::ClinicDb`]: the code is not accepted.
pub fn scan_with(
    db: &ClinicDb,
    store: &dyn RecordStore,
    trust: &qr::TrustList,
    text: &str,
    now: i64,
    reusable: bool,
    clinic: Option<&ClinicState>,
) -> Result<Scanned, ScanError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.len() > MAX_QR_TEXT {
        return Err(ScanError::TooLong { got: text.len(), limit: MAX_QR_TEXT });
    }
    let verifier = qr::Verifier::new(qr::Profile::medcard(), trust);
    let verified = verifier.verify(text, qr::Clock::new(now, 60)).map_err(ScanError::Qr)?;
    let claims = verified.claims();
    let qr_id = hex::encode(&claims.cti);
    let shared = match clinic {
        Some(state) if !reusable => state.is_clinic().map_err(|e| ScanError::ClinicDb(Box::new(e)))?.then_some(state),
        _ => None,
    };
    let (rows, index) = match shared {
        None => {
            if !reusable {
                if let Some(t) = used_at(db, &qr_id)? {
                    return Err(ScanError::AlreadyUsed { qr_id, used_at: qr::time::format_rfc3339(t), device: None });
                }
                if !mark_used(db, &qr_id, now, claims.exp)? {
                    return Err(ScanError::AlreadyUsed { qr_id, used_at: "just now".into(), device: None });
                }
            }
            fetch_all(store, &verified, now)?
        }
        Some(state) => {
            let spent = state
                .with_clinic_db(|pg| pg.spend_code(&qr_id, now, claims.exp, || fetch_all(store, &verified, now), ScanError::retryable))
                .map_err(|e| ScanError::ClinicDb(Box::new(e)))?;
            match spent {
                Some(SpendOutcome::Spent(r)) => r?,
                Some(SpendOutcome::NotSpent(e)) => return Err(e),
                Some(SpendOutcome::Before(s)) => {
                    return Err(ScanError::AlreadyUsed { qr_id, used_at: qr::time::format_rfc3339(s.used_at), device: Some(s.device) });
                }
                None => fetch_all(store, &verified, now)?,
            }
        }
    };
    for r in &rows {
        db.cache_put(r)?;
    }
    Ok(Scanned { verified, rows, index })
}

/// Fetches and checks every record the verified code points to (a record, or each entry of a
/// record index), without caching: all or nothing. Returns the rows and whether it was an index.
pub fn fetch_all(store: &dyn RecordStore, verified: &qr::Verified, now: i64) -> Result<(Vec<CacheRow>, bool), ScanError> {
    let claims = verified.claims();
    let p = &claims.pointer;
    // Open the pointed record once to tell a record index from a record.
    let locator: Locator = p.locator.parse().map_err(|e| ScanError::Fetch(FetchError::Locator(e)))?;
    if locator.digest() != &p.record_sha256 {
        return Err(FetchError::DigestClaim { locator: p.locator.clone(), claimed: hex::encode(p.record_sha256) }.into());
    }
    let key = p.content_key.as_ref().ok_or_else(|| FetchError::NoKey { locator: p.locator.clone() })?;
    let bytes = store.get(&locator).map_err(|e| ScanError::Fetch(FetchError::Store(e)))?;
    let opened = records::open(bytes, &p.patient_id, key, &p.locator).map_err(|e| ScanError::Fetch(FetchError::Record(e)))?;
    if opened.meta.media_type != INDEX_MEDIA_TYPE {
        drop(opened);
        let row = fetch::fetch_checked(store, verified, now)?;
        return Ok((vec![row], false));
    }
    let entries = record_index::decode_index(opened.document())?;
    let categories: Vec<Category> =
        p.categories.iter().map(|c| c.parse::<Category>().map_err(|e| FetchError::UnknownCategory(e.got))).collect::<Result<_, _>>()?;
    let mut rows = Vec::with_capacity(entries.len());
    for e in &entries {
        rows.push(open_entry(store, verified, &categories, e, now)?);
    }
    Ok((rows, true))
}

/// The checks of [`fetch::fetch_into_cache`] for one entry of a record index.
fn open_entry(
    store: &dyn RecordStore,
    verified: &qr::Verified,
    categories: &[Category],
    e: &IndexEntry,
    now: i64,
) -> Result<CacheRow, ScanError> {
    let claims = verified.claims();
    let p = &claims.pointer;
    let locator: Locator = e.locator.parse().map_err(|x| ScanError::Fetch(FetchError::Locator(x)))?;
    if locator.digest() != &e.sha256 {
        return Err(FetchError::DigestClaim { locator: e.locator.clone(), claimed: hex::encode(e.sha256) }.into());
    }
    if !categories.contains(&e.category) {
        return Err(FetchError::NotCovered { locator: e.locator.clone(), category: e.category, covered: category::join(categories) }.into());
    }
    let bytes = store.get(&locator).map_err(|x| ScanError::Fetch(FetchError::Store(x)))?;
    let opened = records::open(bytes, &p.patient_id, &e.key, &e.locator).map_err(|x| ScanError::Fetch(FetchError::Record(x)))?;
    if opened.meta.category != e.category || opened.meta.record_id != e.record_id {
        return Err(ScanError::IndexMismatch {
            locator: e.locator.clone(),
            record_id: opened.meta.record_id.clone(),
            category: opened.meta.category,
            index_record_id: e.record_id.clone(),
            index_category: e.category,
        });
    }
    Ok(CacheRow {
        qr_id: format!("{}.{}", hex::encode(&claims.cti), e.record_id),
        issuer_kid: verified.by().kid.clone(),
        patient_id: p.patient_id.clone(),
        locator: e.locator.clone(),
        categories: categories.to_vec(),
        consent_sha256: p.consent_sha256.to_vec(),
        verified_at: now,
        expires_at: claims.exp,
        media_type: opened.meta.media_type.clone(),
        document: opened.document().to_vec(),
    })
}

/// A cached record, only while it may still be shown: the cache is purged first (expired
/// codes, revoked or expired consent, categories no longer consented), then the row is looked
/// up; `None` when it is gone.
pub fn open_cached(db: &mut ClinicDb, id: &str, now: i64) -> Result<Option<CacheRow>, DbError> {
    db.cache_purge(now)?;
    Ok(db.cache_list()?.into_iter().find(|r| r.qr_id == id && r.expires_at > now))
}

/// Why an image did not yield exactly one QR text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The bytes are not an image we read, or it is too large.
    #[error(transparent)]
    Unreadable(#[from] qr::scan::ScanError),
    /// No QR code was found.
    #[error("no QR code found: rescan the code")]
    NoCode,
    /// More than one QR code: which one the clinician meant is not ours to guess.
    #[error("{count} QR codes in the image: scan exactly one")]
    Several { count: usize },
}

/// The text of the single QR code in image file bytes (PNG, JPEG, ...), for [`scan`]. An image
/// with no code or several codes is refused.
pub fn qr_text_from_image(bytes: &[u8]) -> Result<String, ImageError> {
    let mut texts = qr::scan::scan_bytes(bytes)?;
    match (texts.pop(), texts.len()) {
        (Some(t), 0) => Ok(t),
        (None, _) => Err(ImageError::NoCode),
        (Some(_), n) => Err(ImageError::Several { count: n + 1 }),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::record_index::encode_index;
    use crate::records::RecordMeta;
    use crate::store::DirStore;
    use qr::Signer;

    const PATIENT: &str = "P-1";
    const NOW: i64 = 1_800_000_000;

    struct Env {
        _dir: tempfile::TempDir,
        db: ClinicDb,
        store: DirStore,
        signer: qr::SoftwareSigner,
        trust: qr::TrustList,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = ClinicDb::open(&dir.path().join("clinic.db"), &zeroize::Zeroizing::new([9u8; 32])).expect("db");
        let store = DirStore::open(&dir.path().join("records")).expect("store");
        let signer = qr::SoftwareSigner::generate().expect("key");
        let mut trust = qr::TrustList::new();
        trust.add_key("clinic-a", signer.public_key());
        Env { _dir: dir, db, store, signer, trust }
    }

    fn record(e: &Env, id: &str, cat: Category, doc: &[u8]) -> IndexEntry {
        let meta = RecordMeta {
            record_id: id.into(),
            patient_id: PATIENT.into(),
            category: cat,
            media_type: "text/plain".into(),
            created: 1,
            author: "t".into(),
        };
        let key = records::new_content_key().expect("key");
        let sealed = records::seal(&meta, doc, &key).expect("seal");
        let loc = e.store.put(&sealed).expect("put");
        IndexEntry {
            record_id: id.into(),
            locator: loc.to_string(),
            sha256: *loc.digest(),
            key,
            category: cat,
            media_type: "text/plain".into(),
        }
    }

    /// A signed code pointing at an index of `entries`, covering `cats`.
    fn code(e: &Env, entries: &[IndexEntry], cats: &[&str]) -> String {
        let meta = RecordMeta {
            record_id: "ffffffffffffffffffffffffffffffff".into(),
            patient_id: PATIENT.into(),
            category: entries[0].category,
            media_type: INDEX_MEDIA_TYPE.into(),
            created: 1,
            author: "t".into(),
        };
        let key = records::new_content_key().expect("key");
        let sealed = records::seal(&meta, &encode_index(entries), &key).expect("seal");
        let loc = e.store.put(&sealed).expect("put");
        let claims = qr::Claims {
            iss: "clinic-a".into(),
            iat: NOW,
            exp: NOW + 600,
            nbf: None,
            cti: qr::claims::random_cti().expect("cti"),
            pointer: qr::Pointer {
                patient_id: PATIENT.into(),
                locator: loc.to_string(),
                record_sha256: *loc.digest(),
                content_key: Some(key),
                categories: cats.iter().map(|c| (*c).to_owned()).collect(),
                consent_sha256: [0; 32],
            },
        };
        qr::encode(&claims, &e.signer).expect("encode").text
    }

    #[test]
    fn index_code_caches_every_record_with_its_own_document() {
        let e = env();
        let a = record(&e, "a1", Category::Allergies, b"allergy doc");
        let l = record(&e, "l1", Category::Labs, b"lab doc");
        let text = code(&e, &[a, l], &["allergies", "labs"]);
        let s = scan(&e.db, &e.store, &e.trust, &text, NOW, false).expect("scan");
        assert!(s.index);
        let docs: Vec<&[u8]> = s.rows.iter().map(|r| r.document.as_slice()).collect();
        assert_eq!(docs, vec![&b"allergy doc"[..], &b"lab doc"[..]]);
        assert_eq!(e.db.cache_count().expect("count"), 2);
    }

    #[test]
    fn index_entry_outside_the_codes_categories_caches_nothing() {
        let e = env();
        let a = record(&e, "a1", Category::Allergies, b"allergy doc");
        let n = record(&e, "n1", Category::Notes, b"note");
        let text = code(&e, &[a, n], &["allergies"]);
        let err = scan(&e.db, &e.store, &e.trust, &text, NOW, false).expect_err("refused");
        assert!(matches!(err, ScanError::Fetch(FetchError::NotCovered { .. })), "{err}");
        assert_eq!(e.db.cache_count().expect("count"), 0, "the good entry must not be cached either");
    }

    #[test]
    fn index_entry_with_a_tampered_stored_record_caches_nothing() {
        let e = env();
        let a = record(&e, "a1", Category::Allergies, b"allergy doc");
        let l = record(&e, "l1", Category::Labs, b"lab doc");
        let path = e.store.path_of(&l.locator.parse().expect("locator"));
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let text = code(&e, &[a, l], &["allergies", "labs"]);
        let err = scan(&e.db, &e.store, &e.trust, &text, NOW, false).expect_err("refused");
        assert_eq!(err.outcome().as_str(), "store-integrity", "{err}");
        assert_eq!(e.db.cache_count().expect("count"), 0);
    }

    #[test]
    fn index_entry_whose_record_has_another_id_is_refused() {
        let e = env();
        let a = record(&e, "a1", Category::Allergies, b"allergy doc");
        let mut l = record(&e, "l1", Category::Labs, b"lab doc");
        l.record_id = "l2".into();
        let text = code(&e, &[a, l], &["allergies", "labs"]);
        let err = scan(&e.db, &e.store, &e.trust, &text, NOW, false).expect_err("refused");
        assert!(matches!(err, ScanError::IndexMismatch { .. }), "{err}");
        assert_eq!(e.db.cache_count().expect("count"), 0);
    }

    #[test]
    fn one_time_code_is_refused_the_second_time_unless_reusable() {
        let e = env();
        let a = record(&e, "a1", Category::Allergies, b"x");
        let l = record(&e, "l1", Category::Labs, b"y");
        let text = code(&e, &[a, l], &["allergies", "labs"]);
        scan(&e.db, &e.store, &e.trust, &text, NOW, false).expect("first");
        let err = scan(&e.db, &e.store, &e.trust, &text, NOW + 1, false).expect_err("second");
        assert!(matches!(err, ScanError::AlreadyUsed { .. }), "{err}");
        scan(&e.db, &e.store, &e.trust, &text, NOW + 2, true).expect("reusable mode accepts it until exp");
    }
}
