//! Admin → Cards: issue a card on the selected reader (`reader::clinic::issue_card`, one progress
//! line per [`IssueStep`]), list the issued cards with their revocations, revoke one with a
//! reason after a confirmation (`ClinicState::revoke`). In demo mode a button swaps a blank
//! simulated card into the in-process reader.

use std::sync::{Arc, Mutex};

use card_applet_sim::{Card, MemoryStore, PersistentState};
use egui::{RichText, Ui};
use reader::clinic::{self, IssuedCard, Revocation};
use reader::issue::{IssueRequest, IssueStep};
use reader::sw::Secret;
use reader::{CardError, PinBlock, PivError, TransportError};
use zeroize::Zeroizing;

use super::listing::Listing;
use super::{Note, field, note_ui, secret_buffer, spawn, working};
use crate::card_source::CardSource;
use crate::context::AppContext;
use crate::jobs::{Job, finished};
use crate::style;

/// The PUK of a blank card (the published PIV default), prefilled as the current PUK.
pub const BLANK_PUK: &str = "12345678";
/// Serial of the first blank demo card; each new one takes the next.
pub const BLANK_SERIAL_BASE: u32 = 7_200_001;

/// A card as listed: the issuance and its revocation, if any.
pub type CardRow = (IssuedCard, Option<Revocation>);

/// The Cards sub-tab.
pub struct CardsTab {
    patient_id: String,
    name: String,
    pin: Zeroizing<String>,
    pin_again: Zeroizing<String>,
    puk: Zeroizing<String>,
    current_puk: Zeroizing<String>,
    validity_days: String,
    issuing: Option<Job<Result<String, String>>>,
    progress: Arc<Mutex<Vec<String>>>,
    note: Note,
    /// PC/SC readers found (the selected one issues).
    readers: Vec<String>,
    reader: String,
    listing_readers: Option<Job<Result<Vec<String>, String>>>,
    blanks: u32,
    /// Cards taken out of the demo reader for blank ones (the last one can be put back).
    set_aside: Vec<Card>,
    cards: Listing<Vec<CardRow>>,
    revoke: Option<(u32, String)>,
    revoking: Option<Job<Result<String, String>>>,
    list_note: Note,
}

impl CardsTab {
    /// The tab on `env` (the reader preselected from the app's card source).
    #[must_use]
    pub fn new(env: &AppContext) -> Self {
        let reader = match &env.source {
            CardSource::Pcsc { reader } => reader.clone(),
            CardSource::Sim(_) => String::new(),
        };
        CardsTab {
            patient_id: String::new(),
            name: String::new(),
            pin: secret_buffer(),
            pin_again: secret_buffer(),
            puk: secret_buffer(),
            current_puk: {
                let mut p = secret_buffer();
                p.push_str(BLANK_PUK);
                p
            },
            validity_days: "365".into(),
            issuing: None,
            progress: Arc::default(),
            note: None,
            readers: Vec::new(),
            reader,
            listing_readers: None,
            blanks: 0,
            set_aside: Vec::new(),
            cards: Listing::new("Loading the issued cards", load_cards),
            revoke: None,
            revoking: None,
            list_note: None,
        }
    }

    /// Forgets the PINs and PUKs typed (the current PUK goes back to the blank-card default).
    pub fn clear_secrets(&mut self) {
        self.pin = secret_buffer();
        self.pin_again = secret_buffer();
        self.puk = secret_buffer();
        self.current_puk = secret_buffer();
        self.current_puk.push_str(BLANK_PUK);
    }

    /// How many secret characters are typed in the form (new PINs and PUK; never the text).
    #[must_use]
    pub fn typed_secrets(&self) -> usize {
        self.pin.len() + self.pin_again.len() + self.puk.len()
    }

    /// Whether work is running (issuance, revocation, loading).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.issuing.is_some() || self.revoking.is_some() || self.cards.loading() || self.listing_readers.is_some()
    }

    /// The issued cards as last loaded.
    #[must_use]
    pub fn listed(&self) -> Option<&[CardRow]> {
        self.cards.ok().map(Vec::as_slice)
    }

    /// Forgets what was loaded and shown (locking): read again when shown.
    pub fn forget(&mut self) {
        self.cards.forget();
        self.revoke = None;
        self.note = None;
        self.list_note = None;
        self.progress = Arc::default();
    }

    /// Collects finished work (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        match finished(&mut self.issuing) {
            Some(Ok(r)) => {
                self.note = Some(r);
                self.cards.reload();
            }
            Some(Err(lost)) => self.note = Some(Err(lost)),
            None => {}
        }
        self.cards.poll();
        match finished(&mut self.revoking) {
            Some(Ok(r)) => {
                self.list_note = Some(r);
                self.cards.reload();
            }
            Some(Err(lost)) => self.list_note = Some(Err(lost)),
            None => {}
        }
        match finished(&mut self.listing_readers).map(|r| r.and_then(|readers| readers)) {
            Some(Ok(r)) => {
                if !r.contains(&self.reader) {
                    self.reader = r.first().cloned().unwrap_or_default();
                }
                self.readers = r;
            }
            Some(Err(m)) => self.note = Some(Err(m)),
            None => {}
        }
    }

    /// Draws the tab (the one shown); its finished work is collected by `poll`, every frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        self.cards.load_if_needed(ui.ctx(), env);
        ui.heading("Issue a card");
        self.reader_ui(ui, env);
        let editable = self.issuing.is_none();
        ui.add_enabled_ui(editable, |ui| {
            field(ui, "Patient id", &mut self.patient_id, false, 220.0);
            field(ui, "Patient name", &mut self.name, false, 320.0);
            field(ui, "New PIN", &mut self.pin, true, 160.0);
            field(ui, "New PIN again", &mut self.pin_again, true, 160.0);
            field(ui, "New PUK", &mut self.puk, true, 160.0);
            field(ui, "Current PUK", &mut self.current_puk, true, 160.0).on_hover_text("The card's PUK now: 12345678 on a blank card");
            field(ui, "Valid for (days)", &mut self.validity_days, false, 80.0);
        });
        if let Some(j) = &self.issuing {
            working(ui, j.what());
        } else if ui.button("Issue card").clicked() {
            self.start_issue(ui, env);
        }
        let lines = self.progress.lock().map(|p| p.clone()).unwrap_or_default();
        for l in lines {
            ui.label(RichText::new(format!("Done: {l}")).color(style::MUTED));
        }
        note_ui(ui, &self.note);
        ui.add_space(12.0);
        ui.separator();
        self.list_ui(ui, env);
    }

    fn reader_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        match &env.source {
            CardSource::Sim(slot) => {
                ui.horizontal(|ui| {
                    ui.label(format!("Reader: {} ({})", env.source.name(), if slot.inserted() { "card inserted" } else { "empty" }));
                    if ui.add_enabled(self.issuing.is_none(), egui::Button::new("New blank demo card")).clicked() {
                        let serial = BLANK_SERIAL_BASE.saturating_add(self.blanks);
                        self.blanks = self.blanks.saturating_add(1);
                        if let Some(old) = slot.swap_card(Card::new(PersistentState::blank(serial), Box::new(MemoryStore::default()))) {
                            self.set_aside.push(old);
                        }
                        slot.insert();
                        self.progress = Arc::default();
                        self.note = Some(Ok(format!("A blank demo card (serial {serial}) is in the reader.")));
                    }
                    if !self.set_aside.is_empty()
                        && ui
                            .add_enabled(self.issuing.is_none(), egui::Button::new("Put back the previous card"))
                            .on_hover_text("The card that was in the reader before the last blank one (for the kiosk)")
                            .clicked()
                        && let Some(card) = self.set_aside.pop()
                    {
                        if let Some(now_in) = slot.swap_card(card) {
                            // Keep the card just taken out, so nothing is lost by going back and forth.
                            self.set_aside.insert(0, now_in);
                        }
                        self.progress = Arc::default();
                        self.note = Some(Ok("The previous card is back, in the patient's hand: insert it at the kiosk.".into()));
                    }
                });
            }
            CardSource::Pcsc { .. } => {
                ui.horizontal(|ui| {
                    ui.label("Reader:");
                    let shown = if self.reader.is_empty() { "(none found)".to_owned() } else { self.reader.clone() };
                    egui::ComboBox::from_id_salt("admin-reader").selected_text(shown).width(320.0).show_ui(ui, |ui| {
                        for r in &self.readers {
                            ui.selectable_value(&mut self.reader, r.clone(), r);
                        }
                    });
                    if self.listing_readers.is_some() {
                        ui.spinner();
                    } else if ui.button("Find readers").clicked() {
                        self.listing_readers = Some(spawn(ui.ctx(), "Looking for card readers", list_readers));
                    }
                });
            }
        }
    }

    fn start_issue(&mut self, ui: &Ui, env: &AppContext) {
        let form = match self.form() {
            Ok(f) => f,
            Err(m) => {
                self.note = Some(Err(m));
                return;
            }
        };
        self.clear_secrets();
        self.note = None;
        let source = match &env.source {
            CardSource::Sim(s) => CardSource::Sim(s.clone()),
            CardSource::Pcsc { .. } if self.reader.is_empty() => {
                self.note = Some(Err("No card reader is selected: plug one in and press Find readers.".into()));
                return;
            }
            CardSource::Pcsc { .. } => CardSource::Pcsc { reader: self.reader.clone() },
        };
        let progress: Arc<Mutex<Vec<String>>> = Arc::default();
        self.progress = progress.clone();
        let env = env.clone();
        let ctx = ui.ctx().clone();
        self.issuing = Some(spawn(ui.ctx(), "Issuing the card", move || issue(&env, &source, form, &progress, &ctx)));
    }

    /// The form, checked: PINs as card blocks (the typed text is cleared by the caller).
    fn form(&self) -> Result<Form, String> {
        let patient_id = self.patient_id.trim().to_owned();
        if patient_id.is_empty() {
            return Err("Enter the patient id.".into());
        }
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            return Err("Enter the patient's name.".into());
        }
        if *self.pin != *self.pin_again {
            return Err("The two new PINs differ: type them again.".into());
        }
        let pin = PinBlock::pin(&self.pin).map_err(|_| "The new PIN must have 6 to 8 digits.".to_owned())?;
        let puk = PinBlock::puk(&self.puk).map_err(|_| "The new PUK must have 8 digits.".to_owned())?;
        let current_puk =
            PinBlock::puk(&self.current_puk).map_err(|_| "The current PUK must have 8 digits (12345678 on a blank card).".to_owned())?;
        let validity_days = match self.validity_days.trim().parse::<u32>() {
            Ok(d) if (1..=7300).contains(&d) => d,
            _ => return Err("The validity is a number of days from 1 to 7300.".into()),
        };
        Ok(Form { patient_id, name, pin, puk, current_puk, validity_days })
    }

    fn list_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        ui.horizontal(|ui| {
            ui.heading("Issued cards");
            self.cards.refresh_ui(ui);
        });
        if let Some((serial, reason)) = &mut self.revoke {
            let serial = *serial;
            let mut confirm = false;
            let mut cancel = false;
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(
                    RichText::new(format!("Revoke card {serial}? It will be refused everywhere from now on; this cannot be undone."))
                        .color(style::BAD),
                );
                field(ui, "Reason", reason, false, 320.0);
                ui.horizontal(|ui| {
                    confirm = ui.add_enabled(!reason.trim().is_empty(), egui::Button::new("Confirm revoke")).clicked();
                    cancel = ui.button("Cancel").clicked();
                });
            });
            if cancel {
                self.revoke = None;
            } else if confirm {
                let reason = reason.trim().to_owned();
                self.revoke = None;
                let env = env.clone();
                self.revoking = Some(spawn(ui.ctx(), "Revoking the card", move || revoke(&env, serial, &reason)));
            }
        }
        if let Some(j) = &self.revoking {
            working(ui, j.what());
        }
        note_ui(ui, &self.list_note);
        match self.cards.get() {
            None => {}
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD));
            }
            Some(Ok(rows)) if rows.is_empty() => {
                ui.label(RichText::new("No cards issued yet.").color(style::MUTED));
            }
            Some(Ok(rows)) => {
                let mut ask = None;
                egui::Grid::new("admin-cards").striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
                    for h in ["Serial", "Patient", "Name", "Issued", "Expires", "Status", ""] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for (c, rev) in rows {
                        ui.label(c.serial.to_string());
                        ui.label(&c.patient_id);
                        ui.label(&c.name);
                        ui.label(style::date(c.issued_at));
                        ui.label(style::date(c.expires_at));
                        match rev {
                            Some(r) => {
                                ui.label(RichText::new(format!("Revoked {} ({})", style::date(r.revoked_at), r.reason)).color(style::BAD));
                                ui.label("");
                            }
                            None => {
                                ui.label(RichText::new("Active").color(style::GOOD));
                                if ui.add_enabled(self.revoking.is_none(), egui::Button::new(format!("Revoke {}", c.serial))).clicked() {
                                    ask = Some(c.serial);
                                }
                            }
                        }
                        ui.end_row();
                    }
                });
                if let Some(s) = ask {
                    self.list_note = None;
                    self.revoke = Some((s, String::new()));
                }
            }
        }
    }
}

/// A checked issuance form.
struct Form {
    patient_id: String,
    name: String,
    pin: PinBlock,
    puk: PinBlock,
    current_puk: PinBlock,
    validity_days: u32,
}

/// An issuance step in plain words.
#[must_use]
pub fn step_text(s: IssueStep) -> String {
    match s {
        IssueStep::Authenticated { derived: true } => "Opened the card with this clinic's card key (re-issue)".into(),
        IssueStep::Authenticated { derived: false } => "Opened the blank card with its factory key".into(),
        IssueStep::ObjectsCleared => "Removed any old credential and consent".into(),
        IssueStep::ManagementKeySet => "Set this clinic's card key".into(),
        IssueStep::KeyGenerated(slot) => format!("Generated the key in slot {slot}"),
        IssueStep::CertificateWritten(slot) => format!("Wrote the certificate for slot {slot}"),
        IssueStep::PinAndPukSet => "Set the new PIN and PUK".into(),
        IssueStep::CredentialWritten => "Wrote the clinic credential".into(),
        #[allow(unreachable_patterns)]
        other => other.name(),
    }
}

/// A card error in words that say what to do (never a PIN).
#[must_use]
pub fn describe(e: &reader::Error) -> String {
    use reader::Error as E;
    match e {
        E::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Puk, tries_left })) => {
            format!("The current PUK is wrong ({tries_left} tries left). Nothing was issued; check the PUK of this card.")
        }
        E::Card(PivError::Card(CardError::PukBlocked)) => "The card's PUK is blocked: this card cannot be issued again.".into(),
        E::Card(PivError::Transport(TransportError::NoCard { .. })) => {
            "There is no card in the reader: insert a blank card and try again.".into()
        }
        E::Card(PivError::Transport(TransportError::CardRemoved { .. } | TransportError::CardReset { .. })) => {
            "The card was taken out during issuance: insert it and issue it again.".into()
        }
        E::Card(PivError::Transport(TransportError::NoService(_))) => {
            "The smart-card service is not running: ask IT to start pcscd.".into()
        }
        E::Card(PivError::Transport(TransportError::NoSuchReader { reader, .. } | TransportError::ReaderUnavailable { reader })) => {
            format!("The card reader {reader:?} is not connected: plug it in and press Find readers.")
        }
        other => format!("The card could not be issued: {other}."),
    }
}

fn issue(
    env: &AppContext,
    source: &CardSource,
    form: Form,
    progress: &Arc<Mutex<Vec<String>>>,
    ctx: &egui::Context,
) -> Result<String, String> {
    let opened = env.open().map_err(|e| e.to_string())?;
    let req = IssueRequest {
        patient_id: form.patient_id,
        name: form.name,
        pin: form.pin,
        puk: form.puk,
        current_puk: form.current_puk,
        validity_days: form.validity_days,
        now: env.now(),
    };
    let issued = source
        .with_card(|piv| {
            clinic::issue_card(piv, &opened.ks, &opened.state, &req, &mut |s| {
                if let Ok(mut p) = progress.lock() {
                    p.push(step_text(s));
                }
                ctx.request_repaint();
                Ok(())
            })
        })
        .map_err(|e| describe(&e))?;
    let c = &issued.credential;
    Ok(format!("Card {} issued to {} ({}), valid until {}.", c.card_serial, req.name, c.patient_id, style::date(c.expires_at)))
}

fn load_cards(env: &AppContext) -> Result<Vec<CardRow>, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let cards = o.state.cards().map_err(|e| format!("Could not read the issued cards: {e}"))?;
    let revs = o.state.revocations().map_err(|e| format!("Could not read the revocations: {e}"))?;
    Ok(cards
        .into_iter()
        .map(|c| {
            let r = revs.iter().find(|r| r.serial == c.serial).cloned();
            (c, r)
        })
        .collect())
}

fn revoke(env: &AppContext, serial: u32, reason: &str) -> Result<String, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let r = o.state.revoke(serial, env.now(), reason).map_err(|e| format!("Card {serial} could not be revoked: {e}"))?;
    Ok(format!("Card {} revoked on {} ({}).", r.serial, style::date_time(r.revoked_at), r.reason))
}

fn list_readers() -> Result<Vec<String>, String> {
    let ctx =
        reader::PcscContext::establish().map_err(|e| format!("The smart-card service is not available ({e}): ask IT to start pcscd."))?;
    let names = ctx.reader_names().map_err(|e| format!("Could not list the card readers: {e}"))?;
    if names.is_empty() {
        return Err("No card reader is connected: plug one in and press Find readers again.".into());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_current_puk_says_how_many_tries_are_left_and_what_to_check() {
        let m = describe(&reader::Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Puk, tries_left: 2 })));
        assert!(m.contains("current PUK is wrong (2 tries left)") && m.contains("Nothing was issued"), "{m}");
    }

    #[test]
    fn no_card_and_a_pulled_card_say_what_to_do() {
        let m = describe(&reader::Error::Card(PivError::Transport(TransportError::NoCard { reader: "r".into() })));
        assert!(m.contains("insert a blank card"), "{m}");
        let m = describe(&reader::Error::Card(PivError::Transport(TransportError::CardRemoved { reader: "r".into() })));
        assert!(m.contains("taken out during issuance"), "{m}");
    }

    #[test]
    fn every_issuance_step_reads_as_words() {
        assert_eq!(step_text(IssueStep::CredentialWritten), "Wrote the clinic credential");
        assert!(step_text(IssueStep::Authenticated { derived: false }).contains("factory key"));
        assert!(step_text(IssueStep::PinAndPukSet).contains("PIN and PUK"));
    }
}
