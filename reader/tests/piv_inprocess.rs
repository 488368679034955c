//! The PIV client against the card simulator in the same process (`SimTransport`): every client
//! operation, checked on the host side with `p256` (signatures verified against the key the card
//! returned at GENERATE, ECDH compared with the host's own computation), and the PIN
//! block/unblock flow with its typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use card_applet_sim::{Card, MemoryStore, PersistentState};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::elliptic_curve::Generate;
use proptest::prelude::*;
use reader::piv::tags;
use reader::sw::Secret;
use reader::{CardError, ManagementKey, MgmtAlgorithm, PinBlock, PinStatus, Piv, PivError as Error, SimTransport, Slot, Transport};
use sha2::{Digest, Sha256};

const SERIAL: u32 = 4_242_001;

fn card() -> Piv<SimTransport> {
    let card = Card::new(PersistentState::blank(SERIAL), Box::new(MemoryStore::default()));
    Piv::new(SimTransport::new(card))
}

fn pin(s: &str) -> PinBlock {
    PinBlock::pin(s).unwrap()
}

fn puk(s: &str) -> PinBlock {
    PinBlock::puk(s).unwrap()
}

fn admin() -> Piv<SimTransport> {
    let mut c = card();
    c.select().unwrap();
    c.authenticate_management(&ManagementKey::default_blank()).unwrap();
    c
}

fn digest(msg: &[u8]) -> [u8; 32] {
    Sha256::digest(msg).into()
}

#[test]
fn select_parses_the_application_property_template() {
    let info = card().select().unwrap();
    assert_eq!(info.pix, vec![0x00, 0x00, 0x10, 0x00, 0x01, 0x00]);
    assert_eq!(info.label.as_deref(), Some("MedCard PIV"));
    assert_eq!(info.algorithms, vec![0x03, 0x08, 0x0A, 0x0C, 0x11]);
}

#[test]
fn serial_and_version_come_from_the_yubico_instructions() {
    let mut c = card();
    assert_eq!(c.serial().unwrap(), SERIAL);
    assert_eq!(c.version().unwrap(), (5, 4, 3));
}

#[test]
fn card_info_of_a_blank_card_lists_no_certificates_and_three_pin_tries() {
    let info = card().info().unwrap();
    assert_eq!(info.serial, SERIAL);
    assert_eq!(info.version, "5.4.3");
    assert!(info.certificates.is_empty());
    assert_eq!(info.pin, PinStatus::NotVerified { tries_left: 3 });
    assert_eq!(info.card_credential_bytes, None);
    assert_eq!(info.consent_token_bytes, None);
    let guid = info.chuid_guid.unwrap();
    // RFC 4122 version 4 and variant bits, as docs/card.md specifies.
    assert_eq!(guid.len(), 36);
    assert_eq!(&guid[14..15], "4");
    assert!(matches!(&guid[19..20], "8" | "9" | "a" | "b"), "{guid}");
}

#[test]
fn chuid_guid_matches_the_documented_derivation() {
    let mut h = Sha256::new();
    h.update(b"MedCard CHUID GUID v1");
    h.update(SERIAL.to_be_bytes());
    let mut want: [u8; 16] = h.finalize()[..16].try_into().unwrap();
    want[6] = (want[6] & 0x0F) | 0x40;
    want[8] = (want[8] & 0x3F) | 0x80;
    assert_eq!(card().chuid_guid().unwrap(), Some(want));
}

#[test]
fn absent_objects_read_as_none() {
    let mut c = card();
    assert_eq!(c.card_credential().unwrap(), None);
    assert_eq!(c.consent_token().unwrap(), None);
    assert_eq!(c.certificate(Slot::CardAuth).unwrap(), None);
    assert!(c.get_data(tags::DISCOVERY).unwrap().is_some());
}

#[test]
fn put_data_without_the_management_key_is_refused_with_plain_words() {
    let err = card().put_data(tags::CARD_CREDENTIAL, b"x").unwrap_err();
    assert!(matches!(err, Error::Card(CardError::SecurityStatusNotSatisfied { .. })), "{err:?}");
    assert_eq!(err.to_string(), "security status not satisfied: PUT DATA needs the management key (authenticate with it first)");
}

#[test]
fn long_objects_round_trip_through_command_chaining_and_get_response() {
    let mut c = admin();
    for len in [0usize, 1, 254, 255, 256, 600, 1500, 4000] {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        c.put_data(tags::CARD_CREDENTIAL, &content).unwrap();
        // An empty object deletes it (docs/card.md, PUT DATA).
        let want = (len > 0).then(|| content.clone());
        assert_eq!(c.card_credential().unwrap(), want, "length {len}");
    }
}

#[test]
fn patient_objects_and_certificates_are_read_back() {
    let mut c = admin();
    c.put_data(tags::CONSENT_TOKEN, b"consent-cose").unwrap();
    let cert = vec![0x30u8; 700];
    c.put_certificate(Slot::PivAuth, &cert).unwrap();
    assert_eq!(c.consent_token().unwrap().as_deref(), Some(&b"consent-cose"[..]));
    assert_eq!(c.certificate(Slot::PivAuth).unwrap(), Some(cert));
    let info = c.info().unwrap();
    assert_eq!(info.certificates, vec!["9A".to_string()]);
    assert_eq!(info.consent_token_bytes, Some(12));
}

#[test]
fn an_object_over_the_card_limit_is_refused_before_sending() {
    let mut c = admin();
    let err = c.put_data(tags::CARD_CREDENTIAL, &vec![0u8; 5000]).unwrap_err();
    assert!(matches!(err, Error::CommandTooLong { .. }), "{err:?}");
}

#[test]
fn wrong_management_key_is_rejected() {
    let mut c = card();
    let wrong = ManagementKey::new(MgmtAlgorithm::Tdes, &[9u8; 24]).unwrap();
    let err = c.authenticate_management(&wrong).unwrap_err();
    assert!(matches!(err, Error::Card(CardError::ManagementKeyRejected)), "{err:?}");
    let wrong_alg = ManagementKey::new(MgmtAlgorithm::Aes128, &[1u8; 16]).unwrap();
    let err = c.authenticate_management(&wrong_alg).unwrap_err();
    assert!(matches!(err, Error::Card(CardError::ManagementKeyRejected)), "{err:?}");
}

#[test]
fn set_management_key_to_each_aes_size_then_authenticate_with_it() {
    let mut c = admin();
    for (alg, len) in [(MgmtAlgorithm::Aes128, 16), (MgmtAlgorithm::Aes192, 24), (MgmtAlgorithm::Aes256, 32)] {
        let key = ManagementKey::new(alg, &vec![0x5A; len]).unwrap();
        c.set_management_key(&key).unwrap();
        c.transport_mut().reset().unwrap();
        assert!(c.put_data(tags::CONSENT_TOKEN, b"x").is_err(), "reset cleared authentication");
        c.authenticate_management(&key).unwrap();
        c.put_data(tags::CONSENT_TOKEN, b"x").unwrap();
    }
    // The old default no longer works.
    c.transport_mut().reset().unwrap();
    assert!(c.authenticate_management(&ManagementKey::default_blank()).is_err());
}

#[test]
fn management_key_debug_never_shows_the_key() {
    let k = ManagementKey::new(MgmtAlgorithm::Aes128, &[0xAB; 16]).unwrap();
    let d = format!("{k:?}");
    assert!(!d.to_lowercase().contains("ab, ") && !d.contains("171"), "{d}");
    assert!(!format!("{:?}", pin("987654")).contains("987654"));
}

#[test]
fn generate_without_the_management_key_is_refused() {
    let err = card().generate(Slot::CardAuth).unwrap_err();
    assert!(matches!(err, Error::Card(CardError::SecurityStatusNotSatisfied { .. })), "{err:?}");
}

#[test]
fn card_authentication_key_signs_without_pin_and_verifies_with_p256() {
    let mut c = admin();
    let vk = c.generate(Slot::CardAuth).unwrap();
    let d = digest(b"kiosk challenge");
    let sig = c.sign_digest(Slot::CardAuth, &d).unwrap();
    vk.verify_prehash(&d, &sig).unwrap();
    // The raw form for COSE re-parses to the same signature.
    let raw = sig.to_bytes();
    assert_eq!(reader::sig::from_raw(&raw).unwrap(), sig);
    // A different digest does not verify.
    assert!(vk.verify_prehash(&digest(b"other"), &sig).is_err());
}

#[test]
fn signature_slot_needs_the_pin_before_every_signature() {
    let mut c = admin();
    let vk = c.generate(Slot::Signature).unwrap();
    let d = digest(b"consent token");
    let err = c.sign_digest(Slot::Signature, &d).unwrap_err();
    assert!(err.to_string().contains("the PIN, verified just before each signature"), "{err}");
    c.verify_pin(&pin("123456")).unwrap();
    let sig = c.sign_digest(Slot::Signature, &d).unwrap();
    vk.verify_prehash(&d, &sig).unwrap();
    assert!(c.sign_digest(Slot::Signature, &d).is_err(), "the grant is consumed");
}

#[test]
fn piv_authentication_slot_needs_the_pin_once_per_session() {
    let mut c = admin();
    let vk = c.generate(Slot::PivAuth).unwrap();
    let d = digest(b"presence");
    assert!(matches!(c.sign_digest(Slot::PivAuth, &d), Err(Error::Card(CardError::SecurityStatusNotSatisfied { .. }))));
    c.verify_pin(&pin("123456")).unwrap();
    for _ in 0..2 {
        vk.verify_prehash(&d, &c.sign_digest(Slot::PivAuth, &d).unwrap()).unwrap();
    }
    c.logout().unwrap();
    assert!(c.sign_digest(Slot::PivAuth, &d).is_err());
}

#[test]
fn signing_with_an_empty_slot_says_there_is_no_key() {
    let err = card().sign_digest(Slot::CardAuth, &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::Card(CardError::NoKey { .. })), "{err:?}");
}

#[test]
fn ecdh_with_9d_matches_the_host_computation() {
    let mut c = admin();
    let card_pub = c.generate(Slot::KeyManagement).unwrap();
    c.verify_pin(&pin("123456")).unwrap();
    let host = p256::SecretKey::try_generate_from_rng(&mut getrandom::SysRng).unwrap();
    let z = c.ecdh(&host.public_key()).unwrap();
    let card_pk = p256::PublicKey::from(&card_pub);
    let want = p256::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_pk.as_affine());
    assert_eq!(&z[..], want.raw_secret_bytes().as_slice());
}

#[test]
fn pin_status_counts_down_then_blocks_and_the_puk_unblocks() {
    let mut c = card();
    assert_eq!(c.pin_status().unwrap(), PinStatus::NotVerified { tries_left: 3 });
    let e = c.verify_pin(&pin("000000")).unwrap_err();
    assert!(matches!(e, Error::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: 2 })));
    assert_eq!(e.to_string(), "wrong PIN, 2 tries left");
    assert_eq!(c.pin_status().unwrap(), PinStatus::NotVerified { tries_left: 2 });
    assert_eq!(c.verify_pin(&pin("000000")).unwrap_err().to_string(), "wrong PIN, 1 try left");
    assert!(matches!(c.verify_pin(&pin("000000")), Err(Error::Card(CardError::WrongSecret { tries_left: 0, .. }))));
    assert_eq!(c.pin_status().unwrap(), PinStatus::Blocked);
    let e = c.verify_pin(&pin("123456")).unwrap_err();
    assert!(matches!(e, Error::Card(CardError::PinBlocked)), "{e:?}");
    assert_eq!(e.to_string(), "PIN blocked: unblock it with the PUK");

    let e = c.unblock_pin(&puk("87654321"), &pin("246810")).unwrap_err();
    assert!(matches!(e, Error::Card(CardError::WrongSecret { secret: Secret::Puk, tries_left: 2 })));
    assert_eq!(e.to_string(), "wrong PUK, 2 tries left");
    c.unblock_pin(&puk("12345678"), &pin("246810")).unwrap();
    assert_eq!(c.pin_status().unwrap(), PinStatus::NotVerified { tries_left: 3 });
    assert!(c.verify_pin(&pin("123456")).is_err());
    c.verify_pin(&pin("246810")).unwrap();
    assert_eq!(c.pin_status().unwrap(), PinStatus::Verified);
}

#[test]
fn blocked_puk_is_reported_as_final() {
    let mut c = card();
    for _ in 0..3 {
        let _ = c.unblock_pin(&puk("00000000"), &pin("111111"));
    }
    let e = c.unblock_pin(&puk("12345678"), &pin("111111")).unwrap_err();
    assert!(matches!(e, Error::Card(CardError::PukBlocked)), "{e:?}");
}

#[test]
fn change_pin_and_puk() {
    let mut c = card();
    let e = c.change_pin(&pin("999999"), &pin("13579135")).unwrap_err();
    assert_eq!(e.to_string(), "wrong PIN, 2 tries left");
    c.change_pin(&pin("123456"), &pin("13579135")).unwrap();
    c.verify_pin(&pin("13579135")).unwrap();
    c.change_puk(&puk("12345678"), &puk("55667788")).unwrap();
    c.unblock_pin(&puk("55667788"), &pin("123456")).unwrap();
    c.verify_pin(&pin("123456")).unwrap();
}

#[test]
fn pins_are_validated_before_anything_is_sent() {
    assert!(PinBlock::pin("12345").is_err());
    assert!(PinBlock::pin("123456789").is_err());
    assert!(PinBlock::pin("12345a").is_err());
    assert!(PinBlock::puk("1234 678").is_err());
    assert!(PinBlock::puk("abcdefgh").is_err());
    assert!(PinBlock::pin("12345678").is_ok());
}

#[test]
fn a_pulled_card_gives_a_typed_card_removed_error() {
    let mut c = admin();
    c.generate(Slot::CardAuth).unwrap();
    let pulled = c.transport_mut().remove_card().unwrap();
    let e = c.sign_digest(Slot::CardAuth, &[7; 32]).unwrap_err();
    assert!(matches!(e, Error::Transport(reader::TransportError::CardRemoved { .. })), "{e:?}");
    assert!(e.to_string().starts_with("card removed"), "{e}");
    // Reinserted: powered up afresh, the key is still there, the management key must be redone.
    c.transport_mut().insert_card(pulled);
    c.sign_digest(Slot::CardAuth, &[7; 32]).unwrap();
    assert!(c.put_data(tags::CONSENT_TOKEN, b"x").is_err());
}

// ---------------------------------------------------------------------------------------------
// A card that answers garbage: the client returns errors, never panics.

/// A transport that answers every command with `script` bytes (cycled).
struct Garbage {
    answers: Vec<Vec<u8>>,
    next: usize,
}

impl reader::Transport for Garbage {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, reader::TransportError> {
        let a = self.answers.get(self.next % self.answers.len().max(1)).cloned().unwrap_or_default();
        self.next += 1;
        if a.len() < 2 {
            return Err(reader::TransportError::ShortResponse { got: a.len() });
        }
        Ok(a)
    }
    fn reset(&mut self) -> Result<(), reader::TransportError> {
        Ok(())
    }
    fn reader_name(&self) -> &str {
        "garbage"
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("READER_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn garbage_card_responses_never_panic_the_client(
        answers in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80),
                // Plausible shapes: TLV-ish data with success / 61xx / 63Cx status words.
                (proptest::collection::vec(any::<u8>(), 0..80), prop_oneof![
                    Just([0x90u8, 0x00]), any::<u8>().prop_map(|n| [0x61, n]), (0u8..16).prop_map(|n| [0x63, 0xC0 | n]),
                ]).prop_map(|(mut d, sw)| { d.extend_from_slice(&sw); d }),
            ],
            1..6,
        ),
    ) {
        let mut c = Piv::new(Garbage { answers, next: 0 });
        let _ = c.select();
        let _ = c.info();
        let _ = c.serial();
        let _ = c.version();
        let _ = c.chuid_guid();
        let _ = c.certificate(Slot::PivAuth);
        let _ = c.generate(Slot::CardAuth);
        let _ = c.sign_digest(Slot::CardAuth, &[3; 32]);
        let _ = c.authenticate_management(&ManagementKey::default_blank());
        let _ = c.pin_status();
        let _ = c.verify_pin(&PinBlock::pin("123456").unwrap());
        let peer = p256::SecretKey::try_generate_from_rng(&mut getrandom::SysRng).unwrap().public_key();
        let _ = c.ecdh(&peer);
    }
}

#[test]
fn a_card_that_never_stops_sending_61xx_is_cut_off() {
    let mut c = Piv::new(Garbage { answers: vec![vec![0xAA; 250].into_iter().chain([0x61, 0x00]).collect()], next: 0 });
    let e = c.get_data(tags::CHUID).unwrap_err();
    assert!(matches!(e, Error::ResponseTooLong { .. }), "{e:?}");
}

#[test]
fn a_card_that_sends_61xx_without_data_is_refused() {
    let mut c = Piv::new(Garbage { answers: vec![vec![0x61, 0x10]], next: 0 });
    assert!(matches!(c.serial(), Err(Error::Unexpected { .. })));
}

/// Records every APDU on its way to the simulator.
struct Recorder {
    inner: SimTransport,
    sent: Vec<Vec<u8>>,
}

impl reader::Transport for Recorder {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, reader::TransportError> {
        self.sent.push(apdu.to_vec());
        self.inner.transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), reader::TransportError> {
        self.inner.reset()
    }
    fn reader_name(&self) -> &str {
        "recorder"
    }
}

#[test]
fn put_data_chains_255_byte_blocks_with_cla_10_and_get_data_follows_61xx() {
    let card = Card::new(PersistentState::blank(SERIAL), Box::new(MemoryStore::default()));
    let mut c = Piv::new(Recorder { inner: SimTransport::new(card), sent: Vec::new() });
    c.authenticate_management(&ManagementKey::default_blank()).unwrap();
    let content = vec![0x42u8; 1000];
    let before = c.transport_mut().sent.len();
    c.put_data(tags::CARD_CREDENTIAL, &content).unwrap();
    let put: Vec<Vec<u8>> = c.transport_mut().sent[before..].to_vec();
    // 5C 03 5FFFC0 53 82 03E8 content = 5 + 4 + 1000 = 1009 bytes → 255+255+255+244.
    assert_eq!(put.len(), 4);
    for (i, apdu) in put.iter().enumerate() {
        let last = i == put.len() - 1;
        assert_eq!(apdu[..4], [if last { 0x00 } else { 0x10 }, 0xDB, 0x3F, 0xFF], "block {i}");
        assert_eq!(usize::from(apdu[4]), if last { 244 } else { 255 }, "block {i}");
        assert_eq!(apdu.len(), 5 + usize::from(apdu[4]), "no Le on PUT DATA");
    }
    let before = c.transport_mut().sent.len();
    assert_eq!(c.card_credential().unwrap(), Some(content));
    let get: Vec<Vec<u8>> = c.transport_mut().sent[before..].to_vec();
    // 1004-byte response (53 82 03E8 + 1000) in 256-byte parts: GET DATA + 3 GET RESPONSE.
    assert_eq!(get.len(), 4);
    assert_eq!(get[0][..4], [0x00, 0xCB, 0x3F, 0xFF]);
    for g in &get[1..] {
        assert_eq!(g, &vec![0x00, 0xC0, 0x00, 0x00, 0x00]);
    }
}
