//! Staff cards on the card edge (`docs/staff.md`): issuing one ([`issue_staff_card`]), signing in
//! with one ([`sign_in`]: a fresh challenge to the card, its PIN, the revocation list and the
//! role's rights), the session that follows ([`StaffSession`]), and the card's signature on the
//! audit entries written in that session ([`SessionSigner`]).
//!
//! Every outcome is audited through the clinic state:
//!
//! | what | entry |
//! |---|---|
//! | staff card issued | `card.issued` (the cards table row) and `staff.issued`, subject the serial, detail `staff=<id> role=<role> credential=<hex>` |
//! | sign-in refused | `staff.session` subject the serial (or the reader), outcome why, detail `action=<action>` and the staff id and role when known |
//! | wrong or blocked PIN | `card.pin_failed` / `card.blocked`, subject the serial (as for patient cards) |
//! | signed in | `staff.session` `ok`, actor the staff card, detail `staff=<id> role=<role> action=<action>`, signed by the card |
//! | session ended | `staff.session_ended`, subject the staff actor, detail `why=card-removed|idle|signed-out` |

use p256::ecdsa::signature::hazmat::PrehashVerifier;

use crate::Error;
use crate::audit::{Event, EventKind, Outcome};
use crate::clinic::{self, ClinicState, IssuedCard};
use crate::credential::CredentialError;
use crate::issue::{self, IssueStep, IssuedStaff, StaffIssueRequest};
use crate::keystore::Keystore;
use crate::piv::{PinBlock, Piv, Slot};
use crate::staff::credential::{self as staff_credential, StaffCredentialError, VerifiedStaff};
use crate::staff::signed;
use crate::staff::{Action, Role};
use crate::transport::Transport;

/// The `patient_id` column of a staff card's row in the cards table: `staff:<role>:<staff id>`
/// (patient ids may not start with `staff:`).
pub const CARD_ROW_PREFIX: &str = "staff:";

/// The default idle time after which a session ends, in seconds.
pub const DEFAULT_IDLE_SECS: i64 = 300;

/// The cards-table holder text of a staff card.
#[must_use]
pub fn card_row_holder(role: Role, staff_id: &str) -> String {
    format!("{CARD_ROW_PREFIX}{role}:{staff_id}")
}

/// The role text and staff id of a cards-table holder text, if it is a staff card's.
#[must_use]
pub fn parse_card_row_holder(holder: &str) -> Option<(&str, &str)> {
    holder.strip_prefix(CARD_ROW_PREFIX)?.split_once(':')
}

/// Issues a staff card ([`issue::issue_staff`]) and records it: the cards-table row (whose
/// `card.issued` entry is written with it) and the `staff.issued` entry that carries the signed
/// credential, from which `audit verify` learns the card's key. A failure is audited as
/// `card.issued` with its outcome.
pub fn issue_staff_card<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    state: &ClinicState,
    req: &StaffIssueRequest,
    progress: &mut dyn FnMut(IssueStep) -> Result<(), Error>,
) -> Result<IssuedStaff, Error> {
    state.ensure_open()?;
    match issue::issue_staff(piv, ks, req, progress) {
        Ok(issued) => {
            let c = &issued.credential;
            let detail = format!("staff={} role={} credential={}", c.staff_id, c.role, hex::encode(&issued.credential_bytes));
            state.audit(&[state.event(req.now, EventKind::StaffIssued, &c.card_serial.to_string(), Outcome::Ok, detail)])?;
            let card = IssuedCard::of(&c.card_claims(), card_row_holder(req.role, &c.staff_id), c.name.clone());
            state.record_issued(&card, &issued.credential_bytes, req.now)?;
            Ok(issued)
        }
        Err(e) => {
            let detail = format!("staff={} role={}", req.staff_id, req.role);
            clinic::audit_issue_failure(piv, state, req.now, EventKind::StaffIssued, &e, detail)?;
            Err(e)
        }
    }
}

/// A signed-in member of staff. Holds no PIN and no record; the card stays where it is, and the
/// caller ends the session when the card leaves the reader or [`StaffSession::idle_at`] passes.
#[derive(Debug, Clone)]
pub struct StaffSession {
    staff: VerifiedStaff,
    role: Role,
    opened_at: i64,
    last_active: i64,
    idle_secs: i64,
}

impl StaffSession {
    /// The staff credential.
    #[must_use]
    pub fn staff(&self) -> &VerifiedStaff {
        &self.staff
    }
    /// The role the session acts in.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }
    /// The staff id.
    #[must_use]
    pub fn staff_id(&self) -> &str {
        &self.staff.credential().staff_id
    }
    /// The staff member's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.staff.credential().name
    }
    /// The card serial.
    #[must_use]
    pub fn serial(&self) -> u32 {
        self.staff.credential().card_serial
    }
    /// The actor text of this session's audit entries (`staff:<id>#<serial>`).
    #[must_use]
    pub fn actor(&self) -> String {
        signed::actor(self.staff_id(), self.serial())
    }
    /// When it was opened.
    #[must_use]
    pub fn opened_at(&self) -> i64 {
        self.opened_at
    }
    /// Whether the role may do `action`.
    #[must_use]
    pub fn permits(&self, action: Action) -> bool {
        self.role.permits(action)
    }
    /// Sets the idle limit (seconds, at least 10).
    #[must_use]
    pub fn with_idle_secs(mut self, secs: i64) -> Self {
        self.idle_secs = secs.max(10);
        self
    }
    /// When the session ends if nothing is done before.
    #[must_use]
    pub fn idle_at(&self) -> i64 {
        self.last_active.saturating_add(self.idle_secs)
    }
    /// Whether the session has been idle too long at `now`.
    #[must_use]
    pub fn is_idle(&self, now: i64) -> bool {
        now >= self.idle_at()
    }
    /// Notes activity at `now`.
    pub fn touch(&mut self, now: i64) {
        self.last_active = self.last_active.max(now);
    }

    /// Signs `event` with the card in `piv` (its 9A key, PIN verified at sign-in): sets the actor
    /// to this session's and appends the signature to the detail. A signature that does not
    /// verify with the credential's key is refused (a card can answer garbage).
    pub fn sign_event<T: Transport>(&self, piv: &mut Piv<T>, event: &mut Event) -> Result<(), Error> {
        event.actor = self.actor();
        let digest = signed::digest(event.time, event.kind.as_str(), &event.actor, &event.subject, event.outcome.as_str(), &event.detail);
        let sig = piv.sign_digest(Slot::PivAuth, &digest)?;
        if self.staff.credential().key_9a.verify_prehash(&digest, &sig).is_err() {
            return Err(Error::CardSignature(crate::cose_util::SignError::WrongSignature));
        }
        event.detail = signed::attach(&event.detail, &sig);
        Ok(())
    }
}

/// Something that signs audit entries in a staff member's name: a session and its card.
pub trait EntrySigner {
    /// The session.
    fn session(&self) -> &StaffSession;
    /// Signs `event` (see [`StaffSession::sign_event`]).
    fn sign(&mut self, event: &mut Event) -> Result<(), Error>;
}

/// A session with the card it was opened on.
pub struct SessionSigner<'a, T: Transport> {
    /// The session.
    pub session: &'a StaffSession,
    /// The card.
    pub piv: &'a mut Piv<T>,
}

impl<T: Transport> EntrySigner for SessionSigner<'_, T> {
    fn session(&self) -> &StaffSession {
        self.session
    }
    fn sign(&mut self, event: &mut Event) -> Result<(), Error> {
        self.session.sign_event(self.piv, event)
    }
}

/// The audit outcome of a refused sign-in, and the card serial when known.
#[must_use]
pub fn refusal_outcome(e: &Error) -> (Outcome, Option<u32>) {
    match e {
        Error::Staff(s) => (
            match s {
                StaffCredentialError::Missing => Outcome::NoCredential,
                StaffCredentialError::PatientCard => Outcome::WrongCard,
                StaffCredentialError::UnknownIssuer { .. } => Outcome::Untrusted,
                StaffCredentialError::BadSignature { .. } => Outcome::BadSignature,
                StaffCredentialError::ForeignClinic { .. } => Outcome::ForeignIssuer,
                StaffCredentialError::OutsideValidity { .. } => Outcome::Expired,
                _ => Outcome::MalformedCredential,
            },
            None,
        ),
        Error::UnknownRole(_) | Error::NotPermitted { .. } => (Outcome::NotPermitted, None),
        other => clinic::verification_outcome(other),
    }
}

/// Proves a staff card genuine without its PIN: credential (this clinic's, valid, right serial),
/// revocation list, and a 9E signature over a fresh challenge.
fn authenticate<T: Transport>(
    piv: &mut Piv<T>,
    trust: &qr::TrustList,
    clinic: &str,
    state: &ClinicState,
    now: i64,
) -> Result<(u32, VerifiedStaff, Option<i64>), Error> {
    piv.select()?;
    let serial = piv.serial()?;
    let bytes = piv.card_credential()?.ok_or(StaffCredentialError::Missing)?;
    let staff = staff_credential::verify(&bytes, trust, clinic, now)?;
    let c = staff.credential();
    if c.card_serial != serial {
        return Err(CredentialError::SerialMismatch { credential: c.card_serial, card: serial }.into());
    }
    // Offline (clinic database down) the device's copy of the revocation list answers; the
    // sign-in's audit entry says so (`revocations_from_copy`).
    let (revoked, copy) = state.is_revoked_or_copy(serial)?;
    if revoked {
        return Err(CredentialError::Revoked { serial }.into());
    }
    issue::prove_genuine(piv, serial, &c.key_9e)?;
    Ok((serial, staff, copy))
}

/// Signs in with the staff card in `piv` for `action`: proves the card genuine (a fresh 9E
/// challenge), checks it against this clinic's trust list and revocation list, checks that its
/// role may do `action` (before the PIN, so a card of the wrong role spends no PIN try), then
/// verifies the PIN and proves it with the PIN-gated 9A key. Every outcome is audited (module
/// docs); the successful sign-in's entry is signed by the card.
pub fn sign_in<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    state: &ClinicState,
    now: i64,
    pin: &PinBlock,
    action: Action,
) -> Result<StaffSession, Error> {
    state.ensure_open()?;
    let trust = clinic::trust_list(ks)?;
    let refuse = |subject: String, e: Error, detail: String| -> Result<StaffSession, Error> {
        let (outcome, _) = refusal_outcome(&e);
        state.audit(&[state.event(now, EventKind::StaffSession, &subject, outcome, detail)])?;
        Err(e)
    };
    let (serial, staff, copy) = match authenticate(piv, &trust, ks.clinic_id(), state, now) {
        Ok(x) => x,
        Err(e) => {
            let subject = refusal_outcome(&e).1.map_or_else(|| clinic::reader_subject(piv), |s| s.to_string());
            return refuse(subject, e, format!("action={action}"));
        }
    };
    let c = staff.credential();
    let who = format!("staff={} role={} action={action}", c.staff_id, c.role.chars().take(64).collect::<String>());
    let role = match c.role() {
        Ok(r) => r,
        Err(e) => return refuse(serial.to_string(), e.into(), who),
    };
    if !role.permits(action) {
        return refuse(serial.to_string(), Error::NotPermitted { staff_id: c.staff_id.clone(), role, action }, who);
    }
    let proven = piv.verify_pin(pin).map_err(Error::from).and_then(|()| issue::prove_pin_with(piv, serial, &c.key_9a));
    if proven.is_err() {
        state.audit(&clinic::pin_events(state, now, &serial.to_string(), "staff-sign-in", &proven, EventKind::PinVerified))?;
        proven?;
    }
    let session = StaffSession { staff, role, opened_at: now, last_active: now, idle_secs: DEFAULT_IDLE_SECS };
    let detail = match copy {
        Some(at) => format!("{who} revocations_from_copy={at}"),
        None => who,
    };
    let mut ev = state.event(now, EventKind::StaffSession, &serial.to_string(), Outcome::Ok, detail);
    session.sign_event(piv, &mut ev)?;
    state.audit(&[ev])?;
    Ok(session)
}

/// Audits the end of a session (`staff.session_ended`; `why`: `card-removed`, `idle`,
/// `signed-out`). Written by the device, not the card: the card may be gone.
pub fn end_session(state: &ClinicState, session: &StaffSession, now: i64, why: &str) -> Result<(), Error> {
    let detail = format!("why={why} opened_at={}", session.opened_at);
    state.audit(&[state.event(now, EventKind::StaffSessionEnded, &session.actor(), Outcome::Ok, detail)])?;
    Ok(())
}
