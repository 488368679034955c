//! What a patient's card credential (`crate::credential`) and a staff credential
//! (`crate::staff::credential`) share: the claims that bind a holder to a card (issuer, holder id,
//! validity, card serial, the card's 9A/9C/9E keys, format version), encoded under the same keys
//! and decoded as strictly, and the lookup of the trusted issuer key that signed one. Each
//! credential adds its own claims and its own content type (so one never passes for the other),
//! and names its own errors.

use ciborium::Value;
use p256::ecdsa::VerifyingKey;
use qr::TrustList;
use qr::trust::TrustedKey;

use crate::cose_util::{self, Fields, ObjectError, Parsed};

/// The format version both credentials write and read.
pub const FORMAT_VERSION: u64 = 1;

const ISS: i64 = 1;
const SUB: i64 = 2;
const EXP: i64 = 4;
const NBF: i64 = 5;
const IAT: i64 = 6;
const FORMAT: i64 = -65_600;
const SERIAL: i64 = -65_601;
const KEY_9A: i64 = -65_602;
const KEY_9C: i64 = -65_603;
const KEY_9E: i64 = -65_604;

/// The shared claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardClaims {
    /// `iss`: the issuing clinic's id.
    pub issuer: String,
    /// `sub`: the patient id or the staff id.
    pub holder: String,
    /// Not valid after (Unix seconds).
    pub expires_at: i64,
    /// Not valid before.
    pub not_before: i64,
    /// Issued at.
    pub issued_at: i64,
    /// The card serial.
    pub card_serial: u32,
    /// 9A (PIV authentication) public key.
    pub key_9a: VerifyingKey,
    /// 9C (digital signature) public key.
    pub key_9c: VerifyingKey,
    /// 9E (card authentication) public key.
    pub key_9e: VerifyingKey,
}

/// Why the shared claims did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsProblem {
    /// Structure or a claim's type.
    Object(ObjectError),
    /// A format version other than [`FORMAT_VERSION`].
    Format(u64),
    /// A serial that is not 32 bits.
    Serial(u64),
}

impl From<ObjectError> for ClaimsProblem {
    fn from(e: ObjectError) -> Self {
        ClaimsProblem::Object(e)
    }
}

impl CardClaims {
    /// The shared map entries, in RFC 8949 §4.2.1 order; a credential appends its own (more
    /// negative keys) after them.
    #[must_use]
    pub fn entries(&self) -> Vec<(i64, Value)> {
        vec![
            (ISS, Value::Text(self.issuer.clone())),
            (SUB, Value::Text(self.holder.clone())),
            (EXP, Value::from(self.expires_at)),
            (NBF, Value::from(self.not_before)),
            (IAT, Value::from(self.issued_at)),
            (FORMAT, Value::from(FORMAT_VERSION)),
            (SERIAL, Value::from(self.card_serial)),
            (KEY_9A, cose_util::point_value(&self.key_9a)),
            (KEY_9C, cose_util::point_value(&self.key_9c)),
            (KEY_9E, cose_util::point_value(&self.key_9e)),
        ]
    }

    /// Takes the shared claims out of `f` (the caller takes its own, then [`Fields::finish`]).
    pub fn take(f: &mut Fields) -> Result<Self, ClaimsProblem> {
        let format = f.uint(FORMAT)?;
        if format != FORMAT_VERSION {
            return Err(ClaimsProblem::Format(format));
        }
        let serial = f.uint(SERIAL)?;
        let card_serial = u32::try_from(serial).map_err(|_| ClaimsProblem::Serial(serial))?;
        Ok(CardClaims {
            issuer: f.text(ISS)?,
            holder: f.text(SUB)?,
            expires_at: f.time(EXP)?,
            not_before: f.time(NBF)?,
            issued_at: f.time(IAT)?,
            card_serial,
            key_9a: f.point(KEY_9A)?,
            key_9c: f.point(KEY_9C)?,
            key_9e: f.point(KEY_9E)?,
        })
    }

    /// Whether `now` is within the validity.
    #[must_use]
    pub fn valid_at(&self, now: i64) -> bool {
        now >= self.not_before && now <= self.expires_at
    }
}

/// Why no trusted key signed a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerProblem {
    /// No trusted key has the kid (hex).
    UnknownIssuer(String),
    /// Keys with the kid exist, and none verifies the signature (kid hex).
    BadSignature(String),
}

/// The trusted key that signed `parsed`: looked up by its kid, the first that verifies.
pub fn trusted_signer<'t>(parsed: &'t Parsed, trust: &'t TrustList) -> Result<&'t TrustedKey, SignerProblem> {
    let kid_hex = hex::encode(&parsed.kid);
    let mut candidates = trust.lookup(&parsed.kid).peekable();
    if candidates.peek().is_none() {
        return Err(SignerProblem::UnknownIssuer(kid_hex));
    }
    candidates.find(|k| parsed.verifies_with(&k.key)).ok_or(SignerProblem::BadSignature(kid_hex))
}
