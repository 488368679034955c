//! The PIV applet: `Card::process(apdu) -> response`. Owner: applet helper.

use crate::state::{Persist, PersistentState};

/// A simulated card: persistent state, volatile security status, and where to save.
pub struct Card {
    state: PersistentState,
    store: Box<dyn Persist + Send>,
}

impl Card {
    /// A card over `state`, saving to `store`.
    pub fn new(state: PersistentState, store: Box<dyn Persist + Send>) -> Self {
        Self { state, store }
    }

    /// The Answer-To-Reset.
    pub fn atr(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Process one command APDU (short or extended encoding, as received) and return the
    /// response APDU: data followed by SW1 SW2. Never panics, whatever the bytes.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let _ = (apdu, &mut self.store);
        vec![0x6D, 0x00]
    }

    /// Power off: clears the security status (PIN verified, management key authenticated).
    pub fn power_off(&mut self) {}

    /// Warm reset: same effect on the security status as power off.
    pub fn reset(&mut self) {}

    /// The persistent state (for tests and for saving).
    pub fn state(&self) -> &PersistentState {
        &self.state
    }
}
