//! Kiosk check-in and bedside scan, end to end, through the real smart-card stack:
//! `card-sim serve` → vpcd (reader `Virtual PCD 00 00`, port 35963) → pcscd → `medcard`, driven
//! as a user would. The kiosk and the bedside have separate data directories and share only the
//! record store (`--store`) and the trust list (`trust export` / `trust add`).
//!
//! The card is used once, by a shared fixture, under the process-wide lock
//! `$TMPDIR/medcard-pcscd-vpcd0.lock` (the same lock every test using that reader takes): it
//! issues the card, adds three records, sets consent for two categories, checks in and measures
//! check-in time and APDU count. The bedside tests then need no card: each uses its own bedside
//! data directory (so one-time use is per test) and, where it alters the store, its own copy.
//!
//! Binaries: `MEDCARD` / `CARD_SIM` if set, else the siblings in this target directory (built by
//! `cargo build --workspace` / `cargo test --workspace`), else built into
//! `<target>/medcard-e2e-bins`. Timing runs: `MEDCARD_E2E_RUNS` (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use reader::PcscContext;

#[path = "../../reader/tests/pcscd_support/mod.rs"]
mod pcscd_support;
use pcscd_support::{Lock, READER_00, ServedCard, card_sim, context_for, lock_reader, medcard_bin};

const READER: &str = READER_00.name;
const PIN: &str = "482913";
const PUK: &str = "77120934";
const PATIENT: &str = "P-1001";

fn card_sim_bin() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(card_sim)
}

/// `medcard ARGS --data DIR`, optionally at a given clock.
fn medcard_at(data: &Path, args: &[&str], now: Option<i64>) -> Output {
    let mut c = Command::new(medcard_bin());
    c.args(args).arg("--data").arg(data).stdin(Stdio::null());
    c.env_remove("MEDCARD_NOW");
    if let Some(t) = now {
        c.env("MEDCARD_NOW", t.to_string());
    }
    c.output().unwrap()
}

fn medcard(data: &Path, args: &[&str]) -> Output {
    medcard_at(data, args, None)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "medcard failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// Asserts a refusal: the exit status, and that stderr says `needle`.
fn refused(out: &Output, code: i32, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "expected exit {code}, got {}: {err}", out.status);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(out.stdout.is_empty(), "a refusal printed a document: {:?}", String::from_utf8_lossy(&out.stdout));
    err
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What the kiosk produced, shared by the bedside tests.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    kiosk: PathBuf,
    trust_pem: PathBuf,
    /// (category, document bytes, record id)
    records: Vec<(String, Vec<u8>, String)>,
    /// Check-in for everything consented (allergies + labs: a record index).
    multi_png: PathBuf,
    multi_text: String,
    multi_exp: i64,
    /// Check-in for labs only (one record, pointed at directly).
    labs_text: String,
    labs_locator: String,
    /// Check-in refused for a category outside the consent: stderr.
    not_covered_err: String,
    /// Medians over the timing runs: check-in ms (process wall), card-session ms, APDUs.
    checkin_wall_ms: f64,
    checkin_card_ms: f64,
    checkin_apdus: Vec<u64>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(make_fixture)
}

fn make_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let kiosk = root.join("kiosk");
    ok(&medcard(&kiosk, &["init", "--clinic-id", "clinic-a"]));
    let docs: [(&str, &str, &[u8]); 3] = [
        ("allergies", "allergies.json", b"{\"resourceType\":\"AllergyIntolerance\",\"code\":\"penicillin\"}\n"),
        ("labs", "labs.txt", b"HbA1c 5.4 %\nCRP 2 mg/L\n\x00\xff binary tail"),
        ("notes", "notes.txt", b"psychiatric note: NOT consented\n"),
    ];
    let mut records = Vec::new();
    for (cat, name, body) in docs {
        let f = root.join(name);
        std::fs::write(&f, body).unwrap();
        let v = json(&medcard(&kiosk, &["record", "add", "--patient-id", PATIENT, "--category", cat, "--json", f.to_str().unwrap()]));
        records.push((cat.to_owned(), body.to_vec(), v["record_id"].as_str().unwrap().to_owned()));
    }
    let trust_pem = root.join("clinic-a.pem");
    ok(&medcard(&kiosk, &["trust", "export", "--out", trust_pem.to_str().unwrap()]));

    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let card = root.join("card.bin");
    let o = Command::new(card_sim_bin()).args(["new", "--serial", "7001", "--out"]).arg(&card).output().unwrap();
    assert!(o.status.success(), "card-sim new: {}", String::from_utf8_lossy(&o.stderr));
    let sim = ServedCard::serve(card_sim_bin(), &READER_00, &ctx, &card);
    ok(&medcard(&kiosk, &["card", "issue", "--reader", READER, "--patient-id", PATIENT, "--name", "Ada", "--pin", PIN, "--puk", PUK]));
    ok(&medcard(&kiosk, &["consent", "set", "--reader", READER, "--scope", "allergies,labs", "--pin", PIN]));

    let multi_png = root.join("multi.png");
    let v = json(&medcard(&kiosk, &["checkin", "--reader", READER, "--pin", PIN, "--out", multi_png.to_str().unwrap(), "--json"]));
    assert_eq!(v["index"], true, "two records: a record index");
    let multi_text = v["text"].as_str().unwrap().to_owned();
    let multi_exp = v["expires_at"].as_i64().unwrap();
    let labs_png = root.join("labs.png");
    let v = json(&medcard(
        &kiosk,
        &["checkin", "--reader", READER, "--pin", PIN, "--categories", "labs", "--out", labs_png.to_str().unwrap(), "--json"],
    ));
    assert_eq!(v["index"], false, "one record: pointed at directly");
    let labs_text = v["text"].as_str().unwrap().to_owned();
    let labs_locator = v["locator"].as_str().unwrap().to_owned();
    let o = medcard(
        &kiosk,
        &["checkin", "--reader", READER, "--pin", PIN, "--categories", "labs,notes", "--out", root.join("no.png").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let not_covered_err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!root.join("no.png").exists(), "a refused check-in wrote a PNG");

    let runs: usize = std::env::var("MEDCARD_E2E_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let (mut wall, mut card_ms, mut apdus) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let png = root.join(format!("t{i}.png"));
        let t = Instant::now();
        let v = json(&medcard(&kiosk, &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap(), "--json"]));
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        card_ms.push(v["card_ms"].as_f64().unwrap());
        apdus.push(v["apdus"].as_u64().unwrap());
    }
    drop(sim);
    let f = Fixture {
        _dir: dir,
        root,
        kiosk,
        trust_pem,
        records,
        multi_png,
        multi_text,
        multi_exp,
        labs_text,
        labs_locator,
        not_covered_err,
        checkin_wall_ms: median(wall),
        checkin_card_ms: median(card_ms),
        checkin_apdus: apdus,
    };
    eprintln!(
        "check-in through pcscd ({runs} runs): median wall {:.1} ms (process), median card session {:.1} ms, APDUs {:?}",
        f.checkin_wall_ms, f.checkin_card_ms, f.checkin_apdus
    );
    f
}

/// A fresh bedside device trusting clinic A, sharing the kiosk's store (or `store`).
fn bedside(name: &str, trust: bool) -> PathBuf {
    let f = fixture();
    let b = f.root.join(format!("bedside-{name}"));
    ok(&medcard(&b, &["init", "--clinic-id", &format!("ward-{name}")]));
    if trust {
        // The fingerprint clinic A reads over the phone (issue 13: an add requires it).
        let fp = json(&medcard(&f.kiosk, &["trust", "fingerprint", "--json"]))["fingerprint"].as_str().unwrap().to_owned();
        ok(&medcard(&b, &["trust", "add", f.trust_pem.to_str().unwrap(), "--fingerprint", &fp]));
    }
    b
}

fn store_arg() -> String {
    fixture().kiosk.join("records").to_str().unwrap().to_owned()
}

fn cache_count(b: &Path) -> usize {
    json(&medcard(b, &["cache", "list", "--json"])).as_array().map_or(0, Vec::len)
}

fn audit_has(b: &Path, kind: &str, outcome: &str) -> bool {
    let out = ok(&medcard(b, &["audit", "show"]));
    out.lines().any(|l| l.contains(kind) && l.contains(outcome))
}

fn audit_verifies(d: &Path) {
    let out = ok(&medcard(d, &["audit", "verify"]));
    assert!(out.contains("audit log OK"), "{out}");
}

#[test]
fn checkin_then_bedside_scan_shows_exactly_the_consented_records_byte_identical() {
    let f = fixture();
    let b = bedside("happy", true);
    let out = f.root.join("happy-out");
    let o = medcard(&b, &["scan", f.multi_png.to_str().unwrap(), "--store", &store_arg(), "--out", out.to_str().unwrap()]);
    ok(&o);
    let mut got: Vec<Vec<u8>> = std::fs::read_dir(&out).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    got.sort();
    let mut want: Vec<Vec<u8>> = f.records.iter().filter(|r| r.0 != "notes").map(|r| r.1.clone()).collect();
    want.sort();
    assert_eq!(got, want, "exactly the allergies and labs documents, byte for byte");
    let notes = &f.records.iter().find(|r| r.0 == "notes").unwrap().1;
    assert!(!got.contains(notes), "the unconsented note was shared");
    assert_eq!(cache_count(&b), 2, "both records cached");
    // The same code again, as text: one-time use.
    refused(&medcard(&b, &["scan", "--text", &f.multi_text, "--store", &store_arg()]), 3, "already used");
    // Cached: readable offline by cache id while valid, byte-identical.
    let list = json(&medcard(&b, &["cache", "list", "--json"]));
    for row in list.as_array().unwrap() {
        let id = row["qr_id"].as_str().unwrap();
        let o = medcard(&b, &["scan", "--cached", id]);
        assert!(want.contains(&o.stdout), "cached {id} differs from the original");
        ok(&o);
    }
    assert!(audit_has(&b, "qr.scanned", "ok"));
    assert!(audit_has(&b, "record.read", "ok"));
    assert!(audit_has(&f.kiosk, "qr.issued", "ok"));
    assert!(audit_has(&f.kiosk, "qr.issued", "not-covered"));
    audit_verifies(&b);
    audit_verifies(&f.kiosk);
}

#[test]
fn checkin_refuses_a_category_outside_the_consent_naming_it() {
    let f = fixture();
    assert!(f.not_covered_err.contains("consent does not cover notes"), "{}", f.not_covered_err);
}

#[test]
fn checkin_median_time_and_apdu_count_are_reported() {
    let f = fixture();
    // Figures are printed by the fixture (no timing assertion); the APDU count is deterministic.
    assert!(f.checkin_apdus.windows(2).all(|w| w[0] == w[1]), "APDU count varies: {:?}", f.checkin_apdus);
    assert!(f.checkin_wall_ms > 0.0 && f.checkin_card_ms > 0.0);
}

#[test]
fn cached_record_cannot_be_opened_after_the_qr_expired_and_purge_removes_it() {
    let f = fixture();
    let b = bedside("expiry", true);
    ok(&medcard(&b, &["scan", "--text", &f.labs_text, "--store", &store_arg(), "--json"]));
    let list = json(&medcard(&b, &["cache", "list", "--json"]));
    let id = list[0]["qr_id"].as_str().unwrap().to_owned();
    let later = f.multi_exp + 3600;
    let o = medcard_at(&b, &["scan", "--cached", &id], Some(later));
    refused(&o, 1, "not available");
    assert_eq!(cache_count(&b), 0, "the expired record was purged when it was refused");
    assert!(audit_has(&b, "record.read", "cache-refused"));
}

#[test]
fn one_time_qr_scanned_twice_is_refused_the_second_time() {
    let f = fixture();
    let b = bedside("twice", true);
    ok(&medcard(&b, &["scan", "--text", &f.labs_text, "--store", &store_arg(), "--json"]));
    let o = medcard(&b, &["scan", "--text", &f.labs_text, "--store", &store_arg()]);
    refused(&o, 3, "already used");
    assert_eq!(cache_count(&b), 1, "the second scan cached nothing more");
    assert!(audit_has(&b, "qr.refused", "already-used"));
}

#[test]
fn qr_from_a_clinic_not_in_the_trust_list_is_issuer_unknown_and_nothing_is_cached() {
    let f = fixture();
    let b = bedside("untrusted", false);
    let o = medcard(&b, &["scan", "--text", &f.labs_text, "--store", &store_arg()]);
    refused(&o, 4, "issuer unknown");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "issuer-unknown"));
}

/// `medcard qr ...` (no data directory).
fn medcard_qr(args: &[&str]) -> Output {
    Command::new(medcard_bin()).arg("qr").args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn forged_qr_signed_by_an_untrusted_key_is_refused_as_issuer_unknown() {
    // A forger makes a well-formed code naming clinic A as issuer and pointing at a real record,
    // signed with his own key: its kid is in no trust list, so the bedside refuses it.
    let f = fixture();
    let b = bedside("forged", true);
    let key = f.root.join("forger.key");
    ok(&medcard_qr(&["keygen", key.to_str().unwrap()]));
    let digest = f.labs_locator.rsplit('/').next().unwrap();
    let text = ok(&medcard_qr(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--iss",
        "clinic-a",
        "--patient",
        PATIENT,
        "--locator",
        &f.labs_locator,
        "--record-sha256",
        digest,
        "--consent-sha256",
        &"00".repeat(32),
        "--category",
        "labs",
        "--content-key",
        &"11".repeat(32),
    ]));
    let o = medcard(&b, &["scan", "--text", text.trim(), "--store", &store_arg()]);
    refused(&o, 4, "no trusted key has kid");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "issuer-unknown"));
}

#[test]
fn qr_with_one_altered_character_is_invalid_and_nothing_is_cached() {
    let f = fixture();
    let b = bedside("flip", true);
    // Change one base45 character in the middle (a bit flip of the code's content).
    let mut chars: Vec<char> = f.labs_text.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let text: String = chars.into_iter().collect();
    let o = medcard(&b, &["scan", "--text", &text, "--store", &store_arg()]);
    refused(&o, 3, "INVALID");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "invalid-"));
}

#[test]
fn expired_qr_is_refused_with_advice_to_check_in_again() {
    let f = fixture();
    let b = bedside("expired", true);
    let o = medcard_at(&b, &["scan", "--text", &f.labs_text, "--store", &store_arg()], Some(f.multi_exp + 600));
    let err = refused(&o, 3, "expired");
    assert!(err.contains("check in again"), "{err}");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "expired-or-not-yet-valid"));
}

#[test]
fn qr_from_the_future_is_refused() {
    let f = fixture();
    let b = bedside("future", true);
    let o = medcard_at(&b, &["scan", "--text", &f.labs_text, "--store", &store_arg()], Some(f.multi_exp - 3 * 3600));
    refused(&o, 3, "INVALID");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "expired-or-not-yet-valid"));
}

#[test]
fn tampered_record_ciphertext_in_the_store_is_refused_and_nothing_is_cached() {
    let f = fixture();
    let b = bedside("tamper", true);
    // The bedside's own copy of the store, with one byte of the labs record flipped.
    let store = f.root.join("store-tampered");
    let o = Command::new("cp").arg("-a").arg(f.kiosk.join("records")).arg(&store).status().unwrap();
    assert!(o.success());
    let hex = f.labs_locator.rsplit('/').next().unwrap();
    let path = store.join("sha256").join(&hex[..2]).join(hex);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len() - 20;
    bytes[n] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let o = medcard(&b, &["scan", "--text", &f.labs_text, "--store", store.to_str().unwrap()]);
    refused(&o, 3, "INVALID");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "store-integrity"));
}

#[test]
fn hc1_code_is_refused_as_not_a_medcard_code() {
    let b = bedside("hc1", true);
    let o = medcard(
        &b,
        &[
            "scan",
            "--text",
            "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOO6+IUKRG*I.I5BROCWAAT4V22F/8X*G3M9JUPY0BX/KR96R/S09T./0LWTKD33236J3TA3M*4VV2 73-E3GG396B-43O058YIB73A*G3W19UEBY5:PI0EGSP4*2DN43U*0CEBQ/GXQFY73CIBC:G 7376BXBJBAJ UNFMJCRN0H3PQN*E33H3OA70M3FMJIJN523.K5QZ4A+2XEN QT QTHC31M3+E32R44$28A9H0D3ZCL4JMYAZ+S-A5$XKX6T2YC 35H/ITX8GL2-LH/CJTK96L6SR9MU9RFGJA6Q3QR$P2OIC0JVLA8J3ET3:H3A+2+33U SAAUOT3TPTO4UBZIC0JKQTL*QDKBO.AI9BVYTOCFOPS4IJCOT0$89NT2V457U8+9W2KQ-7LF9-DF07U$B97JJ1D7WKP/HLIJLRKF1MFHJP7NVDEBU1J*Z222E.GJF67Z JA6B.38O4BH*HB0EGLE2%V -3O+J3.PI2G:M1SSP2Y3D38-G9C+Q+CRV9ASHC.2A%6LXPRR:G6N8I0OBV3C%6/PFH%CZCH+DNL+2QFW9MK1T72R9BQD2G5H1LN5CYB%3O+XH8I5TB7+ZBL7LP6N5UJF6YOBSYDUE5IA9SF1M0P",
        ],
    );
    refused(&o, 3, "MC1:");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "invalid-prefix"));
}

#[test]
fn zip_bomb_qr_text_is_refused_without_inflating_it() {
    use std::io::Write;
    let b = bedside("bomb", true);
    // 16 MiB of zeros compress to ~16 KiB: too long for a QR code; 1 MiB compresses to ~1 KiB.
    for size in [1usize << 20, 16 << 20] {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; size]).unwrap();
        let text = format!("MC1:{}", base45::encode(z.finish().unwrap()));
        let o = medcard(&b, &["scan", "--text", &text]);
        refused(&o, 3, "INVALID");
    }
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "too-long") || audit_has(&b, "qr.refused", "invalid-zlib"));
    assert!(audit_has(&b, "qr.refused", "invalid-zlib"), "the 1 MiB bomb fits a QR's length and is stopped by the inflate cap");
}

#[test]
fn bedside_scan_of_a_png_median_time_is_reported() {
    let f = fixture();
    let b = bedside("timing", true);
    let runs: usize = std::env::var("MEDCARD_E2E_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let o = medcard(&b, &["scan", f.multi_png.to_str().unwrap(), "--store", &store_arg(), "--reusable"]);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ok(&o);
        assert!(!o.stdout.is_empty());
    }
    eprintln!("bedside scan PNG -> stdout ({runs} runs, process wall): median {:.1} ms", median(ms));
    assert_eq!(cache_count(&b), 2, "rescans replace their cache rows");
}

// ---- kiosk attacks: each test has its own clinic and card, under the reader lock ----

/// A kiosk with an issued card served on the reader (and one record in labs), holding the lock.
/// Fields drop in order: the card is removed before the lock is released.
struct Kiosk {
    sim: Option<ServedCard>,
    root: PathBuf,
    data: PathBuf,
    card: PathBuf,
    _dir: tempfile::TempDir,
    _lock: Lock,
}

impl Kiosk {
    fn new(serial: u32) -> Kiosk {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let data = root.join("kiosk");
        ok(&medcard(&data, &["init", "--clinic-id", "clinic-k"]));
        let doc = root.join("labs.txt");
        std::fs::write(&doc, b"labs").unwrap();
        ok(&medcard(&data, &["record", "add", "--patient-id", PATIENT, "--category", "labs", doc.to_str().unwrap()]));
        let lock = lock_reader(&READER_00);
        let card = root.join("card.bin");
        let o = Command::new(card_sim_bin()).args(["new", "--serial", &serial.to_string(), "--out"]).arg(&card).output().unwrap();
        assert!(o.status.success());
        let mut k = Kiosk { sim: None, root, data, card, _dir: dir, _lock: lock };
        k.serve();
        ok(&medcard(&k.data, &["card", "issue", "--reader", READER, "--patient-id", PATIENT, "--name", "Ada", "--pin", PIN, "--puk", PUK]));
        k
    }

    fn serve(&mut self) {
        let ctx = context_for(&READER_00);
        self.sim = Some(ServedCard::serve(card_sim_bin(), &READER_00, &ctx, &self.card));
    }

    fn checkin(&self, pin: &str) -> (Output, PathBuf) {
        let png = self.root.join("qr.png");
        let _ = std::fs::remove_file(&png);
        (medcard(&self.data, &["checkin", "--reader", READER, "--pin", pin, "--out", png.to_str().unwrap()]), png)
    }
}

#[test]
fn kiosk_refuses_a_revoked_card() {
    let k = Kiosk::new(7101);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    ok(&medcard(&k.data, &["card", "revoke", "--serial", "7101", "--reason", "lost"]));
    let (o, png) = k.checkin(PIN);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("revoked"), "{err}");
    assert!(!png.exists(), "a refused check-in wrote a QR code");
    assert!(audit_has(&k.data, "card.verified", "revoked"));
}

#[test]
fn kiosk_wrong_pin_three_times_blocks_the_card_and_issues_nothing() {
    let k = Kiosk::new(7102);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    let mut last = String::new();
    for _ in 0..3 {
        let (o, png) = k.checkin("000000");
        assert_eq!(o.status.code(), Some(1));
        assert!(!png.exists());
        last = String::from_utf8_lossy(&o.stderr).into_owned();
    }
    assert!(last.contains("0 tries left"), "{last}");
    let (o, png) = k.checkin(PIN);
    assert_eq!(o.status.code(), Some(1), "the right PIN after blocking must not check in");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.to_lowercase().contains("blocked"), "{err}");
    assert!(!png.exists());
    assert!(audit_has(&k.data, "card.blocked", ""));
    assert!(!audit_has(&k.data, "qr.issued", "ok"));
    // The access alerts name the wrong PINs on this card.
    let alerts = json(&medcard(&k.data, &["audit", "alerts", "--json"]));
    let pin = alerts.as_array().unwrap().iter().find(|a| a["rule"] == "pin-failures").expect("a pin-failures alert");
    assert_eq!(pin["subject"], "7102");
    assert!(pin["entries"].as_array().unwrap().len() >= 3, "{pin}");
}

#[test]
fn kiosk_refuses_when_consent_is_revoked() {
    let k = Kiosk::new(7103);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    ok(&medcard(&k.data, &["consent", "revoke", "--reader", READER, "--pin", PIN]));
    let (o, png) = k.checkin(PIN);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("consent is revoked"), "{err}");
    assert!(!png.exists());
    assert!(audit_has(&k.data, "qr.issued", "consent-revoked"));
}

#[test]
fn kiosk_refuses_an_old_consent_version_replayed_from_a_copy_of_the_card() {
    let mut k = Kiosk::new(7104);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    // A copy of the card made while consent version 1 (labs) was on it.
    let copy = k.root.join("copy.bin");
    std::fs::copy(&k.card, &copy).unwrap();
    ok(&medcard(&k.data, &["consent", "revoke", "--reader", READER, "--pin", PIN]));
    // The copy is presented at the kiosk.
    drop(k.sim.take());
    std::fs::copy(&copy, &k.card).unwrap();
    k.serve();
    let (o, png) = k.checkin(PIN);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("older than version"), "{err}");
    assert!(!png.exists());
}

#[test]
fn record_of_another_patient_with_a_valid_digest_is_refused_and_nothing_is_cached() {
    use reader::store::RecordStore;
    // A trusted issuer (here a test key the bedside trusts) signs a code for patient P-1001 whose
    // locator, digest and content key are those of another patient's intact record: the store
    // digest checks out, but the record's AEAD binds the other patient's id.
    let f = fixture();
    let b = bedside("swap", true);
    let key = f.root.join("swap-issuer.key");
    ok(&medcard_qr(&["keygen", key.to_str().unwrap()]));
    // A bare key names no clinic: it is trusted as clinic-x's (the iss it signs below).
    let pubkey = format!("{}.pub.pem", key.display());
    let fp = json(&medcard(&b, &["trust", "fingerprint", &pubkey, "--json"]))["fingerprint"].as_str().unwrap().to_owned();
    ok(&medcard(&b, &["trust", "add", &pubkey, "--clinic-id", "clinic-x", "--fingerprint", &fp]));
    let content_key = [0x42u8; 32];
    let meta = reader::records::RecordMeta {
        record_id: "0123456789abcdef0123456789abcdef".into(),
        patient_id: "P-2002".into(),
        category: reader::category::Category::Labs,
        media_type: "text/plain".into(),
        created: 1,
        author: "lab".into(),
    };
    let sealed = reader::records::seal(&meta, b"another patient's labs", &qr::ContentKey::new(content_key)).unwrap();
    let store_dir = f.root.join("store-swap");
    let store = reader::store::DirStore::open(&store_dir).unwrap();
    let loc = store.put(&sealed).unwrap();
    let text = ok(&medcard_qr(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--iss",
        "clinic-x",
        "--patient",
        PATIENT,
        "--locator",
        &loc.to_string(),
        "--record-sha256",
        &loc.hex(),
        "--consent-sha256",
        &"00".repeat(32),
        "--category",
        "labs",
        "--content-key",
        &hex_of(&content_key),
    ]));
    let o = medcard(&b, &["scan", "--text", text.trim(), "--store", store_dir.to_str().unwrap()]);
    refused(&o, 3, "INVALID");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "record-integrity"));
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn forged_qr_naming_the_trusted_kid_but_signed_by_another_key_is_refused_at_the_signature() {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use sha2::Digest;
    // The real labs code's protected header (clinic A's kid) and claims, re-signed by a forger.
    let f = fixture();
    let b = bedside("forged-kid", true);
    let trust = qr::TrustList::new();
    let cose = qr::Verifier::new(qr::Profile::medcard(), &trust).unwrap_text(&f.labs_text).unwrap();
    let ciborium::Value::Tag(18, inner) = ciborium::from_reader::<ciborium::Value, _>(cose.as_slice()).unwrap() else {
        panic!("kiosk code is not a tagged COSE_Sign1")
    };
    let ciborium::Value::Array(parts) = *inner else { panic!("COSE_Sign1 is not an array") };
    let (protected, payload) = match (&parts[0], &parts[2]) {
        (ciborium::Value::Bytes(p), ciborium::Value::Bytes(c)) => (p.clone(), c.clone()),
        _ => panic!("unexpected COSE_Sign1 layout"),
    };
    let sig_structure = ciborium::Value::Array(vec![
        ciborium::Value::Text("Signature1".into()),
        ciborium::Value::Bytes(protected.clone()),
        ciborium::Value::Bytes(Vec::new()),
        ciborium::Value::Bytes(payload.clone()),
    ]);
    let mut tbs = Vec::new();
    ciborium::into_writer(&sig_structure, &mut tbs).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&tbs).into();
    let forger = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap();
    let sig: p256::ecdsa::Signature = forger.sign_prehash(&digest).unwrap();
    let forged = ciborium::Value::Tag(
        18,
        Box::new(ciborium::Value::Array(vec![
            ciborium::Value::Bytes(protected),
            ciborium::Value::Map(Vec::new()),
            ciborium::Value::Bytes(payload),
            ciborium::Value::Bytes(sig.to_bytes().to_vec()),
        ])),
    );
    let mut bytes = Vec::new();
    ciborium::into_writer(&forged, &mut bytes).unwrap();
    let text = format!("MC1:{}", base45::encode(&bytes));
    let o = medcard(&b, &["scan", "--text", &text, "--store", &store_arg()]);
    refused(&o, 3, "signature does not verify");
    assert_eq!(cache_count(&b), 0);
    assert!(audit_has(&b, "qr.refused", "invalid-signature"));
}

#[test]
fn kiosk_refuses_a_cloned_card_with_copied_credential_consent_and_certificates() {
    use reader::piv::tags;
    use reader::{ManagementKey, Piv, Slot};
    let mut k = Kiosk::new(7105);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    // Copy what any reader can read: credential, consent token, certificates.
    let ctx = PcscContext::establish().unwrap();
    let mut t = ctx.connect(READER).unwrap();
    let (credential, consent, certs) = t
        .transaction(|tx| {
            let mut p = Piv::new(tx);
            let c = p.card_credential().unwrap().unwrap();
            let consent = p.consent_token().unwrap().unwrap();
            let certs: Vec<_> =
                [Slot::PivAuth, Slot::Signature, Slot::CardAuth].into_iter().map(|s| (s, p.certificate(s).unwrap().unwrap())).collect();
            (c, consent, certs)
        })
        .unwrap();
    t.disconnect().unwrap();
    drop(k.sim.take());
    // The forger's card: same serial, its own keys, the copied objects.
    std::fs::remove_file(&k.card).unwrap();
    let o = Command::new(card_sim_bin()).args(["new", "--serial", "7105", "--out"]).arg(&k.card).output().unwrap();
    assert!(o.status.success());
    k.serve();
    let mut t = ctx.connect(READER).unwrap();
    t.transaction(|tx| {
        let mut p = Piv::new(tx);
        p.authenticate_management(&ManagementKey::default_blank()).unwrap();
        for (slot, der) in &certs {
            p.generate(*slot).unwrap();
            p.put_certificate(*slot, der).unwrap();
        }
        p.put_data(tags::CARD_CREDENTIAL, &credential).unwrap();
        p.put_data(tags::CONSENT_TOKEN, &consent).unwrap();
    })
    .unwrap();
    t.disconnect().unwrap();
    let (o, png) = k.checkin(PIN);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not genuine"), "{err}");
    assert!(!png.exists());
    assert!(audit_has(&k.data, "card.verified", "not-genuine"));
    assert!(!audit_has(&k.data, "qr.issued", "ok"));
}

#[test]
fn kiosk_refuses_a_trusted_partner_clinics_card_before_reading_its_consent() {
    // Clinic K issued the card and holds the patient's consent (audience clinic-k). Clinic Z
    // trusts K (for referrals), but its kiosk checks in only on cards Z issued (issue 13: a
    // partner can put any patient id on its cards); the consent is never read.
    let k = Kiosk::new(7106);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    let pem = k.root.join("clinic-k.pem");
    ok(&medcard(&k.data, &["trust", "export", "--out", pem.to_str().unwrap()]));
    let z = k.root.join("clinic-z");
    ok(&medcard(&z, &["init", "--clinic-id", "clinic-z"]));
    let fp = json(&medcard(&k.data, &["trust", "fingerprint", "--json"]))["fingerprint"].as_str().unwrap().to_owned();
    ok(&medcard(&z, &["trust", "add", pem.to_str().unwrap(), "--fingerprint", &fp]));
    let doc = k.root.join("z-labs.txt");
    std::fs::write(&doc, b"labs at z").unwrap();
    ok(&medcard(&z, &["record", "add", "--patient-id", PATIENT, "--category", "labs", doc.to_str().unwrap()]));
    let png = k.root.join("z.png");
    let o = medcard(&z, &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("was issued by clinic \"clinic-k\"") && err.contains("only on cards it issued"), "{err}");
    assert!(!png.exists());
    assert!(audit_has(&z, "card.verified", "foreign-issuer"));
    assert!(!audit_has(&z, "consent.set", "seen"), "the partner card's consent is not remembered");
}

#[test]
fn cached_record_cannot_be_opened_once_the_consent_revocation_is_seen() {
    // Kiosk and bedside on one device here, so the device's database sees the revocation.
    let k = Kiosk::new(7107);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    let png = k.root.join("own.png");
    ok(&medcard(&k.data, &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap()]));
    ok(&medcard(&k.data, &["scan", png.to_str().unwrap()]));
    let list = json(&medcard(&k.data, &["cache", "list", "--json"]));
    let id = list[0]["qr_id"].as_str().unwrap().to_owned();
    ok(&medcard(&k.data, &["scan", "--cached", &id]));
    ok(&medcard(&k.data, &["consent", "revoke", "--reader", READER, "--pin", PIN]));
    refused(&medcard(&k.data, &["scan", "--cached", &id]), 1, "not available");
    assert_eq!(cache_count(&k.data), 0, "the revoked consent's record was purged");
    assert!(audit_has(&k.data, "record.read", "cache-refused"));
}

/// Issue 13: `medcard checkin --out` wrote the QR PNG (it carries the records' key) with mode
/// 0644 and over whatever the path named, the data directory's own files included.
#[test]
fn checkin_png_is_private_never_replaces_a_file_and_never_lands_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    let k = Kiosk::new(7110);
    ok(&medcard(&k.data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    let (o, png) = k.checkin(PIN);
    ok(&o);
    assert_eq!(std::fs::metadata(&png).unwrap().permissions().mode() & 0o777, 0o600, "the QR PNG is readable by others");
    // Over an existing file, or into the data directory: refused before the card session.
    let before = std::fs::read(&png).unwrap();
    let o = medcard(&k.data, &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap()]);
    refused(&o, 1, "already exists");
    assert_eq!(std::fs::read(&png).unwrap(), before);
    let key = k.data.join("keys").join("master.key");
    let secret = std::fs::read(&key).unwrap();
    let o = medcard(&k.data, &["checkin", "--reader", READER, "--pin", PIN, "--out", key.to_str().unwrap()]);
    refused(&o, 1, "data directory");
    assert_eq!(std::fs::read(&key).unwrap(), secret, "checkin --out replaced the master secret");
}
