//! MedCard's PIV client for the patient card edge (`docs/card.md`): a part that could
//! be lifted out of MedCard, as it depends on nothing of the clinic.
//!
//! Layers, bottom up (a module uses only modules of lower layers; `tests/tests/layers.rs` checks it):
//! 1. [`random`]
//! 2. [`sw`], [`tlv`], [`sig`], [`x509`]
//! 3. [`transport`]
//! 4. [`piv`]
//!
//! [`transport`] sends APDUs over PC/SC or, with cargo feature `sim`, to the card simulator in
//! this process; [`tlv`], [`sw`] and [`sig`] are pure codecs that never panic on card data;
//! [`piv`] is the PIV client and [`PivError`] its one error type.
#![forbid(unsafe_code)]

pub mod piv;
pub mod random;
pub mod sig;
pub mod sw;
pub mod tlv;
pub mod transport;
pub mod x509;

pub use piv::{AppInfo, CardInfo, ManagementKey, MgmtAlgorithm, PinBlock, PinStatus, Piv, PivError, Slot};
pub use random::RandomError;
pub use sw::{CardError, StatusWord};
#[cfg(feature = "sim")]
pub use transport::SimTransport;
pub use transport::{CardEvent, PcscContext, PcscTransport, ReaderInfo, Transport, TransportError};
