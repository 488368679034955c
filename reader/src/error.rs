//! The reader crate's error type.

use thiserror::Error;

use crate::sig::SigError;
use crate::sw::CardError;
use crate::tlv::TlvError;
use crate::transport::TransportError;

/// Anything that can go wrong talking to a card. Never contains a PIN, PUK or key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The reader or the connection failed (card removed, reader gone, pcscd down, …).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card refused a command (wrong PIN, blocked, not authenticated, …).
    #[error(transparent)]
    Card(#[from] CardError),
    /// The card's answer is not the TLV structure docs/card.md specifies.
    #[error("malformed card response to {operation}: {source}")]
    Tlv {
        operation: &'static str,
        #[source]
        source: TlvError,
    },
    /// The card's signature is not a valid DER ECDSA P-256 signature.
    #[error("malformed signature from the card: {0}")]
    Signature(#[from] SigError),
    /// The card's answer has the right structure but an unusable value.
    #[error("unexpected card response to {operation}: expected {expected}, got {got}")]
    Unexpected { operation: &'static str, expected: &'static str, got: String },
    /// The card kept asking for GET RESPONSE beyond any sane size.
    #[error("the card's response to {operation} is longer than {limit} bytes: refusing it")]
    ResponseTooLong { operation: &'static str, limit: usize },
    /// The command's data is too long for this client to send.
    #[error("{operation}: data of {len} bytes is too long (at most {limit})")]
    CommandTooLong { operation: &'static str, len: usize, limit: usize },
    /// The card answered the management-key handshake, but its proof is wrong: it does not know
    /// the key (or is not a genuine card).
    #[error("the card failed to prove it knows the management key: not trusting it")]
    CardFailedManagementProof,
    /// A PIN, PUK or key given by the user is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// The operating system's random source failed.
    #[error("the random number source failed: {0}")]
    Random(String),
    /// The clinic keystore (missing, corrupt, permissions, ...).
    #[error(transparent)]
    Keystore(#[from] crate::keystore::KeystoreError),
    /// A card credential was refused (untrusted, altered, expired, revoked, not genuine, ...).
    #[error(transparent)]
    Credential(#[from] crate::credential::CredentialError),
    /// A consent token was refused (another card's, altered, expired, wrong clinic, ...).
    #[error(transparent)]
    Consent(#[from] crate::consent::ConsentError),
    /// A clinic record file, a replayed consent version, a trust entry.
    #[error(transparent)]
    Clinic(#[from] crate::clinic::ClinicError),
    /// A clinic data file (issued cards, revocations, trust list, consent versions).
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// A trust change was refused (no fingerprint, wrong fingerprint, unsigned or altered bundle, ...).
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// A file handed out (`--out`) was refused or could not be written (docs/desktop.md, exports).
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
}

impl Error {
    pub(crate) fn tlv(operation: &'static str) -> impl Fn(TlvError) -> Error {
        move |source| Error::Tlv { operation, source }
    }
}
