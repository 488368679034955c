//! The patient's access report at the kiosk, right after a check-in (`docs/desktop.md`, "Access
//! report"): who read their records since their previous visit, and every emergency access with
//! its reason. Built by the library as `medcard patient checkin` builds it
//! ([`reader::access_report::verified_report`]: the whole audit log verified first, so a log that
//! does not verify gives no report, then the accesses from the previous check-in on with the
//! categories the clinic's index knows); this module only words it for the patient. Runs on the
//! kiosk's worker thread.

use reader::access_report::{self, Access, AccessKind, ReportError, Since};

use crate::context::AppContext;

/// The report since the patient's previous check-in in lines for the patient ([`lines`]);
/// empty when no one read their records.
///
/// # Errors
/// A sentence for the patient's screen: the log could not be read, or it does not verify.
pub fn since_last_visit(env: &AppContext, patient_id: &str) -> Result<Vec<String>, String> {
    let unavailable = |e: &dyn std::fmt::Display| format!("the access report is not available ({e}); ask reception");
    let o = env.open().map_err(|e| unavailable(&e))?;
    match access_report::verified_report(&o.state, &o.ks.issuer_public(), patient_id, Since::LastVisit) {
        Ok(found) => Ok(lines(&found)),
        Err(ReportError::Log(finding)) => {
            Err(format!("the access report is not shown: the audit log does not verify ({finding}); ask reception"))
        }
        Err(e) => Err(unavailable(&e)),
    }
}

/// The accesses in lines for the patient, oldest first: the reads one person made in the same
/// minute on one line ("2026-12-03 10:42 UTC: Dr N. Lee (clinician) read your allergies and
/// labs"), each emergency access on its own with its reason. Pure.
#[must_use]
pub fn lines(found: &[Access]) -> Vec<String> {
    // (minute, who, what was read) of the line being built; emergency lines are made at once.
    let mut out: Vec<String> = Vec::new();
    let mut reads: Option<(i64, String, Vec<String>)> = None;
    let flush = |reads: &mut Option<(i64, String, Vec<String>)>, out: &mut Vec<String>| {
        if let Some((minute, who, what)) = reads.take() {
            out.push(format!("{}: {who} read your {}", crate::style::date_time(minute * 60), join(&what)));
        }
    };
    for a in found {
        let who = match &a.role {
            Some(r) => format!("{} ({r})", a.who),
            None => a.who.clone(),
        };
        let minute = a.time.div_euclid(60);
        match &a.what {
            AccessKind::Read { record, category } => {
                let what = category.clone().unwrap_or_else(|| format!("record {record}"));
                match &mut reads {
                    Some((m, w, list)) if *m == minute && *w == who => {
                        if !list.contains(&what) {
                            list.push(what);
                        }
                    }
                    _ => {
                        flush(&mut reads, &mut out);
                        reads = Some((minute, who, vec![what]));
                    }
                }
            }
            AccessKind::Emergency { reason, records } => {
                flush(&mut reads, &mut out);
                out.push(format!(
                    "{}: EMERGENCY ACCESS by {who} to {records} record(s) without your code, because: {reason}",
                    crate::style::date_time(a.time)
                ));
            }
        }
    }
    flush(&mut reads, &mut out);
    out
}

/// "a", "a and b", "a, b and c".
fn join(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(time: i64, who: &str, category: &str) -> Access {
        Access {
            seq: 0,
            time,
            who: who.into(),
            staff_id: Some("S-1".into()),
            role: Some("clinician".into()),
            signed: true,
            what: AccessKind::Read { record: "loc".into(), category: Some(category.into()) },
        }
    }

    #[test]
    fn reads_of_one_person_in_one_minute_make_one_line_and_an_emergency_access_stands_alone() {
        let t = 1_796_300_000 - 1_796_300_000 % 60;
        let emergency = Access { what: AccessKind::Emergency { reason: "unconscious".into(), records: 3 }, ..read(t + 5, "Dr N. Lee", "") };
        let found =
            vec![read(t, "Dr N. Lee", "allergies"), read(t + 1, "Dr N. Lee", "labs"), emergency, read(t + 7200, "Dr K. Ito", "labs")];
        let l = lines(&found);
        let at = |i: usize| l.get(i).map_or("", String::as_str);
        assert_eq!(l.len(), 3, "{l:?}");
        assert!(at(0).ends_with("Dr N. Lee (clinician) read your allergies and labs"), "{l:?}");
        assert!(at(1).contains("EMERGENCY ACCESS by Dr N. Lee (clinician) to 3 record(s) without your code, because: unconscious"));
        assert!(at(2).ends_with("Dr K. Ito (clinician) read your labs"), "{l:?}");
        assert!(lines(&[]).is_empty());
    }
}
