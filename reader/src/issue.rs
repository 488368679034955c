//! Card issuance and card authentication (docs/card-credential.md).
//!
//! Issuance order, chosen so that a card pulled at any point is never accepted as valid and
//! can simply be issued again:
//! 1. SELECT, GET SERIAL;
//! 2. authenticate with the blank default management key, else with this clinic's derived key
//!    for the serial (a re-issue or an interrupted issuance);
//! 3. delete the card credential and the consent token (from here on the card has no valid
//!    credential);
//! 4. replace the management key with the per-card AES-256 key (HKDF from the master secret);
//! 5. generate 9A, 9C, 9E; write their certificates (signed by the clinic CA);
//! 6. set the PIN with the current PUK (RESET RETRY COUNTER), then change the PUK;
//! 7. write the credential **last**.
//!
//! Card authentication: read the credential, verify it against the trust list, compare the
//! serial, consult the revocation list, then have the 9E key sign SHA-256 of a domain string
//! and a fresh 32-byte random challenge; the signature must verify with the credential's 9E key.

use p256::ecdsa::VerifyingKey;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::card_claims::CardClaims;
use crate::credential::{self, CardCredential, CredentialError, VerifiedCredential};
use crate::keystore::Keystore;
use crate::piv::{ManagementKey, PinBlock, Piv, PivError, Slot, tags};
use crate::staff::{Role, StaffCredential};
use crate::sw::CardError;
use crate::transport::{Transport, TransportError};
use crate::x509;

/// Domain string of the 9E challenge digest.
pub const CHALLENGE_DOMAIN: &[u8] = b"MedCard card authentication v1";
/// Default credential validity.
pub const DEFAULT_VALIDITY_DAYS: u32 = 5 * 365;

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Patient id (1-64 printable characters).
    pub patient_id: String,
    /// Patient name (clinic records and nothing else).
    pub name: String,
    /// The patient's new PIN.
    pub pin: PinBlock,
    /// The patient's new PUK.
    pub puk: PinBlock,
    /// The card's current PUK (the published default on a blank card).
    pub current_puk: PinBlock,
    /// Credential and certificate validity in days.
    pub validity_days: u32,
    /// Now (Unix seconds).
    pub now: i64,
}

/// Progress of an issuance, for people and for tests that pull the card at a given step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStep {
    /// Authenticated with the management key (`derived`: the clinic's per-card key).
    Authenticated { derived: bool },
    /// Old credential and consent token deleted.
    ObjectsCleared,
    /// Per-card management key set.
    ManagementKeySet,
    /// Key generated in the slot.
    KeyGenerated(Slot),
    /// Certificate written for the slot.
    CertificateWritten(Slot),
    /// PIN and PUK set.
    PinAndPukSet,
    /// Credential written: done.
    CredentialWritten,
}

impl IssueStep {
    /// A short stable name (`generated-9A`, `credential-written`, ...).
    #[must_use]
    pub fn name(self) -> String {
        match self {
            IssueStep::Authenticated { .. } => "authenticated".into(),
            IssueStep::ObjectsCleared => "objects-cleared".into(),
            IssueStep::ManagementKeySet => "management-key-set".into(),
            IssueStep::KeyGenerated(s) => format!("generated-{s}"),
            IssueStep::CertificateWritten(s) => format!("certificate-{s}"),
            IssueStep::PinAndPukSet => "pin-puk-set".into(),
            IssueStep::CredentialWritten => "credential-written".into(),
        }
    }
}

/// The result of an issuance.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The claims written.
    pub credential: CardCredential,
    /// The COSE_Sign1 bytes written to `5FFFC0`.
    pub credential_bytes: Vec<u8>,
    /// Certificates written (slot, DER).
    pub certificates: Vec<(Slot, Vec<u8>)>,
    /// Whether the card already had this clinic's management key (a re-issue).
    pub reissue: bool,
}

/// Checks a patient id: 1-64 characters, no control characters.
pub fn check_patient_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.chars().count() > 64 || id.chars().any(char::is_control) || id.starts_with("staff:") {
        return Err(Error::PatientId);
    }
    Ok(())
}

fn key_usage(slot: Slot) -> u8 {
    match slot {
        Slot::Signature => x509::KU_DIGITAL_SIGNATURE | x509::KU_NON_REPUDIATION,
        Slot::KeyManagement => x509::KU_KEY_AGREEMENT,
        Slot::PivAuth | Slot::CardAuth => x509::KU_DIGITAL_SIGNATURE,
    }
}

/// Authenticates with the blank default key, else with the clinic's key for `serial`.
fn authenticate<T: Transport>(piv: &mut Piv<T>, ks: &Keystore, serial: u32) -> Result<bool, Error> {
    match piv.authenticate_management(&ManagementKey::default_blank()) {
        Ok(()) => return Ok(false),
        Err(PivError::Card(CardError::ManagementKeyRejected)) => {}
        Err(e) => return Err(e.into()),
    }
    match piv.authenticate_management(&ks.card_management_key(serial)?) {
        Ok(()) => Ok(true),
        Err(PivError::Card(CardError::ManagementKeyRejected) | PivError::CardFailedManagementProof) => {
            Err(Error::ForeignManagementKey { serial })
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes an object; an absent object is fine.
fn delete<T: Transport>(piv: &mut Piv<T>, tag: u32) -> Result<(), PivError> {
    match piv.put_data(tag, &[]) {
        Ok(()) | Err(PivError::Card(CardError::NotFound { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What steps 1-6 of an issuance made: the card is keyed, certified and has its PIN and PUK,
/// but no credential yet.
struct Prepared {
    serial: u32,
    reissue: bool,
    not_before: i64,
    expires_at: i64,
    key_9a: VerifyingKey,
    key_9c: VerifyingKey,
    key_9e: VerifyingKey,
    certificates: Vec<(Slot, Vec<u8>)>,
}

impl Prepared {
    /// The claims of the credential to write for `holder` (`crate::card_claims`).
    fn claims(&self, ks: &Keystore, holder: &str, now: i64) -> CardClaims {
        CardClaims {
            issuer: ks.clinic_id().to_owned(),
            holder: holder.to_owned(),
            expires_at: self.expires_at,
            not_before: self.not_before,
            issued_at: now,
            card_serial: self.serial,
            key_9a: self.key_9a,
            key_9c: self.key_9c,
            key_9e: self.key_9e,
        }
    }
}

/// Step 7: signs the credential with the issuer key and writes it, last.
fn write_credential<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    sign: impl FnOnce(&p256::ecdsa::SigningKey) -> Result<Vec<u8>, crate::cose_util::SignError<p256::ecdsa::Error>>,
    progress: &mut dyn FnMut(IssueStep) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let bytes = sign(ks.issuer_key()?)?;
    piv.put_data(tags::CARD_CREDENTIAL, &bytes)?;
    progress(IssueStep::CredentialWritten)?;
    Ok(bytes)
}

/// The secrets and validity of an issuance, patient or staff.
struct CardSetup<'a> {
    /// The certificate's holder text (patient id, or `staff <id>`).
    holder: &'a str,
    pin: &'a PinBlock,
    puk: &'a PinBlock,
    current_puk: &'a PinBlock,
    validity_days: u32,
    now: i64,
}

/// Steps 1-6 of the module docs, common to patient and staff cards.
fn prepare<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    setup: &CardSetup<'_>,
    progress: &mut dyn FnMut(IssueStep) -> Result<(), Error>,
) -> Result<Prepared, Error> {
    if setup.validity_days == 0 || setup.validity_days > 20 * 365 {
        return Err(Error::Validity { max_days: 20 * 365 });
    }
    piv.select()?;
    let serial = piv.serial()?;
    let reissue = authenticate(piv, ks, serial)?;
    progress(IssueStep::Authenticated { derived: reissue })?;
    delete(piv, tags::CARD_CREDENTIAL)?;
    delete(piv, tags::CONSENT_TOKEN)?;
    progress(IssueStep::ObjectsCleared)?;
    if !reissue {
        piv.set_management_key(&ks.card_management_key(serial)?)?;
        progress(IssueStep::ManagementKeySet)?;
    }
    let not_before = setup.now - 300;
    let expires_at = setup.now + i64::from(setup.validity_days) * 86_400;
    let mut keys: Vec<(Slot, VerifyingKey)> = Vec::new();
    for slot in [Slot::PivAuth, Slot::Signature, Slot::CardAuth] {
        let key = piv.generate(slot)?;
        keys.push((slot, key));
        progress(IssueStep::KeyGenerated(slot))?;
    }
    let mut certificates = Vec::new();
    for (slot, key) in &keys {
        let spec = x509::CertSpec {
            subject: x509::subject_card(ks.clinic_id(), setup.holder, serial, &slot.to_string()),
            not_before,
            not_after: expires_at,
            ca: false,
            key_usage: key_usage(*slot),
        };
        let der =
            x509::build(&spec, key, &ks.ca_subject(), ks.issuer_key()?).map_err(|source| Error::Certificate { slot: *slot, source })?;
        piv.put_certificate(*slot, &der)?;
        certificates.push((*slot, der));
        progress(IssueStep::CertificateWritten(*slot))?;
    }
    piv.unblock_pin(setup.current_puk, setup.pin).map_err(|e| match e {
        PivError::Card(CardError::WrongSecret { .. }) => Error::CurrentPuk(e),
        other => other.into(),
    })?;
    piv.change_puk(setup.current_puk, setup.puk)?;
    progress(IssueStep::PinAndPukSet)?;
    let find = |s: Slot| keys.iter().find(|(k, _)| *k == s).map(|(_, v)| *v);
    let (Some(key_9a), Some(key_9c), Some(key_9e)) = (find(Slot::PivAuth), find(Slot::Signature), find(Slot::CardAuth)) else {
        // The loop above generated all three: unreachable, but a card flow never panics.
        return Err(
            PivError::Unexpected { operation: "generate", expected: "keys in 9A, 9C and 9E", got: "a slot without a key".into() }.into()
        );
    };
    Ok(Prepared { serial, reissue, not_before, expires_at, key_9a, key_9c, key_9e, certificates })
}

/// Issues the card behind `piv` (see the module docs for the order of steps). `progress` is
/// called after each step; an error from it stops the issuance there.
pub fn issue<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    req: &IssueRequest,
    progress: &mut dyn FnMut(IssueStep) -> Result<(), Error>,
) -> Result<Issued, Error> {
    check_patient_id(&req.patient_id)?;
    let setup = CardSetup {
        holder: &req.patient_id,
        pin: &req.pin,
        puk: &req.puk,
        current_puk: &req.current_puk,
        validity_days: req.validity_days,
        now: req.now,
    };
    let p = prepare(piv, ks, &setup, progress)?;
    let credential = CardCredential::from_card_claims(p.claims(ks, &req.patient_id, req.now));
    let credential_bytes = write_credential(piv, ks, |k| credential.sign(k), progress)?;
    Ok(Issued { credential, credential_bytes, certificates: p.certificates, reissue: p.reissue })
}

/// What to issue to a member of staff.
#[derive(Debug, Clone)]
pub struct StaffIssueRequest {
    /// Staff id ([`crate::staff::signed::check_staff_id`]).
    pub staff_id: String,
    /// Name, as the audit log and patients' access reports show it (1-80 characters).
    pub name: String,
    /// The role.
    pub role: Role,
    /// The new PIN.
    pub pin: PinBlock,
    /// The new PUK (kept by the administrator, to unblock a blocked PIN).
    pub puk: PinBlock,
    /// The card's current PUK.
    pub current_puk: PinBlock,
    /// Validity in days.
    pub validity_days: u32,
    /// Now (Unix seconds).
    pub now: i64,
}

/// Default validity of a staff card.
pub const STAFF_VALIDITY_DAYS: u32 = 2 * 365;

/// The result of a staff card issuance.
#[derive(Debug, Clone)]
pub struct IssuedStaff {
    /// The claims written.
    pub credential: StaffCredential,
    /// The COSE_Sign1 bytes written to `5FFFC0`.
    pub credential_bytes: Vec<u8>,
    /// Certificates written (slot, DER).
    pub certificates: Vec<(Slot, Vec<u8>)>,
    /// Whether the card already had this clinic's management key.
    pub reissue: bool,
}

/// Issues a staff card: the same steps as [`issue`], with a staff credential written last.
pub fn issue_staff<T: Transport>(
    piv: &mut Piv<T>,
    ks: &Keystore,
    req: &StaffIssueRequest,
    progress: &mut dyn FnMut(IssueStep) -> Result<(), Error>,
) -> Result<IssuedStaff, Error> {
    if !crate::staff::signed::check_staff_id(&req.staff_id) {
        return Err(Error::StaffId);
    }
    if req.name.trim().is_empty() || req.name.chars().count() > 80 || req.name.chars().any(char::is_control) {
        return Err(Error::StaffName);
    }
    let holder = format!("staff {}", req.staff_id);
    let setup = CardSetup {
        holder: &holder,
        pin: &req.pin,
        puk: &req.puk,
        current_puk: &req.current_puk,
        validity_days: req.validity_days,
        now: req.now,
    };
    let p = prepare(piv, ks, &setup, progress)?;
    let claims = p.claims(ks, &req.staff_id, req.now);
    let credential = StaffCredential::from_card_claims(claims, req.name.clone(), req.role.as_str().to_owned());
    let credential_bytes = write_credential(piv, ks, |k| credential.sign(k), progress)?;
    Ok(IssuedStaff { credential, credential_bytes, certificates: p.certificates, reissue: p.reissue })
}

/// A card that passed [`authenticate_card`].
#[derive(Debug, Clone)]
pub struct GenuineCard {
    /// The verified credential.
    pub credential: VerifiedCredential,
    /// Whether the PIN was verified as well.
    pub pin_verified: bool,
}

/// Proves the card genuine: credential (trust list, validity, serial, revocation) and a 9E
/// signature over a fresh random challenge; with `pin`, also VERIFY (patient present).
/// `is_revoked` consults the clinic's revocation list.
pub fn authenticate_card<T: Transport>(
    piv: &mut Piv<T>,
    trust: &qr::TrustList,
    is_revoked: &dyn Fn(u32) -> Result<bool, Error>,
    now: i64,
    pin: Option<&PinBlock>,
) -> Result<GenuineCard, Error> {
    piv.select()?;
    let serial = piv.serial()?;
    let bytes = piv.card_credential()?.ok_or(CredentialError::Missing)?;
    let verified = credential::verify(&bytes, trust, now)?;
    let c = verified.credential();
    if c.card_serial != serial {
        return Err(CredentialError::SerialMismatch { credential: c.card_serial, card: serial }.into());
    }
    if is_revoked(serial)? {
        return Err(CredentialError::Revoked { serial }.into());
    }
    prove_genuine(piv, serial, &c.key_9e)?;
    let pin_verified = match pin {
        Some(p) => {
            piv.verify_pin(p)?;
            prove_pin(piv, &verified)?;
            true
        }
        None => false,
    };
    Ok(GenuineCard { credential: verified, pin_verified })
}

/// Domain separation for the PIN proof challenge (9A), distinct from the card-authentication one.
pub const PIN_PROOF_DOMAIN: &[u8] = b"MedCard PIN proof v1";

/// Proves that the card itself verified the PIN: right after VERIFY answered 9000, the PIN-gated
/// 9A key (PIN once per session) signs a fresh challenge, checked against the credential's 9A
/// key. A shim or relay that answers VERIFY with 9000 without the card checking the PIN cannot
/// make that signature (SP 800-73-4 Part 1 §3.2.1: 9A needs the PIN). One GENERAL AUTHENTICATE.
pub fn prove_pin<T: Transport>(piv: &mut Piv<T>, verified: &VerifiedCredential) -> Result<(), Error> {
    let c = verified.credential();
    prove_pin_with(piv, c.card_serial, &c.key_9a)
}

/// [`prove_pin`] for any card whose credential names `key_9a` (patient or staff card).
pub fn prove_pin_with<T: Transport>(piv: &mut Piv<T>, serial: u32, key_9a: &VerifyingKey) -> Result<(), Error> {
    match signs_fresh_challenge(piv, Slot::PivAuth, PIN_PROOF_DOMAIN, key_9a) {
        Ok(true) => Ok(()),
        // A bad signature, or the card refused to use 9A: its security status says the PIN was
        // not verified.
        Ok(false) | Err(PivError::Card(_)) => Err(CredentialError::PinNotProven { serial }.into()),
        Err(e) => Err(e.into()),
    }
}

/// Proves the card genuine by its card-authentication key: 9E signs a fresh challenge that
/// verifies with `key_9e` (patient or staff card); else [`CredentialError::NotGenuine`].
pub fn prove_genuine<T: Transport>(piv: &mut Piv<T>, serial: u32, key_9e: &VerifyingKey) -> Result<(), Error> {
    match signs_fresh_challenge(piv, Slot::CardAuth, CHALLENGE_DOMAIN, key_9e) {
        Ok(true) => Ok(()),
        Ok(false) | Err(PivError::Card(CardError::NoKey { .. })) => Err(CredentialError::NotGenuine { serial }.into()),
        Err(e) => Err(e.into()),
    }
}

/// Has the card sign `SHA-256(domain ‖ 32 fresh random bytes)` with `slot`; `Ok(true)` when the
/// signature verifies with `key`. The card's refusal comes back as the error, for the caller to
/// name (9E: not genuine; 9A: PIN not proven).
fn signs_fresh_challenge<T: Transport>(piv: &mut Piv<T>, slot: Slot, domain: &[u8], key: &VerifyingKey) -> Result<bool, PivError> {
    let mut challenge = [0u8; 32];
    crate::random::fill(&mut challenge)?;
    let digest: [u8; 32] = Sha256::new().chain_update(domain).chain_update(challenge).finalize().into();
    let sig = piv.sign_digest(slot, &digest)?;
    Ok(key.verify_prehash(&digest, &sig).is_ok())
}

/// A transport that counts the APDUs it carries (for the kiosk cost figure).
pub struct Counting<T: Transport> {
    inner: T,
    count: usize,
}

impl<T: Transport> Counting<T> {
    /// Wraps `inner` with a count of zero.
    pub fn new(inner: T) -> Self {
        Counting { inner, count: 0 }
    }
    /// APDUs sent so far (GET RESPONSE and chained blocks each count).
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }
}

impl<T: Transport> Transport for Counting<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.count += 1;
        self.inner.transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()
    }
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
}
