//! Admin → Trust list: this clinic (id, issuer kid), the other clinics whose cards and QR codes
//! it accepts (`<data>/trust/`, `ClinicState::trust_files`), import a file
//! (`add_trust_file`, after `qr::trust::parse_trust_file` accepts it), remove one after a
//! confirmation, and export this clinic's CA certificate as PEM (as `medcard trust export`).

use std::path::{Path, PathBuf};

use egui::{RichText, Ui};

use super::{Note, field, note_ui, spawn, working};
use crate::context::AppContext;
use crate::jobs::{Job, finished};
use crate::style;

/// A trusted issuer as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRow {
    /// The entry's name (file name; "(this clinic)" for the clinic itself).
    pub name: String,
    /// The issuer (clinic id), or why the file cannot be used.
    pub issuer: Result<String, String>,
    /// Key id (hex).
    pub kid: String,
}

/// The Trust list sub-tab.
#[derive(Default)]
pub struct TrustTab {
    rows: Option<Result<Vec<TrustRow>, String>>,
    loading: Option<Job<Result<Vec<TrustRow>, String>>>,
    reload: bool,
    import_path: String,
    import_name: String,
    export_path: String,
    work: Option<Job<Result<String, String>>>,
    note: Note,
    remove: Option<String>,
}

impl TrustTab {
    /// The entries as last loaded (this clinic first).
    #[must_use]
    pub fn listed(&self) -> Option<&[TrustRow]> {
        self.rows.as_ref().and_then(|r| r.as_ref().ok()).map(Vec::as_slice)
    }

    /// Whether work is running (import, remove, export, loading).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.work.is_some() || self.loading.is_some()
    }

    /// Forgets what was loaded and shown (locking): read again when shown.
    pub fn forget(&mut self) {
        self.rows = None;
        self.reload = true;
        self.note = None;
        self.remove = None;
    }

    /// Collects finished work (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        if let Some(r) = finished(&mut self.loading) {
            self.rows = Some(r.and_then(|rows| rows));
        }
        match finished(&mut self.work) {
            Some(Ok(r)) => {
                self.note = Some(r);
                self.reload = true;
            }
            Some(Err(lost)) => self.note = Some(Err(lost)),
            None => {}
        }
    }

    /// One frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        self.poll();
        if (self.reload || self.rows.is_none()) && self.loading.is_none() {
            self.reload = false;
            let env2 = env.clone();
            self.loading = Some(spawn(ui.ctx(), "Loading the trust list", move || load(&env2)));
        }
        if self.export_path.is_empty() {
            self.export_path = env.export_dir.join("clinic-ca.pem").display().to_string();
        }
        ui.heading("Trust another clinic");
        ui.label(RichText::new("A CA certificate (PEM or DER), a public key, or a COSE_Key that the other clinic exported.").color(style::MUTED));
        field(ui, "File to import", &mut self.import_path, false, 480.0);
        field(ui, "Name (optional)", &mut self.import_name, false, 220.0);
        if ui.add_enabled(self.work.is_none(), egui::Button::new("Import")).clicked() {
            let path = PathBuf::from(self.import_path.trim());
            let name = if self.import_name.trim().is_empty() {
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            } else {
                self.import_name.trim().to_owned()
            };
            if self.import_path.trim().is_empty() {
                self.note = Some(Err("Enter the path of the file to import.".into()));
            } else {
                let env = env.clone();
                self.work = Some(spawn(ui.ctx(), "Importing the trust file", move || import(&env, &path, &name)));
            }
        }
        ui.add_space(12.0);
        ui.separator();
        ui.heading("Export this clinic's certificate");
        ui.label(RichText::new("Give this file to other clinics so they can trust this clinic's cards.").color(style::MUTED));
        field(ui, "Export to", &mut self.export_path, false, 480.0);
        if ui.add_enabled(self.work.is_none(), egui::Button::new("Export certificate")).clicked() {
            let path = PathBuf::from(self.export_path.trim());
            let env = env.clone();
            self.work = Some(spawn(ui.ctx(), "Exporting the certificate", move || export(&env, &path)));
        }
        ui.add_space(12.0);
        ui.separator();
        ui.horizontal(|ui| {
            ui.heading("Trusted issuers");
            if ui.add_enabled(self.loading.is_none(), egui::Button::new("Refresh")).clicked() {
                self.reload = true;
            }
            if self.loading.is_some() {
                ui.spinner();
            }
        });
        let mut ask = None;
        match &self.rows {
            None => {}
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD));
            }
            Some(Ok(rows)) => {
                egui::Grid::new("admin-trust").striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
                    for h in ["Entry", "Key id", "", "Issuer"] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for (i, r) in rows.iter().enumerate() {
                        ui.label(&r.name);
                        ui.label(RichText::new(&r.kid).monospace());
                        if i == 0 {
                            ui.label(RichText::new("this clinic").color(style::MUTED));
                        } else if ui.add_enabled(self.work.is_none(), egui::Button::new(format!("Remove {}", r.name))).clicked() {
                            ask = Some(r.name.clone());
                        }
                        match &r.issuer {
                            Ok(s) => ui.label(s),
                            Err(m) => ui.label(RichText::new(format!("Unusable: {m}")).color(style::BAD)),
                        };
                        ui.end_row();
                    }
                });
                if rows.len() <= 1 {
                    ui.label(RichText::new("No other clinics are trusted yet.").color(style::MUTED));
                }
            }
        }
        if let Some(n) = ask {
            self.note = None;
            self.remove = Some(n);
        }
        if let Some(name) = self.remove.clone() {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.label(RichText::new(format!("Stop trusting {name}? Cards and QR codes of that clinic will be refused.")).color(style::BAD));
                ui.horizontal(|ui| {
                    if ui.button("Confirm remove").clicked() {
                        self.remove = None;
                        let env = env.clone();
                        self.work = Some(spawn(ui.ctx(), "Removing the trust entry", move || remove(&env, &name)));
                    }
                    if ui.button("Cancel").clicked() {
                        self.remove = None;
                    }
                });
            });
        }
        if let Some(j) = &self.work {
            working(ui, j.what());
        }
        note_ui(ui, &self.note);
    }
}

fn load(env: &AppContext) -> Result<Vec<TrustRow>, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let mut rows =
        vec![TrustRow { name: "(this clinic)".into(), issuer: Ok(o.ks.clinic_id().to_owned()), kid: hex::encode(o.ks.issuer_kid()) }];
    let files = o.state.trust_files().map_err(|e| format!("Could not read the trust list: {e}"))?;
    for (name, bytes) in files {
        let row = match qr::trust::parse_trust_file(&bytes, &name) {
            Ok(entries) => match entries.first() {
                Some(e) => TrustRow { name, issuer: Ok(e.issuer.clone()), kid: hex::encode(&e.kid) },
                None => TrustRow { name, issuer: Err("no key in the file".into()), kid: String::new() },
            },
            Err(e) => TrustRow { name, issuer: Err(e.to_string()), kid: String::new() },
        };
        rows.push(row);
    }
    Ok(rows)
}

fn import(env: &AppContext, path: &Path, name: &str) -> Result<String, String> {
    let bytes = reader::fsutil::read_limited(path, 1024 * 1024).map_err(|e| format!("Could not read the file: {e}. Check the path."))?;
    let entries = qr::trust::parse_trust_file(&bytes, name)
        .map_err(|e| format!("This file is not a certificate or key this clinic can trust ({e}). Nothing was imported."))?;
    let o = env.open().map_err(|e| e.to_string())?;
    o.state.add_trust_file(name, &bytes).map_err(|e| format!("Not imported: {e}."))?;
    let kid = entries.first().map(|e| hex::encode(&e.kid)).unwrap_or_default();
    Ok(format!("Now trusting {name} (key id {kid})."))
}

fn remove(env: &AppContext, name: &str) -> Result<String, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    o.state.remove_trust_file(name).map_err(|e| format!("Not removed: {e}."))?;
    Ok(format!("{name} is no longer trusted."))
}

fn export(env: &AppContext, path: &Path) -> Result<String, String> {
    if path.as_os_str().is_empty() {
        return Err("Enter where to save the certificate.".into());
    }
    let o = env.open().map_err(|e| e.to_string())?;
    let pem = reader::x509::to_pem("CERTIFICATE", o.ks.ca_certificate_der());
    // The export folder is made on first use (0700); any other folder must exist.
    if !env.export_dir.as_os_str().is_empty() && path.parent() == Some(env.export_dir.as_path()) {
        reader::export::prepare_dir(&env.data_dir, &env.export_dir).map_err(|e| format!("Could not save the certificate: {e}."))?;
    }
    // A new file outside the data directory (never over the clinic's keys or database).
    reader::export::write_new_export(&env.data_dir, path, pem.as_bytes())
        .map_err(|e| format!("Could not save the certificate: {e}. Choose another file name or folder."))?;
    Ok(format!("This clinic's certificate was saved to {}.", path.display()))
}
