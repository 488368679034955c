//! The patient's access report at the kiosk, right after a check-in (`docs/desktop.md`, "Access
//! report"): who read their records since their previous visit, and every emergency access with
//! its reason. Built as `medcard patient checkin` builds it: the audit log is verified first (a
//! log that does not verify gives no report, it says so), then
//! [`reader::access_report::report`] over its entries from the previous check-in on, with the
//! categories the clinic's index knows. Runs on the kiosk's worker thread.

use std::collections::HashMap;

use reader::Keystore;
use reader::access_report::{self, Access};
use reader::audit::{self, Entry};
use reader::clinic::ClinicState;
use reader::db::ClinicDb;

use crate::context::AppContext;

/// The report since the patient's previous check-in, one line per access
/// ([`access_report::describe`]); empty when no one read their records.
///
/// # Errors
/// A sentence for the patient's screen: the log could not be read, or it does not verify.
pub fn since_last_visit(env: &AppContext, patient_id: &str) -> Result<Vec<String>, String> {
    let unavailable = |e: &dyn std::fmt::Display| format!("the access report is not available ({e}); ask reception");
    let o = env.open().map_err(|e| unavailable(&e))?;
    let db = ClinicDb::open_clinic(&o.ks).map_err(|e| unavailable(&e))?;
    let entries = verified_entries(&o.ks, &o.state, &db)?;
    let categories: HashMap<String, String> = o
        .state
        .records(Some(patient_id))
        .map_err(|e| unavailable(&e))?
        .into_iter()
        .flat_map(|r| {
            let c = r.meta.category.as_str().to_owned();
            [(r.locator.to_string(), c.clone()), (r.meta.record_id, c)]
        })
        .collect();
    let since = access_report::previous_visit(&entries, patient_id);
    let found: Vec<Access> = access_report::report(&entries, patient_id, since, &o.ks.issuer_public(), &categories);
    Ok(found.iter().map(access_report::describe).collect())
}

/// The log's entries (the clinic's in clinic mode, else this device's), after verifying the
/// whole log as `medcard audit verify` does.
fn verified_entries(ks: &Keystore, state: &ClinicState, db: &ClinicDb) -> Result<Vec<Entry>, String> {
    let unavailable = |e: &dyn std::fmt::Display| format!("the access report is not available ({e}); ask reception");
    let issuer = ks.issuer_public();
    let shared = state
        .with_clinic_db(|pg| {
            let cps = pg.audit_checkpoints()?;
            let mut failed = None;
            let r = audit::verify_rows(cps, &issuer, |sink| {
                if let Err(e) = pg.audit_rows(sink) {
                    failed = Some(e);
                }
                Ok(())
            });
            Ok((r, failed))
        })
        .map_err(|e| unavailable(&e))?;
    let verdict = match shared {
        Some((_, Some(e))) => return Err(unavailable(&e)),
        Some((r, None)) => r,
        None => audit::verify(db, &issuer),
    };
    match verdict {
        Ok(Ok(_)) => {}
        Ok(Err(finding)) => {
            return Err(format!("the access report is not shown: the audit log does not verify ({finding}); ask reception"));
        }
        Err(e) => return Err(unavailable(&e)),
    }
    match state.with_clinic_db(|pg| pg.audit_entries(None)).map_err(|e| unavailable(&e))? {
        Some(e) => Ok(e),
        None => audit::entries(db, 0, None).map_err(|e| unavailable(&e)),
    }
}
