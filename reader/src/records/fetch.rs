//! Bedside: from a verified QR pointer to a cached record. Accepts only a [`qr::Verified`]
//! (made only by the QR verifier), checks the store digest, the pointer's digest, the AEAD tag,
//! the patient binding and the category, and only then writes the cache row.

use crate::category::Category;
use crate::db::{CacheRow, ClinicDb, DbError};
use crate::sealed::{self as records, RecordError};
use crate::store::{Locator, RecordStore, StoreError};

/// Why a pointed-to record was not cached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The pointer's locator is not ours.
    #[error(transparent)]
    Locator(StoreError),
    /// The store could not produce intact bytes (missing, altered, truncated).
    #[error(transparent)]
    Store(StoreError),
    /// The locator and the QR code's record digest disagree.
    #[error("record {locator}: the QR code names SHA-256 {claimed}, which is not the locator's digest")]
    DigestClaim { locator: String, claimed: String },
    /// The code carries no content key.
    #[error("the QR code for {locator} carries no content key: this device cannot open the record")]
    NoKey { locator: String },
    /// Decryption or metadata checks failed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The record's category is not one the code (and so the consent) covers.
    #[error("record {locator} is in category {category}, which the QR code does not cover ({covered})")]
    NotCovered { locator: String, category: Category, covered: String },
    /// A category in the code is unknown.
    #[error("the QR code names an unknown category {0:?}")]
    UnknownCategory(String),
    /// Writing the cache failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Fetches, checks and caches the record a verified code points to. Returns the cache row.
pub fn fetch_into_cache(db: &ClinicDb, store: &dyn RecordStore, verified: &qr::Verified, now: i64) -> Result<CacheRow, FetchError> {
    let row = fetch_checked(store, verified, now)?;
    db.cache_put(&row)?;
    Ok(row)
}

/// [`fetch_into_cache`] without the cache: the row, every check passed, not yet stored.
pub fn fetch_checked(store: &dyn RecordStore, verified: &qr::Verified, now: i64) -> Result<CacheRow, FetchError> {
    let claims = verified.claims();
    let p = &claims.pointer;
    let locator: Locator = p.locator.parse().map_err(FetchError::Locator)?;
    if locator.digest() != &p.record_sha256 {
        return Err(FetchError::DigestClaim { locator: p.locator.clone(), claimed: hex::encode(p.record_sha256) });
    }
    let key = p.content_key.as_ref().ok_or_else(|| FetchError::NoKey { locator: p.locator.clone() })?;
    let categories = p
        .categories
        .iter()
        .map(|c| c.parse::<Category>().map_err(|e| FetchError::UnknownCategory(e.got)))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = store.get(&locator).map_err(FetchError::Store)?;
    let opened = records::open(bytes, &p.patient_id, key, &p.locator)?;
    if !categories.contains(&opened.meta.category) {
        return Err(FetchError::NotCovered {
            locator: p.locator.clone(),
            category: opened.meta.category,
            covered: crate::category::join(&categories),
        });
    }
    let row = CacheRow {
        qr_id: hex::encode(&claims.cti),
        issuer_kid: verified.by().kid.clone(),
        patient_id: p.patient_id.clone(),
        locator: p.locator.clone(),
        categories,
        consent_sha256: p.consent_sha256.to_vec(),
        verified_at: now,
        expires_at: claims.exp,
        media_type: opened.meta.media_type.clone(),
        document: opened.document().to_vec(),
    };
    Ok(row)
}
