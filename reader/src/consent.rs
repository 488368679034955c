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
//! Setting consent: prove the card genuine (credential + 9E), VERIFY PIN, sign with 9C, write
//! the token with this clinic's per-card management key, remember the version. Showing:
//! the token must verify with the 9C key **named in the verified credential**, be for that
//! patient and card, for this clinic, unexpired, and not older than the highest version the
//! clinic has seen for the patient.

use ciborium::Value;
use p256::ecdsa::VerifyingKey;

use crate::category::{self, Category};
use crate::audit::EventKind;
use crate::clinic::{self, ClinicState};
use crate::db::clinic_state::ConsentVersion;
use crate::cose_util::{self, Fields, ObjectError};
use crate::credential::VerifiedCredential;
use crate::keystore::Keystore;
use crate::piv::{PinBlock, Piv, Slot, tags};
use crate::transport::Transport;
use crate::Error;

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
    Scope(String),
    /// Bad request (days, scope).
    #[error("{0}")]
    Invalid(String),
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
            let c: Category = s.parse().map_err(|e: category::UnknownCategory| ConsentError::Scope(e.to_string()))?;
            if scope.contains(&c) {
                return Err(ConsentError::Scope(format!("{c} listed twice")));
            }
            scope.push(c);
        }
        let token_id = f.bytes(CTI)?;
        if token_id.len() != CTI_LEN {
            return Err(ObjectError::Payload { what: "consent token", why: format!("cti is {} bytes, expected {CTI_LEN}", token_id.len()) }.into());
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
                    return Err(ObjectError::Payload { what: "consent token", why: format!("version {v} outside 1..={MAX_VERSION}") }.into());
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
    on_card
        .unwrap_or(0)
        .max(highest.unwrap_or(0))
        .checked_add(1)
        .filter(|v| *v <= MAX_VERSION)
        .ok_or_else(|| ConsentError::Invalid(format!("no consent version is left above {MAX_VERSION}: issue the patient a new card")))
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

/// What to consent to.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    /// Categories (empty: revoke).
    pub scope: Vec<Category>,
    /// Validity in days (1..=3650).
    pub days: u32,
    /// The patient's PIN (9C needs it for the signature).
    pub pin: PinBlock,
    /// Now.
    pub now: i64,
}

/// A consent token on the card that passed every check, including the version check.
#[derive(Debug, Clone)]
pub struct ShownConsent {
    /// The card's verified credential.
    pub credential: VerifiedCredential,
    /// The token.
    pub token: ConsentToken,
    /// The highest version this clinic had seen before.
    pub highest_seen: Option<u64>,
}

impl ConsentError {
    /// The audit outcome of a refusal.
    #[must_use]
    pub fn outcome(&self) -> &'static str {
        match self {
            ConsentError::Missing => "no-token",
            ConsentError::Object(_) => "malformed",
            ConsentError::OtherSigner { .. } => "other-card",
            ConsentError::BadSignature => "bad-signature",
            ConsentError::Mismatch { .. } => "wrong-card",
            ConsentError::Audience { .. } => "other-clinic",
            ConsentError::Expired { .. } => "expired",
            ConsentError::Scope(_) => "bad-scope",
            ConsentError::Invalid(_) => "invalid-request",
        }
    }
}

fn stored<'a>(t: &'a ConsentToken, bytes: &'a [u8]) -> ConsentVersion<'a> {
    ConsentVersion { patient_id: &t.patient_id, version: t.version, token: bytes, scope: &t.scope, iat: t.issued_at, exp: t.expires_at }
}

/// Makes a new consent token on the card (a version above both the card's current token and
/// the clinic's highest), writes it, and remembers its version.
pub fn set<T: Transport>(piv: &mut Piv<T>, ks: &Keystore, req: &ConsentRequest) -> Result<ConsentToken, Error> {
    set_with_progress(piv, ks, req, &mut |_| Ok(()))
}

/// [`set`], calling `progress` after each step (`card-verified`, `pin-verified`, `signed`,
/// `written`); an error from it stops there (tests pull the card at a chosen step).
pub fn set_with_progress<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    req: &ConsentRequest,
    progress: &mut dyn FnMut(&'static str) -> Result<(), Error>,
) -> Result<ConsentToken, Error> {
    set_in(piv, ks, &ClinicState::new(ks), req, progress)
}

/// [`set_with_progress`] with the clinic state (and its audit actor) given: audits the card
/// verification, the PIN outcome and `consent.set` / `consent.revoked` (the latter in the same
/// transaction as the version it remembers).
pub fn set_in<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    state: &ClinicState,
    req: &ConsentRequest,
    progress: &mut dyn FnMut(&'static str) -> Result<(), Error>,
) -> Result<ConsentToken, Error> {
    if req.days == 0 || req.days > 3650 {
        return Err(ConsentError::Invalid("the consent validity must be 1 to 3650 days".into()).into());
    }
    state.ensure_open()?;
    let genuine = clinic::verify_own_card(piv, ks, state, req.now, None)?;
    let c = genuine.credential.credential().clone();
    progress("card-verified")?;
    let on_card = match piv.consent_token()? {
        Some(bytes) => verify_token(&bytes, &genuine.credential, ks.clinic_id(), i64::MIN).ok().map(|t| t.version),
        None => None,
    };
    let highest = state.highest_consent_version(&c.patient_id)?;
    let version = next_version(on_card, highest)?;
    let mut token_id = vec![0u8; CTI_LEN];
    getrandom::fill(&mut token_id).map_err(|e| Error::Random(e.to_string()))?;
    let token = ConsentToken {
        patient_id: c.patient_id.clone(),
        audience: ks.clinic_id().to_owned(),
        expires_at: req.now + i64::from(req.days) * 86_400,
        issued_at: req.now,
        token_id,
        scope: req.scope.clone(),
        version,
        card_serial: c.card_serial,
    };
    clinic::verify_pin_audited(piv, state, &c.card_serial.to_string(), "consent", &req.pin, req.now)?;
    progress("pin-verified")?;
    let key_9c: VerifyingKey = c.key_9c;
    let bytes = cose_util::sign(&token.to_cbor(), &key_9c, CONTENT_TYPE, |d| piv.sign_digest(Slot::Signature, d))?;
    progress("signed")?;
    piv.authenticate_management(&ks.card_management_key(c.card_serial)?)?;
    piv.put_data(tags::CONSENT_TOKEN, &bytes)?;
    let kind = if token.scope.is_empty() { EventKind::ConsentRevoked } else { EventKind::ConsentSet };
    state.note_consent(&stored(&token, &bytes), (kind, "ok"), req.now)?;
    progress("written")?;
    Ok(token)
}

/// Reads and checks the consent token on the card (see the module docs), and remembers its
/// version as the highest seen.
pub fn show<T: Transport>(piv: &mut Piv<T>, ks: &Keystore, now: i64) -> Result<ShownConsent, Error> {
    show_in(piv, ks, &ClinicState::new(ks), now)
}

/// [`show`] with the clinic state given: audits the card verification, a refused token
/// (`consent.refused`: other card, wrong card, expired, older version, ...) and a version seen
/// here for the first time.
pub fn show_in<T: Transport>(piv: &mut Piv<T>, ks: &Keystore, state: &ClinicState, now: i64) -> Result<ShownConsent, Error> {
    state.ensure_open()?;
    let genuine = clinic::verify_own_card(piv, ks, state, now, None)?;
    let c = genuine.credential.credential();
    let checked = match piv.consent_token() {
        Ok(Some(bytes)) => verify_token(&bytes, &genuine.credential, ks.clinic_id(), now).map(|t| (t, bytes)),
        Ok(None) => Err(ConsentError::Missing),
        Err(e) => return Err(e),
    };
    let (token, bytes) = match checked {
        Ok(x) => x,
        Err(e) => {
            let detail = format!("card={}", c.card_serial);
            state.audit(&[state.event(now, EventKind::ConsentRefused, &c.patient_id, e.outcome(), detail)])?;
            return Err(e.into());
        }
    };
    let kind = if token.scope.is_empty() { EventKind::ConsentRevoked } else { EventKind::ConsentSet };
    let highest_seen = state.note_consent(&stored(&token, &bytes), (kind, "seen"), now)?;
    Ok(ShownConsent { credential: genuine.credential, token, highest_seen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_version_after_the_largest_is_refused_instead_of_wrapping() {
        assert_eq!(next_version(None, None).ok(), Some(1));
        assert_eq!(next_version(Some(4), Some(7)).ok(), Some(8));
        assert!(matches!(next_version(Some(u64::MAX), None), Err(ConsentError::Invalid(_))));
        assert!(matches!(next_version(None, Some(MAX_VERSION)), Err(ConsentError::Invalid(_))));
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
        let bytes = cose_util::sign(&token.to_cbor(), &VerifyingKey::from(&k9c), CONTENT_TYPE, |d| {
            k9c.sign_prehash(d).map_err(|e| crate::Error::InvalidInput(e.to_string()))
        })?;
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
