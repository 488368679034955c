//! MedCard patient card simulator (PIV card edge). See `docs/card.md`.
#![forbid(unsafe_code)]
