//! The CWT claims of a MedCard pointer (RFC 8392) and their strict CBOR encoding.
//!
//! ```cddl
//! MedCardClaims = {
//!   1 => tstr,              ; iss: clinic id
//!   4 => int,               ; exp: NumericDate (seconds)
//!   ? 5 => int,             ; nbf
//!   6 => int,               ; iat
//!   7 => bstr .size (16..64), ; cti: random, one-time-use id
//!   -65537 => Pointer,      ; private claim (RFC 8392 §4: < -65536 is private use)
//! }
//! Pointer = {
//!   1 => tstr,              ; patient id
//!   2 => tstr,              ; record locator, an absolute URI
//!   3 => bstr .size 32,     ; SHA-256 of the record ciphertext
//!   ? 4 => bstr .size 32,   ; record content key
//!   5 => [* tstr],          ; record categories
//!   6 => bstr .size 32,     ; SHA-256 of the consent token
//! }
//! ```
//! Decoding is strict: no trailing bytes, no duplicate keys, no unknown keys (in either map),
//! every type and length checked. Times are checked separately against a [`Clock`].

use ciborium::Value;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::time::{Clock, format_rfc3339};

/// CWT claim key `iss` (RFC 8392 §3.1.1).
pub const ISS: i64 = 1;
/// CWT claim key `exp`.
pub const EXP: i64 = 4;
/// CWT claim key `nbf`.
pub const NBF: i64 = 5;
/// CWT claim key `iat`.
pub const IAT: i64 = 6;
/// CWT claim key `cti`.
pub const CTI: i64 = 7;
/// The MedCard private claim holding the [`Pointer`].
pub const POINTER: i64 = -65_537;
/// Shortest accepted `cti`.
pub const MIN_CTI_LEN: usize = 16;
/// Longest accepted `cti`.
pub const MAX_CTI_LEN: usize = 64;

/// A record content key (AES-256). Zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone)]
pub struct ContentKey(Zeroizing<[u8; 32]>);

impl ContentKey {
    /// Wraps key bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        ContentKey(Zeroizing::new(bytes))
    }
    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

impl PartialEq for ContentKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}
impl Eq for ContentKey {}

/// The private claim: where the record is and how to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// Patient id.
    pub patient_id: String,
    /// Record locator (absolute URI).
    pub locator: String,
    /// SHA-256 of the record ciphertext.
    pub record_sha256: [u8; 32],
    /// The record's content key, when the code carries it.
    pub content_key: Option<ContentKey>,
    /// Record categories.
    pub categories: Vec<String>,
    /// SHA-256 of the consent token the code was issued under.
    pub consent_sha256: [u8; 32],
}

/// The claims of a MedCard pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Issuer: clinic id.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Not valid before (Unix seconds).
    pub nbf: Option<i64>,
    /// CWT id: random, [`MIN_CTI_LEN`]..=[`MAX_CTI_LEN`] bytes.
    pub cti: Vec<u8>,
    /// The record pointer.
    pub pointer: Pointer,
}

/// Why claims could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The bytes are not one well-formed CBOR item.
    #[error("claims are not well-formed CBOR: {0}")]
    Cbor(String),
    /// Bytes follow the claims map.
    #[error("{0} bytes of trailing data after the claims")]
    TrailingData(usize),
    /// Expected a map.
    #[error("{what} is a {got}, expected a map")]
    NotAMap { what: &'static str, got: &'static str },
    /// A key appears twice.
    #[error("duplicate key {key} in {what}")]
    DuplicateKey { what: &'static str, key: String },
    /// A map with more entries than any MedCard or CWT structure has (bounds the work per input).
    #[error("{what} has {got} entries, at most {max} are accepted")]
    TooManyEntries { what: &'static str, got: usize, max: usize },
    /// A key we do not know.
    #[error("unknown key {key} in {what}")]
    UnknownKey { what: &'static str, key: String },
    /// A required claim is missing.
    #[error("missing claim {0}")]
    Missing(&'static str),
    /// A claim has the wrong CBOR type.
    #[error("claim {claim} is a {got}, expected {expected}")]
    WrongType { claim: &'static str, expected: &'static str, got: &'static str },
    /// A byte string has the wrong length.
    #[error("claim {claim} is {got} bytes, expected {expected}")]
    WrongLength { claim: &'static str, expected: &'static str, got: usize },
    /// A value is out of its range.
    #[error("claim {claim} is invalid: {why}")]
    Invalid { claim: &'static str, why: String },
}

/// Why a code is not valid at the validation clock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// `exp` is past.
    #[error("code expired at {} (now {}, skew {skew} s)", format_rfc3339(*exp), format_rfc3339(*now))]
    Expired { exp: i64, now: i64, skew: u32 },
    /// `nbf` is in the future.
    #[error("code is not valid before {} (now {}, skew {skew} s)", format_rfc3339(*nbf), format_rfc3339(*now))]
    NotYetValid { nbf: i64, now: i64, skew: u32 },
    /// `iat` is in the future.
    #[error("code was issued in the future at {} (now {}, skew {skew} s)", format_rfc3339(*iat), format_rfc3339(*now))]
    IssuedInFuture { iat: i64, now: i64, skew: u32 },
    /// The claims carry no `exp` (fail closed: a code without an expiry is never valid).
    #[error("code has no expiry claim (exp)")]
    NoExpiry,
    /// A time claim is not a number.
    #[error("time claim {claim} is a {got}, expected an integer")]
    NotANumber { claim: &'static str, got: &'static str },
}

/// The time claims of any CWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeClaims {
    /// `iat`.
    pub iat: Option<i64>,
    /// `exp`.
    pub exp: Option<i64>,
    /// `nbf`.
    pub nbf: Option<i64>,
}

impl TimeClaims {
    /// Checks `exp` (required), `nbf` and `iat` against `clock`, allowing `clock.skew` seconds.
    pub fn check(&self, clock: Clock) -> Result<(), TimeError> {
        let (now, skew) = (clock.now, clock.skew);
        let exp = self.exp.ok_or(TimeError::NoExpiry)?;
        if now.saturating_sub(i64::from(skew)) >= exp {
            return Err(TimeError::Expired { exp, now, skew });
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(i64::from(skew)) < nbf
        {
            return Err(TimeError::NotYetValid { nbf, now, skew });
        }
        if let Some(iat) = self.iat
            && now.saturating_add(i64::from(skew)) < iat
        {
            return Err(TimeError::IssuedInFuture { iat, now, skew });
        }
        Ok(())
    }

    /// Reads `iat`, `exp`, `nbf` from a generic claims map (integers; finite floats are floored).
    pub fn from_map(map: &[(Value, Value)]) -> Result<Self, TimeError> {
        let get = |key: i64, claim: &'static str| -> Result<Option<i64>, TimeError> {
            match map.iter().find(|(k, _)| int_key(k) == Some(key)) {
                None => Ok(None),
                Some((_, v)) => match v {
                    Value::Integer(i) => {
                        i64::try_from(*i).map(Some).map_err(|_| TimeError::NotANumber { claim, got: "integer out of range" })
                    }
                    Value::Float(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                    other => Err(TimeError::NotANumber { claim, got: type_name(other) }),
                },
            }
        };
        Ok(TimeClaims { iat: get(IAT, "iat")?, exp: get(EXP, "exp")?, nbf: get(NBF, "nbf")? })
    }
}

/// The CBOR type of a value, for error messages.
#[must_use]
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "integer",
        Value::Bytes(_) => "byte string",
        Value::Float(_) => "float",
        Value::Text(_) => "text string",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Tag(..) => "tag",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        _ => "other",
    }
}

fn int_key(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn key_text(v: &Value) -> String {
    match v {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Text(t) => format!("{t:?}"),
        other => format!("<{}>", type_name(other)),
    }
}

/// Parses exactly one CBOR item from `bytes` (trailing bytes are an error).
pub fn cbor_from_slice(bytes: &[u8]) -> Result<Value, ClaimsError> {
    let mut rest = bytes;
    let v: Value = ciborium::de::from_reader(&mut rest).map_err(|e| ClaimsError::Cbor(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ClaimsError::TrailingData(rest.len()));
    }
    Ok(v)
}

/// Serializes a CBOR value.
pub fn cbor_to_vec(v: &Value) -> Result<Vec<u8>, ClaimsError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).map_err(|e| ClaimsError::Cbor(e.to_string()))?;
    Ok(out)
}

/// Most entries one map may have (claims maps, COSE_Keys and headers have a handful).
pub const MAX_MAP_ENTRIES: usize = 256;

/// Takes a map apart, refusing duplicate keys and maps of more than [`MAX_MAP_ENTRIES`].
pub fn map_entries(v: Value, what: &'static str) -> Result<Vec<(Value, Value)>, ClaimsError> {
    let Value::Map(entries) = v else {
        return Err(ClaimsError::NotAMap { what, got: type_name(&v) });
    };
    if entries.len() > MAX_MAP_ENTRIES {
        return Err(ClaimsError::TooManyEntries { what, got: entries.len(), max: MAX_MAP_ENTRIES });
    }
    // One set of the keys' encodings: linear, where comparing each key with all before it was
    // quadratic (a 160k-entry COSE_Key under the trust-file size cap took 82 s).
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (k, _) in &entries {
        if !seen.insert(cbor_to_vec(k)?) {
            return Err(ClaimsError::DuplicateKey { what, key: key_text(k) });
        }
    }
    Ok(entries)
}

/// Decodes a generic CWT claims map: one CBOR map, no trailing data, no duplicate keys.
pub fn decode_claims_map(bytes: &[u8]) -> Result<Vec<(Value, Value)>, ClaimsError> {
    map_entries(cbor_from_slice(bytes)?, "claims map")
}

/// Integer-keyed fields of a map, each taken at most once; leftovers are unknown keys.
struct Fields {
    what: &'static str,
    entries: Vec<(Option<i64>, Value, Value)>,
}

impl Fields {
    fn new(entries: Vec<(Value, Value)>, what: &'static str) -> Self {
        Fields { what, entries: entries.into_iter().map(|(k, v)| (int_key(&k), k, v)).collect() }
    }
    fn take(&mut self, key: i64) -> Option<Value> {
        let pos = self.entries.iter().position(|(k, _, _)| *k == Some(key))?;
        Some(self.entries.remove(pos).2)
    }
    fn finish(self) -> Result<(), ClaimsError> {
        match self.entries.first() {
            Some((_, k, _)) => Err(ClaimsError::UnknownKey { what: self.what, key: key_text(k) }),
            None => Ok(()),
        }
    }
}

fn want_text(v: Option<Value>, claim: &'static str) -> Result<String, ClaimsError> {
    match v.ok_or(ClaimsError::Missing(claim))? {
        Value::Text(t) => Ok(t),
        other => Err(ClaimsError::WrongType { claim, expected: "text string", got: type_name(&other) }),
    }
}

fn want_int(v: Value, claim: &'static str) -> Result<i64, ClaimsError> {
    match v {
        Value::Integer(i) => i64::try_from(i).map_err(|_| ClaimsError::Invalid { claim, why: "out of range".into() }),
        other => Err(ClaimsError::WrongType { claim, expected: "integer", got: type_name(&other) }),
    }
}

fn want_bytes(v: Option<Value>, claim: &'static str) -> Result<Vec<u8>, ClaimsError> {
    match v.ok_or(ClaimsError::Missing(claim))? {
        Value::Bytes(b) => Ok(b),
        other => Err(ClaimsError::WrongType { claim, expected: "byte string", got: type_name(&other) }),
    }
}

fn want_32(v: Option<Value>, claim: &'static str) -> Result<[u8; 32], ClaimsError> {
    let b = want_bytes(v, claim)?;
    let len = b.len();
    <[u8; 32]>::try_from(b).map_err(|_| ClaimsError::WrongLength { claim, expected: "32", got: len })
}

/// Whether `s` looks like an absolute URI: `scheme ":" rest` (RFC 3986 §3.1 scheme syntax).
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Claims {
    /// Checks the invariants decoding enforces (so that we never sign what we would refuse).
    pub fn validate(&self) -> Result<(), ClaimsError> {
        if self.iss.is_empty() {
            return Err(ClaimsError::Invalid { claim: "iss", why: "empty".into() });
        }
        if !(MIN_CTI_LEN..=MAX_CTI_LEN).contains(&self.cti.len()) {
            return Err(ClaimsError::WrongLength { claim: "cti", expected: "16..=64", got: self.cti.len() });
        }
        if self.exp <= self.iat {
            return Err(ClaimsError::Invalid { claim: "exp", why: format!("exp {} is not after iat {}", self.exp, self.iat) });
        }
        if self.pointer.patient_id.is_empty() {
            return Err(ClaimsError::Invalid { claim: "patient id", why: "empty".into() });
        }
        if !is_absolute_uri(&self.pointer.locator) {
            return Err(ClaimsError::Invalid {
                claim: "record locator",
                why: format!("{:?} is not an absolute URI", self.pointer.locator),
            });
        }
        Ok(())
    }

    /// The time claims.
    #[must_use]
    pub fn times(&self) -> TimeClaims {
        TimeClaims { iat: Some(self.iat), exp: Some(self.exp), nbf: self.nbf }
    }

    /// The claims as a CBOR value (keys in ascending encoded order within each map).
    pub fn to_value(&self) -> Value {
        let p = &self.pointer;
        let mut pointer = vec![
            (Value::from(1), Value::Text(p.patient_id.clone())),
            (Value::from(2), Value::Text(p.locator.clone())),
            (Value::from(3), Value::Bytes(p.record_sha256.to_vec())),
        ];
        if let Some(k) = &p.content_key {
            pointer.push((Value::from(4), Value::Bytes(k.as_bytes().to_vec())));
        }
        pointer.push((Value::from(5), Value::Array(p.categories.iter().cloned().map(Value::Text).collect())));
        pointer.push((Value::from(6), Value::Bytes(p.consent_sha256.to_vec())));
        let mut m = vec![(Value::from(ISS), Value::Text(self.iss.clone())), (Value::from(EXP), Value::from(self.exp))];
        if let Some(nbf) = self.nbf {
            m.push((Value::from(NBF), Value::from(nbf)));
        }
        m.push((Value::from(IAT), Value::from(self.iat)));
        m.push((Value::from(CTI), Value::Bytes(self.cti.clone())));
        m.push((Value::from(POINTER), Value::Map(pointer)));
        Value::Map(m)
    }

    /// Encodes the claims as CBOR after [`Claims::validate`].
    ///
    /// The encoding holds the content key, if any: treat the bytes as secret.
    pub fn to_cbor(&self) -> Result<Zeroizing<Vec<u8>>, ClaimsError> {
        self.validate()?;
        cbor_to_vec(&self.to_value()).map(Zeroizing::new)
    }

    /// Decodes claims strictly (see the module docs).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, ClaimsError> {
        let mut top = Fields::new(decode_claims_map(bytes)?, "claims map");
        let iss = want_text(top.take(ISS), "iss")?;
        let exp = want_int(top.take(EXP).ok_or(ClaimsError::Missing("exp"))?, "exp")?;
        let nbf = top.take(NBF).map(|v| want_int(v, "nbf")).transpose()?;
        let iat = want_int(top.take(IAT).ok_or(ClaimsError::Missing("iat"))?, "iat")?;
        let cti = want_bytes(top.take(CTI), "cti")?;
        let pointer_value = top.take(POINTER).ok_or(ClaimsError::Missing("pointer (-65537)"))?;
        top.finish()?;
        let mut p = Fields::new(map_entries(pointer_value, "pointer claim")?, "pointer claim");
        let patient_id = want_text(p.take(1), "patient id")?;
        let locator = want_text(p.take(2), "record locator")?;
        let record_sha256 = want_32(p.take(3), "record sha256")?;
        let content_key = match p.take(4) {
            None => None,
            Some(v) => {
                let b = Zeroizing::new(want_bytes(Some(v), "content key")?);
                let key: [u8; 32] =
                    b.as_slice().try_into().map_err(|_| ClaimsError::WrongLength { claim: "content key", expected: "32", got: b.len() })?;
                Some(ContentKey::new(key))
            }
        };
        let categories = match p.take(5).ok_or(ClaimsError::Missing("categories"))? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Text(t) => Ok(t),
                    other => Err(ClaimsError::WrongType { claim: "category", expected: "text string", got: type_name(&other) }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(ClaimsError::WrongType { claim: "categories", expected: "array", got: type_name(&other) }),
        };
        let consent_sha256 = want_32(p.take(6), "consent sha256")?;
        p.finish()?;
        let claims = Claims {
            iss,
            iat,
            exp,
            nbf,
            cti,
            pointer: Pointer { patient_id, locator, record_sha256, content_key, categories, consent_sha256 },
        };
        claims.validate()?;
        Ok(claims)
    }
}

/// A fresh random `cti` of 16 bytes from the operating system's generator.
pub fn random_cti() -> Result<Vec<u8>, getrandom::Error> {
    let mut cti = vec![0u8; MIN_CTI_LEN];
    getrandom::fill(&mut cti)?;
    Ok(cti)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Claims {
        Claims {
            iss: "clinic-1".into(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            nbf: None,
            cti: vec![7; 16],
            pointer: Pointer {
                patient_id: "P-1".into(),
                locator: "https://records.example/r/1".into(),
                record_sha256: [1; 32],
                content_key: Some(ContentKey::new([2; 32])),
                categories: vec!["lab".into()],
                consent_sha256: [3; 32],
            },
        }
    }

    #[test]
    fn claims_round_trip_through_cbor() {
        let c = sample();
        let bytes = c.to_cbor();
        assert!(bytes.is_ok());
        if let Ok(bytes) = bytes {
            assert_eq!(Claims::from_cbor(&bytes), Ok(c));
        }
    }

    #[test]
    fn content_key_is_redacted_in_debug() {
        assert!(!format!("{:?}", sample()).contains("2, 2, 2"));
        assert!(format!("{:?}", sample()).contains("<redacted>"));
    }

    fn with_pointer_entry(extra: (Value, Value)) -> Vec<u8> {
        let mut v = sample().to_value();
        if let Value::Map(m) = &mut v
            && let Some((_, Value::Map(p))) = m.last_mut()
        {
            p.push(extra);
        }
        cbor_to_vec(&v).unwrap_or_default()
    }

    #[test]
    fn refuses_unknown_and_duplicate_keys_in_pointer_claim() {
        let unknown = with_pointer_entry((Value::from(9), Value::from(1)));
        assert!(matches!(Claims::from_cbor(&unknown), Err(ClaimsError::UnknownKey { key, .. }) if key == "9"));
        let dup = with_pointer_entry((Value::from(1), Value::Text("P-2".into())));
        assert!(matches!(Claims::from_cbor(&dup), Err(ClaimsError::DuplicateKey { key, .. }) if key == "1"));
    }

    #[test]
    fn refuses_wrong_types_short_hashes_and_trailing_bytes() {
        let mut c = sample().to_value();
        if let Value::Map(m) = &mut c
            && let Some((_, v)) = m.get_mut(1)
        {
            *v = Value::Text("soon".into()); // exp as text
        }
        let bytes = cbor_to_vec(&c).unwrap_or_default();
        assert!(matches!(Claims::from_cbor(&bytes), Err(ClaimsError::WrongType { claim: "exp", .. })));
        let mut good = sample().to_cbor().map(|b| b.to_vec()).unwrap_or_default();
        good.push(0);
        assert_eq!(Claims::from_cbor(&good), Err(ClaimsError::TrailingData(1)));
        let mut short = sample();
        short.cti = vec![0; 8];
        assert!(matches!(short.to_cbor(), Err(ClaimsError::WrongLength { claim: "cti", .. })));
    }

    #[test]
    fn time_checks_name_each_failure() {
        let t = TimeClaims { iat: Some(100), exp: Some(200), nbf: Some(150) };
        assert_eq!(t.check(Clock::new(160, 0)), Ok(()));
        assert!(matches!(t.check(Clock::new(200, 0)), Err(TimeError::Expired { .. })));
        assert_eq!(t.check(Clock::new(205, 10)), Ok(()));
        assert!(matches!(t.check(Clock::new(120, 0)), Err(TimeError::NotYetValid { .. })));
        let t2 = TimeClaims { iat: Some(100), exp: Some(200), nbf: None };
        assert!(matches!(t2.check(Clock::new(50, 0)), Err(TimeError::IssuedInFuture { .. })));
        assert_eq!(TimeClaims::default().check(Clock::new(0, 0)), Err(TimeError::NoExpiry));
    }
}
