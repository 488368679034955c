//! Every command of the card edge and every error status word, driving `Card::process`
//! directly with APDUs as a host would build them.
//!
//! The host side (APDU and TLV encoding, the 3DES/AES management-key challenge-response,
//! ECDSA verification and ECDH) is written here independently of the applet's own modules,
//! so these tests check the card against the spec rather than against itself.
#![allow(clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use card_applet_sim::{Card, DEFAULT_MANAGEMENT_KEY, MemoryStore, Persist, PersistError, PersistentState, VERSION};
use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Host side: APDUs, TLV, management-key crypto.

const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
const SERIAL: u32 = 0x0102_0304;
const PIN: &[u8; 8] = b"123456\xFF\xFF";
const PUK: &[u8; 8] = b"12345678";

const CERT_TAGS: [u32; 4] = [0x5FC105, 0x5FC10A, 0x5FC10B, 0x5FC101];
/// MedCard's patient objects (docs/card.md): card credential and consent token.
const CARD_CREDENTIAL: u32 = 0x5FFFC0;
const CONSENT_TOKEN: u32 = 0x5FFFC1;

fn blank_card() -> Card {
    Card::new(PersistentState::blank(SERIAL), Box::new(MemoryStore::default()))
}

/// Build a command APDU: short encoding (Le = 00) when the data fits, extended otherwise.
fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![cla, ins, p1, p2];
    if data.is_empty() {
        out.push(0x00);
    } else if data.len() <= 255 {
        out.push(data.len() as u8);
        out.extend_from_slice(data);
        out.push(0x00);
    } else {
        out.push(0x00);
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&[0x00, 0x00]);
    }
    out
}

/// Response data and status word.
fn split(resp: &[u8]) -> (Vec<u8>, u16) {
    assert!(resp.len() >= 2, "response shorter than a status word: {resp:02X?}");
    let (data, sw) = resp.split_at(resp.len() - 2);
    (data.to_vec(), u16::from_be_bytes([sw[0], sw[1]]))
}

fn send(card: &mut Card, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
    split(&card.process(&apdu(0x00, ins, p1, p2, data)))
}

fn sw(card: &mut Card, ins: u8, p1: u8, p2: u8, data: &[u8]) -> u16 {
    send(card, ins, p1, p2, data).1
}

fn tag_bytes(tag: u32) -> Vec<u8> {
    let b = tag.to_be_bytes();
    let skip = b.iter().take(3).take_while(|x| **x == 0).count();
    b[skip..].to_vec()
}

/// BER-TLV: tag, definite length (short, 81, 82), value.
fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = tag_bytes(tag);
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xFF => out.extend_from_slice(&[0x81, n as u8]),
        n => {
            out.push(0x82);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    out
}

/// Read one TLV: (tag, value, rest).
fn read_tlv(buf: &[u8]) -> (u32, &[u8], &[u8]) {
    let mut i = 0;
    let mut tag = u32::from(buf[i]);
    if buf[i] & 0x1F == 0x1F {
        loop {
            i += 1;
            tag = (tag << 8) | u32::from(buf[i]);
            if buf[i] & 0x80 == 0 {
                break;
            }
        }
    }
    i += 1;
    let len = match buf[i] {
        n if n < 0x80 => {
            i += 1;
            usize::from(n)
        }
        0x81 => {
            i += 2;
            usize::from(buf[i - 1])
        }
        0x82 => {
            i += 3;
            usize::from(u16::from_be_bytes([buf[i - 2], buf[i - 1]]))
        }
        other => panic!("unexpected length form {other:#x}"),
    };
    (tag, &buf[i..i + len], &buf[i + len..])
}

/// All TLVs of a constructed value.
fn fields(mut buf: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (t, v, rest) = read_tlv(buf);
        out.push((t, v.to_vec()));
        buf = rest;
    }
    out
}

/// The value of `outer` (the whole buffer), then of `inner` inside it.
fn nested(buf: &[u8], outer: u32, inner: u32) -> Vec<u8> {
    let (t, v, rest) = read_tlv(buf);
    assert_eq!((t, rest.len()), (outer, 0), "expected one {outer:X} TLV in {buf:02X?}");
    fields(v).into_iter().find(|(t, _)| *t == inner).map(|(_, v)| v).expect("inner tag missing")
}

fn random(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("random");
    b
}

fn ecb<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(key: &[u8], block: &[u8], enc: bool) -> Vec<u8> {
    let c = C::new_from_slice(key).expect("key length");
    let mut b = cipher::Block::<C>::try_from(block).expect("block length");
    if enc {
        c.encrypt_block(&mut b);
    } else {
        c.decrypt_block(&mut b);
    }
    b.to_vec()
}

/// One ECB block with the management key, as the host computes it (SP 800-78-4 §3).
fn mgmt_cipher(alg: u8, key: &[u8], block: &[u8], enc: bool) -> Vec<u8> {
    match alg {
        0x03 => ecb::<des::TdesEde3>(key, block, enc),
        0x08 => ecb::<aes::Aes128>(key, block, enc),
        0x0A => ecb::<aes::Aes192>(key, block, enc),
        0x0C => ecb::<aes::Aes256>(key, block, enc),
        other => panic!("no such management algorithm {other:#x}"),
    }
}

fn block_len(alg: u8) -> usize {
    if alg == 0x03 { 8 } else { 16 }
}

/// Mutual authentication (SP 800-73-4 Part 2 App. A.1, as yubico-piv-tool does it): ask for a
/// witness, decrypt it, send it back with our challenge, check the card's encryption of the
/// challenge. Returns the status word of the second step.
fn mgmt_mutual(card: &mut Card, alg: u8, key: &[u8], with_82: bool) -> u16 {
    let (r, s) = send(card, 0x87, alg, 0x9B, &tlv(0x7C, &tlv(0x80, &[])));
    assert_eq!(s, 0x9000, "witness request");
    let witness = nested(&r, 0x7C, 0x80);
    assert_eq!(witness.len(), block_len(alg));
    let plain = mgmt_cipher(alg, key, &witness, false);
    let challenge = random(block_len(alg));
    let mut body = tlv(0x80, &plain);
    body.extend(tlv(0x81, &challenge));
    if with_82 {
        body.extend(tlv(0x82, &[]));
    }
    let (r, s) = send(card, 0x87, alg, 0x9B, &tlv(0x7C, &body));
    if s == 0x9000 {
        let answer = nested(&r, 0x7C, 0x82);
        assert_eq!(answer, mgmt_cipher(alg, key, &challenge, true), "card did not prove the key");
    }
    s
}

/// External authentication (App. A.2, as OpenSC's piv-tool does it): get a challenge, encrypt it.
fn mgmt_external(card: &mut Card, alg: u8, key: &[u8]) -> u16 {
    let (r, s) = send(card, 0x87, alg, 0x9B, &tlv(0x7C, &tlv(0x81, &[])));
    assert_eq!(s, 0x9000, "challenge request");
    let challenge = nested(&r, 0x7C, 0x81);
    assert_eq!(challenge.len(), block_len(alg));
    let response = mgmt_cipher(alg, key, &challenge, true);
    sw(card, 0x87, alg, 0x9B, &tlv(0x7C, &tlv(0x82, &response)))
}

fn authenticate_default(card: &mut Card) {
    assert_eq!(mgmt_mutual(card, 0x03, &DEFAULT_MANAGEMENT_KEY, false), 0x9000);
    assert!(card.management_authenticated());
}

fn verify_pin(card: &mut Card, pin: &[u8]) -> u16 {
    sw(card, 0x20, 0x00, 0x80, pin)
}

fn generate(card: &mut Card, slot: u8) -> VerifyingKey {
    let (r, s) = send(card, 0x47, 0x00, slot, &tlv(0xAC, &tlv(0x80, &[0x11])));
    assert_eq!(s, 0x9000, "generate in {slot:X}");
    let point = nested(&r, 0x7F49, 0x86);
    assert_eq!((point.len(), point[0]), (65, 0x04), "uncompressed P-256 point");
    VerifyingKey::from_sec1_bytes(&point).expect("point on the curve")
}

fn sign(card: &mut Card, slot: u8, digest: &[u8]) -> (Vec<u8>, u16) {
    let mut body = tlv(0x82, &[]);
    body.extend(tlv(0x81, digest));
    send(card, 0x87, 0x11, slot, &tlv(0x7C, &body))
}

fn assert_signature_verifies(vk: &VerifyingKey, digest: &[u8], resp: &[u8]) {
    let der = nested(resp, 0x7C, 0x82);
    let sig = Signature::from_der(&der).expect("DER ECDSA signature");
    vk.verify_prehash(digest, &sig).expect("signature verifies against the generated point");
}

fn get_data(card: &mut Card, tag: u32) -> (Vec<u8>, u16) {
    send(card, 0xCB, 0x3F, 0xFF, &tlv(0x5C, &tag_bytes(tag)))
}

/// GET DATA, following 61xx with GET RESPONSE until 9000.
fn get_data_all(card: &mut Card, tag: u32) -> (Vec<u8>, u16) {
    let (mut all, mut s) = get_data(card, tag);
    let mut rounds = 0;
    while s >> 8 == 0x61 {
        let le = (s & 0xFF) as u8;
        let (more, s2) = split(&card.process(&[0x00, 0xC0, 0x00, 0x00, le]));
        all.extend(more);
        s = s2;
        rounds += 1;
        assert!(rounds < 100, "GET RESPONSE never ends");
    }
    (all, s)
}

fn put_data_apdu_body(tag: u32, content: &[u8]) -> Vec<u8> {
    let mut body = tlv(0x5C, &tag_bytes(tag));
    body.extend(tlv(0x53, content));
    body
}

/// PUT DATA with command chaining (CLA 10) in blocks of at most 255 bytes.
fn put_data_chained(card: &mut Card, tag: u32, content: &[u8]) -> u16 {
    let body = put_data_apdu_body(tag, content);
    let blocks: Vec<&[u8]> = body.chunks(255).collect();
    for (i, block) in blocks.iter().enumerate() {
        let last = i + 1 == blocks.len();
        let (_, s) = split(&card.process(&apdu(if last { 0x00 } else { 0x10 }, 0xDB, 0x3F, 0xFF, block)));
        if !last {
            assert_eq!(s, 0x9000, "chained block {i}");
        } else {
            return s;
        }
    }
    unreachable!("no blocks")
}

fn pin_block(digits: &[u8]) -> Vec<u8> {
    let mut b = digits.to_vec();
    b.resize(8, 0xFF);
    b
}

// ---------------------------------------------------------------------------------------------
// SELECT

#[test]
fn select_full_aid_returns_application_property_template_naming_the_piv_aid() {
    let mut card = blank_card();
    let (r, s) = send(&mut card, 0xA4, 0x04, 0x00, &PIV_AID);
    assert_eq!(s, 0x9000);
    let (t, body, rest) = read_tlv(&r);
    assert_eq!((t, rest.len()), (0x61, 0));
    let f = fields(body);
    let get = |tag| f.iter().find(|(t, _)| *t == tag).map(|(_, v)| v.clone());
    assert_eq!(get(0x4F).as_deref(), Some(&PIV_AID[5..]), "4F holds the PIX");
    let alloc = get(0x79).expect("79 coexistent tag allocation authority");
    assert_eq!(nested(&tlv(0x79, &alloc), 0x79, 0x4F), PIV_AID.to_vec());
    let algs = fields(&get(0xAC).expect("AC algorithms"));
    assert!(algs.contains(&(0x80, vec![0x11])), "P-256 listed: {algs:02X?}");
    assert!(algs.contains(&(0x80, vec![0x03])), "3DES listed");
    assert!(algs.contains(&(0x06, vec![0x00])), "06 00 terminator");
}

#[test]
fn select_truncated_aid_is_accepted() {
    let mut card = blank_card();
    for len in [5, 9, 10] {
        assert_eq!(sw(&mut card, 0xA4, 0x04, 0x00, &PIV_AID[..len]), 0x9000, "{len}-byte AID");
    }
}

#[test]
fn select_of_other_aids_reports_6a82() {
    let mut card = blank_card();
    let openpgp = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
    let too_short = &PIV_AID[..4];
    let mut too_long = PIV_AID.to_vec();
    too_long.push(0x00);
    let mut wrong_version = PIV_AID.to_vec();
    wrong_version[10] = 0x02;
    for aid in [&openpgp[..], too_short, &too_long, &wrong_version, &[0xA0, 0, 0, 0, 0x63]] {
        assert_eq!(sw(&mut card, 0xA4, 0x04, 0x00, aid), 0x6A82, "{aid:02X?}");
    }
}

#[test]
fn select_with_wrong_p1_p2_reports_6a86() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0xA4, 0x00, 0x00, &PIV_AID), 0x6A86);
    assert_eq!(sw(&mut card, 0xA4, 0x04, 0x0C, &PIV_AID), 0x6A86);
}

// ---------------------------------------------------------------------------------------------
// GET DATA

#[test]
fn get_data_discovery_object_names_the_piv_aid_and_pin_policy() {
    let mut card = blank_card();
    let (r, s) = get_data(&mut card, 0x7E);
    assert_eq!(s, 0x9000);
    assert_eq!(nested(&r, 0x7E, 0x4F), PIV_AID.to_vec());
    assert_eq!(nested(&r, 0x7E, 0x5F2F), vec![0x40, 0x00], "PIV PIN only");
}

#[test]
fn get_data_chuid_carries_a_guid_that_differs_per_serial() {
    let mut a = blank_card();
    let mut b = Card::new(PersistentState::blank(SERIAL + 1), Box::new(MemoryStore::default()));
    let (ra, sa) = get_data(&mut a, 0x5FC102);
    let (rb, sb) = get_data(&mut b, 0x5FC102);
    assert_eq!((sa, sb), (0x9000, 0x9000));
    let ga = nested(&ra, 0x53, 0x34);
    let gb = nested(&rb, 0x53, 0x34);
    assert_eq!(ga.len(), 16, "GUID is 16 bytes");
    assert_ne!(ga, gb, "GUID must be per card");
    assert_eq!(nested(&ra, 0x53, 0x30).len(), 25, "FASC-N is 25 bytes");
    // Same serial, same GUID: the CHUID is stable across power cycles and reloads.
    let mut a2 = blank_card();
    assert_eq!(nested(&get_data(&mut a2, 0x5FC102).0, 0x53, 0x34), ga);
}

#[test]
fn get_data_ccc_and_key_history_are_present_on_a_blank_card() {
    let mut card = blank_card();
    let (ccc, s) = get_data(&mut card, 0x5FC107);
    assert_eq!(s, 0x9000);
    let card_id = nested(&ccc, 0x53, 0xF0);
    assert_eq!(&card_id[..5], &[0xA0, 0x00, 0x00, 0x01, 0x16], "GSC-RID");
    assert!(card_id.ends_with(&SERIAL.to_be_bytes()), "card identifier names the serial");
    let (kh, s) = get_data(&mut card, 0x5FC10C);
    assert_eq!(s, 0x9000);
    assert_eq!(nested(&kh, 0x53, 0xC1), vec![0], "no keys with on-card certificates");
    assert_eq!(nested(&kh, 0x53, 0xC2), vec![0], "no keys with off-card certificates");
}

#[test]
fn get_data_of_absent_certificates_and_patient_objects_reports_6a82() {
    let mut card = blank_card();
    for tag in CERT_TAGS.into_iter().chain([CARD_CREDENTIAL, CONSENT_TOKEN, 0x5FC103, 0x5FFF00]) {
        assert_eq!(get_data(&mut card, tag).1, 0x6A82, "{tag:X}");
    }
}

#[test]
fn get_data_returns_every_object_put_data_wrote() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    for (i, tag) in CERT_TAGS.into_iter().chain([CARD_CREDENTIAL, CONSENT_TOKEN, 0x5FC102]).enumerate() {
        let content = tlv(0x70, &vec![i as u8; 40 + i]);
        assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(tag, &content)), 0x9000, "{tag:X}");
    }
    for (i, tag) in CERT_TAGS.into_iter().chain([CARD_CREDENTIAL, CONSENT_TOKEN, 0x5FC102]).enumerate() {
        let (r, s) = get_data(&mut card, tag);
        assert_eq!(s, 0x9000);
        assert_eq!(r, tlv(0x53, &tlv(0x70, &vec![i as u8; 40 + i])), "{tag:X}");
    }
}

#[test]
fn get_data_with_malformed_tag_list_reports_6a80() {
    let mut card = blank_card();
    for bad in [
        vec![0x5C, 0x05, 0x5F, 0xC1],             // length beyond the data
        vec![0x5C, 0x04, 0x5F, 0xC1, 0x02, 0x00], // 4-byte tag
        vec![0x5C, 0x00],                         // empty tag
        vec![0x5D, 0x03, 0x5F, 0xC1, 0x02],       // not 5C
        vec![0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00], // trailing byte
        vec![0x5C, 0x84, 0x00, 0x00, 0x00, 0x03], // unsupported length form
    ] {
        assert_eq!(sw(&mut card, 0xCB, 0x3F, 0xFF, &bad), 0x6A80, "{bad:02X?}");
    }
}

#[test]
fn get_data_with_wrong_p1_p2_reports_6a86() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0xCB, 0x00, 0x00, &tlv(0x5C, &[0x7E])), 0x6A86);
}

// ---------------------------------------------------------------------------------------------
// PUT DATA, chaining, GET RESPONSE

#[test]
fn put_data_without_management_key_reports_6982_and_stores_nothing() {
    let mut card = blank_card();
    let before = card.state().clone();
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(CARD_CREDENTIAL, b"cred")), 0x6982);
    // Not even after the PIN: PUT DATA needs the management key.
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(CARD_CREDENTIAL, b"cred")), 0x6982);
    assert!(card.state().objects == before.objects);
    assert_eq!(get_data(&mut card, CARD_CREDENTIAL).1, 0x6A82);
}

#[test]
fn chained_put_data_stores_a_large_object_and_get_response_pages_it_back_with_61xx() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let cert: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let content = tlv(0x70, &cert);
    assert_eq!(put_data_chained(&mut card, 0x5FC105, &content), 0x9000);
    let (first, s) = get_data(&mut card, 0x5FC105);
    assert_eq!(first.len(), 256, "first part is Le = 256 bytes");
    assert_eq!(s, 0x6100, "61 00: 256 or more bytes remain");
    let (all, s) = get_data_all(&mut card, 0x5FC105);
    assert_eq!(s, 0x9000);
    assert_eq!(all, tlv(0x53, &content));
}

#[test]
fn get_response_announces_the_exact_remainder_when_under_256() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let content = vec![0x42; 300];
    assert_eq!(put_data_chained(&mut card, CONSENT_TOKEN, &content), 0x9000);
    let (first, s) = get_data(&mut card, CONSENT_TOKEN);
    let total = tlv(0x53, &content).len();
    assert_eq!(s, 0x6100 | (total - 256) as u16);
    let (rest, s) = split(&card.process(&[0x00, 0xC0, 0x00, 0x00, (total - 256) as u8]));
    assert_eq!(s, 0x9000);
    assert_eq!([first, rest].concat(), tlv(0x53, &content));
}

#[test]
fn extended_le_returns_a_long_object_in_one_response() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let content = vec![0x17; 1000];
    assert_eq!(put_data_chained(&mut card, CARD_CREDENTIAL, &content), 0x9000);
    let tag_list = tlv(0x5C, &tag_bytes(CARD_CREDENTIAL));
    let mut cmd = vec![0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, tag_list.len() as u8];
    cmd.extend(tag_list);
    cmd.extend([0x00, 0x00]);
    let (r, s) = split(&card.process(&cmd));
    assert_eq!((r, s), (tlv(0x53, &content), 0x9000));
}

#[test]
fn get_response_with_nothing_pending_reports_6985() {
    let mut card = blank_card();
    assert_eq!(split(&card.process(&[0x00, 0xC0, 0x00, 0x00, 0x00])).1, 0x6985);
}

#[test]
fn get_response_with_wrong_p1_p2_reports_6a86() {
    let mut card = blank_card();
    assert_eq!(split(&card.process(&[0x00, 0xC0, 0x01, 0x00, 0x00])).1, 0x6A86);
}

#[test]
fn pending_response_is_dropped_by_any_other_command() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    assert_eq!(put_data_chained(&mut card, 0x5FC105, &vec![1; 600]), 0x9000);
    assert_eq!(get_data(&mut card, 0x5FC105).1, 0x6100);
    assert_eq!(sw(&mut card, 0xFD, 0, 0, &[]), 0x9000);
    assert_eq!(split(&card.process(&[0x00, 0xC0, 0x00, 0x00, 0x00])).1, 0x6985);
}

#[test]
fn put_data_of_a_tag_outside_the_object_list_reports_6a80() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    for tag in [0x7E, 0x5FC104, 0x5FFF00, 0x5FFF01, 0x5FFFC2] {
        assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(tag, b"x")), 0x6A80, "{tag:X}");
    }
}

#[test]
fn put_data_with_bad_tlv_reports_6a80_and_stores_nothing() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let before = card.state().clone();
    let mut trailing = put_data_apdu_body(CARD_CREDENTIAL, b"x");
    trailing.push(0x00);
    let mut truncated = put_data_apdu_body(CARD_CREDENTIAL, b"xyz");
    truncated.pop();
    for bad in [
        trailing,
        truncated,
        tlv(0x53, b"no tag list"),
        [tlv(0x5C, &tag_bytes(CARD_CREDENTIAL)), tlv(0x54, b"x")].concat(),
        tlv(0x5C, &tag_bytes(CARD_CREDENTIAL)),
    ] {
        assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &bad), 0x6A80, "{bad:02X?}");
    }
    assert!(*card.state() == before);
}

#[test]
fn put_data_with_wrong_p1_p2_reports_6a86() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0x00, &put_data_apdu_body(CARD_CREDENTIAL, b"x")), 0x6A86);
}

#[test]
fn put_data_with_an_empty_container_deletes_the_object() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(CONSENT_TOKEN, b"token")), 0x9000);
    assert_eq!(get_data(&mut card, CONSENT_TOKEN).1, 0x9000);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(CONSENT_TOKEN, &[])), 0x9000);
    assert_eq!(get_data(&mut card, CONSENT_TOKEN).1, 0x6A82);
}

#[test]
fn over_long_chain_is_refused_with_6a84_and_nothing_is_stored() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let before = card.state().clone();
    let block = [0xAA; 255];
    let mut refused = None;
    for i in 0..100 {
        let (_, s) = split(&card.process(&apdu(0x10, 0xDB, 0x3F, 0xFF, &block)));
        if s != 0x9000 {
            refused = Some((i, s));
            break;
        }
    }
    let (blocks, s) = refused.expect("a 25 KB chain was accepted");
    assert_eq!(s, 0x6A84);
    assert!(blocks * 255 <= card_applet_sim::MAX_CHAIN_LEN, "refused only after the limit");
    // The chain is gone: a final block alone is just a malformed PUT DATA.
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &block), 0x6A80);
    assert!(*card.state() == before);
}

#[test]
fn over_long_object_in_one_chain_is_refused_with_6a84() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    assert_eq!(put_data_chained(&mut card, CARD_CREDENTIAL, &vec![0; 4097]), 0x6A84);
    assert_eq!(get_data(&mut card, CARD_CREDENTIAL).1, 0x6A82);
}

#[test]
fn chain_interrupted_by_another_command_is_discarded() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let body = put_data_apdu_body(CARD_CREDENTIAL, &[7; 100]);
    let (head, tail) = body.split_at(50);
    assert_eq!(split(&card.process(&apdu(0x10, 0xDB, 0x3F, 0xFF, head))).1, 0x9000);
    assert_eq!(sw(&mut card, 0xFD, 0, 0, &[]), 0x9000);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, tail), 0x6A80, "the head was dropped");
    assert_eq!(get_data(&mut card, CARD_CREDENTIAL).1, 0x6A82);
}

// ---------------------------------------------------------------------------------------------
// VERIFY

#[test]
fn empty_verify_on_a_fresh_card_reports_63c3() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x80, &[]), 0x63C3);
}

#[test]
fn verify_with_default_pin_succeeds_and_empty_verify_then_reports_9000() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert!(card.pin_verified());
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x80, &[]), 0x9000);
}

#[test]
fn verify_with_wrong_pin_decrements_tries_and_reports_63c2() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, &pin_block(b"654321")), 0x63C2);
    assert_eq!(card.state().pin.tries_left, 2);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x80, &[]), 0x63C2);
    assert!(!card.pin_verified());
}

#[test]
fn three_wrong_pins_block_the_pin_and_even_the_right_pin_then_reports_6983() {
    let mut card = blank_card();
    let wrong = pin_block(b"000000");
    assert_eq!(verify_pin(&mut card, &wrong), 0x63C2);
    assert_eq!(verify_pin(&mut card, &wrong), 0x63C1);
    assert_eq!(verify_pin(&mut card, &wrong), 0x63C0);
    assert_eq!(verify_pin(&mut card, PIN), 0x6983);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x80, &[]), 0x6983);
    assert!(!card.pin_verified());
    assert_eq!(card.state().pin.tries_left, 0);
}

#[test]
fn correct_pin_restores_the_try_counter() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, &pin_block(b"999999")), 0x63C2);
    assert_eq!(verify_pin(&mut card, &pin_block(b"999999")), 0x63C1);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(card.state().pin.tries_left, 3);
}

#[test]
fn wrong_pin_clears_an_earlier_verification() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(verify_pin(&mut card, &pin_block(b"1234567")), 0x63C2);
    assert!(!card.pin_verified());
}

#[test]
fn malformed_pin_reports_6a80_and_spends_no_try() {
    let mut card = blank_card();
    for bad in [
        b"12345\xFF\xFF\xFF".to_vec(),  // 5 digits
        b"12345a\xFF\xFF".to_vec(),     // a letter
        b"123456\x00\x00".to_vec(),     // padded with 00
        b"123456\xFF1".to_vec(),        // digit after padding
        b"123456\xFF".to_vec(),         // 7 bytes
        b"123456\xFF\xFF\xFF".to_vec(), // 9 bytes
        b"123456".to_vec(),             // unpadded
    ] {
        assert_eq!(verify_pin(&mut card, &bad), 0x6A80, "{bad:02X?}");
    }
    assert_eq!(card.state().pin.tries_left, 3);
}

#[test]
fn verify_logout_with_p1_ff_clears_the_pin_status() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(sw(&mut card, 0x20, 0xFF, 0x80, &[]), 0x9000);
    assert!(!card.pin_verified());
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x80, &[]), 0x63C3);
    assert_eq!(sw(&mut card, 0x20, 0xFF, 0x80, PIN), 0x6700, "logout takes no data");
}

#[test]
fn verify_with_wrong_references_reports_6a86_or_6a88() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, PIN), 0x6A86, "PUK is not VERIFY-able");
    assert_eq!(sw(&mut card, 0x20, 0x01, 0x80, PIN), 0x6A86);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x00, PIN), 0x6A88, "global PIN not supported");
    assert_eq!(card.state().pin.tries_left, 3);
}

// ---------------------------------------------------------------------------------------------
// CHANGE REFERENCE DATA, RESET RETRY COUNTER

#[test]
fn change_pin_with_right_old_pin_makes_the_new_pin_the_only_one_accepted() {
    let mut card = blank_card();
    let new = pin_block(b"24681357");
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x80, &[&PIN[..], &new].concat()), 0x9000);
    assert_eq!(verify_pin(&mut card, PIN), 0x63C2);
    assert_eq!(verify_pin(&mut card, &new), 0x9000);
}

#[test]
fn change_pin_with_wrong_old_pin_reports_63c2_and_keeps_the_old_pin() {
    let mut card = blank_card();
    let new = pin_block(b"111111");
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x80, &[pin_block(b"222222"), new.clone()].concat()), 0x63C2);
    assert_eq!(card.state().pin.tries_left, 2);
    assert_eq!(verify_pin(&mut card, &new), 0x63C1);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
}

#[test]
fn change_pin_when_blocked_reports_6983() {
    let mut card = blank_card();
    for _ in 0..3 {
        verify_pin(&mut card, &pin_block(b"000000"));
    }
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x80, &[&PIN[..], &pin_block(b"111111")].concat()), 0x6983);
}

#[test]
fn change_puk_then_unblock_with_the_new_puk() {
    let mut card = blank_card();
    let new_puk = pin_block(b"87654321");
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x81, &[&PUK[..], &new_puk].concat()), 0x9000);
    for _ in 0..3 {
        verify_pin(&mut card, &pin_block(b"000000"));
    }
    let new_pin = pin_block(b"135790");
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &[&PUK[..], &new_pin].concat()), 0x63C2, "old PUK");
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &[new_puk, new_pin.clone()].concat()), 0x9000);
    assert_eq!(verify_pin(&mut card, &new_pin), 0x9000);
}

#[test]
fn change_puk_with_wrong_old_puk_reports_63c2() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x81, &[pin_block(b"00000000"), pin_block(b"11111111")].concat()), 0x63C2);
    assert_eq!(card.state().puk.tries_left, 2);
    assert_eq!(card.state().pin.tries_left, 3, "the PIN counter is untouched");
}

#[test]
fn change_reference_with_malformed_data_reports_6a80_and_spends_no_try() {
    let mut card = blank_card();
    for bad in [PIN.to_vec(), [&PIN[..], b"12"].concat(), [&PIN[..], PIN, b"1"].concat(), [&PIN[..], b"abcdefgh"].concat()] {
        assert_eq!(sw(&mut card, 0x24, 0x00, 0x80, &bad), 0x6A80, "{bad:02X?}");
    }
    assert_eq!(card.state().pin.tries_left, 3);
}

#[test]
fn change_reference_with_wrong_p1_p2_reports_6a86() {
    let mut card = blank_card();
    let data = [&PIN[..], PIN].concat();
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x9B, &data), 0x6A86);
    assert_eq!(sw(&mut card, 0x24, 0x01, 0x80, &data), 0x6A86);
}

#[test]
fn reset_retry_counter_with_puk_unblocks_a_blocked_pin_with_a_new_pin() {
    let mut card = blank_card();
    for _ in 0..3 {
        verify_pin(&mut card, &pin_block(b"000000"));
    }
    assert_eq!(verify_pin(&mut card, PIN), 0x6983);
    let new_pin = pin_block(b"5555555");
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &[&PUK[..], &new_pin].concat()), 0x9000);
    assert_eq!(card.state().pin.tries_left, 3);
    assert_eq!(verify_pin(&mut card, PIN), 0x63C2, "old PIN replaced");
    assert_eq!(verify_pin(&mut card, &new_pin), 0x9000);
}

#[test]
fn reset_retry_counter_with_wrong_puk_counts_down_and_blocks_the_puk() {
    let mut card = blank_card();
    let data = [pin_block(b"00000000"), pin_block(b"111111")].concat();
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &data), 0x63C2);
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &data), 0x63C1);
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &data), 0x63C0);
    let right = [&PUK[..], &pin_block(b"111111")].concat();
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &right), 0x6983);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000, "PIN still the old one");
}

#[test]
fn reset_retry_counter_with_wrong_p1_p2_or_length_is_refused() {
    let mut card = blank_card();
    let data = [&PUK[..], PIN].concat();
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x81, &data), 0x6A86);
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x80, &data[..12]), 0x6A80);
    assert_eq!(card.state().puk.tries_left, 3);
}

// ---------------------------------------------------------------------------------------------
// GENERATE ASYMMETRIC KEY PAIR

#[test]
fn generate_without_management_key_reports_6982() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(sw(&mut card, 0x47, 0x00, 0x9A, &tlv(0xAC, &tlv(0x80, &[0x11]))), 0x6982);
    assert!(card.state().keys.is_empty());
}

#[test]
fn generate_p256_in_each_slot_returns_a_fresh_uncompressed_point() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let mut seen = Vec::new();
    for slot in [0x9A, 0x9C, 0x9D, 0x9E] {
        let vk = generate(&mut card, slot);
        let point = vk.to_sec1_point(false).as_bytes().to_vec();
        assert!(!seen.contains(&point), "slot {slot:X} reused a key");
        seen.push(point);
    }
    assert_eq!(card.state().keys.len(), 4);
    // Regenerating replaces the key.
    let again = generate(&mut card, 0x9A);
    assert!(!seen.contains(&again.to_sec1_point(false).as_bytes().to_vec()));
}

#[test]
fn generate_with_yubico_policy_tags_is_accepted() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let body = [tlv(0x80, &[0x11]), tlv(0xAA, &[0x01]), tlv(0xAB, &[0x01])].concat();
    let (r, s) = send(&mut card, 0x47, 0x00, 0x9E, &tlv(0xAC, &body));
    assert_eq!(s, 0x9000);
    assert_eq!(nested(&r, 0x7F49, 0x86).len(), 65);
}

#[test]
fn generate_of_other_algorithms_or_bad_templates_reports_6a80() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    for bad in [
        tlv(0xAC, &tlv(0x80, &[0x07])), // RSA 2048
        tlv(0xAC, &tlv(0x80, &[0x14])), // P-384
        tlv(0xAC, &[]),
        tlv(0xAD, &tlv(0x80, &[0x11])),
        tlv(0xAC, &[tlv(0x80, &[0x11]), tlv(0x81, &[0x01])].concat()),
        tlv(0xAC, &[tlv(0x80, &[0x11]), tlv(0x80, &[0x11])].concat()),
        vec![0xAC, 0x03, 0x80, 0x01],
    ] {
        assert_eq!(sw(&mut card, 0x47, 0x00, 0x9A, &bad), 0x6A80, "{bad:02X?}");
    }
    assert!(card.state().keys.is_empty());
}

#[test]
fn generate_in_the_management_key_or_unknown_slot_reports_6a86() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let body = tlv(0xAC, &tlv(0x80, &[0x11]));
    for (p1, p2) in [(0x00, 0x9B), (0x00, 0x80), (0x00, 0x82), (0x01, 0x9A)] {
        assert_eq!(sw(&mut card, 0x47, p1, p2, &body), 0x6A86, "{p1:X} {p2:X}");
    }
}

// ---------------------------------------------------------------------------------------------
// GENERAL AUTHENTICATE: management key 9B

#[test]
fn mutual_auth_with_the_default_3des_key_authenticates_and_the_card_proves_the_key() {
    let mut card = blank_card();
    assert!(!card.management_authenticated());
    assert_eq!(mgmt_mutual(&mut card, 0x03, &DEFAULT_MANAGEMENT_KEY, false), 0x9000);
    assert!(card.management_authenticated());
}

#[test]
fn mutual_auth_accepts_an_empty_82_asking_for_the_response() {
    let mut card = blank_card();
    assert_eq!(mgmt_mutual(&mut card, 0x03, &DEFAULT_MANAGEMENT_KEY, true), 0x9000);
    assert!(card.management_authenticated());
}

#[test]
fn external_auth_with_the_default_3des_key_authenticates() {
    let mut card = blank_card();
    assert_eq!(mgmt_external(&mut card, 0x03, &DEFAULT_MANAGEMENT_KEY), 0x9000);
    assert!(card.management_authenticated());
}

#[test]
fn management_auth_with_a_wrong_key_reports_6982() {
    let mut card = blank_card();
    let mut wrong = DEFAULT_MANAGEMENT_KEY;
    wrong[0] ^= 0x80;
    wrong[23] ^= 0x01;
    assert_eq!(mgmt_mutual(&mut card, 0x03, &wrong, false), 0x6982);
    assert!(!card.management_authenticated());
    assert_eq!(mgmt_external(&mut card, 0x03, &wrong), 0x6982);
    assert!(!card.management_authenticated());
}

#[test]
fn management_auth_with_another_algorithm_than_the_key_reports_6a86() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0x87, 0x08, 0x9B, &tlv(0x7C, &tlv(0x80, &[]))), 0x6A86);
    assert_eq!(sw(&mut card, 0x87, 0x11, 0x9B, &tlv(0x7C, &tlv(0x80, &[]))), 0x6A86);
}

#[test]
fn management_response_without_a_request_reports_6985() {
    let mut card = blank_card();
    let body = [tlv(0x80, &[0; 8]), tlv(0x81, &[0; 8])].concat();
    assert_eq!(sw(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &body)), 0x6985);
    assert_eq!(sw(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x82, &[0; 8]))), 0x6985);
}

#[test]
fn management_response_must_follow_its_request_immediately() {
    let mut card = blank_card();
    let (r, s) = send(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x81, &[])));
    assert_eq!(s, 0x9000);
    let challenge = nested(&r, 0x7C, 0x81);
    assert_eq!(sw(&mut card, 0xFD, 0, 0, &[]), 0x9000);
    let response = mgmt_cipher(0x03, &DEFAULT_MANAGEMENT_KEY, &challenge, true);
    assert_eq!(sw(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x82, &response))), 0x6985);
    assert!(!card.management_authenticated());
}

#[test]
fn management_auth_with_malformed_templates_reports_6a80() {
    let mut card = blank_card();
    for bad in [
        vec![0x7C, 0x02, 0x80],
        tlv(0x7D, &tlv(0x80, &[])),
        tlv(0x7C, &[]),
        tlv(0x7C, &[tlv(0x80, &[]), tlv(0x81, &[])].concat()),
        tlv(0x7C, &tlv(0x83, &[])),
    ] {
        assert_eq!(sw(&mut card, 0x87, 0x03, 0x9B, &bad), 0x6A80, "{bad:02X?}");
    }
    // A witness of the wrong block size.
    assert_eq!(send(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x80, &[]))).1, 0x9000);
    let body = [tlv(0x80, &[0; 7]), tlv(0x81, &[0; 8])].concat();
    assert_eq!(sw(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &body)), 0x6A80);
}

/// Set a new management key with Yubico's SET MANAGEMENT KEY (INS FF) and authenticate with it.
fn set_and_use_management_key(alg: u8, key_len: usize) {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let key = random(key_len);
    let mut data = vec![alg];
    data.extend(tlv(0x9B, &key));
    assert_eq!(sw(&mut card, 0xFF, 0xFF, 0xFF, &data), 0x9000, "set {alg:X}");
    card.reset();
    assert_eq!(mgmt_mutual(&mut card, alg, &key, false), 0x9000, "mutual {alg:X}");
    card.reset();
    assert_eq!(mgmt_external(&mut card, alg, &key), 0x9000, "external {alg:X}");
    card.reset();
    // The default 3DES key is gone: asking for a 3DES witness is now a wrong algorithm.
    assert_eq!(sw(&mut card, 0x87, 0x03, 0x9B, &tlv(0x7C, &tlv(0x80, &[]))), 0x6A86);
    assert!(!card.management_authenticated());
}

#[test]
fn aes128_management_key_authenticates_mutually_and_externally() {
    set_and_use_management_key(0x08, 16);
}

#[test]
fn aes192_management_key_authenticates_mutually_and_externally() {
    set_and_use_management_key(0x0A, 24);
}

#[test]
fn aes256_management_key_authenticates_mutually_and_externally() {
    set_and_use_management_key(0x0C, 32);
}

#[test]
fn new_3des_management_key_replaces_the_default() {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let key = random(24);
    assert_eq!(sw(&mut card, 0xFF, 0xFF, 0xFF, &[vec![0x03], tlv(0x9B, &key)].concat()), 0x9000);
    card.power_off();
    assert_eq!(mgmt_mutual(&mut card, 0x03, &DEFAULT_MANAGEMENT_KEY, false), 0x6982);
    assert_eq!(mgmt_mutual(&mut card, 0x03, &key, false), 0x9000);
}

#[test]
fn set_management_key_needs_management_authentication_and_a_right_sized_key() {
    let mut card = blank_card();
    let data = [vec![0x08], tlv(0x9B, &[0x11; 16])].concat();
    assert_eq!(sw(&mut card, 0xFF, 0xFF, 0xFF, &data), 0x6982);
    authenticate_default(&mut card);
    assert_eq!(sw(&mut card, 0xFF, 0xFF, 0xFF, &[vec![0x08], tlv(0x9B, &[0x11; 24])].concat()), 0x6A80);
    assert_eq!(sw(&mut card, 0xFF, 0xFF, 0xFF, &[vec![0x11], tlv(0x9B, &[0x11; 32])].concat()), 0x6A80);
    assert_eq!(sw(&mut card, 0xFF, 0x00, 0xFF, &data), 0x6A86);
    assert_eq!(card.state().management_key.key.expose(), DEFAULT_MANAGEMENT_KEY);
}

// ---------------------------------------------------------------------------------------------
// GENERAL AUTHENTICATE: ECDSA and ECDH

fn card_with_keys() -> (Card, [VerifyingKey; 4]) {
    let mut card = blank_card();
    authenticate_default(&mut card);
    let keys = [0x9A, 0x9C, 0x9D, 0x9E].map(|slot| generate(&mut card, slot));
    card.reset();
    (card, keys)
}

fn digest(msg: &[u8]) -> Vec<u8> {
    Sha256::digest(msg).to_vec()
}

#[test]
fn sign_with_9a_needs_the_pin_once_per_session() {
    let (mut card, [k9a, ..]) = card_with_keys();
    let d = digest(b"patient presence");
    assert_eq!(sign(&mut card, 0x9A, &d).1, 0x6982, "no PIN yet");
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    for msg in [&b"one"[..], b"two", b"three"] {
        let d = digest(msg);
        let (r, s) = sign(&mut card, 0x9A, &d);
        assert_eq!(s, 0x9000);
        assert_signature_verifies(&k9a, &d, &r);
    }
}

#[test]
fn sign_with_9c_needs_the_pin_before_every_signature() {
    let (mut card, [_, k9c, ..]) = card_with_keys();
    let d = digest(b"consent token");
    assert_eq!(sign(&mut card, 0x9C, &d).1, 0x6982, "no PIN yet");
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    let (r, s) = sign(&mut card, 0x9C, &d);
    assert_eq!(s, 0x9000);
    assert_signature_verifies(&k9c, &d, &r);
    assert_eq!(sign(&mut card, 0x9C, &d).1, 0x6982, "the PIN status was consumed by the signature");
    assert!(card.pin_verified(), "the session PIN status (9A) survives");
    assert_eq!(sign(&mut card, 0x9A, &d).1, 0x9000);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    let (r, s) = sign(&mut card, 0x9C, &d);
    assert_eq!(s, 0x9000);
    assert_signature_verifies(&k9c, &d, &r);
}

#[test]
fn sign_with_9e_needs_no_pin() {
    let (mut card, [.., k9e]) = card_with_keys();
    assert!(!card.pin_verified());
    for msg in [&b"kiosk challenge 1"[..], b"kiosk challenge 2"] {
        let d = digest(msg);
        let (r, s) = sign(&mut card, 0x9E, &d);
        assert_eq!(s, 0x9000);
        assert_signature_verifies(&k9e, &d, &r);
    }
}

#[test]
fn signature_over_a_short_digest_uses_its_integer_value() {
    let (mut card, [.., k9e]) = card_with_keys();
    let short = [0x01, 0x02, 0x03];
    let (r, s) = sign(&mut card, 0x9E, &short);
    assert_eq!(s, 0x9000);
    let mut padded = [0u8; 32];
    padded[29..].copy_from_slice(&short);
    assert_signature_verifies(&k9e, &padded, &r);
}

#[test]
fn signature_over_a_longer_digest_uses_its_leftmost_256_bits() {
    let (mut card, [.., k9e]) = card_with_keys();
    let sha384_sized: Vec<u8> = (0..48).collect();
    let (r, s) = sign(&mut card, 0x9E, &sha384_sized);
    assert_eq!(s, 0x9000);
    assert_signature_verifies(&k9e, &sha384_sized[..32], &r);
}

#[test]
fn nine_c_grant_survives_unrelated_commands_but_not_a_logout() {
    let (mut card, [_, k9c, ..]) = card_with_keys();
    let d = digest(b"consent");
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(sw(&mut card, 0xA4, 0x04, 0x00, &PIV_AID), 0x9000);
    assert_eq!(get_data(&mut card, 0x5FC102).1, 0x9000);
    let (r, s) = sign(&mut card, 0x9C, &d);
    assert_eq!(s, 0x9000);
    assert_signature_verifies(&k9c, &d, &r);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(sw(&mut card, 0x20, 0xFF, 0x80, &[]), 0x9000);
    assert_eq!(sign(&mut card, 0x9C, &d).1, 0x6982, "logout withdrew the grant");
}

#[test]
fn sign_with_the_key_management_slot_reports_6a80() {
    let (mut card, _) = card_with_keys();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    assert_eq!(sign(&mut card, 0x9D, &digest(b"x")).1, 0x6A80);
}

#[test]
fn sign_in_an_empty_slot_reports_6a88() {
    let mut card = blank_card();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    for slot in [0x9A, 0x9C, 0x9E] {
        assert_eq!(sign(&mut card, slot, &digest(b"x")).1, 0x6A88, "{slot:X}");
    }
    assert_eq!(sign(&mut card, 0x82, &digest(b"x")).1, 0x6A88, "retired slot not implemented");
}

#[test]
fn sign_with_a_non_p256_algorithm_or_bad_template_is_refused() {
    let (mut card, _) = card_with_keys();
    let d = digest(b"x");
    let body = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x81, &d)].concat());
    assert_eq!(sw(&mut card, 0x87, 0x07, 0x9E, &body), 0x6A86, "RSA");
    assert_eq!(sw(&mut card, 0x87, 0x14, 0x9E, &body), 0x6A86, "P-384");
    for bad in [
        tlv(0x7C, &tlv(0x81, &d)),                                           // no 82
        tlv(0x7C, &[tlv(0x82, &[1]), tlv(0x81, &d)].concat()),               // 82 not empty
        tlv(0x7C, &[tlv(0x82, &[]), tlv(0x81, &[])].concat()),               // empty digest
        tlv(0x7C, &[tlv(0x82, &[]), tlv(0x81, &[1; 65])].concat()),          // over-long digest
        tlv(0x7C, &[tlv(0x82, &[]), tlv(0x81, &d), tlv(0x85, &d)].concat()), // both 81 and 85
        [tlv(0x7C, &[tlv(0x82, &[]), tlv(0x81, &d)].concat()), vec![0]].concat(),
    ] {
        assert_eq!(sw(&mut card, 0x87, 0x11, 0x9E, &bad), 0x6A80, "{bad:02X?}");
    }
}

#[test]
fn ecdh_with_9d_matches_the_host_computed_shared_secret() {
    let (mut card, [_, _, k9d, _]) = card_with_keys();
    let host = SigningKey::from_slice(&digest(b"host ephemeral key")).expect("host key");
    let host_point = VerifyingKey::from(&host).to_sec1_point(false).as_bytes().to_vec();
    let body = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x85, &host_point)].concat());
    assert_eq!(sw(&mut card, 0x87, 0x11, 0x9D, &body), 0x6982, "9D needs the PIN");
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    let (r, s) = send(&mut card, 0x87, 0x11, 0x9D, &body);
    assert_eq!(s, 0x9000);
    let expected = p256::ecdh::diffie_hellman(host.as_nonzero_scalar(), k9d.as_affine());
    assert_eq!(nested(&r, 0x7C, 0x82), expected.raw_secret_bytes().to_vec());
}

#[test]
fn ecdh_with_an_invalid_point_or_another_slot_reports_6a80() {
    let (mut card, _) = card_with_keys();
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    let host = SigningKey::from_slice(&digest(b"h")).expect("host key");
    let good = VerifyingKey::from(&host).to_sec1_point(false).as_bytes().to_vec();
    let mut off_curve = good.clone();
    off_curve[64] ^= 1;
    let compressed = VerifyingKey::from(&host).to_sec1_point(true).as_bytes().to_vec();
    for bad in [off_curve, compressed, good[..64].to_vec(), vec![0x04; 65]] {
        let body = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x85, &bad)].concat());
        assert_eq!(sw(&mut card, 0x87, 0x11, 0x9D, &body), 0x6A80, "{bad:02X?}");
    }
    let body = tlv(0x7C, &[tlv(0x82, &[]), tlv(0x85, &good)].concat());
    assert_eq!(sw(&mut card, 0x87, 0x11, 0x9A, &body), 0x6A80, "ECDH is 9D's job");
}

// ---------------------------------------------------------------------------------------------
// Yubico extensions, power, private keys

#[test]
fn get_version_reports_the_mimicked_yubikey_firmware() {
    let mut card = blank_card();
    let (r, s) = send(&mut card, 0xFD, 0x00, 0x00, &[]);
    assert_eq!((r.as_slice(), s), (&VERSION[..], 0x9000));
    assert!(VERSION[0] >= 5, "yubico-piv-tool enables AES management keys from 5.4");
}

#[test]
fn get_serial_reports_the_card_serial_big_endian() {
    let mut card = Card::new(PersistentState::blank(123_456_789), Box::new(MemoryStore::default()));
    let (r, s) = send(&mut card, 0xF8, 0x00, 0x00, &[]);
    assert_eq!(s, 0x9000);
    assert_eq!(u32::from_be_bytes(r.try_into().expect("4 bytes")), 123_456_789);
}

#[test]
fn version_and_serial_with_wrong_p1_p2_or_data_are_refused() {
    let mut card = blank_card();
    assert_eq!(sw(&mut card, 0xFD, 0x01, 0x00, &[]), 0x6A86);
    assert_eq!(sw(&mut card, 0xF8, 0x00, 0x01, &[]), 0x6A86);
    assert_eq!(sw(&mut card, 0xFD, 0x00, 0x00, &[1]), 0x6700);
    assert_eq!(sw(&mut card, 0xF8, 0x00, 0x00, &[1]), 0x6700);
}

#[test]
fn power_off_clears_the_pin_and_management_key_status() {
    let (mut card, _) = card_with_keys();
    authenticate_default(&mut card);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    card.power_off();
    assert!(!card.pin_verified() && !card.management_authenticated());
    assert_eq!(sign(&mut card, 0x9A, &digest(b"x")).1, 0x6982);
    assert_eq!(sign(&mut card, 0x9C, &digest(b"x")).1, 0x6982);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x80, &[]), 0x63C3);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(CARD_CREDENTIAL, b"x")), 0x6982);
}

#[test]
fn reset_clears_the_pin_and_management_key_status() {
    let (mut card, _) = card_with_keys();
    authenticate_default(&mut card);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    card.reset();
    assert!(!card.pin_verified() && !card.management_authenticated());
    assert_eq!(sign(&mut card, 0x9A, &digest(b"x")).1, 0x6982);
    assert_eq!(sw(&mut card, 0x47, 0x00, 0x9A, &tlv(0xAC, &tlv(0x80, &[0x11]))), 0x6982);
}

#[test]
fn no_command_returns_a_private_key() {
    let (mut card, _) = card_with_keys();
    let privates: Vec<Vec<u8>> = card.state().keys.values().map(|k| k.private.expose().to_vec()).collect();
    assert_eq!(privates.len(), 4);
    let mut responses = Vec::new();
    authenticate_default(&mut card);
    assert_eq!(verify_pin(&mut card, PIN), 0x9000);
    // Every object tag PIV and Yubico use, and the whole 5FC1xx and 5FFFxx ranges.
    let tags = [0x7E, 0x7F61].into_iter().chain(0x5FC100..=0x5FC1FF).chain(0x5FFF00..=0x5FFFFF);
    for tag in tags {
        responses.push(get_data_all(&mut card, tag).0);
    }
    for ins in 0..=0xFFu8 {
        for p2 in [0x00, 0x80, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E] {
            responses.push(card.process(&[0x00, ins, 0x00, p2, 0x00]));
            responses.push(card.process(&[0x00, ins, 0x3F, 0xFF, 0x00]));
        }
    }
    for (slot, d) in [(0x9A, digest(b"a")), (0x9E, digest(b"e"))] {
        responses.push(sign(&mut card, slot, &d).0);
    }
    for r in &responses {
        for p in &privates {
            assert!(!r.windows(p.len()).any(|w| w == p.as_slice()), "a response contains a private key");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed APDUs

#[test]
fn unknown_instructions_report_6d00() {
    let mut card = blank_card();
    let known = [0xA4, 0xCB, 0xDB, 0x20, 0x24, 0x2C, 0x47, 0x87, 0xC0, 0xFF, 0xFD, 0xF8];
    for ins in (0..=0xFFu8).filter(|i| !known.contains(i)) {
        assert_eq!(split(&card.process(&[0x00, ins, 0x00, 0x00])).1, 0x6D00, "INS {ins:02X}");
        assert_eq!(split(&card.process(&[0x10, ins, 0x00, 0x00, 0x01, 0x00])).1, 0x6D00, "chained INS {ins:02X}");
    }
}

#[test]
fn unknown_classes_report_6e00() {
    let mut card = blank_card();
    for cla in [0x01, 0x04, 0x0C, 0x80, 0x84, 0xA0, 0xFF] {
        assert_eq!(split(&card.process(&apdu(cla, 0xA4, 0x04, 0x00, &PIV_AID))).1, 0x6E00, "CLA {cla:02X}");
        assert_eq!(split(&card.process(&apdu(cla, 0x20, 0x00, 0x80, PIN))).1, 0x6E00, "CLA {cla:02X}");
    }
    assert_eq!(card.state().pin.tries_left, 3);
    assert!(!card.pin_verified(), "VERIFY under a foreign CLA did nothing");
    assert_eq!(split(&card.process(&[0x10, 0xC0, 0x00, 0x00, 0x00])).1, 0x6E00, "GET RESPONSE cannot chain");
}

#[test]
fn length_fields_that_do_not_match_the_bytes_report_6700() {
    let mut card = blank_card();
    for bad in [
        vec![],
        vec![0x00],
        vec![0x00, 0xA4, 0x04],
        vec![0x00, 0xA4, 0x04, 0x00, 0x0B, 0xA0, 0x00], // Lc 11, 2 bytes
        [vec![0x00, 0x20, 0x00, 0x80, 0x08], PIN.to_vec(), vec![0, 0]].concat(), // 2 extra bytes
        vec![0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x08, 0x31], // extended Lc 8, 1 byte
        vec![0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x00, 0x31], // extended Lc 0
        vec![0x00, 0xFD, 0x00, 0x00, 0x00, 0x01],       // 2 bytes after header, not 2E
    ] {
        assert_eq!(split(&card.process(&bad)).1, 0x6700, "{bad:02X?}");
    }
    assert_eq!(card.state().pin.tries_left, 3);
}

/// A store whose every save fails, like a full or read-only disk.
struct RefusingStore;

impl Persist for RefusingStore {
    fn save(&mut self, _: &PersistentState) -> Result<(), PersistError> {
        Err(PersistError::Refused("test: disk full"))
    }
}

#[test]
fn when_the_counter_cannot_be_saved_the_pin_is_not_compared_and_no_try_is_gained() {
    let mut card = Card::new(PersistentState::blank(SERIAL), Box::new(RefusingStore));
    assert_eq!(verify_pin(&mut card, PIN), 0x6581, "right PIN, counter not saved: refused");
    assert!(!card.pin_verified());
    assert!(card.state().pin.tries_left <= 2, "the in-memory counter never exceeds what the disk may hold");
    let before = card.state().pin.tries_left;
    assert_eq!(verify_pin(&mut card, &pin_block(b"000000")), 0x6581);
    assert!(card.state().pin.tries_left < before);
}

#[test]
fn when_a_change_cannot_be_saved_nothing_changes_and_the_card_reports_6581() {
    let mut card = Card::new(PersistentState::blank(SERIAL), Box::new(RefusingStore));
    authenticate_default(&mut card);
    let before = card.state().clone();
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &put_data_apdu_body(CARD_CREDENTIAL, b"x")), 0x6581);
    assert_eq!(sw(&mut card, 0x47, 0x00, 0x9A, &tlv(0xAC, &tlv(0x80, &[0x11]))), 0x6581);
    assert!(*card.state() == before);
}
