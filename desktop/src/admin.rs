//! Clinic admin (being written).

use egui::Ui;

use crate::context::AppContext;

/// The admin view.
pub struct AdminView {}

impl AdminView {
    /// An admin view.
    #[must_use]
    pub fn new(_env: &AppContext) -> Self {
        AdminView {}
    }

    /// One frame.
    pub fn ui(&mut self, ui: &mut Ui, _env: &AppContext) {
        ui.label("Admin: not built yet.");
    }
}
