//! Reading the fields the writers put in an entry's detail text (their formats are in
//! `docs/audit-log.md`, "Kinds"), for the verifier, the alert rules and the access report alike.
//! Text that does not have the field reads as absent, never as another value.

use p256::ecdsa::VerifyingKey;

use crate::staff::credential::{self, VerifiedStaff};
use crate::staff::signed;

/// `key=value` from a detail text (space-separated fields).
#[must_use]
pub fn field<'a>(detail: &'a str, key: &str) -> Option<&'a str> {
    detail.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The reason of a `record.emergency` entry: all that follows `reason=` (the last field, which
/// may hold spaces), the staff card's signature left out; empty when there is none.
#[must_use]
pub fn emergency_reason(detail: &str) -> &str {
    signed::unsigned_detail(detail).split_once("reason=").map_or("", |x| x.1)
}

/// The staff credential an `ok` `staff.issued` entry (subject the card serial, detail
/// `staff=<id> role=<role> credential=<hex>`) carries, verified with the clinic issuer key, and
/// naming the serial and staff id the entry names. The error says what is wrong, for a finding.
pub fn issued_staff(subject: &str, detail: &str, issuer: &VerifyingKey) -> Result<VerifiedStaff, String> {
    let hex_text = detail.rsplit_once("credential=").map_or("", |x| x.1);
    let bytes = hex::decode(hex_text).map_err(|_| "its staff credential is not hex".to_owned())?;
    let staff =
        credential::verify_with(&bytes, issuer).map_err(|e| format!("its staff credential does not verify with the clinic key: {e}"))?;
    let c = staff.credential();
    if subject != c.card_serial.to_string() || !detail.starts_with(&format!("staff={} ", c.staff_id)) {
        return Err("its subject or staff id differs from the credential it carries".into());
    }
    Ok(staff)
}
