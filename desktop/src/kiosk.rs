//! The reception kiosk: insert card → PIN pad → "Welcome" with the consent in plain words →
//! Check in → the QR code, large, with its countdown, Save PNG and Print, and under it who read the
//! patient's records since their last visit ([`crate::visit_report`]).
//!
//! The card work is `reader::checkin::card_step` (card proof, PIN, consent token) and
//! `reader::checkin::issue_qr`, run on a worker thread; this module only decides what to show.
//! Pulling the card at any step goes back to the start and drops the PIN digits, the verified
//! card session and the QR (it carries the records' key). After `kiosk_idle` without a touch the
//! session ends the same way.

use egui::{Align, Layout, RichText, Ui, Vec2};
use reader::category::Category;
use reader::checkin::{self, CardOutcome};
use reader::credential::CredentialError;
use reader::sw::Secret;
use reader::{CardError, PinBlock, PivError, TransportError};
use zeroize::Zeroizing;

use crate::card_source::{CardSource, CardWatch, Presence};
use crate::context::{AppContext, countdown};
use crate::jobs::{Job, Poll};
use crate::style;

/// Longest PIN the pad takes (PIV: 6 to 8 digits).
const MAX_PIN: usize = 8;
/// Shortest PIN the pad sends.
const MIN_PIN: usize = 6;

/// The patient after a good card session.
pub struct Welcome {
    /// The verified card session (dropped on removal).
    pub outcome: CardOutcome,
    /// The patient's name as the clinic issued the card ("" when unknown).
    pub name: String,
}

/// A check-in QR on screen.
pub struct ShownQr {
    /// The QR text (`MC1:...`).
    pub text: Zeroizing<String>,
    /// The PNG (what Save PNG and Print use).
    pub png: Zeroizing<Vec<u8>>,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// The QR id.
    pub qr_id: String,
    /// Categories shared.
    pub categories: Vec<Category>,
    /// Records shared.
    pub records: usize,
    /// Whose code it is.
    pub patient_id: String,
    /// Who read the patient's records since their previous visit
    /// ([`crate::visit_report::since_last_visit`]), or why that cannot be shown; `None` while it
    /// is being built (it verifies the whole audit log, so the code is shown first).
    pub report: Option<Result<Vec<String>, String>>,
    texture: Option<egui::TextureHandle>,
    image: Option<egui::ColorImage>,
}

/// Why the card session did not give a welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardFailure {
    /// Wrong PIN with tries left.
    WrongPin { tries_left: u8 },
    /// The PIN is blocked.
    Blocked,
    /// The card was pulled during the session.
    Removed,
    /// Anything else: the message for the patient (and what to do).
    Refused(String),
}

/// Turns a card-session error into what the kiosk says. Pure.
#[must_use]
pub fn classify(e: &reader::Error) -> CardFailure {
    use reader::Error as E;
    match e {
        E::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: 0 }))
        | E::Card(PivError::Card(CardError::PinBlocked)) => CardFailure::Blocked,
        E::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left })) => {
            CardFailure::WrongPin { tries_left: *tries_left }
        }
        E::Card(PivError::Transport(
            TransportError::CardRemoved { .. } | TransportError::NoCard { .. } | TransportError::CardReset { .. },
        )) => CardFailure::Removed,
        E::Card(PivError::Transport(_)) => CardFailure::Refused("The card reader is not responding. Please see reception.".into()),
        E::Credential(CredentialError::Revoked { .. }) => {
            CardFailure::Refused("This card has been withdrawn. Please see reception for a new card.".into())
        }
        E::Credential(CredentialError::OutsideValidity { .. }) => {
            CardFailure::Refused("This card has expired. Please see reception for a new card.".into())
        }
        E::Credential(CredentialError::ForeignIssuer { .. }) => CardFailure::Refused(
            "This card was issued by another clinic. Check-in here needs a card from this clinic: please see reception.".into(),
        ),
        E::Credential(CredentialError::StaffCard) => CardFailure::Refused(
            "This is a staff card, not a patient card. Check-in needs your own patient card: please see reception.".into(),
        ),
        E::Credential(CredentialError::PinNotProven { .. }) => {
            CardFailure::Refused("This card could not confirm your PIN. Please take it to reception.".into())
        }
        E::Credential(_) => {
            CardFailure::Refused("This card could not be verified as one of this clinic's cards. Please see reception.".into())
        }
        E::Consent(c) => {
            CardFailure::Refused(format!("There is no valid consent on this card ({c}). Please see reception to set your consent."))
        }
        E::Card(p @ (PivError::NotDigits { .. } | PivError::SecretLength { .. })) => CardFailure::Refused(format!("{p}.")),
        other => CardFailure::Refused(format!("Check-in is not possible right now ({other}). Please see reception.")),
    }
}

/// A category in the patient's words.
#[must_use]
pub fn plain(c: Category) -> &'static str {
    match c {
        Category::Summary => "your health summary (conditions and key facts)",
        Category::Allergies => "your allergies",
        Category::Medications => "your medicines",
        Category::Labs => "your test results",
        Category::Imaging => "your scans and images",
        Category::Notes => "your doctors' notes",
    }
}

/// The consent in plain words: what staff may see, what they may not, until when. Pure.
#[must_use]
pub fn consent_summary(scope: &[Category], expires_at: i64) -> Vec<String> {
    let mut lines = Vec::new();
    if scope.is_empty() {
        lines.push("You have not agreed to share any records.".to_owned());
        return lines;
    }
    lines.push("You agreed that this clinic's staff may see:".to_owned());
    lines.extend(scope.iter().map(|c| format!("    •  {}", plain(*c))));
    let not: Vec<&str> = Category::ALL.iter().filter(|c| !scope.contains(c)).map(|c| plain(*c)).collect();
    match not.split_last() {
        None => {}
        Some((last, [])) => lines.push(format!("They will not see {last}.")),
        Some((last, rest)) => lines.push(format!("They will not see {} or {last}.", rest.join(", "))),
    }
    lines.push(format!("Your consent is valid until {}.", style::date(expires_at)));
    lines
}

enum Step {
    Insert,
    Pin,
    Checking(Job<Result<Welcome, CardFailure>>),
    Welcome(Box<Welcome>),
    Issuing(Job<Result<ShownQr, String>>),
    Qr(Box<ShownQr>),
    /// Waits for the card to be taken out (blocked card, refusal, end of session).
    TakeCard {
        title: String,
        message: String,
        alarm: bool,
    },
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Insert => "insert",
            Step::Pin => "pin",
            Step::Checking(_) => "checking",
            Step::Welcome(_) => "welcome",
            Step::Issuing(_) => "issuing",
            Step::Qr(_) => "qr",
            Step::TakeCard { .. } => "take-card",
        }
    }
}

/// The kiosk view.
pub struct KioskView {
    step: Step,
    pin: Zeroizing<String>,
    notice: Option<String>,
    watch: CardWatch,
    presence: Presence,
    last_touch: f64,
    save_result: Option<Result<String, String>>,
    report: Option<Job<Result<Vec<String>, String>>>,
}

impl KioskView {
    /// A kiosk on `source`; `wake` repaints the UI (card events, finished work).
    #[must_use]
    pub fn new(source: CardSource, wake: impl Fn() + Send + 'static) -> Self {
        KioskView {
            step: Step::Insert,
            pin: Zeroizing::new(String::new()),
            notice: None,
            watch: CardWatch::new(source, wake),
            presence: Presence::Empty,
            last_touch: 0.0,
            save_result: None,
            report: None,
        }
    }

    /// The current step's name (insert, pin, checking, welcome, issuing, qr, take-card).
    #[must_use]
    pub fn step_name(&self) -> &'static str {
        self.step.name()
    }

    /// The QR on screen, if any.
    #[must_use]
    pub fn shown_qr(&self) -> Option<&ShownQr> {
        match &self.step {
            Step::Qr(q) => Some(q),
            _ => None,
        }
    }

    /// How many PIN digits are typed (never the digits).
    #[must_use]
    pub fn pin_len(&self) -> usize {
        self.pin.len()
    }

    /// Ends the session: secrets dropped, back to `step`.
    fn reset(&mut self, step: Step) {
        self.pin = Zeroizing::new(String::new());
        self.save_result = None;
        self.report = None;
        self.step = step; // drops a Welcome (card session) or a ShownQr (text, PNG, texture, report)
    }

    fn take_card(&mut self, title: &str, message: &str, alarm: bool) {
        self.reset(Step::TakeCard { title: title.to_owned(), message: message.to_owned(), alarm });
    }

    /// Every frame, shown or not: follows the card, collects finished card work, runs the idle
    /// timer and the QR's expiry, so a session left behind another view still ends (a card pulled
    /// meanwhile drops the PIN and the QR at once, not when the kiosk is next shown).
    pub fn logic(&mut self, ctx: &egui::Context, env: &AppContext) {
        let now_t = ctx.input(|i| i.time);
        self.presence = self.watch.poll();
        self.follow_card();
        self.poll_jobs(ctx, env);
        let busy = matches!(self.step, Step::Checking(_) | Step::Issuing(_));
        if !busy
            && !matches!(self.step, Step::Insert | Step::TakeCard { .. })
            && now_t - self.last_touch > env.settings.kiosk_idle.as_secs_f64()
        {
            self.take_card(
                "Session ended",
                "The screen was left alone, so your session was closed for your privacy. Please take your card.",
                false,
            );
        }
        if let Step::Qr(q) = &self.step
            && q.exp - env.now() <= 0
        {
            self.take_card("This code has expired", "Please take your card and check in again.", false);
        }
        if matches!(self.step, Step::Qr(_) | Step::Welcome(_) | Step::Pin) {
            // Countdowns and the idle timer need a tick even without input.
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
    }

    /// Draws the kiosk (only when it is the view shown); [`Self::logic`] has run this frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        // Only input on the kiosk's own screen is a patient touching it.
        if ui.input(|i| !i.events.is_empty() || i.pointer.any_down()) {
            self.last_touch = ui.input(|i| i.time);
        }
        if let CardSource::Sim(slot) = self.watch.source().clone() {
            egui::Panel::bottom("demo-reader").show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.label(RichText::new("Demo card reader (in-process simulator):").color(style::MUTED));
                    if self.presence == Presence::Card {
                        if ui.button("Remove the demo card").clicked() {
                            slot.remove();
                        }
                    } else if ui.button("Insert the demo card").clicked() {
                        slot.insert();
                    }
                });
            });
        }
        ui.with_layout(Layout::top_down(Align::Center), |ui| {
            ui.add_space(16.0);
            match &self.step {
                Step::Insert => self.insert_ui(ui),
                Step::Pin => self.pin_ui(ui, env),
                Step::Checking(j) => style::busy(ui, &format!("{}…", j.what())),
                Step::Issuing(j) => style::busy(ui, &format!("{}…", j.what())),
                Step::Welcome(_) => self.welcome_ui(ui, env),
                Step::Qr(_) => self.qr_ui(ui, env),
                Step::TakeCard { title, message, alarm } => {
                    let (t, m, a) = (title.clone(), message.clone(), *alarm);
                    ui.add_space(40.0);
                    style::heading(ui, &t, if a { style::BAD } else { style::INK });
                    ui.add_space(12.0);
                    style::centered(ui, 640.0, |ui| {
                        ui.label(RichText::new(m).size(24.0).color(style::INK));
                    });
                    ui.add_space(24.0);
                    style::card_picture(ui, false);
                }
            }
        });
    }

    fn follow_card(&mut self) {
        match (&self.presence, &self.step) {
            (Presence::Card, Step::Insert) => {
                self.notice = None;
                self.reset(Step::Pin);
            }
            (Presence::Card, _) => {}
            (_, Step::Insert) => {}
            (_, Step::TakeCard { .. }) => self.reset(Step::Insert),
            (_, _) => {
                self.notice = Some("Your card was taken out, so nothing was done. Insert it to start again.".into());
                self.reset(Step::Insert);
            }
        }
    }

    fn poll_jobs(&mut self, ctx: &egui::Context, env: &AppContext) {
        match &mut self.step {
            Step::Checking(job) => match job.poll() {
                Poll::Pending => {}
                Poll::Ready(Ok(w)) => {
                    self.pin = Zeroizing::new(String::new());
                    self.step = Step::Welcome(Box::new(w));
                }
                Poll::Ready(Err(CardFailure::WrongPin { tries_left })) => {
                    self.pin = Zeroizing::new(String::new());
                    self.notice = Some(format!("Wrong PIN: {tries_left} {} left", if tries_left == 1 { "try" } else { "tries" }));
                    self.step = Step::Pin;
                }
                Poll::Ready(Err(CardFailure::Blocked)) => {
                    self.take_card(
                        "Card blocked: please see reception",
                        "The PIN was entered wrongly too many times. Reception can unblock your card. Please take your card.",
                        true,
                    );
                }
                Poll::Ready(Err(CardFailure::Removed)) => {
                    self.notice = Some("Your card was taken out, so nothing was done. Insert it to start again.".into());
                    self.reset(Step::Insert);
                }
                Poll::Ready(Err(CardFailure::Refused(m))) => self.take_card("We could not check you in", &m, true),
                Poll::Lost(m) => self.take_card("Something went wrong", &format!("{m}. Please take your card and see reception."), true),
            },
            Step::Issuing(job) => match job.poll() {
                Poll::Pending => {}
                Poll::Ready(Ok(mut q)) => {
                    if let Some(img) = q.image.take() {
                        q.texture = Some(ctx.load_texture("checkin-qr", img, egui::TextureOptions::NEAREST));
                    }
                    let (env, c, patient) = (env.clone(), ctx.clone(), q.patient_id.clone());
                    self.report = Some(Job::spawn(
                        "Looking up who read your records",
                        move || c.request_repaint(),
                        move || crate::visit_report::since_last_visit(&env, &patient),
                    ));
                    self.step = Step::Qr(Box::new(q));
                }
                Poll::Ready(Err(m)) => self.take_card("We could not check you in", &m, true),
                Poll::Lost(m) => self.take_card("Something went wrong", &format!("{m}. Please take your card and see reception."), true),
            },
            Step::Qr(q) => {
                if let Some(r) = crate::jobs::finished(&mut self.report) {
                    q.report = Some(r.and_then(|x| x));
                }
            }
            _ => {}
        }
    }

    fn insert_ui(&mut self, ui: &mut Ui) {
        ui.add_space(40.0);
        style::heading(ui, "Welcome to check-in", style::INK);
        ui.add_space(24.0);
        style::card_picture(ui, true);
        ui.add_space(24.0);
        match &self.presence {
            Presence::NoReader(m) => {
                style::big_text(ui, "The card reader is not available.");
                ui.label(RichText::new(m).color(style::BAD).size(18.0));
            }
            _ => style::big_text(ui, "Please insert your card"),
        }
        if let Some(n) = &self.notice {
            ui.add_space(12.0);
            ui.label(RichText::new(n).size(18.0).color(style::MUTED));
        }
    }

    fn pin_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        style::heading(ui, "Enter your PIN", style::INK);
        if let Some(n) = &self.notice {
            ui.label(RichText::new(n).size(22.0).color(style::BAD).strong());
        }
        ui.add_space(8.0);
        let shown =
            if self.pin.is_empty() { "– – – – – –".to_owned() } else { "●  ".repeat(self.pin.len()).trim_end().to_owned() };
        ui.label(RichText::new(shown).size(40.0).monospace()).on_hover_text("PIN digits are hidden");
        ui.add_space(8.0);
        // Digits from a physical keypad too.
        let typed: Vec<char> = ui.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::Text(t) => Some(t.chars().filter(char::is_ascii_digit).collect::<Vec<_>>()),
                    egui::Event::Key { key: egui::Key::Backspace, pressed: true, .. } => Some(vec!['\u{8}']),
                    egui::Event::Key { key: egui::Key::Enter, pressed: true, .. } => Some(vec!['\n']),
                    _ => None,
                })
                .flatten()
                .collect()
        });
        let mut submit = false;
        for c in typed {
            match c {
                '\u{8}' => {
                    self.pin.pop();
                }
                '\n' => submit = true,
                d => self.push_digit(d),
            }
        }
        let key = Vec2::new(110.0, 80.0);
        style::centered(ui, 3.0 * 110.0 + 2.0 * 12.0, |ui| {
            egui::Grid::new("pin-pad").spacing([12.0, 12.0]).show(ui, |ui| {
                for row in [['1', '2', '3'], ['4', '5', '6'], ['7', '8', '9']] {
                    for d in row {
                        if style::key(ui, &d.to_string(), key).clicked() {
                            self.push_digit(d);
                        }
                    }
                    ui.end_row();
                }
                if style::key(ui, "Clear", key).clicked() {
                    self.pin = Zeroizing::new(String::new());
                }
                if style::key(ui, "0", key).clicked() {
                    self.push_digit('0');
                }
                if style::key(ui, "Delete", key).clicked() {
                    self.pin.pop();
                }
                ui.end_row();
            })
        });
        ui.add_space(12.0);
        let ready = self.pin.len() >= MIN_PIN;
        if ui.add_enabled(ready, egui::Button::new(RichText::new("OK").size(28.0)).min_size(Vec2::new(354.0, 72.0))).clicked()
            || (submit && ready)
        {
            self.submit_pin(ui.ctx(), env);
        }
    }

    /// A PIN pad key (digits only; at most 8).
    pub fn push_digit(&mut self, d: char) {
        if self.pin.len() < MAX_PIN && d.is_ascii_digit() {
            self.pin.push(d);
        }
    }

    /// The OK key: checks the card with the typed PIN on a worker thread (only on the PIN screen).
    pub fn submit_pin(&mut self, ctx: &egui::Context, env: &AppContext) {
        if !matches!(self.step, Step::Pin) {
            return;
        }
        let pin = match PinBlock::pin(&self.pin) {
            Ok(p) => p,
            Err(_) => {
                self.notice = Some(format!("A PIN has {MIN_PIN} to {MAX_PIN} digits"));
                return;
            }
        };
        self.pin = Zeroizing::new(String::new());
        self.notice = None;
        let env = env.clone();
        let c = ctx.clone();
        self.step = Step::Checking(Job::spawn("Checking your card", move || c.request_repaint(), move || check_card(&env, &pin)));
    }

    fn welcome_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        let Step::Welcome(w) = &self.step else { return };
        let name = if w.name.is_empty() { "Welcome".to_owned() } else { format!("Welcome, {}", w.name) };
        style::heading(ui, &name, style::INK);
        ui.add_space(8.0);
        let lines = consent_summary(&w.outcome.consent.scope, w.outcome.consent.expires_at);
        style::centered(ui, 680.0, |ui| {
            for line in &lines {
                ui.label(RichText::new(line).size(24.0).color(style::INK));
            }
        });
        ui.add_space(20.0);
        let mut check_in = false;
        let mut cancel = false;
        ui.horizontal(|ui| {
            let total = 2.0 * 220.0 + 24.0;
            ui.add_space(((ui.available_width() - total) / 2.0).max(0.0));
            check_in = style::primary(ui, "Check in", Vec2::new(220.0, 80.0)).clicked();
            ui.add_space(24.0);
            cancel = style::key(ui, "Cancel", Vec2::new(220.0, 80.0)).clicked();
        });
        if cancel {
            self.take_card("Check-in cancelled", "Nothing was shared. Please take your card.", false);
            return;
        }
        if check_in {
            self.check_in(ui.ctx(), env);
        }
    }

    /// The Check in button: signs the QR on a worker thread (only on the welcome screen).
    pub fn check_in(&mut self, ctx: &egui::Context, env: &AppContext) {
        if !matches!(self.step, Step::Welcome(_)) {
            return;
        }
        let Step::Welcome(w) = std::mem::replace(&mut self.step, Step::Insert) else { return };
        let env = env.clone();
        let c = ctx.clone();
        self.step = Step::Issuing(Job::spawn("Checking you in", move || c.request_repaint(), move || issue(&env, &w.outcome)));
    }

    fn qr_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        let Step::Qr(q) = &self.step else { return };
        // An expired code left the screen in `logic`; a second that ticked since reads 0:00.
        let left = q.exp - env.now();
        style::heading(ui, "You are checked in", style::GOOD);
        ui.label(RichText::new("Show this code to the nurse or doctor.").size(22.0));
        ui.add_space(6.0);
        // Each access line may wrap once (an emergency access with its reason does).
        let report_lines = match &q.report {
            Some(Ok(r)) => r.iter().take(MAX_REPORT_LINES).map(|l| 1 + l.len() / 100).sum::<usize>().max(1),
            _ => 1,
        };
        #[allow(clippy::cast_precision_loss)]
        let report_height = 44.0 + 24.0 * report_lines as f32;
        if let Some(t) = &q.texture {
            let side = (ui.available_height() - 210.0 - report_height).clamp(220.0, 520.0);
            ui.add(egui::Image::new(t).fit_to_exact_size(Vec2::splat(side)).alt_text("Check-in QR code"));
        }
        ui.label(RichText::new(format!("Valid for {}", countdown(left))).size(26.0).strong());
        ui.label(
            RichText::new(format!(
                "Shares {} record{} ({}). Valid once.",
                q.records,
                if q.records == 1 { "" } else { "s" },
                q.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .color(style::MUTED),
        );
        ui.add_space(8.0);
        let mut save = false;
        let mut print = false;
        let mut done = false;
        ui.horizontal(|ui| {
            let total = 3.0 * 180.0 + 2.0 * 16.0;
            ui.add_space(((ui.available_width() - total) / 2.0).max(0.0));
            save = style::key(ui, "Save PNG", Vec2::new(180.0, 60.0)).clicked();
            ui.add_space(16.0);
            print = style::key(ui, "Print", Vec2::new(180.0, 60.0)).clicked();
            ui.add_space(16.0);
            done = style::primary(ui, "Done", Vec2::new(180.0, 60.0)).clicked();
        });
        if save {
            self.save_result = Some(save_png(env, &q.qr_id, &q.png));
        }
        if print {
            self.save_result = Some(print_png(&q.png));
        }
        match &self.save_result {
            Some(Ok(m)) => {
                ui.label(RichText::new(m).color(style::GOOD));
            }
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD));
            }
            None => {}
        }
        report_ui(ui, &q.report);
        if done {
            self.take_card("Thank you", "Please take your card. The code stays valid on paper or in your photo.", false);
        }
    }
}

/// The most access lines the QR screen shows (then "and N more: ask reception").
const MAX_REPORT_LINES: usize = 4;

/// The heading of the access report under the QR code.
pub const REPORT_HEADING: &str = "Since your last visit";

/// The access report under the QR code: who read the patient's records since their last visit.
fn report_ui(ui: &mut Ui, report: &Option<Result<Vec<String>, String>>) {
    ui.add_space(8.0);
    style::centered(ui, 940.0, |ui| {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(920.0);
            match report {
                None => {
                    ui.horizontal(|ui| {
                        ui.add(egui::Spinner::new());
                        ui.label(RichText::new("Looking up who read your records since your last visit…").size(17.0).color(style::MUTED));
                    });
                }
                Some(Ok(lines)) if lines.is_empty() => {
                    ui.label(RichText::new(format!("{REPORT_HEADING}: no one read your records.")).size(19.0));
                }
                Some(Ok(lines)) => {
                    ui.label(RichText::new(format!("{REPORT_HEADING}:")).size(19.0).strong());
                    for l in lines.iter().take(MAX_REPORT_LINES) {
                        let colour = if l.contains("EMERGENCY ACCESS") { style::BAD } else { style::INK };
                        ui.label(RichText::new(l).size(17.0).color(colour));
                    }
                    if lines.len() > MAX_REPORT_LINES {
                        ui.label(
                            RichText::new(format!("and {} more: ask reception for the full report.", lines.len() - MAX_REPORT_LINES))
                                .size(17.0)
                                .color(style::MUTED),
                        );
                    }
                }
                Some(Err(m)) => {
                    ui.label(RichText::new(format!("{REPORT_HEADING}: {m}.")).size(17.0).color(style::MUTED));
                }
            }
        });
    });
}

/// The card session on a worker thread.
fn check_card(env: &AppContext, pin: &PinBlock) -> Result<Welcome, CardFailure> {
    let opened = env.open().map_err(|e| CardFailure::Refused(format!("The kiosk is not set up correctly ({e}). Please see reception.")))?;
    let now = env.now();
    let outcome = env.source.with_card(|piv| checkin::card_step(piv, &opened.ks, &opened.state, pin, now)).map_err(|e| classify(&e))?;
    let serial = outcome.credential.credential().card_serial;
    let name = opened.state.card(serial).ok().flatten().map(|c| c.name).unwrap_or_default();
    Ok(Welcome { outcome, name })
}

/// The check-in on a worker thread: sign the QR, render it.
fn issue(env: &AppContext, outcome: &CardOutcome) -> Result<ShownQr, String> {
    let opened = env.open().map_err(|e| format!("The kiosk is not set up correctly ({e}). Please see reception."))?;
    let issued = checkin::issue_qr(&opened.ks, &opened.state, &opened.store, outcome, None, env.settings.qr_valid_for, env.now())
        .map_err(|e| format!("{e}. Please see reception."))?;
    let gray =
        qr::render::render_image(&issued.text, 8).map_err(|e| format!("The QR code could not be drawn ({e}). Please see reception."))?;
    let png =
        qr::render::render_png(&issued.text, 8).map_err(|e| format!("The QR code could not be drawn ({e}). Please see reception."))?;
    let size = [gray.width() as usize, gray.height() as usize];
    let image = egui::ColorImage::from_gray(size, gray.as_raw());
    Ok(ShownQr {
        // Built by a job of its own once the code is on screen: a report that cannot be built
        // is said, not a failed check-in.
        report: None,
        patient_id: issued.patient_id.clone(),
        text: Zeroizing::new(issued.text),
        png: Zeroizing::new(png),
        exp: issued.exp,
        qr_id: issued.qr_id,
        categories: issued.categories,
        records: issued.records.len(),
        texture: None,
        image: Some(image),
    })
}

/// Saves the PNG into the export folder as `medcard-checkin-<QR id>.png`, a name the app
/// chooses (the patient types no path), a new file, mode 0600: it carries the records' key.
fn save_png(env: &AppContext, qr_id: &str, png: &[u8]) -> Result<String, String> {
    let id: String = qr_id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    env.export(&format!("medcard-checkin-{id}"), "png", png)
        .map(|p| format!("Saved to {}", p.display()))
        .map_err(|e| format!("The code could not be saved ({e}). Use Print, or please see reception."))
}

/// Sends the PNG to the default printer with CUPS' `lp`.
fn print_png(png: &[u8]) -> Result<String, String> {
    use std::io::Write;
    let child = std::process::Command::new("lp")
        .args(["-t", "MedCard check-in", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => {
            return Err("No printer is set up on this computer (CUPS `lp` not found). Use Save PNG, or ask IT to set up a printer.".into());
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(png);
    }
    match child.wait_with_output() {
        Ok(o) if o.status.success() => Ok("Sent to the printer.".into()),
        Ok(o) => Err(format!(
            "The printer refused the job ({}). Use Save PNG, or ask IT to check the printer.",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("Printing failed ({e}). Use Save PNG.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_pin_says_how_many_tries_are_left_and_zero_means_blocked() {
        let e = reader::Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: 2 }));
        assert_eq!(classify(&e), CardFailure::WrongPin { tries_left: 2 });
        let e = reader::Error::Card(PivError::Card(CardError::WrongSecret { secret: Secret::Pin, tries_left: 0 }));
        assert_eq!(classify(&e), CardFailure::Blocked);
        assert_eq!(classify(&reader::Error::Card(PivError::Card(CardError::PinBlocked))), CardFailure::Blocked);
    }

    #[test]
    fn a_revoked_card_is_sent_to_reception_without_details_of_the_check() {
        let e = reader::Error::Credential(CredentialError::Revoked { serial: 7 });
        let CardFailure::Refused(m) = classify(&e) else { unreachable!() };
        assert!(m.contains("withdrawn") && m.contains("reception"), "{m}");
    }

    #[test]
    fn a_partner_clinics_card_and_an_unproven_pin_are_sent_to_reception() {
        let e = reader::Error::Credential(CredentialError::ForeignIssuer { serial: 7, issuer: "b".into(), clinic: "a".into() });
        let CardFailure::Refused(m) = classify(&e) else { unreachable!() };
        assert!(m.contains("another clinic") && m.contains("reception"), "{m}");
        let e = reader::Error::Credential(CredentialError::PinNotProven { serial: 7 });
        let CardFailure::Refused(m) = classify(&e) else { unreachable!() };
        assert!(m.contains("could not confirm your PIN"), "{m}");
    }

    #[test]
    fn a_staff_card_at_the_kiosk_is_sent_to_reception_as_not_a_patient_card() {
        let CardFailure::Refused(m) = classify(&reader::Error::Credential(CredentialError::StaffCard)) else { unreachable!() };
        assert!(m.contains("staff card, not a patient card"), "{m}");
    }

    #[test]
    fn the_consent_summary_names_what_is_shared_and_what_is_not() {
        let lines = consent_summary(&[Category::Allergies, Category::Labs], 1_800_000_000);
        let all = lines.join("\n");
        assert!(all.contains("your allergies") && all.contains("your test results"), "{all}");
        assert!(all.contains("will not see") && all.contains("your doctors' notes"), "{all}");
        assert!(all.contains("2027"), "{all}");
        assert_eq!(consent_summary(&[], 0), vec!["You have not agreed to share any records.".to_owned()]);
    }
}
