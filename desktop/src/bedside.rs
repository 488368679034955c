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

    /// One frame.
    pub fn ui(&mut self, ui: &mut Ui, _env: &AppContext) {
        ui.label("Bedside scanner: not built yet.");
    }
}
