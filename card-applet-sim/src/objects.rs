//! PIV data objects (SP 800-73-4 Part 1 §3 and Table 3), the application property template,
//! and MedCard's two patient objects in the vendor range.

use sha2::{Digest, Sha256};

use crate::tlv;

/// The PIV application identifier with version (SP 800-73-4 Part 1 §2.2): RID A000000308,
/// PIX 00001000 0100.
pub const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
/// The shortest accepted right-truncated AID for SELECT (the RID).
pub const PIV_AID_MIN_LEN: usize = 5;

/// Discovery object (Part 1 §3.3.2), 1-byte tag, not wrapped in 53.
pub const DISCOVERY: u32 = 0x7E;
/// Card Holder Unique Identifier (Part 1 §3.1.2).
pub const CHUID: u32 = 0x5FC102;
/// Card Capability Container (Part 1 §3.1.1).
pub const CCC: u32 = 0x5FC107;
/// Key history object (Part 1 §3.3.3).
pub const KEY_HISTORY: u32 = 0x5FC10C;
/// X.509 certificate for PIV Authentication (9A).
pub const CERT_9A: u32 = 0x5FC105;
/// X.509 certificate for Digital Signature (9C).
pub const CERT_9C: u32 = 0x5FC10A;
/// X.509 certificate for Key Management (9D).
pub const CERT_9D: u32 = 0x5FC10B;
/// X.509 certificate for Card Authentication (9E).
pub const CERT_9E: u32 = 0x5FC101;
/// MedCard card credential (COSE_Sign1 by the clinic issuer). Outside the PIV containers
/// (SP 800-73-4 Part 1 Table 3: 5FC101–5FC123, 7E, 7F61) and outside the tags YubiKey uses for
/// its own objects (5FFF00–5FFF15), inside the 5F0000–5FFFFF range YubiKeys accept for
/// GET/PUT DATA, so real YubiKeys can carry it too. See docs/card.md "Objects and tags".
pub const CARD_CREDENTIAL: u32 = 0x5FFFC0;
/// MedCard consent token (COSE_Sign1 made with the 9C key).
pub const CONSENT_TOKEN: u32 = 0x5FFFC1;

/// Largest accepted content of one data object (the value of the 53 container), in bytes.
pub const MAX_OBJECT_LEN: usize = 4096;

/// The objects GET DATA can read from the store and PUT DATA can write.
pub const STORED_OBJECTS: [u32; 9] = [CHUID, CCC, KEY_HISTORY, CERT_9A, CERT_9C, CERT_9D, CERT_9E, CARD_CREDENTIAL, CONSENT_TOKEN];

pub fn is_stored_object(tag: u32) -> bool {
    STORED_OBJECTS.contains(&tag)
}

/// The application property template returned by SELECT (Part 2 §3.1.1, Table 3).
pub fn application_property_template() -> Vec<u8> {
    let mut body = Vec::new();
    // 4F: application identifier of the application (the PIX part, §3.1.1 Table 3).
    tlv::push(&mut body, 0x4F, PIV_AID.get(5..).unwrap_or_default());
    // 79: coexistent tag allocation authority, containing the full AID.
    tlv::push(&mut body, 0x79, &tlv::encode(0x4F, &PIV_AID));
    // 50: application label.
    tlv::push(&mut body, 0x50, b"MedCard PIV");
    // AC: cryptographic algorithms supported, one 80 each, then 06 with value 00.
    let mut ac = Vec::new();
    for alg in [0x03u8, 0x08, 0x0A, 0x0C, 0x11] {
        tlv::push(&mut ac, 0x80, &[alg]);
    }
    tlv::push(&mut ac, 0x06, &[0x00]);
    tlv::push(&mut body, 0xAC, &ac);
    tlv::encode(0x61, &body)
}

/// The discovery object (Part 1 §3.3.2): PIV AID, PIN usage policy 40 00 (PIV Card
/// Application PIN only; global PIN not supported).
pub fn discovery() -> Vec<u8> {
    let mut body = tlv::encode(0x4F, &PIV_AID);
    tlv::push(&mut body, 0x5F2F, &[0x40, 0x00]);
    tlv::encode(DISCOVERY, &body)
}

/// FASC-N "agency 9999, system 9999, credential 999999" used by test PIV cards (Part 1
/// §3.1.2; same value yubico-piv-tool writes).
const TEST_FASCN: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42,
    0x10, 0xC3, 0xEB,
];

/// The card's GUID: first 16 bytes of SHA-256("MedCard CHUID GUID v1" || serial big-endian),
/// with the RFC 4122 version-4/variant bits set so tools show a well-formed UUID.
pub fn guid(serial: u32) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"MedCard CHUID GUID v1");
    h.update(serial.to_be_bytes());
    let d = h.finalize();
    let mut g = [0u8; 16];
    for (o, i) in g.iter_mut().zip(d.iter()) {
        *o = *i;
    }
    if let Some(b) = g.get_mut(6) {
        *b = (*b & 0x0F) | 0x40;
    }
    if let Some(b) = g.get_mut(8) {
        *b = (*b & 0x3F) | 0x80;
    }
    g
}

/// CHUID content (Part 1 §3.1.2 Table 9): 30 FASC-N, 34 GUID, 35 expiration date, 3E issuer
/// asymmetric signature (empty: not signed), FE error detection code (empty).
pub fn default_chuid(serial: u32) -> Vec<u8> {
    let mut c = tlv::encode(0x30, &TEST_FASCN);
    tlv::push(&mut c, 0x34, &guid(serial));
    tlv::push(&mut c, 0x35, b"20351231");
    tlv::push(&mut c, 0x3E, &[]);
    tlv::push(&mut c, 0xFE, &[]);
    c
}

/// CCC content (Part 1 §3.1.1 Table 8). Card identifier F0 = GSC-RID A000000116, manufacturer
/// FF, card type 02, then 14 bytes derived from the serial.
pub fn default_ccc(serial: u32) -> Vec<u8> {
    let mut id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    id.extend_from_slice(b"MedCard\0\0\0");
    id.extend_from_slice(&serial.to_be_bytes());
    let mut c = tlv::encode(0xF0, &id);
    tlv::push(&mut c, 0xF1, &[0x21]); // capability container version
    tlv::push(&mut c, 0xF2, &[0x21]); // capability grammar version
    tlv::push(&mut c, 0xF3, &[]); // applications CardURL
    tlv::push(&mut c, 0xF4, &[0x00]); // PKCS#15: not supported
    tlv::push(&mut c, 0xF5, &[0x10]); // registered data model number
    tlv::push(&mut c, 0xF6, &[]); // access control rule table
    tlv::push(&mut c, 0xF7, &[]); // card APDUs
    tlv::push(&mut c, 0xFA, &[]); // redirection tag
    tlv::push(&mut c, 0xFB, &[]); // capability tuples
    tlv::push(&mut c, 0xFC, &[]); // status tuples
    tlv::push(&mut c, 0xFD, &[]); // next CCC
    tlv::push(&mut c, 0xFE, &[]); // error detection code
    c
}

/// Key history content (Part 1 §3.3.3): no retired keys.
pub fn default_key_history() -> Vec<u8> {
    let mut c = tlv::encode(0xC1, &[0]);
    tlv::push(&mut c, 0xC2, &[0]);
    tlv::push(&mut c, 0xFE, &[]);
    c
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn guid_differs_per_serial_and_is_stable() {
        assert_eq!(guid(1), guid(1));
        assert_ne!(guid(1), guid(2));
    }

    #[test]
    fn chuid_contains_the_guid_of_its_serial() {
        let chuid = default_chuid(42);
        let fields = tlv::fields(&chuid);
        assert!(matches!(fields, Ok(ref f) if tlv::find(f, 0x34) == Some(&guid(42)[..])));
    }

    #[test]
    fn property_template_parses_and_names_the_piv_aid() {
        let t = application_property_template();
        let body = tlv::single(&t, 0x61);
        let Ok(body) = body else { panic!("template does not parse: {body:?}") };
        let Ok(f) = tlv::fields(body) else { panic!("body does not parse") };
        assert_eq!(tlv::find(&f, 0x79).map(|v| tlv::single(v, 0x4F)), Some(Ok(&PIV_AID[..])));
    }
}
