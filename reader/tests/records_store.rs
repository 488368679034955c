//! Records end to end in-process: seal → store → index (wrapped key) → get, and the bedside path
//! verified QR → store → cache, including the "flip any byte: nothing is cached" acceptance.
#![allow(clippy::indexing_slicing, clippy::panic)]

use qr::time::Clock;
use qr::verify::{Profile, Verifier};
use qr::{Claims, Pointer, SoftwareSigner, TrustList};
use reader::category::Category;
use reader::db::ClinicDb;
use reader::records::{self, RecordMeta, fetch};
use reader::store::{DirStore, RecordStore, StoreError};
use zeroize::Zeroizing;

type R = Result<(), Box<dyn std::error::Error>>;
const NOW: i64 = 1_790_000_000;

struct Clinic {
    dir: tempfile::TempDir,
    db: ClinicDb,
    store: DirStore,
    wrap: Zeroizing<[u8; 32]>,
    signer: SoftwareSigner,
}

fn clinic() -> Result<Clinic, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = ClinicDb::open(&dir.path().join("clinic.db"), &Zeroizing::new([1; 32]))?;
    let store = DirStore::open(&dir.path().join("records"))?;
    Ok(Clinic { dir, db, store, wrap: Zeroizing::new([2; 32]), signer: SoftwareSigner::from_scalar(&[7; 32])? })
}

fn add(
    c: &Clinic,
    patient: &str,
    category: Category,
    doc: &[u8],
) -> Result<(RecordMeta, reader::store::Locator, records::ContentKey), Box<dyn std::error::Error>> {
    let meta = RecordMeta {
        record_id: records::new_record_id()?,
        patient_id: patient.into(),
        category,
        media_type: "text/plain".into(),
        created: NOW,
        author: "dr.test".into(),
    };
    let key = records::new_content_key()?;
    let sealed = records::seal(&meta, doc, &key)?;
    let loc = c.store.put(&sealed)?;
    c.db.insert_record(&meta, &loc, sealed.len() as u64, &key, &c.wrap)?;
    Ok((meta, loc, key))
}

fn get(c: &Clinic, record_id: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let row = c.db.record(record_id)?;
    let key = records::keywrap::unwrap(&c.wrap, record_id, &row.wrapped_key)?;
    let bytes = c.store.get(&row.locator)?;
    let opened = records::open(bytes, &row.meta.patient_id, &key, &row.locator.to_string())?;
    assert_eq!(opened.meta, row.meta);
    Ok(opened.document().to_vec())
}

#[test]
fn add_store_get_round_trips_0_bytes_1_kib_and_a_megabyte() -> R {
    let c = clinic()?;
    for len in [0usize, 1024, 1 << 20] {
        let doc: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let (meta, _, _) = add(&c, "P-1", Category::Labs, &doc)?;
        assert_eq!(get(&c, &meta.record_id)?, doc, "{len} bytes");
    }
    Ok(())
}

fn qr_for(
    c: &Clinic,
    meta: &RecordMeta,
    loc: &reader::store::Locator,
    key: &records::ContentKey,
    cats: &[&str],
) -> Result<qr::Verified, Box<dyn std::error::Error>> {
    let claims = Claims {
        iss: "clinic-a".into(),
        iat: NOW,
        exp: NOW + 600,
        nbf: None,
        cti: vec![0x42; 16],
        pointer: Pointer {
            patient_id: meta.patient_id.clone(),
            locator: loc.to_string(),
            record_sha256: *loc.digest(),
            content_key: Some(records::ContentKey::new(*key.as_bytes())),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            consent_sha256: [9; 32],
        },
    };
    let enc = qr::encode(&claims, &c.signer)?;
    let mut trust = TrustList::new();
    trust.add_key("clinic-a", qr::Signer::public_key(&c.signer));
    Ok(Verifier::new(Profile::medcard(), &trust).verify(&enc.text, Clock::new(NOW + 60, 0))?)
}

#[test]
fn verified_pointer_fetches_into_the_cache_with_provenance() -> R {
    let c = clinic()?;
    let (meta, loc, key) = add(&c, "P-2", Category::Allergies, b"penicillin")?;
    let v = qr_for(&c, &meta, &loc, &key, &["allergies", "labs"])?;
    let row = fetch::fetch_into_cache(&c.db, &c.store, &v, NOW + 61)?;
    assert_eq!(row.document, b"penicillin");
    assert_eq!(row.expires_at, NOW + 600);
    assert_eq!(row.issuer_kid, qr::kid_for(&qr::Signer::public_key(&c.signer)).to_vec());
    assert_eq!(c.db.cache_lookup("P-2", NOW + 100)?.len(), 1);
    Ok(())
}

#[test]
fn category_outside_the_code_is_not_cached() -> R {
    let c = clinic()?;
    let (meta, loc, key) = add(&c, "P-3", Category::Imaging, b"scan")?;
    let v = qr_for(&c, &meta, &loc, &key, &["labs"])?;
    assert!(matches!(fetch::fetch_into_cache(&c.db, &c.store, &v, NOW), Err(fetch::FetchError::NotCovered { .. })));
    assert_eq!(c.db.cache_count()?, 0);
    Ok(())
}

/// Acceptance: flip any single byte of a stored record → a clear integrity error; nothing cached.
#[test]
fn flipping_any_byte_of_the_stored_record_fails_with_an_integrity_error_and_caches_nothing() -> R {
    let c = clinic()?;
    let (meta, loc, key) = add(&c, "P-4", Category::Notes, b"ward note: stable overnight")?;
    let v = qr_for(&c, &meta, &loc, &key, &["notes"])?;
    let path = c.store.path_of(&loc);
    let good = std::fs::read(&path)?;
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0xFF;
        std::fs::write(&path, &bad)?;
        match fetch::fetch_into_cache(&c.db, &c.store, &v, NOW) {
            Err(fetch::FetchError::Store(StoreError::DigestMismatch { .. })) => {}
            other => panic!("byte {i}: expected an integrity error, got {other:?}"),
        }
        // And directly through the index path too.
        let e = get(&c, &meta.record_id).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("integrity check") && e.contains(&loc.to_string()), "byte {i}: {e}");
    }
    assert_eq!(c.db.cache_count()?, 0, "nothing was cached");
    // Truncated and missing files.
    std::fs::write(&path, &good[..good.len() / 2])?;
    assert!(get(&c, &meta.record_id).is_err());
    std::fs::remove_file(&path)?;
    let e = get(&c, &meta.record_id).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("not in the store"), "{e}");
    let _ = &c.dir;
    Ok(())
}
