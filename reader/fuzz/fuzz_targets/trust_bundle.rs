//! Trust bundles and trust files another clinic hands in (reader/src/trust.rs, `medcard trust
//! import|add`): PEM armour, strict COSE_Sign1, the payload map and every partner entry, and the
//! certificate / SPKI / COSE_Key reader. Never a panic; an accepted bundle's exporter and partners
//! are consistent (the fingerprint is SHA-256 of the certificate it carries, ids are distinct).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, bytes)) = data.split_first() else { return };
    if which % 2 == 0 {
        if let Ok(b) = reader::trust::open_bundle(bytes) {
            assert_eq!(b.exporter.fingerprint, reader::trust::Fingerprint::of(&b.exporter.data));
            assert!(b.partners.iter().all(|p| p.clinic_id != b.exporter.clinic_id));
        }
    } else {
        let _ = reader::trust::entry_from_file(bytes, None, "fuzz");
        if let Ok(e) = reader::trust::entry_from_file(bytes, Some("fuzz-clinic"), "fuzz") {
            // What is stored reads back as the same entry.
            let again = reader::trust::entry_from_file(&e.file_bytes(), Some(&e.clinic_id), "fuzz");
            assert_eq!(again.ok().map(|a| (a.fingerprint, a.kid)), Some((e.fingerprint, e.kid)));
        }
    }
});
