//! Audit entries signed by a staff card (`docs/staff.md`, "Signed entries").
//!
//! An entry written in a staff session names the card as its actor, `staff:<staff id>#<serial>`,
//! and ends its detail with ` sig=<128 hex digits>`: the card's 9A key's ECDSA P-256 signature
//! (r ‖ s) over
//!
//! ```text
//! SHA-256("MedCard signed audit entry v1" ‖ CBOR [time, kind, actor, subject, outcome, detail])
//! ```
//!
//! where `detail` is the detail without the ` sig=` suffix. The entry's position (`seq`) is not
//! signed: in clinic mode it is assigned when the entry reaches the clinic log. The signature is
//! inside the hashed leaf, so the log's checkpoints cover it; an administrator who edits an entry
//! and recomputes its hash still cannot make the card's signature, and one who re-signs with
//! another key is found because the key must be the one in the card's staff credential.

use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::cbor;

/// Domain string of the signed digest.
pub const DOMAIN: &[u8] = b"MedCard signed audit entry v1";
/// The actor prefix of entries written in a staff session.
pub const ACTOR_PREFIX: &str = "staff:";
/// The detail suffix that carries the signature.
const SIG_MARK: &str = " sig=";

/// Checks a staff id: 1-32 characters of `A-Z a-z 0-9 . _ -` (it is part of the actor text, and
/// `#`, `:` and spaces separate fields there).
pub fn check_staff_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The actor text of a staff card: `staff:<staff id>#<serial>`.
#[must_use]
pub fn actor(staff_id: &str, serial: u32) -> String {
    format!("{ACTOR_PREFIX}{staff_id}#{serial}")
}

/// The staff card part of a stored actor: the actor itself (`staff:<id>#<serial>`), or its last
/// `/`-separated part in the clinic log, which stores `<device>/<actor>` (device ids and staff
/// ids hold no `/`). `None`: not written in a staff card's name.
#[must_use]
pub fn card_actor(stored: &str) -> Option<&str> {
    let last = stored.rsplit_once('/').map_or(stored, |x| x.1);
    last.starts_with(ACTOR_PREFIX).then_some(last)
}

/// The staff id and card serial of a staff actor; `None` for any other actor text.
#[must_use]
pub fn parse_actor(actor: &str) -> Option<(&str, u32)> {
    let rest = actor.strip_prefix(ACTOR_PREFIX)?;
    let (id, serial_text) = rest.split_once('#')?;
    let serial: u32 = serial_text.parse().ok()?;
    (check_staff_id(id) && serial.to_string() == serial_text).then_some((id, serial))
}

/// The signed message of an entry: the domain string, then the CBOR array (module docs).
#[must_use]
pub fn message(time: i64, kind: &str, actor: &str, subject: &str, outcome: &str, detail: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 64 + kind.len() + actor.len() + subject.len() + outcome.len() + detail.len());
    m.extend_from_slice(DOMAIN);
    cbor::write_head(&mut m, cbor::ARRAY, 6);
    cbor::write_int(&mut m, time);
    for s in [kind, actor, subject, outcome, detail] {
        cbor::write_text(&mut m, s);
    }
    m
}

/// The digest a staff card signs for an entry: SHA-256 of [`message`].
#[must_use]
pub fn digest(time: i64, kind: &str, actor: &str, subject: &str, outcome: &str, detail: &str) -> [u8; 32] {
    Sha256::digest(message(time, kind, actor, subject, outcome, detail)).into()
}

/// `detail` with the signature appended.
#[must_use]
pub fn attach(detail: &str, sig: &Signature) -> String {
    format!("{detail}{SIG_MARK}{}", hex::encode(sig.to_bytes()))
}

/// Why a signed entry does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The actor is a staff card but the detail carries no signature.
    #[error("written in the name of staff card {actor} but not signed by it")]
    Unsigned { actor: String },
    /// The signature text is not 64 bytes of hex, or not a valid ECDSA signature.
    #[error("its signature is malformed")]
    Malformed,
    /// No staff credential for that card was issued before this entry.
    #[error("it names staff card {actor}, which the log never issued")]
    UnknownCard { actor: String },
    /// The signature does not verify with that card's key: an edited, moved or re-signed entry.
    #[error("its signature does not verify with the key of staff card {actor}: the entry was edited, re-signed or copied from another")]
    BadSignature { actor: String },
}

/// `detail` without the signature suffix (all of it when it carries none).
#[must_use]
pub fn unsigned_detail(detail: &str) -> &str {
    split(detail).map_or(detail, |x| x.0)
}

/// Splits `detail` into the signed part and the signature, if it ends with one.
fn split(detail: &str) -> Option<(&str, &str)> {
    let at = detail.rfind(SIG_MARK)?;
    let (head, tail) = detail.split_at(at);
    Some((head, tail.get(SIG_MARK.len()..)?))
}

/// A card's 9A key as the verifier keeps it: the 65-byte uncompressed point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardKey(Vec<u8>);

impl CardKey {
    /// The key of `key`.
    #[must_use]
    pub fn new(key: &VerifyingKey) -> Self {
        CardKey(key.to_sec1_point(false).as_bytes().to_vec())
    }
}

/// Checks an entry written as staff card `actor` against that card's 9A key (`key`: `None` when
/// the log issued no such card). The arithmetic is `ring`'s (as for QR codes: the verifier of a
/// long log checks many).
pub fn check(
    time: i64,
    kind: &str,
    actor: &str,
    subject: &str,
    outcome: &str,
    detail: &str,
    key: Option<&CardKey>,
) -> Result<(), SignatureProblem> {
    let Some((unsigned, sig_hex)) = split(detail) else { return Err(SignatureProblem::Unsigned { actor: actor.to_owned() }) };
    let key = key.ok_or_else(|| SignatureProblem::UnknownCard { actor: actor.to_owned() })?;
    let mut raw = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut raw).map_err(|_| SignatureProblem::Malformed)?;
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &key.0);
    public
        .verify(&message(time, kind, actor, subject, outcome, unsigned), &raw)
        .map_err(|_| SignatureProblem::BadSignature { actor: actor.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_slice(&[b; 32]).unwrap_or_else(|_| unreachable!())
    }

    fn signed(k: &SigningKey, detail: &str) -> String {
        let a = actor("S-0042", 5_500_042);
        let d = digest(100, "record.read", &a, "loc-1", "ok", detail);
        let sig: Signature = k.sign_prehash(&d).unwrap_or_else(|_| unreachable!());
        attach(detail, &sig)
    }

    #[test]
    fn signed_entry_verifies_with_the_cards_key_only() {
        let a = actor("S-0042", 5_500_042);
        let detail = signed(&key(1), "qr=ab patient=P-1");
        let pk = CardKey::new(&VerifyingKey::from(&key(1)));
        assert_eq!(check(100, "record.read", &a, "loc-1", "ok", &detail, Some(&pk)), Ok(()));
        // Re-signed with another key.
        let other = signed(&key(2), "qr=ab patient=P-1");
        assert!(matches!(check(100, "record.read", &a, "loc-1", "ok", &other, Some(&pk)), Err(SignatureProblem::BadSignature { .. })));
        // Edited fields: each one.
        assert!(check(101, "record.read", &a, "loc-1", "ok", &detail, Some(&pk)).is_err());
        assert!(check(100, "record.added", &a, "loc-1", "ok", &detail, Some(&pk)).is_err());
        assert!(check(100, "record.read", &a, "loc-2", "ok", &detail, Some(&pk)).is_err());
        assert!(check(100, "record.read", &a, "loc-1", "refused", &detail, Some(&pk)).is_err());
        let edited = detail.replace("P-1", "P-2");
        assert!(check(100, "record.read", &a, "loc-1", "ok", &edited, Some(&pk)).is_err());
        assert!(matches!(check(100, "record.read", &a, "loc-1", "ok", "qr=ab", Some(&pk)), Err(SignatureProblem::Unsigned { .. })));
        assert!(matches!(check(100, "record.read", &a, "loc-1", "ok", &detail, None), Err(SignatureProblem::UnknownCard { .. })));
        for bad in ["x sig=", "x sig=zz", "x sig=00", &format!("x sig={}", "00".repeat(64))] {
            assert!(check(100, "record.read", &a, "loc-1", "ok", bad, Some(&pk)).is_err(), "{bad}");
        }
    }

    #[test]
    fn staff_actor_round_trips_and_other_actor_text_is_not_a_staff_card() {
        assert_eq!(parse_actor(&actor("S-0042", 7)), Some(("S-0042", 7)));
        assert_eq!(card_actor("bed-1/staff:S-0042#7"), Some("staff:S-0042#7"));
        assert_eq!(card_actor("staff:S-0042#7"), Some("staff:S-0042#7"));
        for not_a_card in ["cli:root", "bed-1/cli:root", "cli:root as staff:S-0042#7", "admin-1/cli:root as staff:S-0042#7"] {
            assert_eq!(card_actor(not_a_card), None, "{not_a_card}");
        }
        for other in ["cli:root", "desktop:root", "staff:", "staff:S#", "staff:S#x", "staff:S 1#2", "staff:S#07", "staff:#1", "staff:S#1#2"]
        {
            assert_eq!(parse_actor(other), None, "{other}");
        }
    }
}
