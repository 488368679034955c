//! The bedside scanner: a clinician scans a patient's check-in QR code (image file, a file
//! dropped on the window, pasted text, or a camera with the `camera` feature) and trusts the
//! result at a glance: a banner (VERIFIED / ISSUER UNKNOWN / INVALID) with the reason and what
//! to do, one line per check with a mark and a word, and the record(s) rendered for reading.
//!
//! Every check is the library's audited bedside scan ([`reader::bedside::Bedside`]), run on a
//! worker thread ([`work`]); the panel is derived from its result by a pure function
//! ([`checks`]). A shown record hides itself after `settings.record_hide` (it can be opened again
//! from the Cached list while the code is valid, and that read is audited too).
//!
//! Once the clinic has staff cards, nothing is read without a clinician's staff sign-in
//! ([`crate::staff_gate`]): the signed-in card signs every entry (`Reader::Staff`), and when the
//! session ends (card pulled, idle, Sign out) the view forgets what it showed. A signed-in
//! clinician can also break the glass ([`emergency`]).

pub mod checks;
pub mod emergency;
pub mod picker;
pub mod work;

use std::path::PathBuf;
use std::time::Instant;

use egui::{Color32, RichText, Ui};
use reader::scan_flow::Verdict;
use reader::staff::Action;
use zeroize::Zeroizing;

use crate::context::{AppContext, countdown};
use crate::document::{Rendered, Section};
use crate::jobs::{Job, Poll};
use crate::staff_gate::{GateEvent, StaffGate};
use crate::style;
use checks::{CheckLine, Mark};
use picker::{Picked, Picker};
use work::{CachedItem, Input, Outcome, Shown};

/// Longest text the "QR text" field takes (a QR code holds at most 4,296 characters).
const MAX_PASTE: usize = 8192;

/// A result on screen.
struct OnScreen {
    outcome: Outcome,
    /// Where it came from ("qr.png", "pasted text", "the cache").
    source: String,
    shown_at: Instant,
    textures: Vec<Option<egui::TextureHandle>>,
    /// The name each record is saved under in the export folder (stem, extension).
    save_names: Vec<(String, String)>,
    save_results: Vec<Option<Result<String, String>>>,
}

type CachedList = Result<(Vec<CachedItem>, usize), String>;

/// The bedside view.
pub struct BedsideView {
    path: String,
    text: Zeroizing<String>,
    picker: Option<Picker>,
    job: Option<(Job<Outcome>, String)>,
    screen: Option<OnScreen>,
    note: Option<String>,
    cached: Vec<CachedItem>,
    cached_job: Option<Job<CachedList>>,
    cached_note: Option<String>,
    cached_stale: bool,
    /// The clinician's staff sign-in (once the clinic has staff cards).
    pub staff: StaffGate,
    /// Emergency access.
    pub emergency: emergency::EmergencyPanel,
    #[cfg(feature = "camera")]
    camera: camera_ui::CameraUi,
}

/// What the bedside says when nothing can be read for want of a sign-in.
pub const SIGN_IN_FIRST: &str =
    "This clinic requires a clinician's staff card to read records: nothing can be scanned or opened until you sign in above.";

impl BedsideView {
    /// A bedside view.
    #[must_use]
    pub fn new(_env: &AppContext) -> Self {
        BedsideView {
            path: String::new(),
            text: Zeroizing::new(String::new()),
            picker: None,
            job: None,
            screen: None,
            note: None,
            cached: Vec::new(),
            cached_job: None,
            cached_note: None,
            cached_stale: true,
            staff: StaffGate::new(Action::ScanAndRead),
            emergency: emergency::EmergencyPanel::default(),
            #[cfg(feature = "camera")]
            camera: camera_ui::CameraUi::default(),
        }
    }

    /// Whether the clinic requires a staff sign-in and there is none: nothing may be read.
    #[must_use]
    pub fn needs_sign_in(&self) -> bool {
        self.staff.required() == Some(true) && self.staff.session().is_none()
    }

    /// Forgets everything shown (the staff session ended): records, emergency records, the
    /// pasted text, the work in flight.
    fn forget(&mut self) {
        self.clear_screen();
        self.job = None;
        self.text = Zeroizing::new(String::new());
        self.emergency.forget();
        self.note = Some("Signed out: what was shown has been cleared.".into());
    }

    /// Verifies the QR code in the image file at `path` (also the tour's hook).
    pub fn open_file(&mut self, path: PathBuf, ctx: &egui::Context, env: &AppContext) {
        self.path = path.display().to_string();
        self.start(Input::File(path), ctx, env);
    }

    /// Whether a finished result is on screen.
    #[must_use]
    pub fn has_result(&self) -> bool {
        self.job.is_none() && self.screen.is_some()
    }

    /// The banner word on screen (VERIFIED, ISSUER UNKNOWN, INVALID), if any.
    #[must_use]
    pub fn verdict(&self) -> Option<&'static str> {
        match &self.screen.as_ref()?.outcome {
            Outcome::Shown(_) => Some("VERIFIED"),
            Outcome::Refused { verdict, .. } => Some(checks::banner(*verdict)),
            Outcome::Problem { .. } | Outcome::DeviceFailed { .. } => None,
        }
    }

    /// How many records are on screen.
    #[must_use]
    pub fn records_shown(&self) -> usize {
        match self.screen.as_ref().map(|s| &s.outcome) {
            Some(Outcome::Shown(s)) => s.records.len(),
            _ => 0,
        }
    }

    /// The cache ids in the Cached list.
    #[must_use]
    pub fn cached_ids(&self) -> Vec<String> {
        self.cached.iter().map(|c| c.id.clone()).collect()
    }

    fn start(&mut self, input: Input, ctx: &egui::Context, env: &AppContext) {
        if self.job.is_some() {
            self.note = Some("Still verifying the previous code; try again in a moment.".into());
            return;
        }
        self.clear_screen();
        if self.needs_sign_in() {
            self.note = Some(SIGN_IN_FIRST.into());
            return;
        }
        self.note = None;
        self.staff.touch(env.now());
        let signer = self.staff.signer();
        let source = input.describe();
        let env = env.clone();
        let c = ctx.clone();
        let job = Job::spawn("Verifying the code", move || c.request_repaint(), move || work::scan(&env, input, signer));
        self.job = Some((job, source));
    }

    fn open_cached(&mut self, id: String, ctx: &egui::Context, env: &AppContext) {
        if self.job.is_some() {
            return;
        }
        self.clear_screen();
        if self.needs_sign_in() {
            self.note = Some(SIGN_IN_FIRST.into());
            return;
        }
        self.note = None;
        self.staff.touch(env.now());
        let signer = self.staff.signer();
        let env = env.clone();
        let c = ctx.clone();
        let job = Job::spawn("Opening the cached record", move || c.request_repaint(), move || work::open_cached(&env, &id, signer));
        self.job = Some((job, "this device's cache".into()));
    }

    fn refresh_cached(&mut self, ctx: &egui::Context, env: &AppContext) {
        if self.cached_job.is_some() {
            return;
        }
        let env = env.clone();
        let c = ctx.clone();
        self.cached_job = Some(Job::spawn("Reading the cache", move || c.request_repaint(), move || work::list_cached(&env)));
        self.cached_stale = false;
    }

    /// Drops the result on screen (documents, pictures, textures).
    fn clear_screen(&mut self) {
        self.screen = None;
    }

    fn poll(&mut self, env: &AppContext) {
        if let Some((job, source)) = &mut self.job {
            let done = match job.poll() {
                Poll::Pending => None,
                Poll::Ready(o) => Some(o),
                Poll::Lost(m) => Some(Outcome::Problem { title: "Something went wrong".into(), message: m }),
            };
            if let Some(outcome) = done {
                if matches!(&outcome, Outcome::Problem { title, .. } if title == work::STAFF_REQUIRED) {
                    self.staff.set_required();
                }
                let n = match &outcome {
                    Outcome::Shown(s) => s.records.len(),
                    _ => 0,
                };
                let save_names = match &outcome {
                    Outcome::Shown(s) => s
                        .records
                        .iter()
                        .map(|r| {
                            let ext = match &r.rendered {
                                Rendered::Binary { extension, .. } => extension,
                                _ => "txt",
                            };
                            (format!("{}{}", reader::export::RECORD_PREFIX, reader::export::record_file_id(&r.cache_id)), ext.to_string())
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                self.screen = Some(OnScreen {
                    outcome,
                    source: std::mem::take(source),
                    shown_at: Instant::now(),
                    textures: vec![None; n],
                    save_names,
                    save_results: vec![None; n],
                });
                self.job = None;
                self.cached_stale = true;
            }
        }
        if let Some(job) = &mut self.cached_job {
            match job.poll() {
                Poll::Pending => {}
                Poll::Ready(Ok((items, purged))) => {
                    self.cached = items;
                    self.cached_note = (purged > 0).then(|| {
                        format!(
                            "{purged} expired or withdrawn record{} removed from this device.",
                            if purged == 1 { " was" } else { "s were" }
                        )
                    });
                    self.cached_job = None;
                }
                Poll::Ready(Err(m)) | Poll::Lost(m) => {
                    self.cached_note = Some(m);
                    self.cached_job = None;
                }
            }
        }
        // Records whose code expired leave the list (the next open would be refused anyway).
        let now = env.now();
        let before = self.cached.len();
        self.cached.retain(|c| c.expires_at > now);
        let gone = before - self.cached.len();
        if gone > 0 {
            self.cached_note =
                Some(format!("{gone} cached record{} expired and {} removed.", plural(gone), if gone == 1 { "was" } else { "were" }));
        }
        // The shown record hides itself.
        if let Some(s) = &self.screen
            && matches!(&s.outcome, Outcome::Shown(x) if !x.records.is_empty())
            && s.shown_at.elapsed() >= env.settings.record_hide
        {
            self.clear_screen();
            self.note = Some(format!(
                "The record was hidden after {} for the patient's privacy. Open it again from the Cached list while the code is valid.",
                countdown(i64::try_from(env.settings.record_hide.as_secs()).unwrap_or(i64::MAX))
            ));
        }
    }

    /// Every frame, shown or not: collects finished scans and cache reads, hides a shown record
    /// when its time is up and drops expired codes from the Cached list, so a record left on
    /// screen behind another view still hides itself on time.
    pub fn logic(&mut self, ctx: &egui::Context, env: &AppContext) {
        if let GateEvent::Ended(_) = self.staff.logic(ctx, env) {
            self.forget();
        }
        self.emergency.poll();
        self.poll(env);
        #[cfg(feature = "camera")]
        if let Some(text) = self.camera.poll(ctx) {
            self.start(Input::Text(text), ctx, env);
        }
        if self.screen.as_ref().is_some_and(|s| matches!(s.outcome, Outcome::Shown(_))) || !self.cached.is_empty() {
            // Countdowns and the hide timer tick without input.
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
    }

    /// Draws the bedside view (only when it is the view shown); [`Self::logic`] has run this frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        let ctx = ui.ctx().clone();
        // The Cached list is read when it is to be seen, not behind a kiosk that never shows it.
        if self.cached_stale && self.job.is_none() {
            self.refresh_cached(&ctx, env);
        }
        if crate::staff_gate::active_input(ui) {
            self.staff.touch(env.now());
        }
        self.take_dropped(&ctx, env);

        egui::Panel::right("bedside-cached").default_size(320.0).min_size(260.0).show(ui, |ui| self.cached_ui(ui, env));
        egui::ScrollArea::vertical().id_salt("bedside-main").auto_shrink([false, false]).show(ui, |ui| {
            style::heading(ui, "Bedside scanner", style::INK);
            if self.staff.required() == Some(true) || self.staff.session().is_some() {
                self.staff.ui(
                    ui,
                    env,
                    "This clinic requires a clinician's staff card to read records. Insert your staff card, choose its reader, enter its PIN and sign in.",
                );
                ui.separator();
            }
            let locked = self.needs_sign_in();
            ui.add_enabled_ui(!locked, |ui| self.inputs_ui(ui, env));
            ui.separator();
            if locked && self.job.is_none() {
                ui.label(RichText::new(SIGN_IN_FIRST).size(18.0).color(style::WARN));
                if let Some(n) = &self.note
                    && n != SIGN_IN_FIRST
                {
                    ui.label(RichText::new(n).color(style::MUTED).size(18.0));
                }
            } else {
                if self.staff.session().is_some_and(|s| s.permits(Action::EmergencyAccess)) {
                    let signer = self.staff.signer();
                    self.emergency.ui(ui, env, signer);
                    ui.separator();
                }
                self.result_ui(ui, env);
            }
        });

        if let Some(p) = &mut self.picker {
            match p.ui(&ctx) {
                Picked::Nothing => {}
                Picked::Closed => self.picker = None,
                Picked::File(path) => {
                    self.picker = None;
                    self.open_file(path, &ctx, env);
                }
            }
        }
    }

    fn take_dropped(&mut self, ctx: &egui::Context, env: &AppContext) {
        if ctx.current_pass_index() > 0 {
            return; // a second layout pass of the same frame sees the same drop
        }
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if let Some(first) = dropped.first() {
            if dropped.len() > 1 {
                self.note = Some("Several files were dropped: only the first one is verified. Drop one image at a time.".into());
            }
            let f = first.clone();
            let path = f.path().to_owned();
            if !path.as_os_str().is_empty() {
                self.path = path.display().to_string();
            }
            let note = self.note.take();
            self.start(Input::Dropped(f), ctx, env);
            if self.note.is_none() {
                self.note = note;
            }
        }
    }

    fn inputs_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        let ctx = ui.ctx().clone();
        let busy = self.job.is_some();
        ui.horizontal(|ui| {
            let l = ui.label("Image file:");
            let edit = ui
                .add(egui::TextEdit::singleline(&mut self.path).desired_width(420.0).hint_text("path to a PNG or JPEG"))
                .labelled_by(l.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.add_enabled(!busy, egui::Button::new("Open")).clicked() || (enter && !busy)) && !self.path.trim().is_empty() {
                let p = PathBuf::from(self.path.trim());
                self.open_file(p, &ctx, env);
            }
            if ui.button("Browse…").clicked() {
                let start = PathBuf::from(self.path.trim());
                let dir = if start.is_dir() {
                    start
                } else {
                    start.parent().filter(|p| p.is_dir()).map(PathBuf::from).unwrap_or_else(|| default_save_dir(env))
                };
                self.picker = Some(Picker::new(&dir));
            }
        });
        let hovering = ui.input(|i| !i.raw.hovered_files.is_empty());
        ui.label(
            RichText::new(if hovering { "Drop the image to verify it" } else { "…or drop an image file of the code on this window." })
                .color(if hovering { style::ACCENT } else { style::MUTED }),
        );
        ui.horizontal(|ui| {
            let l = ui.label("QR text:");
            ui.add(
                egui::TextEdit::multiline(&mut *self.text)
                    .id(qr_text_id())
                    .desired_rows(2)
                    .desired_width(520.0)
                    .char_limit(MAX_PASTE)
                    .hint_text("paste the code's text (MC1:…)"),
            )
            .labelled_by(l.id);
            if ui.add_enabled(!busy, egui::Button::new("Verify text")).clicked() {
                let text = std::mem::replace(&mut self.text, Zeroizing::new(String::new()));
                // The field's undo history holds copies of the text (it carries the records' key).
                if let Some(mut st) = egui::text_edit::TextEditState::load(&ctx, qr_text_id()) {
                    st.clear_undoer();
                    st.store(&ctx, qr_text_id());
                }
                self.start(Input::Text(text), &ctx, env);
            }
        });
        #[cfg(feature = "camera")]
        self.camera.ui(ui);
    }

    fn result_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        if let Some((job, _)) = &self.job {
            ui.horizontal(|ui| {
                ui.add(egui::Spinner::new().size(32.0));
                ui.label(RichText::new(format!("{}…", job.what())).size(22.0));
            });
            return;
        }
        if let Some(n) = &self.note {
            ui.label(RichText::new(n).color(style::MUTED).size(18.0));
        }
        let hide_now = {
            let Some(screen) = &mut self.screen else {
                if self.note.is_none() {
                    ui.label(RichText::new("Open the patient's check-in code to verify it.").color(style::MUTED).size(18.0));
                }
                return;
            };
            ui.label(RichText::new(format!("From {}", screen.source)).small().color(style::MUTED));
            match &screen.outcome {
                Outcome::Problem { title, message } => {
                    ui.label(RichText::new(title).size(26.0).strong().color(style::WARN));
                    ui.label(RichText::new(message).size(18.0));
                    false
                }
                Outcome::Refused { verdict, reason, advice, checks } => {
                    let colour = if *verdict == Verdict::IssuerUnknown { style::WARN } else { style::BAD };
                    banner(ui, checks::banner(*verdict), "Do not use this code's information for care.", colour);
                    ui.label(RichText::new(format!("Reason: {reason}")).size(18.0));
                    ui.label(RichText::new(format!("What to do: {advice}.")).size(18.0).strong());
                    ui.add_space(6.0);
                    checks_ui(ui, checks);
                    false
                }
                Outcome::DeviceFailed { reason, checks } => {
                    banner(ui, "NOT FINISHED", "This device failed before the checks were done.", style::WARN);
                    ui.label(RichText::new(format!("Reason: {reason}")).size(18.0));
                    ui.label(
                        RichText::new(
                            "What to do: nothing is shown. Free disk space or report it to IT, then ask the patient to check in again (the code may have been used up).",
                        )
                        .size(18.0)
                        .strong(),
                    );
                    ui.add_space(6.0);
                    checks_ui(ui, checks);
                    false
                }
                Outcome::Shown(_) => shown_ui(ui, screen, env),
            }
        };
        if hide_now {
            self.clear_screen();
            self.note = Some("Hidden. Open it again from the Cached list while the code is valid.".into());
        }
    }

    fn cached_ui(&mut self, ui: &mut Ui, env: &AppContext) {
        let ctx = ui.ctx().clone();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Cached").size(22.0).strong());
            if ui.add_enabled(self.cached_job.is_none(), egui::Button::new("Refresh")).clicked() {
                self.refresh_cached(&ctx, env);
            }
        });
        ui.label(RichText::new("Records verified on this device, kept until their code expires.").small().color(style::MUTED));
        if self.needs_sign_in() {
            ui.label(RichText::new("Sign in with your staff card to see and open them.").color(style::MUTED));
            return;
        }
        if let Some(n) = &self.cached_note {
            ui.label(RichText::new(n).color(style::WARN));
        }
        if self.cached.is_empty() {
            ui.label(RichText::new("Nothing cached.").color(style::MUTED));
        }
        let now = env.now();
        let mut open = None;
        egui::ScrollArea::vertical().id_salt("bedside-cached-list").show(ui, |ui| {
            for c in &self.cached {
                ui.group(|ui| {
                    ui.label(RichText::new(format!("{} · {}", c.patient_id, c.category.as_deref().unwrap_or("record"))).strong());
                    ui.label(
                        RichText::new(format!(
                            "{} · {} · expires in {}",
                            c.media_type,
                            style::size(c.size as u64),
                            countdown(c.expires_at - now)
                        ))
                        .small()
                        .color(style::MUTED),
                    );
                    if ui.add_enabled(self.job.is_none(), egui::Button::new("Open record")).on_hover_text(&c.id).clicked() {
                        open = Some(c.id.clone());
                    }
                });
            }
        });
        if let Some(id) = open {
            self.open_cached(id, &ctx, env);
        }
    }
}

/// Draws a verified result; returns whether "Hide now" was pressed.
fn shown_ui(ui: &mut Ui, screen: &mut OnScreen, env: &AppContext) -> bool {
    let OnScreen { outcome: Outcome::Shown(shown), shown_at, textures, save_names, save_results, .. } = screen else { return false };
    let shown: &mut Shown = shown;
    let who = format!("Issued by {} for patient {}", shown.issuer, shown.patient_id);
    match shown.cached_at {
        None => banner(ui, "VERIFIED", &who, style::GOOD),
        Some(_) => banner(ui, "VERIFIED (from this device's cache)", &who, style::GOOD),
    }
    ui.label(format!("Shares: {}", shown.categories.join(", ")));
    ui.label(format!("Valid until {}", style::date_time(shown.valid_until)));
    if let Some(t) = shown.cached_at {
        ui.label(
            RichText::new(format!("Verified on this device at {}; every check passed then.", style::date_time(t))).color(style::MUTED),
        );
    }
    if !shown.checks.is_empty() {
        checks_ui(ui, &shown.checks);
    }
    let left = env.settings.record_hide.saturating_sub(shown_at.elapsed());
    // Rounded up: a fresh record reads "hides in 2:00", and 0:00 only when it goes.
    let left = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    let mut hide = false;
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("hides in {}", countdown(i64::try_from(left).unwrap_or(0)))).color(style::MUTED));
        hide = ui.button("Hide now").clicked();
    });
    ui.separator();
    let total = shown.records.len();
    for (i, r) in shown.records.iter_mut().enumerate() {
        ui.push_id(("record", i), |ui| {
            let title = format!(
                "{}{} · {} · {}",
                if total > 1 { format!("Record {} of {total}: ", i + 1) } else { String::new() },
                r.category.as_deref().unwrap_or("record"),
                r.media_type,
                style::size(r.bytes.len() as u64)
            );
            ui.label(RichText::new(title).size(20.0).strong().color(style::ACCENT));
            match &r.rendered {
                Rendered::Fhir { sections, pretty, notes } => {
                    sections.iter().for_each(|s| section_ui(ui, s));
                    notes_ui(ui, notes);
                    egui::CollapsingHeader::new("JSON").id_salt(("json", i)).show(ui, |ui| mono_ui(ui, pretty));
                }
                Rendered::Json { pretty, notes } => {
                    notes_ui(ui, notes);
                    mono_ui(ui, pretty);
                }
                Rendered::Text { text, notes } => {
                    notes_ui(ui, notes);
                    egui::ScrollArea::vertical().id_salt(("text", i)).max_height(360.0).show(ui, |ui| ui.label(text));
                }
                Rendered::Binary { note, .. } => {
                    let has_picture = r.picture.is_some() || textures.get(i).is_some_and(Option::is_some);
                    if has_picture {
                        ui.label(format!("An image, shown below ({}). Save it to keep a copy.", style::size(r.bytes.len() as u64)));
                    } else {
                        ui.label(note);
                    }
                    if let Some(img) = r.picture.take()
                        && let Some(t) = textures.get_mut(i)
                    {
                        *t = Some(ui.ctx().load_texture(format!("bedside-record-{i}"), img, egui::TextureOptions::LINEAR));
                    }
                    if let Some(Some(t)) = textures.get(i) {
                        let max = egui::vec2(ui.available_width().min(720.0), 480.0);
                        ui.add(egui::Image::new(t).max_size(max).alt_text("The record's image"));
                    }
                    if let Some(n) = &r.picture_note {
                        ui.label(RichText::new(n).color(style::WARN));
                    }
                    if let (Some((stem, ext)), Some(result)) = (save_names.get(i), save_results.get_mut(i)) {
                        ui.horizontal(|ui| {
                            if ui.button("Save as…").clicked() {
                                *result = Some(work::save_record(env, stem, ext, &r.bytes));
                            }
                            ui.label(
                                RichText::new(format!("a copy in {} until it leaves the cache", env.export_dir.display()))
                                    .color(style::MUTED),
                            );
                        });
                        match result {
                            Some(Ok(m)) => {
                                ui.label(RichText::new(m.as_str()).color(style::GOOD));
                            }
                            Some(Err(m)) => {
                                ui.label(RichText::new(m.as_str()).color(style::BAD));
                            }
                            None => {}
                        }
                    }
                }
            }
            ui.separator();
        });
    }
    hide
}

fn qr_text_id() -> egui::Id {
    egui::Id::unique("bedside-qr-text")
}

/// The result at a glance: the word on a band of its colour, and one line under it.
fn banner(ui: &mut Ui, word: &str, line: &str, colour: Color32) {
    egui::Frame::new().fill(colour).corner_radius(8.0).inner_margin(egui::Margin::symmetric(16, 10)).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(word).size(34.0).strong().color(Color32::WHITE));
        ui.label(RichText::new(line).size(19.0).color(Color32::WHITE));
    });
}

fn checks_ui(ui: &mut Ui, lines: &[CheckLine]) {
    // Two columns, read down then across, in the library's order.
    let half = lines.len().div_ceil(2);
    let (first, second) = lines.split_at(half.min(lines.len()));
    ui.group(|ui| {
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| check_lines(ui, first));
            ui.add_space(24.0);
            ui.vertical(|ui| check_lines(ui, second));
        });
    });
}

fn check_lines(ui: &mut Ui, lines: &[CheckLine]) {
    for l in lines {
        let colour = mark_colour(l.mark);
        let text = match l.note {
            Some(n) => format!("{}: {} ({n})", l.check.label(), l.mark.word()),
            None => format!("{}: {}", l.check.label(), l.mark.word()),
        };
        let rt = RichText::new(text).size(18.0).color(colour);
        ui.horizontal(|ui| {
            mark_icon(ui, l.mark);
            ui.label(if l.mark == Mark::NotChecked { rt } else { rt.strong() });
        });
    }
}

/// A round mark drawn with the painter (a tick, a cross or a dash: the fonts carry no such
/// symbols), beside the line's word.
fn mark_icon(ui: &mut Ui, m: Mark) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(22.0, 22.0), egui::Sense::hover());
    let p = ui.painter();
    let c = rect.center();
    p.circle_filled(c, 10.0, mark_colour(m));
    let white = egui::Stroke::new(2.5, Color32::WHITE);
    let at = |x: f32, y: f32| c + egui::vec2(x, y);
    match m {
        Mark::Passed => {
            p.add(egui::Shape::line(vec![at(-5.0, 0.0), at(-1.5, 4.0), at(5.0, -4.0)], white));
        }
        Mark::Failed => {
            p.line_segment([at(-4.5, -4.5), at(4.5, 4.5)], white);
            p.line_segment([at(-4.5, 4.5), at(4.5, -4.5)], white);
        }
        Mark::NotChecked => {
            p.line_segment([at(-5.0, 0.0), at(5.0, 0.0)], white);
        }
    }
}

fn mark_colour(m: Mark) -> Color32 {
    match m {
        Mark::Passed => style::GOOD,
        Mark::Failed => style::BAD,
        Mark::NotChecked => style::MUTED,
    }
}

pub(crate) fn section_ui(ui: &mut Ui, s: &Section) {
    ui.label(RichText::new(&s.title).size(18.0).strong());
    if let Some(w) = &s.warning {
        ui.label(RichText::new(format!("Warning: {w}")).size(18.0).strong().color(style::BAD));
    }
    if !s.rows.is_empty() {
        egui::Grid::new(ui.next_auto_id()).num_columns(2).spacing([16.0, 4.0]).show(ui, |ui| {
            for (k, v) in &s.rows {
                ui.label(RichText::new(k).color(style::MUTED));
                ui.label(v);
                ui.end_row();
            }
        });
    }
    ui.add_space(6.0);
}

pub(crate) fn notes_ui(ui: &mut Ui, notes: &[String]) {
    for n in notes {
        ui.label(RichText::new(n).color(style::MUTED));
    }
}

pub(crate) fn mono_ui(ui: &mut Ui, text: &str) {
    egui::ScrollArea::both().max_height(360.0).show(ui, |ui| ui.label(RichText::new(text).monospace()));
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Where Browse… starts: the export folder (where the kiosk's Save PNG lands), else `$HOME`.
fn default_save_dir(env: &AppContext) -> PathBuf {
    Some(env.export_dir.clone())
        .filter(|p| p.is_dir())
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from).filter(|p| p.is_dir()))
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(feature = "camera")]
mod camera_ui {
    //! The camera row (feature `camera`): choose a camera, start, see the preview; a read code
    //! goes through the same scan as an image file.

    use egui::{RichText, Ui};
    use zeroize::Zeroizing;

    use crate::camera::{self, CamEvent, CameraInfo, CameraScan};
    use crate::style;

    #[derive(Default)]
    pub struct CameraUi {
        cameras: Option<Vec<CameraInfo>>,
        chosen: usize,
        scan: Option<CameraScan>,
        preview: Option<egui::TextureHandle>,
        note: Option<String>,
        /// Several codes were in view in a recent frame: how many, as a hint (scanning goes on).
        several: Option<String>,
        start: bool,
    }

    impl CameraUi {
        /// Camera events; the text of a read code, once.
        pub fn poll(&mut self, ctx: &egui::Context) -> Option<Zeroizing<String>> {
            let mut found = None;
            if let Some(s) = &mut self.scan {
                for ev in s.poll() {
                    match ev {
                        CamEvent::Preview(img) => match &mut self.preview {
                            Some(t) => t.set(img, egui::TextureOptions::LINEAR),
                            None => self.preview = Some(ctx.load_texture("bedside-camera", img, egui::TextureOptions::LINEAR)),
                        },
                        CamEvent::Found(t) => found = Some(Zeroizing::new(t)),
                        CamEvent::Several(n) => {
                            self.several = Some(format!("{n} QR codes in view: hold up only the patient's code (cover the others)."));
                        }
                        CamEvent::Failed(m) => self.note = Some(m),
                    }
                }
            }
            if found.is_some() || self.note.is_some() {
                self.scan = None;
                self.preview = None;
                self.several = None;
            }
            if self.start {
                self.start = false;
                if let Some(c) = self.cameras.as_ref().and_then(|c| c.get(self.chosen)) {
                    let c2 = ctx.clone();
                    self.note = None;
                    self.scan = Some(CameraScan::start(&c.path, move || c2.request_repaint()));
                }
            }
            found
        }

        pub fn ui(&mut self, ui: &mut Ui) {
            let cams = self.cameras.get_or_insert_with(camera::cameras);
            ui.horizontal(|ui| {
                ui.label("Camera:");
                if cams.is_empty() {
                    ui.label(RichText::new("no camera found; use an image file or paste the text").color(style::MUTED));
                    return;
                }
                egui::ComboBox::from_id_salt("bedside-camera-choice")
                    .selected_text(cams.get(self.chosen).map_or("", |c| c.name.as_str()))
                    .show_ui(ui, |ui| {
                        for (i, c) in cams.iter().enumerate() {
                            ui.selectable_value(&mut self.chosen, i, &c.name);
                        }
                    });
                if self.scan.is_some() {
                    if ui.button("Stop camera").clicked() {
                        self.scan = None;
                        self.preview = None;
                        self.several = None;
                    }
                } else if ui.button("Scan with camera").clicked() {
                    self.start = true;
                }
            });
            if let Some(t) = &self.preview {
                ui.add(egui::Image::new(t).max_size(egui::vec2(480.0, 270.0)).alt_text("Camera preview"));
                ui.label(RichText::new("Hold the code steady in front of the camera.").color(style::MUTED));
                if let Some(s) = &self.several {
                    ui.label(RichText::new(s).color(style::WARN));
                }
            }
            if let Some(n) = &self.note {
                ui.label(RichText::new(n).color(style::WARN));
            }
        }
    }
}
