//! Status words (ISO/IEC 7816-4 §5.6, SP 800-73-4 Part 2 §3 per command) and the response builder.

/// A status word the applet answers. Parsing and handling errors *are* status words, so a
/// handler returns `Result<Vec<u8>, StatusWord>` and bad input cannot reach an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWord {
    /// `9000`: success.
    Success,
    /// `61xx`: more response data; `xx` bytes (0 = 256 or more) via GET RESPONSE.
    BytesRemaining(u8),
    /// `63Cx`: verification failed, `x` tries left.
    VerifyFailed { tries_left: u8 },
    /// `6581`: memory failure (the state could not be saved; nothing changed).
    MemoryFailure,
    /// `6700`: wrong length (APDU structure, Lc vs data length).
    WrongLength,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthBlocked,
    /// `6985`: conditions of use not satisfied (e.g. GET RESPONSE with nothing pending).
    ConditionsNotSatisfied,
    /// `6A80`: incorrect data in the command data field.
    IncorrectData,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6A82`: file or application (data object) not found.
    NotFound,
    /// `6A84`: not enough memory (object or chain too large).
    NotEnoughMemory,
    /// `6A86`: incorrect P1 or P2.
    IncorrectP1P2,
    /// `6A88`: referenced data (key, PIN reference) not found.
    ReferenceNotFound,
    /// `6D00`: instruction not supported.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// `6F00`: no precise diagnosis (e.g. the random source failed).
    Unknown,
}

impl StatusWord {
    /// The two status bytes.
    pub fn to_bytes(self) -> [u8; 2] {
        u16::from(self).to_be_bytes()
    }

    /// Whether the command completed (9000 or 61xx).
    pub fn is_success(self) -> bool {
        matches!(self, Self::Success | Self::BytesRemaining(_))
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> u16 {
        match sw {
            StatusWord::Success => 0x9000,
            StatusWord::BytesRemaining(n) => 0x6100 | u16::from(n),
            StatusWord::VerifyFailed { tries_left } => 0x63C0 | u16::from(tries_left & 0x0F),
            StatusWord::MemoryFailure => 0x6581,
            StatusWord::WrongLength => 0x6700,
            StatusWord::SecurityStatusNotSatisfied => 0x6982,
            StatusWord::AuthBlocked => 0x6983,
            StatusWord::ConditionsNotSatisfied => 0x6985,
            StatusWord::IncorrectData => 0x6A80,
            StatusWord::FunctionNotSupported => 0x6A81,
            StatusWord::NotFound => 0x6A82,
            StatusWord::NotEnoughMemory => 0x6A84,
            StatusWord::IncorrectP1P2 => 0x6A86,
            StatusWord::ReferenceNotFound => 0x6A88,
            StatusWord::InsNotSupported => 0x6D00,
            StatusWord::ClaNotSupported => 0x6E00,
            StatusWord::Unknown => 0x6F00,
        }
    }
}

impl TryFrom<u16> for StatusWord {
    type Error = u16;
    fn try_from(v: u16) -> Result<Self, u16> {
        Ok(match v {
            0x9000 => Self::Success,
            0x6100..=0x61FF => Self::BytesRemaining((v & 0xFF) as u8),
            0x63C0..=0x63CF => Self::VerifyFailed { tries_left: (v & 0x0F) as u8 },
            0x6581 => Self::MemoryFailure,
            0x6700 => Self::WrongLength,
            0x6982 => Self::SecurityStatusNotSatisfied,
            0x6983 => Self::AuthBlocked,
            0x6985 => Self::ConditionsNotSatisfied,
            0x6A80 => Self::IncorrectData,
            0x6A81 => Self::FunctionNotSupported,
            0x6A82 => Self::NotFound,
            0x6A84 => Self::NotEnoughMemory,
            0x6A86 => Self::IncorrectP1P2,
            0x6A88 => Self::ReferenceNotFound,
            0x6D00 => Self::InsNotSupported,
            0x6E00 => Self::ClaNotSupported,
            0x6F00 => Self::Unknown,
            other => return Err(other),
        })
    }
}

/// `data || SW1 SW2`.
pub fn response(mut data: Vec<u8>, sw: StatusWord) -> Vec<u8> {
    data.extend_from_slice(&sw.to_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips_through_u16() {
        let all = [
            StatusWord::Success,
            StatusWord::BytesRemaining(0),
            StatusWord::BytesRemaining(0x42),
            StatusWord::VerifyFailed { tries_left: 2 },
            StatusWord::MemoryFailure,
            StatusWord::WrongLength,
            StatusWord::SecurityStatusNotSatisfied,
            StatusWord::AuthBlocked,
            StatusWord::ConditionsNotSatisfied,
            StatusWord::IncorrectData,
            StatusWord::FunctionNotSupported,
            StatusWord::NotFound,
            StatusWord::NotEnoughMemory,
            StatusWord::IncorrectP1P2,
            StatusWord::ReferenceNotFound,
            StatusWord::InsNotSupported,
            StatusWord::ClaNotSupported,
            StatusWord::Unknown,
        ];
        for sw in all {
            assert_eq!(StatusWord::try_from(u16::from(sw)), Ok(sw), "{sw:?}");
        }
        assert_eq!(StatusWord::try_from(0x6C10), Err(0x6C10));
    }
}
