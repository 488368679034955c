//! sign → encode → PNG (render_png) → scan (scan_bytes) → verify, for random payloads.
//! Cases: `QR_ROUNDTRIP_CASES` (default 24; each renders and scans a PNG).

mod codec_support;
use codec_support::*;

use proptest::prelude::*;
use qr::claims::{ContentKey, Pointer};
use qr::{Claims, Clock, Profile, Verifier};

fn arb_claims() -> impl Strategy<Value = Claims> {
    (
        "[a-z0-9-]{1,24}",
        0i64..2_000_000_000,
        60i64..86_400,
        proptest::collection::vec(any::<u8>(), 16..=32),
        "[A-Za-z0-9-]{1,24}",
        "[a-z0-9/._-]{1,60}",
        any::<[u8; 32]>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::collection::vec("[a-z]{1,12}", 0..5),
        any::<[u8; 32]>(),
    )
        .prop_map(|(iss, iat, life, cti, patient_id, path, record, key, categories, consent)| Claims {
            iss,
            iat,
            exp: iat + life,
            nbf: None,
            cti,
            pointer: Pointer {
                patient_id,
                locator: format!("https://records.example/{path}"),
                record_sha256: record,
                content_key: key.map(ContentKey::new),
                categories,
                consent_sha256: consent,
            },
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases("QR_ROUNDTRIP_CASES", 24), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn signed_rendered_scanned_code_verifies_to_the_same_claims(claims in arb_claims(), seed in 1u8..=255) {
        let s = signer(seed);
        let enc = qr::encode(&claims, &s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let png = qr::render::render_png(&enc.text, 4).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let texts = qr::scan::scan_bytes(&png).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&texts, &vec![enc.text.clone()]);
        let trust = trust_of(&s, &claims.iss);
        let v = Verifier::new(Profile::medcard(), &trust)
            .verify(texts.first().map_or("", String::as_str), Clock::new(claims.iat + 1, 0))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(v.claims(), &claims);
        prop_assert_eq!(&v.by().kid, &qr::kid_for(&qr::Signer::public_key(&s)).to_vec());
    }
}
