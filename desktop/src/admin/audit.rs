//! Admin → Audit log: the entries newest first with filters (kind, text, outcome, last hours),
//! **Verify log** (`reader::audit::verify` against the clinic issuer key, in a Job: "Log
//! verified: N entries, M checkpoints" or the first bad entry in plain words), and the access
//! alerts (`reader::audit::alerts::alerts` with the documented rules) with their entries.

use egui::{RichText, Ui};
use reader::audit::alerts::{self, Alert, Rules};
use reader::audit::{self, Entry, EventKind, Finding, Outcome};

use super::listing::Listing;
use super::{Note, inline_field, note_ui, spawn, working};
use crate::context::AppContext;
use crate::jobs::{Job, finished};
use crate::style;

/// Most rows drawn at once (the filters narrow the rest).
pub const MAX_ROWS: usize = 500;

/// Which outcomes to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutcomeFilter {
    /// Every outcome.
    #[default]
    All,
    /// Only [`Outcome::Ok`].
    Ok,
    /// Everything but [`Outcome::Ok`] (refusals, failures, and outcomes this version does not
    /// know: an unknown outcome is never shown as a success).
    NotOk,
}

impl OutcomeFilter {
    /// Every choice, in the order the menu lists them.
    pub const ALL: [OutcomeFilter; 3] = [OutcomeFilter::All, OutcomeFilter::Ok, OutcomeFilter::NotOk];

    /// The menu label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            OutcomeFilter::All => "all outcomes",
            OutcomeFilter::Ok => "ok only",
            OutcomeFilter::NotOk => "refused or failed",
        }
    }

    /// Whether an entry with this stored outcome (`None`: unknown text) passes.
    #[must_use]
    pub fn passes(self, outcome: Option<Outcome>) -> bool {
        match self {
            OutcomeFilter::All => true,
            OutcomeFilter::Ok => outcome == Some(Outcome::Ok),
            OutcomeFilter::NotOk => outcome != Some(Outcome::Ok),
        }
    }
}

/// The table's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this kind (rows whose stored kind this version does not know pass only with no
    /// kind chosen).
    pub kind: Option<EventKind>,
    /// Only entries whose actor, subject, outcome or detail contains this (any case).
    pub text: String,
    /// Outcome class.
    pub outcome: OutcomeFilter,
    /// Only the last N hours (empty or unparsable: all).
    pub hours: String,
}

/// The positions in `entries` of those that pass `f` at `now`, newest first. Pure.
#[must_use]
pub fn filter(entries: &[Entry], f: &Filter, now: i64) -> Vec<usize> {
    let needle = f.text.trim().to_lowercase();
    let since = f.hours.trim().parse::<u32>().ok().map(|h| now.saturating_sub(i64::from(h) * 3600));
    entries
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| f.kind.is_none_or(|k| e.kind() == Some(k)))
        .filter(|(_, e)| f.outcome.passes(e.outcome()))
        .filter(|(_, e)| since.is_none_or(|s| e.time >= s))
        .filter(|(_, e)| {
            needle.is_empty() || [&e.actor, &e.subject, &e.outcome, &e.detail, &e.kind].iter().any(|s| s.to_lowercase().contains(&needle))
        })
        .map(|(i, _)| i)
        .collect()
}

/// A verification finding in plain words, naming the first bad entry.
#[must_use]
pub fn finding_text(f: &Finding) -> String {
    match f {
        Finding::Altered { seq } => {
            format!("The log was tampered with: entry #{seq} was altered (its content no longer matches what was recorded).")
        }
        Finding::Missing { seq, .. } => format!("The log was tampered with: entry #{seq} is missing (rows were deleted)."),
        Finding::OutOfOrder { position, .. } => {
            format!("The log was tampered with: entry #{position} is out of place (rows were inserted or reordered).")
        }
        Finding::Truncated { entries, tree_size } => format!(
            "The log was tampered with: entry #{entries} is missing (a signed checkpoint covers {tree_size} entries, the log has {entries})."
        ),
        other => format!("The log failed verification: {other}."),
    }
}

/// What a load gives: entries in log order and the alerts over them.
pub struct Loaded {
    /// Entries, oldest first.
    pub entries: Vec<Entry>,
    /// Alerts.
    pub alerts: Vec<Alert>,
}

/// The Audit log sub-tab.
pub struct AuditTab {
    loaded: Listing<Loaded>,
    /// The filters.
    pub filter: Filter,
    verifying: Option<Job<Result<String, String>>>,
    verdict: Note,
    /// The filtered rows for (filter, minute, entry count): recomputed only when one changes.
    shown: Option<(Filter, i64, usize, Vec<usize>)>,
}

impl Default for AuditTab {
    fn default() -> Self {
        AuditTab {
            loaded: Listing::new("Reading the audit log", load),
            filter: Filter::default(),
            verifying: None,
            verdict: None,
            shown: None,
        }
    }
}

impl AuditTab {
    /// The alerts as last loaded.
    #[must_use]
    pub fn alerts(&self) -> Option<&[Alert]> {
        self.loaded.ok().map(|l| l.alerts.as_slice())
    }

    /// Whether work is running (loading, verifying).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.loaded.loading() || self.verifying.is_some()
    }

    /// Forgets what was loaded (locking): read again when shown.
    pub fn forget(&mut self) {
        self.loaded.forget();
        self.verdict = None;
    }

    /// Starts verifying the log (the Verify log button; the demo tour).
    pub fn verify(&mut self, ctx: &egui::Context, env: &AppContext) {
        if self.verifying.is_some() {
            return;
        }
        let env2 = env.clone();
        self.verdict = None;
        self.verifying = Some(spawn(ctx, "Verifying the audit log", move || verify(&env2)));
    }

    /// Signs a checkpoint of the log with the clinic's issuer key (the Sign checkpoint button):
    /// the entries up to now can no longer be altered or dropped without `Verify log` saying so.
    pub fn checkpoint(&mut self, ctx: &egui::Context, env: &AppContext) {
        if self.verifying.is_some() {
            return;
        }
        let env2 = env.clone();
        self.verdict = None;
        self.verifying = Some(spawn(ctx, "Signing a checkpoint", move || checkpoint(&env2)));
    }

    /// Collects finished work (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        if self.loaded.poll() {
            self.shown = None;
        }
        // Verifying and signing a checkpoint add no entry: the list stays as loaded.
        if let Some(r) = finished(&mut self.verifying) {
            self.verdict = Some(r.and_then(|v| v));
        }
    }

    /// Draws the tab (the one shown); its finished work is collected by `poll`, every frame.
    pub fn ui(&mut self, ui: &mut Ui, env: &AppContext) {
        self.loaded.load_if_needed(ui.ctx(), env);
        ui.horizontal(|ui| {
            ui.heading("Audit log");
            if ui.add_enabled(self.verifying.is_none(), egui::Button::new("Verify log")).clicked() {
                self.verify(ui.ctx(), env);
            }
            if ui
                .add_enabled(self.verifying.is_none(), egui::Button::new("Sign checkpoint"))
                .on_hover_text("Sign the log as it is now with the clinic key, so that later changes to these entries are detected")
                .clicked()
            {
                self.checkpoint(ui.ctx(), env);
            }
            self.loaded.refresh_ui(ui);
        });
        if let Some(j) = &self.verifying {
            working(ui, j.what());
        }
        note_ui(ui, &self.verdict);
        let loaded = match self.loaded.get() {
            None => return,
            Some(Err(m)) => {
                ui.label(RichText::new(m).color(style::BAD));
                return;
            }
            Some(Ok(l)) => l,
        };
        ui.add_space(6.0);
        ui.label(RichText::new("Alerts").strong().size(20.0));
        if loaded.alerts.is_empty() {
            ui.label(RichText::new("No alerts.").color(style::GOOD));
        }
        for a in &loaded.alerts {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                // Break the glass: every emergency access is reviewed, so it stands out.
                if a.rule == alerts::Rule::EmergencyAccess {
                    ui.label(RichText::new(format!("EMERGENCY ACCESS alert: {}", a.message)).color(style::BAD).strong());
                } else {
                    ui.label(RichText::new(format!("Alert: {}", a.message)).color(style::WARN).strong());
                }
                for seq in &a.entries {
                    if let Some(e) = loaded.entries.binary_search_by_key(seq, |e| e.seq).ok().and_then(|i| loaded.entries.get(i)) {
                        ui.label(
                            RichText::new(format!(
                                "#{}  {}  {}  {}  {}  {}",
                                e.seq,
                                style::date_time(e.time),
                                e.kind,
                                e.subject,
                                e.outcome,
                                e.detail
                            ))
                            .small()
                            .color(style::MUTED),
                        );
                    }
                }
            });
        }
        ui.add_space(6.0);
        ui.label(RichText::new("Entries").strong().size(20.0));
        ui.horizontal_wrapped(|ui| {
            ui.label("Kind");
            let shown = self.filter.kind.map_or("all kinds", EventKind::as_str);
            egui::ComboBox::from_id_salt("admin-audit-kind").selected_text(shown).show_ui(ui, |ui| {
                ui.selectable_value(&mut self.filter.kind, None, "all kinds");
                for k in EventKind::ALL {
                    ui.selectable_value(&mut self.filter.kind, Some(k), k.as_str());
                }
            });
            ui.label("Outcome");
            egui::ComboBox::from_id_salt("admin-audit-outcome").selected_text(self.filter.outcome.label()).show_ui(ui, |ui| {
                for o in OutcomeFilter::ALL {
                    ui.selectable_value(&mut self.filter.outcome, o, o.label());
                }
            });
        });
        ui.horizontal(|ui| {
            inline_field(ui, "Contains", &mut self.filter.text, 220.0);
            ui.add_space(12.0);
            inline_field(ui, "Last hours", &mut self.filter.hours, 60.0).on_hover_text("Only entries from the last N hours (empty: all)");
        });
        let now = env.now();
        let fresh = matches!(&self.shown, Some((f, m, n, _)) if *f == self.filter && *m == now / 60 && *n == loaded.entries.len());
        if !fresh {
            self.shown = Some((self.filter.clone(), now / 60, loaded.entries.len(), filter(&loaded.entries, &self.filter, now)));
        }
        let rows: &[usize] = self.shown.as_ref().map_or(&[], |s| s.3.as_slice());
        ui.label(RichText::new(format!("{} of {} entries", rows.len(), loaded.entries.len())).color(style::MUTED));
        egui::Grid::new("admin-audit").striped(true).spacing([14.0, 4.0]).show(ui, |ui| {
            for h in ["#", "Time", "Kind", "Actor", "Subject", "Outcome", "Detail"] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for e in rows.iter().filter_map(|i| loaded.entries.get(*i)).take(MAX_ROWS) {
                ui.label(e.seq.to_string());
                ui.label(style::date_time(e.time));
                ui.label(&e.kind);
                ui.label(&e.actor);
                ui.label(&e.subject);
                let c = if e.outcome() == Some(Outcome::Ok) { style::INK } else { style::BAD };
                ui.label(RichText::new(&e.outcome).color(c));
                ui.label(RichText::new(&e.detail).small());
                ui.end_row();
            }
        });
    }
}

fn load(env: &AppContext) -> Result<Loaded, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let db = o.state.db().map_err(|e| format!("Could not open the clinic database: {e}"))?;
    let entries = audit::entries(&db, 0, None).map_err(|e| format!("Could not read the audit log: {e}"))?;
    let alerts = alerts::alerts(&entries, &Rules::default());
    Ok(Loaded { entries, alerts })
}

fn verify(env: &AppContext) -> Result<String, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let db = o.state.db().map_err(|e| format!("Could not open the clinic database: {e}"))?;
    match audit::verify(&db, &o.ks.issuer_public()) {
        Ok(Ok(r)) => Ok(format!(
            "Log verified: {} entr{}, {} checkpoint{}.",
            r.entries,
            if r.entries == 1 { "y" } else { "ies" },
            r.checkpoints,
            if r.checkpoints == 1 { "" } else { "s" }
        )),
        Ok(Err(f)) => Err(finding_text(&f)),
        Err(e) => Err(format!("The log could not be read to verify it: {e}.")),
    }
}

fn checkpoint(env: &AppContext) -> Result<String, String> {
    let o = env.open().map_err(|e| e.to_string())?;
    let signer = o.ks.issuer_signer().map_err(|e| format!("{e}."))?;
    let (origin, now) = (o.ks.clinic_id().to_owned(), env.now());
    // Clinic mode: the checkpoint covers the whole clinic log, as `medcard audit checkpoint` does.
    let shared = o.state.with_clinic_db(|pg| Ok(pg.audit_checkpoint(&origin, now, &signer))).map_err(|e| format!("{e}."))?;
    let cp = match shared {
        Some(r) => r.map_err(|e| format!("The checkpoint could not be signed: {e}."))?.0,
        None => {
            let mut db = o.state.db().map_err(|e| format!("Could not open the clinic database: {e}"))?;
            audit::checkpoint(&mut db, &origin, now, &signer)
                .map_err(|e| format!("The checkpoint could not be signed: {e}. Free disk space or report it to IT."))?
                .0
        }
    };
    Ok(format!(
        "Checkpoint signed: the first {} entr{} are sealed ({}).",
        cp.tree_size,
        if cp.tree_size == 1 { "y" } else { "ies" },
        style::date_time(cp.time)
    ))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn e(seq: u64, time: i64, kind: &str, outcome: &str, subject: &str) -> Entry {
        let b = audit::encode_entry(seq, time, kind, "desk", subject, outcome, "patient=P-1");
        Entry {
            seq,
            time,
            kind: kind.into(),
            actor: "desk".into(),
            subject: subject.into(),
            outcome: outcome.into(),
            detail: "patient=P-1".into(),
            leaf_hash: audit::merkle::leaf_hash(&b).to_vec(),
        }
    }

    #[test]
    fn filters_combine_and_list_newest_first() {
        let all = vec![
            e(0, 1000, "card.issued", "ok", "7100001"),
            e(1, 5000, "card.pin_failed", "wrong-pin", "7100001"),
            e(2, 9000, "card.pin_failed", "wrong-pin", "7200001"),
            e(3, 9500, "record.added", "ok", "abc"),
        ];
        let seqs = |f: &Filter| filter(&all, f, 10_000).iter().map(|i| all[*i].seq).collect::<Vec<_>>();
        assert_eq!(seqs(&Filter::default()), [3, 2, 1, 0]);
        assert_eq!(seqs(&Filter { kind: Some(EventKind::PinFailed), ..Filter::default() }), [2, 1]);
        assert_eq!(seqs(&Filter { outcome: OutcomeFilter::NotOk, text: "72000".into(), ..Filter::default() }), [2]);
        assert_eq!(seqs(&Filter { outcome: OutcomeFilter::Ok, ..Filter::default() }), [3, 0]);
        assert_eq!(seqs(&Filter { hours: "1".into(), ..Filter::default() }), [3, 2]);
        assert_eq!(seqs(&Filter { hours: "soon".into(), ..Filter::default() }), [3, 2, 1, 0]);
        assert_eq!(seqs(&Filter { text: "P-1".into(), ..Filter::default() }).len(), 4);
    }

    #[test]
    fn rows_of_unknown_kind_or_outcome_match_no_kind_and_never_count_as_ok() {
        let all = vec![
            e(0, 1000, "card.pin_failed", "wrong-pin", "7100001"),
            e(1, 1000, "card.pin_failed.v2", "ok", "7100001"),
            e(2, 1000, "card.issued", "OK", "7100001"),
        ];
        let seqs = |f: &Filter| filter(&all, f, 10_000).iter().map(|i| all[*i].seq).collect::<Vec<_>>();
        assert_eq!(seqs(&Filter { kind: Some(EventKind::PinFailed), ..Filter::default() }), [0]);
        assert_eq!(seqs(&Filter { outcome: OutcomeFilter::Ok, ..Filter::default() }), [1]);
        assert_eq!(seqs(&Filter { outcome: OutcomeFilter::NotOk, ..Filter::default() }), [2, 0]);
        // Still listed, and found by their stored text.
        assert_eq!(seqs(&Filter::default()), [2, 1, 0]);
        assert_eq!(seqs(&Filter { text: "pin_failed.v2".into(), ..Filter::default() }), [1]);
    }

    #[test]
    fn findings_name_the_bad_entry_in_plain_words() {
        assert!(finding_text(&Finding::Altered { seq: 3 }).contains("entry #3 was altered"));
        assert!(finding_text(&Finding::Missing { seq: 4, found: 5 }).contains("entry #4 is missing"));
        assert!(finding_text(&Finding::Truncated { tree_size: 9, entries: 7 }).contains("entry #7 is missing"));
    }
}
