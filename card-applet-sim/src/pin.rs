//! PIN and PUK values as presented in VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER
//! (SP 800-73-4 Part 2 §2.4.3: 6–8 characters from '0'–'9', padded with FF to 8 bytes).

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::reply::StatusWord;

/// Length of a PIN or PUK reference value on the wire.
pub const PIN_BLOCK_LEN: usize = 8;
/// Fewest digits a PIN or PUK may have.
pub const MIN_DIGITS: usize = 6;

/// A well-formed 8-byte PIN or PUK block.
pub struct PinBlock(Zeroizing<[u8; PIN_BLOCK_LEN]>);

impl fmt::Debug for PinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinBlock(<redacted>)")
    }
}

impl PinBlock {
    /// Parse an 8-byte block: 6–8 ASCII digits followed only by FF padding; else `6A80`.
    pub fn parse(bytes: &[u8]) -> Result<Self, StatusWord> {
        let arr: [u8; PIN_BLOCK_LEN] = bytes.try_into().map_err(|_| StatusWord::IncorrectData)?;
        let digits = arr.iter().take_while(|b| b.is_ascii_digit()).count();
        let padded = arr.iter().skip(digits).all(|b| *b == 0xFF);
        if digits < MIN_DIGITS || !padded {
            return Err(StatusWord::IncorrectData);
        }
        Ok(Self(Zeroizing::new(arr)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// Constant-time comparison with a stored reference value.
    pub fn matches(&self, reference: &[u8]) -> bool {
        bool::from(self.as_bytes().ct_eq(reference))
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn accepts_six_to_eight_digits_padded_with_ff() {
        assert!(PinBlock::parse(b"123456\xFF\xFF").is_ok());
        assert!(PinBlock::parse(b"1234567\xFF").is_ok());
        assert!(PinBlock::parse(b"12345678").is_ok());
    }

    #[test]
    fn refuses_short_pins_letters_bad_padding_and_wrong_length() {
        for bad in [&b"12345\xFF\xFF\xFF"[..], b"12345a\xFF\xFF", b"123456\x00\x00", b"123456\xFF1", b"123456", b"123456\xFF\xFF\xFF", b""]
        {
            assert_eq!(PinBlock::parse(bad).err(), Some(StatusWord::IncorrectData), "{bad:?}");
        }
    }

    #[test]
    fn matches_only_the_same_block() {
        let Ok(p) = PinBlock::parse(b"123456\xFF\xFF") else { panic!("parse") };
        assert!(p.matches(b"123456\xFF\xFF"));
        assert!(!p.matches(b"123457\xFF\xFF"));
        assert!(!p.matches(b"123456"));
    }
}
