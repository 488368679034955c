//! Transports that stand between a flow and the in-process card simulator and lie, for the
//! attack tests (`kiosk_attacks.rs`, `staff_attacks.rs`: `mod card_shims;`).
#![allow(dead_code)]

use reader::{SimTransport, Transport, TransportError};

/// A reader shim between a flow and a real card: it answers VERIFY (INS 20) with 9000 itself,
/// whatever PIN was typed, and forwards everything else.
pub struct PinShim(pub SimTransport);

impl Transport for PinShim {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if apdu.get(1) == Some(&0x20) && apdu.len() > 5 {
            return Ok(vec![0x90, 0x00]);
        }
        self.0.transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.0.reset()
    }
    fn reader_name(&self) -> &str {
        "pin-shim"
    }
}

/// A card that answers every GENERAL AUTHENTICATE (INS 87) with one bit flipped in its
/// signature.
pub struct GarbledSignatures(pub SimTransport);

impl Transport for GarbledSignatures {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut r = self.0.transmit(apdu)?;
        if apdu.get(1) == Some(&0x87) && r.len() > 12 {
            let at = r.len() - 6;
            if let Some(b) = r.get_mut(at) {
                *b ^= 0x01;
            }
        }
        Ok(r)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.0.reset()
    }
    fn reader_name(&self) -> &str {
        "garbled"
    }
}
