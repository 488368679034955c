//! MedCard QR pointer codec and verifier. See `docs/qr-format.md`.
//!
//! Layers, outermost first: QR image ([`render`], [`scan`]) → text with prefix `MC1:` →
//! base45 → optional zlib → COSE_Sign1 (ES256) → CWT claims ([`claims`]).
//! The library does no network or file I/O: callers hand it bytes and images.
#![forbid(unsafe_code)]

pub mod render;
pub mod scan;
