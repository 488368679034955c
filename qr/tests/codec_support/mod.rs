//! Shared fixtures for the codec tests.
#![allow(dead_code)]

use qr::claims::{Claims, ContentKey, Pointer};
use qr::{SoftwareSigner, TrustList};

pub type R = Result<(), Box<dyn std::error::Error>>;

/// 2026-11-23T10:00:00Z
pub const NOW: i64 = 1_795_428_000;

pub fn signer(seed: u8) -> SoftwareSigner {
    // seed ‖ 01 01 .. 01 is below the group order for every seed, and never zero.
    let mut scalar = [1u8; 32];
    scalar[0] = seed;
    match SoftwareSigner::from_scalar(&scalar) {
        Ok(s) => s,
        Err(e) => unreachable!("fixed scalar is valid: {e}"),
    }
}

pub fn trust_of(signer: &SoftwareSigner, issuer: &str) -> TrustList {
    use qr::Signer;
    let mut t = TrustList::new();
    t.add_key(issuer, signer.public_key());
    t
}

pub fn claims() -> Claims {
    Claims {
        iss: "clinic-0042".into(),
        iat: NOW,
        exp: NOW + 30 * 60,
        nbf: None,
        cti: (0u8..16).collect(),
        pointer: Pointer {
            patient_id: "PAT-7c1f2a".into(),
            locator: "https://records.clinic-0042.example/r/3b6d9f0a2c41".into(),
            record_sha256: [0xAB; 32],
            content_key: Some(ContentKey::new([0x5C; 32])),
            categories: vec!["allergies".into(), "medication".into(), "lab".into()],
            consent_sha256: [0xCD; 32],
        },
    }
}

/// `MEDCARD_CORPORA` or `<CARGO_MANIFEST_DIR>/../../shared/corpora`.
pub fn corpora() -> std::path::PathBuf {
    match std::env::var_os("MEDCARD_CORPORA") {
        Some(p) => p.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"),
    }
}

/// Proptest case count from `env` (default `default`).
pub fn cases(env: &str, default: u32) -> u32 {
    std::env::var(env).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Base64 of the test corpora (standard or URL alphabet, padding and line breaks ignored).
pub fn b64(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}
