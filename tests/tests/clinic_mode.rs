//! A clinic of many devices (docs/deployment.md), end to end: every device is a separate
//! `medcard` process with its own data directory — an admin PC, two kiosks, two bedside devices —
//! sharing a PostgreSQL server (a private one per test, started by `scripts/postgres.sh`) and a
//! record store (a three-node Garage cluster started by `scripts/garage.sh`, or, for the figures,
//! a directory); the card goes through `card-sim serve` → vpcd → pcscd (reader
//! `Virtual PCD 00 00`, under its process-wide lock).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod garage_support;
#[path = "../../reader/tests/pcscd_support/mod.rs"]
mod pcscd_support;
mod pg_support;

use garage_support::Garage;
use pcscd_support::{READER_00, READER_01, ServedCard, card_sim, context_for, lock_reader, medcard_bin};
use pg_support::PgServer;

const READER: &str = READER_00.name;
const PIN: &str = "482913";
const PUK: &str = "77120934";
const PATIENT: &str = "P-1001";
const DB: &str = "medcard";

fn medcard(data: &Path, args: &[&str]) -> Output {
    Command::new(medcard_bin()).args(args).arg("--data").arg(data).env_remove("MEDCARD_NOW").stdin(Stdio::null()).output().unwrap()
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

fn refused(out: &Output, code: i32, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "expected exit {code}, got {}: {err}", out.status);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    err
}

/// The clinic: server, database, five joined devices and a shared record store.
struct Clinic {
    pg: PgServer,
    root: PathBuf,
    store: PathBuf,
    /// The join arguments that name the record store.
    store_args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Clinic {
    fn new(name: &str) -> Clinic {
        Clinic::with_store(name, None, &[("kiosk-1", "kiosk"), ("kiosk-2", "kiosk"), ("bed-1", "bedside"), ("bed-2", "bedside")])
    }

    /// A clinic whose records are in `s3` (join arguments) or, without, in a shared directory.
    fn with_store(name: &str, s3: Option<Vec<String>>, devices: &[(&str, &str)]) -> Clinic {
        let pg = PgServer::start(name);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let store = root.join("store");
        std::fs::create_dir(&store).unwrap();
        pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
        let owner = pg.url("postgres", DB);
        let owner_pw = pg.admin_password_file.to_str().unwrap().to_owned();
        let setup = ["device", "setup-db", "--db", &owner, "--db-tls", "disable", "--db-password-file", &owner_pw];
        let o = Command::new(medcard_bin()).args(setup).output().unwrap();
        ok(&o);
        // Running it again changes nothing.
        ok(&Command::new(medcard_bin()).args(setup).output().unwrap());
        let store_args = s3.unwrap_or_else(|| vec!["--store-dir".into(), store.to_str().unwrap().into()]);
        let c = Clinic { pg, root, store, store_args, _dir: dir };
        ok(&medcard(&c.dev("admin-1"), &["init", "--clinic-id", "clinic-a"]));
        c.join("admin-1", "admin", false);
        for (d, role) in devices {
            c.join(d, role, true);
        }
        c
    }

    fn dev(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn join(&self, id: &str, role: &str, copy_keys: bool) {
        let user = id.replace('-', "_");
        let pw = self.pg.login_role(&user, &format!("medcard_{role}"), &self.root);
        let url = self.pg.url(&user, DB);
        let keys = self.dev("admin-1").join("keys");
        let mut args = vec!["device", "join", "--role", role, "--device-id", id, "--db", &url, "--db-tls", "disable"];
        args.extend(["--db-password-file", pw.to_str().unwrap()]);
        args.extend(self.store_args.iter().map(String::as_str));
        if copy_keys {
            args.extend(["--keys", keys.to_str().unwrap()]);
        }
        let out = ok(&medcard(&self.dev(id), &args));
        assert!(out.contains(&format!("{id} joined clinic clinic-a as {role}")), "{out}");
    }

    fn checkin(&self, kiosk: &str, tag: &str) -> Output {
        let png = self.root.join(format!("{tag}.png"));
        medcard(&self.dev(kiosk), &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap(), "--json"])
    }

    fn code(&self, kiosk: &str, tag: &str) -> String {
        json(&self.checkin(kiosk, tag))["text"].as_str().unwrap().to_owned()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        json(&medcard(&self.dev("admin-1"), &["audit", "show", "--json"])).as_array().unwrap().clone()
    }
}

#[test]
fn five_devices_share_one_clinic_state_enforced_by_the_database() {
    let g = Garage::start("e2e");
    let c = Clinic::with_store(
        "e2e",
        Some(g.join_args()),
        &[("kiosk-1", "kiosk"), ("kiosk-2", "kiosk"), ("bed-1", "bedside"), ("bed-2", "bedside")],
    );
    let docs = [("labs", "labs.txt", "HbA1c 5.4 %\n"), ("allergies", "allergies.txt", "penicillin\n")];
    for (cat, name, body) in docs {
        let f = c.root.join(name);
        std::fs::write(&f, body).unwrap();
        ok(&medcard(&c.dev("admin-1"), &["record", "add", "--patient-id", PATIENT, "--category", cat, f.to_str().unwrap()]));
    }
    // The kiosks see the records the admin PC added; a bedside device may not read the index.
    let listed = json(&medcard(&c.dev("kiosk-2"), &["record", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    refused(&medcard(&c.dev("bed-1"), &["record", "list"]), 1, "permission denied");
    // Nor revoke a card (least privilege in the database, not only in the program).
    refused(&medcard(&c.dev("bed-1"), &["card", "revoke", "--serial", "1", "--reason", "test"]), 1, "may not do that");
    // A bedside device holds neither the master secret nor the issuer key: only the clinic id,
    // the CA certificate and a key of its own.
    let mut held: Vec<String> =
        std::fs::read_dir(c.dev("bed-1").join("keys")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    held.sort();
    assert_eq!(held, ["ca.crt", "clinic.json", "device.key", "postgres.password", "s3.secret"]);
    let f = c.root.join("labs.txt");
    let o = medcard(&c.dev("bed-1"), &["record", "add", "--patient-id", PATIENT, "--category", "labs", f.to_str().unwrap()]);
    refused(&o, 1, "holds no master secret");
    refused(&medcard(&c.dev("bed-1"), &["audit", "checkpoint"]), 1, "holds no issuer key");

    // The trust list is the clinic's: a partner trusted at the admin PC is trusted at every
    // device (only the admin PC may change it), and each device keeps a copy.
    let b = c.root.join("clinic-b");
    ok(&medcard(&b, &["init", "--clinic-id", "clinic-b"]));
    let b_pem = c.root.join("clinic-b.pem");
    ok(&medcard(&b, &["trust", "export", "--out", b_pem.to_str().unwrap()]));
    let fp = json(&medcard(&b, &["trust", "fingerprint", "--json"]))["fingerprint"].as_str().unwrap().to_owned();
    ok(&medcard(&c.dev("admin-1"), &["trust", "add", b_pem.to_str().unwrap(), "--fingerprint", &fp]));
    let listed = ok(&medcard(&c.dev("bed-2"), &["trust", "list"]));
    assert!(listed.contains("clinic-b"), "{listed}");
    refused(&medcard(&c.dev("kiosk-1"), &["trust", "remove", "clinic-b.pem"]), 1, "may not do that");
    let st = json(&medcard(&c.dev("bed-1"), &["device", "status", "--json"]));
    assert_eq!(st["lists"]["trusted_clinics"], 1, "{st}");

    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let card = c.root.join("card.bin");
    let o = Command::new(card_sim()).args(["new", "--serial", "8101", "--out"]).arg(&card).output().unwrap();
    assert!(o.status.success());
    let mut sim = Some(ServedCard::serve(&card_sim(), &READER_00, &ctx, &card));
    ok(&medcard(
        &c.dev("admin-1"),
        &["card", "issue", "--reader", READER, "--patient-id", PATIENT, "--name", "Ada", "--pin", PIN, "--puk", PUK],
    ));
    ok(&medcard(&c.dev("kiosk-1"), &["consent", "set", "--reader", READER, "--scope", "allergies,labs", "--pin", PIN]));

    // Check in at kiosk 1, scan at bedside 1: the records are shown.
    let code1 = c.code("kiosk-1", "code1");
    let shown = ok(&medcard(&c.dev("bed-1"), &["scan", "--text", &code1]));
    assert!(shown.contains("HbA1c 5.4 %") && shown.contains("penicillin"), "{shown}");
    // The same code at bedside 2: refused, naming when and where it was used.
    let err = refused(&medcard(&c.dev("bed-2"), &["scan", "--text", &code1]), 3, "already used at");
    assert!(err.contains("on device bed-1"), "{err}");

    // Eight processes scan one fresh code at the same instant: exactly one shows the records.
    let code2 = c.code("kiosk-2", "code2");
    let start = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let data = c.dev(if i % 2 == 0 { "bed-1" } else { "bed-2" });
            let code = code2.clone();
            std::thread::spawn(move || {
                std::thread::sleep(start.saturating_duration_since(std::time::Instant::now()));
                medcard(&data, &["scan", "--text", &code])
            })
        })
        .collect();
    let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "{:?}", outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect::<Vec<_>>());
    assert!(String::from_utf8_lossy(&winners[0].stdout).contains("HbA1c"));
    for o in outs.iter().filter(|o| !o.status.success()) {
        refused(o, 3, "already used at");
    }

    // A consent version seen at kiosk 1 is a replay at kiosk 2: a copy of the card made while
    // version 1 was on it is presented at kiosk 2 after kiosk 1 saw version 2.
    let copy = c.root.join("copy.bin");
    std::fs::copy(&card, &copy).unwrap();
    ok(&medcard(&c.dev("kiosk-1"), &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));
    ok(&c.checkin("kiosk-1", "v2"));
    drop(sim.take());
    std::fs::copy(&copy, &card).unwrap();
    sim = Some(ServedCard::serve(&card_sim(), &READER_00, &ctx, &card));
    refused(&c.checkin("kiosk-2", "replay"), 1, "older than version");
    // A fresh code for the offline part below, issued while the database is up.
    ok(&medcard(&c.dev("kiosk-1"), &["consent", "set", "--reader", READER, "--scope", "allergies,labs", "--pin", PIN]));
    let code3 = c.code("kiosk-1", "code3");
    let code4 = c.code("kiosk-2", "code4");
    // A cached record at bedside 2, from code 4.
    let v = json(&medcard(&c.dev("bed-2"), &["scan", "--text", &code4, "--json"]));
    let cache_id = v["records"][0]["cache_id"].as_str().unwrap().to_owned();

    // Revoke the card at the admin PC: kiosk 2 refuses it at once.
    ok(&medcard(&c.dev("admin-1"), &["card", "revoke", "--serial", "8101", "--reason", "lost"]));
    refused(&c.checkin("kiosk-2", "revoked"), 1, "revoked");

    // bed-2 refreshes its copy of the lists (as the desktop does every 30 s).
    let st = json(&medcard(&c.dev("bed-2"), &["device", "status", "--json"]));
    let refreshed_at = st["lists"]["refreshed_at"].as_i64().unwrap();

    // PostgreSQL stopped.
    c.pg.stop();
    refused(&c.checkin("kiosk-1", "offline"), 1, "cannot check whether card 8101 is revoked");
    // The bedside still opens its cached record; a new scan is refused without spending the code.
    let cached = ok(&medcard(&c.dev("bed-2"), &["scan", "--cached", &cache_id]));
    assert!(cached.contains("penicillin") || cached.contains("HbA1c"), "{cached}");
    refused(&medcard(&c.dev("bed-1"), &["scan", "--text", &code3]), 3, "cannot check whether this code was already used");
    let st = json(&medcard(&c.dev("bed-2"), &["device", "status", "--json"]));
    assert_eq!(st["database"]["ok"], false, "{st}");
    assert_eq!(st["queued_audit_entries"], 1, "{st}");
    // Offline, the device shows its copy of the lists and how old it is, and still knows the partner.
    assert_eq!(st["lists"]["revoked_cards"], 1, "{st}");
    assert_eq!(st["lists"]["trusted_clinics"], 1, "{st}");
    assert_eq!(st["lists"]["refreshed_at"], refreshed_at, "{st}");
    let listed = ok(&medcard(&c.dev("bed-2"), &["trust", "list"]));
    assert!(listed.contains("clinic-b"), "{listed}");
    let queued_bed1 = json(&medcard(&c.dev("bed-1"), &["device", "status", "--json"]))["queued_audit_entries"].as_u64().unwrap();
    assert_eq!(queued_bed1, 1);
    drop(sim.take());

    // PostgreSQL back: the queued entries reach the clinic log exactly once.
    c.pg.restart();
    for d in ["bed-1", "bed-2", "kiosk-1"] {
        let sent = json(&medcard(&c.dev(d), &["device", "sync", "--json"]))["sent"].as_u64().unwrap();
        assert!(sent >= 1, "{d} sent {sent}");
        assert_eq!(json(&medcard(&c.dev(d), &["device", "sync", "--json"]))["sent"], 0, "{d} sent twice");
    }
    // The code that could not be checked was not spent: it scans now.
    ok(&medcard(&c.dev("bed-1"), &["scan", "--text", &code3]));
    let log = c.audit();
    let cached_reads = log.iter().filter(|e| e["detail"].as_str().unwrap().starts_with(&format!("cached={cache_id}"))).count();
    assert_eq!(cached_reads, 1, "the offline read is in the clinic log exactly once");
    assert!(log.iter().any(|e| e["outcome"] == "clinic-db-unavailable" && e["actor"].as_str().unwrap().starts_with("bed-1/")));
    for d in ["admin-1", "kiosk-1", "kiosk-2", "bed-1", "bed-2"] {
        assert!(log.iter().any(|e| e["actor"].as_str().unwrap().starts_with(&format!("{d}/"))), "no entry from {d}");
    }
    let joined: Vec<&str> = log.iter().filter(|e| e["kind"] == "device.joined").map(|e| e["subject"].as_str().unwrap()).collect();
    assert_eq!(joined, ["admin-1", "kiosk-1", "kiosk-2", "bed-1", "bed-2"], "every join is in the clinic log");
    let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..log.len() as u64).collect::<Vec<_>>(), "one gapless clinic sequence");

    // One clinic-wide log: checkpoint at the admin PC, verify from a kiosk.
    let cp1 = c.root.join("cp1.cose");
    ok(&medcard(&c.dev("admin-1"), &["audit", "checkpoint", "--out", cp1.to_str().unwrap()]));
    let v = json(&medcard(&c.dev("kiosk-2"), &["audit", "verify", "--json"]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"].as_u64().unwrap(), log.len() as u64);
    // RFC 9162 proofs over the clinic log, from any device: entry 3 is in the latest checkpoint,
    // and the log only grew since the first.
    let exported = c.root.join("clinic-a.pem");
    ok(&medcard(&c.dev("admin-1"), &["trust", "export", "--out", exported.to_str().unwrap()]));
    ok(&medcard(&c.dev("kiosk-1"), &["audit", "checkpoint"]));
    let p = json(&medcard(&c.dev("bed-2"), &["audit", "prove", "--entry", "3", "--json"]));
    assert_eq!(p["verified"], true, "{p}");
    let latest = p["tree_size"].as_u64().unwrap();
    let p = json(&medcard(&c.dev("bed-1"), &["audit", "consistency", "--old", cp1.to_str().unwrap(), "--json"]));
    assert_eq!(p["verified"], true, "{p}");
    let (old, new) = (p["old_size"].as_u64().unwrap(), p["new_size"].as_u64().unwrap());
    assert!(old >= log.len() as u64 && new == latest && new > old, "{p}");
    // A row edited in PostgreSQL (by someone with the owner's rights) is found.
    c.pg.sql(DB, "UPDATE audit_entries SET detail = 'nothing to see' WHERE seq = 3");
    let o = medcard(&c.dev("bed-1"), &["audit", "verify"]);
    refused(&o, 1, "first bad entry: #3");
    // ... and no proof over the edited log checks out against the signed roots.
    assert!(!medcard(&c.dev("bed-2"), &["audit", "prove", "--entry", "3"]).status.success());
    assert!(!medcard(&c.dev("bed-2"), &["audit", "consistency", "--old", cp1.to_str().unwrap()]).status.success());
}

#[test]
fn a_wrong_password_a_missing_database_or_schema_writes_nothing_and_says_what_to_check() {
    let pg = PgServer::start("bad");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    ok(&medcard(&data, &["init", "--clinic-id", "clinic-b"]));
    let wrong = dir.path().join("wrong.pw");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let join = |url: &str, pw: &Path| {
        medcard(
            &data,
            &[
                "device",
                "join",
                "--role",
                "admin",
                "--device-id",
                "a",
                "--db",
                url,
                "--db-tls",
                "disable",
                "--db-password-file",
                pw.to_str().unwrap(),
            ],
        )
    };
    let admin_pw = pg.admin_password_file.clone();
    refused(&join(&pg.url("postgres", "postgres"), &wrong), 1, "refused the login");
    refused(&join(&pg.url("postgres", "nodb"), &admin_pw), 1, "does not exist");
    refused(&join(&pg.url("postgres", "postgres"), &admin_pw), 1, "medcard device setup-db");
    refused(&join("postgresql://postgres:pw@127.0.0.1/x", &admin_pw), 1, "holds a password");
    let closed = format!("postgresql://postgres@127.0.0.1:{}/postgres", pg.port + 1);
    refused(&join(&closed, &admin_pw), 1, "unreachable");
    assert!(!data.join("device.json").exists(), "a failed join wrote device.json");
    assert!(!data.join("keys/postgres.password").exists(), "a failed join kept the password");
    // The password never appears in any message.
    let pw = std::fs::read_to_string(&admin_pw).unwrap();
    let o = join(&pg.url("postgres", "postgres"), &admin_pw);
    assert!(!String::from_utf8_lossy(&o.stderr).contains(pw.trim()));

    // TLS as a clinic runs it (the default, --db-tls require): with the clinic's CA the join goes
    // through; with another CA, or a CA file that is not one, it is refused and nothing is written.
    // medcard_tls refuses unencrypted connections (scripts/postgres.sh), so a join that works
    // there went over TLS.
    pg.sql("postgres", "CREATE DATABASE medcard_tls");
    let tls_owner = pg.url("postgres", "medcard_tls");
    let ca = pg.dir.join("ca.crt");
    let setup =
        ["device", "setup-db", "--db", &tls_owner, "--db-ca", ca.to_str().unwrap(), "--db-password-file", admin_pw.to_str().unwrap()];
    ok(&Command::new(medcard_bin()).args(setup).output().unwrap());
    let other_ca = dir.path().join("other-ca.crt");
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=other"])
        .arg("-keyout")
        .arg(dir.path().join("other.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(o.status.success());
    let not_a_ca = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_a_ca, "hello\n").unwrap();
    let tls_dev = dir.path().join("tls-dev");
    ok(&medcard(&tls_dev, &["init", "--clinic-id", "clinic-t"]));
    let tls_join = |ca: &Path| {
        medcard(
            &tls_dev,
            &["device", "join", "--role", "admin", "--device-id", "t", "--db", &tls_owner, "--db-ca", ca.to_str().unwrap()]
                .into_iter()
                .chain(["--db-password-file", admin_pw.to_str().unwrap()])
                .collect::<Vec<_>>(),
        )
    };
    refused(&tls_join(&other_ca), 1, "its TLS certificate is not trusted (unable to get local issuer certificate); check the CA file");
    refused(&tls_join(&not_a_ca), 1, "no certificate or crl found");
    assert!(!tls_dev.join("device.json").exists(), "a refused TLS join wrote device.json");
    // What the admin PC trusted before it joined becomes the clinic's trust list.
    let b_pem = dir.path().join("clinic-b.pem");
    ok(&medcard(&data, &["trust", "export", "--out", b_pem.to_str().unwrap()]));
    let fp = json(&medcard(&data, &["trust", "fingerprint", "--json"]))["fingerprint"].as_str().unwrap().to_owned();
    ok(&medcard(&tls_dev, &["trust", "add", b_pem.to_str().unwrap(), "--fingerprint", &fp]));
    ok(&tls_join(&ca));
    assert_eq!(pg.sql("medcard_tls", "SELECT name FROM trust_files").trim(), "clinic-b.pem");
    let st = json(&medcard(&tls_dev, &["device", "status", "--json"]));
    assert_eq!((st["database"]["ok"].as_bool(), st["database"]["tls"].as_bool()), (Some(true), Some(true)), "{st}");
    // The same database without TLS: the server refuses.
    let plain = Command::new(medcard_bin())
        .args(["device", "setup-db", "--db", &tls_owner, "--db-tls", "disable", "--db-password-file", admin_pw.to_str().unwrap()])
        .output()
        .unwrap();
    refused(&plain, 1, "accepts only encrypted connections: use --db-tls require");

    // A clinic database of schema version 1 (before the shared trust list): a device says to
    // upgrade it; `setup-db` does, and keeps what was there.
    pg.sql("postgres", "CREATE DATABASE old");
    let owner = pg.url("postgres", "old");
    let setup = ["device", "setup-db", "--db", &owner, "--db-tls", "disable", "--db-password-file", admin_pw.to_str().unwrap()];
    ok(&Command::new(medcard_bin()).args(setup).output().unwrap());
    pg.sql("old", "DROP TABLE trust_files; DROP VIEW staff_cards_exist; UPDATE medcard_schema SET version = 1; INSERT INTO card_revocations VALUES (9, 1, 'kept', 'x')");
    refused(
        &join(&owner, &admin_pw),
        1,
        "schema version 1, this program knows 3: upgrade the clinic database with `medcard device setup-db`",
    );
    let up = ok(&Command::new(medcard_bin()).args(setup).output().unwrap());
    assert!(up.contains("schema version 3"), "{up}");
    ok(&join(&owner, &admin_pw));
    let st = json(&medcard(&data, &["device", "status", "--json"]));
    assert_eq!(st["lists"]["revoked_cards"], 1, "{st}");
}

/// `medcard <args> --data <data>` with `stdin` (PINs for the staff sign-in and a new card).
fn medcard_in(data: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(medcard_bin())
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("MEDCARD_NOW")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn staff_cards_issued_at_the_admin_pc_gate_every_bedside_of_the_clinic_even_offline() {
    const ADMIN_PIN: &str = "246810";
    const CLIN_PIN: &str = "135790";
    const STAFF_PUK: &str = "55443322";
    let c = Clinic::with_store("staff", None, &[("kiosk-1", "kiosk"), ("bed-1", "bedside")]);
    let _l0 = lock_reader(&READER_00);
    let _l1 = lock_reader(&READER_01);
    let ctx = context_for(&READER_00);
    let new_card = |name: &str, serial: &str| {
        let card = c.root.join(name);
        assert!(Command::new(card_sim()).args(["new", "--serial", serial, "--out"]).arg(&card).status().unwrap().success());
        card
    };
    let f = c.root.join("allergies.txt");
    std::fs::write(&f, "penicillin\n").unwrap();
    ok(&medcard(&c.dev("admin-1"), &["record", "add", "--patient-id", PATIENT, "--category", "allergies", f.to_str().unwrap()]));
    let patient = new_card("patient.bin", "8401");
    let mut sim = ServedCard::serve(&card_sim(), &READER_00, &ctx, &patient);
    ok(&medcard(
        &c.dev("admin-1"),
        &["card", "issue", "--reader", READER, "--patient-id", PATIENT, "--name", "Ada", "--pin", PIN, "--puk", PUK],
    ));
    ok(&medcard(&c.dev("kiosk-1"), &["consent", "set", "--reader", READER, "--scope", "allergies", "--pin", PIN]));
    let code1 = c.code("kiosk-1", "s1");
    let code2 = c.code("kiosk-1", "s2");
    sim.kill(&ctx);

    // The admin PC issues the first (admin) card, then a clinician's with the admin signed in.
    let admin = new_card("admin.bin", "8402");
    let clinician = new_card("clinician.bin", "8403");
    let mut r1 = ServedCard::serve(&card_sim(), &READER_01, &ctx, &admin);
    let issue = |id: &str, role: &str| {
        ["staff", "issue", "--reader", READER_01.name, "--staff-id", id, "--name", id, "--role", role].map(str::to_owned).to_vec()
    };
    let args = issue("A-01", "admin");
    ok(&medcard_in(&c.dev("admin-1"), &args.iter().map(String::as_str).collect::<Vec<_>>(), &format!("{ADMIN_PIN}\n{STAFF_PUK}\n")));
    r1.kill(&ctx);
    let r0 = ServedCard::serve(&card_sim(), &READER_00, &ctx, &admin);
    let _r1 = ServedCard::serve(&card_sim(), &READER_01, &ctx, &clinician);
    let mut args = issue("S-0042", "clinician");
    args.extend(["--staff-reader".into(), READER.into()]);
    ok(&medcard_in(
        &c.dev("admin-1"),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &format!("{ADMIN_PIN}\n{CLIN_PIN}\n{STAFF_PUK}\n"),
    ));
    drop(r0);

    // bed-1, another process with its own data directory and a database role that may not read
    // the cards table, knows the clinic has staff cards and refuses a scan without a sign-in.
    refused(&medcard(&c.dev("bed-1"), &["scan", "--text", &code1]), 1, "requires a clinician's staff card");
    let staff = ["--staff-reader", READER_01.name];
    let scanned = medcard_in(&c.dev("bed-1"), &[&["scan", "--text", &code1, "--json"][..], &staff].concat(), &format!("{CLIN_PIN}\n"));
    let v = json(&scanned);
    let cache_id = v["records"][0]["cache_id"].as_str().unwrap().to_owned();
    let log = c.audit();
    let read = log.iter().rev().find(|e| e["kind"] == "record.read").unwrap();
    assert_eq!(read["actor"], "bed-1/staff:S-0042#8403", "the clinic log prefixes the device; the card signed the rest");
    let verified = json(&medcard(&c.dev("bed-1"), &["audit", "verify", "--json"]));
    assert!(verified["staff_signatures"].as_u64().unwrap() >= 3, "{verified}");

    // The clinic database down: the bedside still requires a sign-in (it noted the requirement),
    // and a signed-in clinician opens the cached record, the revocation checked against the
    // device's copy of the list; a new scan is refused as before, the code not spent.
    c.pg.stop();
    refused(&medcard(&c.dev("bed-1"), &["scan", "--cached", &cache_id]), 1, "requires a clinician's staff card");
    let cached = ok(&medcard_in(&c.dev("bed-1"), &[&["scan", "--cached", &cache_id][..], &staff].concat(), &format!("{CLIN_PIN}\n")));
    assert!(cached.contains("penicillin"), "{cached}");
    refused(
        &medcard_in(&c.dev("bed-1"), &[&["scan", "--text", &code2][..], &staff].concat(), &format!("{CLIN_PIN}\n")),
        3,
        "cannot check whether this code was already used",
    );
    c.pg.restart();
    let sent = json(&medcard(&c.dev("bed-1"), &["device", "sync", "--json"]))["sent"].as_u64().unwrap();
    assert!(sent >= 3, "the offline sign-in, read and end reach the clinic log: {sent}");
    let log = c.audit();
    assert!(
        log.iter().any(|e| e["kind"] == "staff.session" && e["detail"].as_str().unwrap().contains("revocations_from_copy=")),
        "the offline sign-in says its revocation check used the copy"
    );
    let verified = json(&medcard(&c.dev("admin-1"), &["audit", "verify", "--json"]));
    assert!(verified["staff_signatures"].as_u64().unwrap() >= 5, "{verified}");
}

#[test]
fn records_in_a_three_node_garage_outlive_one_node_and_fail_plainly_without_quorum() {
    let g = Garage::start("s3");
    let c = Clinic::with_store("s3", Some(g.join_args()), &[("kiosk-1", "kiosk"), ("bed-1", "bedside")]);
    let add = |cat: &str, body: &str| {
        let f = c.root.join(format!("{cat}.txt"));
        std::fs::write(&f, body).unwrap();
        medcard(&c.dev("admin-1"), &["record", "add", "--patient-id", PATIENT, "--category", cat, f.to_str().unwrap()])
    };
    ok(&add("labs", "HbA1c 5.4 %\n"));
    let st = json(&medcard(&c.dev("bed-1"), &["device", "status", "--json"]));
    assert!(st["store"].as_str().unwrap().starts_with("s3://medcard"), "{st}");
    // A record larger than one part goes up in parts and comes back whole.
    let big: String = (0..1_500_000).map(|i| format!("{:08}\n", i)).collect::<String>();
    ok(&add("imaging", &big));

    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let card = c.root.join("card.bin");
    assert!(Command::new(card_sim()).args(["new", "--serial", "8301", "--out"]).arg(&card).status().unwrap().success());
    let _sim = ServedCard::serve(&card_sim(), &READER_00, &ctx, &card);
    ok(&medcard(
        &c.dev("admin-1"),
        &["card", "issue", "--reader", READER, "--patient-id", PATIENT, "--name", "Ada", "--pin", PIN, "--puk", PUK],
    ));
    ok(&medcard(&c.dev("kiosk-1"), &["consent", "set", "--reader", READER, "--scope", "labs,imaging", "--pin", PIN]));
    let code = c.code("kiosk-1", "all-up");
    let shown = ok(&medcard(&c.dev("bed-1"), &["scan", "--text", &code]));
    assert!(shown.contains("HbA1c") && shown.contains("01499999"), "both records, the large one whole");

    // One node killed: check-ins and scans go on.
    g.kill_node(1);
    ok(&add("allergies", "penicillin\n"));
    let code = c.code("kiosk-1", "one-down");
    ok(&medcard(&c.dev("bed-1"), &["scan", "--text", &code]));
    let spare = c.code("kiosk-1", "spare");

    // Two killed: a plain "record store unavailable", nothing half-written.
    g.kill_node(2);
    let before = json(&medcard(&c.dev("kiosk-1"), &["record", "list", "--json"])).as_array().unwrap().len();
    refused(&add("notes", "not stored\n"), 1, "record store unavailable");
    let after = json(&medcard(&c.dev("kiosk-1"), &["record", "list", "--json"])).as_array().unwrap().len();
    assert_eq!(before, after, "no index row without its record");
    refused(&c.checkin("kiosk-1", "two-down"), 1, "record store unavailable");
    refused(&medcard(&c.dev("bed-1"), &["scan", "--text", &spare]), 3, "record store unavailable");

    // Back: the code that could not be fetched was not spent; adding works again.
    g.start_node(1);
    g.start_node(2);
    // Garage takes a moment to see its peers again; retrying is what the nurse would do.
    let mut last = String::new();
    let mut shown = None;
    for _ in 0..120 {
        let o = medcard(&c.dev("bed-1"), &["scan", "--text", &spare]);
        if o.status.success() {
            shown = Some(o);
            break;
        }
        last = refused(&o, 3, "record store unavailable");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let shown = shown.unwrap_or_else(|| panic!("the store did not come back: {last}"));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("HbA1c"));
    ok(&add("notes", "stored now\n"));
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(f: impl FnOnce() -> Output) -> (f64, Output) {
    let t = std::time::Instant::now();
    let o = f();
    (t.elapsed().as_secs_f64() * 1000.0, o)
}

/// The figures of docs/deployment.md, as ratios measured in one run against the single-device
/// mode on the same machine (no timing assertions):
/// `cargo test -p medcard-e2e --test clinic_mode -- --ignored --nocapture`.
/// `MEDCARD_BENCH_RUNS` (default 11) check-ins and scans per mode; `MEDCARD_BENCH_AUDIT`
/// (default 1,000,000) audit entries for the verify figure.
#[test]
#[ignore = "figures, not a check: run with --ignored --nocapture"]
fn clinic_mode_figures() {
    let runs: usize = std::env::var("MEDCARD_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(11);
    let audit_n: u64 = std::env::var("MEDCARD_BENCH_AUDIT").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let c = Clinic::new("bench");
    // The single-device reference: the same clinic keys, no device.json, its own records.
    let solo = c.dev("solo");
    let solo_bed_base = c.root.join("solo-beds");
    let keys = c.dev("admin-1").join("keys");
    let cp = |to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        assert!(Command::new("cp").arg("-a").arg(&keys).arg(to).status().unwrap().success());
    };
    cp(&solo);
    let f = c.root.join("labs.txt");
    std::fs::write(&f, "HbA1c 5.4 %\n").unwrap();
    for d in [c.dev("admin-1"), solo.clone()] {
        ok(&medcard(&d, &["record", "add", "--patient-id", PATIENT, "--category", "labs", f.to_str().unwrap()]));
    }
    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let card = c.root.join("card.bin");
    assert!(Command::new(card_sim()).args(["new", "--serial", "8201", "--out"]).arg(&card).status().unwrap().success());
    let _sim = ServedCard::serve(&card_sim(), &READER_00, &ctx, &card);
    ok(&medcard(
        &c.dev("admin-1"),
        &["card", "issue", "--reader", READER, "--patient-id", PATIENT, "--name", "Ada", "--pin", PIN, "--puk", PUK],
    ));
    ok(&medcard(&c.dev("kiosk-1"), &["consent", "set", "--reader", READER, "--scope", "labs", "--pin", PIN]));

    // Check-in and scan latency, alternating the modes so load drifts hit both alike.
    let (mut ck, mut cs, mut sk, mut ss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let solo_bed = c.dev("solo-bed");
    cp(&solo_bed);
    let solo_store = solo.join("records");
    for i in 0..runs {
        let (ms, o) = timed(|| c.checkin("kiosk-1", &format!("c{i}")));
        ck.push(ms);
        let code = json(&o)["text"].as_str().unwrap().to_owned();
        let png = c.root.join(format!("s{i}.png"));
        let (ms, o) = timed(|| medcard(&solo, &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap(), "--json"]));
        sk.push(ms);
        let solo_code = json(&o)["text"].as_str().unwrap().to_owned();
        let (ms, o) = timed(|| medcard(&c.dev("bed-1"), &["scan", "--text", &code]));
        ok(&o);
        cs.push(ms);
        let (ms, o) = timed(|| medcard(&solo_bed, &["scan", "--text", &solo_code, "--store", solo_store.to_str().unwrap()]));
        ok(&o);
        ss.push(ms);
    }
    let (ck, sk, cs, ss) = (median(ck), median(sk), median(cs), median(ss));
    println!("check-in median over {runs}: clinic {ck:.1} ms, single-device {sk:.1} ms, ratio {:.2}", ck / sk);
    println!("scan median over {runs}: clinic {cs:.1} ms, single-device {ss:.1} ms, ratio {:.2}", cs / ss);

    // 16 concurrent bedside processes, each on its own device, each scanning its own fresh codes.
    let per = 5usize;
    let procs = 16usize;
    let bed_pw = c.pg.login_role("bench_beds", "medcard_bedside", &c.root);
    let mut clinic_beds = Vec::new();
    let mut solo_beds = Vec::new();
    for i in 0..procs {
        let d = c.root.join(format!("cb-{i}"));
        cp(&d);
        let url = c.pg.url("bench_beds", DB);
        let id = format!("cb-{i}");
        ok(&medcard(
            &d,
            &[
                "device",
                "join",
                "--role",
                "bedside",
                "--device-id",
                &id,
                "--db",
                &url,
                "--db-tls",
                "disable",
                "--db-password-file",
                bed_pw.to_str().unwrap(),
                "--store-dir",
                c.store.to_str().unwrap(),
            ],
        ));
        clinic_beds.push(d);
        let s = solo_bed_base.join(format!("sb-{i}"));
        cp(&s);
        solo_beds.push(s);
    }
    let mut clinic_codes = vec![Vec::new(); procs];
    let mut solo_codes = vec![Vec::new(); procs];
    for i in 0..procs * per {
        clinic_codes[i % procs].push(c.code("kiosk-1", &format!("many{i}")));
        let png = c.root.join("many-solo.png");
        let _ = std::fs::remove_file(&png);
        let o = medcard(&solo, &["checkin", "--reader", READER, "--pin", PIN, "--out", png.to_str().unwrap(), "--json"]);
        solo_codes[i % procs].push(json(&o)["text"].as_str().unwrap().to_owned());
    }
    let run = |beds: &[PathBuf], codes: &[Vec<String>], store: &Path| -> f64 {
        let t = std::time::Instant::now();
        std::thread::scope(|s| {
            for (d, cs) in beds.iter().zip(codes) {
                s.spawn(move || {
                    for code in cs {
                        ok(&medcard(d, &["scan", "--text", code, "--store", store.to_str().unwrap()]));
                    }
                });
            }
        });
        (procs * per) as f64 / t.elapsed().as_secs_f64()
    };
    let clinic_rate = run(&clinic_beds, &clinic_codes, &c.store);
    let solo_rate = run(&solo_beds, &solo_codes, &solo_store);
    println!(
        "{procs} concurrent bedside processes, {} scans each: clinic {clinic_rate:.1} scans/s, single-device {solo_rate:.1} scans/s, ratio {:.2}",
        per,
        clinic_rate / solo_rate
    );

    // audit verify over the clinic log with audit_n more entries vs sha256sum of their bytes.
    let next: u64 = c.pg.sql(DB, "SELECT COALESCE(max(seq) + 1, 0) FROM audit_entries").trim().parse().unwrap();
    let copy = c.root.join("audit.copy");
    let raw = c.root.join("audit.bytes");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&copy).unwrap());
        let mut r = std::io::BufWriter::new(std::fs::File::create(&raw).unwrap());
        for i in 0..audit_n {
            let seq = next + i;
            let subject = format!("medcard-store:sha256/{seq:064x}");
            let detail = format!("qr={seq:032x} cache={seq:032x} patient=P-{}", seq % 5000);
            let e = reader::audit::encode_entry(seq, 1_800_000_000 + seq as i64, "record.read", "bench/cli:nurse", &subject, "ok", &detail);
            let leaf = reader::audit::merkle::leaf_hash(&e);
            r.write_all(&e).unwrap();
            let hex: String = leaf.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(
                w,
                "{seq}\tbench-{seq}\tbench\t0\t{}\trecord.read\tbench/cli:nurse\t{subject}\tok\t{detail}\t\\\\x{hex}",
                1_800_000_000 + seq as i64
            )
            .unwrap();
        }
    }
    c.pg.sql(
        DB,
        &format!(
            "\\copy audit_entries (seq, entry_id, device, received_at, time, kind, actor, subject, outcome, detail, leaf_hash) FROM '{}'",
            copy.display()
        ),
    );
    let (verify_ms, o) = timed(|| medcard(&c.dev("bed-1"), &["audit", "verify", "--json"]));
    let v = json(&o);
    assert_eq!(v["ok"], true, "{v}");
    let (sha_ms, o) = timed(|| Command::new("sha256sum").arg(&raw).output().unwrap());
    assert!(o.status.success());
    println!(
        "audit verify of {} clinic entries: {verify_ms:.0} ms; sha256sum of their {} canonical bytes: {sha_ms:.0} ms; ratio {:.2}",
        v["entries"],
        std::fs::metadata(&raw).unwrap().len(),
        verify_ms / sha_ms
    );
}

#[test]
fn a_missing_bucket_a_wrong_secret_or_no_endpoint_at_join_writes_nothing_and_says_what_to_check() {
    let g = Garage::start("s3bad");
    let c = Clinic::with_store("s3bad", Some(g.join_args()), &[]);
    let user = "bed_x";
    let pw = c.pg.login_role(user, "medcard_bedside", &c.root);
    let url = c.pg.url(user, DB);
    let keys = c.dev("admin-1").join("keys");
    let wrong_secret = c.root.join("wrong.secret");
    std::fs::write(&wrong_secret, "0000000000000000000000000000000000000000000000000000000000000000\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong_secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let closed = format!("http://127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let join = |endpoint: &str, bucket: &str, secret: &Path| {
        let args = [
            "device",
            "join",
            "--role",
            "bedside",
            "--device-id",
            "bed-x",
            "--keys",
            keys.to_str().unwrap(),
            "--db",
            &url,
            "--db-tls",
            "disable",
            "--db-password-file",
            pw.to_str().unwrap(),
            "--s3-endpoint",
            endpoint,
            "--s3-bucket",
            bucket,
            "--s3-key-id",
            &g.key_id,
            "--s3-secret-file",
            secret.to_str().unwrap(),
        ];
        medcard(&c.dev("bed-x"), &args)
    };
    let e = g.endpoints[0].clone();
    for (o, needle) in [
        (join(&e, "no-such-bucket", &g.secret_file), "no-such-bucket"),
        (join(&e, &g.bucket, &wrong_secret), "record store"),
        (join(&closed, &g.bucket, &g.secret_file), "record store unavailable"),
    ] {
        let err = refused(&o, 1, needle);
        println!("{}", err.trim());
        assert!(!err.contains(std::fs::read_to_string(&g.secret_file).unwrap().trim()), "the secret was printed: {err}");
        assert!(!c.dev("bed-x").join("device.json").exists(), "a refused join wrote device.json: {err}");
        assert!(!c.dev("bed-x").join("keys").join("s3.secret").exists(), "a refused join kept the secret: {err}");
    }
    // The same join with the right bucket and secret goes through.
    let out = ok(&join(&e, &g.bucket, &g.secret_file));
    assert!(out.contains("bed-x joined clinic clinic-a as bedside"), "{out}");
}
