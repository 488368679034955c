//! The clinic flows through the real smart-card stack, driving the `medcard` binary as a
//! process: `card-sim serve` → vpcd → pcscd → medcard. Reader `Virtual PCD 00 01` (vpcd port
//! 35964), serialized with the other reader tests by the process-wide lock file
//! `$TMPDIR/medcard-pcscd-vpcd1.lock` (see `pcsc_client.rs`, whose way of finding `card-sim` this
//! file repeats).
//!
//! Covered: init, issue, verify (with and without PIN; APDU count and wall time), consent
//! set/show/revoke, change PIN, 3 wrong PINs block, unblock with the PUK, clone with copied
//! credential and certificates → "not genuine", revoked card refused, card-sim killed in the
//! middle of issuance → clean error, no credential, re-issue works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

mod pcscd_support;
use pcscd_support::*;

use reader::piv::tags;
use reader::{ManagementKey, PcscContext, Piv, Slot};

const MEDCARD: &str = env!("CARGO_BIN_EXE_medcard");
const PIN: &str = "482913";
const PUK: &str = "77120934";

/// A `card-sim serve` process for one card file (kept across restarts) in reader 00 01.
struct Sim {
    served: ServedCard,
    card: PathBuf,
}

impl Sim {
    fn new_card(dir: &Path, name: &str, serial: u32) -> PathBuf {
        let card = dir.join(name);
        let out = Command::new(card_sim()).args(["new", "--serial", &serial.to_string(), "--out"]).arg(&card).output().unwrap();
        assert!(out.status.success(), "card-sim new failed: {}", String::from_utf8_lossy(&out.stderr));
        card
    }

    fn serve(ctx: &PcscContext, card: &Path) -> Sim {
        Sim { served: ServedCard::serve(&card_sim(), &READER_01, ctx, card), card: card.to_path_buf() }
    }

    fn kill(&mut self, ctx: &PcscContext) {
        self.served.kill(ctx);
    }
}

fn medcard(data: &Path, args: &[&str]) -> Output {
    // Every clinic command, change-pin and unblock included, writes the clinic's audit log.
    let mut c = Command::new(MEDCARD);
    c.args(args);
    c.arg("--data").arg(data);
    c.stdin(Stdio::null()).output().unwrap()
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

fn fails(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1; stdout {} stderr {err}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains(needle), "stderr {err:?} does not contain {needle:?}");
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn init(data: &Path, clinic: &str) {
    ok(&medcard(data, &["init", "--clinic-id", clinic]));
}

fn issue(data: &Path, patient: &str) -> serde_json::Value {
    json(&medcard(
        data,
        &["card", "issue", "--reader", READER, "--patient-id", patient, "--name", "Ada Lovelace", "--pin", PIN, "--puk", PUK, "--json"],
    ))
}

#[test]
fn init_issue_verify_consent_and_pin_lifecycle_through_pcscd() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    fails(&medcard(&data, &["init", "--clinic-id", "clinic-a"]), "already exists");
    let card = Sim::new_card(dir.path(), "a.card", 5_500_001);
    let _sim = Sim::serve(&ctx, &card);

    let issued = issue(&data, "P-1001");
    assert_eq!(issued["serial"], 5_500_001);
    assert_eq!(issued["reissue"], false);

    // Kiosk cost: APDUs and wall time of `card verify --pin`, median of 7 runs.
    let mut walls = Vec::new();
    let mut apdus = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let v = json(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", PIN, "--json"]));
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(v["genuine"], true);
        assert_eq!(v["pin_verified"], true);
        assert_eq!(v["patient_id"], "P-1001");
        apdus.push(v["apdus"].as_u64().unwrap());
        sessions.push(v["elapsed_ms"].as_f64().unwrap());
    }
    walls.sort_by(f64::total_cmp);
    sessions.sort_by(f64::total_cmp);
    assert!(apdus.iter().all(|n| *n <= 10), "APDUs per verify: {apdus:?}");
    eprintln!(
        "card verify --pin through pcscd+vpcd: {} APDUs; median of 7 runs: {:.1} ms process start to exit ({walls:.1?}), {:.1} ms card session (connect to disconnect, {sessions:.1?})",
        apdus[0], walls[3], sessions[3]
    );

    // Consent.
    let set = json(&medcard(
        &data,
        &["consent", "set", "--reader", READER, "--scope", "summary,allergies", "--days", "30", "--pin", PIN, "--json"],
    ));
    assert_eq!(set["version"], 1);
    let shown = json(&medcard(&data, &["consent", "show", "--reader", READER, "--json"]));
    assert_eq!(shown["scope"], serde_json::json!(["summary", "allergies"]));
    assert_eq!(shown["audience"], "clinic-a");
    let revoked = json(&medcard(&data, &["consent", "revoke", "--reader", READER, "--pin", PIN, "--json"]));
    assert_eq!(revoked["version"], 2);
    let shown = json(&medcard(&data, &["consent", "show", "--reader", READER, "--json"]));
    assert_eq!(shown["revoked"], true);

    // PIN: change, block with 3 wrong, unblock with the PUK.
    ok(&medcard(&data, &["card", "change-pin", "--reader", READER, "--old-pin", PIN, "--new-pin", "654321"]));
    fails(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", PIN]), "wrong PIN, 2 tries left");
    fails(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", PIN]), "wrong PIN, 1 try left");
    fails(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", PIN]), "wrong PIN, 0 tries left");
    fails(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", "654321"]), "PIN blocked");
    fails(&medcard(&data, &["card", "unblock", "--reader", READER, "--puk", "11111111", "--new-pin", "222333"]), "wrong PUK");
    ok(&medcard(&data, &["card", "unblock", "--reader", READER, "--puk", PUK, "--new-pin", "222333"]));
    let v = json(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", "222333", "--json"]));
    assert_eq!(v["pin_verified"], true);

    // Revocation.
    ok(&medcard(&data, &["card", "revoke", "--serial", "5500001", "--reason", "lost"]));
    fails(&medcard(&data, &["card", "verify", "--reader", READER]), "revoked");
    let list = json(&medcard(&data, &["card", "list", "--json"]));
    assert_eq!(list[0]["revoked"], true);

    // Every step above left its audit entry, and the log verifies.
    let log = json(&medcard(&data, &["audit", "show", "--json"]));
    let entries: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["outcome"].as_str().unwrap().to_owned()))
        .collect();
    let count = |kind: &str, outcome: &str| entries.iter().filter(|(k, o)| k == kind && o == outcome).count();
    assert_eq!(count("card.issued", "ok"), 1);
    assert_eq!(count("card.pin_verified", "ok"), 7 + 2 + 1, "7 kiosk runs, 2 consent signatures, 1 after unblock");
    assert_eq!((count("consent.set", "ok"), count("consent.revoked", "ok")), (1, 1));
    assert_eq!(count("card.pin_changed", "ok"), 1);
    assert_eq!(count("card.pin_failed", "wrong-pin"), 3);
    assert_eq!(count("card.blocked", "blocked"), 2, "at the third wrong PIN, and the try on the blocked PIN");
    assert_eq!((count("card.unblocked", "wrong-puk"), count("card.unblocked", "ok")), (1, 1));
    assert_eq!(count("card.revoked", "ok"), 1);
    assert_eq!(entries.last().map(|(k, o)| (k.as_str(), o.as_str())), Some(("card.verified", "revoked")));
    let detail = log.to_string();
    for secret in [PIN, PUK, "654321", "222333"] {
        assert!(!detail.contains(secret), "the audit log holds a PIN/PUK");
    }
    let verified = json(&medcard(&data, &["audit", "verify", "--json"]));
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["entries"].as_u64(), Some(entries.len() as u64));
}

#[test]
fn clone_with_copied_credential_and_certificates_is_not_genuine_through_pcscd() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    let original = Sim::new_card(dir.path(), "orig.card", 5_500_002);
    let mut sim = Sim::serve(&ctx, &original);
    issue(&data, "P-2002");
    // Copy what any reader can read: credential and certificates.
    let mut t = ctx.connect(READER).unwrap();
    let (credential, certs) = t
        .transaction(|tx| {
            let mut p = Piv::new(tx);
            let c = p.card_credential().unwrap().unwrap();
            let certs: Vec<_> =
                [Slot::PivAuth, Slot::Signature, Slot::CardAuth].into_iter().map(|s| (s, p.certificate(s).unwrap().unwrap())).collect();
            (c, certs)
        })
        .unwrap();
    t.disconnect().unwrap();
    sim.kill(&ctx);
    // The forger's card: same serial, its own keys.
    let forged = Sim::new_card(dir.path(), "clone.card", 5_500_002);
    let _clone = Sim::serve(&ctx, &forged);
    let mut t = ctx.connect(READER).unwrap();
    t.transaction(|tx| {
        let mut p = Piv::new(tx);
        p.authenticate_management(&ManagementKey::default_blank()).unwrap();
        for (slot, der) in &certs {
            p.generate(*slot).unwrap();
            p.put_certificate(*slot, der).unwrap();
        }
        p.put_data(tags::CARD_CREDENTIAL, &credential).unwrap();
    })
    .unwrap();
    t.disconnect().unwrap();
    fails(&medcard(&data, &["card", "verify", "--reader", READER]), "not genuine");
}

#[test]
fn card_killed_mid_issuance_gives_a_clean_error_and_reissue_works() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    let card = Sim::new_card(dir.path(), "a.card", 5_500_003);
    let mut sim = Sim::serve(&ctx, &card);
    let mut child = Command::new(MEDCARD)
        .args(["card", "issue", "--reader", READER, "--patient-id", "P-3003", "--name", "Bo", "--pin", PIN, "--puk", PUK, "--data"])
        .arg(&data)
        .env("MEDCARD_TEST_PAUSE_AT", "certificate-9A")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "medcard ended before pausing: {seen}");
        seen.push_str(&line);
        if line.starts_with("paused at certificate-9A") {
            break;
        }
    }
    sim.kill(&ctx);
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{seen}{rest}");
    assert!(rest.contains("medcard: error:") && !rest.contains("panicked"), "{rest}");
    assert!(rest.contains("removed") || rest.contains("no card") || rest.contains("reset"), "a plain card-gone message: {rest}");

    let _sim = Sim::serve(&ctx, &sim.card);
    fails(&medcard(&data, &["card", "verify", "--reader", READER]), "no card credential");
    let again = issue(&data, "P-3003");
    assert_eq!(again["reissue"], true);
    let v = json(&medcard(&data, &["card", "verify", "--reader", READER, "--json"]));
    assert_eq!(v["genuine"], true);
}

#[test]
fn consent_from_another_card_and_older_versions_are_refused_through_pcscd() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    // Card B: consent v1, kept.
    let b = Sim::new_card(dir.path(), "b.card", 5_500_005);
    let mut sim_b = Sim::serve(&ctx, &b);
    issue(&data, "P-5005");
    ok(&medcard(&data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    let read_token = |ctx: &PcscContext| {
        let mut t = ctx.connect(READER).unwrap();
        let tok = t.transaction(|tx| Piv::new(tx).consent_token().unwrap().unwrap()).unwrap();
        t.disconnect().unwrap();
        tok
    };
    let token_b = read_token(&ctx);
    sim_b.kill(&ctx);
    // Card A: consent v1 then v2; then B's token, then A's own v1 written back.
    let a = Sim::new_card(dir.path(), "a.card", 5_500_004);
    let _sim_a = Sim::serve(&ctx, &a);
    issue(&data, "P-4004");
    ok(&medcard(&data, &["consent", "set", "--reader", READER, "--scope", "labs,notes", "--pin", PIN]));
    let v1 = read_token(&ctx);
    ok(&medcard(&data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    ok(&medcard(&data, &["consent", "show", "--reader", READER]));
    let ks = reader::Keystore::open(&data).unwrap();
    let write = |ctx: &PcscContext, bytes: &[u8]| {
        let mut t = ctx.connect(READER).unwrap();
        t.transaction(|tx| {
            let mut p = Piv::new(tx);
            p.authenticate_management(&ks.card_management_key(5_500_004).unwrap()).unwrap();
            p.put_data(tags::CONSENT_TOKEN, bytes).unwrap();
        })
        .unwrap();
        t.disconnect().unwrap();
    };
    write(&ctx, &token_b);
    fails(&medcard(&data, &["consent", "show", "--reader", READER]), "not made by this card");
    write(&ctx, &v1);
    fails(&medcard(&data, &["consent", "show", "--reader", READER]), "older than version 2");
}

#[test]
fn trust_export_add_lets_another_clinic_verify_the_card() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    init(&a, "clinic-a");
    init(&b, "clinic-b");
    let card = Sim::new_card(dir.path(), "a.card", 5_500_006);
    let _sim = Sim::serve(&ctx, &card);
    issue(&a, "P-6006");
    fails(&medcard(&b, &["card", "verify", "--reader", READER]), "unknown issuer");
    let pem = dir.path().join("clinic-a.pem");
    ok(&medcard(&a, &["trust", "export", "--out", pem.to_str().unwrap()]));
    // Clinic A reads B its fingerprint over the phone (issue 13: an add requires it).
    let fp = json(&medcard(&a, &["trust", "fingerprint", "--json"]))["fingerprint"].as_str().unwrap().to_owned();
    ok(&medcard(&b, &["trust", "add", pem.to_str().unwrap(), "--fingerprint", &fp]));
    let list = json(&medcard(&b, &["trust", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    let v = json(&medcard(&b, &["card", "verify", "--reader", READER, "--json"]));
    assert_eq!(v["issuer"], "clinic-a");
    ok(&medcard(&b, &["trust", "remove", "clinic-a.pem"]));
    fails(&medcard(&b, &["card", "verify", "--reader", READER]), "unknown issuer");
}

fn run_tool(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}: {SETUP_HINT}"))
}

fn tool_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn opensc_pkcs11() -> String {
    if let Some(p) = std::env::var_os("MEDCARD_OPENSC_PKCS11") {
        return p.to_string_lossy().into_owned();
    }
    [
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib64/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .unwrap_or_else(|| panic!("opensc-pkcs11.so is not installed: {SETUP_HINT}"))
    .to_owned()
}

#[test]
fn opensc_sees_the_issued_card_and_a_9a_signature_verifies_under_a_certificate_chaining_to_the_clinic_ca() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    let card = Sim::new_card(dir.path(), "a.card", 5_500_007);
    let _sim = Sim::serve(&ctx, &card);
    issue(&data, "P-7007");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

    let p15 = run_tool("pkcs15-tool", &["--reader", READER, "-D"]);
    let p15 = tool_text(&p15);
    for want in [
        "PIV AUTH key",
        "SIGN key",
        "CARD AUTH key",
        "Certificate for PIV Authentication",
        "Certificate for Digital Signature",
        "Certificate for Card Authentication",
    ] {
        assert!(p15.contains(want), "pkcs15-tool -D lacks {want:?}:\n{p15}");
    }

    // The 9A certificate chains to the clinic CA.
    ok(&medcard(&data, &["trust", "export", "--out", &p("ca.pem")]));
    let mut t = ctx.connect(READER).unwrap();
    let der = t.transaction(|tx| Piv::new(tx).certificate(Slot::PivAuth).unwrap().unwrap()).unwrap();
    t.disconnect().unwrap();
    std::fs::write(p("9a.der"), &der).unwrap();
    let out = run_tool("openssl", &["x509", "-inform", "DER", "-in", &p("9a.der"), "-out", &p("9a.pem")]);
    assert!(out.status.success(), "{}", tool_text(&out));
    let out = run_tool("openssl", &["verify", "-CAfile", &p("ca.pem"), &p("9a.pem")]);
    assert!(out.status.success() && tool_text(&out).contains(": OK"), "openssl verify: {}", tool_text(&out));
    let out = run_tool("openssl", &["x509", "-in", &p("9a.pem"), "-noout", "-pubkey", "-out", &p("9a.pub")]);
    assert!(out.status.success(), "{}", tool_text(&out));

    // pkcs11-tool signs with the 9A key (id 01) after login with the patient's PIN.
    std::fs::write(p("msg"), b"MedCard patient presence").unwrap();
    let out = run_tool("openssl", &["dgst", "-sha256", "-binary", "-out", &p("msg.sha256"), &p("msg")]);
    assert!(out.status.success(), "{}", tool_text(&out));
    let module = opensc_pkcs11();
    let signed = run_tool(
        "pkcs11-tool",
        &[
            "--module",
            &module,
            "--slot-description",
            READER,
            "--login",
            "--pin",
            PIN,
            "--sign",
            "--mechanism",
            "ECDSA",
            "--id",
            "01",
            "--signature-format",
            "openssl",
            "-i",
            &p("msg.sha256"),
            "-o",
            &p("sig.der"),
        ],
    );
    assert!(signed.status.success(), "pkcs11-tool --sign: {}", tool_text(&signed));
    let verified = run_tool("openssl", &["dgst", "-sha256", "-verify", &p("9a.pub"), "-signature", &p("sig.der"), &p("msg")]);
    assert!(tool_text(&verified).contains("Verified OK"), "{}", tool_text(&verified));
}

#[test]
fn card_killed_mid_consent_signature_gives_a_clean_error_and_leaves_no_token() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    let card = Sim::new_card(dir.path(), "a.card", 5_500_008);
    let mut sim = Sim::serve(&ctx, &card);
    issue(&data, "P-8008");
    let mut child = Command::new(MEDCARD)
        .args(["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN, "--data"])
        .arg(&data)
        .env("MEDCARD_TEST_PAUSE_AT", "pin-verified")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("paused at pin-verified") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "medcard ended before pausing");
    }
    sim.kill(&ctx);
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1), "{rest}");
    assert!(rest.contains("medcard: error:") && !rest.contains("panicked"), "{rest}");

    let _sim = Sim::serve(&ctx, &sim.card);
    fails(&medcard(&data, &["consent", "show", "--reader", READER]), "no consent token");
    let set = json(&medcard(&data, &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN, "--json"]));
    assert_eq!(set["version"], 1, "the interrupted attempt recorded no version");
    ok(&medcard(&data, &["consent", "show", "--reader", READER]));
}

#[test]
fn issue_reads_pin_and_puk_from_stdin_when_not_given_and_refuses_a_bad_pin() {
    let _l = lock();
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    init(&data, "clinic-a");
    let card = Sim::new_card(dir.path(), "a.card", 5_500_009);
    let _sim = Sim::serve(&ctx, &card);
    let run_with_stdin = |input: &[u8]| {
        let mut child = Command::new(MEDCARD)
            .args(["card", "issue", "--reader", READER, "--patient-id", "P-9009", "--name", "Cy", "--json", "--data"])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    // A 5-digit PIN is refused before the card is touched.
    fails(&run_with_stdin(b"12345\n77120934\n"), "6 to 8");
    let out = run_with_stdin(format!("{PIN}\n{PUK}\n").as_bytes());
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["serial"], 5_500_009);
    let v = json(&medcard(&data, &["card", "verify", "--reader", READER, "--pin", PIN, "--json"]));
    assert_eq!(v["pin_verified"], true);
    // The PIN never appears in medcard's output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PIN) && !String::from_utf8_lossy(&out.stderr).contains(PIN));
}
