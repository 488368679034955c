//! Status words (ISO/IEC 7816-4 §5.1.3; docs/card.md "Status words") and the typed card errors
//! they become, worded so that a person knows what happened and what to do next.

use thiserror::Error;

/// A status word from the card, decoded. Unknown values are kept in [`StatusWord::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusWord {
    /// `9000`
    Success,
    /// `61xx`: more response bytes to fetch with GET RESPONSE (`0` means 256 or more).
    BytesRemaining(u8),
    /// `63Cx`: wrong PIN/PUK (or an empty VERIFY), `x` tries left.
    VerifyFailed { tries_left: u8 },
    /// `6581`: the card could not save its new state.
    MemoryFailure,
    /// `6700`
    WrongLength,
    /// `6982`
    SecurityStatusNotSatisfied,
    /// `6983`
    AuthenticationBlocked,
    /// `6985`
    ConditionsNotSatisfied,
    /// `6A80`
    IncorrectData,
    /// `6A82`
    NotFound,
    /// `6A84`
    NotEnoughMemory,
    /// `6A86`
    IncorrectP1P2,
    /// `6A88`
    ReferenceNotFound,
    /// `6D00`
    InsNotSupported,
    /// `6E00`
    ClaNotSupported,
    /// `6F00`
    NoPreciseDiagnosis,
    /// Anything else, as received.
    Other(u16),
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        match sw {
            0x9000 => Self::Success,
            0x6100..=0x61FF => Self::BytesRemaining((sw & 0xFF) as u8),
            0x63C0..=0x63CF => Self::VerifyFailed { tries_left: (sw & 0x0F) as u8 },
            0x6581 => Self::MemoryFailure,
            0x6700 => Self::WrongLength,
            0x6982 => Self::SecurityStatusNotSatisfied,
            0x6983 => Self::AuthenticationBlocked,
            0x6985 => Self::ConditionsNotSatisfied,
            0x6A80 => Self::IncorrectData,
            0x6A82 => Self::NotFound,
            0x6A84 => Self::NotEnoughMemory,
            0x6A86 => Self::IncorrectP1P2,
            0x6A88 => Self::ReferenceNotFound,
            0x6D00 => Self::InsNotSupported,
            0x6E00 => Self::ClaNotSupported,
            0x6F00 => Self::NoPreciseDiagnosis,
            other => Self::Other(other),
        }
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
            StatusWord::AuthenticationBlocked => 0x6983,
            StatusWord::ConditionsNotSatisfied => 0x6985,
            StatusWord::IncorrectData => 0x6A80,
            StatusWord::NotFound => 0x6A82,
            StatusWord::NotEnoughMemory => 0x6A84,
            StatusWord::IncorrectP1P2 => 0x6A86,
            StatusWord::ReferenceNotFound => 0x6A88,
            StatusWord::InsNotSupported => 0x6D00,
            StatusWord::ClaNotSupported => 0x6E00,
            StatusWord::NoPreciseDiagnosis => 0x6F00,
            StatusWord::Other(v) => v,
        }
    }
}

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X}", u16::from(*self))
    }
}

/// Which secret a VERIFY-like command checked, to word its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Pin,
    Puk,
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Pin => "PIN",
            Secret::Puk => "PUK",
        })
    }
}

/// A card command that did not succeed, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CardError {
    /// `63Cx` on the PIN or PUK.
    #[error("wrong {secret}, {tries_left} {} left", if *tries_left == 1 { "try" } else { "tries" })]
    WrongSecret { secret: Secret, tries_left: u8 },
    /// `6983` on the PIN.
    #[error("PIN blocked: unblock it with the PUK")]
    PinBlocked,
    /// `6983` on the PUK.
    #[error("PUK blocked: the PIN can no longer be reset on this card; issue a new card")]
    PukBlocked,
    /// `6982`.
    #[error("security status not satisfied: {operation} needs {needs}")]
    SecurityStatusNotSatisfied { operation: &'static str, needs: &'static str },
    /// `6982` during the management-key handshake: the card did not accept our cryptogram.
    #[error("the card refused the management key (wrong key or algorithm)")]
    ManagementKeyRejected,
    /// `6A82` for an object or application.
    #[error("{what} not found on the card")]
    NotFound { what: &'static str },
    /// `6A88`: no key in the slot, or an unknown reference.
    #[error("{operation}: no key in that slot (or unknown key reference)")]
    NoKey { operation: &'static str },
    /// `6581`.
    #[error("{operation}: the card could not save its state (memory failure); the change was not made")]
    MemoryFailure { operation: &'static str },
    /// `6A84`.
    #[error("{operation}: the data is too large for the card")]
    TooLarge { operation: &'static str },
    /// Any other status word.
    #[error("{operation} failed: the card answered status {sw}")]
    Status { operation: &'static str, sw: StatusWord },
}

/// Turn a non-success status word of `operation` into a [`CardError`]. `secret` says which
/// secret the command checks (for `63Cx` / `6983`), `needs` what `6982` means for it.
pub fn to_error(operation: &'static str, sw: StatusWord, secret: Option<Secret>, needs: &'static str) -> CardError {
    match (sw, secret) {
        (StatusWord::VerifyFailed { tries_left }, Some(secret)) => CardError::WrongSecret { secret, tries_left },
        (StatusWord::AuthenticationBlocked, Some(Secret::Pin)) => CardError::PinBlocked,
        (StatusWord::AuthenticationBlocked, Some(Secret::Puk)) => CardError::PukBlocked,
        (StatusWord::SecurityStatusNotSatisfied, _) => CardError::SecurityStatusNotSatisfied { operation, needs },
        (StatusWord::NotFound, _) => CardError::NotFound { what: operation },
        (StatusWord::ReferenceNotFound, _) => CardError::NoKey { operation },
        (StatusWord::MemoryFailure, _) => CardError::MemoryFailure { operation },
        (StatusWord::NotEnoughMemory, _) => CardError::TooLarge { operation },
        (sw, _) => CardError::Status { operation, sw },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrong_pin_with_two_tries_left_reads_as_plain_words() {
        let e = to_error("VERIFY", StatusWord::from(0x63C2), Some(Secret::Pin), "");
        assert_eq!(e, CardError::WrongSecret { secret: Secret::Pin, tries_left: 2 });
        assert_eq!(e.to_string(), "wrong PIN, 2 tries left");
        let one = to_error("VERIFY", StatusWord::from(0x63C1), Some(Secret::Puk), "");
        assert_eq!(one.to_string(), "wrong PUK, 1 try left");
    }

    #[test]
    fn blocked_pin_says_to_use_the_puk() {
        let e = to_error("VERIFY", StatusWord::from(0x6983), Some(Secret::Pin), "");
        assert_eq!(e.to_string(), "PIN blocked: unblock it with the PUK");
        assert_eq!(to_error("RESET RETRY COUNTER", StatusWord::from(0x6983), Some(Secret::Puk), ""), CardError::PukBlocked);
    }

    #[test]
    fn security_status_error_names_what_is_needed() {
        let e = to_error("PUT DATA", StatusWord::from(0x6982), None, "the management key");
        assert_eq!(e.to_string(), "security status not satisfied: PUT DATA needs the management key");
    }

    #[test]
    fn unknown_status_words_are_kept() {
        assert_eq!(StatusWord::from(0x6B00), StatusWord::Other(0x6B00));
        let e = to_error("GET DATA", StatusWord::from(0x6B00), None, "");
        assert_eq!(e.to_string(), "GET DATA failed: the card answered status 6B00");
    }

    proptest! {
        #[test]
        fn every_status_word_round_trips(sw in any::<u16>()) {
            prop_assert_eq!(u16::from(StatusWord::from(sw)), sw);
        }
    }
}
