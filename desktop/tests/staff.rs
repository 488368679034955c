//! Staff sessions in the desktop (issue 16), driven through the accessible labels (egui_kittest)
//! on a demo clinic with staff cards (`demo::create_staff`: admin, clinician, reception on
//! in-process simulated cards in their own staff card reader): the bedside sign-in, the session's
//! end on card removal and on idle, emergency access and its alert, the admin view opened by an
//! administrator's card only, and the kiosk's access report after a check-in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use medcard_desktop::bedside::emergency::BANNER;
use medcard_desktop::demo::{self, StaffCards};
use medcard_desktop::{AppContext, CardSource, MedcardApp, View};
use reader::staff::Role as StaffRole;
use support::{click, harness, paste, pin_pad, type_into, wait_for, wait_until};

/// A demo clinic with staff cards, and the app on it showing `view`.
fn staffed(view: View) -> (Harness<'static, MedcardApp>, demo::Demo, StaffCards) {
    let now = medcard_desktop::context::system_now();
    let d = demo::create(None, now).unwrap();
    let staff = demo::create_staff(&d.data_dir, now).unwrap();
    let mut env = AppContext::new(&d.data_dir, CardSource::Sim(d.slot.clone()));
    env.staff_readers = vec![CardSource::Sim(staff.slot.clone())];
    (harness(env, view), d, staff)
}

fn shows(h: &Harness<'_, MedcardApp>, label: &str) -> bool {
    h.query_all_by_label_contains(label).next().is_some()
}

/// Inserts the staff card of `role` and signs in with `pin`.
fn sign_in(h: &mut Harness<'_, MedcardApp>, staff: &StaffCards, role: StaffRole, pin: &str) {
    staff.hold(role);
    wait_for(h, "Staff sign-in");
    click(h, "Insert the staff card");
    type_into(h, Role::PasswordInput, "Staff card PIN", pin);
    click(h, "Sign in");
}

fn entries(d: &demo::Demo) -> Vec<reader::audit::Entry> {
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    reader::audit::entries(&db, 0, None).unwrap()
}

fn clinician_actor() -> String {
    format!("staff:S-1#{}", demo::STAFF_SERIAL_BASE + 1)
}

#[test]
fn bedside_reads_nothing_without_a_staff_session_and_a_clinicians_card_signs_every_read() {
    let (mut h, d, staff) = staffed(View::Bedside);
    let (text, _) = support::checkin_qr(&d);
    wait_for(&mut h, "Staff sign-in");
    wait_for(&mut h, "nothing can be scanned or opened until you sign in");
    // No PIN field content, no scan: the inputs are disabled and nothing was read.
    h.get_by_role_and_label(Role::MultilineTextInput, "QR text:").set_text_value_accesskit(&text);
    h.step();
    click(&mut h, "Verify text");
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(entries(&d).iter().all(|e| e.kind != "record.read"), "nothing was read without a session");

    sign_in(&mut h, &staff, StaffRole::Clinician, demo::StaffCards::pin(StaffRole::Clinician));
    wait_for(&mut h, "Signed in: Dr N. Lee (clinician, staff S-1)");
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "Penicillin"));
    let reads: Vec<_> = entries(&d).into_iter().filter(|e| e.kind == "record.read").collect();
    assert_eq!(reads.len(), demo::CONSENTED.len());
    for e in &reads {
        assert_eq!(e.actor, clinician_actor(), "each read names the clinician");
        assert!(e.detail.contains(" sig="), "each read is signed by the card: {}", e.detail);
    }
    let signed_in = entries(&d).into_iter().filter(|e| e.kind == "staff.session" && e.outcome == "ok").count();
    assert_eq!(signed_in, 1);

    // A record opened again from the Cached list is signed by the card too.
    click(&mut h, "Hide now");
    wait_until(&mut h, "the cached list", |a| a.bedside.cached_ids().len() == demo::CONSENTED.len());
    h.query_all_by_label("Open record").next().unwrap().click();
    wait_for(&mut h, "VERIFIED (from this device's cache)");
    let cached_read = entries(&d).into_iter().filter(|e| e.kind == "record.read").nth(demo::CONSENTED.len()).unwrap();
    assert!(cached_read.detail.starts_with("cached=") && cached_read.detail.contains(" sig="), "{}", cached_read.detail);
    assert_eq!(cached_read.actor, clinician_actor());
}

#[test]
fn bedside_refuses_a_reception_card_with_the_librarys_reason() {
    let (mut h, d, staff) = staffed(View::Bedside);
    sign_in(&mut h, &staff, StaffRole::Reception, demo::StaffCards::pin(StaffRole::Reception));
    wait_for(&mut h, "Not signed in: R-1 is signed in as reception, and a reception may not");
    assert!(h.state().bedside.staff.session().is_none());
    assert!(shows(&h, "nothing can be scanned or opened until you sign in"));
    assert!(entries(&d).iter().any(|e| e.kind == "staff.session" && e.outcome == "not-permitted"));
}

#[test]
fn bedside_wrong_staff_pin_says_how_many_tries_are_left() {
    let (mut h, _d, staff) = staffed(View::Bedside);
    sign_in(&mut h, &staff, StaffRole::Clinician, "000000");
    wait_for(&mut h, "Wrong staff card PIN: 2 tries left");
    assert!(h.state().bedside.staff.session().is_none());
}

#[test]
fn bedside_session_ends_when_the_staff_card_is_pulled_and_the_records_are_forgotten() {
    let (mut h, d, staff) = staffed(View::Bedside);
    let (text, _) = support::checkin_qr(&d);
    sign_in(&mut h, &staff, StaffRole::Clinician, demo::StaffCards::pin(StaffRole::Clinician));
    wait_for(&mut h, "Signed in: Dr N. Lee");
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "Penicillin"));

    click(&mut h, "Remove the staff card");
    wait_for(&mut h, "Signed out: the staff card was taken out of its reader");
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(!shows(&h, "Penicillin"), "the record is forgotten");
    assert!(!shows(&h, "VERIFIED"));
    assert!(shows(&h, "nothing can be scanned or opened until you sign in"));
    wait_until(&mut h, "the end audited", |_| entries(&d).iter().any(|e| e.kind == "staff.session_ended"));
    let ended = entries(&d).into_iter().find(|e| e.kind == "staff.session_ended").unwrap();
    assert_eq!(ended.subject, clinician_actor());
    assert!(ended.detail.contains("why=card-removed"), "{}", ended.detail);
}

#[test]
fn bedside_session_ends_after_the_idle_time_and_the_records_are_forgotten() {
    let (mut h, d, staff) = staffed(View::Bedside);
    let t0 = medcard_desktop::context::system_now();
    h.state_mut().env.fixed_now = Some(t0);
    h.state_mut().env.settings.staff_idle = std::time::Duration::from_secs(60);
    let (text, _) = support::checkin_qr(&d);
    sign_in(&mut h, &staff, StaffRole::Clinician, demo::StaffCards::pin(StaffRole::Clinician));
    wait_for(&mut h, "Signed in: Dr N. Lee");
    wait_for(&mut h, "signs out after 1:00 without activity");
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");

    // A minute later by the clinic clock, without a touch.
    h.state_mut().env.fixed_now = Some(t0 + 61);
    wait_for(&mut h, "Signed out after the idle time");
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(!shows(&h, "Penicillin"));
    assert!(h.state().bedside.staff.session().is_none());
    wait_until(&mut h, "the end audited", |_| entries(&d).iter().any(|e| e.kind == "staff.session_ended"));
    let ended = entries(&d).into_iter().find(|e| e.kind == "staff.session_ended").unwrap();
    assert!(ended.detail.contains("why=idle"), "{}", ended.detail);
    // The staff card stays in its reader, but its session is over: signing in again needs the PIN.
    assert!(shows(&h, "Staff card PIN"));
}

#[test]
fn emergency_access_needs_a_reason_opens_the_emergency_set_under_a_banner_and_raises_an_admin_alert() {
    let (mut h, d, staff) = staffed(View::Bedside);
    sign_in(&mut h, &staff, StaffRole::Clinician, demo::StaffCards::pin(StaffRole::Clinician));
    wait_for(&mut h, "Signed in: Dr N. Lee");
    click(&mut h, "Emergency access (break the glass)");
    type_into(&mut h, Role::TextInput, "Patient id", demo::PATIENT_ID);

    // No reason: refused (and audited).
    click(&mut h, "Open emergency data");
    wait_for(&mut h, "Emergency access refused: emergency access needs a reason");
    assert_eq!(h.state().bedside.emergency.records_shown(), 0);

    type_into(&mut h, Role::TextInput, "Reason (required)", "unconscious on arrival");
    click(&mut h, "Open emergency data");
    wait_for(&mut h, BANNER);
    // The default emergency set: allergies, medications, summary (not the labs).
    assert_eq!(h.state().bedside.emergency.records_shown(), 3);
    assert!(shows(&h, "Penicillin"));
    assert!(shows(&h, "reason: unconscious on arrival"));
    let em: Vec<_> = entries(&d).into_iter().filter(|e| e.kind == "record.emergency").collect();
    assert_eq!(em.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(), ["no-reason", "ok"]);
    assert!(em.iter().all(|e| e.actor == clinician_actor() && e.detail.contains(" sig=")));

    // Pulling the card forgets the emergency records too.
    click(&mut h, "Remove the staff card");
    wait_for(&mut h, "Signed out: the staff card was taken out");
    assert_eq!(h.state().bedside.emergency.records_shown(), 0);
    assert!(!shows(&h, BANNER));

    // The administrator sees the alert.
    click(&mut h, "Admin");
    sign_in(&mut h, &staff, StaffRole::Admin, demo::StaffCards::pin(StaffRole::Admin));
    wait_until(&mut h, "unlocking", |a| a.admin.is_unlocked());
    click(&mut h, "Audit log");
    wait_for(&mut h, "EMERGENCY ACCESS alert: emergency access to the records of P-1001");
    assert!(shows(&h, "because: unconscious on arrival"));
}

#[test]
fn admin_opens_only_with_an_administrators_staff_card_and_locks_when_it_is_pulled() {
    let (mut h, d, staff) = staffed(View::Admin);
    wait_for(&mut h, "Admin is locked");
    wait_for(&mut h, "the admin view opens with an administrator's staff card");
    assert!(h.query_by_label("Admin PIN").is_none(), "the shared admin PIN is not offered");

    // A clinician's card is refused with the library's message.
    sign_in(&mut h, &staff, StaffRole::Clinician, demo::StaffCards::pin(StaffRole::Clinician));
    wait_for(&mut h, "Not signed in: S-1 is signed in as clinician, and a clinician may not");
    assert!(!h.state().admin.is_unlocked());

    click(&mut h, "Remove the staff card");
    sign_in(&mut h, &staff, StaffRole::Admin, demo::StaffCards::pin(StaffRole::Admin));
    wait_until(&mut h, "unlocking", |a| a.admin.is_unlocked());
    wait_for(&mut h, "Signed in: Sam Admin (admin, staff A-1)");
    wait_for(&mut h, "Issue card");

    // Work done in the session names the administrator, and the log still verifies: these
    // entries are the device's, not the card's own signed ones.
    // The card list loads in the background.
    wait_for(&mut h, &format!("Revoke {}", demo::SERIAL));
    click(&mut h, &format!("Revoke {}", demo::SERIAL));
    wait_for(&mut h, &format!("Revoke card {}?", demo::SERIAL));
    type_into(&mut h, Role::TextInput, "Reason", "lost");
    click(&mut h, "Confirm revoke");
    wait_until(&mut h, "the revocation audited", |_| entries(&d).iter().any(|e| e.kind == "card.revoked"));
    let revoked = entries(&d).into_iter().find(|e| e.kind == "card.revoked").unwrap();
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    let verified = reader::audit::verify(&db, &ks.issuer_public()).unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    assert!(revoked.actor.ends_with(&format!(" as staff:A-1#{}", demo::STAFF_SERIAL_BASE)), "{}", revoked.actor);

    click(&mut h, "Remove the staff card");
    wait_for(&mut h, "Locked: the staff card was taken out");
    assert!(!h.state().admin.is_unlocked());
    assert!(h.query_by_label("Issue card").is_none());
    wait_until(&mut h, "the end audited", |_| entries(&d).iter().any(|e| e.kind == "staff.session_ended"));
}

#[test]
fn admin_pin_opens_nothing_once_the_clinic_has_staff_cards() {
    let (mut h, d, _staff) = staffed(View::Admin);
    // The tour's path (and any caller of submit_pin): the shared PIN is refused by the check too.
    let env = h.state().env.clone();
    let ctx = h.ctx.clone();
    h.state_mut().admin.submit_pin(&ctx, &env, zeroize::Zeroizing::new(demo::ADMIN_PIN.to_owned()));
    wait_for(&mut h, "not the shared admin PIN");
    assert!(!h.state().admin.is_unlocked());
    assert!(entries(&d).iter().all(|e| e.kind != "admin.unlock"));
}

#[test]
fn kiosk_after_check_in_shows_who_read_the_records_since_the_last_visit() {
    let (mut h, _d, staff) = staffed(View::Kiosk);
    // First visit: no one has read anything.
    let text = check_in(&mut h);
    wait_for(&mut h, "Since your last visit: no one read your records.");
    click(&mut h, "Remove the demo card");

    // A clinician reads the records with that code, and breaks the glass once.
    click(&mut h, "Bedside");
    sign_in(&mut h, &staff, StaffRole::Clinician, demo::StaffCards::pin(StaffRole::Clinician));
    wait_for(&mut h, "Signed in: Dr N. Lee");
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    click(&mut h, "Emergency access (break the glass)");
    type_into(&mut h, Role::TextInput, "Patient id", demo::PATIENT_ID);
    type_into(&mut h, Role::TextInput, "Reason (required)", "unconscious on arrival");
    click(&mut h, "Open emergency data");
    wait_for(&mut h, BANNER);
    click(&mut h, "Sign out");

    // Next visit: the report names the reader, what they read, and the emergency access.
    click(&mut h, "Kiosk");
    check_in(&mut h);
    wait_for(&mut h, "Since your last visit:");
    // The four reads of the scan, in one line.
    assert!(shows(&h, "Dr N. Lee (clinician) read your summary, allergies, medications and labs"), "{:?}", support::on_screen(&h));
    assert!(shows(&h, "EMERGENCY ACCESS by Dr N. Lee (clinician) to 3 record(s) without your code, because: unconscious on arrival"));
}

/// Checks the demo patient in at the kiosk; returns the QR text.
fn check_in(h: &mut Harness<'_, MedcardApp>) -> String {
    wait_for(h, "Please insert your card");
    click(h, "Insert the demo card");
    wait_for(h, "Enter your PIN");
    pin_pad(h, demo::PIN);
    click(h, "OK");
    wait_for(h, "Check in");
    click(h, "Check in");
    wait_for(h, "You are checked in");
    h.state().kiosk.shown_qr().unwrap().text.to_string()
}

#[test]
fn kiosk_refuses_a_staff_card_as_a_patients_card() {
    let now = medcard_desktop::context::system_now();
    let d = demo::create(None, now).unwrap();
    let staff = demo::create_staff(&d.data_dir, now).unwrap();
    // The clinician's staff card in the kiosk's own reader.
    let env = AppContext::new(&d.data_dir, CardSource::Sim(staff.slot.clone()));
    let mut h = harness(env, View::Kiosk);
    click(&mut h, "Insert the demo card");
    wait_for(&mut h, "Enter your PIN");
    pin_pad(&mut h, demo::StaffCards::pin(StaffRole::Clinician));
    click(&mut h, "OK");
    wait_for(&mut h, "This is a staff card, not a patient card");
    assert!(h.state().kiosk.shown_qr().is_none());
}

#[test]
fn kiosk_shows_no_access_report_from_an_audit_log_that_does_not_verify() {
    let (mut h, d, _staff) = staffed(View::Kiosk);
    // Someone with the database key edits an entry behind the log's back.
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
    db.conn().execute_batch("UPDATE audit_entries SET outcome = 'refused' WHERE seq = 3").unwrap();
    drop(db);
    check_in(&mut h);
    wait_for(&mut h, "the access report is not shown: the audit log does not verify");
    assert!(!shows(&h, "no one read your records"), "a log that does not verify gives no report");
}
