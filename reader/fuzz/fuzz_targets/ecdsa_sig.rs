//! ECDSA P-256 signatures between the card's DER and COSE's raw r‖s (reader/src/sig.rs): any
//! bytes decode or give a typed `SigError`; what decodes round-trips exactly (DER is strict).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reader::sig;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = sig::der_to_raw(data) {
        let der = sig::raw_to_der(&raw);
        assert_eq!(der.as_deref().ok(), Some(data), "accepted DER re-encodes to itself");
        assert!(sig::from_der(data).is_ok());
    }
    if let Ok(der) = sig::raw_to_der(data) {
        assert_eq!(sig::der_to_raw(&der).ok().as_ref().map(|r| &r[..]), Some(data), "raw round-trips through DER");
        assert!(sig::from_raw(data).is_ok());
    }
    let _ = sig::from_raw(data);
    let _ = sig::from_der(data);
});
