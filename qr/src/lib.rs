//! MedCard QR pointer codec and verifier. See `docs/qr-format.md`.
#![forbid(unsafe_code)]
