//! The clinic admin view driven through its accessible labels (egui_kittest) on a demo clinic:
//! admin PIN lock, issuing and revoking a card on a blank simulated card, adding a record,
//! the trust list, Verify log (clean and after tampering with raw SQL) and the alerts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use medcard_desktop::admin::cards::BLANK_SERIAL_BASE;
use medcard_desktop::{MedcardApp, View, admin_pin, demo};
use support::{app, click, type_into, wait_for, wait_until};

fn audit_kinds(d: &demo::Demo, kind: &str) -> Vec<String> {
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    reader::audit::entries(&db, 0, None).unwrap().into_iter().filter(|e| e.kind == kind).map(|e| e.outcome).collect()
}

fn unlock(h: &mut Harness<'_, MedcardApp>) {
    wait_for(h, "Admin is locked");
    type_into(h, Role::PasswordInput, "Admin PIN", demo::ADMIN_PIN);
    click(h, "Unlock");
    wait_until(h, "unlocking", |a| a.admin.is_unlocked());
}

#[test]
fn admin_refuses_a_wrong_admin_pin_unlocks_with_the_right_one_and_audits_both() {
    let (mut h, d) = app(View::Admin);
    wait_for(&mut h, "Admin is locked");
    assert!(h.query_by_label("Issue card").is_none(), "nothing behind the lock is drawn");
    type_into(&mut h, Role::PasswordInput, "Admin PIN", "999999");
    assert!(h.query_by_label_contains("999999").is_none(), "the admin PIN is masked");
    click(&mut h, "Unlock");
    wait_for(&mut h, "Wrong admin PIN");
    assert!(!h.state().admin.is_unlocked());
    unlock(&mut h);
    click(&mut h, "Cards");
    wait_for(&mut h, "Issue card");
    assert_eq!(audit_kinds(&d, "admin.unlock"), ["wrong-pin", "ok"]);

    // Lock: back behind the PIN.
    click(&mut h, "Lock");
    wait_for(&mut h, "Admin is locked");
    assert!(!h.state().admin.is_unlocked());
    assert!(h.query_by_label("Issue card").is_none());
}

fn three_wrong_admin_pins(h: &mut Harness<'_, MedcardApp>) {
    for _ in 0..3 {
        wait_for(h, "Admin is locked");
        wait_until(h, "unlock allowed", |a| a.admin.unlock_wait_left() == 0.0);
        type_into(h, Role::PasswordInput, "Admin PIN", "000000");
        click(h, "Unlock");
        wait_for(h, "Wrong admin PIN");
        wait_until(h, "the attempt checked", |a| !a.admin.is_checking());
    }
}

#[test]
fn admin_after_three_wrong_admin_pins_makes_the_next_try_wait() {
    let (mut h, d) = app(View::Admin);
    // The audit log's times are the clinic clock: fixed here, moved on by hand.
    let t0 = medcard_desktop::context::system_now();
    h.state_mut().env.fixed_now = Some(t0);
    three_wrong_admin_pins(&mut h);
    wait_for(&mut h, "Too many wrong tries: wait 5 seconds");
    assert!(h.state().admin.unlock_wait_left() > 0.0, "the fourth try has to wait");
    // The wait ends (bounded frames of the harness clock; the clinic clock 6 s on), then the
    // right PIN still works.
    h.state_mut().env.fixed_now = Some(t0 + 6);
    wait_until(&mut h, "the wait to end", |a| a.admin.unlock_wait_left() == 0.0);
    unlock(&mut h);
    assert_eq!(audit_kinds(&d, "admin.unlock"), ["wrong-pin", "wrong-pin", "wrong-pin", "ok"]);
}

#[test]
fn admin_wait_after_wrong_pins_survives_restarting_the_app_because_the_audit_log_counts_them() {
    let (mut h, d) = app(View::Admin);
    let t0 = medcard_desktop::context::system_now();
    h.state_mut().env.fixed_now = Some(t0);
    three_wrong_admin_pins(&mut h);
    drop(h);

    // A new app on the same clinic, one second later: the right PIN is not even checked yet.
    let mut env = medcard_desktop::AppContext::new(&d.data_dir, medcard_desktop::CardSource::Sim(d.slot.clone()));
    env.fixed_now = Some(t0 + 1);
    let mut h = support::harness(env, View::Admin);
    wait_for(&mut h, "Admin is locked");
    type_into(&mut h, Role::PasswordInput, "Admin PIN", demo::ADMIN_PIN);
    click(&mut h, "Unlock");
    wait_for(&mut h, "Too many wrong tries (3 in a row, in the audit log): wait 4 seconds");
    assert!(!h.state().admin.is_unlocked());
    assert!(h.state().admin.unlock_wait_left() > 0.0, "the Unlock button waits too");
    assert_eq!(audit_kinds(&d, "admin.unlock"), ["wrong-pin", "wrong-pin", "wrong-pin"], "an attempt during the wait is not checked");

    // After the wait, the right PIN unlocks.
    h.state_mut().env.fixed_now = Some(t0 + 6);
    wait_until(&mut h, "the wait to end", |a| a.admin.unlock_wait_left() == 0.0);
    unlock(&mut h);
    assert_eq!(audit_kinds(&d, "admin.unlock"), ["wrong-pin", "wrong-pin", "wrong-pin", "ok"]);
}

#[test]
fn admin_locks_itself_when_idle_and_forgets_the_typed_pins() {
    let (mut h, _d) = app(View::Admin);
    h.state_mut().admin.auto_lock = std::time::Duration::from_secs(3);
    unlock(&mut h);
    type_into(&mut h, Role::PasswordInput, "New PIN", "654321");
    type_into(&mut h, Role::PasswordInput, "New PUK", "87654321");
    assert_eq!(h.state().admin.cards.typed_secrets(), 14);
    // No input for a while (the harness clock advances each frame).
    wait_until(&mut h, "the idle lock", |a| !a.admin.is_unlocked());
    wait_for(&mut h, "Locked after a few idle minutes");
    assert_eq!(h.state().admin.cards.typed_secrets(), 0);
    assert!(h.query_by_label("Issue card").is_none());
}

#[test]
fn admin_left_for_another_view_is_locked_when_it_comes_back_after_the_idle_time() {
    let (mut h, _d) = app(View::Admin);
    h.state_mut().admin.auto_lock = std::time::Duration::from_secs(3);
    unlock(&mut h);
    click(&mut h, "Bedside");
    // Longer than the idle time on the harness clock (0.25 s a frame).
    for _ in 0..20 {
        h.step();
    }
    assert!(!h.state().admin.is_unlocked(), "the idle lock runs while another view is shown (issue 14)");
    click(&mut h, "Admin");
    wait_for(&mut h, "Locked after a few idle minutes");
    assert!(!h.state().admin.is_unlocked());
}

#[test]
fn admin_without_an_admin_pin_stays_locked_and_says_how_to_set_one() {
    let (mut h, d) = app(View::Admin);
    std::fs::remove_file(admin_pin::path(&d.data_dir)).unwrap();
    wait_for(&mut h, "No admin PIN is set");
    wait_for(&mut h, "--set-admin-pin");
    assert!(h.query_by_label("Unlock").is_none());
    assert!(!h.state().admin.is_unlocked());
}

#[test]
fn admin_issues_a_card_on_a_new_blank_demo_card_lists_it_and_revokes_it() {
    let (mut h, d) = app(View::Admin);
    unlock(&mut h);
    wait_until(&mut h, "the card list", |a| a.admin.cards.listed().is_some());
    click(&mut h, "New blank demo card");
    wait_for(&mut h, &format!("blank demo card (serial {BLANK_SERIAL_BASE})"));
    type_into(&mut h, Role::TextInput, "Patient id", "P-2002");
    type_into(&mut h, Role::TextInput, "Patient name", "Sam Second");
    type_into(&mut h, Role::PasswordInput, "New PIN", "654321");
    type_into(&mut h, Role::PasswordInput, "New PIN again", "654321");
    type_into(&mut h, Role::PasswordInput, "New PUK", "87654321");
    click(&mut h, "Issue card");
    wait_for(&mut h, &format!("Card {BLANK_SERIAL_BASE} issued to Sam Second (P-2002)"));
    assert!(h.query_by_label_contains("Wrote the clinic credential").is_some(), "a progress line per step");
    assert!(h.query_by_label_contains("654321").is_none() && h.query_by_label_contains("87654321").is_none());
    wait_until(&mut h, "the new card listed", |a| {
        a.admin.cards.listed().is_some_and(|l| l.iter().any(|(c, _)| c.serial == BLANK_SERIAL_BASE))
    });
    let listed = h.state().admin.cards.listed().unwrap();
    assert!(listed.iter().any(|(c, r)| c.serial == BLANK_SERIAL_BASE && c.patient_id == "P-2002" && r.is_none()), "{listed:?}");

    // The new card works with its new PIN (library check on the same in-process card).
    let opened = h.state().env.open().unwrap();
    let trust = reader::clinic::trust_list(&opened.ks).unwrap();
    let pin = reader::PinBlock::pin("654321").unwrap();
    let g = h
        .state()
        .env
        .source
        .with_card(|piv| reader::clinic::verify_card(piv, &opened.state, &trust, h.state().env.now(), Some(&pin)))
        .unwrap();
    assert_eq!(g.credential.credential().card_serial, BLANK_SERIAL_BASE);

    // Revoke, with a reason and a confirmation.
    click(&mut h, &format!("Revoke {BLANK_SERIAL_BASE}"));
    wait_for(&mut h, &format!("Revoke card {BLANK_SERIAL_BASE}?"));
    type_into(&mut h, Role::TextInput, "Reason", "lost on the bus");
    click(&mut h, "Confirm revoke");
    wait_for(&mut h, &format!("Card {BLANK_SERIAL_BASE} revoked"));
    wait_for(&mut h, "Revoked ");
    wait_until(&mut h, "the list reloaded", |a| a.admin.cards.listed().is_some());
    let listed = h.state().admin.cards.listed().unwrap();
    let (_, rev) = listed.iter().find(|(c, _)| c.serial == BLANK_SERIAL_BASE).unwrap();
    assert_eq!(rev.as_ref().unwrap().reason, "lost on the bus");
    assert!(audit_kinds(&d, "card.revoked").contains(&"ok".to_owned()));
    // The demo patient's card is still active, and can be put back into the demo reader.
    assert!(listed.iter().any(|(c, r)| c.serial == demo::SERIAL && r.is_none()));
    click(&mut h, "Put back the previous card");
    wait_for(&mut h, "The previous card is back");
    let serial = h.state().env.source.with_card(|piv| {
        piv.select()?;
        piv.serial()
    });
    assert!(serial.is_err(), "put back in the hand, not inserted");
    if let medcard_desktop::CardSource::Sim(slot) = &h.state().env.source {
        slot.insert();
    }
    let serial = h.state().env.source.with_card(|piv| {
        piv.select()?;
        piv.serial()
    });
    assert_eq!(serial.unwrap(), demo::SERIAL);
}

#[test]
fn admin_issuing_with_pins_that_differ_is_refused_before_touching_the_card() {
    let (mut h, _d) = app(View::Admin);
    unlock(&mut h);
    click(&mut h, "New blank demo card");
    type_into(&mut h, Role::TextInput, "Patient id", "P-3003");
    type_into(&mut h, Role::TextInput, "Patient name", "Kim Third");
    type_into(&mut h, Role::PasswordInput, "New PIN", "654321");
    type_into(&mut h, Role::PasswordInput, "New PIN again", "654329");
    type_into(&mut h, Role::PasswordInput, "New PUK", "87654321");
    click(&mut h, "Issue card");
    wait_for(&mut h, "The two new PINs differ");
    assert!(h.query_by_label_contains("Issuing the card").is_none());
    wait_until(&mut h, "the card list", |a| a.admin.cards.listed().is_some());
    assert!(h.state().admin.cards.listed().unwrap().iter().all(|(c, _)| c.patient_id != "P-3003"));
}

#[test]
fn admin_adds_a_record_from_a_file_and_lists_it() {
    let (mut h, d) = app(View::Admin);
    unlock(&mut h);
    click(&mut h, "Records");
    wait_for(&mut h, "Add record");
    wait_until(&mut h, "the records list", |a| a.admin.records.listed().is_some());
    let before = h.state().admin.records.listed().unwrap().len();
    let file = d.data_dir.join("discharge-letter.txt");
    std::fs::write(&file, "Discharged in good health.\n").unwrap();
    type_into(&mut h, Role::TextInput, "Patient id", "P-1001");
    type_into(&mut h, Role::TextInput, "File", file.to_str().unwrap());
    wait_for(&mut h, "Media type: text/plain");
    click(&mut h, "Add record");
    wait_for(&mut h, "added for P-1001 (summary, text/plain)");
    wait_until(&mut h, "the new record listed", |a| a.admin.records.listed().is_some_and(|r| r.len() == before + 1));
    let rows = h.state().admin.records.listed().unwrap();
    assert!(
        rows.iter().any(|r| r.meta.media_type == "text/plain" && r.meta.patient_id == "P-1001" && r.meta.author.starts_with("desktop:"))
    );
    assert_eq!(audit_kinds(&d, "record.added").len(), before + 1);

    // A missing file is a calm message.
    type_into(&mut h, Role::TextInput, "File", ".missing");
    click(&mut h, "Add record");
    wait_for(&mut h, "Could not read the file");
}

#[test]
fn admin_trust_list_exports_imports_and_removes_after_confirmation() {
    let (mut h, d) = app(View::Admin);
    unlock(&mut h);
    click(&mut h, "Trust list");
    wait_until(&mut h, "the trust list", |a| a.admin.trust.listed().is_some());
    wait_for(&mut h, "(this clinic)");
    wait_for(&mut h, demo::CLINIC_ID);
    // Export this clinic's certificate (outside the data directory, as every export).
    let out_dir = tempfile::tempdir().unwrap();
    let pem = out_dir.path().join("exported.pem");
    let export_field = h.get_by_role_and_label(Role::TextInput, "Export to").value().unwrap();
    assert!(export_field.ends_with("clinic-ca.pem"), "{export_field}");
    h.get_by_role_and_label(Role::TextInput, "Export to").focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    type_into(&mut h, Role::TextInput, "Export to", pem.to_str().unwrap());
    click(&mut h, "Export certificate");
    wait_for(&mut h, "certificate was saved");
    assert!(std::fs::read_to_string(&pem).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(audit_kinds(&d, "trust.exported"), ["ok"]);
    // Import another clinic's certificate (issue 13: its own is refused, and the fingerprint read
    // over the phone is required): first shown, then trusted.
    let partner = reader::Keystore::init(&out_dir.path().join("partner"), "partner", medcard_desktop::context::system_now()).unwrap();
    let partner_pem = out_dir.path().join("partner.pem");
    std::fs::write(&partner_pem, reader::x509::to_pem("CERTIFICATE", partner.ca_certificate_der())).unwrap();
    let fp = reader::trust::own_entry(&partner).unwrap().fingerprint.to_string();
    type_into(&mut h, Role::TextInput, "File to import", partner_pem.to_str().unwrap());
    click(&mut h, "Import");
    wait_for(&mut h, &fp);
    assert!(h.state().admin.trust.listed().is_some_and(|r| r.len() == 1), "nothing trusted without the fingerprint");
    type_into(&mut h, Role::TextInput, "Fingerprint", &fp);
    click(&mut h, "Import");
    wait_for(&mut h, "Now trusting partner as partner.pem");
    wait_for(&mut h, "Remove partner.pem");
    click(&mut h, "Remove partner.pem");
    wait_for(&mut h, "Stop trusting partner.pem?");
    click(&mut h, "Confirm remove");
    wait_for(&mut h, "partner.pem is no longer trusted");
    // The same audit entries as `medcard trust`.
    assert_eq!(audit_kinds(&d, "trust.refused"), ["no-fingerprint"]);
    assert_eq!(audit_kinds(&d, "trust.added"), ["ok"]);
    assert_eq!(audit_kinds(&d, "trust.removed"), ["ok"]);
    wait_until(&mut h, "the list reloaded", |a| a.admin.trust.listed().is_some_and(|r| r.len() == 1));
    // Something that is not a key is refused.
    type_into(&mut h, Role::TextInput, "File to import", d.data_dir.join("records").to_str().unwrap());
    click(&mut h, "Import");
    wait_for(&mut h, "Could not read the file");
}

#[test]
fn admin_verify_log_says_verified_then_names_the_entry_altered_with_raw_sql() {
    let (mut h, d) = app(View::Admin);
    unlock(&mut h);
    click(&mut h, "Audit log");
    wait_until(&mut h, "the audit log", |a| a.admin.audit.alerts().is_some());
    click(&mut h, "Verify log");
    wait_for(&mut h, "Log verified: ");
    assert!(h.query_by_label_contains("entries, 0 checkpoints").is_some(), "no checkpoint signed in the demo yet");

    // Someone with the database key edits entry #3 behind the log's back.
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    db.conn().execute_batch("UPDATE audit_entries SET outcome = 'refused' WHERE seq = 3").unwrap();
    drop(db);
    click(&mut h, "Verify log");
    wait_for(&mut h, "entry #3 was altered");
    assert!(h.query_by_label_contains("Log verified").is_none());
}

#[test]
fn admin_signs_a_checkpoint_that_verify_log_and_the_cli_then_check() {
    let (mut h, d) = app(View::Admin);
    unlock(&mut h);
    click(&mut h, "Audit log");
    wait_until(&mut h, "the audit log", |a| a.admin.audit.alerts().is_some());
    let n = support::medcard(&d.data_dir, &["audit", "verify", "--json"]);
    let before: serde_json::Value = serde_json::from_slice(&n.stdout).unwrap();
    let entries = before["entries"].as_u64().unwrap();
    click(&mut h, "Sign checkpoint");
    wait_for(&mut h, &format!("Checkpoint signed: the first {entries} entries are sealed"));
    click(&mut h, "Verify log");
    wait_for(&mut h, "Log verified: ");
    assert!(h.query_by_label_contains("entries, 1 checkpoint.").is_some(), "{:?}", support::on_screen(&h));
    let out = support::medcard(&d.data_dir, &["audit", "verify", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let after: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(after["checkpoints"], 1, "the CLI checks the app's checkpoint: {after}");
}

#[test]
fn admin_shows_an_alert_after_three_wrong_card_pins_at_the_kiosk() {
    let (mut h, _d) = app(View::Kiosk);
    support::block_card_at_kiosk(&mut h);
    click(&mut h, "Remove the demo card");
    h.state_mut().view = View::Admin;
    unlock(&mut h);
    click(&mut h, "Audit log");
    wait_for(&mut h, "someone may be guessing the PIN");
    let alerts = h.state().admin.audit.alerts().unwrap().to_vec();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].subject, demo::SERIAL.to_string());
    assert_eq!(alerts[0].entries.len(), 3);
    // The entries behind it are listed under it.
    wait_for(&mut h, &format!("#{}", alerts[0].entries[0]));
    // The table's text filter narrows the log to the wrong PINs.
    type_into(&mut h, Role::TextInput, "Contains", "pin_failed");
    wait_for(&mut h, "3 of ");
}

#[test]
fn set_admin_pin_reads_the_pin_from_standard_input_and_stores_only_a_hash() {
    use std::io::Write;
    let d = demo::create(None, medcard_desktop::context::system_now()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medcard-desktop"))
        .args(["--set-admin-pin", "--data"])
        .arg(&d.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A PIN is set (the demo's): line 1 the current PIN, line 2 the new one.
    child.stdin.take().unwrap().write_all(format!("{}\nnew-admin-7\n", demo::ADMIN_PIN).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("new-admin-7") && !String::from_utf8_lossy(&out.stdout).contains("new-admin-7"));
    assert!(admin_pin::verify(&d.data_dir, "new-admin-7").unwrap());
    assert!(!admin_pin::verify(&d.data_dir, demo::ADMIN_PIN).unwrap());
    assert!(!std::fs::read_to_string(admin_pin::path(&d.data_dir)).unwrap().contains("new-admin-7"));

    // Too short: refused, the old PIN kept.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medcard-desktop"))
        .args(["--set-admin-pin", "--data"])
        .arg(&d.data_dir)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"new-admin-7\n123\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 to 12 characters"));
    assert!(admin_pin::verify(&d.data_dir, "new-admin-7").unwrap());
}

/// Issue 13: "Export to" took any path and renamed the certificate over it (the data
/// directory's `keys/master.key` included).
#[test]
fn admin_trust_export_cannot_overwrite_the_master_key() {
    let (mut h, d) = app(View::Admin);
    unlock(&mut h);
    click(&mut h, "Trust list");
    wait_until(&mut h, "the trust list", |a| a.admin.trust.listed().is_some());
    let key = d.data_dir.join("keys").join("master.key");
    let before = std::fs::read(&key).unwrap();
    h.get_by_role_and_label(Role::TextInput, "Export to").set_text_value_accesskit(&key.display().to_string());
    h.step();
    h.step();
    click(&mut h, "Export certificate");
    support::wait_for_any(&mut h, &["certificate was saved", "data directory"]);
    assert_eq!(std::fs::read(&key).unwrap(), before, "the export replaced the clinic's master secret");
    wait_for(&mut h, "data directory");
}

fn set_admin_pin(d: &demo::Demo, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medcard-desktop"))
        .args(["--set-admin-pin", "--data"])
        .arg(&d.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Issue 13: `--set-admin-pin` replaced a set PIN without the old one and left no trace.
/// With a PIN set, standard input is the old PIN on the first line, the new one on the second.
#[test]
fn set_admin_pin_without_the_old_pin_is_refused_and_audited() {
    let d = demo::create(None, medcard_desktop::context::system_now()).unwrap();
    let before = audit_kinds(&d, "admin.pin_set").len();
    // Only a new PIN (someone who does not know the current one): refused, PIN kept.
    let out = set_admin_pin(&d, "intruder-77\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(admin_pin::verify(&d.data_dir, demo::ADMIN_PIN).unwrap(), "the PIN was replaced without the old one");
    assert!(!out.status.success(), "{stderr}");
    // A wrong old PIN: refused and audited, never echoed.
    let out = set_admin_pin(&d, "999999\nintruder-77\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("current admin PIN") && stderr.contains("wrong"), "{stderr}");
    assert!(!stderr.contains("999999") && !stderr.contains("intruder-77"), "{stderr}");
    assert!(admin_pin::verify(&d.data_dir, demo::ADMIN_PIN).unwrap());
    // The right old PIN: changed and audited.
    let out = set_admin_pin(&d, &format!("{}\nnew-admin-8\n", demo::ADMIN_PIN));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(admin_pin::verify(&d.data_dir, "new-admin-8").unwrap());
    let outcomes = audit_kinds(&d, "admin.pin_set");
    assert_eq!(outcomes.len(), before + 3, "{outcomes:?}");
    assert_eq!(outcomes[before..], ["wrong-old-pin", "wrong-old-pin", "ok"]);
    // Nothing in the log holds a PIN.
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    for e in reader::audit::entries(&db, 0, None).unwrap() {
        let row = format!("{} {} {} {}", e.actor, e.subject, e.outcome, e.detail);
        for pin in [demo::ADMIN_PIN, "new-admin-8", "999999", "intruder-77"] {
            assert!(!row.contains(pin), "{row}");
        }
    }
}
