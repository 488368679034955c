//! MedCard desktop app (egui): the reception kiosk, the bedside scanner and the clinic admin
//! view on the `reader` and `qr` libraries. It adds no security logic of its own: every check
//! (card proof, PIN, consent, QR signature, one-time use, record digest, audit) is a library call;
//! this crate decides what to show and keeps long work off the UI thread.

pub mod admin;
pub mod admin_pin;
pub mod app;
pub mod bedside;
#[cfg(feature = "camera")]
pub mod camera;
pub mod card_source;
pub mod context;
pub mod demo;
pub mod document;
pub mod jobs;
pub mod kiosk;
pub mod style;
pub mod tour;

pub use app::{MedcardApp, View};
pub use card_source::{CardSource, SimSlot};
pub use context::AppContext;
