//! Records as the clinic keeps them: adding a document (seal, store, index, audit in one step)
//! and fetching one for a scan. The sealed format itself is [`crate::sealed`], re-exported here
//! so that `records::seal`, `records::open`, `records::RecordMeta` ... name one thing.

pub mod add;
pub mod fetch;

pub use crate::sealed::*;
pub use add::{AddError, AddedRecord, NewRecord, add_record, add_record_file, add_record_file_in, media_type_for};

use zeroize::Zeroizing;

use crate::db::RecordRow;
use crate::store::{RecordStore, StoreError};

/// Why a record could not be opened from its index row with the clinic's key-wrap key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenRowError {
    /// The wrapped content key does not unwrap (altered, or another clinic's).
    #[error(transparent)]
    KeyWrap(#[from] keywrap::KeyWrapError),
    /// The store failed, or holds other bytes than the locator's digest.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealed record does not open.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The sealed metadata is not the index row's (a record swapped under another's row).
    #[error("record {0}: the sealed metadata does not match the index row; not opening it")]
    MetadataMismatch(String),
}

impl OpenRowError {
    /// Whether the stored bytes or the wrapped key were altered (audited as `integrity-failed`).
    #[must_use]
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            OpenRowError::KeyWrap(keywrap::KeyWrapError::Integrity { .. })
                | OpenRowError::Store(StoreError::DigestMismatch { .. })
                | OpenRowError::Record(RecordError::Integrity { .. })
        )
    }
}

/// Opens the record of index row `row` without a patient's code, as the clinic: its content key
/// unwrapped with the clinic's key-wrap key `wrap_key`, the sealed bytes fetched and opened, and
/// the sealed metadata required to be the row's (`medcard record get`, emergency access).
pub fn open_row(wrap_key: &Zeroizing<[u8; 32]>, store: &dyn RecordStore, row: &RecordRow) -> Result<OpenedRecord, OpenRowError> {
    let id = &row.meta.record_id;
    let key = keywrap::unwrap(wrap_key, id, &row.wrapped_key)?;
    let bytes = store.get(&row.locator)?;
    let opened = open(bytes, &row.meta.patient_id, &key, &row.locator.to_string())?;
    if opened.meta != row.meta {
        return Err(OpenRowError::MetadataMismatch(id.clone()));
    }
    Ok(opened)
}
