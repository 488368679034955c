//! Content-key custody: a record's content key is stored wrapped under the clinic's record
//! key-wrap key (derived from the master secret, `KeyPurpose::RecordKeyWrap`), so the kiosk can
//! put the key into a QR code later without the key ever being stored in clear.
//!
//! ```text
//! wrapped = nonce (12) ‖ AES-256-GCM(wrap key, nonce, aad, content key (32)) ‖ tag (16)   ; 60 bytes
//! aad     = "MedCard v1 content key" ‖ record id (UTF-8)
//! ```
//! The AAD binds the wrapped key to its record: a wrapped key copied to another record's row
//! does not unwrap.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use super::ContentKey;

/// Length of a wrapped key.
pub const WRAPPED_LEN: usize = 12 + 32 + 16;
const AAD_PREFIX: &[u8] = b"MedCard v1 content key";

/// Wrapping or unwrapping failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyWrapError {
    /// The stored value has the wrong length.
    #[error("wrapped content key of record {record}: expected {WRAPPED_LEN} bytes, got {got}")]
    Length { record: String, got: usize },
    /// The tag does not verify: wrong wrap key, another record's key, or altered bytes.
    #[error("wrapped content key of record {record} does not unwrap: wrong clinic key, a key moved from another record, or altered data")]
    Integrity { record: String },
    /// The random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] crate::random::RandomError),
}

fn aad(record_id: &str) -> Vec<u8> {
    [AAD_PREFIX, record_id.as_bytes()].concat()
}

/// Wraps `key` for `record_id` under `wrap_key`.
pub fn wrap(wrap_key: &Zeroizing<[u8; 32]>, record_id: &str, key: &ContentKey) -> Result<Vec<u8>, KeyWrapError> {
    let mut nonce = [0u8; 12];
    crate::random::fill(&mut nonce)?;
    let mut buf = Zeroizing::new(*key.as_bytes());
    let cipher = Aes256Gcm::new((&**wrap_key).into());
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), &aad(record_id), buf.as_mut_slice().into())
        .map_err(|_| KeyWrapError::Integrity { record: record_id.to_owned() })?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(buf.as_slice());
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// Unwraps a key made by [`wrap`] for the same `record_id`.
pub fn unwrap(wrap_key: &Zeroizing<[u8; 32]>, record_id: &str, wrapped: &[u8]) -> Result<ContentKey, KeyWrapError> {
    let length = || KeyWrapError::Length { record: record_id.to_owned(), got: wrapped.len() };
    if wrapped.len() != WRAPPED_LEN {
        return Err(length());
    }
    let (nonce, rest) = wrapped.split_at_checked(12).ok_or_else(length)?;
    let (body, tag) = rest.split_at_checked(32).ok_or_else(length)?;
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| length())?;
    let tag = Tag::try_from(tag).map_err(|_| length())?;
    let mut buf = Zeroizing::new([0u8; 32]);
    buf.copy_from_slice(body);
    let cipher = Aes256Gcm::new((&**wrap_key).into());
    cipher
        .decrypt_inout_detached(&Nonce::from(nonce), &aad(record_id), buf.as_mut_slice().into(), &tag)
        .map_err(|_| KeyWrapError::Integrity { record: record_id.to_owned() })?;
    Ok(ContentKey::new(*buf))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn wk(b: u8) -> Zeroizing<[u8; 32]> {
        Zeroizing::new([b; 32])
    }

    #[test]
    fn wrapped_key_unwraps_only_with_the_same_wrap_key_and_record() {
        let key = ContentKey::new([7; 32]);
        let w = wrap(&wk(1), "rec-a", &key);
        assert!(w.is_ok());
        let w = w.unwrap_or_default();
        assert_eq!(w.len(), WRAPPED_LEN);
        assert_eq!(unwrap(&wk(1), "rec-a", &w), Ok(key));
        assert!(matches!(unwrap(&wk(2), "rec-a", &w), Err(KeyWrapError::Integrity { .. })));
        assert!(matches!(unwrap(&wk(1), "rec-b", &w), Err(KeyWrapError::Integrity { .. })));
        assert!(matches!(unwrap(&wk(1), "rec-a", &w[..59]), Err(KeyWrapError::Length { got: 59, .. })));
    }

    #[test]
    fn every_flipped_bit_of_a_wrapped_key_is_detected() {
        let key = ContentKey::new([9; 32]);
        let w = wrap(&wk(3), "r", &key).unwrap_or_default();
        for i in 0..w.len() * 8 {
            let mut bad = w.clone();
            if let Some(b) = bad.get_mut(i / 8) {
                *b ^= 1 << (i % 8);
            }
            assert!(unwrap(&wk(3), "r", &bad).is_err(), "bit {i}");
        }
    }

    #[test]
    fn two_wraps_of_one_key_differ() {
        let key = ContentKey::new([9; 32]);
        assert_ne!(wrap(&wk(3), "r", &key).unwrap_or_default(), wrap(&wk(3), "r", &key).unwrap_or_default());
    }
}
