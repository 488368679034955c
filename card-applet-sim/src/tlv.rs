//! BER-TLV (ISO/IEC 7816-4 §5.2 / SP 800-73-4 Part 2 §3, "BER-TLV encoding") cursor reader and
//! builder. The reader has only fallible accessors: every malformed input becomes a [`TlvError`]
//! that names what was expected and where, never a panic.

/// A malformed TLV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a tag, a length or a value.
    #[error("TLV truncated at offset {offset}: need {need} more byte(s) for the {part}")]
    Truncated { offset: usize, need: usize, part: &'static str },
    /// Tags longer than 3 bytes are not used by PIV.
    #[error("TLV tag at offset {offset} is longer than 3 bytes")]
    TagTooLong { offset: usize },
    /// Length forms other than short, 81 and 82 (or indefinite 80) are refused.
    #[error("TLV length form {form:#04x} at offset {offset} not supported (expected < 0x80, 0x81 or 0x82)")]
    BadLengthForm { offset: usize, form: u8 },
    /// A specific tag was expected.
    #[error("expected TLV tag {expected:#x}, got {got:#x}")]
    UnexpectedTag { expected: u32, got: u32 },
    /// A tag occurred twice where it may occur once.
    #[error("TLV tag {tag:#x} occurs more than once")]
    Duplicate { tag: u32 },
    /// Bytes followed the expected TLV.
    #[error("{count} trailing byte(s) after the TLV")]
    TrailingData { count: usize },
    /// A required tag is missing.
    #[error("TLV tag {tag:#x} missing")]
    Missing { tag: u32 },
}

/// One decoded TLV: its tag (1–3 bytes, big-endian in a `u32`) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
}

/// A cursor over concatenated TLVs.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data, offset: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn take(&mut self, n: usize, part: &'static str) -> Result<&'a [u8], TlvError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(TlvError::Truncated {
            offset: self.offset,
            need: n.saturating_sub(self.rest.len()),
            part,
        })?;
        self.rest = tail;
        self.offset = self.offset.saturating_add(n);
        Ok(head)
    }

    fn byte(&mut self, part: &'static str) -> Result<u8, TlvError> {
        let b = self.take(1, part)?;
        b.first().copied().ok_or(TlvError::Truncated { offset: self.offset, need: 1, part })
    }

    /// The next TLV, or `None` at the end of the input.
    pub fn next_tlv(&mut self) -> Result<Option<Tlv<'a>>, TlvError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let start = self.offset;
        let first = self.byte("tag")?;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // Subsequent tag bytes: continue while bit 8 is set (ISO/IEC 7816-4 §5.2.2.1).
            let mut count = 1;
            loop {
                let b = self.byte("tag")?;
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
        let form = self.byte("length")?;
        let len = match form {
            0x00..=0x7F => usize::from(form),
            0x81 => usize::from(self.byte("length")?),
            0x82 => {
                let b = self.take(2, "length")?;
                match b {
                    [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                    _ => return Err(TlvError::Truncated { offset: len_offset, need: 2, part: "length" }),
                }
            }
            other => return Err(TlvError::BadLengthForm { offset: len_offset, form: other }),
        };
        let value = self.take(len, "value")?;
        Ok(Some(Tlv { tag, value }))
    }

    /// All remaining TLVs.
    pub fn all(mut self) -> Result<Vec<Tlv<'a>>, TlvError> {
        let mut out = Vec::new();
        while let Some(t) = self.next_tlv()? {
            out.push(t);
        }
        Ok(out)
    }
}

/// `data` must be exactly one TLV with tag `tag`; its value.
pub fn single(data: &[u8], tag: u32) -> Result<&[u8], TlvError> {
    let mut r = Reader::new(data);
    let t = r.next_tlv()?.ok_or(TlvError::Missing { tag })?;
    if t.tag != tag {
        return Err(TlvError::UnexpectedTag { expected: tag, got: t.tag });
    }
    if !r.rest.is_empty() {
        return Err(TlvError::TrailingData { count: r.rest.len() });
    }
    Ok(t.value)
}

/// The TLVs inside a constructed value, as a map from tag to value; duplicates refused.
pub fn fields(data: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let all = Reader::new(data).all()?;
    for (i, t) in all.iter().enumerate() {
        if all.iter().skip(i + 1).any(|u| u.tag == t.tag) {
            return Err(TlvError::Duplicate { tag: t.tag });
        }
    }
    Ok(all)
}

/// The value of `tag` among `fields`, if present.
pub fn find<'a>(fields: &[Tlv<'a>], tag: u32) -> Option<&'a [u8]> {
    fields.iter().find(|t| t.tag == tag).map(|t| t.value)
}

/// Append the encoding of `tag` (1–3 bytes, no leading zero bytes).
fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend(bytes.iter().skip(skip));
}

/// Append the BER length of `len` (short, 81, 82 or 83 form).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend([0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.push(0x82);
        out.extend((len as u16).to_be_bytes());
    } else {
        let b = (len as u32).to_be_bytes();
        out.push(0x83);
        out.extend(b.iter().skip(1));
    }
}

/// Append `tag len value`.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// `tag len value` as a new vector.
#[must_use]
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push(&mut out, tag, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_reads_back_every_length_form() {
        for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234] {
            let value = vec![0xA5; len];
            for tag in [0x53u32, 0x7F49, 0x5FC105] {
                let enc = encode(tag, &value);
                assert_eq!(single(&enc, tag), Ok(value.as_slice()), "tag {tag:x} len {len}");
            }
        }
    }

    #[test]
    fn every_strict_prefix_of_a_tlv_is_refused() {
        let enc = encode(0x5FC102, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        for cut in 0..enc.len() {
            let prefix = enc.get(..cut).unwrap_or_default();
            assert!(single(prefix, 0x5FC102).is_err(), "prefix of {cut} bytes accepted");
        }
    }

    #[test]
    fn refuses_trailing_bytes_wrong_tag_and_long_tags() {
        let mut enc = encode(0x53, &[1]);
        enc.push(0);
        assert_eq!(single(&enc, 0x53), Err(TlvError::TrailingData { count: 1 }));
        assert_eq!(single(&[0x54, 0x00], 0x53), Err(TlvError::UnexpectedTag { expected: 0x53, got: 0x54 }));
        assert_eq!(single(&[0x5F, 0xC1, 0x81, 0x01, 0x00], 0x53), Err(TlvError::TagTooLong { offset: 0 }));
        assert_eq!(single(&[0x53, 0x84, 0, 0, 0, 1], 0x53), Err(TlvError::BadLengthForm { offset: 1, form: 0x84 }));
    }

    #[test]
    fn fields_refuse_duplicate_tags() {
        let mut data = encode(0x80, &[]);
        data.extend(encode(0x80, &[1]));
        assert_eq!(fields(&data), Err(TlvError::Duplicate { tag: 0x80 }));
    }
}
