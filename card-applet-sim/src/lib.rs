//! MedCard patient card simulator: the PIV card edge (NIST SP 800-73-4 subset, P-256) plus
//! MedCard's patient objects. See `docs/card.md` for the card edge as implemented.
//!
//! The core is [`Card::process`], a pure command processor over a typed card state; the
//! `card-sim` binary wraps it in a vpcd connection (see [`vpcd`]) and a state file (see [`persist`]).
#![forbid(unsafe_code)]

mod applet;
pub mod persist;
mod state;
pub mod vpcd;

pub use applet::Card;
pub use state::{MemoryStore, Persist, PersistError, PersistentState};
