//! The staff session through the real smart-card stack: the clinician's staff card is
//! `card-sim serve` in vpcd's reader 'Virtual PCD 00 00' behind pcscd, issued there through the
//! library's staff issuance; the bedside signs in on it, keeps it connected (one PC/SC
//! transaction for the session, `desktop/src/held_card.rs`), has it sign every read, and ends the
//! session when pcscd reports the card gone. The patient's code comes from the demo's in-process
//! card. Holds the reader's file lock for the whole test (one pcscd per machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use egui::accesskit::Role;
use medcard_desktop::{AppContext, CardSource, View, demo};
use reader::issue::StaffIssueRequest;
use reader::staff::Role as StaffRole;
use support::pcscd_support::{READER_00, ServedCard, card_sim, context_for, lock_reader};
use support::{click, harness, paste, type_into, wait_for, wait_until};

const PIN: &str = "135790";

#[test]
fn bedside_through_pcscd_signs_in_on_the_staff_card_has_it_sign_each_read_and_ends_when_it_is_pulled() {
    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let root = tempfile::tempdir().unwrap();
    let card = root.path().join("staff-card.bin");
    let o = Command::new(card_sim()).args(["new", "--serial", "7302", "--out"]).arg(&card).output().unwrap();
    assert!(o.status.success(), "card-sim new: {}", String::from_utf8_lossy(&o.stderr));
    let mut sim = ServedCard::serve(&card_sim(), &READER_00, &ctx, &card);

    let now = medcard_desktop::context::system_now();
    let d = demo::create(None, now).unwrap();
    let staff_reader = CardSource::Pcsc { reader: READER_00.name.to_owned() };
    {
        let ks = reader::Keystore::open(&d.data_dir).unwrap();
        let state = reader::clinic::ClinicState::open(&ks).unwrap();
        let req = StaffIssueRequest {
            staff_id: "S-9".into(),
            name: "Dr K. Ito".into(),
            role: StaffRole::Clinician,
            pin: reader::PinBlock::pin(PIN).unwrap(),
            puk: reader::PinBlock::puk("55443322").unwrap(),
            current_puk: reader::PinBlock::puk("12345678").unwrap(),
            validity_days: 30,
            now,
        };
        staff_reader.with_card(|piv| reader::staff_card::issue_staff_card(piv, &ks, &state, &req, &mut |_| Ok(()))).unwrap();
    }
    let (text, _) = support::checkin_qr(&d);

    let mut env = AppContext::new(&d.data_dir, CardSource::Sim(d.slot.clone()));
    env.staff_readers = vec![staff_reader];
    let mut h = harness(env, View::Bedside);
    wait_for(&mut h, "Staff sign-in");
    type_into(&mut h, Role::PasswordInput, "Staff card PIN", PIN);
    click(&mut h, "Sign in");
    wait_for(&mut h, "Signed in: Dr K. Ito (clinician, staff S-9)");
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");

    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    let reads: Vec<_> = reader::audit::entries(&db, 0, None).unwrap().into_iter().filter(|e| e.kind == "record.read").collect();
    assert_eq!(reads.len(), demo::CONSENTED.len());
    assert!(reads.iter().all(|e| e.actor == "staff:S-9#7302" && e.detail.contains(" sig=")), "{reads:?}");
    // `medcard audit verify` checks each card signature against the issued credential's key.
    let out = support::medcard(&d.data_dir, &["audit", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("staff card signature(s) verified"), "{said}");

    // Pulling the card (card-sim gone: pcscd reports the removal) ends the session.
    sim.kill(&ctx);
    wait_for(&mut h, "Signed out: the staff card was taken out of its reader");
    assert_eq!(h.state().bedside.records_shown(), 0);
    wait_until(&mut h, "the end audited", |_| {
        reader::audit::entries(&db, 0, None)
            .unwrap()
            .iter()
            .any(|e| e.kind == "staff.session_ended" && e.detail.contains("why=card-removed"))
    });
}
