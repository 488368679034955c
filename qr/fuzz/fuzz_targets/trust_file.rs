//! Trust-file import (qr/src/trust.rs `parse_trust_file`): PEM or DER X.509 certificates,
//! SubjectPublicKeyInfo, or a COSE_Key. Any bytes give entries or a typed `TrustError`; every
//! entry holds a P-256 key; a COSE_Key we export imports back to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qr::trust;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = trust::parse_trust_file(data, "fuzz") {
        assert!(!entries.is_empty(), "an accepted file has at least one key");
        for e in &entries {
            let back = trust::from_cose_key(&trust::cose_key_bytes(&e.key), "again");
            assert_eq!(back.ok().and_then(|b| b.first().map(|x| x.key)), Some(e.key), "COSE_Key round-trip");
        }
    }
    let mut list = qr::TrustList::new();
    let _ = list.add_file(data, "fuzz");
});
