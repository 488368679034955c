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
