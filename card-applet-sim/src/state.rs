//! Card state: persistent (keys, PIN/PUK and counters, data objects, management key) and
//! volatile (security status, chaining buffers; see [`crate::applet`]). Owner: applet helper.
//!
//! Secrets (PIN, PUK, management key, private keys) live in [`Secret`]: zeroized on drop,
//! redacted in `Debug`, compared in constant time by the applet.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::key_ref::{KeySlot, MgmtAlgorithm};
use crate::objects;

/// Maximum (and initial) tries for the PIN and the PUK (SP 800-73-4 Part 2 §3.2.1 leaves the
/// number to the issuer; MedCard uses 3, like YubiKey).
pub const MAX_TRIES: u8 = 3;

/// The published default PIN of a blank PIV card (YubiKey convention).
pub const DEFAULT_PIN: &[u8] = b"123456";
/// The published default PUK.
pub const DEFAULT_PUK: &[u8] = b"12345678";
/// The published default management key (3DES, three times 0102030405060708).
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

/// Secret bytes: zeroized on drop, never printed. Serialized as a CBOR byte string.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The secret bytes. Compare them with `subtle::ConstantTimeEq`, never `==`.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(d.deserialize_byte_buf(BytesVisitor)?))
    }
}

/// Public bytes (data objects), serialized as a CBOR byte string rather than an array.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(d.deserialize_byte_buf(BytesVisitor)?))
    }
}

struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }
    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// A PIN or PUK: the reference value (8 bytes, FF-padded, SP 800-73-4 Part 2 §2.4.3) and its
/// try counter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct PinRecord {
    pub value: Secret,
    pub tries_left: u8,
}

impl PinRecord {
    /// A reference value from its digits (padded with FF to 8 bytes), counter at [`MAX_TRIES`].
    pub fn from_digits(digits: &[u8]) -> Self {
        let mut value = vec![0xFF; 8];
        for (slot, d) in value.iter_mut().zip(digits) {
            *slot = *d;
        }
        Self { value: Secret::new(value), tries_left: MAX_TRIES }
    }
}

/// The 9B card management key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct ManagementKey {
    pub algorithm: MgmtAlgorithm,
    pub key: Secret,
    /// Yubico SET MANAGEMENT KEY P2 = FE asks for touch; recorded, not enforced (no button).
    pub touch_required: bool,
}

/// A P-256 private key in a slot, with the Yubico policies it was generated with (recorded
/// only: MedCard's slot policies are fixed per slot, see `docs/card.md`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct SlotKey {
    /// The private scalar, 32 bytes big-endian. Never leaves the card.
    pub private: Secret,
    pub pin_policy: Option<u8>,
    pub touch_policy: Option<u8>,
}

/// Everything the card keeps across power cycles. Serialized by [`crate::persist`].
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PersistentState {
    /// Card serial (Yubico INS F8, CHUID GUID, CCC card identifier).
    pub serial: u32,
    /// The PIV Card Application PIN (key reference 80).
    pub pin: PinRecord,
    /// The PIN Unblocking Key (key reference 81).
    pub puk: PinRecord,
    /// The card management key (key reference 9B).
    pub management_key: ManagementKey,
    /// Asymmetric keys by slot.
    pub keys: BTreeMap<KeySlot, SlotKey>,
    /// Data objects by tag (the content of the 53 container, without the 53 wrapper).
    pub objects: BTreeMap<u32, Blob>,
}

impl fmt::Debug for PersistentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistentState")
            .field("serial", &self.serial)
            .field("pin_tries_left", &self.pin.tries_left)
            .field("puk_tries_left", &self.puk.tries_left)
            .field("management_key", &self.management_key.algorithm)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("objects", &self.objects.iter().map(|(t, v)| (format!("{t:06X}"), v.0.len())).collect::<Vec<_>>())
            .finish()
    }
}

impl PersistentState {
    /// A blank card as real blank PIV cards ship: default PIN 123456, PUK 12345678,
    /// management key 3DES 010203040506070801020304050607080102030405060708, no keys, and
    /// the CHUID, CCC and key history objects filled in from the serial.
    pub fn blank(serial: u32) -> Self {
        let mut objects = BTreeMap::new();
        objects.insert(objects::CHUID, Blob(objects::default_chuid(serial)));
        objects.insert(objects::CCC, Blob(objects::default_ccc(serial)));
        objects.insert(objects::KEY_HISTORY, Blob(objects::default_key_history()));
        Self {
            serial,
            pin: PinRecord::from_digits(DEFAULT_PIN),
            puk: PinRecord::from_digits(DEFAULT_PUK),
            management_key: ManagementKey {
                algorithm: MgmtAlgorithm::Tdes,
                key: Secret::new(DEFAULT_MANAGEMENT_KEY.to_vec()),
                touch_required: false,
            },
            keys: BTreeMap::new(),
            objects,
        }
    }
}

/// Where the persistent state goes. The applet calls `save` **before** acting on a change that
/// must survive (e.g. the decremented PIN counter before comparing the PIN). If `save` fails
/// the applet answers `6581` (memory failure) and does not act.
pub trait Persist {
    /// Replace the stored state with `state` atomically: afterwards the store holds either the
    /// old or the new state, never a mix.
    fn save(&mut self, state: &PersistentState) -> Result<(), PersistError>;
}

/// A failed save.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// An I/O step failed.
    #[error("could not write card state to {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A store that keeps nothing, or a test that injected a failure.
    #[error("card state write refused: {0}")]
    Refused(&'static str),
}

/// A store that keeps the state in memory only (tests, benches, demo).
#[derive(Default)]
pub struct MemoryStore {
    pub last: Option<PersistentState>,
}

impl Persist for MemoryStore {
    fn save(&mut self, state: &PersistentState) -> Result<(), PersistError> {
        self.last = Some(state.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_card_has_default_pin_puk_and_management_key() {
        let s = PersistentState::blank(7);
        assert_eq!(s.pin.value.expose(), b"123456\xFF\xFF");
        assert_eq!(s.puk.value.expose(), b"12345678");
        assert_eq!(s.pin.tries_left, 3);
        assert_eq!(s.management_key.algorithm, MgmtAlgorithm::Tdes);
        assert_eq!(s.management_key.key.expose(), DEFAULT_MANAGEMENT_KEY);
        assert!(s.keys.is_empty());
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let mut s = PersistentState::blank(7);
        s.keys.insert(KeySlot::Signature, SlotKey { private: Secret::new(vec![0xAB; 32]), pin_policy: None, touch_policy: None });
        let text = format!("{s:?} {:?} {:?}", s.pin, s.keys);
        assert!(!text.contains("123456"), "{text}");
        assert!(!text.to_lowercase().contains("ab, ab") && !text.contains("171"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }

    #[test]
    fn state_round_trips_through_cbor_with_byte_strings() {
        let s = PersistentState::blank(0x0102_0304);
        let mut buf = Vec::new();
        assert!(ciborium::into_writer(&s, &mut buf).is_ok());
        let back: Result<PersistentState, _> = ciborium::from_reader(buf.as_slice());
        assert!(matches!(back, Ok(ref b) if *b == s));
    }
}
