//! The reception kiosk driven through its accessible labels (egui_kittest), on the in-process
//! simulated card of a demo clinic: insert, wrong PIN, right PIN, consent, check in, QR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use egui_kittest::kittest::Queryable;
use medcard_desktop::{View, demo};
use medcard_desktop::CardSource;
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
