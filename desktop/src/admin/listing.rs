//! What an admin sub-tab lists from the clinic (issued cards, records, trust entries, the audit
//! log), read in a [`Job`]: when the tab is drawn and nothing is loaded, again after a change or
//! Refresh, and forgotten when the view locks. One helper, so the four tabs cannot drift apart
//! in when they read or what they show meanwhile.

use egui::Ui;

use super::spawn;
use crate::context::AppContext;
use crate::jobs::{Job, finished};

/// A list read from the clinic on a worker thread.
pub struct Listing<T> {
    /// The job's name ("Loading the records"), as a lost job's message says it.
    what: &'static str,
    load: fn(&AppContext) -> Result<T, String>,
    value: Option<Result<T, String>>,
    job: Option<Job<Result<T, String>>>,
    stale: bool,
}

impl<T: Send + 'static> Listing<T> {
    /// Nothing loaded yet; `load` reads the list (on a worker thread) when it is first drawn.
    #[must_use]
    pub fn new(what: &'static str, load: fn(&AppContext) -> Result<T, String>) -> Self {
        Listing { what, load, value: None, job: None, stale: false }
    }

    /// The list as last loaded, or why it could not be read; `None` before the first load.
    #[must_use]
    pub fn get(&self) -> Option<&Result<T, String>> {
        self.value.as_ref()
    }

    /// The list as last loaded, when it could be read.
    #[must_use]
    pub fn ok(&self) -> Option<&T> {
        self.value.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// Whether a load is running.
    #[must_use]
    pub fn loading(&self) -> bool {
        self.job.is_some()
    }

    /// Reads the list again the next time it is drawn (after a change, or Refresh).
    pub fn reload(&mut self) {
        self.stale = true;
    }

    /// Drops what was loaded (locking): read again when drawn.
    pub fn forget(&mut self) {
        self.value = None;
        self.stale = true;
    }

    /// Collects a finished load (every frame); true when a new list (or error) arrived.
    pub fn poll(&mut self) -> bool {
        match finished(&mut self.job) {
            Some(r) => {
                self.value = Some(r.and_then(|v| v));
                true
            }
            None => false,
        }
    }

    /// Starts a load when nothing is loaded or the list is stale, unless one is running (call
    /// where the list is drawn: a list no one looks at is not read).
    pub fn load_if_needed(&mut self, ctx: &egui::Context, env: &AppContext) {
        if (self.stale || self.value.is_none()) && self.job.is_none() {
            self.stale = false;
            let env = env.clone();
            let load = self.load;
            self.job = Some(spawn(ctx, self.what, move || load(&env)));
        }
    }

    /// The Refresh button and, while loading, a spinner (beside the list's heading).
    pub fn refresh_ui(&mut self, ui: &mut Ui) {
        if ui.add_enabled(self.job.is_none(), egui::Button::new("Refresh")).clicked() {
            self.reload();
        }
        if self.job.is_some() {
            ui.spinner();
        }
    }
}
