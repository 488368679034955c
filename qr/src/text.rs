//! The text layers: prefix, base45 (RFC 9285) and the optional zlib (RFC 1950) layer.
//!
//! How a reader tells compressed from raw: after base45 decoding, a zlib stream starts with the
//! CMF byte `0x78` (deflate, 32 KiB window) and `(CMF·256 + FLG) mod 31 = 0`; a COSE_Sign1 starts
//! with `0xD2` (tag 18), `0xD8 0x3D` (tag 61) or `0x84` (untagged array of 4). `0x78` would be a
//! CBOR text string of 24+ bytes, never a COSE message, so the first byte decides.

use std::io::Read;

/// Our prefix.
pub const MEDCARD_PREFIX: &str = "MC1:";
/// The EU Digital COVID Certificate prefix.
pub const HC1_PREFIX: &str = "HC1:";
/// Default cap on the inflated size (bytes). A MedCard pointer is < 1 KiB; dgc codes < 4 KiB.
pub const DEFAULT_MAX_INFLATED: usize = 64 * 1024;

/// The prefix layer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prefix: expected the text to start with {expected:?}, got {got:?}")]
pub struct PrefixError {
    /// The configured prefix.
    pub expected: String,
    /// The first characters of the text (at most the prefix length + 4).
    pub got: String,
}

/// Strips `prefix` (exact, case-sensitive).
pub fn strip_prefix<'a>(text: &'a str, prefix: &str) -> Result<&'a str, PrefixError> {
    text.strip_prefix(prefix)
        .ok_or_else(|| PrefixError { expected: prefix.to_owned(), got: text.chars().take(prefix.chars().count() + 4).collect() })
}

/// The base45 layer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base45Error {
    /// A character outside the RFC 9285 alphabet.
    #[error("base45: character {ch:?} at offset {offset} is not in the base45 alphabet")]
    BadCharacter { offset: usize, ch: char },
    /// Length ≡ 1 (mod 3).
    #[error("base45: length {len} leaves a single dangling character (length mod 3 must be 0 or 2)")]
    BadLength { len: usize },
    /// A triple above 65535 or a final pair above 255 (non-canonical, RFC 9285 §4.2).
    #[error("base45: group at offset {offset} has value {value}, above the maximum {max}")]
    Overflow { offset: usize, value: u32, max: u32 },
}

/// RFC 9285 alphabet value of a character.
fn b45_value(c: u8) -> Option<u32> {
    Some(match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'Z' => u32::from(c - b'A') + 10,
        b' ' => 36,
        b'$' => 37,
        b'%' => 38,
        b'*' => 39,
        b'+' => 40,
        b'-' => 41,
        b'.' => 42,
        b'/' => 43,
        b':' => 44,
        _ => return None,
    })
}

/// Strict base45 decoding: alphabet, length and value ranges are all checked.
pub fn base45_decode(text: &str) -> Result<Vec<u8>, Base45Error> {
    let bytes = text.as_bytes();
    // Check the alphabet first so the error names the first bad character.
    if let Some((offset, ch)) = text.char_indices().find(|(_, c)| !c.is_ascii() || b45_value(*c as u8).is_none()) {
        return Err(Base45Error::BadCharacter { offset, ch });
    }
    if bytes.len() % 3 == 1 {
        return Err(Base45Error::BadLength { len: bytes.len() });
    }
    let mut out = Vec::with_capacity(bytes.len() / 3 * 2 + 1);
    for (i, chunk) in bytes.chunks(3).enumerate() {
        let offset = i * 3;
        let v = chunk
            .iter()
            .rev()
            .try_fold(0u32, |acc, c| b45_value(*c).map(|d| acc * 45 + d))
            .ok_or(Base45Error::BadLength { len: bytes.len() })?;
        match chunk.len() {
            3 => {
                if v > 0xFFFF {
                    return Err(Base45Error::Overflow { offset, value: v, max: 0xFFFF });
                }
                out.extend_from_slice(&(v as u16).to_be_bytes());
            }
            2 => {
                if v > 0xFF {
                    return Err(Base45Error::Overflow { offset, value: v, max: 0xFF });
                }
                out.push(v as u8);
            }
            _ => return Err(Base45Error::BadLength { len: bytes.len() }),
        }
    }
    Ok(out)
}

/// Base45 encoding (RFC 9285).
#[must_use]
pub fn base45_encode(bytes: &[u8]) -> String {
    base45::encode(bytes)
}

/// Whether the compression layer must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zlib if the first byte says so (`0x78`), raw COSE otherwise (MedCard: zlib only when smaller).
    Optional,
    /// zlib is mandatory (the dgc `HC1:` format).
    Required,
}

/// The inflate layer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// Compression is required but the data does not start with a zlib header.
    #[error("zlib: expected a zlib header (0x78 ..), got {got}")]
    NotCompressed { got: String },
    /// The zlib header check fails.
    #[error("zlib: bad header {cmf:#04x} {flg:#04x}")]
    BadHeader { cmf: u8, flg: u8 },
    /// The stream is corrupt or truncated.
    #[error("zlib: corrupt or truncated stream: {0}")]
    Corrupt(String),
    /// The stream inflates to more than the cap.
    #[error("zlib: output exceeds the cap of {cap} bytes (zip bomb?)")]
    TooLarge { cap: usize },
    /// Bytes follow the end of the zlib stream.
    #[error("zlib: {0} bytes of trailing data after the stream")]
    TrailingData(usize),
    /// Nothing to inflate.
    #[error("zlib: no data")]
    Empty,
}

/// Whether `bytes` starts with a valid zlib header.
#[must_use]
pub fn looks_like_zlib(bytes: &[u8]) -> bool {
    matches!(bytes, [0x78, flg, ..] if (0x7800u16 | u16::from(*flg)).is_multiple_of(31))
}

/// Inflates a zlib stream, refusing more than `cap` output bytes and trailing input.
pub fn inflate(bytes: &[u8], cap: usize) -> Result<Vec<u8>, InflateError> {
    match bytes {
        [] => return Err(InflateError::Empty),
        [cmf, flg, ..] if !looks_like_zlib(bytes) && *cmf == 0x78 => {
            return Err(InflateError::BadHeader { cmf: *cmf, flg: *flg });
        }
        _ => {}
    }
    let mut dec = flate2::read::ZlibDecoder::new(bytes);
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    (&mut dec).take(limit).read_to_end(&mut out).map_err(|e| InflateError::Corrupt(e.to_string()))?;
    if out.len() > cap {
        return Err(InflateError::TooLarge { cap });
    }
    let consumed = usize::try_from(dec.total_in()).unwrap_or(usize::MAX);
    if consumed < bytes.len() {
        return Err(InflateError::TrailingData(bytes.len() - consumed));
    }
    Ok(out)
}

/// The compression layer: returns the COSE bytes and whether they were compressed.
pub fn decompress(bytes: &[u8], mode: Compression, cap: usize) -> Result<(Vec<u8>, bool), InflateError> {
    if bytes.first() == Some(&0x78) {
        return inflate(bytes, cap).map(|v| (v, true));
    }
    match mode {
        Compression::Optional => Ok((bytes.to_vec(), false)),
        Compression::Required => {
            Err(InflateError::NotCompressed { got: bytes.first().map_or_else(|| "no data".to_owned(), |b| format!("first byte {b:#04x}")) })
        }
    }
}

/// zlib-compresses `cose` (level 9) if that makes it shorter; returns the bytes and whether.
#[must_use]
pub fn compress_if_smaller(cose: &[u8]) -> (Vec<u8>, bool) {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    match enc.write_all(cose).and_then(|()| enc.finish()) {
        Ok(z) if z.len() < cose.len() => (z, true),
        _ => (cose.to_vec(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base45_matches_rfc9285_examples() {
        assert_eq!(base45_decode("QED8WEX0").ok(), Some(b"ietf!".to_vec()));
        assert_eq!(base45_decode("%69 VD92EX0").ok(), Some(b"Hello!!".to_vec()));
        assert_eq!(base45_encode(b"AB"), "BB8");
    }

    #[test]
    fn base45_refuses_lowercase_dangling_and_overflow() {
        assert_eq!(base45_decode("qed"), Err(Base45Error::BadCharacter { offset: 0, ch: 'q' }));
        assert_eq!(base45_decode("ABCD"), Err(Base45Error::BadLength { len: 4 }));
        assert!(matches!(base45_decode(":::"), Err(Base45Error::Overflow { value: 91124, .. })));
        assert!(matches!(base45_decode("::"), Err(Base45Error::Overflow { max: 255, .. })));
    }

    #[test]
    fn zip_bomb_is_stopped_at_the_cap() {
        let (z, compressed) = compress_if_smaller(&vec![0u8; 10 * 1024 * 1024]);
        assert!(compressed);
        assert_eq!(inflate(&z, 1024), Err(InflateError::TooLarge { cap: 1024 }));
    }

    #[test]
    fn raw_cose_passes_only_when_compression_is_optional() {
        assert_eq!(decompress(&[0xD2, 0x84], Compression::Optional, 100), Ok((vec![0xD2, 0x84], false)));
        assert!(matches!(decompress(&[0xD2], Compression::Required, 100), Err(InflateError::NotCompressed { .. })));
    }

    #[test]
    fn trailing_bytes_after_zlib_stream_are_refused() {
        let (mut z, _) = compress_if_smaller(&[b'a'; 100]);
        z.push(0);
        assert_eq!(inflate(&z, 1000), Err(InflateError::TrailingData(1)));
    }
}
