//! The card simulator in this process (cargo feature `sim`): for tests and the demo mode. Only
//! `Card::process`, `reset` and `power_off` are used, so the client's APDU and TLV code stays
//! independent of the simulator's.

use super::{Transport, TransportError, check_response};

/// The name [`SimTransport`] reports as its reader.
pub const SIM_READER: &str = "MedCard simulator (in-process)";

/// The card simulator in this process. [`SimTransport::remove_card`] simulates pulling the card.
pub struct SimTransport {
    card: Option<card_applet_sim::Card>,
}

impl SimTransport {
    /// A transport to `card` (already "inserted" and powered).
    pub fn new(card: card_applet_sim::Card) -> Self {
        Self { card: Some(card) }
    }

    /// Pull the card: later commands fail with [`TransportError::CardRemoved`]. Returns the card.
    pub fn remove_card(&mut self) -> Option<card_applet_sim::Card> {
        self.card.take().map(|mut c| {
            c.power_off();
            c
        })
    }

    /// Insert (another) card, powered up with a clear security status.
    pub fn insert_card(&mut self, mut card: card_applet_sim::Card) {
        card.power_off();
        self.card = Some(card);
    }

    /// The card, for tests that inspect its persistent state.
    pub fn card(&self) -> Option<&card_applet_sim::Card> {
        self.card.as_ref()
    }

    fn removed() -> TransportError {
        TransportError::CardRemoved { reader: SIM_READER.to_owned() }
    }
}

impl Transport for SimTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = self.card.as_mut().ok_or_else(Self::removed)?;
        check_response(card.process(apdu))
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.card.as_mut().ok_or_else(Self::removed)?.reset();
        Ok(())
    }

    fn reader_name(&self) -> &str {
        SIM_READER
    }
}
