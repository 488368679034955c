//! MedCard QR pointer codec and verifier. See `docs/qr-format.md`.
//!
//! Layers, outermost first: QR image ([`render`], [`scan`]) → text with prefix `MC1:` →
//! base45 → optional zlib ([`text`]) → COSE_Sign1 ES256 ([`cose`]) → CWT claims ([`claims`]).
//! [`codec::encode`] builds a code; [`verify::Verifier`] checks one layer by layer against a
//! [`trust::TrustList`] and an explicit [`time::Clock`].
//! The library does no network or file I/O and never reads the clock: callers hand it bytes,
//! images, keys and the time.
#![forbid(unsafe_code)]

pub mod claims;
pub mod codec;
pub mod cose;
pub mod render;
pub mod scan;
pub mod text;
pub mod time;
pub mod trust;
pub mod verify;

pub use claims::{Claims, ContentKey, Pointer};
pub use codec::{Encoded, encode};
pub use cose::{Signer, SoftwareSigner, kid_for};
pub use time::Clock;
pub use trust::TrustList;
pub use verify::{Profile, Verified, Verifier, VerifyError};
