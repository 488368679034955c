//! `medcard record|cache|audit` as a process against a fresh clinic: round trips (0 B, 1 KiB,
//! 50 MiB by default `MEDCARD_BIG_RECORD_MIB`), audit tampering through raw SQL named by
//! `medcard audit verify`, witness consistency, and a foreign database key refused plainly.
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use reader::db::ClinicDb;
use reader::keystore::Keystore;

type R = Result<(), Box<dyn std::error::Error>>;

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
    assert_eq!(o.status.code(), Some(1), "medcard {args:?} should fail: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn clinic(id: &str) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let d = tempfile::tempdir()?;
    ok(d.path(), &["init", "--clinic-id", id]);
    Ok(d)
}

fn add(home: &Path, file: &Path, patient: &str, category: &str) -> Result<String, Box<dyn std::error::Error>> {
    let out = ok(home, &["record", "add", "--patient-id", patient, "--category", category, "--json", &file.to_string_lossy()]);
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["record_id"].as_str().unwrap_or_default().to_owned())
}

/// Raw SQL with the clinic's key (what an insider with the key could do).
fn raw_sql(home: &Path, sql: &str) -> R {
    let ks = Keystore::open(home)?;
    let db = ClinicDb::open(&home.join("clinic.db"), &ks.database_key())?;
    db.conn().execute_batch(sql)?;
    Ok(())
}

#[test]
fn record_round_trips_through_the_cli_for_0_bytes_1_kib_and_a_big_file() -> R {
    let home = clinic("clinic-rt")?;
    let h = home.path();
    let outside = tempfile::tempdir()?; // exports never go into the data directory
    let mib: usize = std::env::var("MEDCARD_BIG_RECORD_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    for (name, len) in [("empty.txt", 0usize), ("one.json", 1024), ("big.pdf", mib << 20)] {
        let src = h.join(name);
        let doc: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
        std::fs::write(&src, &doc)?;
        let id = add(h, &src, "P-77", "imaging")?;
        let out = outside.path().join(format!("{name}.out"));
        ok(h, &["record", "get", &id, "--out", &out.to_string_lossy()]);
        assert!(std::fs::read(&out)? == doc, "{name}: the document came back different");
    }
    let list = ok(h, &["record", "list", "--patient-id", "P-77"]);
    assert!(list.contains("3 record(s)"), "{list}");
    assert!(ok(h, &["audit", "verify"]).contains("audit log OK: 6 entries"));
    Ok(())
}

#[test]
fn corrupted_store_file_fails_get_with_an_integrity_error_naming_the_record() -> R {
    let home = clinic("clinic-corrupt")?;
    let h = home.path();
    let src = h.join("note.txt");
    std::fs::write(&src, "Patient Zebedee: stable")?;
    let id = add(h, &src, "P-1", "notes")?;
    let v: serde_json::Value = serde_json::from_str(&ok(h, &["record", "list", "--json"]))?;
    let locator = v[0]["locator"].as_str().unwrap_or_default().to_owned();
    let hex = locator.trim_start_matches("medcard-store:sha256/");
    let file = h.join("records").join("sha256").join(&hex[..2]).join(hex);
    let mut bytes = std::fs::read(&file)?;
    bytes[40] ^= 0x01;
    std::fs::write(&file, &bytes)?;
    let outside = tempfile::tempdir()?;
    let x = outside.path().join("x");
    let e = err(h, &["record", "get", &id, "--out", &x.to_string_lossy()]);
    assert!(e.contains("integrity check") && e.contains(&locator), "{e}");
    assert!(!x.exists(), "nothing written");
    assert_eq!(std::fs::read(&file)?, bytes, "the damaged file is left as found");
    Ok(())
}

#[test]
fn audit_verify_names_the_first_edited_deleted_inserted_or_reordered_row() -> R {
    let cases: [(&str, &str); 4] = [
        ("UPDATE audit_entries SET outcome = 'refused' WHERE seq = 3", "#3 was altered"),
        ("DELETE FROM audit_entries WHERE seq = 2", "#2 is missing"),
        (
            "UPDATE audit_entries SET seq = -seq - 1 WHERE seq >= 4; UPDATE audit_entries SET seq = -seq WHERE seq < 0;
             INSERT INTO audit_entries (seq, time, kind, actor, subject, outcome, detail, leaf_hash)
               VALUES (4, 0, 'record.read', 'mallory', 'x', 'ok', '', x'00')",
            "#4 was altered",
        ),
        (
            "UPDATE audit_entries SET seq = 100 WHERE seq = 1; UPDATE audit_entries SET seq = 1 WHERE seq = 5;
             UPDATE audit_entries SET seq = 5 WHERE seq = 100",
            "#1 was altered",
        ),
    ];
    for (sql, want) in cases {
        let home = clinic("clinic-audit")?;
        let h = home.path();
        let src = h.join("a.txt");
        std::fs::write(&src, "x")?;
        for _ in 0..4 {
            add(h, &src, "P-5", "labs")?;
        }
        ok(h, &["cache", "purge"]);
        ok(h, &["cache", "purge"]);
        ok(h, &["audit", "checkpoint"]);
        assert!(ok(h, &["audit", "verify"]).contains("audit log OK: 6 entries"));
        raw_sql(h, sql)?;
        let e = err(h, &["audit", "verify"]);
        assert!(e.contains(want), "after {sql:?}: {e}");
    }
    Ok(())
}

#[test]
fn witness_checkpoint_proves_growth_and_inclusion_through_the_cli() -> R {
    let home = clinic("clinic-witness")?;
    let h = home.path();
    let src = h.join("a.txt");
    std::fs::write(&src, "x")?;
    add(h, &src, "P-9", "labs")?;
    let outside = tempfile::tempdir()?;
    let old = outside.path().join("old.cp");
    ok(h, &["audit", "checkpoint", "--out", &old.to_string_lossy()]);
    for _ in 0..5 {
        add(h, &src, "P-9", "labs")?;
    }
    ok(h, &["audit", "checkpoint"]);
    let c: serde_json::Value = serde_json::from_str(&ok(h, &["audit", "consistency", "--old", &old.to_string_lossy(), "--json"]))?;
    assert_eq!((c["old_size"].as_u64(), c["new_size"].as_u64(), c["verified"].as_bool()), (Some(1), Some(6), Some(true)));
    let p: serde_json::Value = serde_json::from_str(&ok(h, &["audit", "prove", "--entry", "4", "--json"]))?;
    assert_eq!(p["tree_size"].as_u64(), Some(6));
    let e = err(h, &["audit", "prove", "--entry", "6"]);
    assert!(e.contains("not covered"), "{e}");
    Ok(())
}

#[test]
fn another_clinics_database_is_refused_as_a_wrong_key() -> R {
    let a = clinic("clinic-a")?;
    let b = clinic("clinic-b")?;
    ok(a.path(), &["audit", "verify"]);
    ok(b.path(), &["audit", "verify"]);
    std::fs::copy(a.path().join("clinic.db"), b.path().join("clinic.db"))?;
    let e = err(b.path(), &["record", "list"]);
    assert!(e.contains("wrong database key") && e.contains("clinic.db"), "{e}");
    Ok(())
}

#[test]
fn audit_checkpoint_prints_its_time_as_rfc3339_and_json_keeps_unix_seconds() -> R {
    let home = clinic("clinic-cp-time")?;
    let h = home.path();
    let text = ok(h, &["audit", "checkpoint"]);
    let time = text.lines().next().and_then(|l| l.rsplit_once(", time ")).map(|(_, t)| t.to_owned()).unwrap_or_default();
    // 2026-11-23T10:00:00Z
    let shape: Vec<bool> = time.bytes().map(|b| b.is_ascii_digit()).collect();
    let digits =
        [true, true, true, true, false, true, true, false, true, true, false, true, true, false, true, true, false, true, true, false];
    assert_eq!(shape, digits, "not RFC 3339 UTC: {text}");
    assert!(time.ends_with('Z') && time.get(10..11) == Some("T"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(h, &["audit", "checkpoint", "--json"]))?;
    let secs = v["time"].as_i64().ok_or("JSON time is not a number")?;
    assert_eq!(qr::time::format_rfc3339(secs).get(..4), time.get(..4), "the same clock, two formats");
    Ok(())
}

/// Issue 13: `--out` used to rename over whatever the path named, so `trust export --out
/// keys/master.key` destroyed the clinic's master secret.
#[test]
fn trust_export_out_over_the_master_key_is_refused_and_the_key_survives() -> R {
    let home = clinic("clinic-overwrite")?;
    let h = home.path();
    let key = h.join("keys").join("master.key");
    let before = std::fs::read(&key)?;
    let o = medcard(h, &["trust", "export", "--out", &key.to_string_lossy()]);
    assert_eq!(std::fs::read(&key)?, before, "trust export --out replaced the clinic's master secret");
    assert_eq!(o.status.code(), Some(1), "refused: {}", String::from_utf8_lossy(&o.stderr));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("data directory") && e.contains("outside"), "{e}");
    Ok(())
}

/// Issue 13: no `--out` writes into the data directory (not even a new file, not through `..`
/// or a symlink) nor over an existing file; what it writes is private (0600).
#[test]
fn exports_never_go_into_the_data_directory_nor_over_an_existing_file() -> R {
    use std::os::unix::fs::PermissionsExt;
    let home = clinic("clinic-exports")?;
    let h = home.path();
    let src = h.join("a.txt");
    std::fs::write(&src, "x")?;
    let id = add(h, &src, "P-9", "labs")?;
    let outside = tempfile::tempdir()?;
    let o = outside.path();
    std::os::unix::fs::symlink(h.join("keys"), o.join("keys-link"))?;
    std::fs::create_dir(o.join("sub"))?;
    let dotdot = o.join("sub").join("..").join("keys-link").join("new.bin");
    for (args, target) in [
        (vec!["audit", "checkpoint", "--out"], h.join("clinic.db")),
        (vec!["record", "get", &id, "--out"], h.join("records").join("new-file")),
        (vec!["record", "get", &id, "--out"], o.join("keys-link").join("new.bin")),
        (vec!["record", "get", &id, "--out"], dotdot.clone()),
        (vec!["trust", "export", "--out"], h.join("trust").join("mine.pem")),
    ] {
        let mut a = args.clone();
        let t = target.to_string_lossy().into_owned();
        a.push(&t);
        let e = err(h, &a);
        assert!(e.contains("data directory"), "{a:?}: {e}");
    }
    // (Refusals are audited, so clinic.db changes: it must still be the clinic's database.)
    assert!(ok(h, &["audit", "verify"]).contains("audit log OK"), "clinic.db was replaced");
    assert!(!h.join("records").join("new-file").exists() && !h.join("keys").join("new.bin").exists());
    // Outside the data directory: written, private; a second time: refused, file kept.
    let pem = o.join("clinic.pem");
    ok(h, &["trust", "export", "--out", &pem.to_string_lossy()]);
    assert_eq!(std::fs::metadata(&pem)?.permissions().mode() & 0o777, 0o600);
    std::fs::write(&pem, "mine")?;
    let e = err(h, &["trust", "export", "--out", &pem.to_string_lossy()]);
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(std::fs::read_to_string(&pem)?, "mine");
    let cp = o.join("old.cp");
    ok(h, &["audit", "checkpoint", "--out", &cp.to_string_lossy()]);
    assert_eq!(std::fs::metadata(&cp)?.permissions().mode() & 0o777, 0o600);
    let e = err(h, &["audit", "checkpoint", "--out", &cp.to_string_lossy()]);
    assert!(e.contains("already exists"), "{e}");
    Ok(())
}
