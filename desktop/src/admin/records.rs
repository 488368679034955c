//! Admin → Records: add a record for a patient from a file (`reader::records::add_record_file_in`:
//! sealed, stored, indexed and audited in one library call, the media type guessed from the
//! extension by `reader::records::media_type_for`) and list the records the clinic holds
//! (`ClinicDb::records`).

use std::path::{Path, PathBuf};

use egui::{RichText, Ui};
use reader::category::Category;
use reader::db::RecordRow;
use reader::records::{NewRecord, add_record_file_in, media_type_for};

use super::listing::Listing;
use super::{Note, field, note_ui, spawn, working};
use crate::context::AppContext;
use crate::jobs::{Job, finished};
use crate::style;

/// Largest document the view adds (the store takes more; a form upload should not).
pub const MAX_DOCUMENT: u64 = 64 * 1024 * 1024;

/// The Records sub-tab.
pub struct RecordsTab {
    patient_id: String,
    category: Category,
    file: String,
    adding: Option<Job<Result<String, String>>>,
    note: Note,
    rows: Listing<Vec<RecordRow>>,
}

impl Default for RecordsTab {
    fn default() -> Self {
        RecordsTab {
            patient_id: String::new(),
            category: Category::Summary,
            file: String::new(),
            adding: None,
            note: None,
            rows: Listing::new("Loading the records", load),
        }
    }
}

impl RecordsTab {
    /// The records as last loaded.
    #[must_use]
    pub fn listed(&self) -> Option<&[RecordRow]> {
        self.rows.ok().map(Vec::as_slice)
    }

    /// Whether work is running (adding, loading).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.adding.is_some() || self.rows.loading()
    }

    /// Forgets what was loaded and shown (locking): read again when shown.
    pub fn forget(&mut self) {
        self.rows.forget();
        self.note = None;
    }

    /// Collects finished work (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        match finished(&mut self.adding) {
            Some(Ok(r)) => {
                self.note = Some(r);
                self.rows.reload();
            }
            Some(Err(lost)) => self.note = Some(Err(lost)),
            None => {}
        }
        self.rows.poll();
    }

    /// Draws the tab (the one shown); its finished work is collected by `poll`, every frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        self.rows.load_if_needed(ui.ctx(), env);
        ui.heading("Add a record");
        field(ui, "Patient id", &mut self.patient_id, false, 220.0);
        ui.horizontal(|ui| {
            ui.add_sized([170.0, 24.0], egui::Label::new("Category"));
            egui::ComboBox::from_id_salt("admin-record-category").selected_text(self.category.as_str()).show_ui(ui, |ui| {
                for c in Category::ALL {
                    ui.selectable_value(&mut self.category, c, c.as_str());
                }
            });
        });
        field(ui, "File", &mut self.file, false, 480.0);
        let path = PathBuf::from(self.file.trim());
        if !self.file.trim().is_empty() {
            ui.label(RichText::new(format!("Media type: {}", media_type_for(&path))).color(style::MUTED));
        }
        if let Some(j) = &self.adding {
            working(ui, j.what());
        } else if ui.button("Add record").clicked() {
            let patient = self.patient_id.trim().to_owned();
            if patient.is_empty() {
                self.note = Some(Err("Enter the patient id.".into()));
            } else if self.file.trim().is_empty() {
                self.note = Some(Err("Enter the path of the file to add.".into()));
            } else {
                let env = env.clone();
                let category = self.category;
                self.note = None;
                self.adding = Some(spawn(ui.ctx(), "Adding the record", move || add_file(&env, &patient, category, &path)));
            }
        }
        note_ui(ui, &self.note);
        ui.add_space(12.0);
        ui.separator();
        ui.horizontal(|ui| {
            ui.heading("Records");
            self.rows.refresh_ui(ui);
        });
        match self.rows.get() {
            None => {}
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD));
            }
            Some(Ok(rows)) if rows.is_empty() => {
                ui.label(RichText::new("No records yet.").color(style::MUTED));
            }
            Some(Ok(rows)) => {
                egui::Grid::new("admin-records").striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
                    for h in ["Record", "Patient", "Category", "Media type", "Size", "Added", "By"] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for r in rows.iter().rev() {
                        ui.label(RichText::new(r.meta.record_id.get(..12).unwrap_or(&r.meta.record_id)).monospace())
                            .on_hover_text(&r.meta.record_id);
                        ui.label(&r.meta.patient_id);
                        ui.label(r.meta.category.as_str());
                        ui.label(&r.meta.media_type);
                        ui.label(crate::style::size(r.size));
                        ui.label(style::date_time(r.meta.created));
                        ui.label(&r.meta.author);
                        ui.end_row();
                    }
                });
            }
        }
    }
}

fn add_file(env: &AppContext, patient: &str, category: Category, path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("Could not read the file: {e}. Check the path."))?.len();
    if len > MAX_DOCUMENT {
        return Err(format!(
            "The file is {}; the admin view adds files up to {}.",
            crate::style::size(len),
            crate::style::size(MAX_DOCUMENT)
        ));
    }
    let o = env.open().map_err(|e| e.to_string())?;
    let media_type = media_type_for(path);
    let new = NewRecord { patient_id: patient.to_owned(), category, media_type: media_type.to_owned(), author: env.actor.clone() };
    let added =
        add_record_file_in(&o.ks, &o.state, &o.store, &new, path, env.now()).map_err(|e| format!("The record was not added: {e}."))?;
    Ok(format!("Record {} added for {patient} ({category}, {media_type}).", added.meta.record_id))
}

fn load(env: &AppContext) -> Result<Vec<RecordRow>, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    o.state.records(None).map_err(|e| format!("Could not read the records: {e}"))
}
