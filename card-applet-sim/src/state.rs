//! Card state: persistent (keys, PIN/PUK and counters, data objects, management key) and
//! volatile (security status, chaining buffers). Owner: applet helper.

use serde::{Deserialize, Serialize};

/// Everything the card keeps across power cycles. Serialized by [`crate::persist`].
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PersistentState {
    /// Card serial (Yubico INS F8, CHUID).
    pub serial: u32,
    // The applet helper fills in the rest (PIN, PUK, counters, management key, keys, objects).
}

impl PersistentState {
    /// A blank card as real blank PIV cards ship: default PIN 123456, PUK 12345678,
    /// management key 3DES 010203040506070801020304050607080102030405060708, no keys, no objects.
    pub fn blank(serial: u32) -> Self {
        Self { serial }
    }
}

/// Where the persistent state goes. The applet calls `save` **before** acting on a change that
/// must survive (e.g. the decremented PIN counter before comparing the PIN). If `save` fails
/// the applet answers `6581` (memory failure) and does not act.
pub trait Persist {
    /// Replace the stored state with `state` atomically: afterwards the store holds either the
    /// old or the new state, never a mix.
    fn save(&mut self, state: &PersistentState) -> Result<(), PersistError>;
}

/// A failed save.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// An I/O step failed.
    #[error("could not write card state to {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A store that keeps nothing, or a test that injected a failure.
    #[error("card state write refused: {0}")]
    Refused(&'static str),
}

/// A store that keeps the state in memory only (tests, benches, demo).
#[derive(Default)]
pub struct MemoryStore {
    pub last: Option<PersistentState>,
}

impl Persist for MemoryStore {
    fn save(&mut self, state: &PersistentState) -> Result<(), PersistError> {
        self.last = Some(state.clone());
        Ok(())
    }
}
