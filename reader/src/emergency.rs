//! Emergency access ("break the glass", `docs/staff.md`): a clinician opens a patient's emergency
//! data set without the patient's code, with their staff card, its PIN and a typed reason.
//!
//! Without the code there is no content key from the patient: the records are reached through
//! the clinic's index and the clinic's record-key-wrap key (HKDF of the master secret), as
//! `medcard record get` reaches them. So emergency access runs where that key is: the admin PC
//! or a kiosk (single-device mode: the one device). A bedside device holds no master secret and
//! is refused with a message that says where to go.
//!
//! Only the emergency categories are opened ([`EmergencyConfig`]; default allergies,
//! medications and summary: the patient's problems and diagnoses). Every attempt is audited as
//! `record.emergency`, subject the patient id, signed by the clinician's card; a refusal for want
//! of a reason or of the right role too. `medcard audit alerts` raises an alert for each one, and
//! the patient's access report shows it with its reason.

use std::path::Path;

use zeroize::Zeroizing;

use crate::audit::{Event, EventKind, Outcome};
use crate::category::{Category, UnknownCategory};
use crate::clinic_state::{ClinicError, ClinicState};
use crate::db::DbError;
use crate::keystore::{KeyPurpose, Keystore, KeystoreError};
use crate::records::{self, OpenRowError};
use crate::staff::Action;
use crate::staff_card::EntrySigner;
use crate::store::RecordStore;

/// The file in the data directory that names the emergency categories.
pub const CONFIG_FILE: &str = "emergency.json";
/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 200;

/// Why emergency access did not open the records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmergencyError {
    /// The staff member's role may not (audited).
    #[error(transparent)]
    NotPermitted(crate::Error),
    /// No reason, or an unusable one (audited).
    #[error(
        "emergency access needs a reason: say in 1 to {MAX_REASON} characters, on one line, why you open this patient's records without their code"
    )]
    NoReason,
    /// This device holds no record keys.
    #[error(
        "this device cannot open records without the patient's code ({0}): emergency access runs on the admin PC or a kiosk, which hold the clinic's record keys"
    )]
    NoRecordKeys(#[source] KeystoreError),
    /// `emergency.json` is unreadable or names a category we do not know.
    #[error("{}: {why}: fix it (for example {{\"categories\": [\"allergies\", \"medications\", \"summary\"]}}) or remove it for the default", path.display())]
    Config { path: std::path::PathBuf, why: String },
    /// The clinic state (index, audit log).
    #[error(transparent)]
    Clinic(#[from] ClinicError),
    /// The index could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A record could not be opened (store, altered key or bytes, metadata not the index's).
    #[error(transparent)]
    Record(#[from] OpenRowError),
    /// The card could not sign the entry: nothing is shown.
    #[error("the staff card could not sign the emergency access (was it removed?): nothing is shown: {0}")]
    Signing(crate::Error),
}

/// Which categories make up the emergency data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyConfig {
    /// The categories opened.
    pub categories: Vec<Category>,
}

impl Default for EmergencyConfig {
    fn default() -> Self {
        EmergencyConfig { categories: vec![Category::Allergies, Category::Medications, Category::Summary] }
    }
}

impl EmergencyConfig {
    /// The configuration of data directory `dir`: `<dir>/emergency.json` if present, else the
    /// default. A file that does not parse, or names an unknown category, is an error (never a
    /// silent default).
    pub fn load(dir: &Path) -> Result<Self, EmergencyError> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(EmergencyError::Config { path, why: e.to_string() }),
        };
        Self::parse(&text).map_err(|why| EmergencyError::Config { path, why })
    }

    /// Parses `{"categories": [...]}` (at least one, known names only).
    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            categories: Vec<String>,
        }
        let f: File = serde_json::from_str(text).map_err(|e| format!("not an emergency configuration: {e}"))?;
        let categories = f.categories.iter().map(|c| c.parse::<Category>()).collect::<Result<Vec<_>, UnknownCategory>>();
        let categories = categories.map_err(|e| e.to_string())?;
        if categories.is_empty() {
            return Err("no category listed".into());
        }
        Ok(EmergencyConfig { categories })
    }
}

/// Checks a reason: 1-200 characters after trimming, no control characters.
fn usable_reason(reason: &str) -> Option<&str> {
    let r = reason.trim();
    (!r.is_empty() && r.chars().count() <= MAX_REASON && !r.chars().any(char::is_control)).then_some(r)
}

/// One opened record of the emergency data set.
#[derive(Debug)]
pub struct EmergencyRecord {
    /// The record id.
    pub record_id: String,
    /// Its category.
    pub category: Category,
    /// Its media type.
    pub media_type: String,
    /// The document.
    pub document: Zeroizing<Vec<u8>>,
}

/// Opens patient `patient_id`'s emergency data set for the signed-in clinician behind `signer`,
/// for `reason` (module docs). The entry is written, signed, before anything is returned.
pub fn open(
    ks: &Keystore,
    state: &ClinicState,
    store: &dyn RecordStore,
    signer: &mut dyn EntrySigner,
    patient_id: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<EmergencyRecord>, EmergencyError> {
    let session = signer.session().clone();
    let mut audit = |outcome: Outcome, detail: String| -> Result<(), EmergencyError> {
        let mut ev =
            Event { time: now, kind: EventKind::EmergencyAccess, actor: String::new(), subject: patient_id.to_owned(), outcome, detail };
        signer.sign(&mut ev).map_err(EmergencyError::Signing)?;
        state.audit(&[ev])?;
        Ok(())
    };
    if !session.permits(Action::EmergencyAccess) {
        let e =
            crate::Error::NotPermitted { staff_id: session.staff_id().to_owned(), role: session.role(), action: Action::EmergencyAccess };
        audit(Outcome::NotPermitted, format!("patient={patient_id} role={}", session.role()))?;
        return Err(EmergencyError::NotPermitted(e));
    }
    let Some(reason) = usable_reason(reason) else {
        audit(Outcome::NoReason, format!("patient={patient_id}"))?;
        return Err(EmergencyError::NoReason);
    };
    let config = EmergencyConfig::load(ks.data_dir())?;
    let wrap = ks.derive_key(KeyPurpose::RecordKeyWrap).map_err(EmergencyError::NoRecordKeys)?;
    let rows = state.records(Some(patient_id))?;
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| config.categories.contains(&r.meta.category)) {
        let opened = records::open_row(&wrap, store, row)?;
        out.push(EmergencyRecord {
            record_id: row.meta.record_id.clone(),
            category: row.meta.category,
            media_type: row.meta.media_type.clone(),
            document: Zeroizing::new(opened.document().to_vec()),
        });
    }
    let cats: Vec<&str> = config.categories.iter().map(|c| c.as_str()).collect();
    audit(Outcome::Ok, format!("patient={patient_id} records={} categories={} reason={reason}", out.len(), cats.join(",")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emergency_configuration_is_strict_and_defaults_to_the_documented_set() {
        assert_eq!(
            EmergencyConfig::parse(r#"{"categories": ["allergies", "labs"]}"#),
            Ok(EmergencyConfig { categories: vec![Category::Allergies, Category::Labs] })
        );
        for bad in [r#"{"categories": []}"#, r#"{"categories": ["xrays"]}"#, r#"{"cats": ["labs"]}"#, "[", ""] {
            assert!(EmergencyConfig::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(EmergencyConfig::default().categories, vec![Category::Allergies, Category::Medications, Category::Summary]);
    }

    #[test]
    fn reason_must_be_one_short_line() {
        assert_eq!(usable_reason("  unconscious on arrival "), Some("unconscious on arrival"));
        for bad in ["", "   ", "a\nb", &"x".repeat(201)] {
            assert_eq!(usable_reason(bad), None, "{bad:?}");
        }
    }
}
