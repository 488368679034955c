//! Sealed records (the format, no storage): COSE_Encrypt0 (RFC 9052 §5.2) with A256GCM (RFC 9053 §4.1), one fresh
//! 32-byte content key and one fresh 12-byte nonce per record. See `docs/records.md`.
//!
//! ```text
//! COSE_Encrypt0 = 16([
//!   protected:   bstr .cbor { 1: 3 (A256GCM), -65537: record id (tstr), -65538: category (tstr) },
//!   unprotected: { 5: nonce (bstr .size 12) },
//!   ciphertext:  bstr            ; AES-256-GCM(plaintext) ‖ 16-byte tag
//! ])
//! external_aad = CBOR ["MedCard record v1", patient id, category, record id]
//! plaintext    = CBOR { 1: record id, 2: patient id, 3: category, 4: media type,
//!                       5: created (Unix s), 6: author, 7: document (bstr) }
//! ```
//! The record id and category are in the protected header so a holder of the key and the
//! patient id (a bedside device with a QR code) can open a record without the clinic index; the
//! patient id is not written in clear. The opener checks the header, the AAD and the plaintext
//! metadata agree.
//!
//! Memory: [`seal_file`] reads the document straight into the output buffer and encrypts it in
//! place; [`open`] decrypts in place in the buffer it is given: one copy of the record in memory.

pub mod keywrap;

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use coset::{CborSerializable, EncryptionContext, Header, HeaderBuilder, ProtectedHeader, iana};
use zeroize::Zeroizing;

pub use qr::ContentKey;

use crate::category::Category;
use crate::cbor::{self, CborError, Cursor};

/// COSE tag for COSE_Encrypt0.
pub const TAG_ENCRYPT0: u64 = 16;
/// Private header label carrying the record id.
pub const LABEL_RECORD_ID: i64 = -65537;
/// Private header label carrying the category.
pub const LABEL_CATEGORY: i64 = -65538;
/// The AAD context string.
pub const AAD_CONTEXT: &str = "MedCard record v1";
/// The largest record accepted (container bytes).
pub const MAX_RECORD: u64 = 1 << 30;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_PROTECTED: usize = 1024;
const MAX_TEXT: usize = 1024;

/// A record failure. Never contains key bytes or document contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The container is not the COSE_Encrypt0 this format specifies.
    #[error("record {record}: malformed COSE_Encrypt0: {source}")]
    Malformed {
        record: String,
        #[source]
        source: CborError,
    },
    /// A header is missing or has a value we do not accept.
    #[error("record {record}: header {field}: expected {expected}, got {got}")]
    Header { record: String, field: &'static str, expected: &'static str, got: String },
    /// Authentication failed: wrong key, wrong patient/category/record binding, or altered bytes.
    #[error(
        "record {record}: integrity check failed (AES-GCM tag mismatch): the record was altered, or the key or the patient/category/record binding is wrong"
    )]
    Integrity { record: String },
    /// The decrypted metadata contradicts the authenticated header/AAD.
    #[error("record {record}: metadata {field} is {got:?} but the header says {expected:?}")]
    Mismatch { record: String, field: &'static str, expected: String, got: String },
    /// The record or document is too large.
    #[error("record {record}: {len} bytes is larger than the limit of {limit} bytes")]
    TooLarge { record: String, len: u64, limit: u64 },
    /// A metadata text field empty or too long for sealing.
    #[error("invalid record metadata: {field} must be 1..={max} bytes, got {len}")]
    FieldLength { field: &'static str, len: usize, max: usize },
    /// A media type that is not `type/subtype`.
    #[error("invalid record metadata: media type {0:?} is not type/subtype")]
    MediaType(String),
    /// The protected header could not be encoded.
    #[error("invalid record metadata: protected header: {0}")]
    HeaderEncode(#[source] coset::CoseError),
    /// The protected header just encoded does not parse back.
    #[error("invalid record metadata: protected header does not re-parse: {0}")]
    HeaderReparse(#[source] coset::CoseError),
    /// Reading the document failed.
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] crate::random::RandomError),
}

/// The metadata sealed with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Random record id (32 lower-case hex digits from [`new_record_id`]).
    pub record_id: String,
    /// Patient id.
    pub patient_id: String,
    /// Category.
    pub category: Category,
    /// Media type of the document (e.g. `application/fhir+json`, `application/pdf`, `text/plain`).
    pub media_type: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Author (clinician or system id).
    pub author: String,
}

impl RecordMeta {
    fn check(&self) -> Result<(), RecordError> {
        for (name, v) in [("record id", &self.record_id), ("patient id", &self.patient_id), ("author", &self.author)] {
            if v.is_empty() || v.len() > MAX_TEXT {
                return Err(RecordError::FieldLength { field: name, len: v.len(), max: MAX_TEXT });
            }
        }
        if self.media_type.is_empty() || self.media_type.len() > MAX_TEXT || !self.media_type.contains('/') {
            return Err(RecordError::MediaType(self.media_type.clone()));
        }
        Ok(())
    }
}

/// A fresh random record id: 16 random bytes as 32 lower-case hex digits.
pub fn new_record_id() -> Result<String, RecordError> {
    let mut b = [0u8; 16];
    crate::random::fill(&mut b)?;
    Ok(hex::encode(b))
}

/// A fresh random content key.
pub fn new_content_key() -> Result<ContentKey, RecordError> {
    let mut b = Zeroizing::new([0u8; 32]);
    crate::random::fill(b.as_mut_slice())?;
    Ok(ContentKey::new(*b))
}

/// external_aad: CBOR `["MedCard record v1", patient id, category, record id]`.
#[must_use]
pub fn external_aad(patient_id: &str, category: Category, record_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + patient_id.len() + record_id.len());
    cbor::write_head(&mut out, cbor::ARRAY, 4);
    cbor::write_text(&mut out, AAD_CONTEXT);
    cbor::write_text(&mut out, patient_id);
    cbor::write_text(&mut out, category.as_str());
    cbor::write_text(&mut out, record_id);
    out
}

fn protected_header(record_id: &str, category: Category) -> Result<Vec<u8>, RecordError> {
    let header = HeaderBuilder::new()
        .algorithm(iana::Algorithm::A256GCM)
        .value(LABEL_RECORD_ID, ciborium::Value::Text(record_id.to_owned()))
        .value(LABEL_CATEGORY, ciborium::Value::Text(category.as_str().to_owned()))
        .build();
    header.to_vec().map_err(RecordError::HeaderEncode)
}

fn enc_structure(protected: &[u8], aad: &[u8]) -> Result<Vec<u8>, RecordError> {
    let header = Header::from_slice(protected).map_err(RecordError::HeaderReparse)?;
    let protected = ProtectedHeader { original_data: Some(protected.to_vec()), header };
    Ok(coset::enc_structure_data(EncryptionContext::CoseEncrypt0, protected, aad))
}

/// Plaintext prefix (map head, metadata entries, document key and bstr head) for a document of
/// `doc_len` bytes.
fn plaintext_prefix(meta: &RecordMeta, doc_len: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(128 + meta.patient_id.len() + meta.author.len());
    cbor::write_head(&mut p, cbor::MAP, 7);
    cbor::write_int(&mut p, 1);
    cbor::write_text(&mut p, &meta.record_id);
    cbor::write_int(&mut p, 2);
    cbor::write_text(&mut p, &meta.patient_id);
    cbor::write_int(&mut p, 3);
    cbor::write_text(&mut p, meta.category.as_str());
    cbor::write_int(&mut p, 4);
    cbor::write_text(&mut p, &meta.media_type);
    cbor::write_int(&mut p, 5);
    cbor::write_int(&mut p, meta.created);
    cbor::write_int(&mut p, 6);
    cbor::write_text(&mut p, &meta.author);
    cbor::write_int(&mut p, 7);
    cbor::write_head(&mut p, cbor::BSTR, doc_len);
    p
}

/// Seals a document: `fill` must write exactly `doc_len` bytes into the slice it is given.
fn seal_with(
    meta: &RecordMeta,
    doc_len: u64,
    key: &ContentKey,
    fill: impl FnOnce(&mut [u8]) -> Result<(), RecordError>,
) -> Result<Vec<u8>, RecordError> {
    meta.check()?;
    let prefix = plaintext_prefix(meta, doc_len);
    let pt_len = (prefix.len() as u64).saturating_add(doc_len);
    let ct_len = pt_len.saturating_add(TAG_LEN as u64);
    if ct_len.saturating_add(512) > MAX_RECORD {
        return Err(RecordError::TooLarge { record: meta.record_id.clone(), len: ct_len, limit: MAX_RECORD });
    }
    let protected = protected_header(&meta.record_id, meta.category)?;
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill(&mut nonce)?;

    let mut out = Vec::new();
    cbor::write_head(&mut out, cbor::TAG, TAG_ENCRYPT0);
    cbor::write_head(&mut out, cbor::ARRAY, 3);
    cbor::write_bytes(&mut out, &protected);
    cbor::write_head(&mut out, cbor::MAP, 1);
    cbor::write_int(&mut out, 5);
    cbor::write_bytes(&mut out, &nonce);
    cbor::write_head(&mut out, cbor::BSTR, ct_len);
    let ct_start = out.len();
    let total = usize::try_from(ct_len).ok().and_then(|n| n.checked_add(ct_start)).ok_or(RecordError::TooLarge {
        record: meta.record_id.clone(),
        len: ct_len,
        limit: MAX_RECORD,
    })?;
    out.reserve_exact(total - out.len());
    out.extend_from_slice(&prefix);
    let doc_start = out.len();
    out.resize(total - TAG_LEN, 0);
    fill(out.get_mut(doc_start..).unwrap_or_default())?;

    let aad = enc_structure(&protected, &external_aad(&meta.patient_id, meta.category, &meta.record_id))?;
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    let region = out.get_mut(ct_start..).unwrap_or_default();
    let tag = cipher.encrypt_inout_detached(&Nonce::from(nonce), &aad, region.into()).map_err(|_| RecordError::TooLarge {
        record: meta.record_id.clone(),
        len: ct_len,
        limit: MAX_RECORD,
    })?;
    out.extend_from_slice(tag.as_slice());
    Ok(out)
}

/// Seals `document` with `meta` under `key` into a tagged COSE_Encrypt0.
pub fn seal(meta: &RecordMeta, document: &[u8], key: &ContentKey) -> Result<Vec<u8>, RecordError> {
    seal_with(meta, document.len() as u64, key, |dst| {
        dst.copy_from_slice(document);
        Ok(())
    })
}

/// Seals the file at `path`, reading it straight into the container buffer (one copy in memory).
pub fn seal_file(meta: &RecordMeta, path: &Path, key: &ContentKey) -> Result<Vec<u8>, RecordError> {
    let io = |source| RecordError::Io { path: path.display().to_string(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    seal_with(meta, len, key, |dst| {
        f.read_exact(dst).map_err(|source| RecordError::Io { path: path.display().to_string(), source })?;
        // The file must not have grown meanwhile.
        let mut probe = [0u8; 1];
        match f.read(&mut probe) {
            Ok(0) => Ok(()),
            Ok(_) => Err(RecordError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other("the file grew while it was being read"),
            }),
            Err(source) => Err(RecordError::Io { path: path.display().to_string(), source }),
        }
    })
}

/// What the container says before decryption (authenticated only once [`open`] succeeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Record id from the protected header.
    pub record_id: String,
    /// Category from the protected header.
    pub category: Category,
    protected: Range<usize>,
    nonce: [u8; NONCE_LEN],
    ciphertext: Range<usize>,
}

/// Parses the container structure strictly (tag 16 or untagged, 3-array, headers, no trailing
/// bytes). `name` is used in errors (a locator or file name).
pub fn parse_envelope(bytes: &[u8], name: &str) -> Result<Envelope, RecordError> {
    let malformed = |source| RecordError::Malformed { record: name.to_owned(), source };
    let header_err = |field, expected, got: String| RecordError::Header { record: name.to_owned(), field, expected, got };
    let mut c = Cursor::new(bytes);
    if bytes.first() == Some(&0xD0) {
        c.head("tag 16").map_err(malformed)?;
    }
    let n = c.expect(cbor::ARRAY, "COSE_Encrypt0 array").map_err(malformed)?;
    if n != 3 {
        return Err(header_err("structure", "an array of 3 items", format!("{n} items")));
    }
    let protected = c.bytes_range("protected header bstr").map_err(malformed)?;
    let pbytes = bytes.get(protected.clone()).unwrap_or_default();
    if pbytes.len() > MAX_PROTECTED {
        return Err(header_err("protected", "at most 1024 bytes", format!("{} bytes", pbytes.len())));
    }
    let header = Header::from_slice(pbytes).map_err(|e| header_err("protected", "a header map", e.to_string()))?;
    if header.alg != Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::A256GCM)) {
        return Err(header_err("alg", "A256GCM (3)", format!("{:?}", header.alg)));
    }
    if !header.crit.is_empty() {
        return Err(header_err("crit", "none", format!("{:?}", header.crit)));
    }
    let mut record_id = None;
    let mut category = None;
    for (label, value) in &header.rest {
        match (label, value) {
            (coset::Label::Int(LABEL_RECORD_ID), ciborium::Value::Text(t)) if record_id.is_none() => record_id = Some(t.clone()),
            (coset::Label::Int(LABEL_CATEGORY), ciborium::Value::Text(t)) if category.is_none() => {
                category = Some(t.parse::<Category>().map_err(|e| header_err("category", "a known category", e.got))?)
            }
            (l, _) => return Err(header_err("protected", "only alg, record id and category", format!("{l:?}"))),
        }
    }
    let record_id = record_id.ok_or_else(|| header_err("record id (-65537)", "a text string", "nothing".into()))?;
    let category = category.ok_or_else(|| header_err("category (-65538)", "a text string", "nothing".into()))?;
    let entries = c.expect(cbor::MAP, "unprotected header map").map_err(malformed)?;
    if entries != 1 {
        return Err(header_err("unprotected", "exactly the IV (5)", format!("{entries} entries")));
    }
    let label = c.int("unprotected label").map_err(malformed)?;
    if label != 5 {
        return Err(header_err("unprotected", "the IV (5)", format!("label {label}")));
    }
    let iv = c.bytes("IV").map_err(malformed)?;
    let nonce: [u8; NONCE_LEN] = iv.try_into().map_err(|_| header_err("IV", "12 bytes", format!("{} bytes", iv.len())))?;
    let ciphertext = c.bytes_range("ciphertext bstr").map_err(malformed)?;
    c.finish().map_err(malformed)?;
    if ciphertext.len() < TAG_LEN {
        return Err(header_err("ciphertext", "at least the 16-byte tag", format!("{} bytes", ciphertext.len())));
    }
    Ok(Envelope { record_id, category, protected, nonce, ciphertext })
}

/// A decrypted record. The buffer is zeroized on drop.
pub struct OpenedRecord {
    /// Authenticated metadata.
    pub meta: RecordMeta,
    buf: Zeroizing<Vec<u8>>,
    doc: Range<usize>,
}

impl std::fmt::Debug for OpenedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenedRecord {{ meta: {:?}, document: <{} bytes> }}", self.meta, self.doc.len())
    }
}

impl OpenedRecord {
    /// The document bytes.
    #[must_use]
    pub fn document(&self) -> &[u8] {
        self.buf.get(self.doc.clone()).unwrap_or_default()
    }
}

/// Decrypts `bytes` (taken by value and decrypted in place) with `key`, checking that the record
/// belongs to `patient_id`. `name` is used in errors. The caller checks the category against
/// what it is allowed to see.
pub fn open(bytes: Vec<u8>, patient_id: &str, key: &ContentKey, name: &str) -> Result<OpenedRecord, RecordError> {
    let mut buf = Zeroizing::new(bytes);
    if buf.len() as u64 > MAX_RECORD {
        return Err(RecordError::TooLarge { record: name.to_owned(), len: buf.len() as u64, limit: MAX_RECORD });
    }
    let env = parse_envelope(&buf, name)?;
    let aad = enc_structure(buf.get(env.protected.clone()).unwrap_or_default(), &external_aad(patient_id, env.category, &env.record_id))?;
    let integrity = || RecordError::Integrity { record: name.to_owned() };
    let body_end = env.ciphertext.end - TAG_LEN;
    let tag = Tag::try_from(buf.get(body_end..env.ciphertext.end).unwrap_or_default()).map_err(|_| integrity())?;
    let region = buf.get_mut(env.ciphertext.start..body_end).ok_or_else(integrity)?;
    let cipher = Aes256Gcm::new(key.as_bytes().into());
    cipher.decrypt_inout_detached(&Nonce::from(env.nonce), &aad, region.into(), &tag).map_err(|_| integrity())?;

    // Parse the plaintext (authenticated, but still checked strictly).
    let pt = buf.get(env.ciphertext.start..body_end).unwrap_or_default();
    let malformed = |source| RecordError::Malformed { record: name.to_owned(), source };
    let mut c = Cursor::new(pt);
    let n = c.expect(cbor::MAP, "plaintext map").map_err(malformed)?;
    if n != 7 {
        return Err(RecordError::Header {
            record: name.to_owned(),
            field: "plaintext",
            expected: "a map of 7 entries",
            got: format!("{n} entries"),
        });
    }
    let key_at = |want: i64, c: &mut Cursor<'_>| -> Result<(), RecordError> {
        let got = c.int("plaintext key").map_err(malformed)?;
        if got == want {
            Ok(())
        } else {
            Err(RecordError::Header {
                record: name.to_owned(),
                field: "plaintext",
                expected: "keys 1..7 in order",
                got: format!("key {got} where {want} belongs"),
            })
        }
    };
    key_at(1, &mut c)?;
    let record_id = c.text("record id").map_err(malformed)?.to_owned();
    key_at(2, &mut c)?;
    let pid = c.text("patient id").map_err(malformed)?.to_owned();
    key_at(3, &mut c)?;
    let category = c.text("category").map_err(malformed)?.to_owned();
    key_at(4, &mut c)?;
    let media_type = c.text("media type").map_err(malformed)?.to_owned();
    key_at(5, &mut c)?;
    let created = c.int("created").map_err(malformed)?;
    key_at(6, &mut c)?;
    let author = c.text("author").map_err(malformed)?.to_owned();
    key_at(7, &mut c)?;
    let doc = c.bytes_range("document").map_err(malformed)?;
    c.finish().map_err(malformed)?;
    let mismatch = |field, expected: &str, got: &str| RecordError::Mismatch {
        record: name.to_owned(),
        field,
        expected: expected.to_owned(),
        got: got.to_owned(),
    };
    if record_id != env.record_id {
        return Err(mismatch("record id", &env.record_id, &record_id));
    }
    if pid != patient_id {
        return Err(mismatch("patient id", patient_id, &pid));
    }
    if category != env.category.as_str() {
        return Err(mismatch("category", env.category.as_str(), &category));
    }
    let doc = (doc.start + env.ciphertext.start)..(doc.end + env.ciphertext.start);
    let meta = RecordMeta { record_id, patient_id: pid, category: env.category, media_type, created, author };
    Ok(OpenedRecord { meta, buf, doc })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests;
