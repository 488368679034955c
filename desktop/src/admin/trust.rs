//! Admin → Trust list: this clinic (id, issuer kid, the CA fingerprint to read to other
//! clinics), the other clinics whose cards and QR codes it accepts (`<data>/trust/`,
//! `ClinicState::trust_files`), import a certificate, key or signed trust bundle, remove one
//! after a confirmation, and export this clinic's CA certificate or a signed bundle. Import,
//! remove and export are the library's audited calls (`reader::trust::{add_file, import_bundle,
//! remove, export_certificate, export_bundle}`), the same as `medcard trust`: an import shows the
//! other clinic's id and fingerprint and is refused until the fingerprint it read over the phone
//! is typed in; a bundle's partner clinics only with "Also trust the clinics it trusts".

use std::path::{Path, PathBuf};

use egui::{RichText, Ui};

use super::listing::Listing;
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
    /// SHA-256 fingerprint (hex), empty when unusable.
    pub fingerprint: String,
}

/// The Trust list sub-tab.
pub struct TrustTab {
    rows: Listing<Vec<TrustRow>>,
    import_path: String,
    import_fingerprint: String,
    import_clinic_id: String,
    include_partners: bool,
    export_path: String,
    export_partners: bool,
    work: Option<Job<Result<String, String>>>,
    note: Note,
    remove: Option<String>,
}

impl Default for TrustTab {
    fn default() -> Self {
        TrustTab {
            rows: Listing::new("Loading the trust list", load),
            import_path: String::new(),
            import_fingerprint: String::new(),
            import_clinic_id: String::new(),
            include_partners: false,
            export_path: String::new(),
            export_partners: false,
            work: None,
            note: None,
            remove: None,
        }
    }
}

impl TrustTab {
    /// The entries as last loaded (this clinic first).
    #[must_use]
    pub fn listed(&self) -> Option<&[TrustRow]> {
        self.rows.ok().map(Vec::as_slice)
    }

    /// Whether work is running (import, remove, export, loading).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.work.is_some() || self.rows.loading()
    }

    /// Forgets what was loaded and shown (locking): read again when shown.
    pub fn forget(&mut self) {
        self.rows.forget();
        self.note = None;
        self.remove = None;
    }

    /// Collects finished work (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        self.rows.poll();
        match finished(&mut self.work) {
            Some(Ok(r)) => {
                self.note = Some(r);
                self.rows.reload();
            }
            Some(Err(lost)) => self.note = Some(Err(lost)),
            None => {}
        }
    }

    /// Draws the tab (the one shown); its finished work is collected by `poll`, every frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        self.rows.load_if_needed(ui.ctx(), env);
        if self.export_path.is_empty() {
            self.export_path = env.export_dir.join("clinic-ca.pem").display().to_string();
        }
        ui.heading("Trust another clinic");
        ui.label(
            RichText::new(
                "A signed trust bundle, CA certificate (PEM or DER), public key or COSE_Key that the other clinic exported. \
                 Import once to see its clinic id and fingerprint; compare the fingerprint with the one the other clinic \
                 reads to you over the phone, type it in and import again.",
            )
            .color(style::MUTED),
        );
        field(ui, "File to import", &mut self.import_path, false, 480.0);
        field(ui, "Fingerprint", &mut self.import_fingerprint, false, 480.0);
        field(ui, "Clinic id (bare keys only)", &mut self.import_clinic_id, false, 220.0);
        ui.checkbox(&mut self.include_partners, "Also trust the clinics it trusts (bundles)");
        if ui.add_enabled(self.work.is_none(), egui::Button::new("Import")).clicked() {
            let path = PathBuf::from(self.import_path.trim());
            let req = ImportRequest {
                fingerprint: Some(self.import_fingerprint.trim().to_owned()).filter(|f| !f.is_empty()),
                clinic_id: Some(self.import_clinic_id.trim().to_owned()).filter(|c| !c.is_empty()),
                include_partners: self.include_partners,
            };
            if self.import_path.trim().is_empty() {
                self.note = Some(Err("Enter the path of the file to import.".into()));
            } else {
                let env = env.clone();
                self.work = Some(spawn(ui.ctx(), "Importing the trust file", move || import(&env, &path, &req)));
            }
        }
        ui.add_space(12.0);
        ui.separator();
        ui.heading("Export this clinic's certificate");
        ui.label(
            RichText::new(
                "Give this file to other clinics so they can trust this clinic's cards, and read them the fingerprint over the phone.",
            )
            .color(style::MUTED),
        );
        if let Some(own) = self.listed().and_then(|r| r.first()) {
            ui.horizontal(|ui| {
                ui.label("This clinic's fingerprint:");
                ui.label(RichText::new(&own.fingerprint).monospace());
            });
        }
        field(ui, "Export to", &mut self.export_path, false, 480.0);
        ui.horizontal(|ui| {
            if ui.add_enabled(self.work.is_none(), egui::Button::new("Export certificate")).clicked() {
                let path = PathBuf::from(self.export_path.trim());
                let env = env.clone();
                self.work = Some(spawn(ui.ctx(), "Exporting the certificate", move || export(&env, &path, None)));
            }
            if ui.add_enabled(self.work.is_none(), egui::Button::new("Export signed bundle")).clicked() {
                let path = PathBuf::from(self.export_path.trim());
                let env = env.clone();
                let partners = self.export_partners;
                self.work = Some(spawn(ui.ctx(), "Exporting the signed bundle", move || export(&env, &path, Some(partners))));
            }
        });
        ui.checkbox(&mut self.export_partners, "List the clinics this clinic trusts in the bundle");
        ui.add_space(12.0);
        ui.separator();
        ui.horizontal(|ui| {
            ui.heading("Trusted issuers");
            self.rows.refresh_ui(ui);
        });
        let mut ask = None;
        match self.rows.get() {
            None => {}
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD));
            }
            Some(Ok(rows)) => {
                egui::Grid::new("admin-trust").striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
                    for h in ["Entry", "Key id", "", "Issuer", "Fingerprint"] {
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
                        ui.label(RichText::new(&r.fingerprint).monospace().small());
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
                ui.label(
                    RichText::new(format!("Stop trusting {name}? Cards and QR codes of that clinic will be refused.")).color(style::BAD),
                );
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
    let own = reader::trust::own_entry(&o.ks).map_err(|e| e.to_string())?;
    let mut rows = vec![TrustRow {
        name: "(this clinic)".into(),
        issuer: Ok(o.ks.clinic_id().to_owned()),
        kid: hex::encode(o.ks.issuer_kid()),
        fingerprint: own.fingerprint.to_string(),
    }];
    let files = o.state.trust_files().map_err(|e| format!("Could not read the trust list: {e}"))?;
    for (name, bytes) in files {
        let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s).to_owned();
        let row = match reader::trust::entry_from_file(&bytes, None, &name)
            .or_else(|_| reader::trust::entry_from_file(&bytes, Some(&stem), &name))
        {
            Ok(e) => TrustRow { name, issuer: Ok(e.clinic_id), kid: e.kid, fingerprint: e.fingerprint.to_string() },
            Err(e) => TrustRow { name, issuer: Err(e.to_string()), kid: String::new(), fingerprint: String::new() },
        };
        rows.push(row);
    }
    Ok(rows)
}

/// What the operator typed for an import.
struct ImportRequest {
    fingerprint: Option<String>,
    clinic_id: Option<String>,
    include_partners: bool,
}

fn import(env: &AppContext, path: &Path, req: &ImportRequest) -> Result<String, String> {
    let bytes = reader::fsutil::read_limited(path, 1024 * 1024).map_err(|e| format!("Could not read the file: {e}. Check the path."))?;
    let o = env.open().map_err(|e| e.to_string())?;
    let source = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let fp = req.fingerprint.as_deref();
    if reader::trust::looks_like_bundle(&bytes) {
        let r = reader::trust::import_bundle(&o.ks, &o.state, &bytes, fp, req.include_partners, &source, env.now())
            .map_err(|e| format!("Not imported: {e}."))?;
        let names: Vec<String> = r.trusted.iter().map(|t| t.clinic_id.clone()).collect();
        let mut msg = format!("Now trusting {} (signed bundle of clinic {}).", names.join(", "), r.clinic_id);
        if !r.partners_not_imported.is_empty() {
            let left: Vec<&str> = r.partners_not_imported.iter().map(|(c, _)| c.as_str()).collect();
            msg.push_str(&format!(" Not imported (the clinics it trusts; tick \"Also trust\" to add them): {}.", left.join(", ")));
        }
        Ok(msg)
    } else {
        let t = reader::trust::add_file(&o.ks, &o.state, &bytes, req.clinic_id.as_deref(), fp, &source, env.now())
            .map_err(|e| format!("Not imported: {e}."))?;
        Ok(format!("Now trusting {} as {} (key id {}).", t.clinic_id, t.name, t.kid))
    }
}

fn remove(env: &AppContext, name: &str) -> Result<String, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    reader::trust::remove(&o.state, name, env.now()).map_err(|e| format!("Not removed: {e}."))?;
    Ok(format!("{name} is no longer trusted."))
}

/// `bundle`: `None` the CA certificate, `Some(partners)` a signed bundle. Written as a new file
/// outside the data directory (`reader::export::write_new_export`, as every export), then
/// audited by the library.
fn export(env: &AppContext, path: &Path, bundle: Option<bool>) -> Result<String, String> {
    if path.as_os_str().is_empty() {
        return Err("Enter where to save the certificate.".into());
    }
    let o = env.open().map_err(|e| e.to_string())?;
    let what = if bundle.is_some() { "signed trust bundle" } else { "certificate" };
    let data_dir = o.ks.data_dir().to_path_buf();
    // The export folder is made on first use (0700); any other folder must exist.
    if !env.export_dir.as_os_str().is_empty() && path.parent() == Some(env.export_dir.as_path()) {
        reader::export::prepare_dir(&data_dir, &env.export_dir).map_err(|e| format!("Could not save the {what}: {e}."))?;
    }
    let deliver = |bytes: &[u8]| reader::export::write_new_export(&data_dir, path, bytes).map(|_| ());
    let fingerprint = match bundle {
        None => reader::trust::export_certificate(&o.ks, &o.state, env.now(), deliver),
        Some(partners) => reader::trust::export_bundle(&o.ks, &o.state, partners, env.now(), deliver).map(|(fp, _)| fp),
    }
    .map_err(|e| match e {
        reader::trust::TrustError::Deliver(e) => format!("Could not save the {what}: {e}. Choose another file name or folder."),
        other => other.to_string(),
    })?;
    Ok(format!(
        "This clinic's {what} was saved to {}. Read the other clinic this fingerprint over the phone: {fingerprint}",
        path.display()
    ))
}
