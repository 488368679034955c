//! Shared by the desktop's kittest tests: a demo clinic, the app in a harness, waiting for work
//! that runs on worker threads, and the `medcard` binary for cross-checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use medcard_desktop::{AppContext, CardSource, MedcardApp, View, demo};

/// A demo clinic (fresh temporary data directory, issued card in the hand, sample records) and
/// the app on it, showing `view`.
pub fn app(view: View) -> (Harness<'static, MedcardApp>, demo::Demo) {
    app_on(view, None)
}

/// [`app`] with another card source than the demo's in-process card (e.g. a PC/SC reader).
pub fn app_on(view: View, source: Option<CardSource>) -> (Harness<'static, MedcardApp>, demo::Demo) {
    let d = demo::create(None, medcard_desktop::context::system_now()).unwrap();
    let env = AppContext::new(&d.data_dir, source.unwrap_or_else(|| CardSource::Sim(d.slot.clone())));
    let app = MedcardApp::new(env, view, || {});
    let harness = Harness::builder().with_size(egui::vec2(1100.0, 860.0)).build_ui_state(frame, app);
    (harness, d)
}

/// One frame as eframe runs it: every view's logic, then the view shown.
fn frame(ui: &mut egui::Ui, app: &mut MedcardApp) {
    app.logic(ui.ctx());
    app.ui(ui);
}

/// The app on `env` in a harness.
pub fn harness(env: AppContext, view: View) -> Harness<'static, MedcardApp> {
    let app = MedcardApp::new(env, view, || {});
    Harness::builder().with_size(egui::vec2(1100.0, 860.0)).build_ui_state(frame, app)
}

/// Steps the UI until a node whose label contains `label` shows up (work runs on threads: a
/// bounded number of frames with short sleeps, not a timing assertion).
pub fn wait_for(h: &mut Harness<'_, MedcardApp>, label: &str) {
    for _ in 0..3000 {
        h.step();
        if h.query_all_by_label_contains(label).next().is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("{label:?} never appeared; on screen: {:?}", on_screen(h));
}

/// [`wait_for`] one of several labels; returns the one that showed up.
pub fn wait_for_any<'l>(h: &mut Harness<'_, MedcardApp>, labels: &[&'l str]) -> &'l str {
    for _ in 0..3000 {
        h.step();
        if let Some(l) = labels.iter().find(|l| h.query_all_by_label_contains(l).next().is_some()) {
            return l;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("none of {labels:?} appeared; on screen: {:?}", on_screen(h));
}

/// The labels and label texts on screen (for failure messages).
pub fn on_screen(h: &Harness<'_, MedcardApp>) -> Vec<String> {
    h.query_all_by(|_| true)
        .filter(|n| n.accesskit_node().role() != egui::accesskit::Role::TextRun)
        .filter_map(|n| n.accesskit_node().label().or_else(|| n.accesskit_node().value()))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Clicks the button labelled exactly `label` and runs a frame.
pub fn click(h: &mut Harness<'_, MedcardApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

/// Types `digits` on the on-screen PIN pad.
pub fn pin_pad(h: &mut Harness<'_, MedcardApp>, digits: &str) {
    for d in digits.chars() {
        click(h, &d.to_string());
    }
}

#[path = "../../../reader/tests/pcscd_support/mod.rs"]
pub mod pcscd_support;
/// The `medcard` CLI, found as every test crate finds it.
pub use pcscd_support::medcard_bin;

/// Runs `medcard ARGS --data DIR`.
pub fn medcard(data: &Path, args: &[&str]) -> Output {
    Command::new(medcard_bin()).args(args).arg("--data").arg(data).env_remove("MEDCARD_NOW").output().unwrap()
}

/// A real check-in QR code for the demo patient: the library's kiosk flow (card proof, PIN,
/// consent, `issue_qr`) on the demo's in-process card, which goes back into the patient's hand.
/// Returns the QR text and its PNG.
pub fn checkin_qr(d: &demo::Demo) -> (String, Vec<u8>) {
    let env = AppContext::new(&d.data_dir, CardSource::Sim(d.slot.clone()));
    let o = env.open().unwrap();
    let now = env.now();
    let pin = reader::PinBlock::pin(demo::PIN).unwrap();
    d.slot.insert();
    let outcome = env.source.with_card(|piv| reader::checkin::card_step(piv, &o.ks, &o.state, &pin, now));
    d.slot.remove();
    let outcome = outcome.unwrap();
    let issued = reader::checkin::issue_qr(&o.ks, &o.state, &o.store, &outcome, None, 600, now).unwrap();
    let png = qr::render::render_png(&issued.text, 8).unwrap();
    (issued.text, png)
}

/// Types `text` into the text field of `role` named `label` (focus, then the text).
pub fn type_into(h: &mut Harness<'_, MedcardApp>, role: egui::accesskit::Role, label: &str, text: &str) {
    h.get_by_role_and_label(role, label).focus();
    h.step();
    h.get_by_role_and_label(role, label).type_text(text);
    h.step();
    h.step();
}

/// Steps the UI until `done` holds for the app (bounded, like [`wait_for`]).
pub fn wait_until(h: &mut Harness<'_, MedcardApp>, what: &str, done: impl Fn(&MedcardApp) -> bool) {
    for _ in 0..3000 {
        h.step();
        if done(h.state()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let labels: Vec<String> =
        h.query_all_by(|_| true).filter_map(|n| n.accesskit_node().label().or_else(|| n.accesskit_node().value())).collect();
    panic!("{what} never happened; on screen: {labels:?}");
}

/// Pastes `text` into the bedside's "QR text:" field and presses Verify text.
pub fn paste(h: &mut Harness<'_, MedcardApp>, text: &str) {
    h.get_by_role_and_label(egui::accesskit::Role::MultilineTextInput, "QR text:").set_text_value_accesskit(text);
    // The pasted text grows the field and moves the button: let the layout settle first.
    h.step();
    h.step();
    click(h, "Verify text");
}

/// At the kiosk: inserts the demo card and types three wrong PINs, checking the tries left
/// after each, until the card is blocked.
pub fn block_card_at_kiosk(h: &mut Harness<'_, MedcardApp>) {
    click(h, "Insert the demo card");
    for left in ["2 tries left", "1 try left"] {
        wait_for(h, "Enter your PIN");
        pin_pad(h, "999999");
        click(h, "OK");
        wait_for(h, &format!("Wrong PIN: {left}"));
    }
    pin_pad(h, "999999");
    click(h, "OK");
    wait_for(h, "Card blocked: please see reception");
}
