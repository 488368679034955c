//! The record index a multi-record QR points at (reader/src/checkin.rs `decode_index`): any
//! bytes decode to entries or give a typed `IndexError`; decoded entries re-encode and decode
//! to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reader::checkin::{decode_index, encode_index};

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = decode_index(data) {
        let again = decode_index(&encode_index(&entries));
        let same = again.as_ref().map(|a| {
            a.len() == entries.len()
                && a.iter().zip(&entries).all(|(x, y)| {
                    x.record_id == y.record_id
                        && x.locator == y.locator
                        && x.sha256 == y.sha256
                        && x.key.as_bytes() == y.key.as_bytes()
                        && x.category == y.category
                        && x.media_type == y.media_type
                })
        });
        assert_eq!(same.ok(), Some(true), "a decoded index re-encodes to the same entries");
    }
});
