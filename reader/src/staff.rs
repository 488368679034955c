//! Staff: the clinic's own people, identified by a staff card (`docs/staff.md`).
//!
//! A staff card is a PIV card issued like a patient card (same keys, certificates chained to the
//! clinic CA, per-card management key) whose credential object holds a **staff credential**
//! instead of a patient's: a COSE_Sign1 by the clinic issuer key with its own content type, so a
//! staff card is never taken for a patient card, nor the reverse. The pieces here are pure (no
//! card, no database): the roles and what each may do ([`role`]), the credential ([`credential`])
//! and the signatures staff cards put on the audit entries they cause ([`signed`]).

pub mod credential;
pub mod role;
pub mod signed;

pub use credential::{StaffCredential, StaffCredentialError, VerifiedStaff};
pub use role::{Action, Role, UnknownRole};
