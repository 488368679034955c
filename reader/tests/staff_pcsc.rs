//! Staff cards through the real smart-card stack (docs/staff.md): `card-sim serve` → vpcd →
//! pcscd → the `medcard` binary as a process, with two readers at once (the staff card in
//! `Virtual PCD 00 00`, the card being issued or the patient's in `Virtual PCD 00 01`); both
//! locks are taken, 00 then 01.
//!
//! Covered: the first staff card must be an admin's; then issuing clinician and reception cards
//! and a patient card needs the admin's sign-in; the bedside refuses a scan without a staff
//! session, and with the reception card; with the clinician's card and PIN the scan works, each
//! entry names the clinician and carries a signature that `openssl` verifies under the card's 9A
//! certificate (which chains to the clinic CA, as OpenSC sees it); refusals (clinician in the
//! admin commands, revoked card, another clinic's staff card, patient card as staff card and
//! staff card at the kiosk, three wrong PINs then unblock by an admin) each audited; an edited
//! and a re-signed `record.read` entry are found by `audit verify`; emergency access with and
//! without a reason and by a non-clinician; the alert; the patient's access report at the next
//! check-in. Costs (APDUs and time of a sign-in; scan with and without the card's signatures)
//! are printed, not asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

mod pcscd_support;
use pcscd_support::*;

use reader::bedside::{Bedside, Reader};
use reader::issue::Counting;
use reader::staff::Action;
use reader::staff_card::{SessionSigner, sign_in};
use reader::{PinBlock, Piv, Slot};

const MEDCARD: &str = env!("CARGO_BIN_EXE_medcard");
const ADMIN_PIN: &str = "246810";
const CLIN_PIN: &str = "135790";
const RECEP_PIN: &str = "192837";
const STAFF_PUK: &str = "55443322";
const PATIENT_PIN: &str = "482913";
const PATIENT_PUK: &str = "77120934";
const R0: &str = READER_00.name;
const R1: &str = READER_01.name;

fn new_card(dir: &Path, name: &str, serial: u32) -> PathBuf {
    let card = dir.join(name);
    let out = Command::new(card_sim()).args(["new", "--serial", &serial.to_string(), "--out"]).arg(&card).output().unwrap();
    assert!(out.status.success(), "card-sim new failed: {}", String::from_utf8_lossy(&out.stderr));
    card
}

/// Runs `medcard <args> --data <data>` with `stdin` as its standard input.
fn medcard(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(MEDCARD);
    c.args(args).arg("--data").arg(data);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "medcard failed ({}): {}", out.status, text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal containing {needle:?}, got success: {}", text(out));
    assert!(err.contains(needle), "stderr {err:?} does not contain {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The audit entries as JSON.
fn entries(data: &Path) -> Vec<serde_json::Value> {
    json(&medcard(data, &["audit", "show", "--json"], "")).as_array().unwrap().clone()
}

fn last_entry<'a>(entries: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    entries.iter().rev().find(|e| e["kind"] == kind).unwrap_or_else(|| panic!("no {kind} entry"))
}

fn run_tool(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}: {SETUP_HINT}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Edits audit entry `seq` with `edit` and recomputes its leaf hash (an administrator with
/// database access and the database key), so only the staff signature can show it.
fn edit_entry(data: &Path, seq: i64, edit: impl Fn(&mut [String; 5])) -> [String; 5] {
    let ks = reader::Keystore::open(data).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    let (time, mut cols): (i64, [String; 5]) = db
        .conn()
        .query_row("SELECT time, kind, actor, subject, outcome, detail FROM audit_entries WHERE seq = ?1", [seq], |r| {
            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?]))
        })
        .unwrap();
    let original = cols.clone();
    edit(&mut cols);
    let [k, a, s, o, d] = &cols;
    let leaf = reader::audit::merkle::leaf_hash(&reader::audit::encode_entry(u64::try_from(seq).unwrap(), time, k, a, s, o, d));
    db.conn()
        .execute(
            "UPDATE audit_entries SET kind = ?2, actor = ?3, subject = ?4, outcome = ?5, detail = ?6, leaf_hash = ?7 WHERE seq = ?1",
            rusqlite::params![seq, k, a, s, o, d, leaf.to_vec()],
        )
        .unwrap();
    original
}

#[test]
fn staff_cards_gate_the_bedside_and_the_admin_commands_and_sign_every_read_through_pcscd() {
    let _l0 = lock_reader(&READER_00);
    let _l1 = lock_reader(&READER_01);
    let ctx = context_for(&READER_00);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("clinic");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    ok(&medcard(&data, &["init", "--clinic-id", "clinic-a"], ""));
    let sim = card_sim();

    // ---- Before any staff card: a patient, consent, records, a reusable check-in code, and the
    // reference scan time without staff signatures.
    let patient = new_card(dir.path(), "patient.card", 7_100_004);
    let mut served1 = ServedCard::serve(&sim, &READER_01, &ctx, &patient);
    ok(&medcard(
        &data,
        &["card", "issue", "--reader", R1, "--patient-id", "P-1", "--name", "Ada", "--pin", PATIENT_PIN, "--puk", PATIENT_PUK],
        "",
    ));
    ok(&medcard(&data, &["consent", "set", "--reader", R1, "--scope", "labs,allergies,summary", "--days", "30", "--pin", PATIENT_PIN], ""));
    std::fs::write(p("labs.json"), br#"{"hb": 13.9}"#).unwrap();
    std::fs::write(p("allergies.json"), br#"{"allergies": ["penicillin"]}"#).unwrap();
    ok(&medcard(&data, &["record", "add", "--patient-id", "P-1", "--category", "labs", &p("labs.json")], ""));
    ok(&medcard(&data, &["record", "add", "--patient-id", "P-1", "--category", "allergies", &p("allergies.json")], ""));
    let first = json(&medcard(
        &data,
        &["checkin", "--reader", R1, "--pin", PATIENT_PIN, "--valid-for", "2h", "--out", &p("qr1.png"), "--json"],
        "",
    ));
    assert_eq!(first["access_report"], serde_json::json!([]), "a first visit has nothing to report");
    let code = first["text"].as_str().unwrap().to_owned();
    let now = reader::clock::now().unwrap();
    let mut unsigned_ms = Vec::new();
    {
        let mut b = Bedside::open(Some(&data), None).unwrap();
        for _ in 0..7 {
            let t = Instant::now();
            let s = b.scan_as(&code, now, true, Reader::Device("test:reference")).unwrap();
            unsigned_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(s.rows.len(), 2);
        }
    }
    served1.kill(&ctx);

    // ---- The first staff card must be an administrator's.
    let admin = new_card(dir.path(), "admin.card", 7_100_001);
    let mut served1 = ServedCard::serve(&sim, &READER_01, &ctx, &admin);
    let issue = |id: &str, name: &str, role: &str| -> Vec<String> {
        ["staff", "issue", "--reader", R1, "--staff-id", id, "--name", name, "--role", role, "--json"].map(str::to_owned).to_vec()
    };
    let args = issue("C-1", "Dr Early", "clinician");
    refused(
        &medcard(&data, &args.iter().map(String::as_str).collect::<Vec<_>>(), &format!("{CLIN_PIN}\n{STAFF_PUK}\n")),
        "the first one must be an administrator's",
    );
    let args = issue("A-01", "R. Admin", "admin");
    let issued = json(&medcard(&data, &args.iter().map(String::as_str).collect::<Vec<_>>(), &format!("{ADMIN_PIN}\n{STAFF_PUK}\n")));
    assert_eq!(issued["role"], "admin");
    served1.kill(&ctx);

    // From now on the admin signs in (reader 00) to issue the others (reader 01).
    let _admin_in_r0 = ServedCard::serve(&sim, &READER_00, &ctx, &admin);
    let as_admin = |args: &[&str], more: &str| -> Output {
        let mut a = args.to_vec();
        a.extend(["--staff-reader", R0]);
        medcard(&data, &a, &format!("{ADMIN_PIN}\n{more}"))
    };
    let clinician = new_card(dir.path(), "clinician.card", 7_100_002);
    let reception = new_card(dir.path(), "reception.card", 7_100_003);
    for (card, id, name, role, pin) in
        [(&clinician, "S-0042", "Dr N. Lee", "clinician", CLIN_PIN), (&reception, "R-07", "M. Front", "reception", RECEP_PIN)]
    {
        let mut s = ServedCard::serve(&sim, &READER_01, &ctx, card);
        // Without the admin's sign-in: refused, and audited.
        let args = issue(id, name, role);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&medcard(&data, &args, &format!("{pin}\n{STAFF_PUK}\n")), "requires a staff sign-in");
        let out = json(&as_admin(&args, &format!("{pin}\n{STAFF_PUK}\n")));
        assert_eq!(out["staff_id"], id);
        s.kill(&ctx);
    }
    let e = entries(&data);
    assert_eq!(last_entry(&e, "staff.session")["outcome"], "ok");
    assert!(e.iter().any(|x| x["kind"] == "staff.session" && x["outcome"] == "no-staff-session"), "the refusal is audited");
    assert!(
        e.iter().any(|x| x["kind"] == "card.issued" && x["actor"].as_str().unwrap().ends_with(" as staff:A-01#7100001")),
        "entries of an admin command name the admin"
    );
    let listed = json(&as_admin(&["staff", "list", "--json"], ""));
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    drop(_admin_in_r0);

    // ---- OpenSC lists the clinician card's certificates; the 9A one chains to the clinic CA.
    let served1 = ServedCard::serve(&sim, &READER_01, &ctx, &clinician);
    let p15 = run_tool("pkcs15-tool", &["--reader", R1, "-D"]);
    assert!(text(&p15).contains("Certificate for PIV Authentication"), "pkcs15-tool -D:\n{}", text(&p15));
    ok(&medcard(&data, &["trust", "export", "--out", &p("ca.pem")], ""));
    let mut t = ctx.connect(R1).unwrap();
    let der = t.transaction(|tx| Piv::new(tx).certificate(Slot::PivAuth).unwrap().unwrap()).unwrap();
    t.disconnect().unwrap();
    std::fs::write(p("9a.der"), &der).unwrap();
    assert!(run_tool("openssl", &["x509", "-inform", "DER", "-in", &p("9a.der"), "-out", &p("9a.pem")]).status.success());
    let v = run_tool("openssl", &["verify", "-CAfile", &p("ca.pem"), &p("9a.pem")]);
    assert!(text(&v).contains(": OK"), "openssl verify: {}", text(&v));
    assert!(run_tool("openssl", &["x509", "-in", &p("9a.pem"), "-noout", "-pubkey", "-out", &p("9a.pub")]).status.success());
    drop(served1);

    // ---- The bedside: no staff session, then the reception card: refused, audited, nothing read.
    let mut patient_in_r1 = ServedCard::serve(&sim, &READER_01, &ctx, &patient);
    ok(&medcard(&data, &["checkin", "--reader", R1, "--pin", PATIENT_PIN, "--out", &p("qr2.png")], ""));
    let reads_before = entries(&data).iter().filter(|x| x["kind"] == "record.read").count();
    refused(&medcard(&data, &["scan", &p("qr2.png"), "--out", &p("nope")], ""), "requires a clinician's staff card");
    let mut r0 = ServedCard::serve(&sim, &READER_00, &ctx, &reception);
    refused(
        &medcard(&data, &["scan", &p("qr2.png"), "--out", &p("nope"), "--staff-reader", R0], &format!("{RECEP_PIN}\n")),
        "may not scan patients' codes",
    );
    let e = entries(&data);
    assert_eq!(e.iter().filter(|x| x["kind"] == "record.read").count(), reads_before, "nothing was read");
    assert!(e.iter().any(|x| x["kind"] == "qr.refused" && x["outcome"] == "no-staff-session"));
    assert!(e.iter().any(|x| x["kind"] == "staff.session" && x["outcome"] == "not-permitted" && x["subject"] == "7100003"));
    // The staff card at the kiosk as a patient's: refused by name.
    patient_in_r1.kill(&ctx);
    r0.kill(&ctx);
    let mut s1 = ServedCard::serve(&sim, &READER_01, &ctx, &reception);
    refused(
        &medcard(&data, &["checkin", "--reader", R1, "--pin", RECEP_PIN, "--out", &p("x.png")], ""),
        "this is a staff card, not a patient card",
    );
    s1.kill(&ctx);

    // ---- With the clinician's card and PIN: the scan works; each entry names the clinician and
    // carries the card's signature, which openssl verifies under the 9A certificate.
    let mut r0 = ServedCard::serve(&sim, &READER_00, &ctx, &clinician);
    let scanned =
        json(&medcard(&data, &["scan", &p("qr2.png"), "--out", &p("ward"), "--json", "--staff-reader", R0], &format!("{CLIN_PIN}\n")));
    assert_eq!(scanned["records"].as_array().unwrap().len(), 2);
    let e = entries(&data);
    let read = last_entry(&e, "record.read");
    assert_eq!(read["actor"], "staff:S-0042#7100002");
    let detail = read["detail"].as_str().unwrap();
    let (unsigned, sig_hex) = detail.rsplit_once(" sig=").expect("a signed entry");
    let msg = reader::staff::signed::message(
        read["time"].as_i64().unwrap(),
        "record.read",
        "staff:S-0042#7100002",
        read["subject"].as_str().unwrap(),
        "ok",
        unsigned,
    );
    std::fs::write(p("entry.msg"), &msg).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&hex::decode(sig_hex).unwrap()).unwrap();
    std::fs::write(p("entry.sig"), sig.to_der().as_bytes()).unwrap();
    let v = run_tool("openssl", &["dgst", "-sha256", "-verify", &p("9a.pub"), "-signature", &p("entry.sig"), &p("entry.msg")]);
    assert!(text(&v).contains("Verified OK"), "openssl: {}", text(&v));
    let verified = json(&medcard(&data, &["audit", "verify", "--json"], ""));
    assert!(verified["staff_signatures"].as_u64().unwrap() >= 4, "{verified}");
    for kind in ["staff.session", "qr.scanned", "staff.session_ended"] {
        let names = |x: &serde_json::Value| format!("{} {}", x["actor"], x["subject"]).contains("S-0042");
        assert!(e.iter().any(|x| x["kind"] == kind && names(x)), "{kind}");
    }

    // Pulling the card: the next command has no session and reads nothing.
    r0.kill(&ctx);
    let reads_before = entries(&data).iter().filter(|x| x["kind"] == "record.read").count();
    let cached_id = scanned["records"][0]["cache_id"].as_str().unwrap().to_owned();
    refused(&medcard(&data, &["scan", "--cached", &cached_id, "--out", &p("c1"), "--staff-reader", R0], &format!("{CLIN_PIN}\n")), "");
    assert_eq!(entries(&data).iter().filter(|x| x["kind"] == "record.read").count(), reads_before);

    // ---- Costs: a sign-in (APDUs, ms) and scan-to-record with the card's signatures, against
    // the same scan before the clinic had staff cards (measured above).
    let r0 = ServedCard::serve(&sim, &READER_00, &ctx, &clinician);
    let ks = reader::Keystore::open(&data).unwrap();
    let state = reader::clinic::ClinicState::open(&ks).unwrap();
    let pin = PinBlock::pin(CLIN_PIN).unwrap();
    let mut sign_in_ms = Vec::new();
    let mut apdus = Vec::new();
    let mut signed_ms = Vec::new();
    let mut b = Bedside::open(Some(&data), None).unwrap();
    for _ in 0..7 {
        let mut t = ctx.connect(R0).unwrap();
        t.transaction(|tx| {
            let mut piv = Piv::new(Counting::new(tx));
            let t0 = Instant::now();
            let now = reader::clock::now().unwrap();
            let session = sign_in(&mut piv, &ks, &state, now, &pin, Action::ScanAndRead).unwrap();
            sign_in_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            apdus.push(piv.transport_mut().count());
            let mut signer = SessionSigner { session: &session, piv: &mut piv };
            let t1 = Instant::now();
            let s = b.scan_as(&code, now, true, Reader::Staff(&mut signer)).unwrap();
            signed_ms.push(t1.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(s.rows.len(), 2);
        })
        .unwrap();
        t.disconnect().unwrap();
    }
    let (si, sg, us) = (median(&mut sign_in_ms), median(&mut signed_ms), median(&mut unsigned_ms));
    eprintln!(
        "COST staff sign-in through pcscd+vpcd: {} APDUs, median {si:.1} ms ({sign_in_ms:.1?}); scan-to-record of a 2-record code with 3 card signatures: median {sg:.1} ms ({signed_ms:.1?}) vs {us:.1} ms unsigned before staff cards ({unsigned_ms:.1?}): ratio {:.2}",
        apdus[0],
        sg / us
    );
    drop(b);
    drop(r0);

    // ---- A clinician in an admin command; emergency access with and without reason, by a
    // non-clinician; the alert; then the patient's report at the next check-in.
    let mut r0 = ServedCard::serve(&sim, &READER_00, &ctx, &clinician);
    refused(
        &medcard(&data, &["staff", "list", "--staff-reader", R0], &format!("{CLIN_PIN}\n")),
        "may not open the admin view or the audit log",
    );
    refused(
        &medcard(&data, &["emergency", "--patient-id", "P-1", "--staff-reader", R0], &format!("{CLIN_PIN}\n")),
        "emergency access needs a reason",
    );
    let em = json(&medcard(
        &data,
        &[
            "emergency",
            "--patient-id",
            "P-1",
            "--reason",
            "unconscious on arrival, no card",
            "--out",
            &p("em"),
            "--json",
            "--staff-reader",
            R0,
        ],
        &format!("{CLIN_PIN}\n"),
    ));
    let em_records = em["records"].as_array().unwrap();
    assert_eq!(em_records.len(), 1, "only the emergency categories (allergies here): {em}");
    assert_eq!(em_records[0]["category"], "allergies");
    assert_eq!(
        std::fs::read(Path::new(&p("em")).join(em_records[0]["record_id"].as_str().unwrap())).unwrap(),
        br#"{"allergies": ["penicillin"]}"#
    );
    r0.kill(&ctx);
    let r0 = ServedCard::serve(&sim, &READER_00, &ctx, &reception);
    refused(
        &medcard(&data, &["emergency", "--patient-id", "P-1", "--reason", "curious", "--staff-reader", R0], &format!("{RECEP_PIN}\n")),
        "may not open a patient's emergency data",
    );
    drop(r0);
    let e = entries(&data);
    let outcomes: Vec<&str> = e.iter().filter(|x| x["kind"] == "record.emergency").map(|x| x["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["no-reason", "ok"], "the reception card is refused at sign-in (staff.session not-permitted)");
    let alerts = ok(&medcard(&data, &["audit", "alerts"], ""));
    assert!(alerts.contains("ALERT emergency-access") && alerts.contains("unconscious on arrival"), "{alerts}");
    let mut p1 = ServedCard::serve(&sim, &READER_01, &ctx, &patient);
    let third = ok(&medcard(&data, &["checkin", "--reader", R1, "--pin", PATIENT_PIN, "--out", &p("qr3.png")], ""));
    assert!(third.contains("since your last visit:"), "{third}");
    assert!(third.contains("Dr N. Lee (clinician) read your labs"), "{third}");
    assert!(third.contains("EMERGENCY ACCESS by Dr N. Lee (clinician)") && third.contains("because: unconscious on arrival"), "{third}");
    p1.kill(&ctx);

    // ---- Revoked card; wrong PIN three times, then an admin unblocks it with the PUK.
    let r0 = ServedCard::serve(&sim, &READER_00, &ctx, &admin);
    ok(&as_admin(&["staff", "revoke", "--staff-id", "R-07", "--reason", "left"], ""));
    drop(r0);
    let mut r0 = ServedCard::serve(&sim, &READER_00, &ctx, &reception);
    refused(&medcard(&data, &["staff", "list", "--staff-reader", R0], &format!("{RECEP_PIN}\n")), "has been revoked");
    r0.kill(&ctx);
    let mut r0 = ServedCard::serve(&sim, &READER_00, &ctx, &clinician);
    for left in ["2", "1"] {
        let out = medcard(&data, &["scan", "--cached", &cached_id, "--staff-reader", R0], "000000\n");
        refused(&out, &format!("{left} tr"));
    }
    refused(&medcard(&data, &["scan", "--cached", &cached_id, "--staff-reader", R0], "000000\n"), "");
    refused(&medcard(&data, &["scan", "--cached", &cached_id, "--staff-reader", R0], &format!("{CLIN_PIN}\n")), "blocked");
    r0.kill(&ctx);
    let _c1 = ServedCard::serve(&sim, &READER_01, &ctx, &clinician);
    let r0 = ServedCard::serve(&sim, &READER_00, &ctx, &admin);
    ok(&as_admin(&["card", "unblock", "--reader", R1], &format!("{STAFF_PUK}\n{CLIN_PIN}\n")));
    drop(r0);
    drop(_c1);
    let _r0 = ServedCard::serve(&sim, &READER_00, &ctx, &clinician);
    ok(&medcard(&data, &["scan", "--cached", &cached_id, "--out", &p("c2"), "--staff-reader", R0], &format!("{CLIN_PIN}\n")));
    let e = entries(&data);
    assert!(e.iter().any(|x| x["kind"] == "card.blocked" && x["subject"] == "7100002"));
    assert!(e.iter().any(|x| x["kind"] == "card.unblocked" && x["outcome"] == "ok"));

    // ---- Another clinic's staff card: refused, audited.
    let other = dir.path().join("clinic-b");
    ok(&medcard(&other, &["init", "--clinic-id", "clinic-b"], ""));
    let foreign = new_card(dir.path(), "foreign.card", 7_100_005);
    drop(_r0);
    let s1 = ServedCard::serve(&sim, &READER_01, &ctx, &foreign);
    ok(&medcard(
        &other,
        &issue("B-1", "Dr Elsewhere", "admin").iter().map(String::as_str).collect::<Vec<_>>(),
        &format!("{CLIN_PIN}\n{STAFF_PUK}\n"),
    ));
    refused(&medcard(&data, &["scan", "--cached", &cached_id, "--staff-reader", R1], &format!("{CLIN_PIN}\n")), "unknown issuer");
    drop(s1);
    // A patient card as a staff card.
    let s1 = ServedCard::serve(&sim, &READER_01, &ctx, &patient);
    refused(
        &medcard(&data, &["scan", "--cached", &cached_id, "--staff-reader", R1], &format!("{PATIENT_PIN}\n")),
        "this is a patient card, not a staff card",
    );
    drop(s1);
    let e = entries(&data);
    for outcome in ["untrusted", "wrong-card", "revoked"] {
        assert!(e.iter().any(|x| x["kind"] == "staff.session" && x["outcome"] == outcome), "staff.session {outcome} audited");
    }

    // ---- An edited and a re-signed record.read entry (hash recomputed each time) are found.
    ok(&medcard(&data, &["audit", "verify"], ""));
    let seq = last_entry(&entries(&data), "record.read")["seq"].as_i64().unwrap();
    let original = edit_entry(&data, seq, |c| c[4] = c[4].replace("patient=P-1", "patient=P-2"));
    let found = medcard(&data, &["audit", "verify"], "");
    refused(&found, &format!("#{seq}"));
    assert!(text(&found).contains("signature does not verify"), "{}", text(&found));
    edit_entry(&data, seq, |c| *c = original.clone());
    ok(&medcard(&data, &["audit", "verify"], ""));
    edit_entry(&data, seq, |c| {
        let (unsigned, _) = c[4].rsplit_once(" sig=").unwrap();
        let other = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let d = reader::staff::signed::digest(0, &c[0], &c[1], &c[2], &c[3], unsigned);
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::hazmat::PrehashSigner::sign_prehash(&other, &d).unwrap();
        c[4] = reader::staff::signed::attach(unsigned, &sig);
    });
    refused(&medcard(&data, &["audit", "verify"], ""), &format!("#{seq}"));
}
