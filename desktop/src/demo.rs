//! `--demo`: a fresh clinic in a new data directory, a simulated card issued to a fictional
//! patient with a consent token, and sample records, so a newcomer sees the whole kiosk →
//! bedside flow in one command. Everything goes through the same library calls as the real
//! flows (issuance, consent, record sealing, audit).

use std::path::{Path, PathBuf};

use card_applet_sim::{Card, MemoryStore, PersistentState};
use reader::category::Category;
use reader::clinic::{self, ClinicState};
use reader::consent::{self, ConsentRequest};
use reader::issue::{IssueRequest, StaffIssueRequest};
use reader::staff::Role;
use reader::store::DirStore;
use reader::{Keystore, PinBlock, Piv, SimTransport};

use crate::card_source::SimSlot;

/// The demo clinic's id.
pub const CLINIC_ID: &str = "demo-clinic";
/// The demo patient.
pub const PATIENT_ID: &str = "P-1001";
/// The demo patient's (fictional) name.
pub const PATIENT_NAME: &str = "Alex Demo";
/// The demo card's PIN (shown on screen in demo mode).
pub const PIN: &str = "123456";
/// The demo card's PUK.
pub const PUK: &str = "12345678";
/// The demo clinic's admin PIN (unlocks the admin view; shown on screen in demo mode).
pub const ADMIN_PIN: &str = "246810";
/// The PUK of a blank card (the published PIV default).
const BLANK_PUK: &str = "12345678";
/// The demo card's serial.
pub const SERIAL: u32 = 7_100_001;
/// What the demo patient consents to share.
pub const CONSENTED: [Category; 4] = [Category::Summary, Category::Allergies, Category::Medications, Category::Labs];

/// A sample record: category, media type, file name, bytes.
pub struct Sample {
    /// Category.
    pub category: Category,
    /// Media type.
    pub media_type: &'static str,
    /// What it is.
    pub title: &'static str,
    /// The document.
    pub bytes: Vec<u8>,
}

/// The sample records of the fictional patient (`desktop/samples/`): FHIR summary, allergies,
/// medications and labs, a text note and an image (the last two outside the demo consent).
#[must_use]
pub fn samples() -> Vec<Sample> {
    let fhir = "application/fhir+json";
    vec![
        Sample {
            category: Category::Summary,
            media_type: fhir,
            title: "summary",
            bytes: include_bytes!("../samples/summary.json").to_vec(),
        },
        Sample {
            category: Category::Allergies,
            media_type: fhir,
            title: "allergies",
            bytes: include_bytes!("../samples/allergies.json").to_vec(),
        },
        Sample {
            category: Category::Medications,
            media_type: fhir,
            title: "medications",
            bytes: include_bytes!("../samples/medications.json").to_vec(),
        },
        Sample { category: Category::Labs, media_type: fhir, title: "labs", bytes: include_bytes!("../samples/labs.json").to_vec() },
        Sample {
            category: Category::Notes,
            media_type: "text/plain",
            title: "clinical note",
            bytes: include_bytes!("../samples/notes.txt").to_vec(),
        },
        Sample {
            category: Category::Imaging,
            media_type: "image/png",
            title: "x-ray",
            bytes: include_bytes!("../samples/imaging.png").to_vec(),
        },
    ]
}

/// A demo clinic ready to use.
pub struct Demo {
    /// The data directory (kept until the app exits when it is a temporary one).
    pub data_dir: PathBuf,
    /// The in-process card reader with the issued card in the patient's hand.
    pub slot: SimSlot,
    _temp: Option<tempfile::TempDir>,
}

/// Something in the demo set-up failed.
#[derive(Debug, thiserror::Error)]
#[error("setting up the demo clinic failed while {step}: {msg}")]
pub struct DemoError {
    step: &'static str,
    msg: String,
}

impl From<reader::PivError> for DemoError {
    fn from(e: reader::PivError) -> Self {
        DemoError { step: "talking to the card in the reader", msg: e.to_string() }
    }
}

fn step<E: std::fmt::Display>(step: &'static str) -> impl FnOnce(E) -> DemoError {
    move |e| DemoError { step, msg: e.to_string() }
}

/// Creates the demo clinic in `dir` (must not hold a clinic) or in a new temporary directory,
/// with the demo card personalised in process (a blank simulated card).
///
/// # Errors
/// Any step's failure, named.
pub fn create(dir: Option<&Path>, now: i64) -> Result<Demo, DemoError> {
    let (data_dir, temp) = data_dir(dir)?;
    let ks = init_clinic(&data_dir, now)?;
    let mut piv = Piv::new(SimTransport::new(Card::new(PersistentState::blank(SERIAL), Box::new(MemoryStore::default()))));
    personalize(&mut piv, &ks, now)?;
    let mut transport = piv.into_inner();
    let card = transport.remove_card().ok_or(DemoError { step: "taking the card out", msg: "no card".into() })?;
    Ok(Demo { data_dir, slot: SimSlot::new(card), _temp: temp })
}

/// [`create`] with the blank card in a PC/SC reader (e.g. `card-sim serve` through pcscd +
/// vpcd, or a real blank PIV card): the demo card is issued there. Returns the data directory
/// (and the temporary directory that holds it, to keep).
///
/// # Errors
/// Any step's failure, named (no reader, no blank card, ...).
pub fn create_on_reader(dir: Option<&Path>, reader: &str, now: i64) -> Result<(PathBuf, Option<tempfile::TempDir>), DemoError> {
    let (data_dir, temp) = data_dir(dir)?;
    let ks = init_clinic(&data_dir, now)?;
    let source = crate::card_source::CardSource::Pcsc { reader: reader.to_owned() };
    source.with_card(|piv| personalize(piv, &ks, now)).map_err(step("personalising the card in the reader (is a blank card inserted?)"))?;
    Ok((data_dir, temp))
}

fn data_dir(dir: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>), DemoError> {
    match dir {
        Some(d) => Ok((d.to_owned(), None)),
        None => {
            let t = tempfile::Builder::new().prefix("medcard-demo-").tempdir().map_err(step("creating a temporary data directory"))?;
            Ok((t.path().to_owned(), Some(t)))
        }
    }
}

/// A new demo clinic in `data_dir` with the sample records.
///
/// # Errors
/// Any step's failure, named.
pub fn init_clinic(data_dir: &Path, now: i64) -> Result<Keystore, DemoError> {
    let ks = Keystore::init(data_dir, CLINIC_ID, now).map_err(step("creating the clinic keys"))?;
    crate::admin_pin::set(data_dir, ADMIN_PIN).map_err(step("setting the admin PIN"))?;
    let store = DirStore::open(&data_dir.join("records")).map_err(step("opening the record store"))?;
    for s in samples() {
        add_sample(&ks, &store, &s, now)?;
    }
    Ok(ks)
}

/// Issues the demo card on a blank card (default PUK) and writes the demo consent on it.
///
/// # Errors
/// Any step's failure, named.
pub fn personalize<T: reader::Transport>(piv: &mut Piv<T>, ks: &Keystore, now: i64) -> Result<(), DemoError> {
    let state = ClinicState::open(ks).map_err(step("opening the clinic database"))?.with_actor("demo-setup");
    let pin = PinBlock::pin(PIN).map_err(step("making the PIN"))?;
    let req = IssueRequest {
        patient_id: PATIENT_ID.into(),
        name: PATIENT_NAME.into(),
        pin: pin.clone(),
        puk: PinBlock::puk(PUK).map_err(step("making the PUK"))?,
        current_puk: PinBlock::puk(BLANK_PUK).map_err(step("making the PUK"))?,
        validity_days: 365,
        now,
    };
    clinic::issue_card(piv, ks, &state, &req, &mut |_| Ok(())).map_err(step("issuing the demo card"))?;
    let consent = ConsentRequest { scope: CONSENTED.to_vec(), days: 365, pin, now };
    consent::set_in(piv, ks, &state, &consent, &mut |_| Ok(())).map_err(step("writing the consent token"))?;
    Ok(())
}

fn add_sample(ks: &Keystore, store: &DirStore, s: &Sample, now: i64) -> Result<(), DemoError> {
    let db = reader::db::ClinicDb::open_clinic(ks).map_err(step("opening the clinic database"))?;
    let new = reader::records::NewRecord {
        patient_id: PATIENT_ID.into(),
        category: s.category,
        media_type: s.media_type.into(),
        author: "demo-setup".into(),
    };
    reader::records::add_record(ks, &db, store, &new, &s.bytes, now, "demo-setup").map_err(step("adding a sample record"))?;
    Ok(())
}

/// The demo's staff: id, name, role, PIN of each staff card ([`create_staff`]).
pub const STAFF: [(&str, &str, Role, &str); 3] = [
    ("A-1", "Sam Admin", Role::Admin, "314159"),
    ("S-1", "Dr N. Lee", Role::Clinician, "135790"),
    ("R-1", "Robin Desk", Role::Reception, "192837"),
];
/// The staff cards' PUK.
pub const STAFF_PUK: &str = "55443322";
/// The first staff card's serial (then +1, +2 in the order of [`STAFF`]).
pub const STAFF_SERIAL_BASE: u32 = 7_200_001;

/// The demo's staff cards in an in-process staff card reader: one card in the hand at a time
/// ([`StaffCards::hold`] swaps them), the others in a drawer.
#[derive(Clone)]
pub struct StaffCards {
    /// The staff card reader.
    pub slot: SimSlot,
    drawer: std::sync::Arc<std::sync::Mutex<Drawer>>,
}

/// The role of the card in the hand (or reader), and the other cards.
type Drawer = (Role, Vec<(Role, Card)>);

impl StaffCards {
    /// Puts the card of `role` into the hand (out of the reader), the one held before into the drawer.
    pub fn hold(&self, role: Role) {
        let mut g = self.drawer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (current, drawer) = &mut *g;
        if *current == role {
            self.slot.remove();
            return;
        }
        let Some(i) = drawer.iter().position(|(r, _)| *r == role) else { return };
        let (_, card) = drawer.swap_remove(i);
        if let Some(old) = self.slot.swap_card(card) {
            drawer.push((*current, old));
        }
        *current = role;
    }

    /// The PIN of the staff card of `role`.
    #[must_use]
    pub fn pin(role: Role) -> &'static str {
        STAFF.iter().find(|s| s.2 == role).map_or("", |s| s.3)
    }
}

/// Issues the demo's staff cards ([`STAFF`]) for the clinic in `data_dir` on blank simulated
/// cards, through the library's audited staff issuance: from then on the clinic requires staff
/// sign-ins (bedside, admin). The clinician's card is held first.
///
/// # Errors
/// Any step's failure, named.
pub fn create_staff(data_dir: &Path, now: i64) -> Result<StaffCards, DemoError> {
    let ks = Keystore::open(data_dir).map_err(step("opening the clinic keys"))?;
    let state = ClinicState::open(&ks).map_err(step("opening the clinic database"))?.with_actor("demo-setup");
    let mut cards = Vec::new();
    for (serial, (id, name, role, pin)) in (STAFF_SERIAL_BASE..).zip(STAFF) {
        let mut piv = Piv::new(SimTransport::new(Card::new(PersistentState::blank(serial), Box::new(MemoryStore::default()))));
        let req = StaffIssueRequest {
            staff_id: id.into(),
            name: name.into(),
            role,
            pin: PinBlock::pin(pin).map_err(step("making a staff PIN"))?,
            puk: PinBlock::puk(STAFF_PUK).map_err(step("making the staff PUK"))?,
            current_puk: PinBlock::puk(BLANK_PUK).map_err(step("making the PUK"))?,
            validity_days: 365,
            now,
        };
        reader::staff_card::issue_staff_card(&mut piv, &ks, &state, &req, &mut |_| Ok(())).map_err(step("issuing a staff card"))?;
        let card = piv.into_inner().remove_card().ok_or(DemoError { step: "taking the staff card out", msg: "no card".into() })?;
        cards.push((role, card));
    }
    let i = cards.iter().position(|(r, _)| *r == Role::Clinician).unwrap_or(0);
    let (first_role, first) = cards.swap_remove(i);
    Ok(StaffCards { slot: SimSlot::new(first), drawer: std::sync::Arc::new(std::sync::Mutex::new((first_role, cards))) })
}
