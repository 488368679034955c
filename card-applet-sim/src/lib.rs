//! MedCard patient card simulator: the PIV card edge (NIST SP 800-73-4 subset, P-256) plus
//! MedCard's patient objects. See `docs/card.md` for the card edge as implemented.
//!
//! The core is [`Card::process`], a pure command processor over a typed card state; the
//! `card-sim` binary wraps it in a vpcd connection (see [`vpcd`]) and a state file (see [`persist`]).
#![forbid(unsafe_code)]

mod applet;
pub mod command;
pub mod crypto;
pub mod key_ref;
pub mod objects;
pub mod persist;
pub mod pin;
pub mod reply;
mod state;
pub mod tlv;
pub mod vpcd;

pub use applet::{ATR, Card, MAX_CHAIN_LEN, VERSION};
pub use key_ref::{KeySlot, MgmtAlgorithm};
pub use reply::StatusWord;
pub use state::{
    Blob, DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN, DEFAULT_PUK, MAX_TRIES, ManagementKey, MemoryStore, Persist, PersistError, PersistentState,
    PinRecord, Secret, SlotKey,
};
