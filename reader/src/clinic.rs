//! The audited card flows: [`issue_card`], [`verify_card`], [`verify_own_card`],
//! [`verify_pin_audited`], [`change_pin`], [`unblock_pin`]. Each audits every outcome, failures
//! included (ids and outcomes only, never a PIN), through the clinic state
//! ([`crate::clinic_state`], re-exported here).

pub use crate::clinic_state::{
    ClinicError, ClinicFiles, ClinicState, ConsentNote, ConsentVersion, DEFAULT_ACTOR, IssuedCard, Revocation, TRUST_DIR, trust_list,
};

use crate::Error;
use crate::audit::{Event, EventKind, Outcome};
use crate::credential::CredentialError;
use crate::issue::{self, GenuineCard, IssueRequest, IssueStep, Issued};
use crate::keystore::Keystore;
use crate::piv::{PinBlock, Piv, PivError};
use crate::sw::{CardError, Secret};
use crate::transport::Transport;

/// The audit outcome of a failed card authentication, and the card serial when the error names it.
#[must_use]
pub fn verification_outcome(e: &Error) -> (Outcome, Option<u32>) {
    match e {
        Error::Credential(c) => match c {
            CredentialError::Missing => (Outcome::NoCredential, None),
            CredentialError::UnknownIssuer { .. } | CredentialError::IssuerMismatch { .. } => (Outcome::Untrusted, None),
            CredentialError::BadSignature { .. } => (Outcome::BadSignature, None),
            CredentialError::OutsideValidity { .. } => (Outcome::Expired, None),
            CredentialError::SerialMismatch { card, .. } => (Outcome::SerialMismatch, Some(*card)),
            CredentialError::NotGenuine { serial } => (Outcome::NotGenuine, Some(*serial)),
            CredentialError::Revoked { serial } => (Outcome::Revoked, Some(*serial)),
            CredentialError::ForeignIssuer { serial, .. } => (Outcome::ForeignIssuer, Some(*serial)),
            CredentialError::PinNotProven { serial } => (Outcome::PinNotProven, Some(*serial)),
            CredentialError::StaffCard => (Outcome::WrongCard, None),
            _ => (Outcome::MalformedCredential, None),
        },
        Error::Card(PivError::Transport(_)) => (Outcome::TransportError, None),
        Error::Card(_) => (Outcome::CardError, None),
        Error::Clinic(_) => (Outcome::ClinicStateError, None),
        _ => (Outcome::Failed, None),
    }
}

/// Audits a failed issuance (`card.issued` or `staff.issued`) under the reader's name: the card's
/// serial may be unknown, and nothing was recorded.
pub fn audit_issue_failure<T: Transport>(
    piv: &mut Piv<T>,
    state: &ClinicState,
    now: i64,
    kind: EventKind,
    e: &Error,
    detail: String,
) -> Result<(), Error> {
    let outcome = match e {
        Error::Card(PivError::Transport(_)) => Outcome::TransportError,
        Error::Card(_) => Outcome::CardError,
        _ => Outcome::Failed,
    };
    state.audit(&[state.event(now, kind, &reader_subject(piv), outcome, detail)])?;
    Ok(())
}

/// The audit subject of a card whose serial is not known (or not trusted): `reader:<name>`.
pub fn reader_subject<T: Transport>(piv: &mut Piv<T>) -> String {
    format!("reader:{}", piv.transport_mut().reader_name())
}

/// Proves the card genuine ([`issue::authenticate_card`], revocations from `state`) and, with
/// `pin`, verifies the PIN; audits `card.verified` (ok, not-genuine, revoked, untrusted, ...) and
/// the PIN outcome (`card.pin_verified`, `card.pin_failed` with tries left, `card.blocked`).
/// Same APDUs as the unaudited check. An audit write failure fails the call.
pub fn verify_card<T: Transport>(
    piv: &mut Piv<T>,
    state: &ClinicState,
    trust: &qr::TrustList,
    now: i64,
    pin: Option<&PinBlock>,
) -> Result<GenuineCard, Error> {
    verify_card_from(piv, state, trust, now, pin, None)
}

/// [`verify_card`] for the flows that act on this clinic's records (kiosk check-in, consent):
/// the card must have been issued by this clinic (its credential signed by this clinic's own
/// issuer key and naming this clinic). A genuine card of a trusted partner clinic is refused as
/// [`CredentialError::ForeignIssuer`] (audited `card.verified` / `foreign-issuer`) before its
/// PIN is asked for: trusting a partner for referrals must not let its cards, whose patient ids
/// may be anything, reach this clinic's records.
pub fn verify_own_card<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    state: &ClinicState,
    now: i64,
    pin: Option<&PinBlock>,
) -> Result<GenuineCard, Error> {
    let trust = trust_list(ks)?;
    verify_card_from(piv, state, &trust, now, pin, Some(ks))
}

fn verify_card_from<T: Transport>(
    piv: &mut Piv<T>,
    state: &ClinicState,
    trust: &qr::TrustList,
    now: i64,
    pin: Option<&PinBlock>,
    own: Option<&Keystore>,
) -> Result<GenuineCard, Error> {
    state.ensure_open()?;
    let is_revoked = |s: u32| -> Result<bool, Error> { Ok(state.is_revoked(s)?) };
    let mut genuine = match issue::authenticate_card(piv, trust, &is_revoked, now, None) {
        Ok(g) => g,
        Err(e) => {
            let (outcome, serial) = verification_outcome(&e);
            let subject = serial.map_or_else(|| reader_subject(piv), |s| s.to_string());
            state.audit(&[state.event(now, EventKind::CardVerified, &subject, outcome, String::new())])?;
            return Err(e);
        }
    };
    let c = genuine.credential.credential();
    let serial = c.card_serial.to_string();
    if let Some(ks) = own
        && (genuine.credential.signer_key() != &ks.issuer_public() || c.issuer != ks.clinic_id())
    {
        let e: Error =
            CredentialError::ForeignIssuer { serial: c.card_serial, issuer: c.issuer.clone(), clinic: ks.clinic_id().to_owned() }.into();
        let detail = format!("patient={} issuer={}", c.patient_id, c.issuer);
        state.audit(&[state.event(now, EventKind::CardVerified, &serial, verification_outcome(&e).0, detail)])?;
        return Err(e);
    }
    let mut events =
        vec![state.event(now, EventKind::CardVerified, &serial, Outcome::Ok, format!("patient={} issuer={}", c.patient_id, c.issuer))];
    let pin_result = match pin {
        None => Ok(()),
        Some(p) => {
            let r = piv.verify_pin(p).map_err(Error::from).and_then(|()| issue::prove_pin(piv, &genuine.credential));
            events.extend(pin_events(state, now, &serial, "verify", &r, EventKind::PinVerified));
            r
        }
    };
    state.audit(&events)?;
    pin_result?;
    genuine.pin_verified = pin.is_some();
    Ok(genuine)
}

/// The audit events of a PIN operation's result: `ok_kind` on success; a wrong PIN is
/// `card.pin_failed` (tries left; `card.blocked` too at 0), a blocked PIN `card.blocked`.
pub fn pin_events(state: &ClinicState, now: i64, subject: &str, operation: &str, r: &Result<(), Error>, ok_kind: EventKind) -> Vec<Event> {
    let ev = |kind, outcome, detail: String| state.event(now, kind, subject, outcome, detail);
    match r {
        Ok(()) => vec![ev(ok_kind, Outcome::Ok, format!("operation={operation}"))],
        Err(Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left }))) => {
            let mut v = vec![ev(EventKind::PinFailed, Outcome::WrongPin, format!("operation={operation} tries_left={tries_left}"))];
            if *tries_left == 0 {
                v.push(ev(EventKind::CardBlocked, Outcome::Blocked, format!("operation={operation} secret=pin")));
            }
            v
        }
        Err(Error::Card(PivError::Card(CardError::PinBlocked))) => {
            vec![ev(EventKind::CardBlocked, Outcome::Blocked, format!("operation={operation} secret=pin"))]
        }
        Err(Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Puk, tries_left }))) => {
            let mut v = vec![ev(ok_kind, Outcome::WrongPuk, format!("operation={operation} tries_left={tries_left}"))];
            if *tries_left == 0 {
                v.push(ev(EventKind::CardBlocked, Outcome::Blocked, format!("operation={operation} secret=puk")));
            }
            v
        }
        Err(Error::Card(PivError::Card(CardError::PukBlocked))) => {
            vec![ev(EventKind::CardBlocked, Outcome::Blocked, format!("operation={operation} secret=puk"))]
        }
        Err(e) => vec![ev(ok_kind, verification_outcome(e).0, format!("operation={operation}"))],
    }
}

/// Verifies the PIN (as part of another flow, e.g. consent), auditing the outcome under `subject`.
pub fn verify_pin_audited<T: Transport>(
    piv: &mut Piv<T>,
    state: &ClinicState,
    subject: &str,
    operation: &str,
    pin: &PinBlock,
    now: i64,
) -> Result<(), Error> {
    state.ensure_open()?;
    let r = piv.verify_pin(pin).map_err(Error::from);
    state.audit(&pin_events(state, now, subject, operation, &r, EventKind::PinVerified))?;
    r
}

fn card_subject<T: Transport>(piv: &mut Piv<T>) -> String {
    match piv.select().and_then(|_| piv.serial()) {
        Ok(s) => s.to_string(),
        Err(_) => reader_subject(piv),
    }
}

/// Changes the PIN, audited (`card.pin_changed`, or `card.pin_failed` / `card.blocked`).
pub fn change_pin<T: Transport>(piv: &mut Piv<T>, state: &ClinicState, old: &PinBlock, new: &PinBlock, now: i64) -> Result<(), Error> {
    state.ensure_open()?;
    let subject = card_subject(piv);
    let r = piv.change_pin(old, new).map_err(Error::from);
    state.audit(&pin_events(state, now, &subject, "change-pin", &r, EventKind::PinChanged))?;
    r
}

/// Unblocks the PIN with the PUK and sets a new one, audited (`card.unblocked` ok or
/// wrong-puk with tries left, `card.blocked` when the PUK is blocked).
pub fn unblock_pin<T: Transport>(piv: &mut Piv<T>, state: &ClinicState, puk: &PinBlock, new: &PinBlock, now: i64) -> Result<(), Error> {
    state.ensure_open()?;
    let subject = card_subject(piv);
    let r = piv.unblock_pin(puk, new).map_err(Error::from);
    state.audit(&pin_events(state, now, &subject, "unblock", &r, EventKind::CardUnblocked))?;
    r
}

/// Issues the card ([`issue::issue`]) and records it with its `card.issued` audit entry in one
/// transaction; a failed issuance is audited as `card.issued` with the failure's outcome.
pub fn issue_card<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    state: &ClinicState,
    req: &IssueRequest,
    progress: &mut dyn FnMut(IssueStep) -> Result<(), Error>,
) -> Result<Issued, Error> {
    state.ensure_open()?;
    match issue::issue(piv, ks, req, progress) {
        Ok(issued) => {
            let c = &issued.credential;
            let card = IssuedCard::of(&c.card_claims(), c.patient_id.clone(), req.name.clone());
            state.record_issued(&card, &issued.credential_bytes, req.now)?;
            Ok(issued)
        }
        Err(e) => {
            audit_issue_failure(piv, state, req.now, EventKind::CardIssued, &e, format!("patient={}", req.patient_id))?;
            Err(e)
        }
    }
}
