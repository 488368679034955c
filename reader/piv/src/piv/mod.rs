//! A PIV client (NIST SP 800-73-4 Part 2) for the MedCard card edge as documented in
//! `docs/card.md`, over any [`Transport`]. Written from the document, independently of the
//! simulator: its own APDU encoding, chaining, GET RESPONSE loop, TLV parsing and crypto.
//!
//! Every method sends short APDUs (Lc ≤ 255, Le = `00`): longer data goes out by command
//! chaining (CLA `10`, 255-byte blocks, docs/card.md "Processing order" step 5), longer answers
//! come back through `61xx` + GET RESPONSE. Secrets (PIN, PUK, management key) live in
//! [`Zeroizing`] buffers, are redacted in `Debug` and never appear in errors.

use std::fmt;

use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use p256::ecdsa::{Signature, VerifyingKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

mod error;

pub use error::PivError;

use crate::sig;
use crate::sw::{self, CardError, Secret, StatusWord};
use crate::tlv::{self, TlvReader};
use crate::transport::Transport;

/// PIV AID (SP 800-73-4 Part 2 §2.2), full form.
pub const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];

/// Data object tags (docs/card.md "Objects and tags").
pub mod tags {
    /// Discovery object.
    pub const DISCOVERY: u32 = 0x7E;
    /// Card Holder Unique Identifier.
    pub const CHUID: u32 = 0x5FC102;
    /// Card Capability Container.
    pub const CCC: u32 = 0x5FC107;
    /// Key history object.
    pub const KEY_HISTORY: u32 = 0x5FC10C;
    /// MedCard card credential (COSE_Sign1 by the clinic issuer key).
    pub const CARD_CREDENTIAL: u32 = 0x5FFFC0;
    /// MedCard consent token (COSE_Sign1 made with the 9C key).
    pub const CONSENT_TOKEN: u32 = 0x5FFFC1;
}

/// The largest response this client assembles from GET RESPONSE parts.
pub const MAX_RESPONSE: usize = 65_536;
/// The largest command data this client sends (one object of 4096 bytes plus framing, as the
/// card's `MAX_CHAIN_LEN`).
pub const MAX_COMMAND_DATA: usize = 4160;
/// Bytes per block of a chained command.
const BLOCK: usize = 255;

const INS_SELECT: u8 = 0xA4;
const INS_GET_DATA: u8 = 0xCB;
const INS_PUT_DATA: u8 = 0xDB;
const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_GENERATE: u8 = 0x47;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_GET_VERSION: u8 = 0xFD;
const INS_GET_SERIAL: u8 = 0xF8;
const INS_SET_MANAGEMENT_KEY: u8 = 0xFF;

const REF_PIN: u8 = 0x80;
const REF_PUK: u8 = 0x81;
const REF_MANAGEMENT: u8 = 0x9B;
/// Algorithm identifier for ECC P-256 (SP 800-78-4 Table 6-2).
const ALG_P256: u8 = 0x11;

const NEEDS_MGMT: &str = "the management key (authenticate with it first)";
const NEEDS_NOTHING: &str = "nothing more (unexpected for this command)";

/// A PIV key slot that MedCard uses (docs/card.md "Slots and policies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Slot {
    /// `9A` PIV Authentication: ECDSA, PIN once per session (patient presence).
    PivAuth,
    /// `9C` Digital Signature: ECDSA, PIN before every signature (signs the consent token).
    Signature,
    /// `9D` Key Management: ECDH, PIN once per session.
    KeyManagement,
    /// `9E` Card Authentication: ECDSA, no PIN (proves the card genuine).
    CardAuth,
}

impl Slot {
    /// All four slots.
    pub const ALL: [Slot; 4] = [Slot::PivAuth, Slot::Signature, Slot::KeyManagement, Slot::CardAuth];

    /// The key reference.
    pub fn key_ref(self) -> u8 {
        match self {
            Slot::PivAuth => 0x9A,
            Slot::Signature => 0x9C,
            Slot::KeyManagement => 0x9D,
            Slot::CardAuth => 0x9E,
        }
    }

    /// The tag of the slot's certificate object.
    pub fn certificate_tag(self) -> u32 {
        match self {
            Slot::PivAuth => 0x5FC105,
            Slot::Signature => 0x5FC10A,
            Slot::KeyManagement => 0x5FC10B,
            Slot::CardAuth => 0x5FC101,
        }
    }

    /// What the card needs before using the slot's key, for error messages.
    fn needs(self) -> &'static str {
        match self {
            Slot::PivAuth | Slot::KeyManagement => "the PIN (verify it first)",
            Slot::Signature => "the PIN, verified just before each signature",
            Slot::CardAuth => NEEDS_NOTHING,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.key_ref())
    }
}

impl TryFrom<u8> for Slot {
    type Error = u8;
    fn try_from(b: u8) -> Result<Self, u8> {
        Slot::ALL.into_iter().find(|s| s.key_ref() == b).ok_or(b)
    }
}

impl std::str::FromStr for Slot {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let b = u8::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| format!("not a slot: {s}"))?;
        Slot::try_from(b).map_err(|_| format!("unknown slot {s}: expected 9A, 9C, 9D or 9E"))
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets.

/// A PIN or PUK, as the 8-byte block the card takes (ASCII, padded with `FF`). Zeroized on drop.
#[derive(Clone)]
pub struct PinBlock(Zeroizing<[u8; 8]>);

impl fmt::Debug for PinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinBlock(<redacted>)")
    }
}

impl PinBlock {
    /// A PIN: 6–8 digits (SP 800-73-4 Part 2 §2.4.3).
    pub fn pin(text: &str) -> Result<Self, PivError> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PivError::NotDigits { what: "PIN" });
        }
        Self::block(text, "PIN")
    }

    /// A PUK: 6–8 digits, like the PIN (docs/card.md, CHANGE REFERENCE DATA).
    pub fn puk(text: &str) -> Result<Self, PivError> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PivError::NotDigits { what: "PUK" });
        }
        Self::block(text, "PUK")
    }

    fn block(text: &str, what: &'static str) -> Result<Self, PivError> {
        let bytes = text.as_bytes();
        if !(6..=8).contains(&bytes.len()) {
            return Err(PivError::SecretLength { what });
        }
        let mut block = Zeroizing::new([0xFFu8; 8]);
        for (dst, src) in block.iter_mut().zip(bytes) {
            *dst = *src;
        }
        Ok(Self(block))
    }

    fn bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

/// The management key's algorithm (docs/card.md, GENERAL AUTHENTICATE 9B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum MgmtAlgorithm {
    /// `03` Triple-DES (EDE, 24-byte key).
    Tdes,
    /// `08` AES-128.
    Aes128,
    /// `0A` AES-192.
    Aes192,
    /// `0C` AES-256.
    Aes256,
}

impl MgmtAlgorithm {
    /// The algorithm identifier.
    pub fn id(self) -> u8 {
        match self {
            MgmtAlgorithm::Tdes => 0x03,
            MgmtAlgorithm::Aes128 => 0x08,
            MgmtAlgorithm::Aes192 => 0x0A,
            MgmtAlgorithm::Aes256 => 0x0C,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            MgmtAlgorithm::Tdes | MgmtAlgorithm::Aes192 => 24,
            MgmtAlgorithm::Aes128 => 16,
            MgmtAlgorithm::Aes256 => 32,
        }
    }

    /// Cipher block length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            MgmtAlgorithm::Tdes => 8,
            _ => 16,
        }
    }
}

/// A card management key (`9B`). Zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct ManagementKey {
    algorithm: MgmtAlgorithm,
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManagementKey({:?}, <redacted>)", self.algorithm)
    }
}

/// The published default management key of blank cards (docs/card.md "Defaults").
const DEFAULT_3DES: [u8; 24] = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

impl ManagementKey {
    /// A key of `algorithm`; the length must match.
    pub fn new(algorithm: MgmtAlgorithm, key: &[u8]) -> Result<Self, PivError> {
        if key.len() != algorithm.key_len() {
            return Err(PivError::ManagementKeyLength { algorithm, expected: algorithm.key_len(), got: key.len() });
        }
        Ok(Self { algorithm, key: Zeroizing::new(key.to_vec()) })
    }

    /// The blank-card default (3DES `0102030405060708` × 3).
    pub fn default_blank() -> Self {
        Self { algorithm: MgmtAlgorithm::Tdes, key: Zeroizing::new(DEFAULT_3DES.to_vec()) }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> MgmtAlgorithm {
        self.algorithm
    }

    /// One ECB block, encrypt or decrypt.
    fn ecb(&self, block: &[u8], encrypt: bool) -> Result<Zeroizing<Vec<u8>>, PivError> {
        match self.algorithm {
            MgmtAlgorithm::Tdes => ecb::<des::TdesEde3>(&self.key, block, encrypt),
            MgmtAlgorithm::Aes128 => ecb::<aes::Aes128>(&self.key, block, encrypt),
            MgmtAlgorithm::Aes192 => ecb::<aes::Aes192>(&self.key, block, encrypt),
            MgmtAlgorithm::Aes256 => ecb::<aes::Aes256>(&self.key, block, encrypt),
        }
    }
}

fn ecb<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(
    key: &[u8],
    block: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>, PivError> {
    let cipher = C::new_from_slice(key).map_err(|_| PivError::Unexpected {
        operation: "management key authentication",
        expected: "a key of the cipher's length",
        got: format!("{} bytes", key.len()),
    })?;
    let mut b = cipher::Block::<C>::default();
    if block.len() != b.len() {
        return Err(PivError::Unexpected {
            operation: "management key authentication",
            expected: "one cipher block",
            got: format!("{} bytes", block.len()),
        });
    }
    b.copy_from_slice(block);
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    let out = Zeroizing::new(b.to_vec());
    b.iter_mut().for_each(|x| *x = 0);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Results.

/// The application property template from SELECT (SP 800-73-4 Part 2 §3.1.1, Table 3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppInfo {
    /// The PIX of the AID (`4F`).
    pub pix: Vec<u8>,
    /// The application label (`50`), if any.
    pub label: Option<String>,
    /// The algorithm identifiers the card lists (`AC { 80 … }`).
    pub algorithms: Vec<u8>,
}

/// What an empty VERIFY says about the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PinStatus {
    /// Verified in this session.
    Verified,
    /// Not verified; so many tries left.
    NotVerified { tries_left: u8 },
    /// Blocked: unblock with the PUK.
    Blocked,
}

/// A parsed response: data and the final status word.
struct Response {
    data: Vec<u8>,
    sw: StatusWord,
}

// ---------------------------------------------------------------------------------------------
// The client.

/// A PIV client over a transport.
pub struct Piv<T: Transport> {
    transport: T,
}

impl<T: Transport> Piv<T> {
    /// A client over `transport`. Sends nothing.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// The transport back.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// The transport, e.g. to reset the card.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Send one short APDU: `CLA INS P1 P2 [Lc data] [Le=00]`.
    fn send_one(&mut self, cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: bool) -> Result<Response, PivError> {
        let mut apdu = Vec::with_capacity(6 + data.len());
        apdu.extend_from_slice(&[cla, ins, p1, p2]);
        if !data.is_empty() {
            let lc = u8::try_from(data.len()).map_err(|_| PivError::CommandTooLong { operation: "APDU", len: data.len(), limit: BLOCK })?;
            apdu.push(lc);
            apdu.extend_from_slice(data);
        }
        if le {
            apdu.push(0x00);
        }
        let mut resp = self.transport.transmit(&apdu)?;
        let split = resp.len().checked_sub(2).ok_or(crate::transport::TransportError::ShortResponse { got: 0 })?;
        let sw_bytes = resp.split_off(split);
        let sw = match sw_bytes.as_slice() {
            [a, b] => StatusWord::from(u16::from_be_bytes([*a, *b])),
            _ => return Err(crate::transport::TransportError::ShortResponse { got: sw_bytes.len() }.into()),
        };
        Ok(Response { data: resp, sw })
    }

    /// Send a command: chained if `data` is over 255 bytes, then the GET RESPONSE loop while
    /// the card answers `61xx`. Returns the assembled data and the last status word.
    fn command(&mut self, operation: &'static str, ins: u8, p1: u8, p2: u8, data: &[u8], le: bool) -> Result<Response, PivError> {
        if data.len() > MAX_COMMAND_DATA {
            return Err(PivError::CommandTooLong { operation, len: data.len(), limit: MAX_COMMAND_DATA });
        }
        let mut blocks = data.chunks(BLOCK).peekable();
        let mut resp = if data.is_empty() {
            self.send_one(0x00, ins, p1, p2, &[], le)?
        } else {
            loop {
                let Some(block) = blocks.next() else {
                    // Unreachable for non-empty data; fail closed.
                    return Err(PivError::CommandTooLong { operation, len: data.len(), limit: MAX_COMMAND_DATA });
                };
                if blocks.peek().is_some() {
                    let r = self.send_one(0x10, ins, p1, p2, block, false)?;
                    if r.sw != StatusWord::Success {
                        break r;
                    }
                } else {
                    break self.send_one(0x00, ins, p1, p2, block, le)?;
                }
            }
        };
        // ISO/IEC 7816-4 §5.1.3: 61xx = more data; fetch with GET RESPONSE. A card that never
        // stops is cut off at MAX_RESPONSE (each part must carry data, so this terminates).
        let mut data_out = std::mem::take(&mut resp.data);
        let mut sw = resp.sw;
        while let StatusWord::BytesRemaining(_) = sw {
            let part = self.send_one(0x00, INS_GET_RESPONSE, 0x00, 0x00, &[], true)?;
            if part.data.is_empty() && matches!(part.sw, StatusWord::BytesRemaining(_)) {
                return Err(PivError::Unexpected {
                    operation,
                    expected: "data in a GET RESPONSE part",
                    got: format!("no data with status {}", part.sw),
                });
            }
            data_out.extend_from_slice(&part.data);
            if data_out.len() > MAX_RESPONSE {
                return Err(PivError::ResponseTooLong { operation, limit: MAX_RESPONSE });
            }
            sw = part.sw;
        }
        Ok(Response { data: data_out, sw })
    }

    /// A command that must answer `9000`; other status words become [`CardError`]s.
    fn checked(
        &mut self,
        operation: &'static str,
        (ins, p1, p2): (u8, u8, u8),
        data: &[u8],
        le: bool,
        secret: Option<Secret>,
        needs: &'static str,
    ) -> Result<Vec<u8>, PivError> {
        let r = self.command(operation, ins, p1, p2, data, le)?;
        if r.sw == StatusWord::Success { Ok(r.data) } else { Err(sw::to_error(operation, r.sw, secret, needs).into()) }
    }

    /// SELECT the PIV application and parse its application property template.
    pub fn select(&mut self) -> Result<AppInfo, PivError> {
        const OP: &str = "SELECT PIV";
        let data = self.checked(OP, (INS_SELECT, 0x04, 0x00), &PIV_AID, true, None, NEEDS_NOTHING)?;
        let apt = tlv::single(&data, 0x61).map_err(PivError::tlv(OP))?;
        let items = tlv::parse_all(apt).map_err(PivError::tlv(OP))?;
        let pix = tlv::find_unique(&items, 0x4F).map_err(PivError::tlv(OP))?.to_vec();
        let label = match tlv::find_unique(&items, 0x50) {
            Ok(l) => Some(String::from_utf8_lossy(l).into_owned()),
            Err(tlv::TlvError::Missing { .. }) => None,
            Err(e) => return Err(PivError::tlv(OP)(e)),
        };
        let mut algorithms = Vec::new();
        if let Ok(ac) = tlv::find_unique(&items, 0xAC) {
            for t in tlv::parse_all(ac).map_err(PivError::tlv(OP))? {
                if t.tag == 0x80 {
                    match t.value {
                        [alg] => algorithms.push(*alg),
                        other => {
                            return Err(PivError::Unexpected {
                                operation: OP,
                                expected: "1-byte algorithm identifiers",
                                got: format!("{} bytes", other.len()),
                            });
                        }
                    }
                }
            }
        }
        Ok(AppInfo { pix, label, algorithms })
    }

    /// GET DATA: the content of object `tag` (inside its `53`, or the `7E` discovery object's
    /// value), or `None` if the card does not hold it (`6A82`).
    pub fn get_data(&mut self, tag: u32) -> Result<Option<Vec<u8>>, PivError> {
        const OP: &str = "GET DATA";
        let req = tlv::encode(0x5C, &tlv::tag_bytes(tag)).unwrap_or_default();
        let r = self.command(OP, INS_GET_DATA, 0x3F, 0xFF, &req, true)?;
        match r.sw {
            StatusWord::Success => {}
            StatusWord::NotFound => return Ok(None),
            sw => return Err(sw::to_error(OP, sw, None, NEEDS_NOTHING).into()),
        }
        let outer = if tag == tags::DISCOVERY { tags::DISCOVERY } else { 0x53 };
        Ok(Some(tlv::single(&r.data, outer).map_err(PivError::tlv(OP))?.to_vec()))
    }

    /// PUT DATA: replace object `tag` with `content` (management key required); empty
    /// `content` deletes the object (docs/card.md, PUT DATA). Long objects are sent by command
    /// chaining.
    pub fn put_data(&mut self, tag: u32, content: &[u8]) -> Result<(), PivError> {
        const OP: &str = "PUT DATA";
        let mut data = tlv::encode(0x5C, &tlv::tag_bytes(tag)).unwrap_or_default();
        let obj =
            tlv::encode(0x53, content).ok_or(PivError::CommandTooLong { operation: OP, len: content.len(), limit: MAX_COMMAND_DATA })?;
        data.extend_from_slice(&obj);
        self.checked(OP, (INS_PUT_DATA, 0x3F, 0xFF), &data, false, None, NEEDS_MGMT)?;
        Ok(())
    }

    /// VERIFY the PIN. Wrong: [`CardError::WrongSecret`] with the tries left; blocked:
    /// [`CardError::PinBlocked`].
    pub fn verify_pin(&mut self, pin: &PinBlock) -> Result<(), PivError> {
        self.checked("VERIFY PIN", (INS_VERIFY, 0x00, REF_PIN), pin.bytes(), false, Some(Secret::Pin), NEEDS_NOTHING)?;
        Ok(())
    }

    /// The PIN status without spending a try (empty VERIFY).
    pub fn pin_status(&mut self) -> Result<PinStatus, PivError> {
        const OP: &str = "PIN status";
        let r = self.command(OP, INS_VERIFY, 0x00, REF_PIN, &[], false)?;
        match r.sw {
            StatusWord::Success => Ok(PinStatus::Verified),
            StatusWord::VerifyFailed { tries_left: 0 } | StatusWord::AuthenticationBlocked => Ok(PinStatus::Blocked),
            StatusWord::VerifyFailed { tries_left } => Ok(PinStatus::NotVerified { tries_left }),
            sw => Err(sw::to_error(OP, sw, None, NEEDS_NOTHING).into()),
        }
    }

    /// Forget the PIN verification (VERIFY P1 = `FF`).
    pub fn logout(&mut self) -> Result<(), PivError> {
        self.checked("PIN logout", (INS_VERIFY, 0xFF, REF_PIN), &[], false, None, NEEDS_NOTHING)?;
        Ok(())
    }

    fn two_blocks(a: &PinBlock, b: &PinBlock) -> Zeroizing<Vec<u8>> {
        let mut data = Zeroizing::new(Vec::with_capacity(16));
        data.extend_from_slice(a.bytes());
        data.extend_from_slice(b.bytes());
        data
    }

    /// CHANGE REFERENCE DATA for the PIN.
    pub fn change_pin(&mut self, old: &PinBlock, new: &PinBlock) -> Result<(), PivError> {
        let data = Self::two_blocks(old, new);
        self.checked("CHANGE PIN", (INS_CHANGE_REFERENCE, 0x00, REF_PIN), &data, false, Some(Secret::Pin), NEEDS_NOTHING)?;
        Ok(())
    }

    /// CHANGE REFERENCE DATA for the PUK.
    pub fn change_puk(&mut self, old: &PinBlock, new: &PinBlock) -> Result<(), PivError> {
        let data = Self::two_blocks(old, new);
        self.checked("CHANGE PUK", (INS_CHANGE_REFERENCE, 0x00, REF_PUK), &data, false, Some(Secret::Puk), NEEDS_NOTHING)?;
        Ok(())
    }

    /// RESET RETRY COUNTER: set a new PIN with the PUK (unblocks the PIN).
    pub fn unblock_pin(&mut self, puk: &PinBlock, new_pin: &PinBlock) -> Result<(), PivError> {
        let data = Self::two_blocks(puk, new_pin);
        self.checked("UNBLOCK PIN", (INS_RESET_RETRY, 0x00, REF_PIN), &data, false, Some(Secret::Puk), NEEDS_NOTHING)?;
        Ok(())
    }

    /// Mutual authentication with the management key (SP 800-73-4 Part 2 Appendix A.1): the
    /// card proves it knows the key too, so a card that answers anything is not trusted.
    pub fn authenticate_management(&mut self, key: &ManagementKey) -> Result<(), PivError> {
        const OP: &str = "management key authentication";
        let alg = key.algorithm.id();
        let step1 = |this: &mut Self| -> Result<Vec<u8>, PivError> {
            let r = this.command(OP, INS_GENERAL_AUTHENTICATE, alg, REF_MANAGEMENT, &[0x7C, 0x02, 0x80, 0x00], true)?;
            match r.sw {
                StatusWord::Success => Ok(r.data),
                StatusWord::IncorrectP1P2 => Err(CardError::ManagementKeyRejected.into()),
                sw => Err(sw::to_error(OP, sw, None, NEEDS_NOTHING).into()),
            }
        };
        let data = step1(self)?;
        let inner = tlv::single(&data, 0x7C).map_err(PivError::tlv(OP))?;
        let witness_enc = tlv::single(inner, 0x80).map_err(PivError::tlv(OP))?;
        let witness = key.ecb(witness_enc, false)?;
        let mut challenge = Zeroizing::new(vec![0u8; key.algorithm.block_len()]);
        crate::random::fill(&mut challenge)?;
        let mut body = Zeroizing::new(Vec::new());
        body.extend(tlv::encode(0x80, &witness).unwrap_or_default());
        body.extend(tlv::encode(0x81, &challenge).unwrap_or_default());
        let req = Zeroizing::new(tlv::encode(0x7C, &body).unwrap_or_default());
        let r = self.command(OP, INS_GENERAL_AUTHENTICATE, alg, REF_MANAGEMENT, &req, true)?;
        match r.sw {
            StatusWord::Success => {}
            StatusWord::SecurityStatusNotSatisfied => return Err(CardError::ManagementKeyRejected.into()),
            sw => return Err(sw::to_error(OP, sw, None, NEEDS_NOTHING).into()),
        }
        let inner = tlv::single(&r.data, 0x7C).map_err(PivError::tlv(OP))?;
        let proof = tlv::single(inner, 0x82).map_err(PivError::tlv(OP))?;
        let expected = key.ecb(&challenge, true)?;
        if bool::from(expected.as_slice().ct_eq(proof)) { Ok(()) } else { Err(PivError::CardFailedManagementProof) }
    }

    /// Replace the management key (Yubico SET MANAGEMENT KEY, `00 FF FF FF`; management key
    /// required).
    pub fn set_management_key(&mut self, new: &ManagementKey) -> Result<(), PivError> {
        let mut data = Zeroizing::new(vec![new.algorithm.id()]);
        data.extend(tlv::encode(u32::from(REF_MANAGEMENT), &new.key).unwrap_or_default());
        self.checked("SET MANAGEMENT KEY", (INS_SET_MANAGEMENT_KEY, 0xFF, 0xFF), &data, false, None, NEEDS_MGMT)?;
        Ok(())
    }

    /// GENERATE ASYMMETRIC KEY PAIR (P-256) in `slot`; returns the new public key
    /// (management key required).
    pub fn generate(&mut self, slot: Slot) -> Result<VerifyingKey, PivError> {
        const OP: &str = "GENERATE KEY";
        let req = [0xAC, 0x03, 0x80, 0x01, ALG_P256];
        let data = self.checked(OP, (INS_GENERATE, 0x00, slot.key_ref()), &req, true, None, NEEDS_MGMT)?;
        let inner = tlv::single(&data, 0x7F49).map_err(PivError::tlv(OP))?;
        let point = tlv::single(inner, 0x86).map_err(PivError::tlv(OP))?;
        match point {
            [0x04, rest @ ..] if rest.len() == 64 => {}
            other => {
                return Err(PivError::Unexpected {
                    operation: OP,
                    expected: "a 65-byte uncompressed P-256 point",
                    got: format!("{} bytes", other.len()),
                });
            }
        }
        VerifyingKey::from_sec1_bytes(point).map_err(|_| PivError::Unexpected {
            operation: OP,
            expected: "a point on P-256",
            got: "a point not on the curve".into(),
        })
    }

    /// ECDSA-sign a host-computed SHA-256 digest with the key in `slot` (9A, 9C, 9E). The card
    /// answers DER; this returns the checked signature (use `to_bytes()` for COSE's r ‖ s).
    pub fn sign_digest(&mut self, slot: Slot, digest: &[u8; 32]) -> Result<Signature, PivError> {
        const OP: &str = "SIGN";
        let mut body = vec![0x82, 0x00];
        body.extend(tlv::encode(0x81, digest).unwrap_or_default());
        let req = tlv::encode(0x7C, &body).unwrap_or_default();
        let data = self.checked(OP, (INS_GENERAL_AUTHENTICATE, ALG_P256, slot.key_ref()), &req, true, None, slot.needs())?;
        let inner = tlv::single(&data, 0x7C).map_err(PivError::tlv(OP))?;
        let der = tlv::single(inner, 0x82).map_err(PivError::tlv(OP))?;
        Ok(sig::from_der(der)?)
    }

    /// ECDH with the 9D key and `peer`; returns the shared secret Z (the x coordinate).
    pub fn ecdh(&mut self, peer: &p256::PublicKey) -> Result<Zeroizing<[u8; 32]>, PivError> {
        const OP: &str = "ECDH";
        let point = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(peer, false);
        let mut body = vec![0x82, 0x00];
        body.extend(tlv::encode(0x85, point.as_bytes()).unwrap_or_default());
        let req = tlv::encode(0x7C, &body).unwrap_or_default();
        let data = self.checked(
            OP,
            (INS_GENERAL_AUTHENTICATE, ALG_P256, Slot::KeyManagement.key_ref()),
            &req,
            true,
            None,
            Slot::KeyManagement.needs(),
        )?;
        let data = Zeroizing::new(data);
        let inner = tlv::single(&data, 0x7C).map_err(PivError::tlv(OP))?;
        let z = tlv::single(inner, 0x82).map_err(PivError::tlv(OP))?;
        let mut out = Zeroizing::new([0u8; 32]);
        if z.len() != 32 {
            return Err(PivError::Unexpected { operation: OP, expected: "32 bytes", got: format!("{} bytes", z.len()) });
        }
        out.copy_from_slice(z);
        Ok(out)
    }

    /// The card serial (Yubico GET SERIAL).
    pub fn serial(&mut self) -> Result<u32, PivError> {
        const OP: &str = "GET SERIAL";
        let data = self.checked(OP, (INS_GET_SERIAL, 0x00, 0x00), &[], true, None, NEEDS_NOTHING)?;
        let bytes: [u8; 4] = data.as_slice().try_into().map_err(|_| PivError::Unexpected {
            operation: OP,
            expected: "4 bytes",
            got: format!("{} bytes", data.len()),
        })?;
        Ok(u32::from_be_bytes(bytes))
    }

    /// The firmware version (Yubico GET VERSION), e.g. `(5, 4, 3)`.
    pub fn version(&mut self) -> Result<(u8, u8, u8), PivError> {
        const OP: &str = "GET VERSION";
        let data = self.checked(OP, (INS_GET_VERSION, 0x00, 0x00), &[], true, None, NEEDS_NOTHING)?;
        match data.as_slice() {
            [a, b, c] => Ok((*a, *b, *c)),
            other => Err(PivError::Unexpected { operation: OP, expected: "3 bytes", got: format!("{} bytes", other.len()) }),
        }
    }

    /// The CHUID's GUID (tag `34`, 16 bytes), if the card has a CHUID.
    pub fn chuid_guid(&mut self) -> Result<Option<[u8; 16]>, PivError> {
        const OP: &str = "read CHUID";
        let Some(chuid) = self.get_data(tags::CHUID)? else { return Ok(None) };
        let items = tlv::parse_all(&chuid).map_err(PivError::tlv(OP))?;
        let guid = tlv::find_unique(&items, 0x34).map_err(PivError::tlv(OP))?;
        let guid: [u8; 16] = guid.try_into().map_err(|_| PivError::Unexpected {
            operation: OP,
            expected: "a 16-byte GUID",
            got: format!("{} bytes", guid.len()),
        })?;
        Ok(Some(guid))
    }

    /// The X.509 certificate (DER) in `slot`'s certificate object (`70` of SP 800-73-4 Part 1
    /// Table 10), or `None` if the object is absent.
    pub fn certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>, PivError> {
        const OP: &str = "read certificate";
        let Some(obj) = self.get_data(slot.certificate_tag())? else { return Ok(None) };
        let mut r = TlvReader::new(&obj);
        let cert = r.expect(0x70).map_err(PivError::tlv(OP))?;
        Ok(Some(cert.to_vec()))
    }

    /// Write `cert` (DER) as `slot`'s certificate object: `70 cert 71 00 FE 00`.
    pub fn put_certificate(&mut self, slot: Slot, cert: &[u8]) -> Result<(), PivError> {
        let mut obj = tlv::encode(0x70, cert).ok_or(PivError::CommandTooLong {
            operation: "write certificate",
            len: cert.len(),
            limit: MAX_COMMAND_DATA,
        })?;
        obj.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
        self.put_data(slot.certificate_tag(), &obj)
    }

    /// The MedCard card credential object (`5FFFC0`), raw, if present.
    pub fn card_credential(&mut self) -> Result<Option<Vec<u8>>, PivError> {
        self.get_data(tags::CARD_CREDENTIAL)
    }

    /// The MedCard consent token object (`5FFFC1`), raw, if present.
    pub fn consent_token(&mut self) -> Result<Option<Vec<u8>>, PivError> {
        self.get_data(tags::CONSENT_TOKEN)
    }
}

/// What `medcard card info` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CardInfo {
    /// The reader.
    pub reader: String,
    /// Application label from SELECT.
    pub label: Option<String>,
    /// Card serial.
    pub serial: u32,
    /// Firmware version `a.b.c`.
    pub version: String,
    /// CHUID GUID as RFC 4122 text, if present.
    pub chuid_guid: Option<String>,
    /// Slots whose certificate object is present.
    pub certificates: Vec<String>,
    /// PIN status.
    pub pin: PinStatus,
    /// Size of the card credential object, if present.
    pub card_credential_bytes: Option<usize>,
    /// Size of the consent token object, if present.
    pub consent_token_bytes: Option<usize>,
}

fn guid_text(g: &[u8; 16]) -> String {
    let h = hex::encode(g);
    let part = |a: usize, b: usize| h.get(a..b).unwrap_or_default().to_owned();
    format!("{}-{}-{}-{}-{}", part(0, 8), part(8, 12), part(12, 16), part(16, 20), part(20, 32))
}

impl<T: Transport> Piv<T> {
    /// Read everything `card info` shows (no PIN needed, no try spent).
    pub fn info(&mut self) -> Result<CardInfo, PivError> {
        let app = self.select()?;
        let serial = self.serial()?;
        let (a, b, c) = self.version()?;
        let chuid_guid = self.chuid_guid()?.as_ref().map(guid_text);
        let mut certificates = Vec::new();
        for slot in Slot::ALL {
            if self.get_data(slot.certificate_tag())?.is_some() {
                certificates.push(slot.to_string());
            }
        }
        let pin = self.pin_status()?;
        let card_credential_bytes = self.card_credential()?.map(|v| v.len());
        let consent_token_bytes = self.consent_token()?.map(|v| v.len());
        Ok(CardInfo {
            reader: self.transport.reader_name().to_owned(),
            label: app.label,
            serial,
            version: format!("{a}.{b}.{c}"),
            chuid_guid,
            certificates,
            pin,
            card_credential_bytes,
            consent_token_bytes,
        })
    }
}
