//! Access alerts over the audit log: pure rules over [`Entry`] rows (docs/audit-log.md, "Alerts").
//!
//! Each rule looks at entries of one kind family grouped by a key (card serial, actor, patient)
//! and reports every non-overlapping burst that reaches its threshold within its window, naming
//! the entries behind it. One function per rule; [`alerts`] runs them all.
//!
//! Rows are stored text, read through the vocabulary ([`Entry::kind`], [`Entry::outcome`]): a
//! kind or outcome this version does not know, or a detail without the expected field, is
//! skipped by the rule that needs it, never a panic and never taken for another value.

use std::collections::{BTreeMap, HashMap};

use super::detail::{self, field};
use super::{Entry, EventKind, Outcome};

/// Thresholds; [`Rules::default`] holds the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Wrong PINs / blocks on one card (subject = serial) within `pin_window_secs`.
    pub pin_failures: usize,
    pub pin_window_secs: i64,
    /// Distinct patients whose records one actor read within `burst_window_secs`.
    pub burst_patients: usize,
    pub burst_window_secs: i64,
    /// Refused QR codes in a row from one actor (a scanned code resets the run).
    pub refused_in_a_row: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { pin_failures: 3, pin_window_secs: 3600, burst_patients: 10, burst_window_secs: 600, refused_in_a_row: 5 }
    }
}

/// Which rule raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Repeated PIN failures on one card.
    PinFailures,
    /// Many distinct patients read by one actor in a short time.
    ScanBurst,
    /// An attempt to read or share outside the patient's consent.
    OutsideConsent,
    /// Refused QR codes in a row from one actor.
    RefusedInARow,
    /// A patient's records opened without their code (break the glass): always an alert.
    EmergencyAccess,
}

/// One alert: the rule, a plain message and the audit entries (sequence numbers) behind it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    pub rule: Rule,
    pub subject: String,
    pub message: String,
    pub entries: Vec<u64>,
}

/// Outcomes of a refused check-in (`qr.issued`) or scan (`qr.refused`) that mean the patient's
/// consent did not allow it. Listed, not matched by name, so that a new outcome is an attempt
/// outside consent only when someone decides it is.
const OUTSIDE_CONSENT: [Outcome; 2] = [
    // The consent is revoked: nothing may be shared.
    Outcome::ConsentRevoked,
    // Categories were asked for that the consent does not cover.
    Outcome::NotCovered,
];

/// Entries that mean "an attempt outside the patient's consent": every `consent.refused`
/// (the kind is the refusal; its outcome only says why, so any outcome counts), and a refused
/// check-in or scan whose outcome is one of [`OUTSIDE_CONSENT`].
fn is_consent_refusal(e: &Entry) -> bool {
    match e.kind() {
        Some(EventKind::ConsentRefused) => true,
        Some(EventKind::QrIssued | EventKind::QrRefused) => e.outcome().is_some_and(|o| OUTSIDE_CONSENT.contains(&o)),
        _ => false,
    }
}

/// Runs every rule over `entries` (in log order), in the order of [`Rule`].
#[must_use]
pub fn alerts(entries: &[Entry], rules: &Rules) -> Vec<Alert> {
    let mut out = pin_failures(entries, rules);
    out.extend(scan_burst(entries, rules));
    out.extend(outside_consent(entries));
    out.extend(refused_in_a_row(entries, rules));
    out.extend(emergency_access(entries));
    out
}

/// [`Rule::EmergencyAccess`]: every `record.emergency` entry that opened records, one alert each,
/// naming who, whose records and why (reviewing each one is the point of breaking the glass).
#[must_use]
pub fn emergency_access(entries: &[Entry]) -> Vec<Alert> {
    entries
        .iter()
        .filter(|e| e.kind() == Some(EventKind::EmergencyAccess) && e.outcome() == Some(Outcome::Ok))
        .map(|e| {
            let reason = detail::emergency_reason(&e.detail);
            Alert {
                rule: Rule::EmergencyAccess,
                subject: e.subject.clone(),
                message: format!("emergency access to the records of {} by {} without their code, because: {reason}", e.subject, e.actor),
                entries: vec![e.seq],
            }
        })
        .collect()
}

/// [`Rule::PinFailures`]: `card.pin_failed` and `card.blocked` per card (subject), counted in a
/// sliding window of `pin_window_secs`; each burst of `pin_failures` reported once.
#[must_use]
pub fn pin_failures(entries: &[Entry], rules: &Rules) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut per_card: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries.iter().filter(|e| matches!(e.kind(), Some(EventKind::PinFailed | EventKind::CardBlocked))) {
        per_card.entry(e.subject.as_str()).or_default().push(e);
    }
    for (card, list) in per_card {
        let mut start = 0;
        let mut i = 0;
        while i < list.len() {
            while list.get(start).zip(list.get(i)).is_some_and(|(a, b)| b.time.saturating_sub(a.time) > rules.pin_window_secs) {
                start += 1;
            }
            if rules.pin_failures > 0 && i + 1 - start >= rules.pin_failures {
                let burst = list.get(start..=i).unwrap_or_default();
                out.push(Alert {
                    rule: Rule::PinFailures,
                    subject: card.to_owned(),
                    message: format!(
                        "card {card}: {} wrong PINs or blocks within {} minutes: someone may be guessing the PIN",
                        burst.len(),
                        rules.pin_window_secs / 60
                    ),
                    entries: burst.iter().map(|e| e.seq).collect(),
                });
                start = i + 1;
            }
            i += 1;
        }
    }
    out
}

/// [`Rule::ScanBurst`]: distinct patients (`patient=` in the detail) of `record.read` `ok`
/// entries per actor within `burst_window_secs`; each burst of `burst_patients` reported once.
#[must_use]
pub fn scan_burst(entries: &[Entry], rules: &Rules) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut per_actor: BTreeMap<&str, Vec<(&Entry, &str)>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind() == Some(EventKind::RecordRead) && e.outcome() == Some(Outcome::Ok)) {
        if let Some(p) = field(&e.detail, "patient") {
            per_actor.entry(e.actor.as_str()).or_default().push((e, p));
        }
    }
    for (actor, list) in per_actor {
        let mut start = 0;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (i, (e, p)) in list.iter().enumerate() {
            *counts.entry(p).or_default() += 1;
            while let Some((first, fp)) = list.get(start) {
                if e.time.saturating_sub(first.time) <= rules.burst_window_secs {
                    break;
                }
                if let Some(c) = counts.get_mut(fp) {
                    *c -= 1;
                    if *c == 0 {
                        counts.remove(fp);
                    }
                }
                start += 1;
            }
            if rules.burst_patients > 0 && counts.len() >= rules.burst_patients {
                let burst = list.get(start..=i).unwrap_or_default();
                out.push(Alert {
                    rule: Rule::ScanBurst,
                    subject: actor.to_owned(),
                    message: format!(
                        "{actor} read records of {} different patients within {} minutes",
                        counts.len(),
                        rules.burst_window_secs / 60
                    ),
                    entries: burst.iter().map(|(e, _)| e.seq).collect(),
                });
                counts.clear();
                start = i + 1;
            }
        }
    }
    out
}

/// [`Rule::OutsideConsent`]: every refusal for lack of consent ([`is_consent_refusal`]), one
/// alert per subject (patient) naming all of them.
#[must_use]
pub fn outside_consent(entries: &[Entry]) -> Vec<Alert> {
    let mut per_subject: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in entries.iter().filter(|e| is_consent_refusal(e)) {
        per_subject.entry(e.subject.as_str()).or_default().push(e.seq);
    }
    per_subject
        .into_iter()
        .map(|(subject, seqs)| Alert {
            rule: Rule::OutsideConsent,
            subject: subject.to_owned(),
            message: format!("{} attempt(s) to read or share outside the consent of {subject}", seqs.len()),
            entries: seqs,
        })
        .collect()
}

/// [`Rule::RefusedInARow`]: `qr.refused` entries in a row per actor; a `qr.scanned` (a verified
/// code) by the same actor ends the run. A run of `refused_in_a_row` or more is one alert.
#[must_use]
pub fn refused_in_a_row(entries: &[Entry], rules: &Rules) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut runs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let report = |actor: &str, run: &mut Vec<u64>, out: &mut Vec<Alert>| {
        if rules.refused_in_a_row > 0 && run.len() >= rules.refused_in_a_row {
            out.push(Alert {
                rule: Rule::RefusedInARow,
                subject: actor.to_owned(),
                message: format!("{actor}: {} refused QR codes in a row: forged or tampered codes may be in circulation", run.len()),
                entries: std::mem::take(run),
            });
        }
        run.clear();
    };
    for e in entries {
        match e.kind() {
            Some(EventKind::QrRefused) => runs.entry(e.actor.as_str()).or_default().push(e.seq),
            Some(EventKind::QrScanned) => {
                if let Some(run) = runs.get_mut(e.actor.as_str()) {
                    report(&e.actor, run, &mut out);
                }
            }
            _ => {}
        }
    }
    for (actor, run) in &mut runs {
        report(actor, run, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(seq: u64, time: i64, kind: &str, actor: &str, subject: &str, outcome: &str, detail: &str) -> Entry {
        Entry {
            seq,
            time,
            kind: kind.into(),
            actor: actor.into(),
            subject: subject.into(),
            outcome: outcome.into(),
            detail: detail.into(),
            leaf_hash: Vec::new(),
        }
    }

    #[test]
    fn three_pin_failures_within_an_hour_alert_and_two_do_not() {
        let r = Rules::default();
        let two = [entry(0, 0, "card.pin_failed", "k", "42", "wrong-pin", ""), entry(1, 10, "card.pin_failed", "k", "42", "wrong-pin", "")];
        assert!(alerts(&two, &r).is_empty());
        let mut three = two.to_vec();
        three.push(entry(2, 3600, "card.blocked", "k", "42", "blocked", ""));
        let a = alerts(&three, &r);
        assert_eq!(a.len(), 1);
        assert_eq!(a.first().map(|a| (a.rule, a.entries.clone())), Some((Rule::PinFailures, vec![0, 1, 2])));
    }

    #[test]
    fn pin_failures_spread_over_more_than_the_window_do_not_alert() {
        let e = [
            entry(0, 0, "card.pin_failed", "k", "42", "wrong-pin", ""),
            entry(1, 2000, "card.pin_failed", "k", "42", "wrong-pin", ""),
            entry(2, 3601, "card.pin_failed", "k", "42", "wrong-pin", ""),
            entry(3, 0, "card.pin_failed", "k", "43", "wrong-pin", ""),
        ];
        assert!(alerts(&e, &Rules::default()).is_empty());
    }

    #[test]
    fn ten_distinct_patients_in_ten_minutes_alert_nine_do_not() {
        let r = Rules::default();
        let mk = |n: u64| -> Vec<Entry> {
            (0..n).map(|i| entry(i, i as i64 * 60, "record.read", "cli:ward", "loc", "ok", &format!("patient=P-{i}"))).collect()
        };
        assert!(alerts(&mk(9), &r).is_empty());
        let a = alerts(&mk(10), &r);
        assert_eq!(a.len(), 1);
        assert_eq!(a.first().map(|a| (a.rule, a.entries.len(), a.subject.as_str())), Some((Rule::ScanBurst, 10, "cli:ward")));
        // The same patient read ten times is not a burst.
        let same: Vec<Entry> = (0..10).map(|i| entry(i, i as i64, "record.read", "cli:ward", "loc", "ok", "patient=P-1")).collect();
        assert!(alerts(&same, &r).is_empty());
    }

    #[test]
    fn consent_refusals_are_reported_per_patient_with_their_entries() {
        let e = [
            entry(0, 0, "consent.refused", "k", "P-1", "older-version", ""),
            entry(1, 5, "qr.refused", "k", "P-2", "consent-revoked", ""),
            entry(2, 6, "qr.refused", "k", "-", "signature", ""),
            entry(4, 8, "qr.issued", "k", "P-2", "consent-revoked", ""),
            entry(5, 9, "qr.issued", "k", "P-3", "ok", "consent=abc"),
            entry(3, 7, "consent.refused", "k", "P-1", "not-covered", ""),
        ];
        let a = alerts(&e, &Rules::default());
        let consent: Vec<_> =
            a.iter().filter(|a| a.rule == Rule::OutsideConsent).map(|a| (a.subject.as_str(), a.entries.clone())).collect();
        assert_eq!(consent, vec![("P-1", vec![0, 3]), ("P-2", vec![1, 4])]);
    }

    #[test]
    fn five_refused_codes_in_a_row_alert_and_a_good_scan_resets_the_run() {
        let r = Rules::default();
        let mut e: Vec<Entry> = (0..4).map(|i| entry(i, i as i64, "qr.refused", "cli:ward", "-", "signature", "")).collect();
        e.push(entry(4, 4, "qr.scanned", "cli:ward", "qr", "ok", ""));
        e.push(entry(5, 5, "qr.refused", "cli:ward", "-", "signature", ""));
        assert!(alerts(&e, &r).is_empty(), "4, a good scan, then 1: no run of 5");
        e.extend((6..10).map(|i| entry(i, i as i64, "qr.refused", "cli:ward", "-", "expired", "")));
        let a = alerts(&e, &r);
        assert_eq!(a.iter().map(|a| (a.rule, a.entries.clone())).collect::<Vec<_>>(), vec![(Rule::RefusedInARow, vec![5, 6, 7, 8, 9])]);
    }

    #[test]
    fn a_check_in_asking_outside_the_consent_is_an_outside_consent_alert() {
        let e = [entry(0, 0, "qr.issued", "k", "P-4", "not-covered", ""), entry(1, 1, "qr.issued", "k", "P-5", "no-records", "")];
        let a = outside_consent(&e);
        assert_eq!(a.iter().map(|a| (a.subject.as_str(), a.entries.clone())).collect::<Vec<_>>(), vec![("P-4", vec![0])]);
    }

    #[test]
    fn unknown_kinds_and_outcomes_are_skipped_not_taken_for_known_ones() {
        let r = Rules { pin_failures: 1, burst_patients: 1, refused_in_a_row: 1, ..Rules::default() };
        let e = [
            // Near misses of known kinds: not PIN failures, refusals or reads.
            entry(0, 0, "card.pin_failed ", "k", "42", "wrong-pin", ""),
            entry(1, 0, "CARD.BLOCKED", "k", "42", "blocked", ""),
            entry(2, 0, "qr.refused.v2", "k", "-", "signature", ""),
            // A known kind whose outcome is unknown: a read not known to be `ok` is no read.
            entry(3, 0, "record.read", "k", "loc", "OK", "patient=P-1"),
            // An outcome that names the consent but is not one of the listed ones.
            entry(4, 0, "qr.issued", "k", "P-2", "consent-expired", ""),
            entry(5, 0, "qr.refused", "k", "P-3", "consent-revoked ", ""),
        ];
        // Only the refused-in-a-row rule fires, over entry 5 alone: it reads the kind, which is
        // known there, and not the outcome; entry 2's kind is unknown.
        let a = alerts(&e, &r);
        assert_eq!(a.iter().map(|a| (a.rule, a.entries.clone())).collect::<Vec<_>>(), vec![(Rule::RefusedInARow, vec![5])]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_entries_never_panic_and_alerts_name_existing_entries(
            rows in proptest::collection::vec((any::<i64>(), 0usize..8, "[a-c]{0,2}", "[0-9a-z=. -]{0,12}", any::<String>()), 0..60)
        ) {
            const KINDS: [&str; 8] = ["card.pin_failed", "card.blocked", "record.read", "consent.refused", "qr.refused", "qr.scanned", "x", ""];
            let entries: Vec<Entry> = rows.iter().enumerate().map(|(i, (t, k, actor, detail, outcome))| {
                entry(i as u64, *t, KINDS.get(*k).copied().unwrap_or(""), actor, actor, outcome, detail)
            }).collect();
            let tight = Rules { pin_failures: 1, pin_window_secs: i64::MAX, burst_patients: 1, burst_window_secs: 0, refused_in_a_row: 1 };
            for rules in [Rules::default(), tight] {
                for a in alerts(&entries, &rules) {
                    prop_assert!(!a.entries.is_empty());
                    prop_assert!(a.entries.iter().all(|s| (*s as usize) < entries.len()));
                }
            }
        }
    }
}
