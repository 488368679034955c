//! Consent on the card: setting a new token and showing (checking) the one there. Setting:
//! prove the card genuine (credential + 9E), VERIFY PIN, sign with 9C, write the token with this
//! clinic's per-card management key, remember the version. Showing: the token must verify with
//! the 9C key **named in the verified credential**, be for that patient and card, for this
//! clinic, unexpired, and not older than the highest version the clinic has seen for the
//! patient. The token format is [`crate::consent_token`], re-exported here.

pub use crate::consent_token::{CONTENT_TYPE, CTI_LEN, ConsentError, ConsentToken, MAX_VERSION, next_version, verify_token};

use p256::ecdsa::VerifyingKey;

use crate::Error;
use crate::audit::{EventKind, Outcome};
use crate::category::Category;
use crate::clinic::{self, ClinicState};
use crate::clinic_state::ConsentVersion;
use crate::cose_util;
use crate::credential::VerifiedCredential;
use crate::keystore::Keystore;
use crate::piv::{PinBlock, Piv, Slot, tags};
use crate::transport::Transport;

// Here rather than beside `ConsentError` in `consent_token`: the token format sits below the
// audit log in the layer order (`lib.rs`), and only the audited flows need the outcome.
impl ConsentError {
    /// The `consent.refused` outcome of a refused token.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            ConsentError::Missing => Outcome::NoToken,
            ConsentError::Object(_) => Outcome::Malformed,
            ConsentError::OtherSigner { .. } => Outcome::OtherCard,
            ConsentError::BadSignature => Outcome::BadSignature,
            ConsentError::Mismatch { .. } => Outcome::WrongCard,
            ConsentError::Audience { .. } => Outcome::OtherClinic,
            ConsentError::Expired { .. } => Outcome::Expired,
            ConsentError::Scope(_) | ConsentError::ScopeRepeated(_) => Outcome::BadScope,
            ConsentError::Validity | ConsentError::VersionsExhausted => Outcome::InvalidRequest,
        }
    }
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
        return Err(ConsentError::Validity.into());
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
    crate::random::fill(&mut token_id)?;
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
    state.note_consent(&stored(&token, &bytes), (kind, Outcome::Ok), req.now)?;
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
        Err(e) => return Err(e.into()),
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
    let highest_seen = state.note_consent(&stored(&token, &bytes), (kind, Outcome::Seen), now)?;
    Ok(ShownConsent { credential: genuine.credential, token, highest_seen })
}
