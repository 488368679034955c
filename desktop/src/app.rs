//! The window: a top bar to switch between the three views (unless the app was started locked
//! to one, as a kiosk is), and the view itself.

use std::time::Instant;

use egui::{RichText, Ui};

use crate::admin::AdminView;
use crate::bedside::BedsideView;
use crate::context::AppContext;
use crate::kiosk::KioskView;
use crate::mode::ModeWatch;
use crate::style;

/// Which view is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// Reception kiosk (patients).
    Kiosk,
    /// Bedside scanner (clinicians).
    Bedside,
    /// Clinic admin (IT: an administrator's staff card, or the admin PIN in a clinic without staff cards).
    Admin,
}

impl View {
    fn label(self) -> &'static str {
        match self {
            View::Kiosk => "Kiosk",
            View::Bedside => "Bedside",
            View::Admin => "Admin",
        }
    }
}

/// The MedCard desktop app.
pub struct MedcardApp {
    /// The environment (data directory, reader, settings).
    pub env: AppContext,
    /// The view on screen.
    pub view: View,
    /// Only this view (no tabs): `--kiosk` and friends.
    pub locked: bool,
    /// Reception kiosk.
    pub kiosk: KioskView,
    /// Bedside scanner.
    pub bedside: BedsideView,
    /// Clinic admin.
    pub admin: AdminView,
    /// A line under the title in demo mode (PIN of the demo card, ...).
    pub banner: Option<String>,
    /// Single-device or clinic device, and the clinic database's health.
    pub mode: ModeWatch,
    started: Instant,
    first_frame: Option<f64>,
}

impl MedcardApp {
    /// The app on `env`, showing `view`; `wake` repaints the window from other threads.
    pub fn new(env: AppContext, view: View, wake: impl Fn() + Clone + Send + 'static) -> Self {
        let kiosk = KioskView::new(env.source.clone(), wake.clone());
        let bedside = BedsideView::new(&env);
        let admin = AdminView::new(&env);
        let mode = ModeWatch::new(&env.data_dir);
        MedcardApp { env, view, locked: false, kiosk, bedside, admin, banner: None, mode, started: Instant::now(), first_frame: None }
    }

    /// Counts start-up from `t` (process start) instead of construction.
    pub fn started_at(&mut self, t: Instant) {
        self.started = t;
    }

    /// Milliseconds from start to the first frame, once drawn.
    #[must_use]
    pub fn first_frame_ms(&self) -> Option<f64> {
        self.first_frame
    }

    /// Every view's background work (card watching, finished jobs, timers), whichever view is
    /// shown: a view behind another keeps following its card and its clock. Draws nothing; run
    /// it before [`Self::ui`] every frame (eframe does, through [`eframe::App::logic`]).
    pub fn logic(&mut self, ctx: &egui::Context) {
        self.kiosk.logic(ctx, &self.env);
        self.bedside.logic(ctx, &self.env);
        self.admin.logic(ctx, &self.env);
        self.mode.logic(ctx);
    }

    /// Draws the top bar and the view shown.
    pub fn ui(&mut self, ui: &mut Ui) {
        if self.first_frame.is_none() {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            self.first_frame = Some(ms);
            eprintln!("medcard-desktop: first frame after {ms:.0} ms");
        }
        egui::Panel::top("top-bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new("MedCard").size(22.0).strong().color(style::ACCENT));
                ui.label(RichText::new(self.env.data_dir.display().to_string()).small().color(style::MUTED))
                    .on_hover_text("Clinic data directory");
                if !self.locked {
                    ui.add_space(24.0);
                    for v in [View::Kiosk, View::Bedside, View::Admin] {
                        if ui.selectable_label(self.view == v, RichText::new(v.label()).size(18.0)).clicked() {
                            self.view = v;
                        }
                    }
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.label(RichText::new(format!("Reader: {}", self.env.source.name())).small().color(style::MUTED));
                });
            });
            if let Some(b) = &self.banner {
                ui.label(RichText::new(b).color(style::WARN));
            }
            if let Some((line, offline)) = self.mode.shown() {
                ui.label(RichText::new(line).small().color(style::MUTED));
                if let Some(o) = offline {
                    ui.label(RichText::new(o).strong().color(style::BAD));
                }
            }
        });
        egui::CentralPanel::default().show(ui, |ui| match self.view {
            View::Kiosk => self.kiosk.ui(ui, &self.env),
            View::Bedside => self.bedside.ui(ui, &self.env),
            View::Admin => self.admin.ui(ui, &self.env),
        });
    }
}

impl eframe::App for MedcardApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        MedcardApp::logic(self, ctx);
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        MedcardApp::ui(self, ui);
    }
}
