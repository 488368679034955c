//! The card simulator's APDU processor as pcscd reaches it: the fuzz input is a vpcd byte
//! stream (2-byte big-endian length, payload; see `src/vpcd.rs`) cut into frames by the real
//! `FrameDecoder` and dispatched by the real `Session` to `Card::process`, so power/reset
//! control codes, command chaining (CLA 10) and GET RESPONSE paging are all reached.
//!
//! One harness-only control code, 0xA5 (vpcd's unused range; the card ignores it), makes the
//! harness perform a real 9B mutual authentication with the card's current management key:
//! the card's witness is random, so a replayed input could never authenticate by itself, and
//! without it PUT DATA, GENERATE and SET MANAGEMENT KEY would stay unreachable.
//!
//! The card starts as a really issued card (`provisioned`) and is rebuilt from the same state
//! for every input. Checked: no panic; every response ends in a status word;
//! the PIN/PUK counters never exceed 3.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use card_applet_sim::vpcd::{Control, Frame, FrameDecoder, Session};
use card_applet_sim::{Card, MAX_TRIES, MemoryStore, PersistentState, crypto, persist};
use libfuzzer_sys::fuzz_target;

const ORACLE_MGMT_AUTH: u8 = 0xA5;

fn sw(resp: &[u8]) -> Option<u16> {
    card_applet_sim::vpcd::status_word(resp)
}

/// 9B mutual authentication with the card's current key (Part 2 App. A.1). Returns 9000 or the
/// first failing status word.
fn mgmt_auth(card: &mut Card) -> u16 {
    let mk = card.state().management_key.clone();
    let alg = mk.algorithm;
    let block = alg.block_len();
    let r = card.process(&[0x00, 0x87, alg.id(), 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00]);
    if sw(&r) != Some(0x9000) {
        return sw(&r).unwrap_or(0);
    }
    // 7C L 80 L witness 90 00
    let Some(witness) = r.get(4..4 + block) else { return 0 };
    let Ok(plain) = crypto::mgmt_block(alg, mk.key.expose(), witness, false) else { return 0 };
    let challenge = vec![0x5A; block];
    let inner_len = 2 * (2 + block);
    let mut apdu = vec![0x00, 0x87, alg.id(), 0x9B, (2 + inner_len) as u8, 0x7C, inner_len as u8, 0x80, block as u8];
    apdu.extend_from_slice(&plain);
    apdu.extend_from_slice(&[0x81, block as u8]);
    apdu.extend_from_slice(&challenge);
    sw(&card.process(&apdu)).unwrap_or(0)
}

/// The starting card: the simulated card `seedgen` issued to patient P-1001 through the real
/// clinic flow (keys in 9A/9C/9D/9E, certificates, credential, consent token, clinic-derived
/// management key, PIN 123456), so the recorded sessions in the corpus replay against it; a
/// blank card provisioned here if the fixture does not load.
fn provisioned() -> &'static PersistentState {
    static STATE: OnceLock<PersistentState> = OnceLock::new();
    STATE.get_or_init(|| {
        if let Ok(s) = persist::decode(include_bytes!("../fixtures/issued-card.state"), Path::new("issued-card.state")) {
            return s;
        }
        let mut card = Card::new(PersistentState::blank(0x00C0_FFEE), Box::new(MemoryStore::default()));
        assert_eq!(mgmt_auth(&mut card), 0x9000, "default management key authenticates");
        for slot in [0x9A, 0x9C, 0x9D, 0x9E] {
            let r = card.process(&[0x00, 0x47, 0x00, slot, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11, 0x00]);
            assert_eq!(sw(&r), Some(0x9000), "generate {slot:02X}");
        }
        card.state().clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut card = Card::new(provisioned().clone(), Box::new(MemoryStore::default()));
    let mut decoder = FrameDecoder::new();
    decoder.push(data);
    let mut frames = 0;
    while let Some(frame) = decoder.next_frame() {
        frames += 1;
        if frames > 64 {
            break;
        }
        if frame == Frame::Control(Control::Unknown(ORACLE_MGMT_AUTH)) {
            let _ = mgmt_auth(&mut card);
            continue;
        }
        let is_apdu = matches!(frame, Frame::Apdu(_));
        let reply = Session::new(&mut card).handle(frame);
        if is_apdu {
            let reply = reply.unwrap_or_default();
            assert!(reply.len() >= 2, "every response APDU ends in a status word");
        }
        let st = card.state();
        assert!(st.pin.tries_left <= MAX_TRIES && st.puk.tries_left <= MAX_TRIES, "counters never exceed 3");
    }
});
