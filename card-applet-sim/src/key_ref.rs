//! Key references and algorithm identifiers (SP 800-78-4 Table 6-1 / SP 800-73-4 Part 1 §5.1).

use serde::{Deserialize, Serialize};

/// An asymmetric key slot (SP 800-73-4 Part 1 Table 4b), each with a fixed PIN policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeySlot {
    /// 9A PIV Authentication: ECDSA, PIN once per session.
    PivAuth,
    /// 9C Digital Signature: ECDSA, PIN before every signature ("PIN always").
    Signature,
    /// 9D Key Management: ECDH, PIN once per session.
    KeyManagement,
    /// 9E Card Authentication: ECDSA, no PIN.
    CardAuth,
}

impl KeySlot {
    pub const ALL: [KeySlot; 4] = [Self::PivAuth, Self::Signature, Self::KeyManagement, Self::CardAuth];

    /// The key reference byte (GENERATE and GENERAL AUTHENTICATE P2).
    pub fn key_ref(self) -> u8 {
        match self {
            Self::PivAuth => 0x9A,
            Self::Signature => 0x9C,
            Self::KeyManagement => 0x9D,
            Self::CardAuth => 0x9E,
        }
    }

    /// The certificate object of this slot (SP 800-73-4 Part 1 Table 3).
    pub fn certificate_tag(self) -> u32 {
        match self {
            Self::PivAuth => crate::objects::CERT_9A,
            Self::Signature => crate::objects::CERT_9C,
            Self::KeyManagement => crate::objects::CERT_9D,
            Self::CardAuth => crate::objects::CERT_9E,
        }
    }
}

impl TryFrom<u8> for KeySlot {
    type Error = u8;
    fn try_from(b: u8) -> Result<Self, u8> {
        match b {
            0x9A => Ok(Self::PivAuth),
            0x9C => Ok(Self::Signature),
            0x9D => Ok(Self::KeyManagement),
            0x9E => Ok(Self::CardAuth),
            other => Err(other),
        }
    }
}

/// The management-key algorithm (SP 800-78-4 Table 6-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MgmtAlgorithm {
    /// 03: 3-key Triple DES (ECB), 24-byte key, 8-byte blocks.
    Tdes,
    /// 08: AES-128.
    Aes128,
    /// 0A: AES-192.
    Aes192,
    /// 0C: AES-256.
    Aes256,
}

impl MgmtAlgorithm {
    pub fn id(self) -> u8 {
        match self {
            Self::Tdes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            Self::Tdes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }
    pub fn block_len(self) -> usize {
        match self {
            Self::Tdes => 8,
            _ => 16,
        }
    }
}

impl TryFrom<u8> for MgmtAlgorithm {
    type Error = u8;
    fn try_from(b: u8) -> Result<Self, u8> {
        match b {
            0x03 => Ok(Self::Tdes),
            0x08 => Ok(Self::Aes128),
            0x0A => Ok(Self::Aes192),
            0x0C => Ok(Self::Aes256),
            other => Err(other),
        }
    }
}

/// ECC P-256 (SP 800-78-4 Table 6-2), the only asymmetric algorithm this card implements.
pub const ALG_ECC_P256: u8 = 0x11;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_algorithms_round_trip_through_bytes() {
        for s in KeySlot::ALL {
            assert_eq!(KeySlot::try_from(s.key_ref()), Ok(s));
        }
        for a in [MgmtAlgorithm::Tdes, MgmtAlgorithm::Aes128, MgmtAlgorithm::Aes192, MgmtAlgorithm::Aes256] {
            assert_eq!(MgmtAlgorithm::try_from(a.id()), Ok(a));
        }
        assert_eq!(KeySlot::try_from(0x9B), Err(0x9B));
        assert_eq!(MgmtAlgorithm::try_from(0x11), Err(0x11));
    }
}
