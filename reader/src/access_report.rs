//! The patient's access report (`docs/staff.md`, "The patient's access report"): who read the
//! patient's records, when, and every emergency access with its reason, built from the audit log
//! (which the caller verifies first: `medcard patient access-report` refuses a log that does not
//! verify).
//!
//! A line per access: each `record.read` entry (`ok`) whose detail names the patient, and each
//! `record.emergency` entry (`ok`) for the patient. The reader is named by the staff credential
//! the log's `staff.issued` entry carries for the card (name and role); an entry written before
//! the clinic had staff cards names the device user (`cli:<user>`, `desktop:<user>`).

use std::collections::HashMap;

use p256::ecdsa::VerifyingKey;

use crate::audit::detail::{self, field};
use crate::audit::{Entry, EventKind, Finding, Outcome};
use crate::clinic_state::{ClinicError, ClinicState};
use crate::staff::signed;

/// What kind of access.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum AccessKind {
    /// A record read with the patient's code (scanned, or opened from a bedside cache).
    Read {
        /// The record's locator.
        record: String,
        /// Its category, when the clinic's index knows the locator.
        category: Option<String>,
    },
    /// The emergency data set opened without the patient's code.
    Emergency {
        /// Why, as the clinician typed it.
        reason: String,
        /// How many records were opened.
        records: u64,
    },
}

/// One access to the patient's records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Access {
    /// The audit entry.
    pub seq: u64,
    /// When (Unix seconds).
    pub time: i64,
    /// Who: the staff member's name, else the actor text.
    pub who: String,
    /// The staff id and role, for a staff card.
    pub staff_id: Option<String>,
    pub role: Option<String>,
    /// Whether the entry carries the staff card's signature (checked by `audit verify`).
    pub signed: bool,
    /// What.
    #[serde(flatten)]
    pub what: AccessKind,
}

/// The accesses to `patient_id`'s records in `entries` (log order) at or after `since`.
/// `issuer`: the clinic issuer key, to read the staff credentials in `staff.issued` entries;
/// `categories`: the category of each record the clinic's index knows, by locator and by record id.
#[must_use]
pub fn report(
    entries: &[Entry],
    patient_id: &str,
    since: Option<i64>,
    issuer: &VerifyingKey,
    categories: &HashMap<String, String>,
) -> Vec<Access> {
    let mut staff: HashMap<u32, (String, String, String)> = HashMap::new();
    let mut out = Vec::new();
    for e in entries {
        let kind = e.kind();
        if kind == Some(EventKind::StaffIssued) && e.outcome() == Some(Outcome::Ok) {
            if let Ok(v) = detail::issued_staff(&e.subject, &e.detail, issuer) {
                let c = v.credential();
                staff.insert(c.card_serial, (c.staff_id.clone(), c.name.clone(), c.role.clone()));
            }
            continue;
        }
        if e.outcome() != Some(Outcome::Ok) || since.is_some_and(|s| e.time < s) {
            continue;
        }
        let what = match kind {
            Some(EventKind::RecordRead) if field(&e.detail, "patient") == Some(patient_id) => {
                // A code with a record index caches each record as `<code id>.<record id>`.
                let record_id =
                    field(&e.detail, "cache").or_else(|| field(&e.detail, "cached")).and_then(|c| c.split_once('.')).map(|x| x.1);
                let category = categories.get(&e.subject).or_else(|| record_id.and_then(|r| categories.get(r))).cloned();
                AccessKind::Read { record: e.subject.clone(), category }
            }
            Some(EventKind::EmergencyAccess) if e.subject == patient_id => AccessKind::Emergency {
                reason: detail::emergency_reason(&e.detail).to_owned(),
                records: field(&e.detail, "records").and_then(|n| n.parse().ok()).unwrap_or(0),
            },
            _ => continue,
        };
        let card = signed::card_actor(&e.actor).and_then(signed::parse_actor);
        let known = card.and_then(|(_, serial)| staff.get(&serial));
        out.push(Access {
            seq: e.seq,
            time: e.time,
            who: known.map_or_else(|| e.actor.clone(), |(_, name, _)| name.clone()),
            staff_id: card.map(|(id, _)| id.to_owned()),
            role: known.map(|(_, _, role)| role.clone()),
            signed: card.is_some() && e.detail.contains(" sig="),
            what,
        });
    }
    out
}

/// The time of the patient's previous check-in: the second-latest `qr.issued` `ok` entry for
/// them (the latest is the check-in being made); `None` on a first visit.
#[must_use]
pub fn previous_visit(entries: &[Entry], patient_id: &str) -> Option<i64> {
    let mut visits =
        entries.iter().filter(|e| e.kind() == Some(EventKind::QrIssued) && e.outcome() == Some(Outcome::Ok) && e.subject == patient_id);
    let mut last = None;
    let mut before_last = None;
    for e in visits.by_ref() {
        before_last = last;
        last = Some(e.time);
    }
    before_last
}

/// From when a report runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Accesses at or after this time (`None`: all).
    Time(Option<i64>),
    /// Since the patient's previous check-in (the kiosk, right after a check-in).
    LastVisit,
}

/// Why there is no report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The log does not verify: no report is built from it.
    #[error("the audit log does not verify, so no access report is built from it ({0}); tell the clinic's IT")]
    Log(Finding),
    /// The clinic state (database, log) could not be read.
    #[error(transparent)]
    Clinic(#[from] ClinicError),
}

/// The report of `patient_id`'s accesses from the clinic's log, verified first (every row,
/// checkpoint and staff signature), with the categories of the clinic's records index.
pub fn verified_report(state: &ClinicState, issuer: &VerifyingKey, patient_id: &str, since: Since) -> Result<Vec<Access>, ReportError> {
    if let Err(finding) = state.verify_audit(issuer)? {
        return Err(ReportError::Log(finding));
    }
    let entries = state.audit_entries(None)?;
    let categories = state
        .records(Some(patient_id))?
        .into_iter()
        .flat_map(|r| {
            let c = r.meta.category.as_str().to_owned();
            [(r.locator.to_string(), c.clone()), (r.meta.record_id, c)]
        })
        .collect();
    let since = match since {
        Since::Time(t) => t,
        Since::LastVisit => previous_visit(&entries, patient_id),
    };
    Ok(report(&entries, patient_id, since, issuer, &categories))
}

/// One line of the report for people: "3 Dec 2026 10:42 UTC: Dr N. Lee (clinician) read your labs".
#[must_use]
pub fn describe(a: &Access) -> String {
    let when = qr::time::format_rfc3339(a.time);
    let who = match &a.role {
        Some(r) => format!("{} ({r})", a.who),
        None => a.who.clone(),
    };
    match &a.what {
        AccessKind::Read { category: Some(c), .. } => format!("{when}: {who} read your {c}"),
        AccessKind::Read { record, category: None } => format!("{when}: {who} read record {record}"),
        AccessKind::Emergency { reason, records } => {
            format!("{when}: EMERGENCY ACCESS by {who} to {records} record(s) without your code, because: {reason}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, kind: &str, actor: &str, subject: &str, detail: &str) -> Entry {
        Entry {
            seq,
            time: 1_796_300_000 + i64::try_from(seq).unwrap_or(0),
            kind: kind.into(),
            actor: actor.into(),
            subject: subject.into(),
            outcome: "ok".into(),
            detail: detail.into(),
            leaf_hash: vec![],
        }
    }

    #[test]
    fn report_lists_reads_and_emergencies_of_that_patient_only() {
        let issuer = VerifyingKey::from(&p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap_or_else(|_| unreachable!()));
        let entries = vec![
            entry(0, "record.read", "staff:S-1#7", "loc-a", "qr=1 cache=c patient=P-1 sig=00"),
            entry(1, "record.read", "staff:S-1#7", "loc-b", "qr=2 cache=c patient=P-2 sig=00"),
            entry(
                2,
                "record.emergency",
                "staff:S-1#7",
                "P-1",
                "patient=P-1 records=2 categories=allergies reason=found unconscious sig=00",
            ),
            entry(3, "qr.scanned", "staff:S-1#7", "P-1", "qr=1"),
            entry(4, "record.read", "cli:root", "loc-c", "cached=x patient=P-1"),
        ];
        let cats = HashMap::from([("loc-a".to_owned(), "labs".to_owned())]);
        let r = report(&entries, "P-1", None, &issuer, &cats);
        assert_eq!(r.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![0, 2, 4]);
        assert_eq!(r.first().map(|a| a.what.clone()), Some(AccessKind::Read { record: "loc-a".into(), category: Some("labs".into()) }));
        assert_eq!(r.get(1).map(|a| a.what.clone()), Some(AccessKind::Emergency { reason: "found unconscious".into(), records: 2 }));
        assert!(describe(r.get(1).unwrap_or_else(|| unreachable!())).contains("EMERGENCY ACCESS by staff:S-1#7"));
        assert_eq!(r.get(2).map(|a| (a.who.as_str(), a.signed)), Some(("cli:root", false)));
        assert!(report(&entries, "P-1", Some(1_796_300_003), &issuer, &cats).iter().all(|a| a.seq == 4));
    }
}
