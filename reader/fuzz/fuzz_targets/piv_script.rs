//! The client operations the `piv_responses` target runs, in order, shared with `seedgen`
//! (which runs them against a real issued card and records the card's replies as the seeds).
#![allow(dead_code)]

use reader::piv::{ManagementKey, PinBlock, Piv, Slot};
use reader::transport::Transport;

/// Every client operation that parses a card reply, as the kiosk, the bedside and the admin
/// use them; each result is dropped (an error must be a typed `Error`, never a panic). `trust`
/// verifies the card credential read from the card.
pub fn run<T: Transport>(piv: &mut Piv<T>, trust: &qr::TrustList, now: i64) {
    let pin = PinBlock::pin("123456").ok();
    let _ = piv.select();
    let _ = piv.serial();
    if let Ok(Some(bytes)) = piv.card_credential() {
        if let Ok(v) = reader::credential::verify(&bytes, trust, now) {
            if let Ok(Some(token)) = piv.consent_token() {
                let _ = reader::consent::verify_token(&token, &v, "fuzz-clinic", now);
            }
        }
    }
    // A fixed digest (the real flows use a random challenge), so a recorded reply replays.
    let _ = piv.sign_digest(Slot::CardAuth, &[0x11; 32]);
    if let Some(pin) = &pin {
        let _ = piv.verify_pin(pin);
        let _ = piv.sign_digest(Slot::PivAuth, &[0x22; 32]);
        let _ = piv.verify_pin(pin);
        let _ = piv.sign_digest(Slot::Signature, &[0x33; 32]);
    }
    if let Ok(peer) = p256::SecretKey::from_slice(&[0x05; 32]) {
        let _ = piv.ecdh(&peer.public_key());
    }
    let _ = piv.info();
    for slot in Slot::ALL {
        let _ = piv.certificate(slot);
    }
    let _ = piv.pin_status();
    let _ = piv.authenticate_management(&ManagementKey::default_blank());
    let _ = piv.generate(Slot::KeyManagement);
    let _ = piv.put_data(0x5F_FFC1, &[0xA5; 300]);
    if let Some(pin) = &pin {
        let _ = piv.change_pin(pin, pin);
        let _ = piv.change_puk(pin, pin);
        let _ = piv.unblock_pin(pin, pin);
    }
    let _ = piv.logout();
}
