use super::*;
use crate::sealed::ContentKey;

fn key(b: u8) -> Zeroizing<[u8; 32]> {
    Zeroizing::new([b; 32])
}

fn tmp() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn meta(id: &str, patient: &str) -> RecordMeta {
    RecordMeta {
        record_id: id.into(),
        patient_id: patient.into(),
        category: Category::Labs,
        media_type: "text/plain".into(),
        created: 100,
        author: "dr".into(),
    }
}

fn cache_row(qr: &str, patient: &str, cats: &[Category], consent: [u8; 32], exp: i64, doc: &[u8]) -> CacheRow {
    CacheRow {
        qr_id: qr.into(),
        issuer_kid: vec![1; 8],
        patient_id: patient.into(),
        locator: format!("medcard-store:sha256/{}", "ab".repeat(32)),
        categories: cats.to_vec(),
        consent_sha256: consent.to_vec(),
        verified_at: 10,
        expires_at: exp,
        media_type: "text/plain".into(),
        document: doc.to_vec(),
    }
}

#[test]
fn fresh_database_is_at_the_current_schema_version_and_reopens() {
    let d = tmp();
    let p = d.path().join("clinic.db");
    let db = ClinicDb::open(&p, &key(1));
    assert!(db.is_ok(), "{db:?}");
    assert_eq!(db.ok().and_then(|db| db.schema_version().ok()), Some(SCHEMA_VERSION));
    let again = ClinicDb::open(&p, &key(1));
    assert_eq!(again.ok().and_then(|db| db.schema_version().ok()), Some(SCHEMA_VERSION));
}

#[test]
fn wrong_key_is_refused_with_a_plain_message() {
    let d = tmp();
    let p = d.path().join("clinic.db");
    assert!(ClinicDb::open(&p, &key(1)).is_ok());
    let err = ClinicDb::open(&p, &key(2));
    assert!(matches!(err, Err(DbError::WrongKey { .. })), "{err:?}");
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("wrong database key"), "{msg}");
    assert!(msg.contains("clinic.db"), "{msg}");
}

#[test]
fn newer_schema_is_refused_and_left_unchanged() {
    let d = tmp();
    let p = d.path().join("clinic.db");
    if let Ok(db) = ClinicDb::open(&p, &key(1)) {
        assert!(db.conn().execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1)).is_ok());
    }
    let err = ClinicDb::open(&p, &key(1));
    assert!(matches!(err, Err(DbError::NewerSchema { found, .. }) if found == SCHEMA_VERSION + 1), "{err:?}");
    let err2 = ClinicDb::open(&p, &key(1));
    assert!(matches!(err2, Err(DbError::NewerSchema { .. })), "still newer: nothing was rewritten");
}

/// Acceptance: the file (and its WAL) never holds a patient name or record text in clear.
#[test]
fn database_file_and_wal_do_not_contain_patient_name_or_record_text() {
    let d = tmp();
    let p = d.path().join("clinic.db");
    let name = "Zebedee Quixote-Marchbanks";
    let text = "Allergic to penicillin: anaphylaxis 2019";
    let db = ClinicDb::open(&p, &key(7));
    assert!(db.is_ok());
    let Ok(db) = db else { return };
    let m = RecordMeta { author: name.into(), ..meta("r1", name) };
    assert!(db.insert_record(&m, &Locator::of(b"x"), 1, &ContentKey::new([3; 32]), &key(9)).is_ok());
    assert!(db.cache_put(&cache_row("q1", name, &[Category::Allergies], [0; 32], 1000, text.as_bytes())).is_ok());
    // Keep the connection open so the WAL still holds the pages, then look at every file.
    let mut seen_files = 0;
    for entry in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        seen_files += 1;
        for needle in [name.as_bytes(), text.as_bytes(), b"penicillin", b"Zebedee", b"SQLite format 3"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} contains {:?} in clear",
                entry.path().display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(seen_files >= 2, "expected clinic.db and its -wal, saw {seen_files} files");
    // And the data is there for the right key.
    assert_eq!(db.cache_lookup(name, 0).ok().map(|v| v.len()), Some(1));
}

#[test]
fn records_index_round_trips_and_unwraps_the_content_key() {
    let d = tmp();
    let db = ClinicDb::open(&d.path().join("c.db"), &key(1));
    let Ok(db) = db else { return assert!(db.is_ok()) };
    let ck = ContentKey::new([5; 32]);
    assert!(db.insert_record(&meta("r1", "P1"), &Locator::of(b"a"), 10, &ck, &key(2)).is_ok());
    assert!(db.insert_record(&meta("r2", "P2"), &Locator::of(b"b"), 20, &ck, &key(2)).is_ok());
    let row = db.record("r1");
    assert!(row.is_ok());
    let Ok(row) = row else { return };
    assert_eq!(row.meta, meta("r1", "P1"));
    assert_eq!(row.locator, Locator::of(b"a"));
    assert_eq!(keywrap::unwrap(&key(2), "r1", &row.wrapped_key), Ok(ck));
    assert_eq!(db.records(Some("P2")).map(|v| v.len()).ok(), Some(1));
    assert_eq!(db.records(None).map(|v| v.len()).ok(), Some(2));
    assert!(matches!(db.record("nope"), Err(DbError::NotFound { .. })));
}

#[test]
fn purge_removes_expired_revoked_and_uncovered_rows_only() {
    let d = tmp();
    let db = ClinicDb::open(&d.path().join("c.db"), &key(1));
    let Ok(mut db) = db else { return assert!(db.is_ok()) };
    let tok_a = [0xA; 32];
    let tok_b = [0xB; 32];
    assert!(db.insert_consent("PA", 1, b"tokA", &tok_a, &[Category::Labs], 0, 10_000).is_ok());
    assert!(db.insert_consent("PB", 1, b"tokB", &tok_b, &[Category::Labs, Category::Notes], 0, 10_000).is_ok());
    let rows = [
        cache_row("expired", "PX", &[Category::Labs], [0; 32], 50, b"d"),
        cache_row("ok-unknown-patient", "PX", &[Category::Labs], [0; 32], 5000, b"d"),
        cache_row("ok-covered", "PA", &[Category::Labs], tok_a, 5000, b"d"),
        cache_row("uncovered", "PA", &[Category::Imaging], tok_a, 5000, b"d"),
        cache_row("revoked", "PB", &[Category::Notes], tok_b, 5000, b"d"),
    ];
    for r in &rows {
        assert!(db.cache_put(r).is_ok());
    }
    assert_eq!(db.revoke_consent("PB", 90).ok(), Some(1));
    assert_eq!(db.cache_purge(100).ok(), Some(3));
    let left: Vec<String> = db.cache_list().unwrap_or_default().into_iter().map(|r| r.qr_id).collect();
    assert_eq!(left, vec!["ok-covered".to_string(), "ok-unknown-patient".to_string()]);
    assert_eq!(db.cache_lookup("PA", 100).ok().map(|v| v.len()), Some(1));
    assert_eq!(db.cache_lookup("PA", 6000).ok().map(|v| v.len()), Some(0), "lookup never returns expired rows");
}
