//! The audited bedside operations write exactly the entries `medcard scan` wrote before they
//! moved here (docs/checkin-scan.md "Audit"), and an audit failure is an error, never a record
//! shown unaudited. Records are added with [`records::add_record`], so these also prove its
//! round trip through the scan.
#![allow(clippy::indexing_slicing, clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use super::*;
use crate::audit::{self, Entry};
use crate::category::Category;
use crate::keystore::KeyPurpose;
use crate::records::{self, NewRecord, keywrap};
use crate::scan_flow::Verdict;

const NOW: i64 = 1_800_000_000;
const PATIENT: &str = "P-1";
const ACTOR: &str = "desktop:nurse";

struct Env {
    dir: tempfile::TempDir,
    b: Bedside,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    Keystore::init(dir.path(), "clinic-a", NOW - 100).expect("init");
    let b = Bedside::open(Some(dir.path()), None).expect("open");
    Env { dir, b }
}

fn new_record(category: Category) -> NewRecord {
    NewRecord { patient_id: PATIENT.into(), category, media_type: "text/plain".into(), author: "dr-who".into() }
}

/// Adds `doc` and returns a QR text signed by this clinic pointing at it, valid 600 s.
fn add_and_code(b: &Bedside, doc: &[u8]) -> (records::AddedRecord, String) {
    add_and_code_claiming(b, doc, b.ks.clinic_id())
}

/// [`add_and_code`] with `iss` claimed (signed with this clinic's key all the same).
fn add_and_code_claiming(b: &Bedside, doc: &[u8], iss: &str) -> (records::AddedRecord, String) {
    let added = records::add_record(&b.ks, &b.db, &b.store, &new_record(Category::Labs), doc, NOW - 10, "kiosk").expect("add");
    let row = b.db.record(&added.meta.record_id).expect("row");
    let key =
        keywrap::unwrap(&b.ks.derive_key(KeyPurpose::RecordKeyWrap).expect("clinic keystore"), &added.meta.record_id, &row.wrapped_key)
            .expect("unwrap");
    let claims = qr::Claims {
        iss: iss.to_owned(),
        iat: NOW,
        exp: NOW + 600,
        nbf: None,
        cti: qr::claims::random_cti().expect("cti"),
        pointer: qr::Pointer {
            patient_id: PATIENT.into(),
            locator: added.locator.to_string(),
            record_sha256: *added.locator.digest(),
            content_key: Some(key),
            categories: vec!["labs".into()],
            consent_sha256: [0; 32],
        },
    };
    let text = qr::encode(&claims, &b.ks.issuer_signer().expect("clinic keystore")).expect("encode").text;
    (added, text)
}

fn entries(b: &Bedside) -> Vec<Entry> {
    audit::entries(&b.db, 0, None).expect("entries")
}

/// (kind, actor, subject, outcome, detail) of the entries from `from` on.
fn tail(b: &Bedside, from: usize) -> Vec<(String, String, String, String, String)> {
    entries(b).into_iter().skip(from).map(|e| (e.kind, e.actor, e.subject, e.outcome, e.detail)).collect()
}

fn want(kind: &str, subject: &str, outcome: &str, detail: &str) -> (String, String, String, String, String) {
    (kind.into(), ACTOR.into(), subject.into(), outcome.into(), detail.into())
}

/// Makes every later audit append fail (as a full disk or a locked database would).
fn break_audit(b: &Bedside) {
    b.db.conn()
        .execute_batch("CREATE TRIGGER no_audit BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit disabled'); END;")
        .expect("trigger");
}

#[test]
fn verified_scan_audits_qr_scanned_and_a_record_read_per_record() {
    let mut e = env();
    let (added, text) = add_and_code(&e.b, b"HbA1c 5.4 %");
    let before = entries(&e.b).len();
    let s = e.b.scan_text(&text, NOW, false, ACTOR).expect("verified");
    assert_eq!(s.rows.len(), 1);
    assert_eq!(s.rows[0].document, b"HbA1c 5.4 %", "the added document, byte for byte");
    let qr_id = hex::encode(&s.verified.claims().cti);
    let kid = hex::encode(e.b.ks.issuer_kid());
    assert_eq!(
        tail(&e.b, before),
        vec![
            want("qr.scanned", PATIENT, "ok", &format!("qr={qr_id} iss=clinic-a kid={kid} records=1")),
            want("record.read", &added.locator.to_string(), "ok", &format!("qr={qr_id} cache={qr_id} patient={PATIENT}")),
        ]
    );
    assert_eq!(e.b.db.cache_count().expect("count"), 1);
}

#[test]
fn code_from_an_unknown_issuer_is_refused_and_audited_as_issuer_unknown() {
    let mut e = env();
    let stranger = env();
    let (_, foreign) = add_and_code(&stranger.b, b"doc");
    let before = entries(&e.b).len();
    let err = e.b.scan_text(&foreign, NOW, false, ACTOR).expect_err("refused");
    let BedsideError::Refused(scan) = &err else { panic!("expected a refusal, got {err}") };
    assert_eq!(scan.verdict(), Verdict::IssuerUnknown);
    assert_eq!(tail(&e.b, before), vec![want("qr.refused", "-", "issuer-unknown", &scan.to_string())]);
    assert_eq!(e.b.db.cache_count().expect("count"), 0);
}

#[test]
fn code_signed_by_a_trusted_partner_in_our_name_is_refused_and_audited_as_issuer_mismatch() {
    let mut e = env();
    let partner = tempfile::tempdir().expect("tempdir");
    Keystore::init(partner.path(), "clinic-b", NOW - 100).expect("init");
    let p = Bedside::open(Some(partner.path()), None).expect("open");
    crate::clinic::ClinicState::new(&e.b.ks).add_trust_file("clinic-b.der", p.ks.ca_certificate_der()).expect("trust");
    let (_, forged) = add_and_code_claiming(&p, b"doc", "clinic-a");
    let before = entries(&e.b).len();
    let err = e.b.scan_text(&forged, NOW, false, ACTOR).expect_err("refused");
    let BedsideError::Refused(scan) = &err else { panic!("expected a refusal, got {err}") };
    assert!(matches!(scan, ScanError::Qr(qr::VerifyError::IssuerMismatch { .. })), "{scan}");
    assert_eq!(scan.verdict(), Verdict::Invalid);
    assert!(scan.advice().contains("another clinic's name"), "{}", scan.advice());
    assert_eq!(tail(&e.b, before), vec![want("qr.refused", "-", "issuer-mismatch", &scan.to_string())]);
    assert_eq!(e.b.db.cache_count().expect("count"), 0);
}

#[test]
fn one_time_code_scanned_twice_is_audited_as_already_used() {
    let mut e = env();
    let (_, text) = add_and_code(&e.b, b"doc");
    e.b.scan_text(&text, NOW, false, ACTOR).expect("first");
    let before = entries(&e.b).len();
    let err = e.b.scan_text(&text, NOW + 1, false, ACTOR).expect_err("second");
    assert!(matches!(&err, BedsideError::Refused(ScanError::AlreadyUsed { .. })), "{err}");
    let got = tail(&e.b, before);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.as_str(), got[0].2.as_str(), got[0].3.as_str()), ("qr.refused", "-", "already-used"));
    assert!(got[0].4.contains("already used"), "{}", got[0].4);
}

#[test]
fn refusal_detail_keeps_short_messages_and_cuts_long_ones_after_400_characters() {
    assert_eq!(refusal_detail("bad index".into()), "bad index");
    assert_eq!(refusal_detail("é".repeat(200)), "é".repeat(200), "400 bytes is not more than the limit");
    assert_eq!(refusal_detail("é".repeat(401)), format!("{}...", "é".repeat(400)));
}

#[test]
fn cached_record_is_audited_as_read_and_a_gone_one_as_cache_refused() {
    let mut e = env();
    let (added, text) = add_and_code(&e.b, b"cached doc");
    let s = e.b.scan_text(&text, NOW, false, ACTOR).expect("verified");
    let id = s.rows[0].qr_id.clone();
    let before = entries(&e.b).len();
    let got = e.b.open_cached(&id, NOW + 60, ACTOR).expect("open").expect("still valid");
    assert_eq!(got.document, b"cached doc");
    let after_expiry = e.b.open_cached(&id, NOW + 601, ACTOR).expect("open");
    assert!(after_expiry.is_none(), "expired with the code");
    assert!(e.b.open_cached("no-such-id", NOW, ACTOR).expect("open").is_none());
    assert_eq!(
        tail(&e.b, before),
        vec![
            want("record.read", &added.locator.to_string(), "ok", &format!("cached={id} patient={PATIENT}")),
            want("record.read", &id, "cache-refused", "not in the cache or no longer valid"),
            want("record.read", "no-such-id", "cache-refused", "not in the cache or no longer valid"),
        ]
    );
}

#[test]
fn audit_failure_is_a_typed_error_for_verified_refused_and_cached() {
    let mut e = env();
    let (_, text) = add_and_code(&e.b, b"doc");
    let (_, second) = add_and_code(&e.b, b"doc 2");
    let cached = e.b.scan_text(&second, NOW, false, ACTOR).expect("verified").rows[0].qr_id.clone();
    let before = entries(&e.b).len();
    break_audit(&e.b);
    let verified = e.b.scan_text(&text, NOW, false, ACTOR).expect_err("an unaudited scan must not be shown");
    assert!(matches!(verified, BedsideError::Audit(_)), "{verified}");
    assert!(verified.to_string().starts_with("could not write the audit log: "), "{verified}");
    let refused = e.b.scan_text("MC1:garbage", NOW, false, ACTOR).expect_err("refused");
    assert!(matches!(refused, BedsideError::Audit(_)), "the audit failure wins over the refusal: {refused}");
    let opened = e.b.open_cached(&cached, NOW, ACTOR).expect_err("an unaudited read must not be shown");
    assert!(matches!(opened, BedsideError::Audit(_)), "{opened}");
    assert_eq!(entries(&e.b).len(), before, "nothing half-written");
}

#[test]
fn add_record_round_trips_through_the_index_and_the_store_and_audits_record_added() {
    let e = env();
    let before = entries(&e.b).len();
    let doc = b"{\"resourceType\":\"Observation\"}";
    let added = records::add_record(&e.b.ks, &e.b.db, &e.b.store, &new_record(Category::Labs), doc, NOW, ACTOR).expect("add");
    assert_eq!(added.meta.created, NOW);
    assert_eq!(added.meta.record_id.len(), 32);
    let row = e.b.db.record(&added.meta.record_id).expect("row");
    assert_eq!((&row.meta, &row.locator, row.size), (&added.meta, &added.locator, added.size));
    let key =
        keywrap::unwrap(&e.b.ks.derive_key(KeyPurpose::RecordKeyWrap).expect("clinic keystore"), &added.meta.record_id, &row.wrapped_key)
            .expect("unwrap");
    let sealed = crate::store::RecordStore::get(&e.b.store, &added.locator).expect("get");
    assert_eq!(sealed.len() as u64, added.size);
    let opened = records::open(sealed, PATIENT, &key, "test").expect("open");
    assert_eq!((opened.document(), &opened.meta), (&doc[..], &added.meta));
    assert_eq!(
        tail(&e.b, before),
        vec![want("record.added", &added.meta.record_id, "ok", &format!("patient={PATIENT} category=labs locator={}", added.locator))]
    );
}

#[test]
fn add_record_file_seals_the_same_document_as_add_record() {
    let e = env();
    let path = e.dir.path().join("labs.txt");
    std::fs::write(&path, b"file doc").expect("write");
    let new = NewRecord { media_type: records::media_type_for(&path).into(), ..new_record(Category::Labs) };
    let added = records::add_record_file(&e.b.ks, &e.b.db, &e.b.store, &new, &path, NOW, ACTOR).expect("add");
    assert_eq!(added.meta.media_type, "text/plain");
    let row = e.b.db.record(&added.meta.record_id).expect("row");
    let key =
        keywrap::unwrap(&e.b.ks.derive_key(KeyPurpose::RecordKeyWrap).expect("clinic keystore"), &added.meta.record_id, &row.wrapped_key)
            .expect("unwrap");
    let sealed = crate::store::RecordStore::get(&e.b.store, &added.locator).expect("get");
    assert_eq!(records::open(sealed, PATIENT, &key, "test").expect("open").document(), b"file doc");
    let missing = records::add_record_file(&e.b.ks, &e.b.db, &e.b.store, &new, &e.dir.path().join("missing"), NOW, ACTOR);
    assert!(matches!(missing, Err(records::AddError::Record(records::RecordError::Io { .. }))), "{missing:?}");
}

#[test]
fn add_record_whose_audit_entry_fails_is_not_indexed() {
    let e = env();
    break_audit(&e.b);
    let err = records::add_record(&e.b.ks, &e.b.db, &e.b.store, &new_record(Category::Notes), b"x", NOW, ACTOR).expect_err("unaudited");
    assert!(matches!(err, records::AddError::Audit(_)), "{err}");
    assert!(err.to_string().starts_with("could not write the audit log: "), "{err}");
    assert!(e.b.db.records(Some(PATIENT)).expect("records").is_empty(), "the index row must roll back with its audit entry");
}

#[test]
fn add_record_refuses_metadata_it_cannot_seal() {
    let e = env();
    let bad = NewRecord { media_type: "no-slash".into(), ..new_record(Category::Labs) };
    let err = records::add_record(&e.b.ks, &e.b.db, &e.b.store, &bad, b"x", NOW, ACTOR).expect_err("refused");
    assert!(matches!(err, records::AddError::Record(records::RecordError::MediaType(_))), "{err}");
    assert!(e.b.db.records(None).expect("records").is_empty());
}

#[test]
fn media_type_follows_the_file_extension_in_any_case() {
    let cases = [
        ("a.json", "application/fhir+json"),
        ("a.PDF", "application/pdf"),
        ("a.txt", "text/plain"),
        ("a.text", "text/plain"),
        ("a.xml", "application/fhir+xml"),
        ("a.png", "image/png"),
        ("a.JPeG", "image/jpeg"),
        ("a.jpg", "image/jpeg"),
        ("a.docx", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ];
    for (name, want) in cases {
        assert_eq!(records::media_type_for(Path::new(name)), want, "{name}");
    }
}

#[test]
fn qr_text_from_image_reads_one_code_and_refuses_none_several_or_no_image() {
    use scan_flow::{ImageError, qr_text_from_image};
    let one = qr::render::render_png("MC1:HELLO", 4).expect("png");
    assert_eq!(qr_text_from_image(&one).expect("one code"), "MC1:HELLO");

    let a = qr::render::render_image("MC1:LEFT", 4).expect("img");
    let b = qr::render::render_image("MC1:RIGHT", 4).expect("img");
    let (w, h) = (a.width() + b.width(), a.height().max(b.height()));
    let both = image::GrayImage::from_fn(w, h, |x, y| {
        let px = if x < a.width() { a.get_pixel_checked(x, y) } else { b.get_pixel_checked(x - a.width(), y) };
        px.copied().unwrap_or(image::Luma([255]))
    });
    let mut png = std::io::Cursor::new(Vec::new());
    both.write_to(&mut png, image::ImageFormat::Png).expect("encode");
    let err = qr_text_from_image(png.get_ref()).expect_err("two codes");
    assert!(matches!(err, ImageError::Several { count: 2 }), "{err}");
    assert_eq!(err.to_string(), "2 QR codes in the image: scan exactly one");

    let blank = image::GrayImage::from_pixel(120, 120, image::Luma([255]));
    let mut png = std::io::Cursor::new(Vec::new());
    blank.write_to(&mut png, image::ImageFormat::Png).expect("encode");
    let err = qr_text_from_image(png.get_ref()).expect_err("no code");
    assert!(matches!(err, ImageError::NoCode), "{err}");
    assert_eq!(err.to_string(), "no QR code found: rescan the code");

    let err = qr_text_from_image(b"not an image").expect_err("garbage");
    assert!(matches!(err, ImageError::Unreadable(_)), "{err}");
    assert!(err.to_string().starts_with("not a readable image"), "{err}");
}
