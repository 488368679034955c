//! The clinic flows' one error type ([`Error`]): what can stop a card flow (issue, verify,
//! PIN, consent, check-in's card step). It wraps each layer below with its typed source: the
//! card client's [`PivError`], the keystore, the credential, the consent token, the clinic state
//! (database, audit log, trust files). Layers above (check-in, bedside, trust, the CLI) wrap it
//! in turn.

use thiserror::Error;

use crate::clinic_state::ClinicError;
use crate::consent_token::ConsentError;
use crate::cose_util::SignError;
use crate::credential::CredentialError;
use crate::keystore::KeystoreError;
use crate::piv::{PivError, Slot};
use crate::random::RandomError;
use crate::x509::CertError;

/// Anything that can stop a clinic card flow. Never contains a PIN, PUK or key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The card or the reader failed, or refused (wrong PIN, blocked, card removed, ...).
    #[error(transparent)]
    Card(#[from] PivError),
    /// The clinic keystore (missing, corrupt, permissions, ...).
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A card credential was refused (untrusted, altered, expired, revoked, not genuine, ...).
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// A consent token was refused (another card's, altered, expired, wrong clinic, ...).
    #[error(transparent)]
    Consent(#[from] ConsentError),
    /// The clinic state: database, audit log, a replayed consent version, a trust file.
    #[error(transparent)]
    Clinic(#[from] ClinicError),
    /// The card's signature over a consent token is not one (the card answered garbage), or the
    /// signed object could not be encoded. The card's own failure (pulled, refused) is
    /// [`Error::Card`].
    #[error(transparent)]
    CardSignature(SignError<PivError>),
    /// The clinic's issuer key could not sign (a credential).
    #[error("issuer key: {0}")]
    IssuerSignature(#[from] SignError<p256::ecdsa::Error>),
    /// A slot certificate could not be made at issuance.
    #[error("making the {slot} certificate: {source}")]
    Certificate {
        slot: Slot,
        #[source]
        source: CertError,
    },
    /// A staff card was refused: not a staff credential, forged, another clinic's, expired.
    #[error(transparent)]
    Staff(#[from] crate::staff::StaffCredentialError),
    /// A staff credential names a role this version does not know: no rights.
    #[error(transparent)]
    UnknownRole(#[from] crate::staff::UnknownRole),
    /// The staff member's role may not do this.
    #[error("{staff_id} is signed in as {role}, and a {role} may not {what}: this needs {needs}", what = action_text(*.action), needs = roles_text(*.action))]
    NotPermitted { staff_id: String, role: crate::staff::Role, action: crate::staff::Action },
    /// A staff id we do not accept.
    #[error("the staff id must be 1 to 32 characters of A-Z, a-z, 0-9, '.', '_' and '-'")]
    StaffId,
    /// A staff name we do not accept.
    #[error("the staff member's name must be 1 to 80 characters without control characters")]
    StaffName,
    /// A patient id we do not accept.
    #[error("the patient id must be 1 to 64 characters without control characters, and may not start with \"staff:\"")]
    PatientId,
    /// A credential validity outside what issuance accepts.
    #[error("the validity must be 1 to {max_days} days")]
    Validity { max_days: u32 },
    /// The card at issuance takes neither the blank-card management key nor ours.
    #[error(
        "card {serial} accepts neither the blank-card management key nor this clinic's key for it: it was issued by another clinic (or personalised elsewhere) and cannot be issued here"
    )]
    ForeignManagementKey { serial: u32 },
    /// The PUK given at issuance is not the card's.
    #[error("{0}: the card's PUK is not the blank-card default; pass the patient's current PUK with --current-puk")]
    CurrentPuk(#[source] PivError),
    /// The operating system's random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] RandomError),
}

/// A failure of the card while signing is a card failure, as for any other command; only a
/// signature that does not verify (or an encoding failure) is a signing error of its own.
impl From<SignError<PivError>> for Error {
    fn from(e: SignError<PivError>) -> Self {
        match e {
            SignError::Signer(card) => Error::Card(card),
            other => Error::CardSignature(other),
        }
    }
}

/// What an action is, for messages.
fn action_text(a: crate::staff::Action) -> &'static str {
    use crate::staff::Action;
    match a {
        Action::RunKiosk => "run the check-in kiosk",
        Action::ScanAndRead => "scan patients' codes or read their records",
        Action::EmergencyAccess => "open a patient's emergency data",
        Action::ManageCards => "issue, revoke or unblock cards",
        Action::EditTrust => "change the trust list",
        Action::AddRecords => "add records",
        Action::Administer => "open the admin view or the audit log",
    }
}

/// Who may do an action ("a clinician's staff card").
fn roles_text(a: crate::staff::Action) -> String {
    let roles: Vec<&str> = crate::staff::Role::allowed(a).into_iter().map(crate::staff::Role::as_str).collect();
    format!("the staff card of a {}", roles.join(" or "))
}
