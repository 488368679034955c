//! Command APDUs: the ISO/IEC 7816-4 §5.1 encoding (short and extended) and the typed PIV
//! commands (SP 800-73-4 Part 2 §3). Parsing comes first and its error *is* the status word,
//! so malformed or out-of-range input never reaches a handler.

use std::fmt;

use zeroize::Zeroizing;

use crate::key_ref::{ALG_ECC_P256, KeySlot, MgmtAlgorithm};
use crate::objects::{self, PIV_AID, PIV_AID_MIN_LEN};
use crate::pin::{PIN_BLOCK_LEN, PinBlock};
use crate::reply::StatusWord;
use crate::tlv;

/// CLA bit for command chaining (ISO/IEC 7816-4 §5.1.1.1): "not the last command of a chain".
pub const CLA_CHAIN: u8 = 0x10;

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERATE_ASYMMETRIC: u8 = 0x47;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GET_RESPONSE: u8 = 0xC0;
    /// Yubico extension: set the management key.
    pub const SET_MANAGEMENT_KEY: u8 = 0xFF;
    /// Yubico extension: firmware version.
    pub const GET_VERSION: u8 = 0xFD;
    /// Yubico extension: serial number.
    pub const GET_SERIAL: u8 = 0xF8;

    /// Whether the applet implements `ins` (anything else answers `6D00`).
    pub fn is_supported(ins: u8) -> bool {
        matches!(
            ins,
            SELECT
                | GET_DATA
                | PUT_DATA
                | VERIFY
                | CHANGE_REFERENCE_DATA
                | RESET_RETRY_COUNTER
                | GENERATE_ASYMMETRIC
                | GENERAL_AUTHENTICATE
                | GET_RESPONSE
                | SET_MANAGEMENT_KEY
                | GET_VERSION
                | GET_SERIAL
        )
    }
}

/// A command APDU split into its fields; `data` borrows from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apdu<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// Ne: the most response bytes the host accepts (Le absent: 256 short / 65536 extended).
    pub ne: usize,
}

/// Split an APDU per ISO/IEC 7816-4 §5.1 (cases 1, 2S, 3S, 4S, 2E, 3E, 4E); `6700` if the
/// length fields do not match the bytes.
pub fn parse_apdu(bytes: &[u8]) -> Result<Apdu<'_>, StatusWord> {
    let (header, body) = bytes.split_at_checked(4).ok_or(StatusWord::WrongLength)?;
    let [cla, ins, p1, p2] = <[u8; 4]>::try_from(header).map_err(|_| StatusWord::WrongLength)?;
    let apdu = |data, ne| Apdu { cla, ins, p1, p2, data, ne };
    let short_ne = |le: u8| if le == 0 { 256 } else { usize::from(le) };
    let ext_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => usize::from(n),
    };
    match body {
        // Case 1.
        [] => Ok(apdu(&[], 256)),
        // Case 2S.
        [le] => Ok(apdu(&[], short_ne(*le))),
        // Case 2E: 00 Le1 Le2.
        [0, hi, lo] => Ok(apdu(&[], ext_ne(*hi, *lo))),
        // Extended Lc (cases 3E, 4E): 00 Lc1 Lc2 data [Le1 Le2].
        [0, hi, lo, rest @ ..] => {
            let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
            if lc == 0 {
                return Err(StatusWord::WrongLength);
            }
            let (data, le) = rest.split_at_checked(lc).ok_or(StatusWord::WrongLength)?;
            match le {
                [] => Ok(apdu(data, 65536)),
                [hi, lo] => Ok(apdu(data, ext_ne(*hi, *lo))),
                _ => Err(StatusWord::WrongLength),
            }
        }
        // Short Lc (cases 3S, 4S).
        [lc, rest @ ..] if *lc != 0 => {
            let (data, le) = rest.split_at_checked(usize::from(*lc)).ok_or(StatusWord::WrongLength)?;
            match le {
                [] => Ok(apdu(data, 256)),
                [le] => Ok(apdu(data, short_ne(*le))),
                _ => Err(StatusWord::WrongLength),
            }
        }
        _ => Err(StatusWord::WrongLength),
    }
}

/// VERIFY variants (Part 2 §3.2.1).
#[derive(Debug)]
pub enum Verify {
    /// Empty data: report the security status / tries left.
    Status,
    /// Compare a PIN.
    Check(PinBlock),
    /// P1 = FF: reset the PIN's security status.
    Logout,
}

/// Which reference data CHANGE REFERENCE DATA changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRef {
    /// 80: PIV Card Application PIN.
    Pin,
    /// 81: PIN Unblocking Key.
    Puk,
}

/// GENERAL AUTHENTICATE with the 9B management key (Part 2 App. A.1, A.2).
pub enum MgmtStep {
    /// `7C { 80 00 }`: card returns a witness `E(K, W)` (mutual authentication, step 1).
    RequestWitness,
    /// `7C { 80 W, 81 C }`: host returns the decrypted witness and its own challenge; card
    /// checks W and answers `7C { 82 E(K, C) }` (mutual authentication, step 2).
    MutualResponse { witness: Vec<u8>, challenge: Vec<u8> },
    /// `7C { 81 00 }`: card returns a challenge (external authentication, step 1).
    RequestChallenge,
    /// `7C { 82 E(K, C) }`: host's response to the challenge (external authentication, step 2).
    ExternalResponse { response: Vec<u8> },
}

impl fmt::Debug for MgmtStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RequestWitness => "RequestWitness",
            Self::MutualResponse { .. } => "MutualResponse",
            Self::RequestChallenge => "RequestChallenge",
            Self::ExternalResponse { .. } => "ExternalResponse",
        })
    }
}

/// GENERAL AUTHENTICATE (Part 2 §3.2.4).
#[derive(Debug)]
pub enum Authenticate {
    Management {
        algorithm: MgmtAlgorithm,
        step: MgmtStep,
    },
    /// ECDSA over a host digest (normalized to 32 bytes): `7C { 82 00, 81 digest }`.
    Sign {
        slot: KeySlot,
        digest: [u8; 32],
    },
    /// ECDH: `7C { 82 00, 85 04||X||Y }`.
    Ecdh {
        slot: KeySlot,
        peer: Vec<u8>,
    },
}

/// A parsed PIV (or Yubico-extension) command.
#[derive(Debug)]
pub enum Command {
    /// SELECT of the PIV AID (a right-truncated prefix of at least the RID).
    Select,
    GetData {
        tag: u32,
    },
    PutData {
        tag: u32,
        content: Vec<u8>,
    },
    Verify(Verify),
    ChangeReference {
        which: PinRef,
        old: PinBlock,
        new: PinBlock,
    },
    ResetRetryCounter {
        puk: PinBlock,
        new_pin: PinBlock,
    },
    Generate {
        slot: KeySlot,
        pin_policy: Option<u8>,
        touch_policy: Option<u8>,
    },
    Authenticate(Authenticate),
    SetManagementKey {
        algorithm: MgmtAlgorithm,
        key: Zeroizing<Vec<u8>>,
        touch_required: bool,
    },
    GetVersion,
    GetSerial,
}

fn bad_data<E>(_: E) -> StatusWord {
    StatusWord::IncorrectData
}

fn p1p2(p1: u8, p2: u8, want: (u8, u8)) -> Result<(), StatusWord> {
    if (p1, p2) == want { Ok(()) } else { Err(StatusWord::IncorrectP1P2) }
}

fn no_data(data: &[u8]) -> Result<(), StatusWord> {
    if data.is_empty() { Ok(()) } else { Err(StatusWord::WrongLength) }
}

/// The tag inside `5C len tag` (Part 2 §3.1.2): 1 to 3 bytes.
fn object_tag(value: &[u8]) -> Result<u32, StatusWord> {
    if value.is_empty() || value.len() > 3 {
        return Err(StatusWord::IncorrectData);
    }
    Ok(value.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

fn pin_pair(data: &[u8]) -> Result<(PinBlock, PinBlock), StatusWord> {
    let (a, b) = data.split_at_checked(PIN_BLOCK_LEN).ok_or(StatusWord::IncorrectData)?;
    Ok((PinBlock::parse(a)?, PinBlock::parse(b)?))
}

impl Command {
    /// Type a command from its header and (reassembled) data. CLA is checked by the caller.
    pub fn parse(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Self, StatusWord> {
        match ins {
            ins::SELECT => {
                // Part 2 §3.1.1: P1 = 04 (select by AID), P2 = 00 (first or only occurrence).
                p1p2(p1, p2, (0x04, 0x00))?;
                let is_piv = data.len() >= PIV_AID_MIN_LEN && PIV_AID.starts_with(data);
                if is_piv { Ok(Self::Select) } else { Err(StatusWord::NotFound) }
            }
            ins::GET_DATA => {
                // Part 2 §3.1.2: P1 P2 = 3F FF, data = 5C len tag.
                p1p2(p1, p2, (0x3F, 0xFF))?;
                let tag = object_tag(tlv::single(data, 0x5C).map_err(bad_data)?)?;
                Ok(Self::GetData { tag })
            }
            ins::PUT_DATA => {
                // Part 2 §3.3.2: P1 P2 = 3F FF, data = 5C len tag, 53 len content.
                p1p2(p1, p2, (0x3F, 0xFF))?;
                let mut r = tlv::Reader::new(data);
                let first = r.next_tlv().map_err(bad_data)?.ok_or(StatusWord::IncorrectData)?;
                if first.tag != 0x5C {
                    return Err(StatusWord::IncorrectData);
                }
                let tag = object_tag(first.value)?;
                let second = r.next_tlv().map_err(bad_data)?.ok_or(StatusWord::IncorrectData)?;
                if second.tag != 0x53 || !r.is_empty() {
                    return Err(StatusWord::IncorrectData);
                }
                if !objects::is_stored_object(tag) {
                    return Err(StatusWord::IncorrectData);
                }
                if second.value.len() > objects::MAX_OBJECT_LEN {
                    return Err(StatusWord::NotEnoughMemory);
                }
                Ok(Self::PutData { tag, content: second.value.to_vec() })
            }
            ins::VERIFY => {
                // Part 2 §3.2.1: P1 = 00 or FF; P2 = 80 (PIV PIN). The global PIN (00) and the
                // PUK are not VERIFY-able here.
                match p2 {
                    0x80 => {}
                    0x00 => return Err(StatusWord::ReferenceNotFound),
                    _ => return Err(StatusWord::IncorrectP1P2),
                }
                match (p1, data.len()) {
                    (0xFF, 0) => Ok(Self::Verify(Verify::Logout)),
                    (0xFF, _) => Err(StatusWord::WrongLength),
                    (0x00, 0) => Ok(Self::Verify(Verify::Status)),
                    (0x00, _) => Ok(Self::Verify(Verify::Check(PinBlock::parse(data)?))),
                    _ => Err(StatusWord::IncorrectP1P2),
                }
            }
            ins::CHANGE_REFERENCE_DATA => {
                // Part 2 §3.2.2: P1 = 00; P2 = 80 (PIN) or 81 (PUK); data = old || new.
                let which = match (p1, p2) {
                    (0x00, 0x80) => PinRef::Pin,
                    (0x00, 0x81) => PinRef::Puk,
                    (0x00, 0x00) => return Err(StatusWord::ReferenceNotFound),
                    _ => return Err(StatusWord::IncorrectP1P2),
                };
                let (old, new) = pin_pair(data)?;
                if data.len() != 2 * PIN_BLOCK_LEN {
                    return Err(StatusWord::IncorrectData);
                }
                Ok(Self::ChangeReference { which, old, new })
            }
            ins::RESET_RETRY_COUNTER => {
                // Part 2 §3.2.3: P1 = 00, P2 = 80; data = PUK || new PIN.
                p1p2(p1, p2, (0x00, 0x80))?;
                if data.len() != 2 * PIN_BLOCK_LEN {
                    return Err(StatusWord::IncorrectData);
                }
                let (puk, new_pin) = pin_pair(data)?;
                Ok(Self::ResetRetryCounter { puk, new_pin })
            }
            ins::GENERATE_ASYMMETRIC => {
                // Part 2 §3.3.2: P1 = 00, P2 = key reference; data = AC { 80 alg [AA pin] [AB touch] }.
                if p1 != 0x00 {
                    return Err(StatusWord::IncorrectP1P2);
                }
                let slot = KeySlot::try_from(p2).map_err(|_| StatusWord::IncorrectP1P2)?;
                let template = tlv::single(data, 0xAC).map_err(bad_data)?;
                let fields = tlv::fields(template).map_err(bad_data)?;
                let one_byte = |tag| match tlv::find(&fields, tag) {
                    None => Ok(None),
                    Some([b]) => Ok(Some(*b)),
                    Some(_) => Err(StatusWord::IncorrectData),
                };
                if one_byte(0x80)? != Some(ALG_ECC_P256) {
                    return Err(StatusWord::IncorrectData);
                }
                // AA (PIN policy) and AB (touch policy) are Yubico extensions: recorded only.
                let pin_policy = one_byte(0xAA)?;
                let touch_policy = one_byte(0xAB)?;
                if fields.iter().any(|f| ![0x80, 0xAA, 0xAB].contains(&f.tag)) {
                    return Err(StatusWord::IncorrectData);
                }
                Ok(Self::Generate { slot, pin_policy, touch_policy })
            }
            ins::GENERAL_AUTHENTICATE => Self::parse_authenticate(p1, p2, data),
            ins::SET_MANAGEMENT_KEY => {
                // Yubico: P1 = FF, P2 = FF (no touch) or FE (touch); data = alg 9B len key.
                let touch_required = match (p1, p2) {
                    (0xFF, 0xFF) => false,
                    (0xFF, 0xFE) => true,
                    _ => return Err(StatusWord::IncorrectP1P2),
                };
                let (alg, rest) = data.split_first().ok_or(StatusWord::IncorrectData)?;
                let algorithm = MgmtAlgorithm::try_from(*alg).map_err(bad_data)?;
                let key = tlv::single(rest, 0x9B).map_err(bad_data)?;
                if key.len() != algorithm.key_len() {
                    return Err(StatusWord::IncorrectData);
                }
                Ok(Self::SetManagementKey { algorithm, key: Zeroizing::new(key.to_vec()), touch_required })
            }
            ins::GET_VERSION => {
                p1p2(p1, p2, (0, 0))?;
                no_data(data)?;
                Ok(Self::GetVersion)
            }
            ins::GET_SERIAL => {
                p1p2(p1, p2, (0, 0))?;
                no_data(data)?;
                Ok(Self::GetSerial)
            }
            _ => Err(StatusWord::InsNotSupported),
        }
    }

    fn parse_authenticate(p1: u8, p2: u8, data: &[u8]) -> Result<Self, StatusWord> {
        let template = tlv::single(data, 0x7C).map_err(bad_data)?;
        let fields = tlv::fields(template).map_err(bad_data)?;
        let get = |tag| tlv::find(&fields, tag);
        if p2 == 0x9B {
            let algorithm = MgmtAlgorithm::try_from(p1).map_err(|_| StatusWord::IncorrectP1P2)?;
            // Mutual step 2 is `7C { 80 W, 81 C }` (yubico-piv-tool) or with an empty `82`
            // asking for the response (OpenSC): both accepted.
            let step = match (get(0x80), get(0x81), get(0x82), fields.len()) {
                (Some([]), None, None, 1) => MgmtStep::RequestWitness,
                (Some(w), Some(c), None, 2) | (Some(w), Some(c), Some([]), 3) if !w.is_empty() && !c.is_empty() => {
                    MgmtStep::MutualResponse { witness: w.to_vec(), challenge: c.to_vec() }
                }
                (None, Some([]), None, 1) => MgmtStep::RequestChallenge,
                (None, None, Some(r), 1) if !r.is_empty() => MgmtStep::ExternalResponse { response: r.to_vec() },
                _ => return Err(StatusWord::IncorrectData),
            };
            return Ok(Self::Authenticate(Authenticate::Management { algorithm, step }));
        }
        let slot = KeySlot::try_from(p2).map_err(|_| StatusWord::ReferenceNotFound)?;
        if p1 != ALG_ECC_P256 {
            return Err(StatusWord::IncorrectP1P2);
        }
        // 82 00 asks for the response; exactly one of 81 (challenge/digest) and 85 (peer point).
        if get(0x82) != Some(&[]) || fields.len() != 2 {
            return Err(StatusWord::IncorrectData);
        }
        match (get(0x81), get(0x85)) {
            (Some(d), None) if !d.is_empty() && d.len() <= 64 => {
                Ok(Self::Authenticate(Authenticate::Sign { slot, digest: crate::crypto::normalize_digest(d) }))
            }
            (None, Some(p)) => Ok(Self::Authenticate(Authenticate::Ecdh { slot, peer: p.to_vec() })),
            _ => Err(StatusWord::IncorrectData),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_iso_case() {
        let a = parse_apdu(&[0, 0xA4, 4, 0]);
        assert!(matches!(a, Ok(Apdu { data: [], ne: 256, .. })));
        assert!(matches!(parse_apdu(&[0, 0xCB, 0x3F, 0xFF, 0x10]), Ok(Apdu { data: [], ne: 16, .. })));
        assert!(matches!(parse_apdu(&[0, 0xCB, 0x3F, 0xFF, 0, 0, 0]), Ok(Apdu { data: [], ne: 65536, .. })));
        assert!(matches!(parse_apdu(&[0, 0x20, 0, 0x80, 2, 1, 2]), Ok(Apdu { data: [1, 2], ne: 256, .. })));
        assert!(matches!(parse_apdu(&[0, 0x20, 0, 0x80, 2, 1, 2, 0]), Ok(Apdu { data: [1, 2], ne: 256, .. })));
        assert!(matches!(parse_apdu(&[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2]), Ok(Apdu { data: [1, 2], ne: 65536, .. })));
        assert!(matches!(parse_apdu(&[0, 0x20, 0, 0x80, 0, 0, 2, 1, 2, 1, 0]), Ok(Apdu { data: [1, 2], ne: 256, .. })));
    }

    #[test]
    fn refuses_length_fields_that_do_not_match_the_bytes() {
        for bad in [
            &[0u8, 0xA4, 4][..],
            &[0, 0x20, 0, 0x80, 3, 1, 2],
            &[0, 0x20, 0, 0x80, 1, 1, 2, 3],
            &[0, 0x20, 0, 0x80, 0, 0, 3, 1, 2],
            &[0, 0x20, 0, 0x80, 0, 0, 0, 1],
            &[0, 0x20, 0, 0x80, 0, 0, 1, 1, 2],
        ] {
            assert_eq!(parse_apdu(bad).err(), Some(StatusWord::WrongLength), "{bad:02X?}");
        }
    }

    #[test]
    fn select_accepts_truncated_piv_aid_and_refuses_others() {
        assert!(matches!(Command::parse(0xA4, 4, 0, &PIV_AID), Ok(Command::Select)));
        assert!(matches!(Command::parse(0xA4, 4, 0, &PIV_AID[..5]), Ok(Command::Select)));
        assert_eq!(Command::parse(0xA4, 4, 0, &PIV_AID[..4]).err(), Some(StatusWord::NotFound));
        assert_eq!(Command::parse(0xA4, 4, 0, &[0xA0, 0, 0, 0, 0x63]).err(), Some(StatusWord::NotFound));
        assert_eq!(Command::parse(0xA4, 0, 0, &PIV_AID).err(), Some(StatusWord::IncorrectP1P2));
    }
}
