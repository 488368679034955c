//! Opening a record container from the store (reader/src/records/): strict COSE_Encrypt0
//! envelope parse, protected header (alg, record id, category), AES-256-GCM with the patient
//! and record bound in the AAD; and unwrapping a record key (records/keywrap.rs). Seeds are
//! records sealed by the real `records::seal` with `common::RECORD_KEY` (`seedgen`), so an
//! unmutated seed opens and the fuzzer reaches the document check after decryption.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use reader::records;
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let key = qr::ContentKey::new(common::RECORD_KEY);
    if let Ok(env) = records::parse_envelope(data, "fuzz") {
        let _ = (env.record_id.len(), env.category);
    }
    if let Ok(opened) = records::open(data.to_vec(), common::PATIENT_ID, &key, "fuzz") {
        let _ = opened.document().len();
    }
    let wrap = Zeroizing::new(common::RECORD_KEY);
    let _ = records::keywrap::unwrap(&wrap, "rec-1", data);
});
