//! COSE_Sign1 helpers shared by the card credential and the consent token: signing through a
//! digest-signing closure (a software key or the card), strict parsing and verification through
//! the `qr` crate's COSE layer, and a strict integer-keyed CBOR map reader.
//!
//! Both objects carry a text content type (COSE header 3) in the protected header, so a
//! credential, a consent token and a QR pointer signed by related keys can never be taken for
//! one another.

use ciborium::Value;
use coset::{CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why a signed object (credential or consent token) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// Not a well-formed COSE_Sign1 (tag, array, headers, trailing bytes).
    #[error("{what} is not a valid COSE_Sign1: {source}")]
    Structure {
        what: &'static str,
        #[source]
        source: qr::cose::CoseError,
    },
    /// Not ES256 with a protected alg.
    #[error("{what}: {source}")]
    Algorithm {
        what: &'static str,
        #[source]
        source: qr::cose::AlgorithmError,
    },
    /// The protected content type is not the one this object must carry.
    #[error("{what}: content type {got:?}, expected {expected:?}")]
    ContentType { what: &'static str, expected: &'static str, got: String },
    /// No kid in the protected header.
    #[error("{what}: no kid in the protected header")]
    NoKid { what: &'static str },
    /// The signature does not verify with the key it must verify with.
    #[error("{what}: the signature does not verify with {key}")]
    BadSignature { what: &'static str, key: String },
    /// The payload is not a well-formed CBOR map.
    #[error("{what}: payload {source}")]
    Claims {
        what: &'static str,
        #[source]
        source: qr::claims::ClaimsError,
    },
    /// The payload is a CBOR map, but not with the claims this object must carry (the text says
    /// which claim and why).
    #[error("{what}: payload {why}")]
    Payload { what: &'static str, why: String },
}

/// A signing failure. `E` is the signer's own error (the card client's, or a software key's),
/// kept typed so each layer can wrap it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError<E: std::error::Error + 'static> {
    /// The signer (card or software key) failed.
    #[error(transparent)]
    Signer(E),
    /// The signature returned does not verify with the key it must come from (a card can answer
    /// garbage): nothing was made.
    #[error("the signature made does not verify with the signer's public key: refusing it")]
    WrongSignature,
    /// The signed object could not be encoded.
    #[error("encoding the COSE_Sign1 failed: {0}")]
    Encode(#[source] coset::CoseError),
}

/// Builds and signs a tagged COSE_Sign1 (protected: alg ES256, kid, content type) over
/// `payload`. `sign` receives SHA-256 of the Sig_structure and returns the signature; it is
/// checked against `public` before the object is returned (a card can answer garbage).
pub fn sign<E: std::error::Error + 'static>(
    payload: &[u8],
    public: &VerifyingKey,
    content_type: &str,
    sign: impl FnOnce(&[u8; 32]) -> Result<Signature, E>,
) -> Result<Vec<u8>, SignError<E>> {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(qr::kid_for(public).to_vec())
        .content_type(content_type.to_owned())
        .build();
    let unsigned = CoseSign1Builder::new().protected(protected).payload(payload.to_vec()).build();
    let digest: [u8; 32] = Sha256::digest(unsigned.tbs_data(b"")).into();
    let sig = sign(&digest).map_err(SignError::Signer)?;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    public.verify_prehash(&digest, &sig).map_err(|_| SignError::WrongSignature)?;
    let signed = CoseSign1 { signature: sig.to_bytes().to_vec(), ..unsigned };
    signed.to_tagged_vec().map_err(SignError::Encode)
}

/// A parsed, not yet verified COSE_Sign1 whose structure, algorithm and content type are right.
pub struct Parsed {
    /// The message (protected header bytes as received).
    pub msg: CoseSign1,
    /// The kid from the protected header.
    pub kid: Vec<u8>,
}

/// Parses strictly (via `qr::cose`), requires ES256 in the protected header, the given content
/// type and a protected kid.
pub fn parse(bytes: &[u8], what: &'static str, content_type: &'static str) -> Result<Parsed, ObjectError> {
    let (msg, _tagging) = qr::cose::parse(bytes).map_err(|source| ObjectError::Structure { what, source })?;
    qr::cose::check_algorithm(&msg, true).map_err(|source| ObjectError::Algorithm { what, source })?;
    match &msg.protected.header.content_type {
        Some(coset::RegisteredLabel::Text(t)) if t == content_type => {}
        Some(other) => {
            return Err(ObjectError::ContentType { what, expected: content_type, got: format!("{other:?}") });
        }
        None => return Err(ObjectError::ContentType { what, expected: content_type, got: "none".into() }),
    }
    let kid = msg.protected.header.key_id.clone();
    if kid.is_empty() {
        return Err(ObjectError::NoKid { what });
    }
    Ok(Parsed { msg, kid })
}

impl Parsed {
    /// Whether the signature verifies with `key` (over the bytes as received).
    #[must_use]
    pub fn verifies_with(&self, key: &VerifyingKey) -> bool {
        qr::cose::signature_verifies(&self.msg, b"", key)
    }
    /// The payload (present: `parse` refuses detached payloads).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.msg.payload.as_deref().unwrap_or_default()
    }
}

/// Integer-keyed fields of a CBOR map, each taken at most once; [`Fields::finish`] refuses
/// leftovers (unknown keys).
pub struct Fields {
    what: &'static str,
    entries: Vec<(Value, Value)>,
}

impl Fields {
    /// Decodes `bytes` as exactly one CBOR map without duplicate keys or trailing data.
    pub fn decode(bytes: &[u8], what: &'static str) -> Result<Fields, ObjectError> {
        let entries = qr::claims::decode_claims_map(bytes).map_err(|source| ObjectError::Claims { what, source })?;
        Ok(Fields { what, entries })
    }
    fn take(&mut self, key: i64) -> Result<Value, ObjectError> {
        let pos = self
            .entries
            .iter()
            .position(|(k, _)| *k == Value::from(key))
            .ok_or(ObjectError::Payload { what: self.what, why: format!("has no key {key}") })?;
        Ok(self.entries.remove(pos).1)
    }
    fn wrong(&self, key: i64, expected: &str, got: &Value) -> ObjectError {
        ObjectError::Payload { what: self.what, why: format!("key {key}: expected {expected}, got {}", qr::claims::type_name(got)) }
    }
    /// A text string.
    pub fn text(&mut self, key: i64) -> Result<String, ObjectError> {
        match self.take(key)? {
            Value::Text(t) => Ok(t),
            v => Err(self.wrong(key, "a text string", &v)),
        }
    }
    /// A byte string.
    pub fn bytes(&mut self, key: i64) -> Result<Vec<u8>, ObjectError> {
        match self.take(key)? {
            Value::Bytes(b) => Ok(b),
            v => Err(self.wrong(key, "a byte string", &v)),
        }
    }
    /// An unsigned integer that fits `u64`.
    pub fn uint(&mut self, key: i64) -> Result<u64, ObjectError> {
        match self.take(key)? {
            Value::Integer(i) => u64::try_from(i).map_err(|_| ObjectError::Payload {
                what: self.what,
                why: format!("key {key}: expected an unsigned integer, got {}", i128::from(i)),
            }),
            v => Err(self.wrong(key, "an unsigned integer", &v)),
        }
    }
    /// A Unix time (unsigned integer within `i64`).
    pub fn time(&mut self, key: i64) -> Result<i64, ObjectError> {
        let v = self.uint(key)?;
        i64::try_from(v).map_err(|_| ObjectError::Payload { what: self.what, why: format!("key {key}: time {v} out of range") })
    }
    /// An array of text strings.
    pub fn text_array(&mut self, key: i64) -> Result<Vec<String>, ObjectError> {
        match self.take(key)? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Text(t) => Ok(t),
                    other => Err(self.wrong(key, "an array of text strings", &other)),
                })
                .collect(),
            v => Err(self.wrong(key, "an array", &v)),
        }
    }
    /// A P-256 public key as a 65-byte uncompressed SEC1 point.
    pub fn point(&mut self, key: i64) -> Result<VerifyingKey, ObjectError> {
        let b = self.bytes(key)?;
        if b.len() != 65 || b.first() != Some(&0x04) {
            return Err(ObjectError::Payload {
                what: self.what,
                why: format!("key {key}: expected a 65-byte uncompressed P-256 point, got {} bytes", b.len()),
            });
        }
        VerifyingKey::from_sec1_bytes(&b)
            .map_err(|_| ObjectError::Payload { what: self.what, why: format!("key {key}: point is not on P-256") })
    }
    /// Refuses any key not taken.
    pub fn finish(self) -> Result<(), ObjectError> {
        match self.entries.first() {
            Some((k, _)) => Err(ObjectError::Payload {
                what: self.what,
                why: format!(
                    "has an unknown key {}",
                    match k {
                        Value::Integer(i) => i128::from(*i).to_string(),
                        other => format!("<{}>", qr::claims::type_name(other)),
                    }
                ),
            }),
            None => Ok(()),
        }
    }
}

/// The 65-byte uncompressed point of `key` as a CBOR byte string.
#[must_use]
pub fn point_value(key: &VerifyingKey) -> Value {
    Value::Bytes(key.to_sec1_point(false).as_bytes().to_vec())
}

/// Encodes a map in the given order (callers list keys in RFC 8949 §4.2.1 order).
pub fn encode_map(entries: Vec<(i64, Value)>) -> Vec<u8> {
    let map = Value::Map(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect());
    qr::claims::cbor_to_vec(&map).unwrap_or_default()
}
