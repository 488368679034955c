//! Staff sign-in against bad cards, in-process (`SimTransport`, a real keystore and clinic
//! database in a temporary directory): a card that answers wrongly, a reader shim that answers
//! VERIFY itself, a forged, an expired and a foreign staff credential, a role this version does
//! not know, and an access entry whose signature is over another entry. Each is refused with a
//! plain message, audited, and grants nothing; none panics. The pcscd path is `staff_pcsc.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod card_shims;
use card_shims::*;

use card_applet_sim::{Card, MemoryStore, PersistentState};
use p256::ecdsa::SigningKey;
use reader::audit::{self, Event, EventKind, Outcome};
use reader::clinic::ClinicState;
use reader::issue::{IssueStep, StaffIssueRequest};
use reader::piv::tags;
use reader::staff::credential::StaffCredential;
use reader::staff::{Action, Role};
use reader::staff_card::{self, StaffSession};
use reader::{Error, Keystore, PinBlock, Piv, SimTransport, Transport};

const NOW: i64 = 1_795_000_000;
const PIN: &str = "135790";

fn clinic(id: &str) -> (tempfile::TempDir, Keystore, ClinicState) {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::init(dir.path(), id, NOW).unwrap();
    let state = ClinicState::open(&ks).unwrap().with_actor("test-bedside");
    (dir, ks, state)
}

fn staff_card(ks: &Keystore, state: &ClinicState, serial: u32, role: Role) -> Piv<SimTransport> {
    let mut card = Piv::new(SimTransport::new(Card::new(PersistentState::blank(serial), Box::new(MemoryStore::default()))));
    let req = StaffIssueRequest {
        staff_id: format!("S-{serial}"),
        name: "Dr N. Lee".into(),
        role,
        pin: PinBlock::pin(PIN).unwrap(),
        puk: PinBlock::puk("55443322").unwrap(),
        current_puk: PinBlock::puk("12345678").unwrap(),
        validity_days: 30,
        now: NOW,
    };
    staff_card::issue_staff_card(&mut card, ks, state, &req, &mut |_: IssueStep| Ok(())).unwrap();
    card.transport_mut().reset().unwrap();
    card
}

fn sign_in<T: Transport>(card: &mut Piv<T>, ks: &Keystore, state: &ClinicState, now: i64, pin: &str) -> Result<StaffSession, Error> {
    staff_card::sign_in(card, ks, state, now, &PinBlock::pin(pin).unwrap(), Action::ScanAndRead)
}

/// The last audit entry as (kind, subject, outcome).
fn last_entry(state: &ClinicState) -> (String, String, String) {
    let e = audit::entries(&state.db().unwrap(), 0, None).unwrap().pop().unwrap();
    (e.kind, e.subject, e.outcome)
}

/// Replaces the card's credential object (the clinic's management key, as an insider could).
fn put_credential(card: &mut Piv<SimTransport>, ks: &Keystore, serial: u32, bytes: &[u8]) {
    card.select().unwrap();
    card.authenticate_management(&ks.card_management_key(serial).unwrap()).unwrap();
    card.put_data(tags::CARD_CREDENTIAL, bytes).unwrap();
    card.transport_mut().reset().unwrap();
}

/// The credential on the card, decoded.
fn credential_of(card: &mut Piv<SimTransport>) -> StaffCredential {
    card.select().unwrap();
    let bytes = card.card_credential().unwrap().unwrap();
    let parsed = qr::cose::parse(&bytes).unwrap().0;
    StaffCredential::from_cbor(parsed.payload.as_deref().unwrap()).unwrap()
}

#[test]
fn card_whose_signatures_are_garbled_is_refused_as_not_genuine_and_audited() {
    let (_d, ks, state) = clinic("clinic-a");
    let card = staff_card(&ks, &state, 7_200_001, Role::Clinician);
    let mut garbled = Piv::new(GarbledSignatures(card.into_inner()));
    let err = sign_in(&mut garbled, &ks, &state, NOW + 60, PIN).unwrap_err();
    assert!(err.to_string().contains("is not genuine"), "{err}");
    assert_eq!(last_entry(&state), ("staff.session".into(), "7200001".into(), "not-genuine".into()));
}

#[test]
fn pin_answered_by_a_shim_is_not_a_sign_in() {
    let (_d, ks, state) = clinic("clinic-a");
    let card = staff_card(&ks, &state, 7_200_002, Role::Clinician);
    let mut shim = Piv::new(PinShim(card.into_inner()));
    let err = sign_in(&mut shim, &ks, &state, NOW + 60, "000000").unwrap_err();
    assert!(err.to_string().contains("could not prove it with its PIN-protected key"), "{err}");
    assert_eq!(last_entry(&state), ("card.pin_verified".into(), "7200002".into(), "pin-not-proven".into()));
}

#[test]
fn forged_expired_foreign_and_unknown_role_credentials_are_refused_and_audited() {
    let (_d, ks, state) = clinic("clinic-a");
    let serial = 7_200_003;
    let mut card = staff_card(&ks, &state, serial, Role::Clinician);
    let genuine = credential_of(&mut card);

    // Forged: the same claims, an admin's role, signed by a key that is not the clinic's.
    let mut forged = genuine.clone();
    forged.role = "admin".into();
    put_credential(&mut card, &ks, serial, &forged.sign(&SigningKey::from_slice(&[7; 32]).unwrap()).unwrap());
    let err = sign_in(&mut card, &ks, &state, NOW + 60, PIN).unwrap_err();
    assert!(err.to_string().contains("unknown issuer"), "{err}");
    assert_eq!(last_entry(&state).2, "untrusted");

    // Expired.
    card.transport_mut().reset().unwrap();
    let err = sign_in(&mut card, &ks, &state, NOW + 31 * 86_400, PIN).unwrap_err();
    assert!(err.to_string().contains("unknown issuer") || err.to_string().contains("not valid at"), "{err}");
    put_credential(&mut card, &ks, serial, &genuine.sign(ks.issuer_key().unwrap()).unwrap());
    let err = sign_in(&mut card, &ks, &state, NOW + 31 * 86_400, PIN).unwrap_err();
    assert!(err.to_string().contains("not valid at"), "{err}");
    assert_eq!(last_entry(&state).2, "expired");

    // A role this version does not know, signed by the clinic itself: no rights, no PIN asked.
    let mut odd = genuine.clone();
    odd.role = "superuser".into();
    put_credential(&mut card, &ks, serial, &odd.sign(ks.issuer_key().unwrap()).unwrap());
    let err = sign_in(&mut card, &ks, &state, NOW + 60, PIN).unwrap_err();
    assert!(err.to_string().contains("unknown staff role \"superuser\""), "{err}");
    assert_eq!(last_entry(&state), ("staff.session".into(), serial.to_string(), "not-permitted".into()));
    card.select().unwrap();
    assert_eq!(card.pin_status().unwrap(), reader::PinStatus::NotVerified { tries_left: 3 }, "no PIN try spent");

    // Another clinic's staff card, that clinic trusted as a partner: still refused here.
    let (_db, ks_b, state_b) = clinic("clinic-b");
    let mut foreign = staff_card(&ks_b, &state_b, 7_200_004, Role::Clinician);
    let fp = reader::trust::own_entry(&ks_b).unwrap().fingerprint.to_string();
    reader::trust::add_file(&ks, &state, ks_b.ca_certificate_der(), Some("clinic-b"), Some(&fp), "test", NOW).unwrap();
    let err = sign_in(&mut foreign, &ks, &state, NOW + 60, PIN).unwrap_err();
    assert!(err.to_string().contains("only staff cards issued by this clinic"), "{err}");
    assert_eq!(last_entry(&state).2, "foreign-issuer");
}

#[test]
fn access_entry_with_a_signature_over_another_entry_is_found_by_verify() {
    let (_d, ks, state) = clinic("clinic-a");
    let mut card = staff_card(&ks, &state, 7_200_005, Role::Clinician);
    let session = sign_in(&mut card, &ks, &state, NOW + 60, PIN).unwrap();
    let ev = |subject: &str| Event {
        time: NOW + 61,
        kind: EventKind::RecordRead,
        actor: String::new(),
        subject: subject.into(),
        outcome: Outcome::Ok,
        detail: "qr=ab cache=ab patient=P-1".into(),
    };
    let (mut a, mut b) = (ev("loc-a"), ev("loc-b"));
    session.sign_event(&mut card, &mut a).unwrap();
    session.sign_event(&mut card, &mut b).unwrap();
    // b carries a's signature: a signature moved onto another entry.
    let a_sig = a.detail.rsplit_once(" sig=").unwrap().1.to_owned();
    b.detail = format!("{} sig={a_sig}", b.detail.rsplit_once(" sig=").unwrap().0);
    state.audit(&[a]).unwrap();
    let db = state.db().unwrap();
    assert!(audit::verify(&db, &ks.issuer_public()).unwrap().is_ok());
    state.audit(&[b]).unwrap();
    let found = audit::verify(&db, &ks.issuer_public()).unwrap().unwrap_err();
    assert!(found.to_string().contains("signature does not verify with the key of staff card staff:S-7200005#7200005"), "{found}");
}
