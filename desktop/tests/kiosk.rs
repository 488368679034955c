//! The reception kiosk driven through its accessible labels (egui_kittest), on the in-process
//! simulated card of a demo clinic: insert, wrong PIN, right PIN, consent, check in, QR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use egui_kittest::kittest::Queryable;
use medcard_desktop::CardSource;
use medcard_desktop::{View, demo};
use support::{app, app_on, click, medcard, pin_pad, wait_for, wait_for_any};

#[test]
fn kiosk_checks_in_after_a_wrong_pin_and_shows_a_qr_code_that_medcard_scan_accepts() {
    let (mut h, d) = app(View::Kiosk);
    wait_for(&mut h, "Please insert your card");
    click(&mut h, "Insert the demo card");
    wait_for(&mut h, "Enter your PIN");

    // A wrong PIN: the pad says how many tries are left.
    pin_pad(&mut h, "000000");
    assert_eq!(h.state().kiosk.pin_len(), 6);
    assert!(h.query_by_label_contains("000000").is_none(), "PIN digits must be masked");
    click(&mut h, "OK");
    wait_for(&mut h, "Wrong PIN: 2 tries left");
    assert_eq!(h.state().kiosk.pin_len(), 0, "the wrong PIN is cleared");

    // The right PIN: welcome and the consent in plain words.
    pin_pad(&mut h, demo::PIN);
    click(&mut h, "OK");
    wait_for(&mut h, &format!("Welcome, {}", demo::PATIENT_NAME));
    assert!(h.query_by_label_contains("your allergies").is_some());
    assert!(h.query_by_label_contains("will not see").is_some());

    click(&mut h, "Check in");
    wait_for(&mut h, "You are checked in");
    assert!(h.query_by_label_contains("Valid for 9:").is_some() || h.query_by_label_contains("Valid for 10:").is_some());
    let png = h.state().kiosk.shown_qr().unwrap().png.to_vec();

    // The picture on screen is a real QR code: scan the PNG, then hand it to the bedside CLI.
    let texts = qr::scan::scan_bytes(&png).unwrap();
    assert_eq!(texts.len(), 1);
    assert!(texts[0].starts_with("MC1:"), "{}", &texts[0]);
    let file = d.data_dir.join("kiosk-qr.png");
    std::fs::write(&file, &png).unwrap();
    let out = medcard(&d.data_dir, &["scan", file.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "medcard scan refused the kiosk's QR: {stderr}");
    assert!(stderr.contains("VERIFIED"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "verified");
    assert_eq!(v["patient_id"], demo::PATIENT_ID);

    // Taking the card ends the session and drops the QR.
    click(&mut h, "Remove the demo card");
    wait_for(&mut h, "Please insert your card");
    assert!(h.state().kiosk.shown_qr().is_none());
}

#[test]
fn kiosk_pulling_the_card_mid_pin_goes_back_to_the_start_and_forgets_the_digits() {
    let (mut h, _d) = app(View::Kiosk);
    click(&mut h, "Insert the demo card");
    wait_for(&mut h, "Enter your PIN");
    pin_pad(&mut h, "1234");
    assert_eq!(h.state().kiosk.pin_len(), 4);
    click(&mut h, "Remove the demo card");
    wait_for(&mut h, "Your card was taken out");
    assert_eq!(h.state().kiosk.pin_len(), 0);
    assert_eq!(h.state().kiosk.step_name(), "insert");
}

#[test]
fn kiosk_three_wrong_pins_block_the_card_and_send_the_patient_to_reception() {
    let (mut h, _d) = app(View::Kiosk);
    support::block_card_at_kiosk(&mut h);
    // Even the right PIN does not get past a blocked card.
    click(&mut h, "Remove the demo card");
    wait_for(&mut h, "Please insert your card");
    click(&mut h, "Insert the demo card");
    wait_for(&mut h, "Enter your PIN");
    pin_pad(&mut h, demo::PIN);
    click(&mut h, "OK");
    wait_for(&mut h, "Card blocked: please see reception");
}

#[test]
fn kiosk_without_its_card_reader_says_so_and_keeps_running() {
    // A PC/SC reader that is not there (unplugged, or pcscd not running at all).
    let source = CardSource::Pcsc { reader: "MedCard test reader that is not plugged in".into() };
    let (mut h, _d) = app_on(View::Kiosk, Some(source));
    wait_for(&mut h, "The card reader is not available");
    // What to do: plug the reader in, or (no pcscd on this machine) ask IT to start the service.
    wait_for_any(&mut h, &["is not connected: plug it in", "ask IT to start pcscd"]);
    assert_eq!(h.state().kiosk.step_name(), "insert");
    // Still responsive: switching views works.
    click(&mut h, "Bedside");
    assert_eq!(h.state().view, View::Bedside);
}

#[test]
fn kiosk_left_alone_ends_the_session_and_forgets_the_digits() {
    let (mut h, _d) = app(View::Kiosk);
    h.state_mut().env.settings.kiosk_idle = std::time::Duration::from_secs(2);
    click(&mut h, "Insert the demo card");
    wait_for(&mut h, "Enter your PIN");
    pin_pad(&mut h, "12");
    // No touches: the harness clock moves one frame (1/60 s) per step.
    wait_for(&mut h, "Session ended");
    assert_eq!(h.state().kiosk.pin_len(), 0);
    // Taking the card brings the start screen back.
    click(&mut h, "Remove the demo card");
    wait_for(&mut h, "Please insert your card");
}

/// Issue 13: a patient at a locked kiosk typed the data directory's `keys/master.key` into
/// "Save to:" and Save PNG renamed the QR image over the clinic's master secret.
#[test]
fn kiosk_save_png_cannot_overwrite_the_master_key() {
    use egui::accesskit::Role;
    let (mut h, d) = app(View::Kiosk);
    let exports = tempfile::tempdir().unwrap();
    h.state_mut().env.export_dir = exports.path().join("exports");
    click(&mut h, "Insert the demo card");
    wait_for(&mut h, "Enter your PIN");
    pin_pad(&mut h, demo::PIN);
    click(&mut h, "OK");
    wait_for(&mut h, "Check in");
    click(&mut h, "Check in");
    wait_for(&mut h, "You are checked in");
    let key = d.data_dir.join("keys").join("master.key");
    let before = std::fs::read(&key).unwrap();
    // The attack: a path typed on the patient's screen.
    if let Some(field) = h.query_all_by_role(Role::TextInput).next() {
        field.set_text_value_accesskit(&key.display().to_string());
    }
    h.step();
    click(&mut h, "Save PNG");
    h.step();
    assert_eq!(std::fs::read(&key).unwrap(), before, "Save PNG replaced the clinic's master secret");
    assert!(h.query_all_by_role(Role::TextInput).next().is_none(), "the patient's QR screen takes no path");
    // The PNG went into the export folder under a name the app chose, privately, and the screen
    // says where; a second save picks a new name.
    wait_for(&mut h, "Saved to");
    let saved: Vec<_> = std::fs::read_dir(exports.path().join("exports")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let name = saved[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("medcard-checkin-") && name.ends_with(".png"), "{name}");
    assert!(h.query_by_label_contains(&saved[0].display().to_string()).is_some(), "the screen says where the PNG went");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&saved[0]).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&saved[0]).unwrap(), h.state().kiosk.shown_qr().unwrap().png.to_vec());
    click(&mut h, "Save PNG");
    assert_eq!(std::fs::read_dir(exports.path().join("exports")).unwrap().count(), 2, "never over the first");
    // An export folder inside the data directory is refused, and nothing is written there.
    h.state_mut().env.export_dir = d.data_dir.join("keys");
    click(&mut h, "Save PNG");
    wait_for(&mut h, "inside the clinic data directory");
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let planted = std::fs::read_dir(d.data_dir.join("keys"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("medcard-"));
    assert_eq!(planted.count(), 0);
}
