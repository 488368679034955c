//! Clinic flows against the card simulator in-process (`SimTransport`): issuance, card
//! authentication (genuine, clone, revoked, interrupted issuance), with a real keystore in a
//! temporary data directory. The same flows run through pcscd + vpcd in `clinic_pcsc.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use card_applet_sim::{Card, MemoryStore, PersistentState};
use reader::clinic::{ClinicFiles, trust_list};
use reader::credential::CredentialError;
use reader::issue::{self, Counting, IssueRequest, IssueStep};
use reader::piv::tags;
use reader::{CardError, Error, Keystore, ManagementKey, PinBlock, Piv, PivError, SimTransport, Slot, Transport};

const SERIAL: u32 = 7_100_001;
const NOW: i64 = 1_795_000_000;

fn blank(serial: u32) -> Piv<SimTransport> {
    Piv::new(SimTransport::new(Card::new(PersistentState::blank(serial), Box::new(MemoryStore::default()))))
}

fn request(pin: &str) -> IssueRequest {
    IssueRequest {
        patient_id: "P-1001".into(),
        name: "Ada Lovelace".into(),
        pin: PinBlock::pin(pin).unwrap(),
        puk: PinBlock::puk("77120934").unwrap(),
        current_puk: PinBlock::puk("12345678").unwrap(),
        validity_days: 365,
        now: NOW,
    }
}

fn clinic() -> (tempfile::TempDir, Keystore) {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::init(dir.path(), "clinic-a", NOW).unwrap();
    (dir, ks)
}

fn never_revoked(_: u32) -> Result<bool, Error> {
    Ok(false)
}

fn no_progress(_: IssueStep) -> Result<(), Error> {
    Ok(())
}

#[test]
fn issued_card_is_genuine_with_pin_in_at_most_ten_apdus() {
    let (_d, ks) = clinic();
    let mut card = blank(SERIAL);
    let issued = issue::issue(&mut card, &ks, &request("482913"), &mut no_progress).unwrap();
    assert!(!issued.reissue);
    assert_eq!(issued.credential.card_serial, SERIAL);
    card.transport_mut().reset().unwrap();
    let trust = trust_list(&ks).unwrap();
    let mut counted = Piv::new(Counting::new(card.transport_mut()));
    let pin = PinBlock::pin("482913").unwrap();
    let g = issue::authenticate_card(&mut counted, &trust, &never_revoked, NOW + 10, Some(&pin)).unwrap();
    let apdus = counted.into_inner().count();
    assert!(g.pin_verified);
    assert_eq!(g.credential.credential().patient_id, "P-1001");
    assert!(apdus <= 10, "card verify --pin took {apdus} APDUs");
    eprintln!("card verify --pin: {apdus} APDUs in-process");
}

#[test]
fn issuance_replaces_the_default_management_key_with_the_derived_one() {
    let (_d, ks) = clinic();
    let mut card = blank(SERIAL);
    issue::issue(&mut card, &ks, &request("482913"), &mut no_progress).unwrap();
    let err = card.authenticate_management(&ManagementKey::default_blank());
    assert!(matches!(err, Err(PivError::Card(CardError::ManagementKeyRejected))), "{err:?}");
    card.authenticate_management(&ks.card_management_key(SERIAL).unwrap()).unwrap();
}

#[test]
fn issuance_sets_the_patient_pin_and_puk() {
    let (_d, ks) = clinic();
    let mut card = blank(SERIAL);
    issue::issue(&mut card, &ks, &request("482913"), &mut no_progress).unwrap();
    let wrong = card.verify_pin(&PinBlock::pin("123456").unwrap());
    assert!(matches!(wrong, Err(PivError::Card(CardError::WrongSecret { tries_left: 2, .. }))), "{wrong:?}");
    card.verify_pin(&PinBlock::pin("482913").unwrap()).unwrap();
    card.unblock_pin(&PinBlock::puk("77120934").unwrap(), &PinBlock::pin("111222").unwrap()).unwrap();
}

#[test]
fn clone_with_a_copied_credential_and_certificates_is_not_genuine() {
    let (_d, ks) = clinic();
    let mut original = blank(SERIAL);
    issue::issue(&mut original, &ks, &request("482913"), &mut no_progress).unwrap();
    let credential = original.card_credential().unwrap().unwrap();
    let certs: Vec<_> =
        [Slot::PivAuth, Slot::Signature, Slot::CardAuth].into_iter().map(|s| (s, original.certificate(s).unwrap().unwrap())).collect();
    // The copy: same serial (a forger would set it), its own keys, the copied objects.
    let mut clone = blank(SERIAL);
    clone.authenticate_management(&ManagementKey::default_blank()).unwrap();
    for slot in [Slot::PivAuth, Slot::Signature, Slot::CardAuth] {
        clone.generate(slot).unwrap();
    }
    for (slot, der) in &certs {
        clone.put_certificate(*slot, der).unwrap();
    }
    clone.put_data(tags::CARD_CREDENTIAL, &credential).unwrap();
    clone.transport_mut().reset().unwrap();
    let trust = trust_list(&ks).unwrap();
    let err = issue::authenticate_card(&mut clone, &trust, &never_revoked, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::NotGenuine { serial: SERIAL }))), "{err:?}");
    assert!(err.unwrap_err().to_string().contains("not genuine"));
}

#[test]
fn revoked_card_is_refused() {
    let (d, ks) = clinic();
    let mut card = blank(SERIAL);
    issue::issue(&mut card, &ks, &request("482913"), &mut no_progress).unwrap();
    let files = ClinicFiles::at(d.path());
    files.revoke(SERIAL, NOW, "lost").unwrap();
    let trust = trust_list(&ks).unwrap();
    let is_revoked = |s: u32| -> Result<bool, Error> { Ok(files.is_revoked(s)?) };
    let err = issue::authenticate_card(&mut card, &trust, &is_revoked, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::Revoked { serial: SERIAL }))), "{err:?}");
}

#[test]
fn card_of_another_clinic_is_refused_until_its_ca_is_trusted() {
    let (_d, ks_a) = clinic();
    let dir_b = tempfile::tempdir().unwrap();
    let ks_b = Keystore::init(dir_b.path(), "clinic-b", NOW).unwrap();
    let mut card = blank(SERIAL);
    issue::issue(&mut card, &ks_b, &request("482913"), &mut no_progress).unwrap();
    let trust_a = trust_list(&ks_a).unwrap();
    let err = issue::authenticate_card(&mut card, &trust_a, &never_revoked, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::UnknownIssuer { .. }))), "{err:?}");
    ClinicFiles::new(&ks_a).add_trust_file("clinic-b.der", ks_b.ca_certificate_der()).unwrap();
    let trust_a = trust_list(&ks_a).unwrap();
    let g = issue::authenticate_card(&mut card, &trust_a, &never_revoked, NOW + 10, None).unwrap();
    assert_eq!(g.credential.credential().issuer, "clinic-b");
}

#[test]
fn interrupted_issuance_leaves_no_valid_credential_and_reissue_works() {
    let (_d, ks) = clinic();
    let mut card = blank(SERIAL);
    issue::issue(&mut card, &ks, &request("482913"), &mut no_progress).unwrap();
    // Re-issue, pulled after the first new key: the old credential must already be gone.
    let mut stop =
        |step: IssueStep| -> Result<(), Error> { if step == IssueStep::KeyGenerated(Slot::PivAuth) { card_pulled() } else { Ok(()) } };
    let mut req = request("482913");
    req.current_puk = PinBlock::puk("77120934").unwrap();
    let err = issue::issue(&mut card, &ks, &req, &mut stop);
    assert!(err.is_err());
    card.transport_mut().reset().unwrap();
    let trust = trust_list(&ks).unwrap();
    let err = issue::authenticate_card(&mut card, &trust, &never_revoked, NOW + 10, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::Missing))), "{err:?}");
    card.transport_mut().reset().unwrap();
    let again = issue::issue(&mut card, &ks, &req, &mut no_progress).unwrap();
    assert!(again.reissue, "second issuance used the clinic's derived management key");
    card.transport_mut().reset().unwrap();
    issue::authenticate_card(&mut card, &trust, &never_revoked, NOW + 10, None).unwrap();
}

#[test]
fn card_pulled_mid_issuance_gives_a_transport_error_and_the_card_can_be_issued_again() {
    let (_d, ks) = clinic();
    let mut card = blank(SERIAL);
    // Issue until the certificates, then pull the card (SimTransport::remove_card).
    let mut stop = |step: IssueStep| -> Result<(), Error> {
        if step == IssueStep::CertificateWritten(Slot::PivAuth) { card_pulled() } else { Ok(()) }
    };
    assert!(issue::issue(&mut card, &ks, &request("482913"), &mut stop).is_err());
    let pulled = card.transport_mut().remove_card().unwrap();
    let err = issue::issue(&mut card, &ks, &request("482913"), &mut no_progress);
    assert!(matches!(err, Err(Error::Card(PivError::Transport(reader::TransportError::CardRemoved { .. })))), "{err:?}");
    card.transport_mut().insert_card(pulled);
    let issued = issue::issue(&mut card, &ks, &request("482913"), &mut no_progress).unwrap();
    assert!(issued.reissue);
    card.transport_mut().reset().unwrap();
    let trust = trust_list(&ks).unwrap();
    issue::authenticate_card(&mut card, &trust, &never_revoked, NOW + 10, None).unwrap();
}

#[test]
fn blank_card_has_no_credential_and_is_refused() {
    let (_d, ks) = clinic();
    let mut card = blank(SERIAL);
    let trust = trust_list(&ks).unwrap();
    let err = issue::authenticate_card(&mut card, &trust, &never_revoked, NOW, None);
    assert!(matches!(err, Err(Error::Credential(CredentialError::Missing))), "{err:?}");
}

fn card_pulled() -> Result<(), Error> {
    Err(Error::Card(PivError::Transport(reader::TransportError::CardRemoved { reader: "test".into() })))
}

// ---------------------------------------------------------------------------------------------
// Consent.

use reader::category::Category;
use reader::clinic::ClinicError;
use reader::consent::{self, ConsentError, ConsentRequest};

fn consent_req(scope: Vec<Category>, pin: &str) -> ConsentRequest {
    ConsentRequest { scope, days: 30, pin: PinBlock::pin(pin).unwrap(), now: NOW + 100 }
}

fn issued(ks: &Keystore, serial: u32, patient: &str) -> Piv<SimTransport> {
    let mut card = blank(serial);
    let mut req = request("482913");
    req.patient_id = patient.into();
    issue::issue(&mut card, ks, &req, &mut no_progress).unwrap();
    card.transport_mut().reset().unwrap();
    card
}

#[test]
fn consent_set_show_revoke_round_trip() {
    let (_d, ks) = clinic();
    let mut card = issued(&ks, SERIAL, "P-1001");
    let t = consent::set(&mut card, &ks, &consent_req(vec![Category::Summary, Category::Allergies], "482913")).unwrap();
    assert_eq!(t.version, 1);
    card.transport_mut().reset().unwrap();
    let shown = consent::show(&mut card, &ks, NOW + 200).unwrap();
    assert_eq!(shown.token.scope, vec![Category::Summary, Category::Allergies]);
    assert_eq!(shown.token.audience, "clinic-a");
    card.transport_mut().reset().unwrap();
    let revoked = consent::set(&mut card, &ks, &consent_req(Vec::new(), "482913")).unwrap();
    assert_eq!(revoked.version, 2);
    card.transport_mut().reset().unwrap();
    let shown = consent::show(&mut card, &ks, NOW + 300).unwrap();
    assert!(shown.token.scope.is_empty());
    assert_eq!(shown.token.version, 2);
}

#[test]
fn consent_set_with_a_wrong_pin_spends_a_try_and_writes_nothing() {
    let (_d, ks) = clinic();
    let mut card = issued(&ks, SERIAL, "P-1001");
    let err = consent::set(&mut card, &ks, &consent_req(vec![Category::Labs], "000000"));
    assert!(matches!(err, Err(Error::Card(PivError::Card(CardError::WrongSecret { tries_left: 2, .. })))), "{err:?}");
    assert_eq!(card.consent_token().unwrap(), None);
}

#[test]
fn consent_token_signed_by_another_card_is_refused() {
    let (_d, ks) = clinic();
    let mut a = issued(&ks, SERIAL, "P-1001");
    let mut b = issued(&ks, SERIAL + 1, "P-2002");
    consent::set(&mut b, &ks, &consent_req(vec![Category::Labs], "482913")).unwrap();
    let token_b = b.consent_token().unwrap().unwrap();
    a.authenticate_management(&ks.card_management_key(SERIAL).unwrap()).unwrap();
    a.put_data(tags::CONSENT_TOKEN, &token_b).unwrap();
    a.transport_mut().reset().unwrap();
    let err = consent::show(&mut a, &ks, NOW + 200);
    assert!(matches!(err, Err(Error::Consent(ConsentError::OtherSigner { .. }))), "{err:?}");
}

#[test]
fn older_consent_version_replayed_onto_the_card_is_refused() {
    let (_d, ks) = clinic();
    let mut card = issued(&ks, SERIAL, "P-1001");
    consent::set(&mut card, &ks, &consent_req(vec![Category::Labs, Category::Notes], "482913")).unwrap();
    let v1 = card.consent_token().unwrap().unwrap();
    card.transport_mut().reset().unwrap();
    consent::set(&mut card, &ks, &consent_req(Vec::new(), "482913")).unwrap();
    card.transport_mut().reset().unwrap();
    consent::show(&mut card, &ks, NOW + 200).unwrap();
    // Someone writes the old, broader token back (e.g. from a copy of the card).
    card.authenticate_management(&ks.card_management_key(SERIAL).unwrap()).unwrap();
    card.put_data(tags::CONSENT_TOKEN, &v1).unwrap();
    card.transport_mut().reset().unwrap();
    let err = consent::show(&mut card, &ks, NOW + 300);
    assert!(matches!(err, Err(Error::Clinic(ClinicError::ConsentReplay { got: 1, highest: 2, .. }))), "{err:?}");
}

#[test]
fn expired_consent_is_refused() {
    let (_d, ks) = clinic();
    let mut card = issued(&ks, SERIAL, "P-1001");
    consent::set(&mut card, &ks, &consent_req(vec![Category::Labs], "482913")).unwrap();
    card.transport_mut().reset().unwrap();
    let err = consent::show(&mut card, &ks, NOW + 100 + 31 * 86_400);
    assert!(matches!(err, Err(Error::Consent(ConsentError::Expired { .. }))), "{err:?}");
}

/// Pulls the card when the host sends the 9C signature (GENERAL AUTHENTICATE P1 11 P2 9C).
struct PullOnSign(SimTransport, Option<Card>);

impl Transport for PullOnSign {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, reader::TransportError> {
        if apdu.get(1..4) == Some(&[0x87, 0x11, 0x9C][..]) && self.1.is_none() {
            self.1 = self.0.remove_card();
        }
        self.0.transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), reader::TransportError> {
        self.0.reset()
    }
    fn reader_name(&self) -> &str {
        self.0.reader_name()
    }
}

#[test]
fn card_pulled_mid_consent_signature_is_a_transport_error_and_records_nothing() {
    let (d, ks) = clinic();
    let card = issued(&ks, SERIAL, "P-1001");
    let mut pulling = Piv::new(PullOnSign(card.into_inner(), None));
    let err = consent::set(&mut pulling, &ks, &consent_req(vec![Category::Labs], "482913"));
    assert!(matches!(err, Err(Error::Card(PivError::Transport(reader::TransportError::CardRemoved { .. })))), "{err:?}");
    assert_eq!(ClinicFiles::at(d.path()).highest_consent_version("P-1001").unwrap(), None);
    let PullOnSign(mut t, pulled) = pulling.into_inner();
    t.insert_card(pulled.unwrap());
    let mut card = Piv::new(t);
    assert_eq!(card.consent_token().unwrap(), None, "no token was written");
    card.transport_mut().reset().unwrap();
    assert_eq!(consent::set(&mut card, &ks, &consent_req(vec![Category::Labs], "482913")).unwrap().version, 1);
}

// ---------------------------------------------------------------------------------------------
// Malformed card answers never panic the clinic flows (CLINIC_FUZZ_CASES, default 300).

use proptest::prelude::*;

/// Flips one bit of the `nth` response (data or status word) of an otherwise real card.
struct FlipOne {
    inner: SimTransport,
    nth: usize,
    bit: usize,
    seen: usize,
}

impl Transport for FlipOne {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, reader::TransportError> {
        let mut r = self.inner.transmit(apdu)?;
        if self.seen == self.nth && !r.is_empty() {
            let len = r.len();
            r[(self.bit / 8) % len] ^= 1 << (self.bit % 8);
        }
        self.seen += 1;
        Ok(r)
    }
    fn reset(&mut self) -> Result<(), reader::TransportError> {
        self.inner.reset()
    }
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
}

fn fuzz_cases() -> u32 {
    std::env::var("CLINIC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    #[test]
    fn one_corrupted_card_answer_never_panics_and_never_changes_what_is_accepted(nth in 0usize..12, bit in 0usize..4096) {
        let (_d, ks) = clinic();
        let mut card = issued(&ks, SERIAL, "P-1001");
        consent::set(&mut card, &ks, &consent_req(vec![Category::Labs], "482913")).unwrap();
        card.transport_mut().reset().unwrap();
        let trust = trust_list(&ks).unwrap();
        let mut flipped = Piv::new(FlipOne { inner: card.into_inner(), nth, bit, seen: 0 });
        match issue::authenticate_card(&mut flipped, &trust, &never_revoked, NOW + 10, None) {
            Ok(g) => {
                // Only a flip in something not covered by a signature can pass (e.g. a SELECT
                // label); the accepted identity is the real one.
                prop_assert_eq!(&g.credential.credential().patient_id, "P-1001");
                prop_assert_eq!(g.credential.credential().card_serial, SERIAL);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let t = flipped.into_inner();
        let mut again = Piv::new(FlipOne { nth, bit, seen: 0, ..t });
        again.transport_mut().inner.reset().unwrap();
        match consent::show(&mut again, &ks, NOW + 200) {
            Ok(s) => prop_assert_eq!(s.token.scope, vec![Category::Labs]),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn arbitrary_bytes_as_credential_or_consent_claims_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = reader::credential::CardCredential::from_cbor(&bytes);
        let _ = reader::consent::ConsentToken::from_cbor(&bytes);
        let trust = qr::TrustList::new();
        prop_assert!(reader::credential::verify(&bytes, &trust, NOW).is_err());
    }
}
