//! Attacks on the kiosk's card step that an outside review reproduced (issue 13), each refused
//! with a plain error, audited, and leaving no stored consent behind. In-process simulator; the
//! same card flows run through pcscd + vpcd in `clinic_pcsc.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod card_shims;
use card_shims::*;

use card_applet_sim::{Card, MemoryStore, PersistentState};
use reader::category::Category;
use reader::checkin;
use reader::clinic::{self, ClinicState};
use reader::consent::{self, ConsentRequest, ConsentToken};
use reader::credential::CredentialError;
use reader::issue::{IssueRequest, IssueStep};
use reader::piv::tags;
use reader::{Error, Keystore, PinBlock, Piv, SimTransport, Slot, Transport, audit};

const NOW: i64 = 1_795_000_000;
const PIN: &str = "482913";
const PATIENT: &str = "P-1001";

fn blank(serial: u32) -> Piv<SimTransport> {
    Piv::new(SimTransport::new(Card::new(PersistentState::blank(serial), Box::new(MemoryStore::default()))))
}

fn request() -> IssueRequest {
    IssueRequest {
        patient_id: PATIENT.into(),
        name: "Ada Lovelace".into(),
        pin: PinBlock::pin(PIN).unwrap(),
        puk: PinBlock::puk("77120934").unwrap(),
        current_puk: PinBlock::puk("12345678").unwrap(),
        validity_days: 365,
        now: NOW,
    }
}

fn no_progress(_: IssueStep) -> Result<(), Error> {
    Ok(())
}

fn clinic(id: &str) -> (tempfile::TempDir, Keystore, ClinicState) {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::init(dir.path(), id, NOW).unwrap();
    let state = ClinicState::open(&ks).unwrap().with_actor("test-kiosk");
    (dir, ks, state)
}

fn issued(ks: &Keystore, state: &ClinicState, serial: u32) -> Piv<SimTransport> {
    let mut card = blank(serial);
    clinic::issue_card(&mut card, ks, state, &request(), &mut no_progress).unwrap();
    card.transport_mut().reset().unwrap();
    card
}

/// The last audit entry as (kind, subject, outcome).
fn last_entry(state: &ClinicState) -> (String, String, String) {
    let db = state.db().unwrap();
    let e = audit::entries(&db, 0, None).unwrap().pop().unwrap();
    (e.kind, e.subject, e.outcome)
}

fn consent_versions(state: &ClinicState) -> i64 {
    state.db().unwrap().conn().query_row("SELECT COUNT(*) FROM consent_versions", [], |r| r.get(0)).unwrap()
}

/// The credential on `card` as issued by the clinic of `ks`.
fn credential_of(card: &mut Piv<SimTransport>, ks: &Keystore) -> reader::credential::CardCredential {
    card.select().unwrap();
    let bytes = card.card_credential().unwrap().unwrap();
    reader::credential::verify(&bytes, &clinic::trust_list(ks).unwrap(), NOW).unwrap().credential().clone()
}

/// A consent token for [`PATIENT`] on card `serial`, addressed to `audience`.
fn token(serial: u32, audience: &str, version: u64) -> ConsentToken {
    ConsentToken {
        patient_id: PATIENT.into(),
        audience: audience.into(),
        expires_at: NOW + 86_400 * 30,
        issued_at: NOW,
        token_id: vec![9; consent::CTI_LEN],
        scope: vec![Category::Labs, Category::Allergies],
        version,
        card_serial: serial,
    }
}

/// Signs `token` on the card with its 9C key (after the PIN, as a real token is made) and writes
/// it with the management key of the clinic `ks` that issued the card.
fn put_token(card: &mut Piv<SimTransport>, ks: &Keystore, token: &ConsentToken) {
    let c = credential_of(card, ks);
    card.verify_pin(&PinBlock::pin(PIN).unwrap()).unwrap();
    let bytes =
        reader::cose_util::sign(&token.to_cbor(), &c.key_9c, consent::CONTENT_TYPE, |d| card.sign_digest(Slot::Signature, d)).unwrap();
    card.authenticate_management(&ks.card_management_key(c.card_serial).unwrap()).unwrap();
    card.put_data(tags::CONSENT_TOKEN, &bytes).unwrap();
    card.transport_mut().reset().unwrap();
}

/// Clinic B (trusted by A for referrals) makes a card for one of A's patient ids, with a consent
/// token addressed to clinic A, signed on the card with its 9C key as a real token is.
fn partner_card_for_our_patient(ks_b: &Keystore, state_b: &ClinicState, serial: u32) -> Piv<SimTransport> {
    let mut card = issued(ks_b, state_b, serial);
    put_token(&mut card, ks_b, &token(serial, "clinic-a", 1));
    card
}

#[test]
fn trusted_partner_card_with_our_patient_id_is_refused_at_our_kiosk() {
    let (_da, ks_a, state_a) = clinic("clinic-a");
    let (_db, ks_b, state_b) = clinic("clinic-b");
    ClinicState::new(&ks_a).add_trust_file("clinic-b.der", ks_b.ca_certificate_der()).unwrap();
    let mut card = partner_card_for_our_patient(&ks_b, &state_b, 7_400_001);

    let err = checkin::card_step(&mut card, &ks_a, &state_a, &PinBlock::pin(PIN).unwrap(), NOW + 60);
    assert!(
        matches!(&err, Err(Error::Credential(CredentialError::ForeignIssuer { issuer, clinic, .. })) if issuer == "clinic-b" && clinic == "clinic-a"),
        "{err:?}"
    );
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("only on cards it issued"), "{msg}");
    assert_eq!(last_entry(&state_a), ("card.verified".into(), "7400001".into(), "foreign-issuer".into()));
    assert_eq!(consent_versions(&state_a), 0, "no consent of the partner card is remembered");
}

#[test]
fn trusted_partner_card_cannot_set_or_show_consent_here() {
    let (_da, ks_a, state_a) = clinic("clinic-a");
    let (_db, ks_b, state_b) = clinic("clinic-b");
    ClinicState::new(&ks_a).add_trust_file("clinic-b.der", ks_b.ca_certificate_der()).unwrap();
    let mut card = partner_card_for_our_patient(&ks_b, &state_b, 7_400_002);
    let shown = consent::show_in(&mut card, &ks_a, &state_a, NOW + 60);
    assert!(matches!(shown, Err(Error::Credential(CredentialError::ForeignIssuer { .. }))), "{shown:?}");
    card.transport_mut().reset().unwrap();
    let req = ConsentRequest { scope: vec![Category::Labs], days: 30, pin: PinBlock::pin(PIN).unwrap(), now: NOW + 60 };
    let set = consent::set_in(&mut card, &ks_a, &state_a, &req, &mut |_| Ok(()));
    assert!(matches!(set, Err(Error::Credential(CredentialError::ForeignIssuer { .. }))), "{set:?}");
    assert_eq!(consent_versions(&state_a), 0);
}

#[test]
fn our_own_card_still_checks_in() {
    let (_da, ks_a, state_a) = clinic("clinic-a");
    let mut card = issued(&ks_a, &state_a, 7_400_003);
    let req = ConsentRequest { scope: vec![Category::Labs], days: 30, pin: PinBlock::pin(PIN).unwrap(), now: NOW };
    consent::set_in(&mut card, &ks_a, &state_a, &req, &mut |_| Ok(())).unwrap();
    card.transport_mut().reset().unwrap();
    let out = checkin::card_step(&mut card, &ks_a, &state_a, &PinBlock::pin(PIN).unwrap(), NOW + 60).unwrap();
    assert_eq!(out.credential.credential().patient_id, PATIENT);
}

#[test]
fn pin_answered_by_a_shim_instead_of_the_card_is_refused_at_the_kiosk() {
    let (_da, ks_a, state_a) = clinic("clinic-a");
    let mut card = issued(&ks_a, &state_a, 7_400_004);
    let req = ConsentRequest { scope: vec![Category::Labs], days: 30, pin: PinBlock::pin(PIN).unwrap(), now: NOW };
    consent::set_in(&mut card, &ks_a, &state_a, &req, &mut |_| Ok(())).unwrap();
    card.transport_mut().reset().unwrap();
    let versions = consent_versions(&state_a);
    let sim = card.into_inner();
    let mut shimmed = Piv::new(PinShim(sim));

    let wrong = PinBlock::pin("000000").unwrap();
    let err = checkin::card_step(&mut shimmed, &ks_a, &state_a, &wrong, NOW + 60);
    assert!(matches!(err, Err(Error::Credential(CredentialError::PinNotProven { serial: 7_400_004 }))), "{err:?}");
    assert_eq!(last_entry(&state_a), ("card.pin_verified".into(), "7400004".into(), "pin-not-proven".into()));
    assert_eq!(consent_versions(&state_a), versions, "nothing remembered for a refused check-in");
}

#[test]
fn consent_token_with_the_largest_version_is_refused_and_replaced_without_wrapping() {
    let (_da, ks_a, state_a) = clinic("clinic-a");
    let mut card = issued(&ks_a, &state_a, 7_400_009);
    put_token(&mut card, &ks_a, &token(7_400_009, "clinic-a", u64::MAX));

    let shown = consent::show_in(&mut card, &ks_a, &state_a, NOW + 60);
    assert!(matches!(shown, Err(Error::Consent(_))), "{shown:?}");
    assert_eq!(last_entry(&state_a).0, "consent.refused");
    assert_eq!(consent_versions(&state_a), 0);
    card.transport_mut().reset().unwrap();
    let req = ConsentRequest { scope: vec![Category::Labs], days: 30, pin: PinBlock::pin(PIN).unwrap(), now: NOW + 60 };
    let set = consent::set_in(&mut card, &ks_a, &state_a, &req, &mut |_| Ok(())).unwrap();
    assert_eq!(set.version, 1, "the unusable token is replaced, counting from what this clinic saw");
}

/// Issue 13 item 8: a photo of a code plus read access to the store must not open the patient's
/// records forever. The code carries a one-time key of a per-disclosure copy; the records' own
/// keys never leave the kiosk, and the copies are removed once the code has expired.
#[test]
fn photographed_code_opens_only_its_disclosure_copy_and_nothing_after_the_purge() {
    use reader::records::{self, NewRecord};
    use reader::store::{DirStore, Locator, RecordStore};
    let (dir, ks, state) = clinic("clinic-a");
    let store = DirStore::open(&dir.path().join("records")).unwrap();
    let db = state.db().unwrap();
    let new = |category| NewRecord { patient_id: PATIENT.into(), category, media_type: "text/plain".into(), author: "dr-who".into() };
    let labs = records::add_record(&ks, &db, &store, &new(Category::Labs), b"HbA1c 5.4 %", NOW - 10, "admin").unwrap();
    let mut card = issued(&ks, &state, 7_400_010);
    let req = ConsentRequest { scope: vec![Category::Labs], days: 30, pin: PinBlock::pin(PIN).unwrap(), now: NOW };
    consent::set_in(&mut card, &ks, &state, &req, &mut |_| Ok(())).unwrap();
    card.transport_mut().reset().unwrap();
    let out = checkin::card_step(&mut card, &ks, &state, &PinBlock::pin(PIN).unwrap(), NOW + 60).unwrap();
    let issued = checkin::issue_qr(&ks, &state, &store, &out, None, 600, NOW + 60).unwrap();

    // What a photo of the code gives: its locator and key.
    let trust = clinic::trust_list(&ks).unwrap();
    let v = qr::Verifier::new(qr::Profile::medcard(), &trust).verify(&issued.text, qr::Clock::new(NOW + 61, 60)).unwrap();
    let p = &v.claims().pointer;
    let copy: Locator = p.locator.parse().unwrap();
    let photo_key = p.content_key.clone().unwrap();
    assert_ne!(copy, labs.locator, "the code points at a copy, not at the record itself");
    let original = store.get(&labs.locator).unwrap();
    assert!(records::open(original, PATIENT, &photo_key, "labs").is_err(), "the photographed key opens the record itself");
    let opened = records::open(store.get(&copy).unwrap(), PATIENT, &photo_key, "copy").unwrap();
    assert_eq!(opened.document(), b"HbA1c 5.4 %");
    assert_eq!(opened.meta.record_id, labs.meta.record_id, "same record, same id and category");

    // Until the code has expired (plus the grace for clock skew) the copy stays; then it goes.
    assert_eq!(checkin::purge_disclosures(&db, &store, issued.exp).unwrap(), 0);
    assert!(store.contains(&copy).unwrap());
    let purged = checkin::purge_disclosures(&db, &store, issued.exp + checkin::DISCLOSURE_GRACE + 1).unwrap();
    assert_eq!(purged, 1);
    assert!(!store.contains(&copy).unwrap(), "the expired code's copy is gone from the store");
    assert!(store.contains(&labs.locator).unwrap(), "the record itself stays");
}

/// Issue 14: an audit log that cannot be written stops the check-in (fail closed), and is reported
/// as what it is. It used to come back as a card refusal (outcome `card-refused`), sending reception
/// to look at a card that was fine.
#[test]
fn check_in_whose_audit_log_cannot_be_written_is_an_audit_failure_not_a_card_refusal() {
    use reader::checkin::CheckinError;
    use reader::records::{self, NewRecord};
    use reader::store::DirStore;
    let (dir, ks, state) = clinic("clinic-a");
    let store = DirStore::open(&dir.path().join("records")).unwrap();
    let db = state.db().unwrap();
    let new = NewRecord { patient_id: PATIENT.into(), category: Category::Labs, media_type: "text/plain".into(), author: "dr".into() };
    records::add_record(&ks, &db, &store, &new, b"HbA1c 5.4 %", NOW - 10, "admin").unwrap();
    let mut card = issued(&ks, &state, 7_400_020);
    let req = ConsentRequest { scope: vec![Category::Labs], days: 30, pin: PinBlock::pin(PIN).unwrap(), now: NOW };
    consent::set_in(&mut card, &ks, &state, &req, &mut |_| Ok(())).unwrap();
    card.transport_mut().reset().unwrap();
    let out = checkin::card_step(&mut card, &ks, &state, &PinBlock::pin(PIN).unwrap(), NOW + 60).unwrap();
    card.transport_mut().reset().unwrap();

    // The disk under the audit log fails from here on.
    db.conn()
        .execute_batch("CREATE TRIGGER audit_disk_full BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'disk full'); END;")
        .unwrap();

    let err = checkin::issue_qr(&ks, &state, &store, &out, None, 600, NOW + 61).expect_err("no code without its audit entry");
    assert_eq!(err.outcome().as_str(), "audit-failed", "{err}");
    assert!(err.to_string().starts_with("could not write the audit log: "), "{err}");

    // The card step audits the card and PIN checks: the same failure there is not the card's either.
    let err = checkin::card_step(&mut card, &ks, &state, &PinBlock::pin(PIN).unwrap(), NOW + 62).expect_err("unaudited");
    let err = CheckinError::from(err);
    assert_eq!(err.outcome().as_str(), "audit-failed", "{err}");
    assert!(err.to_string().starts_with("could not write the audit log: "), "{err}");
}
