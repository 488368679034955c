//! Arbitrary bytes and strings into every decoding layer never panic.
//! Cases per layer: `QR_FUZZ_CASES` (default 2000; run once with 100000, see the report).

mod codec_support;
use codec_support::*;

use proptest::prelude::*;
use qr::text::{self, Compression};
use qr::{Clock, Profile, TrustList, Verifier};

fn cfg() -> ProptestConfig {
    ProptestConfig { cases: cases("QR_FUZZ_CASES", 2000), failure_persistence: None, ..ProptestConfig::default() }
}

/// A real code's bytes, mutated: reaches the deeper layers far more often than random bytes.
fn mutated_cose() -> impl Strategy<Value = Vec<u8>> {
    let cose = qr::encode(&claims(), &signer(1)).map(|e| e.cose).unwrap_or_default();
    (proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), any::<prop::sample::Index>()).prop_map(
        move |(edits, cut)| {
            let mut c = cose.clone();
            for (i, b) in edits {
                let at = i.index(c.len().max(1));
                if let Some(x) = c.get_mut(at) {
                    *x = b;
                }
            }
            c.truncate(cut.index(c.len() + 1).max(c.len() / 2));
            c
        },
    )
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn prefix_layer_never_panics(s in any::<String>()) {
        let _ = text::strip_prefix(&s, "MC1:");
    }

    #[test]
    fn base45_layer_never_panics_and_agrees_with_the_base45_crate(s in "[0-9A-Z $%*+./:-]{0,64}|\\PC{0,64}") {
        let ours = text::base45_decode(&s);
        if let Ok(bytes) = &ours {
            prop_assert_eq!(text::base45_encode(bytes), s.clone());
            prop_assert_eq!(base45::decode(&s).ok(), Some(bytes.clone()));
        }
    }

    #[test]
    fn inflate_layer_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = text::decompress(&b, Compression::Optional, 4096);
        let mut z = vec![0x78, 0x9C];
        z.extend_from_slice(&b);
        let _ = text::inflate(&z, 4096);
    }

    #[test]
    fn cose_layer_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256), m in mutated_cose()) {
        let trust = TrustList::new();
        let v = Verifier::new(Profile::medcard(), &trust);
        let _ = v.check_cose(&b);
        let mut trust = TrustList::new();
        trust.add_key("c", qr::Signer::public_key(&signer(1)));
        let v = Verifier::new(Profile::medcard(), &trust);
        let _ = v.check_cose(&m);
    }

    #[test]
    fn claims_layer_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = qr::Claims::from_cbor(&b);
        if let Ok(m) = qr::claims::decode_claims_map(&b) {
            let _ = qr::claims::TimeClaims::from_map(&m);
        }
    }

    #[test]
    fn trust_file_parsing_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = qr::trust::parse_trust_file(&b, "fuzz");
    }

    #[test]
    fn whole_pipeline_and_report_never_panic(s in "MC1:[0-9A-Z $%*+./:-]{0,120}|\\PC{0,80}") {
        let trust = TrustList::new();
        let v = Verifier::new(Profile::medcard(), &trust);
        let _ = v.verify(&s, Clock::new(NOW, 0));
        let _ = v.inspect(&s, Clock::new(NOW, 0), true);
    }
}
