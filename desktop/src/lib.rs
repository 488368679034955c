//! MedCard desktop app (egui): the reception kiosk, the bedside scanner and the clinic admin
//! view on the `reader` and `qr` libraries. It adds no security logic of its own: every check
//! (card proof, PIN, consent, QR signature, one-time use, record digest, audit) is a library call;
//! this crate decides what to show and keeps long work off the UI thread.
//!
//! Layers, bottom up (a module uses only modules of lower layers):
//! 1. [`style`], [`jobs`], [`admin_pin`], [`camera`]
//! 2. [`card_source`], [`document`]
//! 3. [`context`], [`demo`], [`mode`], [`held_card`]
//! 4. [`staff_gate`], [`visit_report`]
//! 5. [`kiosk`], [`bedside`], [`admin`]
//! 6. [`app`]
//! 7. [`tour`]
//!
//! Each view (kiosk, bedside, admin) has `logic()`, its background work, which the app runs for
//! every view every frame, and `ui()`, its drawing, run for the view shown. The tour wraps the
//! app ([`tour::Toured`]) rather than living inside it.

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
pub mod held_card;
pub mod jobs;
pub mod kiosk;
pub mod mode;
pub mod staff_gate;
pub mod style;
pub mod tour;
pub mod visit_report;

pub use app::{MedcardApp, View};
pub use card_source::{CardSource, SimSlot};
pub use context::AppContext;
