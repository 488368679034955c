//! The bedside scanner driven through its accessible labels (egui_kittest), on a demo clinic
//! with a real check-in QR code made by the library's kiosk flow on the demo card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use medcard_desktop::{MedcardApp, View, demo};
use support::{app, checkin_qr, click, paste, wait_for};

/// Types `path` into the "Image file:" field and presses Open.
fn open_path(h: &mut Harness<'_, MedcardApp>, path: &Path) {
    h.get_by_role_and_label(Role::TextInput, "Image file:").set_text_value_accesskit(&path.display().to_string());
    // The new text changes the layout: let it settle before clicking.
    h.step();
    h.step();
    click(h, "Open");
}

/// Waits until the view shows a finished result (the spinner is gone).
fn wait_result(h: &mut Harness<'_, MedcardApp>) {
    for _ in 0..3000 {
        h.step();
        if h.state().bedside.has_result() {
            h.step();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("no result on screen");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn shows(h: &Harness<'_, MedcardApp>, label: &str) -> bool {
    h.query_all_by_label_contains(label).next().is_some()
}

#[test]
fn bedside_opens_a_check_in_png_shows_verified_with_every_check_and_the_allergy_then_refuses_it_as_already_used() {
    let (mut h, d) = app(View::Bedside);
    let (_, png) = checkin_qr(&d);
    let file = write(&d.data_dir, "checkin.png", &png);

    open_path(&mut h, &file);
    wait_for(&mut h, "VERIFIED");
    assert_eq!(h.state().bedside.verdict(), Some("VERIFIED"));
    for line in [
        "Issuer trusted: passed",
        "Signature valid: passed",
        "Not expired: passed",
        "Not used before (one-time): passed",
        "Record digest matches: passed",
        "Consent covers the records: passed",
    ] {
        assert!(shows(&h, line), "missing check line {line:?}");
    }
    assert!(shows(&h, &format!("for patient {}", demo::PATIENT_ID)));
    assert!(shows(&h, "Valid until"));
    assert!(shows(&h, "hides in "), "the record says when it hides");
    // The allergy sample, rendered as a readable FHIR summary.
    assert!(shows(&h, "Penicillin"), "the allergy record is shown");
    assert_eq!(h.state().bedside.records_shown(), demo::CONSENTED.len(), "one record per consented category");
    // Notes and imaging are outside the demo consent: not shown.
    assert!(h.query_by_label_contains("Record 5 of").is_none());

    // The cached list holds the records just verified.
    for _ in 0..200 {
        h.step();
        if h.state().bedside.cached_ids().len() == demo::CONSENTED.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(h.state().bedside.cached_ids().len(), demo::CONSENTED.len());
    assert!(shows(&h, &format!("{} · allergies", demo::PATIENT_ID)));

    // The same code a second time: one-time use.
    open_path(&mut h, &file);
    wait_for(&mut h, "INVALID");
    assert!(shows(&h, "already used"), "the reason says it was used");
    assert!(shows(&h, "Not used before (one-time): FAILED"));
    assert!(shows(&h, "Record digest matches: not checked"));
    assert!(shows(&h, "What to do: ask the patient to check in again"));
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(!shows(&h, "Penicillin"), "a refused code shows no record");
}

#[test]
fn bedside_refuses_a_tampered_code_as_invalid_with_the_reason_and_shows_nothing() {
    let (mut h, d) = app(View::Bedside);
    let (text, _) = checkin_qr(&d);
    // One character of the base45 body changed to another base45 character, re-rendered.
    let mut chars: Vec<char> = text.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let file = write(&d.data_dir, "tampered.png", &qr::render::render_png(&tampered, 8).unwrap());

    open_path(&mut h, &file);
    wait_for(&mut h, "INVALID");
    assert_eq!(h.state().bedside.verdict(), Some("INVALID"));
    assert!(shows(&h, "Reason: "), "the reason is given");
    assert!(shows(&h, "What to do: "), "what to do is given");
    assert!(shows(&h, "FAILED"), "a check line says which check failed");
    assert!(shows(&h, "Consent covers the records: not checked"));
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(!shows(&h, "Penicillin"));
}

#[test]
fn bedside_bad_inputs_are_calm_messages_and_the_app_keeps_running() {
    let (mut h, d) = app(View::Bedside);

    // A QR code that is not a MedCard code (a plain URL).
    let url = write(&d.data_dir, "url.png", &qr::render::render_png("https://example.org/menu", 8).unwrap());
    open_path(&mut h, &url);
    wait_for(&mut h, "INVALID");
    assert!(shows(&h, "not a MedCard code"), "the reason says what it is");

    // An EU COVID certificate-style prefix is not ours either.
    let hc1 = write(&d.data_dir, "hc1.png", &qr::render::render_png("HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH", 8).unwrap());
    open_path(&mut h, &hc1);
    wait_for(&mut h, "not a MedCard code");

    // A picture without a QR code.
    let blank = image::GrayImage::from_pixel(300, 300, image::Luma([255]));
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(blank).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let blank = write(&d.data_dir, "blank.png", &png);
    open_path(&mut h, &blank);
    wait_for(&mut h, "No QR code found");

    // Not an image at all.
    let text = write(&d.data_dir, "notes.png", b"this is not a picture");
    open_path(&mut h, &text);
    wait_for(&mut h, "Not an image MedCard can read");

    // A path that does not exist.
    open_path(&mut h, &d.data_dir.join("no-such-file.png"));
    wait_for(&mut h, "Cannot open the file");

    // Empty pasted text.
    click(&mut h, "Verify text");
    wait_for(&mut h, "Nothing to verify");

    // Still working: a real code verifies after all that.
    let (_, png) = checkin_qr(&d);
    let good = write(&d.data_dir, "good.png", &png);
    open_path(&mut h, &good);
    wait_for(&mut h, "VERIFIED");
}

#[test]
fn bedside_verifies_pasted_text_and_clears_the_field() {
    let (mut h, d) = app(View::Bedside);
    let (text, _) = checkin_qr(&d);
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "Penicillin"));
    assert!(shows(&h, "From pasted text"));
    let field = h.get_by_role_and_label(Role::MultilineTextInput, "QR text:");
    assert_eq!(field.value().unwrap_or_default(), "", "the QR text (it carries the records' key) is cleared");
}

#[test]
fn bedside_a_missing_record_store_is_refused_as_invalid_and_nothing_is_cached() {
    let (mut h, d) = app(View::Bedside);
    let (text, _) = checkin_qr(&d);
    std::fs::rename(d.data_dir.join("records"), d.data_dir.join("records-moved")).unwrap();
    paste(&mut h, &text);
    wait_for(&mut h, "INVALID");
    assert!(shows(&h, "Record digest matches: FAILED (the stored record is missing or altered)"));
    assert!(shows(&h, "report it to IT"), "what to do: {:?}", support::on_screen(&h));
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(h.state().bedside.cached_ids().is_empty());
}

#[test]
fn bedside_record_hides_itself_and_opens_again_from_the_cached_list() {
    let (mut h, d) = app(View::Bedside);
    let (text, _) = checkin_qr(&d);
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "hides in 2:00") || shows(&h, "hides in 1:5"), "default is two minutes");

    // "Hide now" drops it at once.
    click(&mut h, "Hide now");
    wait_for(&mut h, "Hidden.");
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(!shows(&h, "Penicillin"));

    // Open it again from the Cached list (the allergies record).
    for _ in 0..400 {
        h.step();
        if shows(&h, &format!("{} · allergies", demo::PATIENT_ID)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let ids = h.state().bedside.cached_ids();
    assert_eq!(ids.len(), demo::CONSENTED.len());
    let buttons: Vec<_> = h.query_all_by_label("Open record").collect();
    assert_eq!(buttons.len(), ids.len());
    drop(buttons);
    // Find the allergies entry's button: try each until Penicillin shows.
    let mut found = false;
    for k in 0..ids.len() {
        h.query_all_by_label("Open record").nth(k).unwrap().click();
        wait_result(&mut h);
        if shows(&h, "Penicillin") {
            found = true;
            break;
        }
    }
    assert!(found, "the allergy record opens from the cache");
    assert!(shows(&h, "VERIFIED (from this device's cache)"));
    assert_eq!(h.state().bedside.records_shown(), 1);

    // After the configured time it hides by itself (set to zero here: no waiting in tests).
    h.state_mut().env.settings.record_hide = std::time::Duration::ZERO;
    wait_for(&mut h, "The record was hidden after 0:00");
    assert_eq!(h.state().bedside.records_shown(), 0);
    assert!(!shows(&h, "Penicillin"));
}

#[derive(Debug)]
struct Dropped {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.path
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self.bytes.clone())
    }
}

#[test]
fn bedside_verifies_an_image_dropped_on_the_window_by_path_or_by_bytes() {
    let (mut h, d) = app(View::Bedside);
    let (_, png) = checkin_qr(&d);
    let file = write(&d.data_dir, "dropped.png", &png);
    h.input_mut().dropped_files.push(Arc::new(Dropped { path: file, bytes: Vec::new() }));
    h.step();
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "From dropped.png"));

    // A drop that comes with bytes only (no path): a fresh code.
    let (_, png) = checkin_qr(&d);
    h.input_mut().dropped_files.push(Arc::new(Dropped { path: PathBuf::new(), bytes: png }));
    h.step();
    wait_result(&mut h);
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "Penicillin"));
}

#[test]
fn bedside_shows_an_image_record_inline_and_saves_it_privately() {
    let (mut h, d) = app(View::Bedside);
    // A lab record that is a PNG picture (within the demo consent).
    let env = medcard_desktop::AppContext::new(&d.data_dir, medcard_desktop::CardSource::Sim(d.slot.clone()));
    let o = env.open().unwrap();
    let db = reader::db::ClinicDb::open_clinic(&o.ks).unwrap();
    let picture = demo::samples().into_iter().find(|s| s.media_type == "image/png").unwrap().bytes;
    let new = reader::records::NewRecord {
        patient_id: demo::PATIENT_ID.into(),
        category: reader::category::Category::Labs,
        media_type: "image/png".into(),
        author: "test".into(),
    };
    reader::records::add_record(&o.ks, &db, &o.store, &new, &picture, env.now(), "test").unwrap();
    drop((db, o));
    let (text, _) = checkin_qr(&d);

    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    wait_for(&mut h, "image/png");
    wait_for(&mut h, "An image, shown below");
    assert!(shows(&h, "The record's image"), "the picture is shown inline");
    let exports = tempfile::tempdir().unwrap();
    h.state_mut().env.export_dir = exports.path().to_path_buf();
    // The button is below the fold of the scrolling result: press it through accesskit.
    h.get_by_label("Save as…").click_accesskit();
    h.step();
    h.step();
    wait_for(&mut h, "Saved to");
    let saved: Vec<_> = std::fs::read_dir(exports.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let target = &saved[0];
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("medcard-record-") && name.ends_with(".png"), "{name}");
    assert!(shows(&h, &target.display().to_string()), "the view says where it went");
    assert_eq!(std::fs::read(target).unwrap(), picture);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(target).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn bedside_a_code_from_another_clinic_is_issuer_unknown_with_what_to_do() {
    let (mut h, _d) = app(View::Bedside);
    let other = demo::create(None, medcard_desktop::context::system_now()).unwrap();
    let (text, _) = checkin_qr(&other);
    paste(&mut h, &text);
    wait_for(&mut h, "ISSUER UNKNOWN");
    assert_eq!(h.state().bedside.verdict(), Some("ISSUER UNKNOWN"));
    assert!(shows(&h, "Issuer trusted: FAILED"));
    assert!(shows(&h, "Signature valid: not checked"));
    assert!(shows(&h, "trust list"), "what to do names the trust list");
    assert_eq!(h.state().bedside.records_shown(), 0);
}

#[test]
fn bedside_file_picker_lists_only_folders_and_images_and_opens_the_chosen_code() {
    let (mut h, d) = app(View::Bedside);
    let (_, png) = checkin_qr(&d);
    let dir = d.data_dir.join("scans");
    std::fs::create_dir_all(dir.join("older")).unwrap();
    write(&dir, "wristband.png", &png);
    write(&dir, "notes.txt", b"not listed");
    // Browse starts in the folder of the path typed so far.
    h.get_by_role_and_label(Role::TextInput, "Image file:").set_text_value_accesskit(&format!("{}/", dir.display()));
    h.step();
    h.step();
    click(&mut h, "Browse…");
    wait_for(&mut h, "Choose a QR image");
    assert!(shows(&h, "older/"), "folders are listed");
    assert!(!shows(&h, "notes.txt"), "only images are listed");
    click(&mut h, "wristband.png");
    wait_for(&mut h, "VERIFIED");
    assert!(shows(&h, "From wristband.png"));
    assert!(h.query_by_label_contains("Choose a QR image").is_none(), "the picker closes once a file is chosen");
}

/// Adds a lab record that is a PNG picture for the demo patient (a binary: offered to Save as…).
fn add_picture_record(d: &demo::Demo) -> Vec<u8> {
    let env = medcard_desktop::AppContext::new(&d.data_dir, medcard_desktop::CardSource::Sim(d.slot.clone()));
    let o = env.open().unwrap();
    let db = reader::db::ClinicDb::open_clinic(&o.ks).unwrap();
    let picture = demo::samples().into_iter().find(|s| s.media_type == "image/png").unwrap().bytes;
    let new = reader::records::NewRecord {
        patient_id: demo::PATIENT_ID.into(),
        category: reader::category::Category::Labs,
        media_type: "image/png".into(),
        author: "test".into(),
    };
    reader::records::add_record(&o.ks, &db, &o.store, &new, &picture, env.now(), "test").unwrap();
    picture
}

/// Issue 13: "Save to:" took any path and renamed the record over it, the clinic's database
/// included.
#[test]
fn bedside_save_as_cannot_overwrite_the_clinic_database() {
    let (mut h, d) = app(View::Bedside);
    let exports = tempfile::tempdir().unwrap();
    h.state_mut().env.export_dir = exports.path().to_path_buf();
    add_picture_record(&d);
    let (text, _) = checkin_qr(&d);
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    wait_for(&mut h, "image/png");
    let db = d.data_dir.join("clinic.db");
    if let Some(field) = h.query_all_by_role_and_label(Role::TextInput, "Save to:").next() {
        field.set_text_value_accesskit(&db.display().to_string());
    }
    h.step();
    h.query_all_by_label("Save as…").next().unwrap().click_accesskit();
    h.step();
    h.step();
    // (The app itself writes to the database, so its bytes may change: it must still open.)
    let ks = reader::Keystore::open(&d.data_dir).unwrap();
    let opened = reader::db::ClinicDb::open_clinic(&ks).and_then(|db| db.records(None).map(|r| r.len()));
    assert!(opened.is_ok(), "Save as replaced the clinic's database: {opened:?}");
    wait_for(&mut h, "Saved to");
    assert_eq!(std::fs::read_dir(exports.path()).unwrap().count(), 1, "the copy went into the export folder");
}

/// Issue 13: a record saved at the bedside outlived the cache purge (it went to `$HOME`); now
/// it is kept in the export folder only while its cache entry lives.
#[test]
fn bedside_saved_record_is_removed_when_its_code_expires_from_the_cache() {
    let (mut h, d) = app(View::Bedside);
    let exports = tempfile::tempdir().unwrap();
    h.state_mut().env.export_dir = exports.path().to_path_buf();
    add_picture_record(&d);
    let (text, _) = checkin_qr(&d);
    paste(&mut h, &text);
    wait_for(&mut h, "VERIFIED");
    wait_for(&mut h, "image/png");
    h.query_all_by_label("Save as…").next().unwrap().click_accesskit();
    h.step();
    h.step();
    wait_for(&mut h, "Saved to");
    // Where it went, as the view says.
    let label = support::on_screen(&h).into_iter().find(|l| l.starts_with("Saved to ")).unwrap_or_default();
    let saved = PathBuf::from(label.trim_start_matches("Saved to ").split(" (").next().unwrap());
    assert!(saved.is_file() && saved.starts_with(exports.path()), "{label}");
    // An hour later the code (valid 10 minutes) has expired: the cache purge takes the copy too.
    h.state_mut().env.fixed_now = Some(medcard_desktop::context::system_now() + 3600);
    click(&mut h, "Refresh");
    wait_for(&mut h, "expired or withdrawn record");
    assert!(!saved.exists(), "the saved record {} outlived the cache purge", saved.display());
}
