//! ECDSA P-256 signatures: the card returns DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER,
//! s INTEGER }` (docs/card.md, GENERAL AUTHENTICATE); COSE (RFC 9053 §2.1) wants the fixed
//! 64-byte `r || s`. Both directions are strict: DER must be canonical (minimal lengths, no
//! superfluous leading zero, positive integers) and r, s must be in `1..n`.

use p256::ecdsa::Signature;
use thiserror::Error;

/// Why a signature encoding was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SigError {
    /// The input ended early.
    #[error("DER signature truncated: {what}")]
    Truncated { what: &'static str },
    /// A byte other than the expected DER tag.
    #[error("DER signature: expected tag {expected:#04x} for {what}, got {got:#04x}")]
    UnexpectedTag { what: &'static str, expected: u8, got: u8 },
    /// A length that is not in short form or does not match the content.
    #[error("DER signature: bad length for {what}: {detail}")]
    BadLength { what: &'static str, detail: &'static str },
    /// Bytes after the SEQUENCE.
    #[error("DER signature: {count} trailing byte(s) after the SEQUENCE")]
    TrailingData { count: usize },
    /// An INTEGER that is negative or has a superfluous leading zero.
    #[error("DER signature: {what} is not a minimal positive INTEGER ({detail})")]
    NotCanonical { what: &'static str, detail: &'static str },
    /// r or s longer than 32 bytes, zero, or not below the group order.
    #[error("signature component {what} is out of range for P-256")]
    OutOfRange { what: &'static str },
    /// Raw signature of the wrong size.
    #[error("raw signature must be 64 bytes (r || s), got {got}")]
    RawLength { got: usize },
}

fn split<'a>(bytes: &'a [u8], n: usize, what: &'static str) -> Result<(&'a [u8], &'a [u8]), SigError> {
    bytes.split_at_checked(n).ok_or(SigError::Truncated { what })
}

fn tag_and_len<'a>(bytes: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8]), SigError> {
    let (head, rest) = split(bytes, 2, what)?;
    let (got, len) = match head {
        [t, l] => (*t, *l),
        _ => return Err(SigError::Truncated { what }),
    };
    if got != tag {
        return Err(SigError::UnexpectedTag { what, expected: tag, got });
    }
    // A P-256 signature is at most 72 bytes: only the short length form is canonical here.
    if len >= 0x80 {
        return Err(SigError::BadLength { what, detail: "long or indefinite form where short form is required" });
    }
    split(rest, usize::from(len), what)
}

/// A DER INTEGER's content → 32 big-endian bytes.
fn integer(content: &[u8], what: &'static str) -> Result<[u8; 32], SigError> {
    let digits = match content {
        [] => return Err(SigError::BadLength { what, detail: "empty INTEGER" }),
        [first, ..] if first & 0x80 != 0 => {
            return Err(SigError::NotCanonical { what, detail: "negative" });
        }
        [0x00, second, ..] if second & 0x80 == 0 => {
            return Err(SigError::NotCanonical { what, detail: "superfluous leading zero" });
        }
        [0x00, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    if digits.len() > 32 {
        return Err(SigError::OutOfRange { what });
    }
    let mut out = [0u8; 32];
    let start = 32 - digits.len();
    out.get_mut(start..).ok_or(SigError::OutOfRange { what })?.copy_from_slice(digits);
    Ok(out)
}

/// Strict DER → P-256 signature (r, s checked in `1..n`).
pub fn from_der(der: &[u8]) -> Result<Signature, SigError> {
    let (seq, trailing) = tag_and_len(der, 0x30, "SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(SigError::TrailingData { count: trailing.len() });
    }
    let (r, rest) = tag_and_len(seq, 0x02, "r")?;
    let (s, rest) = tag_and_len(rest, 0x02, "s")?;
    if !rest.is_empty() {
        return Err(SigError::BadLength { what: "SEQUENCE", detail: "content longer than r and s" });
    }
    let r = integer(r, "r")?;
    let s = integer(s, "s")?;
    from_components(&r, &s)
}

fn from_components(r: &[u8; 32], s: &[u8; 32]) -> Result<Signature, SigError> {
    let mut raw = [0u8; 64];
    raw[..32].copy_from_slice(r);
    raw[32..].copy_from_slice(s);
    from_raw(&raw)
}

/// Strict DER → 64-byte `r || s`.
pub fn der_to_raw(der: &[u8]) -> Result<[u8; 64], SigError> {
    Ok(from_der(der)?.to_bytes().into())
}

/// 64-byte `r || s` → P-256 signature (r, s checked in `1..n`).
pub fn from_raw(raw: &[u8]) -> Result<Signature, SigError> {
    if raw.len() != 64 {
        return Err(SigError::RawLength { got: raw.len() });
    }
    Signature::from_slice(raw).map_err(|_| SigError::OutOfRange { what: "r or s" })
}

fn der_integer(bytes: &[u8], out: &mut Vec<u8>) {
    let trimmed: &[u8] = {
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(bytes.len().saturating_sub(1));
        bytes.get(skip..).unwrap_or(bytes)
    };
    let pad = trimmed.first().is_some_and(|b| b & 0x80 != 0);
    out.push(0x02);
    // At most 33 bytes: fits the short form.
    out.push((trimmed.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(trimmed);
}

/// 64-byte `r || s` → canonical DER (range-checked first).
pub fn raw_to_der(raw: &[u8]) -> Result<Vec<u8>, SigError> {
    let sig = from_raw(raw)?;
    let bytes: [u8; 64] = sig.to_bytes().into();
    let mut body = Vec::with_capacity(70);
    der_integer(&bytes[..32], &mut body);
    der_integer(&bytes[32..], &mut body);
    let mut out = Vec::with_capacity(72);
    out.push(0x30);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    /// n - 1 for P-256 (the largest valid r or s).
    const N_MINUS_1: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17,
        0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x50,
    ];

    fn raw(r: [u8; 32], s: [u8; 32]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r);
        out[32..].copy_from_slice(&s);
        out
    }

    #[test]
    fn high_bit_components_get_one_leading_zero() {
        let der = raw_to_der(&raw(N_MINUS_1, N_MINUS_1)).unwrap();
        assert_eq!(der.len(), 2 + 2 * 35);
        assert_eq!(&der[..5], &[0x30, 70, 0x02, 33, 0x00]);
        assert_eq!(der_to_raw(&der).unwrap(), raw(N_MINUS_1, N_MINUS_1));
    }

    #[test]
    fn small_components_are_minimal() {
        let mut one = [0u8; 32];
        one[31] = 1;
        let der = raw_to_der(&raw(one, one)).unwrap();
        assert_eq!(der, vec![0x30, 6, 0x02, 1, 1, 0x02, 1, 1]);
        assert_eq!(der_to_raw(&der).unwrap(), raw(one, one));
    }

    #[test]
    fn rejects_superfluous_leading_zero() {
        assert!(matches!(der_to_raw(&[0x30, 7, 0x02, 2, 0x00, 0x01, 0x02, 1, 1]), Err(SigError::NotCanonical { what: "r", .. })));
    }

    #[test]
    fn rejects_negative_integers() {
        assert!(matches!(der_to_raw(&[0x30, 6, 0x02, 1, 0x81, 0x02, 1, 1]), Err(SigError::NotCanonical { detail: "negative", .. })));
    }

    #[test]
    fn rejects_zero_and_components_at_or_above_the_order() {
        assert!(matches!(der_to_raw(&[0x30, 6, 0x02, 1, 0, 0x02, 1, 1]), Err(SigError::OutOfRange { .. })));
        let mut n = N_MINUS_1;
        n[31] += 1;
        let mut der = vec![0x30, 38, 0x02, 33, 0x00];
        der.extend_from_slice(&n);
        der.extend_from_slice(&[0x02, 1, 1]);
        assert!(matches!(der_to_raw(&der), Err(SigError::OutOfRange { .. })));
    }

    #[test]
    fn rejects_long_form_lengths_trailing_bytes_and_wrong_tags() {
        assert!(matches!(der_to_raw(&[0x30, 0x81, 6, 0x02, 1, 1, 0x02, 1, 1]), Err(SigError::BadLength { .. })));
        assert!(matches!(der_to_raw(&[0x30, 6, 0x02, 1, 1, 0x02, 1, 1, 0]), Err(SigError::TrailingData { count: 1 })));
        assert!(matches!(der_to_raw(&[0x31, 6, 0x02, 1, 1, 0x02, 1, 1]), Err(SigError::UnexpectedTag { .. })));
        assert!(matches!(der_to_raw(&[0x30, 9, 0x02, 1, 1, 0x02, 1, 1, 0x02, 1, 1]), Err(SigError::BadLength { what: "SEQUENCE", .. })));
    }

    #[test]
    fn rejects_every_prefix_of_a_valid_signature() {
        let der = raw_to_der(&raw(N_MINUS_1, N_MINUS_1)).unwrap();
        for n in 0..der.len() {
            assert!(der_to_raw(&der[..n]).is_err(), "prefix {n}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_der_parser(bytes in proptest::collection::vec(any::<u8>(), 0..90)) {
            let _ = der_to_raw(&bytes);
        }

        #[test]
        fn raw_der_raw_round_trips(r in any::<[u8; 32]>(), s in any::<[u8; 32]>()) {
            let input = raw(r, s);
            match raw_to_der(&input) {
                Ok(der) => {
                    prop_assert_eq!(der_to_raw(&der).unwrap(), input);
                    // Matches the RustCrypto DER encoder byte for byte.
                    let sig = Signature::from_slice(&input).unwrap();
                    let theirs = sig.to_der();
                    prop_assert_eq!(theirs.as_bytes(), &der[..]);
                }
                Err(e) => {
                    let out_of_range = matches!(e, SigError::OutOfRange { .. });
                    prop_assert!(out_of_range, "{:?}", e);
                }
            }
        }

        #[test]
        fn single_bit_flips_of_valid_der_never_panic_and_never_misparse(
            r in any::<[u8; 32]>(), s in any::<[u8; 32]>(), bit in 0usize..(72 * 8)
        ) {
            if let Ok(der) = raw_to_der(&raw(r, s)) {
                let mut bad = der.clone();
                let i = (bit / 8) % bad.len();
                bad[i] ^= 1 << (bit % 8);
                if let Ok(back) = der_to_raw(&bad) {
                    // Whatever parses must re-encode to exactly the bytes given (canonical).
                    prop_assert_eq!(raw_to_der(&back).unwrap(), bad);
                }
            }
        }
    }
}
