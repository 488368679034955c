//! MedCard reader: the clinic side of the patient card edge (`docs/card.md`): the card client
//! (crate `medcard-piv`, re-exported), the clinic's keys, records, database and audit log, the
//! audited flows that the `medcard` CLI and the desktop app share (neither adds security logic of
//! its own), and the `medcard` command line.
//!
//! Layers, bottom up (a module uses only modules of lower layers; `tests/tests/layers.rs` checks it):
//! 1. [`clock`], [`fsutil`], [`category`], [`cbor`], [`cose_util`]
//! 2. [`card_claims`], [`keystore`], [`sealed`], [`export`], [`record_index`]
//! 3. [`staff`]
//! 4. [`credential`]
//! 5. [`consent_token`], [`store`]
//! 6. [`db`], [`deployment`]
//! 7. [`audit`]
//! 8. [`clinic_state`]
//! 9. [`error`], [`access_report`]
//! 10. [`issue`]
//! 11. [`clinic`], [`records`], [`trust`]
//! 12. [`staff_card`], [`consent`]
//! 13. [`checkin`], [`emergency`]
//! 14. [`scan_flow`]
//! 15. [`bedside`]
//!
//! Below them all is the card client, re-exported from `medcard-piv`: [`random`], [`sw`],
//! [`tlv`], [`sig`], [`x509`], [`transport`], [`piv`]. Each layer has one error type wrapping
//! the one below with its typed source: [`PivError`] (the card), [`Error`] (the clinic card
//! flows), then [`checkin::CheckinError`], [`bedside::BedsideError`], [`trust::TrustError`].
//!
//! The flows: [`bedside::Bedside`] (scan a QR code, open a cached record),
//! [`records::add_record`] / [`records::add_record_file`], the card flows in [`clinic`] and
//! [`consent`], the kiosk's [`checkin`].
#![forbid(unsafe_code)]

pub use medcard_piv::{piv, random, sig, sw, tlv, transport, x509};

pub mod access_report;
pub mod audit;
pub mod bedside;
pub mod card_claims;
pub mod category;
pub mod cbor;
pub mod checkin;
pub mod clinic;
pub mod clinic_state;
pub mod clock;
pub mod consent;
pub mod consent_token;
pub mod cose_util;
pub mod credential;
pub mod db;
pub mod deployment;
pub mod emergency;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod issue;
pub mod keystore;
pub mod record_index;
pub mod records;
pub mod scan_flow;
pub mod sealed;
pub mod staff;
pub mod staff_card;
pub mod store;
pub mod trust;

pub use error::Error;
pub use keystore::{KeyPurpose, Keystore, KeystoreError};
#[cfg(feature = "sim")]
pub use medcard_piv::SimTransport;
pub use medcard_piv::{
    AppInfo, CardError, CardEvent, CardInfo, ManagementKey, MgmtAlgorithm, PcscContext, PcscTransport, PinBlock, PinStatus, Piv, PivError,
    RandomError, ReaderInfo, Slot, StatusWord, Transport, TransportError,
};
