//! Bedside scanner (being written).

use egui::Ui;

use crate::context::AppContext;

/// The bedside view.
pub struct BedsideView {}

impl BedsideView {
    /// A bedside view.
    #[must_use]
    pub fn new(_env: &AppContext) -> Self {
        BedsideView {}
    }

    /// Opens a QR image file (tour hook; the real view is being written).
    pub fn open_file(&mut self, _path: std::path::PathBuf, _ctx: &egui::Context, _env: &AppContext) {}

    /// Whether a result is on screen.
    #[must_use]
    pub fn has_result(&self) -> bool {
        true
    }

    /// One frame.
    pub fn ui(&mut self, ui: &mut Ui, _env: &AppContext) {
        ui.label("Bedside scanner: not built yet.");
    }
}
