//! Staff sign-in for a view (`docs/desktop.md`, "Staff sign-in"): once the clinic has staff
//! cards, the bedside (to scan and read) and the admin view (to administer) open only for a
//! member of staff whose card and PIN prove who they are, with a role that may do it.
//!
//! The gate offers the staff card readers, takes the PIN and signs in on a worker thread with
//! the library's audited [`reader::staff_card::sign_in`] (card proof, revocation, role, PIN),
//! then holds the card ([`crate::held_card`]) so it can sign every access entry. The session
//! ends when the card leaves its reader, after `settings.staff_idle` without activity, or on
//! Sign out; each end is audited ([`reader::staff_card::end_session`]) and reported to the view
//! ([`GateEvent::Ended`]), which forgets what it showed. The gate never decides a right itself.

use std::time::{Duration, Instant};

use egui::{RichText, Ui};
use reader::staff::Action;
use reader::staff_card::StaffSession;
use reader::sw::Secret;
use reader::{CardError, PinBlock, PivError};
use zeroize::Zeroizing;

use crate::card_source::{CardSource, CardWatch, Presence};
use crate::context::{AppContext, countdown};
use crate::held_card::{CardSigner, HeldCard};
use crate::jobs::{Job, finished};
use crate::style;

/// How often the gate asks the clinic whether staff cards are required.
const RECHECK: Duration = Duration::from_secs(30);

/// Why a session ended (the `why=` of `staff.session_ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The staff card left its reader.
    CardRemoved,
    /// No activity for the idle time.
    Idle,
    /// Sign out (or the view was locked).
    SignedOut,
}

impl EndReason {
    /// The audit text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CardRemoved => "card-removed",
            EndReason::Idle => "idle",
            EndReason::SignedOut => "signed-out",
        }
    }
}

/// What happened to the gate this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateEvent {
    /// Nothing new.
    Nothing,
    /// A member of staff signed in.
    SignedIn,
    /// The session ended: the view forgets what it showed.
    Ended(EndReason),
}

struct Active {
    signer: CardSigner,
    watch: CardWatch,
    seen_card: bool,
}

/// The staff sign-in of one view.
pub struct StaffGate {
    action: Action,
    choices: Vec<CardSource>,
    chosen: usize,
    listing: Option<Job<Result<Vec<String>, String>>>,
    listed: bool,
    pin: Zeroizing<String>,
    signing: Option<Job<Result<CardSigner, String>>>,
    active: Option<Active>,
    note: Option<Result<String, String>>,
    required: Option<bool>,
    checking: Option<Job<Result<bool, String>>>,
    checked_at: Option<Instant>,
    ending: Vec<Job<Result<(), String>>>,
    pending_end: Option<(CardSigner, EndReason)>,
}

impl StaffGate {
    /// A gate for `action` (the right the view needs).
    #[must_use]
    pub fn new(action: Action) -> Self {
        StaffGate {
            action,
            choices: Vec::new(),
            chosen: 0,
            listing: None,
            listed: false,
            pin: Zeroizing::new(String::with_capacity(64)),
            signing: None,
            active: None,
            note: None,
            required: None,
            checking: None,
            checked_at: None,
            ending: Vec::new(),
            pending_end: None,
        }
    }

    /// Whether the clinic requires a staff sign-in (`None`: not known yet).
    #[must_use]
    pub fn required(&self) -> Option<bool> {
        self.required
    }

    /// Notes that the clinic requires staff sign-ins (a refusal from the library said so).
    pub fn set_required(&mut self) {
        self.required = Some(true);
    }

    /// The session, when signed in.
    #[must_use]
    pub fn session(&self) -> Option<&StaffSession> {
        self.active.as_ref().map(|a| &a.signer.session)
    }

    /// The signer to hand to work that reads records, when signed in.
    #[must_use]
    pub fn signer(&self) -> Option<CardSigner> {
        self.active.as_ref().map(|a| a.signer.clone())
    }

    /// The refusal or failure on screen, if any.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        match &self.note {
            Some(Err(m)) => Some(m),
            _ => None,
        }
    }

    /// Whether a sign-in is being checked.
    #[must_use]
    pub fn is_signing_in(&self) -> bool {
        self.signing.is_some()
    }

    /// Notes activity now (each scan, open, click or key on the view): the idle time starts again.
    pub fn touch(&mut self, now: i64) {
        if let Some(a) = &mut self.active {
            a.signer.session.touch(now);
        }
    }

    /// Types `pin` into the PIN field (the tour).
    pub fn type_pin(&mut self, pin: &str) {
        self.pin = Zeroizing::new(String::with_capacity(64));
        self.pin.push_str(pin);
    }

    /// Ends the session (Sign out, a locked view); audited at the next frame.
    pub fn end(&mut self, why: EndReason) {
        self.pin = Zeroizing::new(String::with_capacity(64));
        if let Some(a) = self.active.take() {
            self.note = Some(Ok(match why {
                EndReason::CardRemoved => "Signed out: the staff card was taken out of its reader. Sign in again to continue.".to_owned(),
                EndReason::Idle => "Signed out after the idle time, for the patients' privacy. Sign in again to continue.".to_owned(),
                EndReason::SignedOut => "Signed out.".to_owned(),
            }));
            // The held card is dropped with the signer once the audit job has run: its thread
            // resets the card, so no PIN status lingers.
            self.pending_end = Some((a.signer, why));
        }
    }

    /// Signs in with the card in the chosen reader and the typed PIN (the Sign in button; the
    /// tour). Ignored while a sign-in is being checked.
    pub fn submit(&mut self, ctx: &egui::Context, env: &AppContext) {
        if self.signing.is_some() || self.active.is_some() {
            return;
        }
        let pin = match PinBlock::pin(&self.pin) {
            Ok(p) => p,
            Err(e) => {
                self.note = Some(Err(format!("{e}.")));
                return;
            }
        };
        self.pin = Zeroizing::new(String::with_capacity(64));
        let Some(source) = self.choices.get(self.chosen).cloned() else {
            self.note = Some(Err("No staff card reader was found: plug one in, then press Find readers.".into()));
            return;
        };
        self.note = None;
        let (env, action, c) = (env.clone(), self.action, ctx.clone());
        self.signing =
            Some(Job::spawn("Checking the staff card", move || c.request_repaint(), move || sign_in(&env, &source, &pin, action)));
    }

    /// Every frame, shown or not: whether the clinic requires staff cards, the sign-in's result,
    /// the card's presence and the idle time. Returns what changed.
    pub fn logic(&mut self, ctx: &egui::Context, env: &AppContext) -> GateEvent {
        let mut event = GateEvent::Nothing;
        if self.choices.is_empty() && !env.staff_readers.is_empty() {
            self.choices = env.staff_readers.clone();
        }
        // Unknown (no clinic, database unreadable): the last answer stands. The library refuses a
        // device read in a clinic with staff cards whatever the gate believes, and the view's own
        // work reports a clinic it cannot open.
        if let Some(Ok(Ok(req))) = finished(&mut self.checking) {
            self.required = Some(req || self.required == Some(true));
        }
        if self.checking.is_none() && self.checked_at.is_none_or(|t| t.elapsed() >= RECHECK) {
            self.checked_at = Some(Instant::now());
            let (env, c) = (env.clone(), ctx.clone());
            self.checking = Some(Job::spawn("Reading the clinic's sign-in rules", move || c.request_repaint(), move || required(&env)));
        }
        if let Some(r) = finished(&mut self.listing) {
            match r.and_then(|x| x) {
                Ok(names) => {
                    self.choices = names.into_iter().map(|reader| CardSource::Pcsc { reader }).collect();
                    self.chosen = 0;
                    if self.choices.is_empty() {
                        self.note = Some(Err("No card reader found: plug in the staff card reader, then press Find readers.".into()));
                    }
                }
                Err(m) => self.note = Some(Err(m)),
            }
        }
        if let Some(r) = finished(&mut self.signing) {
            match r.and_then(|x| x) {
                Ok(mut signer) => {
                    let idle = i64::try_from(env.settings.staff_idle.as_secs()).unwrap_or(i64::MAX);
                    signer.session = signer.session.clone().with_idle_secs(idle);
                    let source =
                        self.choices.get(self.chosen).cloned().unwrap_or(CardSource::Pcsc { reader: signer.card.reader().to_owned() });
                    let c = ctx.clone();
                    let watch = CardWatch::new(source, move || c.request_repaint());
                    self.active = Some(Active { signer, watch, seen_card: false });
                    self.note = None;
                    self.required = Some(true);
                    event = GateEvent::SignedIn;
                }
                Err(m) => self.note = Some(Err(m)),
            }
        }
        let now = env.now();
        let mut ended = None;
        if let Some(a) = &mut self.active {
            match a.watch.poll() {
                Presence::Card => a.seen_card = true,
                // A PC/SC watcher reports the card only after its first look: a session ends on
                // a card seen and then gone.
                _ if a.seen_card => ended = Some(EndReason::CardRemoved),
                _ => {}
            }
            if ended.is_none() && a.signer.session.is_idle(now) {
                ended = Some(EndReason::Idle);
            }
            ctx.request_repaint_after(Duration::from_millis(500));
        }
        if let Some(why) = ended {
            self.end(why);
            event = GateEvent::Ended(why);
        }
        if let Some((signer, why)) = self.pending_end.take() {
            let (env, c) = (env.clone(), ctx.clone());
            self.ending.push(Job::spawn("Ending the staff session", move || c.request_repaint(), move || end_session(&env, signer, why)));
        }
        let mut failed = None;
        self.ending.retain_mut(|j| match j.poll() {
            crate::jobs::Poll::Pending => true,
            crate::jobs::Poll::Ready(Ok(())) => false,
            crate::jobs::Poll::Ready(Err(m)) | crate::jobs::Poll::Lost(m) => {
                failed = Some(m);
                false
            }
        });
        if let Some(m) = failed {
            self.note = Some(Err(m));
        }
        event
    }

    /// Draws the signed-in bar, or the sign-in form with `why` (what the view needs it for).
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext, why: &str) {
        if let Some(a) = &self.active {
            let s = &a.signer.session;
            let left = s.idle_at() - env.now();
            let mut out = false;
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!("Signed in: {} ({}, staff {})", s.name(), s.role(), s.staff_id())).strong().color(style::GOOD),
                );
                ui.label(
                    RichText::new(format!("card in {} · signs out after {} without activity", a.signer.card.reader(), countdown(left)))
                        .color(style::MUTED),
                );
                out = ui.button("Sign out").clicked();
            });
            if out {
                self.end(EndReason::SignedOut);
            }
            self.demo_reader_ui(ui);
            return;
        }
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(RichText::new("Staff sign-in").size(22.0).strong());
            ui.label(RichText::new(why).size(17.0));
            if self.choices.is_empty() && !self.listed && env.staff_readers.is_empty() {
                self.find_readers(ui.ctx());
            }
            ui.horizontal(|ui| {
                let l = ui.add_sized([170.0, 24.0], egui::Label::new("Staff card reader"));
                let shown = self.choices.get(self.chosen).map_or_else(|| "(none found)".to_owned(), CardSource::name);
                let combo = egui::ComboBox::from_id_salt(("staff-reader", self.action.as_str())).selected_text(shown).show_ui(ui, |ui| {
                    for (i, c) in self.choices.iter().enumerate() {
                        ui.selectable_value(&mut self.chosen, i, c.name());
                    }
                });
                combo.response.labelled_by(l.id);
                if env.staff_readers.is_empty() && ui.add_enabled(self.listing.is_none(), egui::Button::new("Find readers")).clicked() {
                    self.find_readers(ui.ctx());
                }
            });
            self.demo_reader_ui(ui);
            let busy = self.signing.is_some();
            let enter = ui
                .horizontal(|ui| {
                    let l = ui.add_sized([170.0, 24.0], egui::Label::new("Staff card PIN"));
                    let r = ui
                        .add(egui::TextEdit::singleline(&mut *self.pin).password(true).char_limit(8).desired_width(160.0))
                        .labelled_by(l.id);
                    r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
                })
                .inner;
            let ready = !busy && !self.pin.is_empty();
            if (ui.add_enabled(ready, egui::Button::new(RichText::new("Sign in").size(18.0))).clicked() || enter) && ready {
                self.submit(ui.ctx(), env);
            }
            if let Some(j) = &self.signing {
                ui.horizontal(|ui| {
                    ui.add(egui::Spinner::new());
                    ui.label(RichText::new(format!("{}…", j.what())).color(style::MUTED));
                });
            }
        });
        match &self.note {
            Some(Ok(m)) => {
                ui.label(RichText::new(m).color(style::WARN).size(17.0));
            }
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD).size(17.0));
            }
            None => {}
        }
    }

    /// The in-process staff card reader of the demo: insert and remove buttons.
    fn demo_reader_ui(&self, ui: &mut Ui) {
        let Some(CardSource::Sim(slot)) = self.choices.get(self.chosen) else { return };
        ui.horizontal(|ui| {
            ui.label(RichText::new("Demo staff card reader (in-process simulator):").color(style::MUTED));
            if slot.inserted() {
                if ui.button("Remove the staff card").clicked() {
                    slot.remove();
                }
            } else if ui.button("Insert the staff card").clicked() {
                slot.insert();
            }
        });
    }

    fn find_readers(&mut self, ctx: &egui::Context) {
        if self.listing.is_some() {
            return;
        }
        self.listed = true;
        let c = ctx.clone();
        self.listing = Some(Job::spawn("Finding card readers", move || c.request_repaint(), list_readers));
    }
}

/// The PC/SC readers (worker thread).
fn list_readers() -> Result<Vec<String>, String> {
    let ctx = reader::PcscContext::establish()
        .map_err(|e| format!("The smart-card service is not available ({e}): ask IT to start pcscd, then press Find readers."))?;
    ctx.reader_names().map_err(|e| format!("The card readers could not be listed ({e}). Press Find readers to try again."))
}

/// Whether input this frame counts as activity for the idle time: a press or a key, not a
/// pointer merely passing over the window.
#[must_use]
pub fn active_input(ui: &Ui) -> bool {
    ui.input(|i| {
        i.pointer.any_pressed()
            || i.events.iter().any(|e| matches!(e, egui::Event::Key { .. } | egui::Event::Text(_) | egui::Event::Paste(_)))
    })
}

/// Whether the clinic has staff cards (worker thread).
fn required(env: &AppContext) -> Result<bool, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    o.state.staff_required().map_err(|e| format!("Whether this clinic requires staff sign-ins could not be read ({e}); report it to IT."))
}

/// A sign-in refusal in words: wrong PIN and blocked PIN plainly, the rest as the library says
/// it (its messages name what to do).
#[must_use]
pub fn refusal_text(e: &reader::Error) -> String {
    match e {
        reader::Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: 0 } | CardError::PinBlocked)) => {
            "The staff card's PIN is blocked after too many wrong tries: an administrator unblocks it with the card's PUK.".into()
        }
        reader::Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left })) => {
            format!("Wrong staff card PIN: {tries_left} {} left.", if *tries_left == 1 { "try" } else { "tries" })
        }
        other => format!("Not signed in: {other}"),
    }
}

/// The sign-in on a worker thread: hold the card, then the library's audited sign-in on it.
fn sign_in(env: &AppContext, source: &CardSource, pin: &PinBlock, action: Action) -> Result<CardSigner, String> {
    let card = HeldCard::open(source).map_err(|e| refusal_text(&e))?;
    let (env2, pin) = (env.clone(), pin.clone());
    let now = env.now();
    let session = card
        .run(move |piv| {
            let o = match env2.open() {
                Ok(o) => o,
                Err(e) => return Ok(Err(e.to_string())),
            };
            Ok(reader::staff_card::sign_in(piv, &o.ks, &o.state, now, &pin, action).map_err(|e| refusal_text(&e)))
        })
        .map_err(|e| refusal_text(&e))??;
    Ok(CardSigner { session, card })
}

/// Audits the end of a session (worker thread); the held card goes with the signer.
fn end_session(env: &AppContext, signer: CardSigner, why: EndReason) -> Result<(), String> {
    let o = env.open().map_err(|e| format!("The end of the staff session could not be logged ({e}); report it to IT."))?;
    let r = reader::staff_card::end_session(&o.state, &signer.session, env.now(), why.as_str());
    drop(signer);
    r.map_err(|e| format!("The end of the staff session could not be logged ({e}); report it to IT."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_staff_pin_says_the_tries_left_and_zero_tries_means_blocked() {
        let wrong = |n| reader::Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: n }));
        assert_eq!(refusal_text(&wrong(2)), "Wrong staff card PIN: 2 tries left.");
        assert_eq!(refusal_text(&wrong(1)), "Wrong staff card PIN: 1 try left.");
        assert!(refusal_text(&wrong(0)).contains("blocked"));
        assert!(refusal_text(&reader::Error::Card(PivError::Card(CardError::PinBlocked))).contains("unblocks it with the card's PUK"));
    }

    #[test]
    fn other_refusals_keep_the_librarys_words() {
        let e = reader::Error::NotPermitted {
            staff_id: "S-1".into(),
            role: reader::staff::Role::Clinician,
            action: reader::staff::Action::Administer,
        };
        assert_eq!(refusal_text(&e), format!("Not signed in: {e}"));
    }
}
