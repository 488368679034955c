//! The clinic admin view, for the clinic's IT: behind an administrator's staff card once the clinic
//! has staff cards ([`crate::staff_gate`]; the shared PIN then opens nothing, `docs/desktop.md`),
//! else behind the clinic admin PIN ([`crate::admin_pin`]),
//! four sub-tabs: **Cards** (issue on the selected reader, list, revoke), **Records** (add a
//! record for a patient, list), **Trust list** (this clinic, imported clinics, import, remove,
//! export) and **Audit log** (table with filters, Verify log, alerts).
//!
//! Every check and every change is a `reader` library call run in a [`Job`]; this module decides
//! what to show. The view locks itself with the Lock button and after [`AUTO_LOCK`] without a
//! touch; locking clears the PINs and PUKs typed into the forms. Unlock attempts are audited
//! (`admin.unlock`: ok / wrong-pin); after three wrong admin PINs each try waits longer.

pub mod audit;
pub mod cards;
mod listing;
pub mod records;
pub mod trust;

use std::time::Duration;

use egui::{RichText, Ui};
use reader::audit::{EventKind, Outcome};
use zeroize::Zeroizing;

use crate::admin_pin::{self, AdminPinError, Throttle};
use crate::context::{AppContext, Opened};
use crate::jobs::{Job, Poll};
use crate::staff_gate::{EndReason, GateEvent, StaffGate};
use crate::style;

/// The view locks itself after this long without a touch.
pub const AUTO_LOCK: Duration = Duration::from_secs(5 * 60);

/// A result line under a form: `Ok` in green, `Err` in red.
pub type Note = Option<Result<String, String>>;

/// An empty buffer for a typed secret, with room enough that typing never reallocates it (a
/// reallocation would leave a copy of the digits behind, unzeroized).
pub(crate) fn secret_buffer() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(64))
}

/// Starts `work` in a [`Job`] that repaints the UI when it is done.
pub(crate) fn spawn<T: Send + 'static>(ctx: &egui::Context, what: &str, work: impl FnOnce() -> T + Send + 'static) -> Job<T> {
    let c = ctx.clone();
    Job::spawn(what, move || c.request_repaint(), work)
}

/// Shows a result line.
pub(crate) fn note_ui(ui: &mut Ui, note: &Note) {
    match note {
        Some(Ok(m)) => {
            ui.label(RichText::new(m).color(style::GOOD));
        }
        Some(Err(m)) => {
            ui.label(RichText::new(m).color(style::BAD));
        }
        None => {}
    }
}

/// A labelled one-line text field (the label names it for screen readers and tests).
pub(crate) fn field(ui: &mut Ui, label: &str, value: &mut String, secret: bool, width: f32) -> egui::Response {
    ui.horizontal(|ui| {
        let l = ui.add_sized([170.0, 24.0], egui::Label::new(label));
        let edit = egui::TextEdit::singleline(value).password(secret).desired_width(width);
        // Secrets stay within their buffer's capacity (see `secret_buffer`).
        let edit = if secret { edit.char_limit(32) } else { edit };
        ui.add(edit).labelled_by(l.id)
    })
    .inner
}

/// A labelled text field as wide as its label (filter rows).
pub(crate) fn inline_field(ui: &mut Ui, label: &str, value: &mut String, width: f32) -> egui::Response {
    let l = ui.label(label);
    ui.add(egui::TextEdit::singleline(value).desired_width(width)).labelled_by(l.id)
}

/// A small spinner with what is happening (inside a tab).
pub(crate) fn working(ui: &mut Ui, what: &str) {
    ui.horizontal(|ui| {
        ui.add(egui::Spinner::new());
        ui.label(RichText::new(format!("{what}…")).color(style::MUTED));
    });
}

/// Admin sub-tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Issue, list and revoke cards.
    Cards,
    /// Add and list records.
    Records,
    /// Trusted issuers.
    Trust,
    /// The audit log, its verification and alerts.
    Audit,
}

impl Tab {
    fn label(self) -> &'static str {
        match self {
            Tab::Cards => "Cards",
            Tab::Records => "Records",
            Tab::Trust => "Trust list",
            Tab::Audit => "Audit log",
        }
    }
}

/// The outcome of an unlock attempt (from the worker).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Right,
    /// Wrong; what the audit log says of the run of wrong PINs (None: the log could not be read).
    Wrong(Option<admin_pin::LogThrottle>),
    /// Not checked: the audit log says the wait after wrong PINs is not over (e.g. the app was
    /// restarted to get around it).
    Wait(admin_pin::LogThrottle),
    /// No PIN, a damaged file, or the attempt could not be audited: stay locked.
    Refused(String),
}

enum Lock {
    Locked,
    Checking(Job<Attempt>),
    Unlocked,
}

/// The admin view.
pub struct AdminView {
    lock: Lock,
    pin: Zeroizing<String>,
    throttle: Throttle,
    lock_note: Option<String>,
    last_touch: f64,
    clock: f64,
    /// Idle time before the view locks itself (default [`AUTO_LOCK`]).
    pub auto_lock: Duration,
    tab: Tab,
    /// Cards sub-tab.
    pub cards: cards::CardsTab,
    /// Records sub-tab.
    pub records: records::RecordsTab,
    /// Trust list sub-tab.
    pub trust: trust::TrustTab,
    /// Audit log sub-tab.
    pub audit: audit::AuditTab,
    /// The administrator's staff sign-in, which replaces the admin PIN once the clinic has
    /// staff cards.
    pub staff: StaffGate,
}

impl AdminView {
    /// An admin view (locked).
    #[must_use]
    pub fn new(env: &AppContext) -> Self {
        AdminView {
            lock: Lock::Locked,
            pin: secret_buffer(),
            throttle: Throttle::default(),
            lock_note: None,
            last_touch: 0.0,
            clock: 0.0,
            auto_lock: AUTO_LOCK,
            tab: Tab::Cards,
            cards: cards::CardsTab::new(env),
            records: records::RecordsTab::default(),
            trust: trust::TrustTab::default(),
            audit: audit::AuditTab::default(),
            staff: StaffGate::new(reader::staff::Action::Administer),
        }
    }

    /// Whether the view is unlocked.
    #[must_use]
    pub fn is_unlocked(&self) -> bool {
        matches!(self.lock, Lock::Unlocked)
    }

    /// Whether an unlock attempt is being checked.
    #[must_use]
    pub fn is_checking(&self) -> bool {
        matches!(self.lock, Lock::Checking(_))
    }

    /// Seconds before another unlock attempt is allowed, on the UI clock of the last frame.
    #[must_use]
    pub fn unlock_wait_left(&self) -> f64 {
        self.throttle.wait_left(self.clock)
    }

    /// The sub-tab shown.
    #[must_use]
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// Checks `pin` as the admin PIN in a [`Job`] (the Unlock button; the demo tour). Ignored while
    /// an attempt is being checked or the wait after wrong PINs is not over.
    pub fn submit_pin(&mut self, ctx: &egui::Context, env: &AppContext, pin: Zeroizing<String>) {
        if matches!(self.lock, Lock::Checking(_)) || self.throttle.wait_left(self.clock) > 0.0 {
            return;
        }
        let env = env.clone();
        self.lock_note = None;
        self.lock = Lock::Checking(spawn(ctx, "Checking the admin PIN", move || check_admin_pin(&env, &pin)));
    }

    /// Shows sub-tab `t`.
    pub fn show_tab(&mut self, t: Tab) {
        self.tab = t;
    }

    /// Whether any sub-tab has work running.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.cards.busy() || self.records.busy() || self.trust.busy() || self.audit.busy()
    }

    /// Locks the view and clears every secret typed into it; a staff session ends.
    pub fn lock(&mut self) {
        self.staff.end(EndReason::SignedOut);
        self.lock = Lock::Locked;
        self.pin = secret_buffer();
        self.cards.clear_secrets();
        self.cards.forget();
        self.records.forget();
        self.trust.forget();
        self.audit.forget();
    }

    /// Every frame, shown or not: collects the unlock check and every sub-tab's finished work,
    /// and runs the idle lock, so an unlocked admin view left behind another view locks itself
    /// (and forgets the typed PINs) on time instead of when it is next shown.
    pub fn logic(&mut self, ctx: &egui::Context, env: &AppContext) {
        let now = ctx.input(|i| i.time);
        self.clock = now;
        match self.staff.logic(ctx, env) {
            GateEvent::SignedIn => {
                self.lock_note = None;
                self.last_touch = now;
                self.lock = Lock::Unlocked;
            }
            GateEvent::Ended(why) => {
                self.lock();
                self.lock_note = Some(match why {
                    EndReason::CardRemoved => "Locked: the staff card was taken out.".to_owned(),
                    EndReason::Idle => "Locked after the idle time.".to_owned(),
                    EndReason::SignedOut => "Locked.".to_owned(),
                });
            }
            GateEvent::Nothing => {}
        }
        self.poll_unlock(now);
        self.cards.poll();
        self.records.poll();
        self.trust.poll();
        self.audit.poll();
        if self.busy() {
            // Waiting for work the admin started is not being idle.
            self.last_touch = now;
        }
        if self.is_unlocked() {
            if now - self.last_touch > self.auto_lock.as_secs_f64() {
                self.lock();
                self.lock_note = Some("Locked after a few idle minutes. Enter the admin PIN to continue.".into());
            } else {
                ctx.request_repaint_after(Duration::from_secs(5));
            }
        }
    }

    /// Draws the admin view (only when it is the view shown); [`Self::logic`] has run this frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        // Input counts from here on: after the idle lock in `logic`, so the click that brings the
        // admin view back after a long time elsewhere does not keep it unlocked; and only input
        // on the admin's own screen is the admin at work.
        if ui.input(|i| !i.events.is_empty() || i.pointer.any_down()) {
            self.last_touch = self.clock;
        }
        if crate::staff_gate::active_input(ui) {
            self.staff.touch(env.now());
        }
        // Work done in a staff session names the administrator beside the device user, as
        // `<user> as staff:<id>#<serial>`: not in the card's own name (`staff:` after a `/`),
        // which only entries signed by the card may carry (docs/staff.md, "Signed entries").
        let staff_env;
        let env = match self.staff.session() {
            Some(s) => {
                staff_env = AppContext { actor: format!("{} as {}", env.actor, s.actor()), ..env.clone() };
                &staff_env
            }
            None => env,
        };
        match self.lock {
            Lock::Unlocked => self.unlocked_ui(ui, env),
            _ => self.locked_ui(ui, env, self.clock),
        }
    }

    fn poll_unlock(&mut self, now: f64) {
        let Lock::Checking(job) = &mut self.lock else { return };
        let r = match job.poll() {
            Poll::Pending => return,
            Poll::Ready(a) => a,
            Poll::Lost(m) => Attempt::Refused(m),
        };
        match r {
            Attempt::Right => {
                self.throttle.succeeded();
                self.lock_note = None;
                self.last_touch = now;
                self.lock = Lock::Unlocked;
            }
            Attempt::Wrong(from_log) => {
                match from_log {
                    // The log counts this attempt too (else it could not be written: count here).
                    #[allow(clippy::cast_precision_loss)]
                    Some(l) if l.failures > self.throttle.failures() => self.throttle.resume(l.failures, l.wait_left as f64, now),
                    _ => self.throttle.failed(now),
                }
                let wait = self.throttle.wait_left(now);
                self.lock_note = Some(if wait > 0.0 {
                    format!("Wrong admin PIN. Too many wrong tries: wait {wait:.0} seconds before the next one.")
                } else {
                    "Wrong admin PIN. Try again.".to_owned()
                });
                self.lock = Lock::Locked;
            }
            Attempt::Wait(l) => {
                #[allow(clippy::cast_precision_loss)]
                self.throttle.resume(l.failures, l.wait_left as f64, now);
                self.lock_note = Some(format!(
                    "Too many wrong tries ({} in a row, in the audit log): wait {} seconds before the next one.",
                    l.failures, l.wait_left
                ));
                self.lock = Lock::Locked;
            }
            Attempt::Refused(m) => {
                self.lock_note = Some(m);
                self.lock = Lock::Locked;
            }
        }
    }

    fn locked_ui(&mut self, ui: &mut Ui, env: &AppContext, now: f64) {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            style::heading(ui, "Admin is locked", style::INK);
            ui.add_space(8.0);
            if self.staff.required() == Some(true) {
                // A shared PIN identifies nobody: once the clinic has staff cards, only an
                // administrator's own card opens the view.
                ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                    ui.set_max_width(820.0);
                    self.staff.ui(
                        ui,
                        env,
                        "This clinic has staff cards: the admin view opens with an administrator's staff card and its PIN. The shared admin PIN is no longer used.",
                    );
                    if let Some(n) = &self.lock_note {
                        ui.label(RichText::new(n).color(style::MUTED));
                    }
                });
                return;
            }
            if !admin_pin::is_set(&env.data_dir) {
                style::big_text(ui, "No admin PIN is set for this clinic, so the admin view stays locked.");
                ui.label("Set one on this computer with:");
                ui.label(
                    RichText::new(format!("medcard-desktop --set-admin-pin --data {}", env.data_dir.display()))
                        .monospace()
                        .color(style::ACCENT),
                );
                return;
            }
            ui.label("Enter the clinic admin PIN to manage cards, records, trusted clinics and the audit log.");
            ui.add_space(8.0);
            let checking = matches!(self.lock, Lock::Checking(_));
            let wait = self.throttle.wait_left(now);
            let l = ui.label(RichText::new("Admin PIN").strong());
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut *self.pin)
                        .password(true)
                        .char_limit(32)
                        .desired_width(240.0)
                        .align(egui::Align2::CENTER_CENTER),
                )
                .labelled_by(l.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let ready = !checking && wait <= 0.0 && !self.pin.is_empty();
            let clicked = ui.add_enabled(ready, egui::Button::new(RichText::new("Unlock").size(20.0))).clicked();
            if ready && (clicked || enter) {
                let pin = std::mem::replace(&mut self.pin, secret_buffer());
                self.submit_pin(ui.ctx(), env, pin);
            }
            if let Lock::Checking(j) = &self.lock {
                working(ui, j.what());
            }
            if let Some(n) = &self.lock_note {
                ui.label(RichText::new(n).color(style::BAD));
            }
            if wait > 0.0 {
                ui.label(RichText::new(format!("Wait {wait:.0} s before trying again.")).color(style::WARN));
                ui.ctx().request_repaint_after(Duration::from_millis(500));
            }
        });
    }

    fn unlocked_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        if self.staff.session().is_some() {
            self.staff.ui(ui, env, "");
        }
        ui.horizontal(|ui| {
            for t in [Tab::Cards, Tab::Records, Tab::Trust, Tab::Audit] {
                if ui.selectable_label(self.tab == t, RichText::new(t.label()).size(18.0)).clicked() {
                    self.tab = t;
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Lock").on_hover_text("Lock the admin view now").clicked() {
                    self.lock();
                    self.lock_note = Some("Locked.".into());
                }
            });
        });
        ui.separator();
        if !self.is_unlocked() {
            return;
        }
        egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| match self.tab {
            Tab::Cards => self.cards.ui(ui, env),
            Tab::Records => self.records.ui(ui, env),
            Tab::Trust => self.trust.ui(ui, env),
            Tab::Audit => self.audit.ui(ui, env),
        });
    }
}

/// The unlock check on a worker thread: the slow hash, then the audit entry. An attempt that
/// cannot be audited does not unlock (fail closed).
/// The `admin.unlock` attempts of the hour before `now` in the audit log, as `(time, right)`.
fn unlock_attempts(o: &Opened, now: i64) -> Result<Vec<(i64, bool)>, String> {
    let db = o.state.db().map_err(|e| e.to_string())?;
    let entries = reader::audit::entries(&db, 0, Some(now.saturating_sub(3600))).map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .filter(|e| e.kind() == Some(EventKind::AdminUnlock))
        .map(|e| (e.time, e.outcome() == Some(Outcome::Ok)))
        .collect())
}

fn check_admin_pin(env: &AppContext, pin: &str) -> Attempt {
    let now = env.now();
    let opened = env.open().map_err(|e| e.to_string());
    // The wait after wrong PINs survives a restart: the audit log is the record of attempts.
    let attempts = opened.as_ref().ok().and_then(|o| unlock_attempts(o, now).ok());
    if let Some(a) = &attempts {
        let l = admin_pin::from_log(a, now);
        if l.wait_left > 0 {
            return Attempt::Wait(l);
        }
    }
    // Once the clinic has staff cards the shared PIN opens nothing (fail closed: unknown is no).
    match opened.as_ref().map(|o| o.state.staff_required()) {
        Ok(Ok(false)) => {}
        Ok(Ok(true)) => {
            return Attempt::Refused(
                "This clinic has staff cards: the admin view opens with an administrator's staff card and its PIN, not the shared admin PIN."
                    .into(),
            );
        }
        Ok(Err(e)) => {
            return Attempt::Refused(format!("Whether this clinic requires staff cards could not be read ({e}); the view stays locked."));
        }
        Err(e) => return Attempt::Refused(format!("The clinic could not be opened ({e}); the view stays locked.")),
    }
    let right = match admin_pin::verify(&env.data_dir, pin) {
        Ok(r) => r,
        Err(e @ AdminPinError::NotSet { .. }) => return Attempt::Refused(e.to_string()),
        Err(e) => return Attempt::Refused(format!("The admin PIN cannot be checked: {e}")),
    };
    let outcome = if right { Outcome::Ok } else { Outcome::WrongPin };
    let audited = opened.and_then(|o| {
        let ev = o.state.event(now, EventKind::AdminUnlock, "admin-view", outcome, String::new());
        o.state.audit(&[ev]).map_err(|e| e.to_string())
    });
    match (right, audited) {
        (true, Ok(())) => Attempt::Right,
        (true, Err(e)) => Attempt::Refused(format!("The unlock could not be written to the audit log ({e}), so the view stays locked.")),
        // The log now holds this attempt too: the attempts read above plus this one.
        (false, Ok(())) => Attempt::Wrong(attempts.map(|mut a| {
            a.push((now, false));
            admin_pin::from_log(&a, now)
        })),
        (false, Err(_)) => Attempt::Wrong(None),
    }
}
