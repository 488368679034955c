use super::*;
use coset::{CoseEncrypt0, CoseEncrypt0Builder, TaggedCborSerializable};

fn meta(category: Category) -> RecordMeta {
    RecordMeta {
        record_id: "0123456789abcdef0123456789abcdef".into(),
        patient_id: "P-1001".into(),
        category,
        media_type: "application/fhir+json".into(),
        created: 1_790_000_000,
        author: "dr.who".into(),
    }
}

fn key(b: u8) -> ContentKey {
    ContentKey::new([b; 32])
}

#[test]
fn sealed_record_opens_with_its_key_and_patient() {
    for len in [0usize, 1, 1024, 70_000] {
        let doc: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&meta(Category::Labs), &doc, &key(1));
        assert!(sealed.is_ok(), "{len}: {sealed:?}");
        let sealed = sealed.unwrap_or_default();
        let opened = open(sealed, "P-1001", &key(1), "test");
        assert!(opened.is_ok(), "{len}: {opened:?}");
        if let Ok(o) = opened {
            assert_eq!(o.document(), doc.as_slice());
            assert_eq!(o.meta, meta(Category::Labs));
        }
    }
}

#[test]
fn wrong_key_or_wrong_patient_is_an_integrity_error() {
    let sealed = seal(&meta(Category::Notes), b"hello", &key(1)).unwrap_or_default();
    assert!(matches!(open(sealed.clone(), "P-1001", &key(2), "r"), Err(RecordError::Integrity { .. })));
    assert!(matches!(open(sealed, "P-1002", &key(1), "r"), Err(RecordError::Integrity { .. })));
}

#[test]
fn every_single_byte_flip_fails_to_open() {
    let sealed = seal(&meta(Category::Allergies), b"penicillin allergy", &key(1)).unwrap_or_default();
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        if let Some(b) = bad.get_mut(i) {
            *b ^= 0x01;
        }
        assert!(open(bad, "P-1001", &key(1), "r").is_err(), "flip at byte {i} was not detected");
    }
}

#[test]
fn every_truncation_fails_to_open() {
    let sealed = seal(&meta(Category::Allergies), b"x", &key(1)).unwrap_or_default();
    for n in 0..sealed.len() {
        assert!(open(sealed.get(..n).unwrap_or_default().to_vec(), "P-1001", &key(1), "r").is_err(), "prefix {n}");
    }
}

#[test]
fn two_seals_of_the_same_document_use_different_nonces() {
    let a = seal(&meta(Category::Labs), b"same", &key(1)).unwrap_or_default();
    let b = seal(&meta(Category::Labs), b"same", &key(1)).unwrap_or_default();
    assert_ne!(a, b);
    let (ea, eb) = (parse_envelope(&a, "a"), parse_envelope(&b, "b"));
    assert!(ea.is_ok() && eb.is_ok());
    if let (Ok(ea), Ok(eb)) = (ea, eb) {
        assert_ne!(ea.nonce, eb.nonce);
    }
}

/// Independent check: coset parses our container, and aes-gcm's allocating API over coset's own
/// Enc_structure decrypts it (no code of ours on that path except `external_aad`).
#[test]
fn coset_parses_and_decrypts_our_container() {
    use aes_gcm::aead::Aead;
    let m = meta(Category::Imaging);
    let sealed = seal(&m, b"report text", &key(5)).unwrap_or_default();
    let msg = CoseEncrypt0::from_tagged_slice(&sealed);
    assert!(msg.is_ok(), "{msg:?}");
    let Ok(msg) = msg else { return };
    assert_eq!(msg.protected.header.alg, Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::A256GCM)));
    assert_eq!(msg.unprotected.iv.len(), 12);
    let aad = external_aad(&m.patient_id, m.category, &m.record_id);
    let cipher = Aes256Gcm::new(key(5).as_bytes().into());
    let nonce = Nonce::try_from(msg.unprotected.iv.as_slice());
    assert!(nonce.is_ok());
    let Ok(nonce) = nonce else { return };
    let pt = msg.decrypt_ciphertext(
        &aad,
        || "no ciphertext",
        |ct, enc| cipher.decrypt(&nonce, aes_gcm::aead::Payload { msg: ct, aad: enc }).map_err(|_| "tag"),
    );
    assert!(pt.is_ok(), "{pt:?}");
    let value: Result<ciborium::Value, _> = ciborium::from_reader(pt.unwrap_or_default().as_slice());
    assert!(value.is_ok());
    let doc =
        value.ok().and_then(|v| v.into_map().ok()?.into_iter().find(|(k, _)| k == &ciborium::Value::Integer(7.into())).map(|(_, v)| v));
    assert_eq!(doc, Some(ciborium::Value::Bytes(b"report text".to_vec())));
}

/// Independent check the other way: a container built by coset + aes-gcm opens with [`open`].
#[test]
fn container_built_by_coset_opens() {
    use aes_gcm::aead::Aead;
    let m = meta(Category::Summary);
    let mut pt = plaintext_prefix(&m, 3);
    pt.extend_from_slice(b"abc");
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::A256GCM)
        .value(LABEL_RECORD_ID, ciborium::Value::Text(m.record_id.clone()))
        .value(LABEL_CATEGORY, ciborium::Value::Text("summary".into()))
        .build();
    let nonce = [4u8; 12];
    let cipher = Aes256Gcm::new(key(6).as_bytes().into());
    let aad = external_aad(&m.patient_id, m.category, &m.record_id);
    let msg = CoseEncrypt0Builder::new()
        .protected(protected)
        .unprotected(HeaderBuilder::new().iv(nonce.to_vec()).build())
        .create_ciphertext(&pt, &aad, |p, enc| {
            cipher.encrypt(&Nonce::from(nonce), aes_gcm::aead::Payload { msg: p, aad: enc }).unwrap_or_default()
        })
        .build();
    let bytes = msg.to_tagged_vec().unwrap_or_default();
    let opened = open(bytes, &m.patient_id, &key(6), "coset");
    assert!(opened.is_ok(), "{opened:?}");
    assert_eq!(opened.map(|o| o.document().to_vec()).unwrap_or_default(), b"abc");
}

#[test]
fn unknown_protected_header_and_wrong_algorithm_are_refused() {
    let m = meta(Category::Summary);
    for protected in [
        HeaderBuilder::new().algorithm(iana::Algorithm::A128GCM).build(),
        HeaderBuilder::new()
            .algorithm(iana::Algorithm::A256GCM)
            .value(LABEL_RECORD_ID, ciborium::Value::Text(m.record_id.clone()))
            .value(LABEL_CATEGORY, ciborium::Value::Text("summary".into()))
            .value(-70000, ciborium::Value::Null)
            .build(),
    ] {
        let msg = CoseEncrypt0Builder::new()
            .protected(protected)
            .unprotected(HeaderBuilder::new().iv(vec![0; 12]).build())
            .ciphertext(vec![0; 32])
            .build();
        let bytes = msg.to_tagged_vec().unwrap_or_default();
        assert!(matches!(open(bytes, "P-1001", &key(1), "r"), Err(RecordError::Header { .. })));
    }
}

#[test]
fn seal_file_matches_seal_for_the_same_document() {
    let dir = tempfile::tempdir();
    assert!(dir.is_ok());
    let Ok(dir) = dir else { return };
    let path = dir.path().join("doc.pdf");
    assert!(std::fs::write(&path, b"%PDF-1.7 fake").is_ok());
    let sealed = seal_file(&meta(Category::Imaging), &path, &key(8));
    assert!(sealed.is_ok());
    let opened = open(sealed.unwrap_or_default(), "P-1001", &key(8), "f");
    assert_eq!(opened.map(|o| o.document().to_vec()).unwrap_or_default(), b"%PDF-1.7 fake");
    assert!(matches!(seal_file(&meta(Category::Imaging), &dir.path().join("missing"), &key(8)), Err(RecordError::Io { .. })));
}

proptest::proptest! {
    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = open(bytes, "P-1001", &key(1), "fuzz");
    }

    #[test]
    fn open_never_panics_on_mutated_containers(pos in 0usize..200, val in proptest::prelude::any::<u8>()) {
        let mut sealed = seal(&meta(Category::Labs), b"doc", &key(1)).unwrap_or_default();
        let n = sealed.len();
        if let Some(b) = sealed.get_mut(pos % n) { *b = val; }
        let _ = open(sealed, "P-1001", &key(1), "fuzz");
    }
}
