//! `medcard trust` as a process (issue 13: trust lists were unsigned and transitive): a bundle is
//! signed by the exporting clinic, an import shows and requires the exporter's CA fingerprint,
//! another clinic's partners are trusted only with `--include-partners`, every change and refusal
//! is audited, a refusal changes no trust file, and permissive trust files are refused on load.
#![allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn medcard(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medcard")).args(args).env("MEDCARD_HOME", home).output().unwrap_or_else(|e| panic!("run medcard: {e}"))
}

fn ok(home: &Path, args: &[&str]) -> String {
    let o = medcard(home, args);
    assert!(o.status.success(), "medcard {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(home: &Path, args: &[&str]) -> String {
    let o = medcard(home, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "medcard {args:?} should be refused, but it said:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

struct Clinics {
    dir: tempfile::TempDir,
}

impl Clinics {
    fn new() -> Self {
        Clinics { dir: tempfile::tempdir().unwrap() }
    }
    fn init(&self, id: &str) -> PathBuf {
        let d = self.dir.path().join(id);
        ok(&d, &["init", "--clinic-id", id]);
        d
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// SHA-256 of the clinic's CA certificate (DER): what its staff read over the phone.
fn fingerprint(clinic: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(clinic.join("keys/ca.crt")).unwrap()))
}

/// The trust file names (not the clinic itself).
fn trusted(clinic: &Path) -> Vec<String> {
    let v = json(&ok(clinic, &["trust", "list", "--json"]));
    v.as_array().unwrap().iter().skip(1).map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

fn trust_files(clinic: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(clinic.join("trust"))
        .map(|d| {
            d.filter_map(Result::ok).map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Audit entries `(kind, subject, outcome, detail)` of the kinds starting with `prefix`.
fn audited(clinic: &Path, prefix: &str) -> Vec<(String, String, String, String)> {
    let v = json(&ok(clinic, &["audit", "show", "--json"]));
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with(prefix))
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("kind"), s("subject"), s("outcome"), s("detail"))
        })
        .collect()
}

/// Clinic A trusting clinic B, and A's `trust export --all` bundle.
fn a_trusting_b(c: &Clinics) -> (PathBuf, PathBuf, PathBuf) {
    let a = c.init("clinic-a");
    let b = c.init("clinic-b");
    let b_pem = c.file("clinic-b-ca.pem");
    ok(&b, &["trust", "export", "--out", b_pem.to_str().unwrap()]);
    ok(&a, &["trust", "add", b_pem.to_str().unwrap(), "--fingerprint", &fingerprint(&b)]);
    let bundle = c.file("clinic-a-bundle.pem");
    ok(&a, &["trust", "export", "--all", "--out", bundle.to_str().unwrap()]);
    (a, b, bundle)
}

#[test]
fn importing_clinic_a_bundle_trusts_clinic_a_only_not_its_partner_clinic_b() {
    let c = Clinics::new();
    let (a, b, bundle) = a_trusting_b(&c);
    let z = c.init("clinic-z");
    let out = json(&ok(&z, &["trust", "import", bundle.to_str().unwrap(), "--fingerprint", &fingerprint(&a), "--json"]));
    assert_eq!(trusted(&z), ["clinic-a.pem"], "importing A's bundle must trust A only: {out}");
    assert_eq!(out["clinic_id"], "clinic-a");
    assert_eq!(out["fingerprint"], fingerprint(&a));
    // B is listed as left out, with what to do.
    assert_eq!(out["partners_not_imported"][0]["clinic_id"], "clinic-b", "{out}");
    let text = ok(&z, &["trust", "import", bundle.to_str().unwrap(), "--fingerprint", &fingerprint(&a)]);
    assert!(text.contains("clinic-b") && text.contains("--include-partners"), "{text}");

    // Only when asked for explicitly, and each partner listed.
    let out = ok(&z, &["trust", "import", bundle.to_str().unwrap(), "--fingerprint", &fingerprint(&a), "--include-partners"]);
    assert!(out.contains("clinic-b") && out.contains(&fingerprint(&b)), "each partner is listed with its fingerprint: {out}");
    assert_eq!(trusted(&z), ["clinic-a.pem", "clinic-b.pem"]);
    let imports = audited(&z, "trust.imported");
    assert!(imports.iter().any(|e| e.1 == "clinic-a" && e.2 == "ok"), "{imports:?}");
    assert!(imports.iter().any(|e| e.1 == "clinic-b" && e.3.contains("partner of clinic-a")), "{imports:?}");
    assert!(audited(&a, "trust.exported").iter().any(|e| e.3.contains("clinic-b")), "the export is audited with what it held");
}

#[test]
fn trust_import_without_the_fingerprint_is_refused_shows_it_and_trusts_nothing() {
    let c = Clinics::new();
    let (a, _b, bundle) = a_trusting_b(&c);
    let z = c.init("clinic-z");
    let e = err(&z, &["trust", "import", bundle.to_str().unwrap()]);
    assert!(e.contains("clinic-a") && e.contains(&fingerprint(&a)) && e.contains("--fingerprint"), "shows id and fingerprint: {e}");
    assert_eq!(trust_files(&z), [], "a refused import trusts nothing");
    assert_eq!(audited(&z, "trust.refused").len(), 1, "the refusal is audited");
}

#[test]
fn trust_import_with_a_wrong_fingerprint_is_refused_audited_and_trusts_nothing() {
    let c = Clinics::new();
    let (_a, b, bundle) = a_trusting_b(&c);
    let z = c.init("clinic-z");
    // The fingerprint of another clinic (as if the file were swapped on the way).
    let e = err(&z, &["trust", "import", bundle.to_str().unwrap(), "--fingerprint", &fingerprint(&b), "--include-partners"]);
    assert!(e.contains("does not match"), "{e}");
    let e = err(&z, &["trust", "import", bundle.to_str().unwrap(), "--fingerprint", "12:34"]);
    assert!(e.contains("64 hex digits"), "{e}");
    assert_eq!(trust_files(&z), []);
    let refused = audited(&z, "trust.refused");
    assert!(refused.iter().any(|r| r.1 == "clinic-a" && r.2 == "fingerprint-mismatch"), "{refused:?}");
}

#[test]
fn tampered_or_unsigned_trust_bundles_are_refused_and_trust_nothing() {
    let c = Clinics::new();
    let (a, b, bundle) = a_trusting_b(&c);
    let z = c.init("clinic-z");
    let fp = fingerprint(&a);
    // The old unsigned format: PEM certificates one after the other.
    let unsigned = c.file("unsigned.pem");
    let mut text = std::fs::read_to_string(c.file("clinic-b-ca.pem")).unwrap();
    text.push_str(&std::fs::read_to_string(c.file("clinic-b-ca.pem")).unwrap());
    std::fs::write(&unsigned, text).unwrap();
    let e = err(&z, &["trust", "import", unsigned.to_str().unwrap(), "--fingerprint", &fp]);
    assert!(e.contains("not a signed MedCard trust bundle"), "{e}");
    // Every byte of the signed bundle flipped in turn (the PEM armour taken off: import takes the bare COSE_Sign1 too).
    let armoured = std::fs::read(&bundle).unwrap();
    let (label, der) = x509_cert::der::pem::decode_vec(&armoured).unwrap();
    assert_eq!(label, "MEDCARD TRUST BUNDLE");
    for i in (0..der.len()).step_by(7) {
        let mut bad = der.clone();
        bad[i] ^= 0x01;
        let f = c.file("bad.bundle");
        std::fs::write(&f, &bad).unwrap();
        let o = medcard(&z, &["trust", "import", f.to_str().unwrap(), "--fingerprint", &fp, "--include-partners"]);
        assert_eq!(o.status.code(), Some(1), "byte {i} flipped was accepted: {}", String::from_utf8_lossy(&o.stdout));
    }
    assert_eq!(trust_files(&z), []);
    let _ = b;
}

#[test]
fn trust_add_of_a_certificate_requires_its_fingerprint_and_every_change_is_audited() {
    let c = Clinics::new();
    let a = c.init("clinic-a");
    let z = c.init("clinic-z");
    let pem = c.file("a.pem");
    let shown = json(&ok(&a, &["trust", "fingerprint", "--json"]));
    assert_eq!(shown["clinic_id"], "clinic-a");
    assert_eq!(shown["fingerprint"], fingerprint(&a));
    ok(&a, &["trust", "export", "--out", pem.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&pem).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(audited(&a, "trust.exported").len(), 1);

    let e = err(&z, &["trust", "add", pem.to_str().unwrap()]);
    assert!(e.contains("clinic-a") && e.contains(&fingerprint(&a)), "{e}");
    assert_eq!(trust_files(&z), []);
    // The fingerprint as `openssl x509 -fingerprint -sha256` prints it is accepted too.
    let colons =
        fingerprint(&a).to_uppercase().as_bytes().chunks(2).map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>().join(":");
    ok(&z, &["trust", "add", pem.to_str().unwrap(), "--fingerprint", &colons]);
    assert_eq!(trusted(&z), ["clinic-a.pem"], "named after the clinic id");
    ok(&z, &["trust", "remove", "clinic-a.pem"]);
    assert_eq!(trust_files(&z), []);
    let kinds: Vec<_> = audited(&z, "trust.").into_iter().map(|e| (e.0, e.1, e.2)).collect();
    let want = |k: &str, o: &str| (k.to_owned(), "clinic-a".to_owned(), o.to_owned());
    assert_eq!(kinds, [want("trust.refused", "no-fingerprint"), want("trust.added", "ok"), want("trust.removed", "ok")]);
}

#[test]
fn trust_add_of_a_bare_key_requires_a_clinic_id_and_its_fingerprint() {
    let c = Clinics::new();
    let z = c.init("clinic-z");
    let key = c.file("issuer.key");
    let o = Command::new(env!("CARGO_BIN_EXE_medcard")).args(["qr", "keygen", key.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spki = PathBuf::from(format!("{}.pub.pem", key.display()));
    let e = err(&z, &["trust", "add", spki.to_str().unwrap()]);
    assert!(e.contains("--clinic-id"), "{e}");
    let e = err(&z, &["trust", "add", spki.to_str().unwrap(), "--clinic-id", "lab-1"]);
    let fp = json(&ok(&z, &["trust", "fingerprint", spki.to_str().unwrap(), "--json"]))["fingerprint"].as_str().unwrap().to_owned();
    assert!(e.contains(&fp), "{e}");
    ok(&z, &["trust", "add", spki.to_str().unwrap(), "--clinic-id", "lab-1", "--fingerprint", &fp]);
    assert_eq!(trusted(&z), ["lab-1.pem"]);
}

#[test]
fn group_readable_trust_files_are_refused_when_loading_with_the_chmod_that_fixes_them() {
    let c = Clinics::new();
    let a = c.init("clinic-a");
    let z = c.init("clinic-z");
    let pem = c.file("a.pem");
    ok(&a, &["trust", "export", "--out", pem.to_str().unwrap()]);
    ok(&z, &["trust", "add", pem.to_str().unwrap(), "--fingerprint", &fingerprint(&a)]);
    let dir = z.join("trust");
    let file = dir.join("clinic-a.pem");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = err(&z, &["trust", "list"]);
    assert!(e.contains(&format!("chmod 600 {}", file.display())), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = err(&z, &["trust", "list"]);
    assert!(e.contains(&format!("chmod 700 {}", dir.display())), "{e}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(trusted(&z), ["clinic-a.pem"]);
}
