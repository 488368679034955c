//! The kiosk through the real smart-card stack: `card-sim serve` in vpcd's reader 'Virtual PCD
//! 00 00', pcscd, the PC/SC transport and the card-event watcher thread. The demo card is issued
//! through pcscd too (`demo::create_on_reader`, what `--demo --reader R` runs). Holds the
//! reader's file lock for the whole test (one pcscd per machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use egui_kittest::kittest::Queryable;
use medcard_desktop::{AppContext, CardSource, View, demo};
use support::pcscd_support::{READER_00, ServedCard, card_sim, context_for, lock_reader};
use support::{click, harness, medcard, pin_pad, wait_for};

#[test]
fn kiosk_through_pcscd_follows_the_real_card_and_checks_in() {
    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let root = tempfile::tempdir().unwrap();
    let card = root.path().join("card.bin");
    let o = Command::new(card_sim()).args(["new", "--serial", "7301", "--out"]).arg(&card).output().unwrap();
    assert!(o.status.success(), "card-sim new: {}", String::from_utf8_lossy(&o.stderr));
    let mut sim = ServedCard::serve(&card_sim(), &READER_00, &ctx, &card);

    let data = root.path().join("clinic");
    let now = medcard_desktop::context::system_now();
    demo::create_on_reader(Some(&data), READER_00.name, now).unwrap();

    let env = AppContext::new(&data, CardSource::Pcsc { reader: READER_00.name.to_owned() });
    let mut h = harness(env, View::Kiosk);
    // The card is already in the reader: the watcher reports it and the PIN pad comes up.
    wait_for(&mut h, "Enter your PIN");
    pin_pad(&mut h, "111111");
    click(&mut h, "OK");
    wait_for(&mut h, "Wrong PIN: 2 tries left");
    pin_pad(&mut h, demo::PIN);
    click(&mut h, "OK");
    wait_for(&mut h, &format!("Welcome, {}", demo::PATIENT_NAME));
    click(&mut h, "Check in");
    wait_for(&mut h, "You are checked in");
    let png = h.state().kiosk.shown_qr().unwrap().png.to_vec();
    let file = root.path().join("qr.png");
    std::fs::write(&file, &png).unwrap();
    let out = medcard(&data, &["scan", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "medcard scan: {}", String::from_utf8_lossy(&out.stderr));

    // Pulling the card (card-sim gone: pcscd reports the removal) drops the QR.
    sim.kill(&ctx);
    wait_for(&mut h, "Please insert your card");
    assert!(h.state().kiosk.shown_qr().is_none());
    assert!(h.query_by_label_contains("Your card was taken out").is_some());
}
