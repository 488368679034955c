//! The card side's clinic state lives in the clinic database and every card-side security event
//! leaves an audit entry: issuance, card verification (ok, clone, revoked, untrusted), PIN
//! verified / wrong / blocked, unblock, PIN change, revocation, consent set / revoked / refused.
//! In-process (card simulator); after each flow `audit verify` must pass. Also: the database
//! file holds neither the patient id nor the name in clear, no PIN ever reaches the log, and a
//! clinic whose database cannot be opened refuses to act.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use card_applet_sim::{Card, MemoryStore, PersistentState};
use reader::audit;
use reader::category::Category;
use reader::clinic::{self, ClinicError, ClinicState, trust_list};
use reader::consent::{self, ConsentError, ConsentRequest};
use reader::credential::CredentialError;
use reader::db::ClinicDb;
use reader::issue::{IssueRequest, IssueStep};
use reader::piv::tags;
use reader::{CardError, Error, Keystore, PinBlock, Piv, PivError, SimTransport, Transport};

const SERIAL: u32 = 7_300_001;
const NOW: i64 = 1_795_000_000;
const PIN: &str = "482913";
const PUK: &str = "77120934";
const PATIENT: &str = "P-SECRET-7781";
const NAME: &str = "Hildegard Quenstedt-Zybura";

fn blank(serial: u32) -> Piv<SimTransport> {
    Piv::new(SimTransport::new(Card::new(PersistentState::blank(serial), Box::new(MemoryStore::default()))))
}

fn request(patient: &str) -> IssueRequest {
    IssueRequest {
        patient_id: patient.into(),
        name: NAME.into(),
        pin: PinBlock::pin(PIN).unwrap(),
        puk: PinBlock::puk(PUK).unwrap(),
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

fn issued(ks: &Keystore, state: &ClinicState, serial: u32, patient: &str) -> Piv<SimTransport> {
    let mut card = blank(serial);
    clinic::issue_card(&mut card, ks, state, &request(patient), &mut no_progress).unwrap();
    card.transport_mut().reset().unwrap();
    card
}

/// The log's entries as (kind, subject, outcome, detail).
fn log(state: &ClinicState) -> Vec<(String, String, String, String)> {
    let db = state.db().unwrap();
    audit::entries(&db, 0, None).unwrap().into_iter().map(|e| (e.kind, e.subject, e.outcome, e.detail)).collect()
}

/// The entries after the first `skip`, as (kind, subject, outcome).
fn since(state: &ClinicState, skip: usize) -> Vec<(String, String, String)> {
    log(state).into_iter().skip(skip).map(|(k, s, o, _)| (k, s, o)).collect()
}

fn e(kind: &str, subject: impl ToString, outcome: &str) -> (String, String, String) {
    (kind.to_owned(), subject.to_string(), outcome.to_owned())
}

fn assert_log_verifies(ks: &Keystore, state: &ClinicState) {
    let db = state.db().unwrap();
    match audit::verify(&db, &ks.issuer_public()).unwrap() {
        Ok(r) => assert_eq!(r.entries as usize, log(state).len()),
        Err(finding) => panic!("audit verify failed: {finding:?}"),
    }
    for (kind, _, _, detail) in log(state) {
        assert!(!detail.contains(PIN) && !detail.contains(PUK), "{kind} entry holds a secret: {detail}");
    }
}

#[test]
fn issuing_a_card_records_it_in_the_database_with_one_issued_entry() {
    let (_d, ks, state) = clinic("clinic-a");
    issued(&ks, &state, SERIAL, PATIENT);
    let cards = state.cards().unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!((cards[0].serial, cards[0].patient_id.as_str(), cards[0].name.as_str()), (SERIAL, PATIENT, NAME));
    assert_eq!(since(&state, 0), [e("card.issued", SERIAL, "ok")]);
    let (_, _, _, detail) = &log(&state)[0];
    assert!(detail.contains("reissue=false"), "{detail}");
    assert_log_verifies(&ks, &state);
}

#[test]
fn failed_issuance_is_logged_and_records_no_card_then_reissue_is_logged_once() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = blank(SERIAL);
    let pulled = card.transport_mut().remove_card().unwrap();
    let err = clinic::issue_card(&mut card, &ks, &state, &request(PATIENT), &mut no_progress);
    assert!(matches!(err, Err(Error::Card(PivError::Transport(reader::TransportError::CardRemoved { .. })))), "{err:?}");
    assert!(state.cards().unwrap().is_empty(), "a failed issuance records no card");
    card.transport_mut().insert_card(pulled);
    clinic::issue_card(&mut card, &ks, &state, &request(PATIENT), &mut no_progress).unwrap();
    let entries = since(&state, 0);
    assert_eq!(entries[0].0, "card.issued");
    assert!(entries[0].1.starts_with("reader:"), "{:?}", entries[0]);
    assert_eq!(entries[0].2, "transport-error");
    assert_eq!(entries[1], e("card.issued", SERIAL, "ok"));
    assert_eq!(state.cards().unwrap().len(), 1);
    assert_log_verifies(&ks, &state);
}

#[test]
fn verify_with_pin_logs_card_verified_and_pin_verified() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    let trust = trust_list(&ks).unwrap();
    let g = clinic::verify_card(&mut card, &state, &trust, NOW + 10, Some(&PinBlock::pin(PIN).unwrap())).unwrap();
    assert!(g.pin_verified);
    assert_eq!(since(&state, 1), [e("card.verified", SERIAL, "ok"), e("card.pin_verified", SERIAL, "ok")]);
    assert_log_verifies(&ks, &state);
}

#[test]
fn wrong_pins_log_tries_left_then_blocked_and_unblock_is_logged() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    let trust = trust_list(&ks).unwrap();
    let wrong = PinBlock::pin("000000").unwrap();
    for tries_left in [2u8, 1, 0] {
        card.transport_mut().reset().unwrap();
        let err = clinic::verify_card(&mut card, &state, &trust, NOW + 10, Some(&wrong));
        assert!(
            matches!(err, Err(Error::Card(PivError::Card(CardError::WrongSecret { tries_left: t, .. }))) if t == tries_left),
            "{err:?}"
        );
    }
    card.transport_mut().reset().unwrap();
    let err = clinic::verify_card(&mut card, &state, &trust, NOW + 10, Some(&PinBlock::pin(PIN).unwrap()));
    assert!(matches!(err, Err(Error::Card(PivError::Card(CardError::PinBlocked)))), "{err:?}");
    let entries = log(&state);
    let failed: Vec<&str> = entries.iter().filter(|x| x.0 == "card.pin_failed").map(|x| x.3.as_str()).collect();
    assert_eq!(failed, ["operation=verify tries_left=2", "operation=verify tries_left=1", "operation=verify tries_left=0"]);
    assert_eq!(entries.iter().filter(|x| x.0 == "card.blocked").count(), 2, "blocked at the third wrong PIN and when tried again");
    // A wrong PUK, then the right one.
    card.transport_mut().reset().unwrap();
    let n = entries.len();
    let new_pin = PinBlock::pin("222333").unwrap();
    let err = clinic::unblock_pin(&mut card, &state, &PinBlock::puk("11111111").unwrap(), &new_pin, NOW + 20);
    assert!(matches!(err, Err(Error::Card(PivError::Card(CardError::WrongSecret { tries_left: 2, .. })))), "{err:?}");
    clinic::unblock_pin(&mut card, &state, &PinBlock::puk(PUK).unwrap(), &new_pin, NOW + 21).unwrap();
    assert_eq!(since(&state, n), [e("card.unblocked", SERIAL, "wrong-puk"), e("card.unblocked", SERIAL, "ok")]);
    assert_log_verifies(&ks, &state);
}

#[test]
fn pin_change_is_logged_and_a_wrong_old_pin_is_a_failed_try() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    let new_pin = PinBlock::pin("654321").unwrap();
    let err = clinic::change_pin(&mut card, &state, &PinBlock::pin("999999").unwrap(), &new_pin, NOW + 5);
    assert!(matches!(err, Err(Error::Card(PivError::Card(CardError::WrongSecret { tries_left: 2, .. })))), "{err:?}");
    clinic::change_pin(&mut card, &state, &PinBlock::pin(PIN).unwrap(), &new_pin, NOW + 6).unwrap();
    assert_eq!(since(&state, 1), [e("card.pin_failed", SERIAL, "wrong-pin"), e("card.pin_changed", SERIAL, "ok")]);
    assert_log_verifies(&ks, &state);
}

#[test]
fn revoked_card_refusal_is_logged_with_the_revocation() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    state.revoke(SERIAL, NOW + 1, "lost").unwrap();
    let trust = trust_list(&ks).unwrap();
    let err = clinic::verify_card(&mut card, &state, &trust, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::Revoked { serial: SERIAL }))), "{err:?}");
    assert_eq!(since(&state, 1), [e("card.revoked", SERIAL, "ok"), e("card.verified", SERIAL, "revoked")]);
    assert_eq!(state.cards().unwrap().len(), 1);
    assert!(state.is_revoked(SERIAL).unwrap());
    assert_log_verifies(&ks, &state);
}

#[test]
fn clone_and_untrusted_cards_leave_refusal_entries() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    // A clone: same serial, the credential copied, its own (other) 9E key.
    let credential = card.card_credential().unwrap().unwrap();
    let mut other = blank(SERIAL);
    clinic::issue_card(&mut other, &ks, &state, &request(PATIENT), &mut no_progress).unwrap();
    other.authenticate_management(&ks.card_management_key(SERIAL).unwrap()).unwrap();
    other.put_data(tags::CARD_CREDENTIAL, &credential).unwrap();
    other.transport_mut().reset().unwrap();
    let n = log(&state).len();
    let trust = trust_list(&ks).unwrap();
    let err = clinic::verify_card(&mut other, &state, &trust, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::NotGenuine { .. }))), "{err:?}");
    // A card of another clinic whose CA is not trusted here.
    let (_d2, ks_b, state_b) = clinic("clinic-b");
    let mut foreign = issued(&ks_b, &state_b, SERIAL + 1, "P-B");
    let err = clinic::verify_card(&mut foreign, &state, &trust, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::UnknownIssuer { .. }))), "{err:?}");
    let tail = since(&state, n);
    assert_eq!(tail[0], e("card.verified", SERIAL, "not-genuine"));
    assert_eq!(tail[1].0, "card.verified");
    assert_eq!(tail[1].2, "untrusted");
    assert!(tail[1].1.starts_with("reader:"), "an untrusted card's serial is not trusted: {:?}", tail[1]);
    assert_log_verifies(&ks, &state);
}

fn consent_req(scope: Vec<Category>, now: i64) -> ConsentRequest {
    ConsentRequest { scope, days: 30, pin: PinBlock::pin(PIN).unwrap(), now }
}

#[test]
fn consent_set_revoke_and_refusals_are_logged() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    consent::set_in(&mut card, &ks, &state, &consent_req(vec![Category::Labs, Category::Notes], NOW + 100), &mut |_| Ok(())).unwrap();
    let v1 = card.consent_token().unwrap().unwrap();
    card.transport_mut().reset().unwrap();
    consent::set_in(&mut card, &ks, &state, &consent_req(Vec::new(), NOW + 200), &mut |_| Ok(())).unwrap();
    card.transport_mut().reset().unwrap();
    assert_eq!(state.highest_consent_version(PATIENT).unwrap(), Some(2));
    let after_set = log(&state).len();
    // The older, broader token written back: refused, and the refusal logged.
    card.authenticate_management(&ks.card_management_key(SERIAL).unwrap()).unwrap();
    card.put_data(tags::CONSENT_TOKEN, &v1).unwrap();
    card.transport_mut().reset().unwrap();
    let err = consent::show_in(&mut card, &ks, &state, NOW + 300);
    assert!(matches!(err, Err(Error::Clinic(ClinicError::ConsentReplay { got: 1, highest: 2, .. }))), "{err:?}");
    // Another card's token on this card.
    let mut b = issued(&ks, &state, SERIAL + 1, "P-2002");
    consent::set_in(&mut b, &ks, &state, &consent_req(vec![Category::Labs], NOW + 100), &mut |_| Ok(())).unwrap();
    let token_b = b.consent_token().unwrap().unwrap();
    card.authenticate_management(&ks.card_management_key(SERIAL).unwrap()).unwrap();
    card.put_data(tags::CONSENT_TOKEN, &token_b).unwrap();
    card.transport_mut().reset().unwrap();
    let before_other = log(&state).len();
    let err = consent::show_in(&mut card, &ks, &state, NOW + 300);
    assert!(matches!(err, Err(Error::Consent(ConsentError::OtherSigner { .. }))), "{err:?}");

    let all = log(&state);
    let kinds: Vec<(&str, &str, &str)> = all.iter().map(|(k, s, o, _)| (k.as_str(), s.as_str(), o.as_str())).collect();
    let serial = SERIAL.to_string();
    // First set: card verified, PIN verified, consent.set (version 1); revoke: the same with consent.revoked.
    assert_eq!(
        kinds[1..after_set],
        [
            ("card.verified", serial.as_str(), "ok"),
            ("card.pin_verified", serial.as_str(), "ok"),
            ("consent.set", PATIENT, "ok"),
            ("card.verified", serial.as_str(), "ok"),
            ("card.pin_verified", serial.as_str(), "ok"),
            ("consent.revoked", PATIENT, "ok"),
        ]
    );
    assert!(all[3].3.starts_with("version=1 scope=labs,notes"), "{}", all[3].3);
    assert!(all[6].3.starts_with("version=2 scope= "), "{}", all[6].3);
    assert_eq!(kinds[after_set..after_set + 2], [("card.verified", serial.as_str(), "ok"), ("consent.refused", PATIENT, "older-version")]);
    assert_eq!(kinds[before_other..], [("card.verified", serial.as_str(), "ok"), ("consent.refused", PATIENT, "other-card")]);
    assert_log_verifies(&ks, &state);
}

#[test]
fn consent_set_with_a_wrong_pin_logs_the_failed_try_and_no_consent() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    let mut req = consent_req(vec![Category::Labs], NOW + 100);
    req.pin = PinBlock::pin("000000").unwrap();
    let err = consent::set_in(&mut card, &ks, &state, &req, &mut |_| Ok(()));
    assert!(matches!(err, Err(Error::Card(PivError::Card(CardError::WrongSecret { tries_left: 2, .. })))), "{err:?}");
    assert_eq!(since(&state, 1), [e("card.verified", SERIAL, "ok"), e("card.pin_failed", SERIAL, "wrong-pin")]);
    assert_eq!(state.highest_consent_version(PATIENT).unwrap(), None);
    assert_log_verifies(&ks, &state);
}

#[test]
fn database_file_holds_neither_patient_id_nor_name_in_clear() {
    let (d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    consent::set_in(&mut card, &ks, &state, &consent_req(vec![Category::Labs], NOW + 100), &mut |_| Ok(())).unwrap();
    // The state is really there (read back through the key)...
    assert_eq!(state.card(SERIAL).unwrap().map(|c| c.name), Some(NAME.to_owned()));
    // ...but no file of the database (main, WAL, shm) shows it.
    let mut checked = 0;
    for f in std::fs::read_dir(d.path()).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().into_owned();
        if !name.starts_with(reader::db::DB_FILE) {
            continue;
        }
        let bytes = std::fs::read(f.path()).unwrap();
        for needle in [PATIENT, NAME, "consent.set", "card.issued"] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{name} holds {needle:?} in clear");
        }
        checked += 1;
    }
    assert!(checked >= 1, "no database file found");
    // And no JSON state files are written any more.
    for old in ["cards.json", "revoked.json", "consent-versions.json"] {
        assert!(!d.path().join(old).exists(), "{old} was written");
    }
}

#[test]
fn clinic_whose_database_cannot_be_opened_refuses_before_touching_the_card() {
    let (d, ks, state) = clinic("clinic-a");
    let mut card = issued(&ks, &state, SERIAL, PATIENT);
    drop(state);
    // Replace the database with one under another key (another clinic's file).
    let other = tempfile::tempdir().unwrap();
    let ks_b = Keystore::init(other.path(), "clinic-b", NOW).unwrap();
    drop(ClinicDb::open_clinic(&ks_b).unwrap());
    for f in std::fs::read_dir(d.path()).unwrap() {
        let f = f.unwrap();
        if f.file_name().to_string_lossy().starts_with(reader::db::DB_FILE) {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    std::fs::copy(other.path().join(reader::db::DB_FILE), d.path().join(reader::db::DB_FILE)).unwrap();
    let err = ClinicState::open(&ks);
    assert!(matches!(err, Err(ClinicError::Db(reader::db::DbError::WrongKey { .. }))), "{err:?}");
    assert!(err.unwrap_err().to_string().contains("wrong database key"));
    // Through the library too: every flow fails before its first APDU (so no PIN try is spent
    // and nothing is written unaudited).
    struct NoApdu;
    impl Transport for NoApdu {
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, reader::TransportError> {
            panic!("an APDU was sent although the clinic database cannot be opened")
        }
        fn reset(&mut self) -> Result<(), reader::TransportError> {
            Ok(())
        }
        fn reader_name(&self) -> &str {
            "no-apdu"
        }
    }
    let trust = trust_list(&ks).unwrap();
    let state = ClinicState::new(&ks);
    let mut none = Piv::new(NoApdu);
    let wrong_pin = PinBlock::pin("000000").unwrap();
    let is_db = |r: Result<(), Error>| matches!(r, Err(Error::Clinic(ClinicError::Db(_))));
    assert!(is_db(clinic::verify_card(&mut none, &state, &trust, NOW + 10, Some(&wrong_pin)).map(|_| ())));
    assert!(is_db(clinic::issue_card(&mut none, &ks, &state, &request(PATIENT), &mut no_progress).map(|_| ())));
    assert!(is_db(clinic::change_pin(&mut none, &state, &wrong_pin, &wrong_pin, NOW)));
    assert!(is_db(clinic::unblock_pin(&mut none, &state, &PinBlock::puk(PUK).unwrap(), &wrong_pin, NOW)));
    let req = consent_req(vec![Category::Labs], NOW + 100);
    assert!(is_db(consent::set_in(&mut none, &ks, &state, &req, &mut |_| Ok(())).map(|_| ())));
    assert!(is_db(consent::show_in(&mut none, &ks, &state, NOW + 100).map(|_| ())));
    assert_eq!(card.pin_status().unwrap(), reader::PinStatus::NotVerified { tries_left: 3 }, "no PIN try was spent unaudited");
}
