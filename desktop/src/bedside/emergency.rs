//! Emergency access ("break the glass", `docs/desktop.md`): a signed-in clinician opens a
//! patient's emergency data set without the patient's code, with a typed reason. The library
//! ([`reader::emergency::open`]) checks the role and the reason, writes the entry signed by the
//! clinician's card before anything is returned, and refuses on a device without the clinic's
//! record keys (a bedside-only clinic device: the message says where to go). This module only
//! takes the two fields, runs the call on a worker and shows the records under a banner that
//! says it is audited and shown to the patient.

use egui::{Color32, RichText, Ui};

use super::{mono_ui, notes_ui, section_ui};
use crate::context::AppContext;
use crate::document::{self, Rendered};
use crate::held_card::CardSigner;
use crate::jobs::{Job, finished};
use crate::style;

/// The banner over opened emergency records.
pub const BANNER: &str = "EMERGENCY ACCESS — audited and shown to the patient";

/// One opened record.
pub struct Opened {
    /// Its category.
    pub category: String,
    /// Declared media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: usize,
    /// What the view draws.
    pub rendered: Rendered,
}

/// An opened emergency data set.
pub struct EmergencySet {
    /// Whose.
    pub patient_id: String,
    /// Why, as typed.
    pub reason: String,
    /// The records.
    pub records: Vec<Opened>,
}

/// Opens `patient_id`'s emergency data set for `reason` as the clinician behind `signer`
/// (worker thread).
///
/// # Errors
/// The library's refusal (no reason, not a clinician, no record keys here, card gone), as text.
pub fn open(env: &AppContext, mut signer: CardSigner, patient_id: &str, reason: &str) -> Result<EmergencySet, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let records = reader::emergency::open(&o.ks, &o.state, &o.store, &mut signer, patient_id.trim(), reason, env.now())
        .map_err(|e| format!("Emergency access refused: {e}"))?;
    let records = records
        .into_iter()
        .map(|r| Opened {
            category: r.category.as_str().to_owned(),
            size: r.document.len(),
            rendered: document::render(&r.media_type, &r.document),
            media_type: r.media_type,
        })
        .collect();
    Ok(EmergencySet { patient_id: patient_id.trim().to_owned(), reason: reason.trim().to_owned(), records })
}

/// The emergency access panel of the bedside view.
#[derive(Default)]
pub struct EmergencyPanel {
    patient: String,
    reason: String,
    job: Option<Job<Result<EmergencySet, String>>>,
    shown: Option<EmergencySet>,
    note: Option<String>,
}

impl EmergencyPanel {
    /// How many emergency records are on screen.
    #[must_use]
    pub fn records_shown(&self) -> usize {
        self.shown.as_ref().map_or(0, |s| s.records.len())
    }

    /// Whether work is running.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Drops what is on screen and in the fields (the session ended).
    pub fn forget(&mut self) {
        self.patient.clear();
        self.reason.clear();
        self.shown = None;
        self.note = None;
    }

    /// Collects the finished work (every frame).
    pub fn poll(&mut self) {
        match finished(&mut self.job) {
            None => {}
            Some(Ok(Ok(set))) => {
                self.shown = Some(set);
                self.note = None;
            }
            Some(Ok(Err(m)) | Err(m)) => {
                self.shown = None;
                self.note = Some(m);
            }
        }
    }

    /// Starts emergency access for `patient` with `reason` (the button; the tour).
    pub fn start(&mut self, ctx: &egui::Context, env: &AppContext, signer: CardSigner, patient: &str, reason: &str) {
        if self.job.is_some() {
            return;
        }
        self.shown = None;
        self.note = None;
        // The fields show what is being opened (the tour calls this without typing).
        patient.clone_into(&mut self.patient);
        reason.clone_into(&mut self.reason);
        let (env, c, patient, reason) = (env.clone(), ctx.clone(), patient.to_owned(), reason.to_owned());
        self.job =
            Some(Job::spawn("Opening the emergency data set", move || c.request_repaint(), move || open(&env, signer, &patient, &reason)));
    }

    /// Draws the form and what it opened. `signer`: the signed-in clinician.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext, signer: Option<CardSigner>) {
        let open_now = self.shown.is_some() || self.note.is_some() || self.job.is_some();
        egui::CollapsingHeader::new(RichText::new("Emergency access (break the glass)").size(18.0).strong())
            .id_salt("bedside-emergency")
            .default_open(open_now)
            .open(open_now.then_some(true))
            .show(ui, |ui| {
                ui.label(
                    RichText::new(
                        "Opens a patient's emergency data set without their code. Use it only when the patient cannot check in. \
                         Every access is audited, raises an alert for the clinic, and is shown to the patient with your reason.",
                    )
                    .color(style::MUTED),
                );
                ui.horizontal(|ui| {
                    let l = ui.add_sized([170.0, 24.0], egui::Label::new("Patient id"));
                    ui.add(egui::TextEdit::singleline(&mut self.patient).desired_width(200.0)).labelled_by(l.id);
                });
                ui.horizontal(|ui| {
                    let l = ui.add_sized([170.0, 24.0], egui::Label::new("Reason (required)"));
                    ui.add(
                        egui::TextEdit::singleline(&mut self.reason)
                            .char_limit(reader::emergency::MAX_REASON)
                            .desired_width(420.0)
                            .hint_text("why, e.g. unconscious on arrival"),
                    )
                    .labelled_by(l.id);
                });
                let ready = self.job.is_none() && !self.patient.trim().is_empty();
                if ui.add_enabled(ready, egui::Button::new("Open emergency data")).clicked()
                    && let Some(s) = signer
                {
                    let (p, r) = (self.patient.clone(), self.reason.clone());
                    self.start(ui.ctx(), env, s, &p, &r);
                }
                if let Some(j) = &self.job {
                    ui.horizontal(|ui| {
                        ui.add(egui::Spinner::new());
                        ui.label(format!("{}…", j.what()));
                    });
                }
                if let Some(n) = &self.note {
                    ui.label(RichText::new(n).color(style::BAD).size(17.0));
                }
            });
        if let Some(set) = &self.shown {
            shown_ui(ui, set);
        }
    }
}

fn shown_ui(ui: &mut Ui, set: &EmergencySet) {
    egui::Frame::new().fill(style::BAD).corner_radius(8.0).inner_margin(egui::Margin::symmetric(16, 10)).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(BANNER).size(28.0).strong().color(Color32::WHITE));
        ui.label(
            RichText::new(format!("Patient {} · reason: {} · {} record(s)", set.patient_id, set.reason, set.records.len()))
                .size(18.0)
                .color(Color32::WHITE),
        );
    });
    if set.records.is_empty() {
        ui.label(RichText::new("This patient has no records in the emergency categories.").size(18.0));
    }
    for (i, r) in set.records.iter().enumerate() {
        ui.push_id(("emergency-record", i), |ui| {
            ui.label(
                RichText::new(format!("{} · {} · {}", r.category, r.media_type, style::size(r.size as u64)))
                    .size(20.0)
                    .strong()
                    .color(style::ACCENT),
            );
            match &r.rendered {
                Rendered::Fhir { sections, notes, .. } => {
                    sections.iter().for_each(|s| section_ui(ui, s));
                    notes_ui(ui, notes);
                }
                Rendered::Json { pretty, notes } => {
                    notes_ui(ui, notes);
                    mono_ui(ui, pretty);
                }
                Rendered::Text { text, notes } => {
                    notes_ui(ui, notes);
                    ui.label(text);
                }
                Rendered::Binary { note, .. } => {
                    ui.label(note);
                }
            }
            ui.separator();
        });
    }
}
