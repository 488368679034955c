//! The card credential and consent token a kiosk reads from a card (reader/src/credential.rs,
//! reader/src/consent.rs), and the staff credential a sign-in reads (reader/src/staff/):
//! COSE_Sign1 structure, content type, kid, signature, strict claims. The signature gate stops
//! most mutations, so the payload decoders are also run directly. The first input byte picks what
//! the rest is (credential, consent token, staff credential, or a bare payload of one of them).
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reader::consent::{self, ConsentToken};
use reader::credential::{self, CardCredential, VerifiedCredential};
use reader::staff::credential::{self as staff_credential, StaffCredential};

fn trust() -> &'static qr::TrustList {
    static T: OnceLock<qr::TrustList> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = qr::TrustList::new();
        let _ = t.add_file(include_bytes!("../fixtures/clinic-ca.der"), "fuzz-clinic");
        t
    })
}

fn card() -> Option<&'static VerifiedCredential> {
    static C: OnceLock<Option<VerifiedCredential>> = OnceLock::new();
    C.get_or_init(|| credential::verify(include_bytes!("../fixtures/credential.cose"), trust(), common::NOW).ok()).as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some((which, bytes)) = data.split_first() else { return };
    match which % 6 {
        0 => {
            if let Ok(v) = credential::verify(bytes, trust(), common::NOW) {
                // Accepted: the payload must survive a re-encode round trip.
                let c = v.credential();
                assert_eq!(CardCredential::from_cbor(&c.to_cbor()).ok().as_ref(), Some(c));
            }
        }
        1 => {
            if let Some(cred) = card() {
                let _ = consent::verify_token(bytes, cred, common::CLINIC_ID, common::NOW);
            }
        }
        2 => {
            if let Ok(c) = CardCredential::from_cbor(bytes) {
                assert_eq!(CardCredential::from_cbor(&c.to_cbor()).ok(), Some(c));
            }
        }
        3 => {
            if let Ok(v) = staff_credential::verify(bytes, trust(), common::CLINIC_ID, common::NOW) {
                let c = v.credential();
                assert_eq!(StaffCredential::from_cbor(&c.to_cbor()).ok().as_ref(), Some(c));
                let _ = c.role();
            }
        }
        4 => {
            if let Ok(c) = StaffCredential::from_cbor(bytes) {
                assert_eq!(StaffCredential::from_cbor(&c.to_cbor()).ok(), Some(c));
            }
        }
        _ => {
            if let Ok(t) = ConsentToken::from_cbor(bytes) {
                assert_eq!(ConsentToken::from_cbor(&t.to_cbor()).ok(), Some(t));
            }
        }
    }
});
