//! MedCard reader: an independent client for the patient card edge (`docs/card.md`) over PC/SC
//! or the in-process simulator, and the `medcard` command line.
//!
//! Layers, bottom up: [`transport`] (APDU in, APDU out), [`tlv`], [`sw`] and [`sig`] (pure
//! codecs that never panic on card data), [`piv`] (the PIV client).
//!
//! The audited clinic flows that the `medcard` CLI and the desktop app share (neither adds
//! security logic of its own): [`bedside::Bedside`] (scan a QR code, open a cached record),
//! [`records::add_record`] / [`records::add_record_file`], the card flows in [`clinic`].
#![forbid(unsafe_code)]

pub mod audit;
pub mod bedside;
pub mod category;
pub mod checkin;
pub mod clock;
pub mod db;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod keystore;
pub mod clinic;
pub mod consent;
pub mod cose_util;
pub mod credential;
pub mod issue;
pub mod piv;
pub mod records;
pub mod scan_flow;
pub mod sig;
pub mod store;
pub mod sw;
pub mod tlv;
pub mod transport;
pub mod trust;
pub mod x509;

pub use error::Error;
pub use keystore::{KeyPurpose, Keystore, KeystoreError};
pub use piv::{AppInfo, CardInfo, ManagementKey, MgmtAlgorithm, PinBlock, PinStatus, Piv, Slot};
pub use sw::{CardError, StatusWord};
pub use transport::{CardEvent, PcscContext, PcscTransport, ReaderInfo, SimTransport, Transport, TransportError};
