//! COSE_Sign1 with ES256 (RFC 9052, RFC 9053 §2.1): signing through a [`Signer`], strict parsing.
//!
//! **kid** = the first 8 bytes of SHA-256 over the signer's public key as the 65-byte
//! *uncompressed SEC1 point* `04 ‖ X ‖ Y` (what a PIV card's GENERATE ASYMMETRIC KEY PAIR returns
//! in tag `86`), see [`kid_for`]. It goes in the protected header with `alg` = ES256 (-7).
//! We emit tag 18; we accept tag 18, untagged, and tag 61 (CWT) wrapping tag 18.

use coset::{CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Length of our kid.
pub const KID_LEN: usize = 8;

/// The kid of a P-256 public key: SHA-256 over the 65-byte uncompressed SEC1 point, first 8 bytes.
#[must_use]
pub fn kid_for(key: &VerifyingKey) -> [u8; KID_LEN] {
    let digest = Sha256::digest(key.to_sec1_point(false).as_bytes());
    let mut kid = [0u8; KID_LEN];
    kid.copy_from_slice(digest.get(..KID_LEN).unwrap_or(&[0; KID_LEN]));
    kid
}

/// A signer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signer failed: {0}")]
pub struct SignerError(pub String);

/// Something that signs a SHA-256 digest with a P-256 key, returning a DER `ECDSA-Sig-Value`
/// (as a PIV card's GENERAL AUTHENTICATE does).
pub trait Signer {
    /// The public key.
    fn public_key(&self) -> VerifyingKey;
    /// DER-encoded ECDSA signature over the 32-byte `digest`.
    fn sign_digest_der(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SignerError>;
}

/// A software P-256 key (RFC 6979 deterministic signatures).
pub struct SoftwareSigner {
    key: SigningKey,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftwareSigner {{ kid: {}, key: <redacted> }}", hex::encode(kid_for(self.key.verifying_key())))
    }
}

impl SoftwareSigner {
    /// Wraps a signing key.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        SoftwareSigner { key }
    }
    /// A fresh key from the operating system's generator.
    pub fn generate() -> Result<Self, SignerError> {
        // Rejection-sample a scalar from OS randomness (fails only with probability ~2^-32 each).
        for _ in 0..64 {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut_slice()).map_err(|e| SignerError(e.to_string()))?;
            if let Ok(key) = SigningKey::from_slice(bytes.as_slice()) {
                return Ok(SoftwareSigner { key });
            }
        }
        Err(SignerError("could not draw a valid P-256 scalar".into()))
    }
    /// From a 32-byte big-endian scalar.
    pub fn from_scalar(bytes: &[u8]) -> Result<Self, SignerError> {
        SigningKey::from_slice(bytes).map(|key| SoftwareSigner { key }).map_err(|e| SignerError(e.to_string()))
    }
    /// The signing key.
    #[must_use]
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl Signer for SoftwareSigner {
    fn public_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }
    fn sign_digest_der(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SignerError> {
        let sig: Signature = self.key.sign_prehash(digest).map_err(|e| SignerError(e.to_string()))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// Structural COSE errors (also used for signing failures).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoseError {
    /// The signer's DER signature is malformed.
    #[error("signer returned a malformed DER ECDSA signature: {0}")]
    BadDerSignature(String),
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The signature does not verify with the signer's own public key.
    #[error("signer returned a signature that does not verify with its public key")]
    SignerMismatch,
    /// coset failed to build or parse.
    #[error("COSE_Sign1 structure: {0}")]
    Structure(String),
    /// A tag other than 18 (or 61 wrapping 18).
    #[error("COSE_Sign1 structure: expected tag 18, 61(18(..)) or an untagged array, got {got}")]
    WrongTag { got: String },
    /// No payload (detached payloads are not used).
    #[error("COSE_Sign1 structure: payload is nil (detached), expected a byte string")]
    DetachedPayload,
    /// A critical header we do not understand.
    #[error("COSE_Sign1 structure: unknown critical header parameter {0}")]
    UnknownCritical(String),
    /// `crit` in the unprotected header (RFC 9052 §3.1: must be protected).
    #[error("COSE_Sign1 structure: crit header parameter must be protected")]
    UnprotectedCritical,
}

/// Converts a DER `ECDSA-Sig-Value` to the 64-byte `r ‖ s` COSE uses (RFC 9053 §2.1).
pub fn der_to_raw(der: &[u8]) -> Result<[u8; 64], CoseError> {
    let sig = Signature::from_der(der).map_err(|e| CoseError::BadDerSignature(e.to_string()))?;
    let bytes = sig.to_bytes();
    let mut out = [0u8; 64];
    if bytes.len() != 64 {
        return Err(CoseError::BadDerSignature(format!("{} bytes after conversion", bytes.len())));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Signs `payload` as a tagged COSE_Sign1 (protected: alg ES256, kid; empty unprotected header).
pub fn sign(payload: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, CoseError> {
    let public = signer.public_key();
    let protected = HeaderBuilder::new().algorithm(iana::Algorithm::ES256).key_id(kid_for(&public).to_vec()).build();
    let unsigned = CoseSign1Builder::new().protected(protected).payload(payload.to_vec()).build();
    let tbs = unsigned.tbs_data(b"");
    let digest: [u8; 32] = Sha256::digest(&tbs).into();
    let raw = der_to_raw(&signer.sign_digest_der(&digest)?)?;
    // A card can return garbage: check before we hand the code out.
    let sig = Signature::from_slice(&raw).map_err(|e| CoseError::BadDerSignature(e.to_string()))?;
    public.verify_prehash(&digest, &sig).map_err(|_| CoseError::SignerMismatch)?;
    let signed = CoseSign1 { signature: raw.to_vec(), ..unsigned };
    signed.to_tagged_vec().map_err(|e| CoseError::Structure(e.to_string()))
}

/// How the message was tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    /// Tag 18.
    Sign1,
    /// No tag.
    Untagged,
    /// Tag 61 (CWT) around tag 18.
    CwtSign1,
}

/// Header parameters we understand, so a `crit` naming them is fine (alg, crit, content type, kid).
const UNDERSTOOD: [i64; 4] = [1, 2, 3, 4];

/// Parses a COSE_Sign1 strictly: tag, 4-array, headers (no duplicate labels), payload present,
/// no trailing bytes, and only understood critical headers.
pub fn parse(bytes: &[u8]) -> Result<(CoseSign1, Tagging), CoseError> {
    let (msg, tagging) = match bytes {
        [0xD8, 0x3D, 0xD2, ..] => (bytes.get(2..).map(CoseSign1::from_tagged_slice), Tagging::CwtSign1),
        [0xD2, ..] => (Some(CoseSign1::from_tagged_slice(bytes)), Tagging::Sign1),
        [0x84, ..] => (Some(CoseSign1::from_slice(bytes)), Tagging::Untagged),
        [0xD8, 0x3D, ..] => return Err(CoseError::WrongTag { got: "tag 61 around something other than tag 18".into() }),
        [first, ..] => return Err(CoseError::WrongTag { got: describe_head(bytes, *first) }),
        [] => return Err(CoseError::Structure("no data".into())),
    };
    let msg = msg.ok_or_else(|| CoseError::Structure("truncated".into()))?.map_err(|e| CoseError::Structure(e.to_string()))?;
    if msg.payload.is_none() {
        return Err(CoseError::DetachedPayload);
    }
    if !msg.unprotected.crit.is_empty() {
        return Err(CoseError::UnprotectedCritical);
    }
    for label in &msg.protected.header.crit {
        let known = matches!(label, coset::RegisteredLabelWithPrivate::Assigned(p) if UNDERSTOOD.contains(&(*p as i64)));
        if !known {
            return Err(CoseError::UnknownCritical(format!("{label:?}")));
        }
    }
    Ok((msg, tagging))
}

fn describe_head(bytes: &[u8], first: u8) -> String {
    match first >> 5 {
        6 => match bytes {
            [0xD8, t, ..] => format!("tag {t}"),
            _ => format!("tag {}", first & 0x1F),
        },
        4 => format!("an array header {first:#04x} (need exactly 4 items)"),
        major => format!("first byte {first:#04x} (major type {major})"),
    }
}

/// The algorithm layer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmError {
    /// No `alg` header.
    #[error("algorithm: no alg header parameter (expected ES256)")]
    Missing,
    /// `alg` is not in the protected header and the profile requires it there.
    #[error("algorithm: alg is only in the unprotected header; it must be protected")]
    NotProtected,
    /// `alg` differs between the protected and unprotected headers.
    #[error("algorithm: protected alg {protected} and unprotected alg {unprotected} disagree")]
    Conflict { protected: String, unprotected: String },
    /// `alg` is not ES256.
    #[error("algorithm: {got} is not accepted, only ES256 (-7) with a P-256 key")]
    NotAllowed { got: String },
}

fn alg_text(a: &coset::Algorithm) -> String {
    match a {
        coset::RegisteredLabelWithPrivate::Assigned(x) => format!("{x:?} ({})", *x as i64),
        coset::RegisteredLabelWithPrivate::PrivateUse(i) => format!("private {i}"),
        coset::RegisteredLabelWithPrivate::Text(t) => format!("{t:?}"),
    }
}

/// Checks the algorithm: ES256 only. With `require_protected`, alg must be in the protected header.
pub fn check_algorithm(msg: &CoseSign1, require_protected: bool) -> Result<(), AlgorithmError> {
    let p = msg.protected.header.alg.as_ref();
    let u = msg.unprotected.alg.as_ref();
    let alg = match (p, u) {
        (Some(p), Some(u)) if p != u => {
            return Err(AlgorithmError::Conflict { protected: alg_text(p), unprotected: alg_text(u) });
        }
        (Some(p), _) => p,
        (None, Some(_)) if require_protected => return Err(AlgorithmError::NotProtected),
        (None, Some(u)) => u,
        (None, None) => return Err(AlgorithmError::Missing),
    };
    if *alg != coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256) {
        return Err(AlgorithmError::NotAllowed { got: alg_text(alg) });
    }
    Ok(())
}

/// The kid to look up: the protected one if present, else the unprotected one.
#[must_use]
pub fn kid_of(msg: &CoseSign1) -> Option<&[u8]> {
    if msg.protected.header.key_id.is_empty() {
        if msg.unprotected.key_id.is_empty() { None } else { Some(&msg.unprotected.key_id) }
    } else {
        Some(&msg.protected.header.key_id)
    }
}

/// Verifies the ES256 signature of `msg` (over the protected header bytes as received) with `key`.
///
/// The arithmetic is `ring`'s (assembly P-256, about 6x the `p256` crate's verify rate on this
/// project's machines); the key was already validated as a P-256 point by `p256` when it entered
/// the trust list. [`signature_verifies_p256`] is the pure-Rust equivalent, and a test checks
/// that both agree.
#[must_use]
pub fn signature_verifies(msg: &CoseSign1, external_aad: &[u8], key: &VerifyingKey) -> bool {
    if msg.signature.len() != 64 {
        return false;
    }
    let point = key.to_sec1_point(false);
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point.as_bytes());
    public.verify(&msg.tbs_data(external_aad), &msg.signature).is_ok()
}

/// [`signature_verifies`] with the pure-Rust `p256` crate.
#[must_use]
pub fn signature_verifies_p256(msg: &CoseSign1, external_aad: &[u8], key: &VerifyingKey) -> bool {
    let Ok(sig) = Signature::from_slice(&msg.signature) else { return false };
    let digest = Sha256::digest(msg.tbs_data(external_aad));
    key.verify_prehash(&digest, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_to_raw_refuses_malformed_der() {
        assert!(der_to_raw(&[0x30, 0x02, 0x02, 0x00]).is_err());
        assert!(der_to_raw(&[]).is_err());
        let signer = SoftwareSigner::from_scalar(&[1; 32]);
        assert!(signer.is_ok());
        if let Ok(signer) = signer {
            let der = signer.sign_digest_der(&[9; 32]).unwrap_or_default();
            assert!(der_to_raw(&der).is_ok());
            let mut bad = der.clone();
            bad.push(0);
            assert!(der_to_raw(&bad).is_err(), "trailing byte after DER");
        }
    }

    #[test]
    fn signed_message_is_tag_18_with_protected_alg_and_kid() {
        let signer = SoftwareSigner::from_scalar(&[1; 32]);
        assert!(signer.is_ok());
        if let Ok(signer) = signer {
            let cose = sign(b"hi", &signer).unwrap_or_default();
            assert_eq!(cose.first(), Some(&0xD2));
            let parsed = parse(&cose);
            assert!(parsed.is_ok());
            if let Ok((msg, tagging)) = parsed {
                assert_eq!(tagging, Tagging::Sign1);
                assert_eq!(check_algorithm(&msg, true), Ok(()));
                assert_eq!(kid_of(&msg), Some(&kid_for(&signer.public_key())[..]));
                assert!(signature_verifies(&msg, b"", &signer.public_key()));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]
        /// ring (the fast path) and p256 (pure Rust) must give the same answer for valid
        /// signatures, flipped bits, wrong keys and wrong lengths.
        #[test]
        fn ring_and_p256_agree_on_every_signature(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            scalar in 1u8..=254,
            other in 1u8..=254,
            flip in proptest::option::of((0usize..64, 0u8..8)),
            cut in proptest::prelude::any::<bool>(),
        ) {
            let Ok(signer) = SoftwareSigner::from_scalar(&[scalar; 32]) else { return Err(proptest::test_runner::TestCaseError::fail("signer")) };
            let Ok(bytes) = sign(&payload, &signer) else { return Err(proptest::test_runner::TestCaseError::fail("sign")) };
            let Ok((mut msg, _)) = parse(&bytes) else { return Err(proptest::test_runner::TestCaseError::fail("parse")) };
            if let Some((i, bit)) = flip && let Some(b) = msg.signature.get_mut(i) {
                *b ^= 1 << bit;
            }
            if cut {
                msg.signature.pop();
            }
            let key = if other == scalar { signer.public_key() } else {
                let Ok(o) = SoftwareSigner::from_scalar(&[other; 32]) else { return Err(proptest::test_runner::TestCaseError::fail("other")) };
                o.public_key()
            };
            let fast = signature_verifies(&msg, b"", &key);
            proptest::prop_assert_eq!(fast, signature_verifies_p256(&msg, b"", &key));
            if flip.is_none() && !cut && other == scalar {
                proptest::prop_assert!(fast, "an untouched signature must verify");
            }
        }
    }

    #[test]
    fn unknown_critical_header_is_refused() {
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .add_critical_label(coset::RegisteredLabelWithPrivate::Text("x".into()))
            .build();
        let msg = CoseSign1Builder::new().protected(protected).payload(vec![1]).signature(vec![0; 64]).build();
        let bytes = msg.to_tagged_vec().unwrap_or_default();
        assert!(matches!(parse(&bytes), Err(CoseError::UnknownCritical(_))));
    }
}
