//! The few CBOR (RFC 8949) pieces the record container needs, written and read without copying
//! the (possibly 50 MiB) payload: a strict cursor over definite-length items and head writers.

/// A CBOR decoding failure: what was expected, what came, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The input ended inside an item.
    #[error("CBOR: truncated at offset {offset}: expected {expected}")]
    Truncated { offset: usize, expected: &'static str },
    /// An item of another type, or an unsupported encoding, came.
    #[error("CBOR: at offset {offset}: expected {expected}, got {got}")]
    Unexpected { offset: usize, expected: &'static str, got: String },
    /// Bytes after the last item.
    #[error("CBOR: {extra} trailing byte(s) at offset {offset}")]
    Trailing { offset: usize, extra: usize },
}

/// Major types.
pub const UINT: u8 = 0;
pub const NINT: u8 = 1;
pub const BSTR: u8 = 2;
pub const TSTR: u8 = 3;
pub const ARRAY: u8 = 4;
pub const MAP: u8 = 5;
pub const TAG: u8 = 6;

fn major_name(m: u8) -> &'static str {
    match m {
        UINT => "unsigned integer",
        NINT => "negative integer",
        BSTR => "byte string",
        TSTR => "text string",
        ARRAY => "array",
        MAP => "map",
        TAG => "tag",
        _ => "simple/float",
    }
}

/// Appends the head of an item with major type `major` and argument `arg` (shortest form).
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if let Ok(a) = u8::try_from(arg) {
        out.extend_from_slice(&[m | 24, a]);
    } else if let Ok(a) = u16::try_from(arg) {
        out.push(m | 25);
        out.extend_from_slice(&a.to_be_bytes());
    } else if let Ok(a) = u32::try_from(arg) {
        out.push(m | 26);
        out.extend_from_slice(&a.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// The length of the head [`write_head`] writes.
#[must_use]
pub fn head_len(arg: u64) -> usize {
    match arg {
        0..24 => 1,
        24..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

/// Appends a text string.
pub fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, TSTR, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a byte string.
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_head(out, BSTR, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends an integer.
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_head(out, UINT, v.unsigned_abs());
    } else {
        write_head(out, NINT, (-1 - v).unsigned_abs());
    }
}

/// A strict cursor: definite lengths only, every read bounds-checked.
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Starts at offset 0.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    /// The current offset.
    #[must_use]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), CborError> {
        let extra = self.data.len().saturating_sub(self.pos);
        if extra == 0 { Ok(()) } else { Err(CborError::Trailing { offset: self.pos, extra }) }
    }

    fn take(&mut self, n: usize, expected: &'static str) -> Result<&'a [u8], CborError> {
        let rest = self.data.get(self.pos..).ok_or(CborError::Truncated { offset: self.pos, expected })?;
        let (head, _) = rest.split_at_checked(n).ok_or(CborError::Truncated { offset: self.pos, expected })?;
        self.pos += n;
        Ok(head)
    }

    /// Reads a head: (major type, argument). Refuses indefinite lengths and floats/simple values.
    pub fn head(&mut self, expected: &'static str) -> Result<(u8, u64), CborError> {
        let at = self.pos;
        let first = *self.take(1, expected)?.first().ok_or(CborError::Truncated { offset: at, expected })?;
        let (major, info) = (first >> 5, first & 0x1F);
        let arg = match info {
            0..24 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = self.take(n, expected)?;
                bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
            }
            _ => {
                return Err(CborError::Unexpected {
                    offset: at,
                    expected,
                    got: format!("{} with additional information {info} (indefinite or reserved)", major_name(major)),
                });
            }
        };
        if major == 7 {
            return Err(CborError::Unexpected { offset: at, expected, got: "a simple value or float".into() });
        }
        Ok((major, arg))
    }

    /// Reads a head of the given major type and returns its argument.
    pub fn expect(&mut self, major: u8, expected: &'static str) -> Result<u64, CborError> {
        let at = self.pos;
        let (m, arg) = self.head(expected)?;
        if m != major {
            return Err(CborError::Unexpected { offset: at, expected, got: major_name(m).into() });
        }
        Ok(arg)
    }

    /// Reads a byte string and returns its bytes.
    pub fn bytes(&mut self, expected: &'static str) -> Result<&'a [u8], CborError> {
        let len = self.expect(BSTR, expected)?;
        let len = usize::try_from(len).map_err(|_| CborError::Truncated { offset: self.pos, expected })?;
        self.take(len, expected)
    }

    /// Reads a byte string's head and returns the offset range of its content without reading it.
    pub fn bytes_range(&mut self, expected: &'static str) -> Result<std::ops::Range<usize>, CborError> {
        let len = self.expect(BSTR, expected)?;
        let len = usize::try_from(len).map_err(|_| CborError::Truncated { offset: self.pos, expected })?;
        let start = self.pos;
        self.take(len, expected)?;
        Ok(start..start + len)
    }

    /// Reads a UTF-8 text string.
    pub fn text(&mut self, expected: &'static str) -> Result<&'a str, CborError> {
        let at = self.pos;
        let len = self.expect(TSTR, expected)?;
        let len = usize::try_from(len).map_err(|_| CborError::Truncated { offset: self.pos, expected })?;
        let raw = self.take(len, expected)?;
        std::str::from_utf8(raw).map_err(|_| CborError::Unexpected { offset: at, expected, got: "invalid UTF-8".into() })
    }

    /// Reads an integer that fits an i64.
    pub fn int(&mut self, expected: &'static str) -> Result<i64, CborError> {
        let at = self.pos;
        let (m, arg) = self.head(expected)?;
        let too_big = || CborError::Unexpected { offset: at, expected, got: "an integer outside the 64-bit signed range".into() };
        match m {
            UINT => i64::try_from(arg).map_err(|_| too_big()),
            NINT => i64::try_from(arg).map(|a| -1 - a).map_err(|_| too_big()),
            other => Err(CborError::Unexpected { offset: at, expected, got: major_name(other).into() }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_at_every_size_boundary() {
        for arg in [0u64, 23, 24, 255, 256, 65_535, 65_536, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
            let mut out = Vec::new();
            write_head(&mut out, BSTR, arg);
            assert_eq!(out.len(), head_len(arg));
            let mut c = Cursor::new(&out);
            assert_eq!(c.head("head"), Ok((BSTR, arg)));
            assert_eq!(c.finish(), Ok(()));
        }
    }

    #[test]
    fn agrees_with_ciborium_on_integers_and_strings() {
        for v in [0i64, 1, -1, 23, -24, -25, 1000, -1000, i64::MAX, i64::MIN] {
            let mut mine = Vec::new();
            write_int(&mut mine, v);
            let mut theirs = Vec::new();
            assert!(ciborium::into_writer(&v, &mut theirs).is_ok());
            assert_eq!(mine, theirs, "{v}");
            assert_eq!(Cursor::new(&mine).int("int"), Ok(v));
        }
        let mut mine = Vec::new();
        write_text(&mut mine, "héllo");
        let mut theirs = Vec::new();
        assert!(ciborium::into_writer(&"héllo", &mut theirs).is_ok());
        assert_eq!(mine, theirs);
    }

    #[test]
    fn refuses_indefinite_lengths_and_truncation() {
        assert!(Cursor::new(&[0x5F]).bytes("b").is_err());
        assert!(Cursor::new(&[0x58]).bytes("b").is_err());
        assert!(Cursor::new(&[0x43, 1, 2]).bytes("b").is_err());
        assert!(Cursor::new(&[0x1B, 0x80, 0, 0, 0, 0, 0, 0, 0]).int("i").is_err());
    }
}
