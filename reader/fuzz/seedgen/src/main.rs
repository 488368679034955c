//! Writes the fuzz seed corpora and fixtures from real MedCard flows: a clinic is created, a
//! simulated card is issued and given a consent token, the patient checks in at the kiosk and
//! gets a signed QR code; every APDU and card reply is recorded on the way. Run from the
//! repository root: `cargo run --manifest-path reader/fuzz/seedgen/Cargo.toml`.
//! Seeds from the public corpora (`../shared/corpora`) are added by `scripts/fuzz-seeds.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fuzz_targets/common.rs"]
mod common;
#[path = "../../fuzz_targets/piv_script.rs"]
mod piv_script;

use std::path::{Path, PathBuf};

use card_applet_sim::{Card, MemoryStore, PersistentState};
use common::{CLINIC_ID, NOW, PATIENT_ID, PIN, RECORD_KEY, frame};
use p256::pkcs8::EncodePublicKey;
use reader::category::Category;
use reader::clinic::{self, ClinicState};
use reader::consent::{self, ConsentRequest};
use reader::issue::IssueRequest;
use reader::records::{self, RecordMeta};
use reader::store::DirStore;
use reader::transport::{SimTransport, Transport, TransportError};
use reader::{Keystore, PinBlock, Piv};

/// A transport that records every command and reply.
struct Recording<T: Transport> {
    inner: T,
    log: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<T: Transport> Transport for Recording<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let r = self.inner.transmit(apdu)?;
        self.log.push((apdu.to_vec(), r.clone()));
        Ok(r)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()
    }
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
}

struct Out {
    root: PathBuf,
}

impl Out {
    fn put(&self, rel: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A vpcd stream of a recorded session for the card target: power on, then each APDU; the 9B
/// management-key handshake (random witness) becomes the harness's 0xA5 control frame.
fn vpcd_stream(log: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut s = Vec::new();
    frame(&mut s, &[1]);
    let mut skip_next = false;
    for (apdu, _) in log {
        if skip_next {
            skip_next = false;
            continue;
        }
        if apdu.get(1) == Some(&0x87) && apdu.get(3) == Some(&0x9B) {
            frame(&mut s, &[0xA5]);
            skip_next = true;
            continue;
        }
        frame(&mut s, apdu);
    }
    s
}

fn replies(log: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut s = Vec::new();
    for (_, r) in log {
        frame(&mut s, r);
    }
    s
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn main() {
    let root = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    assert!(root.join("reader/fuzz").is_dir(), "run from the repository root (or pass it)");
    let reader_out = Out { root: root.join("reader/fuzz") };
    let card_out = Out { root: root.join("card-applet-sim/fuzz") };
    let qr_out = Out { root: root.join("qr/fuzz") };

    // --- a clinic with records, a card issued, consent, a kiosk check-in ---
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let ks = Keystore::init(data, CLINIC_ID, NOW).unwrap();
    let store = DirStore::open(&data.join("records")).unwrap();
    let samples: [(Category, &str, &[u8]); 3] = [
        (Category::Summary, "application/fhir+json", br#"{"resourceType":"Patient","id":"P-1001","name":[{"text":"Alex Demo"}]}"#),
        (Category::Allergies, "application/fhir+json", br#"{"resourceType":"AllergyIntolerance","code":{"text":"penicillin"}}"#),
        (Category::Notes, "text/plain", b"Seen for a check-up. No findings.\n"),
    ];
    for (category, media_type, bytes) in samples {
        let db = reader::db::ClinicDb::open_clinic(&ks).unwrap();
        let new = records::NewRecord { patient_id: PATIENT_ID.into(), category, media_type: media_type.into(), author: "seedgen".into() };
        records::add_record(&ks, &db, &store, &new, bytes, NOW, "seedgen").unwrap();
    }
    let state = ClinicState::open(&ks).unwrap().with_actor("seedgen");
    let card = Card::new(PersistentState::blank(7_100_001), Box::new(MemoryStore::default()));
    let mut piv = Piv::new(Recording { inner: SimTransport::new(card), log: Vec::new() });
    let pin = PinBlock::pin(PIN).unwrap();
    let req = IssueRequest {
        patient_id: PATIENT_ID.into(),
        name: "Alex Demo".into(),
        pin: pin.clone(),
        puk: PinBlock::puk("12345678").unwrap(),
        current_puk: PinBlock::puk("12345678").unwrap(),
        validity_days: 365,
        now: NOW - 86_400,
    };
    clinic::issue_card(&mut piv, &ks, &state, &req, &mut |_| Ok(())).unwrap();
    let issue_log = std::mem::take(&mut piv.transport_mut().log);
    let consent_req = ConsentRequest { scope: vec![Category::Summary, Category::Allergies], days: 365, pin: pin.clone(), now: NOW - 3600 };
    consent::set_in(&mut piv, &ks, &state, &consent_req, &mut |_| Ok(())).unwrap();
    let consent_log = std::mem::take(&mut piv.transport_mut().log);
    let outcome = reader::checkin::card_step(&mut piv, &ks, &state, &pin, NOW).unwrap();
    let checkin_log = std::mem::take(&mut piv.transport_mut().log);
    let issued = reader::checkin::issue_qr(&ks, &state, &store, &outcome, None, 600, NOW).unwrap();
    let one = reader::checkin::issue_qr(&ks, &state, &store, &outcome, Some(&[Category::Allergies]), 3600, NOW).unwrap();
    let _ = piv.info().unwrap();
    let info_log = std::mem::take(&mut piv.transport_mut().log);
    let mut sim = piv.into_inner().inner;
    let issued_card = sim.remove_card().unwrap();
    let issued_state = issued_card.state().clone();

    // --- fixtures the targets include ---
    let ca = ks.ca_certificate_der().to_vec();
    reader_out.put("fixtures", "clinic-ca.der", &ca);
    let cred = issued_state.objects.get(&0x5F_FFC0).map(|b| b.0.clone()).unwrap();
    let token = issued_state.objects.get(&0x5F_FFC1).map(|b| b.0.clone()).unwrap();
    // The object content is the 53 container's value: the credential is its single TLV.
    let cred = reader::tlv::TlvReader::new(&cred).read().map(|t| t.value.to_vec()).unwrap_or(cred);
    let token = reader::tlv::TlvReader::new(&token).read().map(|t| t.value.to_vec()).unwrap_or(token);
    reader_out.put("fixtures", "credential.cose", &cred);
    let issuer_key = qr::trust::cose_key_bytes(&ks.issuer_public());
    qr_out.put("fixtures", "issuer.cose_key", &issuer_key);
    card_out.put("fixtures", "issued-card.state", &card_applet_sim::persist::encode(&issued_state).unwrap());

    // --- card target: recorded sessions as vpcd streams ---
    for (name, log) in [("issue", &issue_log), ("consent", &consent_log), ("checkin", &checkin_log), ("info", &info_log)] {
        card_out.put("corpus/apdu_session", &format!("real-{name}"), &vpcd_stream(log));
    }

    // --- piv_responses: the target's own script against the issued card and a blank card ---
    let trust = {
        let mut t = qr::TrustList::new();
        t.add_file(&ca, CLINIC_ID).unwrap();
        t
    };
    for (name, st) in [("issued", issued_state.clone()), ("blank", PersistentState::blank(42))] {
        let card = Card::new(st, Box::new(MemoryStore::default()));
        let mut p = Piv::new(Recording { inner: SimTransport::new(card), log: Vec::new() });
        piv_script::run(&mut p, &trust, NOW);
        let log = p.into_inner().log;
        reader_out.put("corpus/piv_responses", &format!("script-{name}"), &replies(&log));
        card_out.put("corpus/apdu_session", &format!("script-{name}"), &vpcd_stream(&log));
    }
    for (name, log) in [("issue", &issue_log), ("consent", &consent_log), ("checkin", &checkin_log), ("info", &info_log)] {
        reader_out.put("corpus/piv_responses", &format!("real-{name}"), &replies(log));
    }

    // --- tlv and ecdsa_sig: every reply's data and every command's data ---
    let mut n = 0;
    let mut sigs = 0;
    for (apdu, resp) in issue_log.iter().chain(&consent_log).chain(&checkin_log).chain(&info_log) {
        let data = resp.get(..resp.len().saturating_sub(2)).unwrap_or_default();
        let mut seed = resp.get(resp.len().saturating_sub(2)..).unwrap_or_default().to_vec();
        seed.extend_from_slice(data);
        if data.len() > 2 {
            n += 1;
            reader_out.put("corpus/tlv", &format!("reply-{n:03}"), &seed);
        }
        if let Some(body) = apdu.get(5..).filter(|b| b.len() > 2) {
            n += 1;
            reader_out.put("corpus/tlv", &format!("command-{n:03}"), body);
        }
        // 7C { 82 DER } from GENERAL AUTHENTICATE sign.
        if let Ok(inner) = reader::tlv::single(data, 0x7C) {
            if let Ok(der) = reader::tlv::single(inner, 0x82) {
                if let Ok(raw) = reader::sig::der_to_raw(der) {
                    sigs += 1;
                    reader_out.put("corpus/ecdsa_sig", &format!("der-{sigs:02}"), der);
                    reader_out.put("corpus/ecdsa_sig", &format!("raw-{sigs:02}"), &raw);
                }
            }
        }
    }

    // --- credential_consent ---
    let payload = |cose: &[u8]| qr::cose::parse(cose).unwrap().0.payload.unwrap_or_default();
    for (i, bytes) in [cred.clone(), token.clone(), payload(&cred), payload(&token)].iter().enumerate() {
        let mut seed = vec![i as u8];
        seed.extend_from_slice(bytes);
        reader_out.put("corpus/credential_consent", &format!("real-{i}"), &seed);
    }

    // --- records: sealed with the fixed key by the real seal ---
    let key = qr::ContentKey::new(RECORD_KEY);
    let mut entries = Vec::new();
    for (i, (category, media_type, doc)) in samples.iter().enumerate() {
        let meta = RecordMeta {
            record_id: records::new_record_id().unwrap(),
            patient_id: PATIENT_ID.into(),
            category: *category,
            media_type: (*media_type).into(),
            created: NOW,
            author: "seedgen".into(),
        };
        let sealed = records::seal(&meta, doc, &key).unwrap();
        assert!(records::open(sealed.clone(), PATIENT_ID, &key, "seed").is_ok());
        reader_out.put("corpus/record_open", &format!("record-{i}"), &sealed);
        let loc = reader::store::Locator::of(&sealed);
        entries.push(reader::checkin::IndexEntry {
            record_id: meta.record_id.clone(),
            locator: loc.to_string(),
            sha256: *loc.digest(),
            key: key.clone(),
            category: *category,
            media_type: (*media_type).into(),
        });
    }
    let wrap = zeroize::Zeroizing::new(RECORD_KEY);
    reader_out.put("corpus/record_open", "wrapped-key", &records::keywrap::wrap(&wrap, "rec-1", &key).unwrap());
    for k in 1..=entries.len() {
        let index = reader::checkin::encode_index(&entries[..k]);
        reader_out.put("corpus/record_index", &format!("index-{k}"), &index);
        if k == entries.len() {
            let meta = RecordMeta {
                record_id: records::new_record_id().unwrap(),
                patient_id: PATIENT_ID.into(),
                category: Category::Summary,
                media_type: "application/medcard-index+cbor".into(),
                created: NOW,
                author: "kiosk:fuzz-clinic".into(),
            };
            reader_out.put("corpus/record_open", "index", &records::seal(&meta, &index, &key).unwrap());
        }
    }

    // --- audit_verify: each operation once, and a few byte corruptions ---
    let audit_seeds: [&[u8]; 12] = [
        &[0, 3],
        &[0, 3, 0, 4],
        &[0, 3, 1, 5, 2, 3, 5, b'x'],
        &[0, 3, 1, 6, 7, 1, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 3, 2, 13, 1, 1, 1, 3, 1, b'a', 3, 1, b'b', 3, 1, b'c', 3, 1, b'd', 3, 1, b'e', 4, 32],
        &[0, 3, 3, 4, 13],
        &[0, 3, 4, 8, 1, 1, 7],
        &[0, 3, 5, 8],
        &[0, 3, 6, 13, 4, 32, 1, 3, 4, 0],
        &[0, 3, 7, 5, 3, 0, 0x20],
        &[0, 3, 8, 8, 2, 40, 0x01],
        &[1, 200, 0, 0, 100, 1, 0, 0x40, 0, 2],
    ];
    for (i, s) in audit_seeds.iter().enumerate() {
        reader_out.put("corpus/audit_verify", &format!("ops-{i:02}"), s);
    }
    reader_out.put("corpus/audit_verify", "truncate", &[1, 8]);
    reader_out.put("corpus/audit_verify", "replay-checkpoint", &[0, 3, 9, 8, 12]);

    // --- qr: real MedCard QR texts; trust files; a rendered QR image ---
    qr_out.put("corpus/qr_verify", "medcard-index", issued.text.as_bytes());
    qr_out.put("corpus/qr_verify", "medcard-one", one.text.as_bytes());
    qr_out.put("corpus/trust_file", "clinic-ca.der", &ca);
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64(&ca).as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n")
    );
    qr_out.put("corpus/trust_file", "clinic-ca.pem", pem.as_bytes());
    qr_out.put("corpus/trust_file", "issuer.cose_key", &issuer_key);
    let spki = ks.issuer_public().to_public_key_der().unwrap();
    qr_out.put("corpus/trust_file", "issuer.spki.der", spki.as_bytes());
    let spki_pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64(spki.as_bytes()));
    qr_out.put("corpus/trust_file", "issuer.spki.pem", spki_pem.as_bytes());
    qr_out.put("corpus/scan_image", "medcard-one.png", &qr::render::render_png(&one.text, 2).unwrap());
    println!("seeds written under {}", root.display());
    let _ = Path::new("");
}
