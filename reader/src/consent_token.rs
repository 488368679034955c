//! The consent token (object `5FFFC1`): a COSE_Sign1 made **on the card** with the 9C key (PIN
//! before each signature) over CWT claims. Byte layout: `docs/consent-token.md`.
//!
//! ```cddl
//! consent-claims = {
//!   2 => tstr,             ; sub: patient id (must equal the credential's)
//!   3 => tstr,             ; aud: clinic id the consent is given to
//!   4 => uint,             ; exp
//!   6 => uint,             ; iat
//!   7 => bstr .size 16,    ; cti: token id (random)
//!   -65620 => [* tstr],    ; scope: record categories (empty = consent revoked)
//!   -65621 => uint,        ; version: 1, 2, ... per patient; higher replaces lower
//!   -65622 => uint,        ; card serial
//! }
//! ```
//! Protected header: `{1: -7, 3: "application/medcard-consent+cwt", 4: kid(9C key)}`.
//!
//! This module is the token alone (claims, parsing, verification against a verified credential,
//! the next version); setting and showing it on a card are [`crate::consent`].

use ciborium::Value;

use crate::category::{self, Category};
use crate::cose_util::{self, Fields, ObjectError};
use crate::credential::VerifiedCredential;

/// The protected content type of a consent token.
pub const CONTENT_TYPE: &str = "application/medcard-consent+cwt";

const SUB: i64 = 2;
const AUD: i64 = 3;
const EXP: i64 = 4;
const IAT: i64 = 6;
const CTI: i64 = 7;
const SCOPE: i64 = -65_620;
const VERSION: i64 = -65_621;
const SERIAL: i64 = -65_622;
/// Length of the token id.
pub const CTI_LEN: usize = 16;

/// The claims of a consent token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentToken {
    /// Patient id.
    pub patient_id: String,
    /// The clinic the consent is given to.
    pub audience: String,
    /// Not valid after.
    pub expires_at: i64,
    /// Made at.
    pub issued_at: i64,
    /// Random token id (hex in JSON).
    #[serde(serialize_with = "hex_ser")]
    pub token_id: Vec<u8>,
    /// Consented categories; empty = revoked.
    #[serde(serialize_with = "scope_ser")]
    pub scope: Vec<Category>,
    /// Version per patient.
    pub version: u64,
    /// Card serial.
    pub card_serial: u32,
}

fn hex_ser<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn scope_ser<S: serde::Serializer>(v: &[Category], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|c| c.as_str()))
}

/// Why a consent token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// No token on the card.
    #[error("the card holds no consent token: set one with `medcard consent set`")]
    Missing,
    /// Structure, algorithm, content type, payload.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Signed by a key other than this card's 9C key.
    #[error("consent token was not made by this card (signed by kid {got}, this card's signature key is {expected}): refusing it")]
    OtherSigner { expected: String, got: String },
    /// Signature does not verify.
    #[error("consent token signature does not verify with this card's signature key: the token was altered")]
    BadSignature,
    /// For another patient or card.
    #[error("consent token is for {what} {got}, but the card is {expected}")]
    Mismatch { what: &'static str, expected: String, got: String },
    /// Given to another clinic.
    #[error("consent token is for clinic {got}, not this clinic ({expected})")]
    Audience { expected: String, got: String },
    /// Expired.
    #[error("consent token expired at {expires_at} (now {now}): ask the patient to renew it")]
    Expired { expires_at: i64, now: i64 },
    /// A scope entry is not a known category.
    #[error("consent token scope: {0}")]
    Scope(#[from] category::UnknownCategory),
    /// A scope entry listed twice.
    #[error("consent token scope: {0} listed twice")]
    ScopeRepeated(Category),
    /// A validity outside 1 to 3650 days.
    #[error("the consent validity must be 1 to 3650 days")]
    Validity,
    /// The patient's consent version reached the largest one.
    #[error("no consent version is left above {MAX_VERSION}: issue the patient a new card")]
    VersionsExhausted,
}

impl ConsentToken {
    /// The CBOR claims (deterministic order).
    #[must_use]
    pub fn to_cbor(&self) -> Vec<u8> {
        cose_util::encode_map(vec![
            (SUB, Value::Text(self.patient_id.clone())),
            (AUD, Value::Text(self.audience.clone())),
            (EXP, Value::from(self.expires_at)),
            (IAT, Value::from(self.issued_at)),
            (CTI, Value::Bytes(self.token_id.clone())),
            (SCOPE, Value::Array(self.scope.iter().map(|c| Value::Text(c.as_str().to_owned())).collect())),
            (VERSION, Value::from(self.version)),
            (SERIAL, Value::from(self.card_serial)),
        ])
    }

    /// Decodes the claims strictly.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, ConsentError> {
        let mut f = Fields::decode(bytes, "consent token")?;
        let scope_text = f.text_array(SCOPE)?;
        let mut scope = Vec::new();
        for s in scope_text {
            let c: Category = s.parse()?;
            if scope.contains(&c) {
                return Err(ConsentError::ScopeRepeated(c));
            }
            scope.push(c);
        }
        let token_id = f.bytes(CTI)?;
        if token_id.len() != CTI_LEN {
            return Err(ObjectError::Payload {
                what: "consent token",
                why: format!("cti is {} bytes, expected {CTI_LEN}", token_id.len()),
            }
            .into());
        }
        let serial = f.uint(SERIAL)?;
        let t = ConsentToken {
            patient_id: f.text(SUB)?,
            audience: f.text(AUD)?,
            expires_at: f.time(EXP)?,
            issued_at: f.time(IAT)?,
            token_id,
            scope,
            version: match f.uint(VERSION)? {
                v @ 1..=MAX_VERSION => v,
                v => {
                    return Err(
                        ObjectError::Payload { what: "consent token", why: format!("version {v} outside 1..={MAX_VERSION}") }.into()
                    );
                }
            },
            card_serial: u32::try_from(serial)
                .map_err(|_| ObjectError::Payload { what: "consent token", why: format!("card serial {serial} over 32 bits") })?,
        };
        f.finish()?;
        Ok(t)
    }
}

/// The highest consent version: versions are stored as SQLite integers (`i64`).
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// The version of a new token: one above both the card's and the clinic's highest, refused
/// (not wrapped, not saturated) when none is left.
pub fn next_version(on_card: Option<u64>, highest: Option<u64>) -> Result<u64, ConsentError> {
    on_card.unwrap_or(0).max(highest.unwrap_or(0)).checked_add(1).filter(|v| *v <= MAX_VERSION).ok_or(ConsentError::VersionsExhausted)
}

/// Verifies token `bytes` against the card's verified credential, for `clinic_id`, at `now`
/// (no version check: see [`ClinicState::note_consent`]).
pub fn verify_token(bytes: &[u8], cred: &VerifiedCredential, clinic_id: &str, now: i64) -> Result<ConsentToken, ConsentError> {
    let c = cred.credential();
    let parsed = cose_util::parse(bytes, "consent token", CONTENT_TYPE)?;
    let expected_kid = qr::kid_for(&c.key_9c);
    if parsed.kid != expected_kid {
        return Err(ConsentError::OtherSigner { expected: hex::encode(expected_kid), got: hex::encode(&parsed.kid) });
    }
    if !parsed.verifies_with(&c.key_9c) {
        return Err(ConsentError::BadSignature);
    }
    let t = ConsentToken::from_cbor(parsed.payload())?;
    if t.patient_id != c.patient_id {
        return Err(ConsentError::Mismatch { what: "patient", expected: c.patient_id.clone(), got: t.patient_id });
    }
    if t.card_serial != c.card_serial {
        return Err(ConsentError::Mismatch { what: "card serial", expected: c.card_serial.to_string(), got: t.card_serial.to_string() });
    }
    if t.audience != clinic_id {
        return Err(ConsentError::Audience { expected: clinic_id.to_owned(), got: t.audience });
    }
    if now > t.expires_at {
        return Err(ConsentError::Expired { expires_at: t.expires_at, now });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_version_after_the_largest_is_refused_instead_of_wrapping() {
        assert_eq!(next_version(None, None).ok(), Some(1));
        assert_eq!(next_version(Some(4), Some(7)).ok(), Some(8));
        assert!(matches!(next_version(Some(u64::MAX), None), Err(ConsentError::VersionsExhausted)));
        assert!(matches!(next_version(None, Some(MAX_VERSION)), Err(ConsentError::VersionsExhausted)));
    }

    #[test]
    fn consent_given_to_another_clinic_is_refused_on_this_clinics_own_card() -> Result<(), Box<dyn std::error::Error>> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        use p256::ecdsa::{SigningKey, VerifyingKey};
        let key = |b: u8| SigningKey::from_slice(&[b; 32]);
        let (issuer, k9c) = (key(9)?, key(2)?);
        let cred = crate::credential::CardCredential {
            issuer: "clinic-a".into(),
            patient_id: "P-1".into(),
            expires_at: 2_000_000_000,
            not_before: 1,
            issued_at: 1,
            card_serial: 5,
            key_9a: VerifyingKey::from(&key(1)?),
            key_9c: VerifyingKey::from(&k9c),
            key_9e: VerifyingKey::from(&key(3)?),
        };
        let mut trust = qr::TrustList::new();
        trust.add_key("clinic-a", VerifyingKey::from(&issuer));
        let verified = crate::credential::verify(&cred.sign(&issuer)?, &trust, 10)?;
        let token = ConsentToken {
            patient_id: "P-1".into(),
            audience: "clinic-z".into(),
            expires_at: 1_000,
            issued_at: 1,
            token_id: vec![7; CTI_LEN],
            scope: vec![],
            version: 1,
            card_serial: 5,
        };
        let bytes = cose_util::sign(&token.to_cbor(), &VerifyingKey::from(&k9c), CONTENT_TYPE, |d| k9c.sign_prehash(d))?;
        let err = verify_token(&bytes, &verified, "clinic-a", 10);
        assert!(matches!(&err, Err(ConsentError::Audience { got, .. }) if got == "clinic-z"), "{err:?}");
        assert!(verify_token(&bytes, &verified, "clinic-z", 10).is_ok());
        Ok(())
    }

    #[test]
    fn token_with_a_version_beyond_what_the_database_stores_is_refused() {
        let t = |version| ConsentToken {
            patient_id: "P-1".into(),
            audience: "clinic-a".into(),
            expires_at: 2,
            issued_at: 1,
            token_id: vec![7; CTI_LEN],
            scope: vec![],
            version,
            card_serial: 5,
        };
        assert!(ConsentToken::from_cbor(&t(3).to_cbor()).is_ok());
        for v in [0, MAX_VERSION + 1, u64::MAX] {
            assert!(matches!(ConsentToken::from_cbor(&t(v).to_cbor()), Err(ConsentError::Object(_))), "version {v}");
        }
    }
}
