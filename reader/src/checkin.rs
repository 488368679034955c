//! Kiosk check-in (`docs/checkin-scan.md`): a genuine card, the patient's PIN and a valid consent
//! token become ONE signed QR pointer to the records the consent covers.
//!
//! Split in two:
//! - the card part ([`card_step`]) runs inside one card session: card authentication (credential,
//!   not revoked, 9E challenge) with the PIN, then the consent token read and checked against the
//!   card's 9C key, this clinic, the clock and the highest version seen;
//! - the rest is pure selection ([`select`]) plus sealing an index and signing, with no card.
//!
//! One record: the QR points at it. Several: the QR points at a **record index** (CBOR list of
//! locator, digest, content key, category per record) sealed and stored exactly like a record,
//! whose digest and key the signed QR carries (so the index is covered by the QR signature).

use sha2::{Digest, Sha256};

pub use crate::record_index::{INDEX_MEDIA_TYPE, IndexEntry, IndexError, MAX_INDEX_ENTRIES, decode_index, encode_index};

use crate::Error;
use crate::audit::{AuditError, EventKind, Outcome};
use crate::category::{self, Category};
use crate::clinic::{self, ClinicState};
use crate::clinic_state::ClinicError;
use crate::clinic_state::ConsentVersion;
use crate::consent::{self, ConsentError, ConsentToken};
use crate::credential::VerifiedCredential;
use crate::db::DbError;
use crate::db::RecordRow;
use crate::keystore::{KeyPurpose, Keystore};
use crate::piv::{PinBlock, Piv};
use crate::random::RandomError;
use crate::records::{self, RecordMeta, keywrap};
use crate::sealed::{RecordError, keywrap::KeyWrapError};
use crate::store::StoreError;
use crate::store::{Locator, RecordStore};
use crate::transport::Transport;

/// Longest QR validity a kiosk issues (the format wants minutes, not days).
pub const MAX_VALID_FOR: i64 = 24 * 3600;

/// Why a check-in was refused (card and consent failures come as [`Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckinError {
    /// The card, the PIN or the consent token failed (never a failure of the clinic's own
    /// database or audit log: those are [`CheckinError::Clinic`] and [`CheckinError::Audit`]).
    #[error(transparent)]
    Card(Error),
    /// The consent token is a revocation.
    #[error("the patient's consent is revoked (version {version}): no records can be shared; ask the patient to set consent again")]
    ConsentRevoked { version: u64 },
    /// Categories asked for are not consented.
    #[error(
        "consent does not cover {missing} (asked for {asked}; the patient consented to {consented}): ask the patient to extend consent or ask for less"
    )]
    NotCovered { asked: String, consented: String, missing: String },
    /// Nothing to point to.
    #[error("patient {patient_id} has no records in {categories}: nothing to share")]
    NoRecords { patient_id: String, categories: String },
    /// Too many records for one index.
    #[error("{got} records selected, at most {limit} fit one index: ask for fewer categories")]
    TooMany { got: usize, limit: usize },
    /// A QR validity outside what the kiosk issues.
    #[error("QR validity {valid_for} s: expected 60 s to {MAX_VALID_FOR} s")]
    Validity { valid_for: i64 },
    /// The audit log could not be written: the check-in is not done (fail closed).
    #[error("could not write the audit log: {0}")]
    Audit(#[source] AuditError),
    /// The clinic database or keystore failed.
    #[error(transparent)]
    Clinic(ClinicError),
    /// Reading the clinic's records index failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A record's wrapped content key does not unwrap.
    #[error(transparent)]
    KeyWrap(#[from] KeyWrapError),
    /// A record could not be re-sealed for this disclosure.
    #[error(transparent)]
    Disclosure(#[from] DisclosureError),
    /// The record index could not be sealed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The record index could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The QR code could not be signed or encoded.
    #[error(transparent)]
    Qr(#[from] qr::codec::EncodeError),
    /// The operating system's random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] RandomError),
}

/// The clinic state's own failures (database, audit log) are the clinic's, not the card's.
impl From<ClinicError> for CheckinError {
    fn from(e: ClinicError) -> Self {
        match e {
            ClinicError::Audit(a) => CheckinError::Audit(a),
            other => CheckinError::Clinic(other),
        }
    }
}

/// A card flow's error is a card refusal unless the clinic state failed underneath it.
impl From<Error> for CheckinError {
    fn from(e: Error) -> Self {
        match e {
            Error::Clinic(c) => c.into(),
            other => CheckinError::Card(other),
        }
    }
}

impl CheckinError {
    /// The `qr.issued` outcome of a refusal.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            CheckinError::Card(_) => Outcome::CardRefused,
            CheckinError::ConsentRevoked { .. } => Outcome::ConsentRevoked,
            CheckinError::NotCovered { .. } => Outcome::NotCovered,
            CheckinError::NoRecords { .. } => Outcome::NoRecords,
            CheckinError::TooMany { .. } => Outcome::TooMany,
            CheckinError::Validity { .. } => Outcome::InvalidRequest,
            CheckinError::Audit(_) => Outcome::AuditFailed,
            CheckinError::Clinic(_)
            | CheckinError::Db(_)
            | CheckinError::KeyWrap(_)
            | CheckinError::Disclosure(_)
            | CheckinError::Record(_)
            | CheckinError::Store(_)
            | CheckinError::Qr(_)
            | CheckinError::Random(_) => Outcome::Failed,
        }
    }
}

/// What the card session established.
#[derive(Debug, Clone)]
pub struct CardOutcome {
    /// The verified credential (PIN verified in the same session).
    pub credential: VerifiedCredential,
    /// The verified consent token.
    pub consent: ConsentToken,
    /// SHA-256 of the consent token bytes (goes into the QR).
    pub consent_sha256: [u8; 32],
}

/// The card session of a check-in: card authentication + PIN (audited by
/// [`clinic::verify_card`]), then the consent token read and verified ([`consent::verify_token`])
/// and its version checked and remembered ([`ClinicState::note_consent`]); refusals are audited
/// as `consent.refused`. The card is touched for nothing else.
pub fn card_step<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    state: &ClinicState,
    pin: &PinBlock,
    now: i64,
) -> Result<CardOutcome, Error> {
    let genuine = clinic::verify_own_card(piv, ks, state, now, Some(pin))?;
    let c = genuine.credential.credential().clone();
    let checked = match piv.consent_token()? {
        Some(bytes) => consent::verify_token(&bytes, &genuine.credential, ks.clinic_id(), now).map(|t| (t, bytes)),
        None => Err(ConsentError::Missing),
    };
    let (token, bytes) = match checked {
        Ok(x) => x,
        Err(e) => {
            let detail = format!("card={} flow=checkin", c.card_serial);
            state.audit(&[state.event(now, EventKind::ConsentRefused, &c.patient_id, e.outcome(), detail)])?;
            return Err(e.into());
        }
    };
    let kind = if token.scope.is_empty() { EventKind::ConsentRevoked } else { EventKind::ConsentSet };
    let version = ConsentVersion {
        patient_id: &token.patient_id,
        version: token.version,
        token: &bytes,
        scope: &token.scope,
        iat: token.issued_at,
        exp: token.expires_at,
    };
    state.note_consent(&version, (kind, Outcome::Seen), now)?;
    let consent_sha256: [u8; 32] = Sha256::digest(&bytes).into();
    Ok(CardOutcome { credential: genuine.credential, consent: token, consent_sha256 })
}

/// Picks the records to share: those whose category the consent covers and, when `asked` is
/// given, one of the asked categories (every asked category must be consented, else the whole
/// check-in is refused with what is missing). Pure.
pub fn select(
    patient_id: &str,
    consented: &[Category],
    asked: Option<&[Category]>,
    records: Vec<RecordRow>,
) -> Result<(Vec<Category>, Vec<RecordRow>), CheckinError> {
    let wanted: Vec<Category> = match asked {
        Some(asked) => {
            let missing: Vec<Category> = asked.iter().copied().filter(|c| !consented.contains(c)).collect();
            if !missing.is_empty() {
                return Err(CheckinError::NotCovered {
                    asked: category::join(asked),
                    consented: if consented.is_empty() { "nothing".into() } else { category::join(consented) },
                    missing: category::join(&missing),
                });
            }
            asked.to_vec()
        }
        None => consented.to_vec(),
    };
    let mut chosen: Vec<RecordRow> =
        records.into_iter().filter(|r| r.meta.patient_id == patient_id && wanted.contains(&r.meta.category)).collect();
    if chosen.is_empty() {
        return Err(CheckinError::NoRecords { patient_id: patient_id.to_owned(), categories: category::join(&wanted) });
    }
    if chosen.len() > MAX_INDEX_ENTRIES {
        return Err(CheckinError::TooMany { got: chosen.len(), limit: MAX_INDEX_ENTRIES });
    }
    chosen.sort_by(|a, b| (a.meta.category, a.meta.created, &a.meta.record_id).cmp(&(b.meta.category, b.meta.created, &b.meta.record_id)));
    let mut cats: Vec<Category> = chosen.iter().map(|r| r.meta.category).collect();
    cats.sort();
    cats.dedup();
    Ok((cats, chosen))
}

/// What a check-in produced.
#[derive(Debug)]
pub struct Issued {
    /// The QR text (`MC1:...`).
    pub text: String,
    /// The QR id (cti), hex.
    pub qr_id: String,
    /// Patient id.
    pub patient_id: String,
    /// Issued at / expires at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Categories the QR covers.
    pub categories: Vec<Category>,
    /// The shared records: (record id, category).
    pub records: Vec<(String, Category)>,
    /// The locator the QR points at (the record, or the index).
    pub locator: String,
    /// Whether the QR points at a record index.
    pub index: bool,
}

/// After the card session: selects the records, seals an index if there are several, signs the
/// pointer with the clinic issuer key, and audits `qr.issued` (or the refusal, as `qr.issued`
/// with the refusal's outcome).
pub fn issue_qr(
    ks: &Keystore,
    state: &ClinicState,
    store: &dyn RecordStore,
    card: &CardOutcome,
    asked: Option<&[Category]>,
    valid_for: i64,
    now: i64,
) -> Result<Issued, CheckinError> {
    let patient = card.credential.credential().patient_id.clone();
    let r = issue_inner(ks, state, store, card, asked, valid_for, now);
    let ev = match &r {
        Ok(i) => state.event(
            now,
            EventKind::QrIssued,
            &patient,
            Outcome::Ok,
            format!(
                "qr={} exp={} records={} index={} categories={}",
                i.qr_id,
                i.exp,
                i.records.len(),
                i.index,
                category::join(&i.categories)
            ),
        ),
        Err(e) => state.event(now, EventKind::QrIssued, &patient, e.outcome(), e.to_string()),
    };
    state.audit(&[ev])?;
    r
}

fn issue_inner(
    ks: &Keystore,
    state: &ClinicState,
    store: &dyn RecordStore,
    card: &CardOutcome,
    asked: Option<&[Category]>,
    valid_for: i64,
    now: i64,
) -> Result<Issued, CheckinError> {
    if !(60..=MAX_VALID_FOR).contains(&valid_for) {
        return Err(CheckinError::Validity { valid_for });
    }
    let patient = card.credential.credential().patient_id.clone();
    if card.consent.scope.is_empty() {
        return Err(CheckinError::ConsentRevoked { version: card.consent.version });
    }
    let db = state.db()?;
    let rows = state.records(Some(&patient))?;
    let (categories, chosen) = select(&patient, &card.consent.scope, asked, rows)?;
    // Best effort: a store that cannot delete now must not stop check-ins; every copy stays
    // remembered until it is gone, so the next check-in retries.
    let _ = purge_disclosures(&db, store, now);
    let cti = qr::claims::random_cti().map_err(RandomError::from)?;
    let qr_id = hex::encode(&cti);
    let exp = now.saturating_add(valid_for);
    let wrap = ks.derive_key(KeyPurpose::RecordKeyWrap).map_err(|e| CheckinError::Clinic(e.into()))?;
    let mut entries = Vec::with_capacity(chosen.len());
    for r in &chosen {
        let key = keywrap::unwrap(&wrap, &r.meta.record_id, &r.wrapped_key)?;
        let (locator, key) = disclose(&db, store, r, &key, &qr_id, exp)?;
        entries.push(IndexEntry {
            record_id: r.meta.record_id.clone(),
            locator: locator.to_string(),
            sha256: *locator.digest(),
            key,
            category: r.meta.category,
            media_type: r.meta.media_type.clone(),
        });
    }
    let (locator, sha256, key, index) = match entries.as_slice() {
        [one] => (one.locator.clone(), one.sha256, one.key.clone(), false),
        _ => {
            let first = entries.first().map_or(Category::Summary, |e| e.category);
            let meta = RecordMeta {
                record_id: records::new_record_id()?,
                patient_id: patient.clone(),
                category: first,
                media_type: INDEX_MEDIA_TYPE.to_owned(),
                created: now,
                author: format!("kiosk:{}", ks.clinic_id()),
            };
            let key = records::new_content_key()?;
            let sealed = records::seal(&meta, &zeroize::Zeroizing::new(encode_index(&entries)), &key)?;
            // The index is a per-disclosure object too: purged with the copies it lists.
            db.note_disclosure(&Locator::of(&sealed).to_string(), &qr_id, exp)?;
            let loc: Locator = store.put(&sealed)?;
            (loc.to_string(), *loc.digest(), key, true)
        }
    };
    let claims = qr::claims::Claims {
        iss: ks.clinic_id().to_owned(),
        iat: now,
        exp,
        nbf: None,
        cti,
        pointer: qr::claims::Pointer {
            patient_id: patient.clone(),
            locator: locator.clone(),
            record_sha256: sha256,
            content_key: Some(key),
            categories: categories.iter().map(|c| c.as_str().to_owned()).collect(),
            consent_sha256: card.consent_sha256,
        },
    };
    let enc = qr::encode(&claims, &ks.issuer_signer().map_err(|e| CheckinError::Clinic(e.into()))?)?;
    Ok(Issued {
        text: enc.text,
        qr_id: hex::encode(&claims.cti),
        patient_id: patient,
        iat: claims.iat,
        exp: claims.exp,
        categories,
        records: entries.iter().map(|e| (e.record_id.clone(), e.category)).collect(),
        locator,
        index,
    })
}

/// How long after its code expired a per-disclosure copy is kept: the skew a bedside device's
/// clock may have (the scan allows 60 s), with margin.
pub const DISCLOSURE_GRACE: i64 = 10 * 60;

/// Why a record could not be disclosed or a copy purged.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The clinic database.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The record store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Opening the stored record or sealing its copy.
    #[error(transparent)]
    Record(#[from] records::RecordError),
}

/// Re-seals record `r` (opened with its permanent content key `key`) under a fresh one-time key
/// for the code `qr_id` valid until `exp` and stores the copy; returns the copy's locator and key.
/// The code then carries only the one-time key: a photo of it plus read access to the store
/// opens this copy until it is purged, never the record itself (docs/threat-model.md). The copy
/// is remembered before it is stored, so the purge knows every copy that may exist.
pub fn disclose(
    db: &crate::db::ClinicDb,
    store: &dyn RecordStore,
    r: &RecordRow,
    key: &qr::ContentKey,
    qr_id: &str,
    exp: i64,
) -> Result<(Locator, qr::ContentKey), DisclosureError> {
    let opened = records::open(store.get(&r.locator)?, &r.meta.patient_id, key, &r.locator.to_string())?;
    let once = records::new_content_key()?;
    let sealed = records::seal(&opened.meta, opened.document(), &once)?;
    let locator = Locator::of(&sealed);
    db.note_disclosure(&locator.to_string(), qr_id, exp)?;
    store.put(&sealed)?;
    Ok((locator, once))
}

/// Removes from the store the per-disclosure copies (and indexes) of codes that expired more
/// than [`DISCLOSURE_GRACE`] before `now`; returns how many. Each is forgotten only after it is
/// gone, so an interrupted purge is finished by the next one. Run at every check-in.
pub fn purge_disclosures(db: &crate::db::ClinicDb, store: &dyn RecordStore, now: i64) -> Result<usize, DisclosureError> {
    let expired = db.expired_disclosures(now.saturating_sub(DISCLOSURE_GRACE))?;
    for loc in &expired {
        // A row that is not a locator was never stored by us: forget it.
        if let Ok(l) = loc.parse::<Locator>() {
            store.delete(&l)?;
        }
        db.forget_disclosure(loc)?;
    }
    Ok(expired.len())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::Locator;

    fn row(id: &str, patient: &str, cat: Category) -> RecordRow {
        RecordRow {
            meta: RecordMeta {
                record_id: id.into(),
                patient_id: patient.into(),
                category: cat,
                media_type: "text/plain".into(),
                created: 1,
                author: "a".into(),
            },
            locator: Locator::of(id.as_bytes()),
            size: 1,
            wrapped_key: Vec::new(),
        }
    }

    fn rows() -> Vec<RecordRow> {
        vec![
            row("a", "P-1", Category::Allergies),
            row("l", "P-1", Category::Labs),
            row("n", "P-1", Category::Notes),
            row("x", "P-2", Category::Labs),
        ]
    }

    #[test]
    fn select_takes_only_consented_categories_of_the_patient() {
        let (cats, chosen) = select("P-1", &[Category::Labs, Category::Allergies], None, rows()).expect("selects");
        assert_eq!(cats, vec![Category::Allergies, Category::Labs]);
        let ids: Vec<_> = chosen.iter().map(|r| r.meta.record_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "l"]);
    }

    #[test]
    fn select_refuses_asked_category_outside_consent_naming_it() {
        let e = select("P-1", &[Category::Labs], Some(&[Category::Labs, Category::Notes]), rows()).expect_err("refused");
        assert!(matches!(&e, CheckinError::NotCovered { missing, .. } if missing == "notes"), "{e}");
        assert!(e.to_string().contains("consent does not cover notes"), "{e}");
    }

    #[test]
    fn select_narrows_to_asked_categories() {
        let (cats, chosen) = select("P-1", &[Category::Labs, Category::Allergies], Some(&[Category::Labs]), rows()).expect("selects");
        assert_eq!(cats, vec![Category::Labs]);
        assert_eq!(chosen.len(), 1);
    }

    #[test]
    fn select_without_records_in_scope_is_refused() {
        let e = select("P-1", &[Category::Imaging], None, rows()).expect_err("refused");
        assert!(matches!(e, CheckinError::NoRecords { .. }));
    }

    #[test]
    fn index_round_trips_and_every_prefix_is_refused() {
        let entries = vec![
            IndexEntry {
                record_id: "r1".into(),
                locator: Locator::of(b"1").to_string(),
                sha256: *Locator::of(b"1").digest(),
                key: qr::ContentKey::new([7; 32]),
                category: Category::Labs,
                media_type: "text/plain".into(),
            },
            IndexEntry {
                record_id: "r2".into(),
                locator: Locator::of(b"2").to_string(),
                sha256: *Locator::of(b"2").digest(),
                key: qr::ContentKey::new([8; 32]),
                category: Category::Notes,
                media_type: "application/pdf".into(),
            },
        ];
        let bytes = encode_index(&entries);
        let back = decode_index(&bytes).expect("decodes");
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].record_id, "r2");
        assert_eq!(back[1].key.as_bytes(), &[8; 32]);
        assert_eq!(back[0].category, Category::Labs);
        for n in 0..bytes.len() {
            assert!(decode_index(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_index(&trailing).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_index_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_index(&bytes);
        }
    }
}
