//! The record index (`docs/checkin-scan.md`): when a check-in shares several records, the QR
//! code points at one sealed index listing each record's locator, digest, content key, category
//! and media type. The kiosk writes it ([`encode_index`]), the bedside reads it
//! ([`decode_index`]) strictly: it came from the record store, so it is untrusted input.

use ciborium::Value;

use crate::category::{Category, UnknownCategory};

/// The media type of a sealed record index.
pub const INDEX_MEDIA_TYPE: &str = "application/medcard-index+cbor";
/// Most records one index may list (bounds what a bedside device parses).
pub const MAX_INDEX_ENTRIES: usize = 256;

/// One record named by a record index.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// Record id.
    pub record_id: String,
    /// Store locator.
    pub locator: String,
    /// SHA-256 of the sealed record.
    pub sha256: [u8; 32],
    /// Content key.
    pub key: qr::ContentKey,
    /// Category.
    pub category: Category,
    /// Media type.
    pub media_type: String,
}

/// Encodes a record index: `[* {1: record id, 2: locator, 3: bstr 32, 4: bstr 32 key,
/// 5: category, 6: media type}]` (definite lengths, keys in order).
#[must_use]
pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let arr = entries
        .iter()
        .map(|e| {
            Value::Map(vec![
                (Value::from(1), Value::Text(e.record_id.clone())),
                (Value::from(2), Value::Text(e.locator.clone())),
                (Value::from(3), Value::Bytes(e.sha256.to_vec())),
                (Value::from(4), Value::Bytes(e.key.as_bytes().to_vec())),
                (Value::from(5), Value::Text(e.category.as_str().to_owned())),
                (Value::from(6), Value::Text(e.media_type.clone())),
            ])
        })
        .collect();
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(&Value::Array(arr), &mut out);
    out
}

/// Why a record index was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Not one well-formed CBOR item.
    #[error("record index: not well-formed CBOR: {0}")]
    Cbor(#[source] ciborium::de::Error<std::io::Error>),
    /// The CBOR is well-formed but not the index's shape (the text says where and what).
    #[error("record index: {0}")]
    Shape(String),
    /// An entry names a category we do not know.
    #[error("record index: entry {entry}: {source}")]
    Category {
        entry: usize,
        #[source]
        source: UnknownCategory,
    },
}

/// Decodes a record index strictly (one CBOR array of 1..=[`MAX_INDEX_ENTRIES`] maps with
/// exactly the keys 1..6 in order, 32-byte digests and keys, known categories, nothing after).
pub fn decode_index(bytes: &[u8]) -> Result<Vec<IndexEntry>, IndexError> {
    let mut rd = bytes;
    let v: Value = ciborium::from_reader(&mut rd).map_err(IndexError::Cbor)?;
    if !rd.is_empty() {
        return Err(IndexError::Shape(format!("{} trailing bytes", rd.len())));
    }
    let Value::Array(items) = v else { return Err(IndexError::Shape("expected an array".into())) };
    if items.is_empty() || items.len() > MAX_INDEX_ENTRIES {
        return Err(IndexError::Shape(format!("{} entries, expected 1..={MAX_INDEX_ENTRIES}", items.len())));
    }
    items.into_iter().enumerate().map(|(i, item)| decode_entry(i, item)).collect()
}

fn decode_entry(i: usize, item: Value) -> Result<IndexEntry, IndexError> {
    let err = |what: &str| IndexError::Shape(format!("entry {i}: {what}"));
    let Value::Map(fields) = item else { return Err(err("expected a map")) };
    if fields.len() != 6 {
        return Err(err(&format!("{} fields, expected 6", fields.len())));
    }
    let mut vals = Vec::with_capacity(6);
    for (n, (k, v)) in fields.into_iter().enumerate() {
        let want = i128::try_from(n).unwrap_or(0) + 1;
        match k {
            Value::Integer(k) if i128::from(k) == want => vals.push(v),
            _ => return Err(err(&format!("field {n}: expected key {want}"))),
        }
    }
    let mut it = vals.into_iter();
    let text = |v: Option<Value>, what: &str| match v {
        Some(Value::Text(t)) => Ok(t),
        _ => Err(err(&format!("{what}: expected tstr"))),
    };
    let b32 = |v: Option<Value>, what: &str| match v {
        Some(Value::Bytes(b)) => <[u8; 32]>::try_from(b).map_err(|b| err(&format!("{what}: {} bytes, expected 32", b.len()))),
        _ => Err(err(&format!("{what}: expected bstr"))),
    };
    let record_id = text(it.next(), "record id")?;
    let locator = text(it.next(), "locator")?;
    let sha256 = b32(it.next(), "digest")?;
    let key = qr::ContentKey::new(b32(it.next(), "content key")?);
    let category: Category = text(it.next(), "category")?.parse().map_err(|source| IndexError::Category { entry: i, source })?;
    let media_type = text(it.next(), "media type")?;
    Ok(IndexEntry { record_id, locator, sha256, key, category, media_type })
}
