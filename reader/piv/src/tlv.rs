//! BER-TLV (ISO/IEC 7816-4 §5.2) as the card edge uses it (docs/card.md "Notation"): tags of
//! 1–3 bytes, lengths `00`–`7F`, `81 xx`, `82 xx xx`. No other length form, no indefinite length.
//!
//! Reading is cursor style over borrowed bytes: every accessor is fallible and nothing here
//! indexes or panics, whatever the card sends.

use thiserror::Error;

/// A malformed TLV from the card.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The bytes ended inside a tag, a length or a value.
    #[error("TLV truncated at offset {offset}: needed {needed} more byte(s), {available} left")]
    Truncated { offset: usize, needed: usize, available: usize },
    /// A tag longer than 3 bytes.
    #[error("TLV tag at offset {offset} is longer than 3 bytes")]
    TagTooLong { offset: usize },
    /// A length form other than `00`–`7F`, `81 xx`, `82 xx xx`.
    #[error("TLV length byte {byte:#04x} at offset {offset} is not supported (expected 00-7F, 81 or 82)")]
    BadLength { offset: usize, byte: u8 },
    /// Another tag than the expected one.
    #[error("expected TLV tag {expected:#x}, got {got:#x} at offset {offset}")]
    UnexpectedTag { offset: usize, expected: u32, got: u32 },
    /// The expected tag is not there at all.
    #[error("TLV tag {tag:#x} missing")]
    Missing { tag: u32 },
    /// A tag appears twice in a template that allows it once.
    #[error("TLV tag {tag:#x} appears more than once")]
    Duplicate { tag: u32 },
    /// Bytes after the last expected TLV.
    #[error("{count} unexpected trailing byte(s) after the TLV at offset {offset}")]
    TrailingData { offset: usize, count: usize },
}

/// One TLV, borrowing its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag bytes as a big-endian number (`0x5FC102`, `0x7C`, …).
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

/// A cursor over a sequence of TLVs.
#[derive(Debug, Clone)]
pub struct TlvReader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> TlvReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes, offset: 0 }
    }

    /// No bytes left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The offset of the next byte, from the start of the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlvError> {
        let (head, tail) =
            self.rest.split_at_checked(n).ok_or(TlvError::Truncated { offset: self.offset, needed: n, available: self.rest.len() })?;
        self.rest = tail;
        self.offset = self.offset.saturating_add(n);
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, TlvError> {
        let b = self.take(1)?;
        b.first().copied().ok_or(TlvError::Truncated { offset: self.offset, needed: 1, available: 0 })
    }

    /// Read the next TLV; `None` at the end of the input.
    pub fn next_tlv(&mut self) -> Option<Result<Tlv<'a>, TlvError>> {
        if self.rest.is_empty() {
            return None;
        }
        Some(self.read())
    }

    /// Read the next TLV; an error at the end of the input.
    pub fn read(&mut self) -> Result<Tlv<'a>, TlvError> {
        let start = self.offset;
        let first = self.byte()?;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // Subsequent tag bytes: bit 8 set means another follows (ISO/IEC 7816-4 §5.2.2.1).
            let mut count = 1;
            loop {
                let b = self.byte()?;
                count += 1;
                if count > 3 {
                    return Err(TlvError::TagTooLong { offset: start });
                }
                tag = (tag << 8) | u32::from(b);
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let len_offset = self.offset;
        let len = match self.byte()? {
            short @ 0x00..=0x7F => usize::from(short),
            0x81 => usize::from(self.byte()?),
            0x82 => {
                let hi = self.byte()?;
                let lo = self.byte()?;
                usize::from(u16::from_be_bytes([hi, lo]))
            }
            other => return Err(TlvError::BadLength { offset: len_offset, byte: other }),
        };
        let value = self.take(len)?;
        Ok(Tlv { tag, value })
    }

    /// Read the next TLV and require its tag.
    pub fn expect(&mut self, tag: u32) -> Result<&'a [u8], TlvError> {
        let offset = self.offset;
        if self.rest.is_empty() {
            return Err(TlvError::Missing { tag });
        }
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(TlvError::UnexpectedTag { offset, expected: tag, got: tlv.tag });
        }
        Ok(tlv.value)
    }

    /// Require the end of the input.
    pub fn finish(&self) -> Result<(), TlvError> {
        if self.rest.is_empty() { Ok(()) } else { Err(TlvError::TrailingData { offset: self.offset, count: self.rest.len() }) }
    }
}

/// The whole of `bytes` must be exactly one TLV with `tag`; returns its value.
pub fn single(bytes: &[u8], tag: u32) -> Result<&[u8], TlvError> {
    let mut r = TlvReader::new(bytes);
    let value = r.expect(tag)?;
    r.finish()?;
    Ok(value)
}

/// Parse all of `bytes` as a flat sequence of TLVs (no trailing garbage).
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut r = TlvReader::new(bytes);
    let mut out = Vec::new();
    while let Some(t) = r.next_tlv() {
        out.push(t?);
    }
    Ok(out)
}

/// The value of the only TLV with `tag` in `tlvs`: `Missing` if absent, `Duplicate` if repeated.
pub fn find_unique<'a>(tlvs: &[Tlv<'a>], tag: u32) -> Result<&'a [u8], TlvError> {
    let mut found = tlvs.iter().filter(|t| t.tag == tag);
    let first = found.next().ok_or(TlvError::Missing { tag })?;
    if found.next().is_some() {
        return Err(TlvError::Duplicate { tag });
    }
    Ok(first.value)
}

/// The tag as its 1–3 big-endian bytes (leading zero bytes dropped; tag 0 is one byte `00`).
pub fn tag_bytes(tag: u32) -> Vec<u8> {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    bytes.iter().skip(skip).copied().collect()
}

/// Append `tag len value` with the shortest length form. Values over 65535 bytes cannot be
/// encoded in this profile: `None`.
#[must_use]
pub fn encode(tag: u32, value: &[u8]) -> Option<Vec<u8>> {
    let mut out = tag_bytes(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(u8::try_from(len).ok()?);
    } else if len <= 0xFF {
        out.push(0x81);
        out.push(u8::try_from(len).ok()?);
    } else {
        let l = u16::try_from(len).ok()?;
        out.push(0x82);
        out.extend_from_slice(&l.to_be_bytes());
    }
    out.extend_from_slice(value);
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_one_two_and_three_byte_tags_with_every_length_form() {
        let bytes = [
            0x53, 0x02, 0xAA, 0xBB, // 1-byte tag, short length
            0x5F, 0xC1, 0x02, 0x81, 0x01, 0xCC, // 3-byte tag, 81 form
            0x7F, 0x49, 0x82, 0x00, 0x00, // 2-byte tag, 82 form, empty
        ];
        let all = parse_all(&bytes).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], Tlv { tag: 0x53, value: &[0xAA, 0xBB] });
        assert_eq!(all[1], Tlv { tag: 0x5FC102, value: &[0xCC] });
        assert_eq!(all[2], Tlv { tag: 0x7F49, value: &[] });
    }

    #[test]
    fn rejects_every_proper_prefix_of_a_valid_tlv() {
        let full = encode(0x5FC105, &[7u8; 300]).unwrap();
        for n in 1..full.len() {
            assert!(matches!(single(&full[..n], 0x5FC105), Err(TlvError::Truncated { .. })), "prefix {n}");
        }
        assert_eq!(single(&full, 0x5FC105).unwrap().len(), 300);
    }

    #[test]
    fn rejects_indefinite_and_long_length_forms() {
        assert!(matches!(parse_all(&[0x53, 0x80]), Err(TlvError::BadLength { byte: 0x80, .. })));
        assert!(matches!(parse_all(&[0x53, 0x83, 0, 0, 1, 0]), Err(TlvError::BadLength { byte: 0x83, .. })));
    }

    #[test]
    fn rejects_four_byte_tags() {
        assert!(matches!(parse_all(&[0x5F, 0xFF, 0xFF, 0x01, 0x00]), Err(TlvError::TagTooLong { offset: 0 })));
    }

    #[test]
    fn single_rejects_trailing_bytes_and_other_tags() {
        assert!(matches!(single(&[0x53, 0x00, 0x00], 0x53), Err(TlvError::TrailingData { offset: 2, count: 1 })));
        assert!(matches!(single(&[0x54, 0x00], 0x53), Err(TlvError::UnexpectedTag { expected: 0x53, got: 0x54, .. })));
        assert!(matches!(single(&[], 0x53), Err(TlvError::Missing { tag: 0x53 })));
    }

    #[test]
    fn find_unique_reports_missing_and_duplicate_tags() {
        let tlvs = parse_all(&[0x80, 0x00, 0x80, 0x00, 0x81, 0x01, 0x05]).unwrap();
        assert_eq!(find_unique(&tlvs, 0x81).unwrap(), &[0x05]);
        assert_eq!(find_unique(&tlvs, 0x80), Err(TlvError::Duplicate { tag: 0x80 }));
        assert_eq!(find_unique(&tlvs, 0x82), Err(TlvError::Missing { tag: 0x82 }));
    }

    #[test]
    fn encodes_with_the_shortest_length_form() {
        assert_eq!(encode(0x5C, &[0x7E]).unwrap(), vec![0x5C, 0x01, 0x7E]);
        assert_eq!(encode(0x53, &[0; 0x80]).unwrap()[..3], [0x53, 0x81, 0x80]);
        assert_eq!(encode(0x53, &[0; 0x100]).unwrap()[..4], [0x53, 0x82, 0x01, 0x00]);
        assert_eq!(encode(0x5FC102, &[]).unwrap(), vec![0x5F, 0xC1, 0x02, 0x00]);
        assert!(encode(0x53, &vec![0; 0x10000]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_tlv_reader(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_all(&bytes);
            let _ = single(&bytes, 0x53);
            let mut r = TlvReader::new(&bytes);
            while let Some(Ok(_)) = r.next_tlv() {}
        }

        #[test]
        fn encode_then_read_round_trips(
            tag in prop_oneof![0x40u32..0x5F, 0x5F00u32..0x5F7F, 0x5FC100u32..0x5FC17F],
            value in proptest::collection::vec(any::<u8>(), 0..1200),
        ) {
            let enc = encode(tag, &value).unwrap();
            prop_assert_eq!(single(&enc, tag).unwrap(), &value[..]);
        }
    }
}
