//! QR text → claims, the whole verify pipeline (qr/src/verify.rs): prefix → base45 → zlib →
//! COSE_Sign1 → algorithm → kid → signature → CWT claims → time, under the MedCard profile
//! and the EU DCC (`HC1:`) foreign profile, and the layer-by-layer `inspect` report. Every
//! input ends in `Ok` or a typed `VerifyError` naming its layer.
//!
//! The signature gate stops mutated payloads, so the layers after it are also fed directly:
//! the unwrapped COSE bytes to `cose::parse` + `check_algorithm`, and the COSE payload to
//! `Claims::from_cbor` / `decode_claims_map`. Trusted: the clinic key the MedCard seeds were
//! signed with (fixtures/issuer.cose_key) and the DCC signers of the dgc seeds (fixtures/dgc-*.der).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qr::{Clock, Profile, TrustList, Verifier};

/// The time the MedCard seeds are valid at (see reader/fuzz seedgen).
const NOW: i64 = 1_800_000_000;

fn trust() -> &'static TrustList {
    static T: OnceLock<TrustList> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = TrustList::new();
        let _ = t.add_file(include_bytes!("../fixtures/issuer.cose_key"), "fuzz-clinic");
        for (name, der) in [
            ("dgc-1", &include_bytes!("../fixtures/dgc-1.der")[..]),
            ("dgc-2", &include_bytes!("../fixtures/dgc-2.der")[..]),
        ] {
            let _ = t.add_file(der, name);
        }
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let clock = Clock::new(NOW, 300);
    let medcard = Verifier::new(Profile::medcard(), trust());
    if let Ok(v) = medcard.verify(&text, clock) {
        let _ = qr::verify::claims_json(v.claims());
        assert!(v.claims().validate().is_ok(), "verified claims are valid");
    }
    let dgc = Verifier::new(Profile::dgc(), trust());
    let _ = dgc.verify_foreign(&text, Clock::new(1_620_000_000, 300));
    let _ = medcard.inspect(&text, clock, false);
    for v in [&medcard, &dgc] {
        if let Ok(cose) = v.unwrap_text(&text) {
            if let Ok((msg, _)) = qr::cose::parse(&cose) {
                let _ = qr::cose::check_algorithm(&msg, true);
                let _ = qr::cose::kid_of(&msg);
                let payload = msg.payload.as_deref().unwrap_or_default();
                if let Ok(c) = qr::Claims::from_cbor(payload) {
                    let _ = c.validate();
                    let _ = c.to_cbor();
                }
                let _ = qr::claims::decode_claims_map(payload);
            }
        }
    }
});
