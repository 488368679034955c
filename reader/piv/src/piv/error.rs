//! The PIV client's one error type: everything that can go wrong talking to a card, and nothing
//! above it (clinic flows wrap it in `reader::Error`).

use thiserror::Error;

use crate::random::RandomError;
use crate::sig::SigError;
use crate::sw::CardError;
use crate::tlv::TlvError;
use crate::transport::TransportError;

/// Anything that can go wrong talking to a card. Never contains a PIN, PUK or key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PivError {
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
    /// A PIN or PUK with something other than digits (the error never contains the secret).
    #[error("the {what} must be digits only")]
    NotDigits { what: &'static str },
    /// A PIN or PUK of the wrong length.
    #[error("the {what} must be 6 to 8 characters long")]
    SecretLength { what: &'static str },
    /// A management key of the wrong length for its algorithm.
    #[error("a {algorithm:?} management key is {expected} bytes, got {got}")]
    ManagementKeyLength { algorithm: super::MgmtAlgorithm, expected: usize, got: usize },
    /// The operating system's random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] RandomError),
}

impl PivError {
    pub(crate) fn tlv(operation: &'static str) -> impl Fn(TlvError) -> PivError {
        move |source| PivError::Tlv { operation, source }
    }
}
