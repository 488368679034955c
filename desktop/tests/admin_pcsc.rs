//! The admin view issuing a card through the real smart-card stack: a blank `card-sim serve`
//! card in vpcd's reader 'Virtual PCD 00 00', pcscd, the PC/SC transport. Holds the reader's
//! file lock for the whole test (one pcscd per machine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use medcard_desktop::{AppContext, CardSource, View, demo};
use support::pcscd_support::{READER_00, ServedCard, card_sim, context_for, lock_reader};
use support::{click, harness, type_into, wait_for, wait_until};

#[test]
fn admin_issues_a_card_on_a_blank_card_in_a_pcsc_reader() {
    let _lock = lock_reader(&READER_00);
    let ctx = context_for(&READER_00);
    let root = tempfile::tempdir().unwrap();
    let card = root.path().join("card.bin");
    let o = Command::new(card_sim()).args(["new", "--serial", "7302", "--out"]).arg(&card).output().unwrap();
    assert!(o.status.success(), "card-sim new: {}", String::from_utf8_lossy(&o.stderr));
    let _sim = ServedCard::serve(&card_sim(), &READER_00, &ctx, &card);

    // A clinic with its admin PIN and no card issued yet.
    let data = root.path().join("clinic");
    demo::init_clinic(&data, medcard_desktop::context::system_now()).unwrap();
    let env = AppContext::new(&data, CardSource::Pcsc { reader: READER_00.name.to_owned() });
    let mut h = harness(env, View::Admin);
    wait_for(&mut h, "Admin is locked");
    type_into(&mut h, Role::PasswordInput, "Admin PIN", demo::ADMIN_PIN);
    click(&mut h, "Unlock");
    wait_until(&mut h, "unlocking", |a| a.admin.is_unlocked());
    wait_until(&mut h, "the card list", |a| a.admin.cards.listed().is_some());
    click(&mut h, "Find readers");
    wait_until(&mut h, "the reader list", |a| !a.admin.cards.busy());
    assert!(h.query_by_label_contains("No card reader").is_none() && h.query_by_label_contains("not available").is_none());

    type_into(&mut h, Role::TextInput, "Patient id", "P-7302");
    type_into(&mut h, Role::TextInput, "Patient name", "Robin Reader");
    type_into(&mut h, Role::PasswordInput, "New PIN", "246813");
    type_into(&mut h, Role::PasswordInput, "New PIN again", "246813");
    type_into(&mut h, Role::PasswordInput, "New PUK", "13572468");
    click(&mut h, "Issue card");
    wait_for(&mut h, "Card 7302 issued to Robin Reader (P-7302)");
    wait_until(&mut h, "the card listed", |a| a.admin.cards.listed().is_some_and(|l| l.iter().any(|(c, _)| c.serial == 7302)));

    // The card in the reader now proves itself to the clinic and takes its new PIN.
    let opened = h.state().env.open().unwrap();
    let trust = reader::clinic::trust_list(&opened.ks).unwrap();
    let pin = reader::PinBlock::pin("246813").unwrap();
    let now = h.state().env.now();
    let g = h.state().env.source.with_card(|piv| reader::clinic::verify_card(piv, &opened.state, &trust, now, Some(&pin))).unwrap();
    assert_eq!(g.credential.credential().patient_id, "P-7302");
}
