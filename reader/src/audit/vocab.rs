//! The audit vocabulary: what happened ([`EventKind`]) and how it ended ([`Outcome`]).
//!
//! Writers pass these types, never text, so a kind or outcome cannot be misspelt and the alert
//! rules and the desktop's filters match the same values the writers wrote. The stored text of
//! each value is fixed forever: it is inside the hashed leaf (`docs/audit-log.md`, "Entries"), so
//! renaming one would make every existing log fail verification. Rows are read back as stored
//! text ([`super::Entry`]); text this version does not know parses to [`UnknownKind`] /
//! [`UnknownOutcome`], which the readers skip rather than guess at.

use std::fmt;
use std::str::FromStr;

use qr::verify::Layer;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A card issued (or an issuance that failed: the outcome says why).
    CardIssued,
    /// A card proven genuine (credential, revocation list, 9E challenge), or refused.
    CardVerified,
    /// A wrong PIN (detail: tries left).
    PinFailed,
    /// A PIN or PUK blocked: its last try used, or a try on a blocked one.
    CardBlocked,
    /// A card revoked in the clinic database.
    CardRevoked,
    /// A PIN verified as part of another flow (verify, consent).
    PinVerified,
    /// A PIN changed.
    PinChanged,
    /// A PIN unblocked with the PUK.
    CardUnblocked,
    /// A consent version (with a scope) written to the card, or first seen here.
    ConsentSet,
    /// A consent revocation (empty scope) written to the card, or first seen here.
    ConsentRevoked,
    /// A consent token on a card refused.
    ConsentRefused,
    /// A record encrypted into the store.
    RecordAdded,
    /// A record read (written out by the CLI, fetched by a scan, opened from the cache).
    RecordRead,
    /// A check-in: a QR code signed for a patient, or the refusal to sign one.
    QrIssued,
    /// A QR code verified at the bedside.
    QrScanned,
    /// A QR code refused at the bedside.
    QrRefused,
    /// Expired cached records purged.
    CachePurge,
    /// An attempt to unlock the desktop's admin view.
    AdminUnlock,
    /// Another clinic's certificate or key trusted (`medcard trust add`, desktop import).
    TrustAdded,
    /// A trust entry removed.
    TrustRemoved,
    /// An entry trusted from a signed trust bundle (`medcard trust import`).
    TrustImported,
    /// A trust add, import or remove refused (no or wrong fingerprint, bad bundle, ...).
    TrustRefused,
    /// This clinic's certificate or a signed trust bundle exported.
    TrustExported,
    /// The desktop's admin PIN set or changed (`medcard-desktop --set-admin-pin`).
    AdminPinSet,
    /// A device joined the clinic (`medcard device join`; written to the clinic log).
    DeviceJoined,
    /// A staff card issued (detail: staff id, role and the signed staff credential).
    StaffIssued,
    /// A staff sign-in: `ok` (signed by the card), or refused (the outcome says why).
    StaffSession,
    /// A staff session ended (card removed, idle, signed out).
    StaffSessionEnded,
    /// A patient's emergency data opened without their code ("break the glass"), signed by the
    /// clinician's card; detail: patient, reason.
    EmergencyAccess,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 29] = [
        EventKind::CardIssued,
        EventKind::CardVerified,
        EventKind::PinFailed,
        EventKind::CardBlocked,
        EventKind::CardRevoked,
        EventKind::PinVerified,
        EventKind::PinChanged,
        EventKind::CardUnblocked,
        EventKind::ConsentSet,
        EventKind::ConsentRevoked,
        EventKind::ConsentRefused,
        EventKind::RecordAdded,
        EventKind::RecordRead,
        EventKind::QrIssued,
        EventKind::QrScanned,
        EventKind::QrRefused,
        EventKind::CachePurge,
        EventKind::AdminUnlock,
        EventKind::TrustAdded,
        EventKind::TrustRemoved,
        EventKind::TrustImported,
        EventKind::TrustRefused,
        EventKind::TrustExported,
        EventKind::AdminPinSet,
        EventKind::DeviceJoined,
        EventKind::StaffIssued,
        EventKind::StaffSession,
        EventKind::StaffSessionEnded,
        EventKind::EmergencyAccess,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CardIssued => "card.issued",
            EventKind::CardVerified => "card.verified",
            EventKind::PinFailed => "card.pin_failed",
            EventKind::CardBlocked => "card.blocked",
            EventKind::CardRevoked => "card.revoked",
            EventKind::PinVerified => "card.pin_verified",
            EventKind::PinChanged => "card.pin_changed",
            EventKind::CardUnblocked => "card.unblocked",
            EventKind::ConsentSet => "consent.set",
            EventKind::ConsentRevoked => "consent.revoked",
            EventKind::ConsentRefused => "consent.refused",
            EventKind::RecordAdded => "record.added",
            EventKind::RecordRead => "record.read",
            EventKind::QrIssued => "qr.issued",
            EventKind::QrScanned => "qr.scanned",
            EventKind::QrRefused => "qr.refused",
            EventKind::CachePurge => "cache.purge",
            EventKind::AdminUnlock => "admin.unlock",
            EventKind::TrustAdded => "trust.added",
            EventKind::TrustRemoved => "trust.removed",
            EventKind::TrustImported => "trust.imported",
            EventKind::TrustRefused => "trust.refused",
            EventKind::TrustExported => "trust.exported",
            EventKind::AdminPinSet => "admin.pin_set",
            EventKind::DeviceJoined => "device.joined",
            EventKind::StaffIssued => "staff.issued",
            EventKind::StaffSession => "staff.session",
            EventKind::StaffSessionEnded => "staff.session_ended",
            EventKind::EmergencyAccess => "record.emergency",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored text that is not one of [`EventKind::ALL`] (a newer writer's, or an edited row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit event kind {got:?}")]
pub struct UnknownKind {
    /// The text read.
    pub got: String,
}

impl FromStr for EventKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownKind { got: s.to_owned() })
    }
}

/// How an event ended. Each value's stored text is in [`Outcome::as_str`]; the kinds that carry
/// it are named in its doc and in the table of `docs/audit-log.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    // Done, or nothing to do.
    /// `ok`: the action was done (any kind).
    Ok,
    /// `seen`: `consent.set` / `consent.revoked`: a consent version read from a card for the
    /// first time here (`consent show`, the kiosk), not written by this clinic.
    Seen,
    /// `unchanged`: `trust.added` / `trust.imported`: the same entry was already trusted;
    /// nothing was written.
    Unchanged,
    /// `already-revoked`: `card.revoked`: the card was revoked before; the first revocation stays.
    AlreadyRevoked,
    /// `failed`: a failure with no more specific outcome (`card.issued`, `card.verified`,
    /// `qr.issued`, `trust.refused`, `record.read`).
    Failed,

    // The card and its credential: `card.verified`, and a PIN operation (`card.pin_verified`,
    // `card.pin_changed`, `card.unblocked`) that failed for a reason other than a wrong secret.
    /// `no-credential`: the card holds no credential.
    NoCredential,
    /// `untrusted`: the credential's issuer is not trusted here.
    Untrusted,
    /// `bad-signature`: the credential's signature does not verify; on `consent.refused`, the
    /// consent token's signature does not verify with the card's key.
    BadSignature,
    /// `expired`: the credential is outside its validity; on `consent.refused`, the consent token
    /// expired.
    Expired,
    /// `serial-mismatch`: the credential names another card serial than the card's.
    SerialMismatch,
    /// `not-genuine`: the card failed the challenge of its credential's key (a copied credential).
    NotGenuine,
    /// `revoked`: the card is revoked.
    Revoked,
    /// `foreign-issuer`: a trusted partner clinic's card where only this clinic's own cards are
    /// accepted (kiosk, consent).
    ForeignIssuer,
    /// `pin-not-proven`: the card did not prove that the PIN was verified.
    PinNotProven,
    /// `malformed-credential`: the credential does not decode.
    MalformedCredential,
    /// `transport-error`: the reader or the card connection failed (also `card.issued`).
    TransportError,
    /// `card-error`: the card refused a command (also `card.issued`).
    CardError,
    /// `clinic-state-error`: the clinic database or keystore failed under a card flow.
    ClinicStateError,

    // Secrets.
    /// `wrong-pin`: `card.pin_failed` (detail: tries left); `admin.unlock`: a wrong admin PIN.
    WrongPin,
    /// `blocked`: `card.blocked`: the PIN or PUK (detail `secret=`) is blocked.
    Blocked,
    /// `wrong-puk`: `card.unblocked`: a wrong PUK (detail: tries left).
    WrongPuk,
    /// `wrong-old-pin`: `admin.pin_set`: the current admin PIN given was wrong.
    WrongOldPin,

    // Consent tokens: `consent.refused`.
    /// `older-version`: a version older than the highest this clinic has seen (a replay).
    OlderVersion,
    /// `conflicting-token`: the same version as one seen before, with other bytes.
    ConflictingToken,
    /// `no-token`: the card holds no consent token.
    NoToken,
    /// `malformed`: the token does not decode.
    Malformed,
    /// `other-card`: the token was signed by another card's key.
    OtherCard,
    /// `wrong-card`: the token names another patient or card serial.
    WrongCard,
    /// `other-clinic`: the token was given to another clinic.
    OtherClinic,
    /// `bad-scope`: the token's scope names an unknown category, or one twice.
    BadScope,
    /// `invalid-request`: a validity out of range (consent days; on `qr.issued`, the QR's
    /// validity), or no consent version left.
    InvalidRequest,

    // Check-in refusals: `qr.issued`.
    /// `card-refused`: the card, its PIN or its consent token was refused.
    CardRefused,
    /// `consent-revoked`: the patient's consent is revoked: nothing may be shared.
    ConsentRevoked,
    /// `not-covered`: categories were asked for that the consent does not cover.
    NotCovered,
    /// `no-records`: the patient has no records in the consented categories.
    NoRecords,
    /// `too-many`: more records than one index holds.
    TooMany,
    /// `audit-failed`: the audit log could not be written during the check-in.
    AuditFailed,

    // Trust changes: `trust.refused`.
    /// `unusable`: the file is not a usable certificate or key.
    Unusable,
    /// `clinic-id`: no, a malformed, or a mismatching clinic id.
    ClinicId,
    /// `no-fingerprint`: no fingerprint was given to confirm the entry.
    NoFingerprint,
    /// `fingerprint-mismatch`: the fingerprint given is not the entry's.
    FingerprintMismatch,
    /// `bad-fingerprint`: the fingerprint given is malformed.
    BadFingerprint,
    /// `not-a-bundle`: the file is not a trust bundle.
    NotABundle,
    /// `bad-bundle`: the bundle's signature, content or an entry in it is refused.
    BadBundle,
    /// `own-clinic`: the entry is this clinic's own.
    OwnClinic,
    /// `conflict`: another entry is already trusted under that clinic id.
    Conflict,

    // Bedside scans: `qr.refused`.
    /// `issuer-unknown`: the code's key is not in the trust list.
    IssuerUnknown,
    /// `expired-or-not-yet-valid`: the code is outside its validity.
    ExpiredOrNotYetValid,
    /// `issuer-mismatch`: a trusted key signed a code in another clinic's name.
    IssuerMismatch,
    /// `too-long-lived`: the code is valid for longer than any kiosk issues.
    TooLongLived,
    /// `invalid-<layer>`: the code failed at that layer of the verifier (`invalid-prefix`,
    /// `invalid-base45`, `invalid-zlib`, `invalid-cose_sign1`, `invalid-algorithm`, `invalid-kid`,
    /// `invalid-signature`, `invalid-claims`, `invalid-time`; the name is [`Layer::name`]).
    Invalid(Layer),
    /// `already-used`: the one-time code was scanned before.
    AlreadyUsed,
    /// `store-integrity`: the store holds other bytes than the code's digest.
    StoreIntegrity,
    /// `record-integrity`: the record does not open with the code's key.
    RecordIntegrity,
    /// `fetch-failed`: the record could not be fetched or cached.
    FetchFailed,
    /// `bad-index`: the record index is malformed or contradicts the records.
    BadIndex,
    /// `db-failed`: the bedside database failed.
    DbFailed,
    /// `clinic-db-unavailable`: clinic mode, the clinic database was unreachable, so whether the
    /// one-time code was used elsewhere could not be checked.
    ClinicDbUnavailable,
    /// `too-long`: the text is longer than a QR code holds.
    TooLong,

    // Reads: `record.read`.
    /// `cache-refused`: the cached record is gone or no longer valid.
    CacheRefused,
    /// `integrity-failed`: `medcard record get`: the stored bytes or the wrapped key were altered.
    IntegrityFailed,

    // Staff: `staff.session`, and reads refused for want of a staff session.
    /// `not-permitted`: the staff card's role may not do this, or names a role we do not know.
    NotPermitted,
    /// `no-staff-session`: this clinic requires a staff sign-in and there was none.
    NoStaffSession,
    /// `no-reason`: emergency access asked for without a reason.
    NoReason,
}

impl Outcome {
    /// Every outcome (each layer of [`Outcome::Invalid`] once).
    pub const ALL: [Outcome; 72] = [
        Outcome::Ok,
        Outcome::Seen,
        Outcome::Unchanged,
        Outcome::AlreadyRevoked,
        Outcome::Failed,
        Outcome::NoCredential,
        Outcome::Untrusted,
        Outcome::BadSignature,
        Outcome::Expired,
        Outcome::SerialMismatch,
        Outcome::NotGenuine,
        Outcome::Revoked,
        Outcome::ForeignIssuer,
        Outcome::PinNotProven,
        Outcome::MalformedCredential,
        Outcome::TransportError,
        Outcome::CardError,
        Outcome::ClinicStateError,
        Outcome::WrongPin,
        Outcome::Blocked,
        Outcome::WrongPuk,
        Outcome::WrongOldPin,
        Outcome::OlderVersion,
        Outcome::ConflictingToken,
        Outcome::NoToken,
        Outcome::Malformed,
        Outcome::OtherCard,
        Outcome::WrongCard,
        Outcome::OtherClinic,
        Outcome::BadScope,
        Outcome::InvalidRequest,
        Outcome::CardRefused,
        Outcome::ConsentRevoked,
        Outcome::NotCovered,
        Outcome::NoRecords,
        Outcome::TooMany,
        Outcome::AuditFailed,
        Outcome::Unusable,
        Outcome::ClinicId,
        Outcome::NoFingerprint,
        Outcome::FingerprintMismatch,
        Outcome::BadFingerprint,
        Outcome::NotABundle,
        Outcome::BadBundle,
        Outcome::OwnClinic,
        Outcome::Conflict,
        Outcome::IssuerUnknown,
        Outcome::ExpiredOrNotYetValid,
        Outcome::IssuerMismatch,
        Outcome::TooLongLived,
        Outcome::Invalid(Layer::Prefix),
        Outcome::Invalid(Layer::Base45),
        Outcome::Invalid(Layer::Inflate),
        Outcome::Invalid(Layer::Cose),
        Outcome::Invalid(Layer::Algorithm),
        Outcome::Invalid(Layer::Kid),
        Outcome::Invalid(Layer::Signature),
        Outcome::Invalid(Layer::Claims),
        Outcome::Invalid(Layer::Time),
        Outcome::AlreadyUsed,
        Outcome::StoreIntegrity,
        Outcome::RecordIntegrity,
        Outcome::FetchFailed,
        Outcome::BadIndex,
        Outcome::DbFailed,
        Outcome::ClinicDbUnavailable,
        Outcome::TooLong,
        Outcome::CacheRefused,
        Outcome::IntegrityFailed,
        Outcome::NotPermitted,
        Outcome::NoStaffSession,
        Outcome::NoReason,
    ];

    /// The stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Seen => "seen",
            Outcome::Unchanged => "unchanged",
            Outcome::AlreadyRevoked => "already-revoked",
            Outcome::Failed => "failed",
            Outcome::NoCredential => "no-credential",
            Outcome::Untrusted => "untrusted",
            Outcome::BadSignature => "bad-signature",
            Outcome::Expired => "expired",
            Outcome::SerialMismatch => "serial-mismatch",
            Outcome::NotGenuine => "not-genuine",
            Outcome::Revoked => "revoked",
            Outcome::ForeignIssuer => "foreign-issuer",
            Outcome::PinNotProven => "pin-not-proven",
            Outcome::MalformedCredential => "malformed-credential",
            Outcome::TransportError => "transport-error",
            Outcome::CardError => "card-error",
            Outcome::ClinicStateError => "clinic-state-error",
            Outcome::WrongPin => "wrong-pin",
            Outcome::Blocked => "blocked",
            Outcome::WrongPuk => "wrong-puk",
            Outcome::WrongOldPin => "wrong-old-pin",
            Outcome::OlderVersion => "older-version",
            Outcome::ConflictingToken => "conflicting-token",
            Outcome::NoToken => "no-token",
            Outcome::Malformed => "malformed",
            Outcome::OtherCard => "other-card",
            Outcome::WrongCard => "wrong-card",
            Outcome::OtherClinic => "other-clinic",
            Outcome::BadScope => "bad-scope",
            Outcome::InvalidRequest => "invalid-request",
            Outcome::CardRefused => "card-refused",
            Outcome::ConsentRevoked => "consent-revoked",
            Outcome::NotCovered => "not-covered",
            Outcome::NoRecords => "no-records",
            Outcome::TooMany => "too-many",
            Outcome::AuditFailed => "audit-failed",
            Outcome::Unusable => "unusable",
            Outcome::ClinicId => "clinic-id",
            Outcome::NoFingerprint => "no-fingerprint",
            Outcome::FingerprintMismatch => "fingerprint-mismatch",
            Outcome::BadFingerprint => "bad-fingerprint",
            Outcome::NotABundle => "not-a-bundle",
            Outcome::BadBundle => "bad-bundle",
            Outcome::OwnClinic => "own-clinic",
            Outcome::Conflict => "conflict",
            Outcome::IssuerUnknown => "issuer-unknown",
            Outcome::ExpiredOrNotYetValid => "expired-or-not-yet-valid",
            Outcome::IssuerMismatch => "issuer-mismatch",
            Outcome::TooLongLived => "too-long-lived",
            // Spelt out rather than formatted so the text is static; a test holds each equal to
            // `invalid-` + `Layer::name`, the text written before this type existed.
            Outcome::Invalid(layer) => match layer {
                Layer::Prefix => "invalid-prefix",
                Layer::Base45 => "invalid-base45",
                Layer::Inflate => "invalid-zlib",
                Layer::Cose => "invalid-cose_sign1",
                Layer::Algorithm => "invalid-algorithm",
                Layer::Kid => "invalid-kid",
                Layer::Signature => "invalid-signature",
                Layer::Claims => "invalid-claims",
                Layer::Time => "invalid-time",
            },
            Outcome::AlreadyUsed => "already-used",
            Outcome::StoreIntegrity => "store-integrity",
            Outcome::RecordIntegrity => "record-integrity",
            Outcome::FetchFailed => "fetch-failed",
            Outcome::BadIndex => "bad-index",
            Outcome::DbFailed => "db-failed",
            Outcome::ClinicDbUnavailable => "clinic-db-unavailable",
            Outcome::TooLong => "too-long",
            Outcome::CacheRefused => "cache-refused",
            Outcome::IntegrityFailed => "integrity-failed",
            Outcome::NotPermitted => "not-permitted",
            Outcome::NoStaffSession => "no-staff-session",
            Outcome::NoReason => "no-reason",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored text that is not one of [`Outcome::ALL`] (a newer writer's, or an edited row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit outcome {got:?}")]
pub struct UnknownOutcome {
    /// The text read.
    pub got: String,
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| UnknownOutcome { got: s.to_owned() })
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_stored_text() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
    }

    #[test]
    fn every_outcome_round_trips_through_its_stored_text() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
            assert_eq!(o.to_string(), o.as_str());
        }
    }

    #[test]
    fn no_two_kinds_or_outcomes_share_a_text() {
        let mut kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), EventKind::ALL.len());
        let mut outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        outcomes.sort_unstable();
        outcomes.dedup();
        assert_eq!(outcomes.len(), Outcome::ALL.len());
    }

    #[test]
    fn invalid_outcomes_keep_the_text_composed_from_the_verifier_layer_name() {
        for layer in Layer::ALL {
            assert_eq!(Outcome::Invalid(layer).as_str(), format!("invalid-{}", layer.name()));
            assert!(Outcome::ALL.contains(&Outcome::Invalid(layer)), "{layer:?} missing from Outcome::ALL");
        }
    }

    /// The cells of each row of the markdown table under `heading` (header and rule left out).
    fn table<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
        doc.lines()
            .skip_while(|l| l.trim() != heading)
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| l.trim().trim_matches('|').split('|').map(str::trim).collect())
            .collect()
    }

    /// The `code` spans of a cell.
    fn codes(cell: &str) -> Vec<&str> {
        cell.split('`').skip(1).step_by(2).collect()
    }

    #[test]
    fn the_audit_log_doc_lists_every_kind_and_outcome_and_only_real_ones() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/audit-log.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));

        let kinds = table(&doc, "### Kinds");
        let listed: Vec<&str> = kinds.iter().filter_map(|row| row.first()).flat_map(|c| codes(c)).collect();
        for k in EventKind::ALL {
            assert!(listed.contains(&k.as_str()), "docs/audit-log.md, Kinds: no row for `{k}`");
        }
        for text in &listed {
            assert!(text.parse::<EventKind>().is_ok(), "docs/audit-log.md, Kinds: `{text}` is not a kind");
        }
        // Each kind's outcomes column names outcomes that exist.
        for row in &kinds {
            for text in row.get(3).map(|c| codes(c)).unwrap_or_default() {
                assert!(text.parse::<Outcome>().is_ok(), "docs/audit-log.md, Kinds, {row:?}: `{text}` is not an outcome");
            }
        }

        let outcomes = table(&doc, "### Outcomes");
        let listed: Vec<&str> = outcomes.iter().filter_map(|row| row.first()).flat_map(|c| codes(c)).collect();
        for o in Outcome::ALL {
            assert!(listed.contains(&o.as_str()), "docs/audit-log.md, Outcomes: no row for `{o}`");
        }
        for text in &listed {
            assert!(text.parse::<Outcome>().is_ok(), "docs/audit-log.md, Outcomes: `{text}` is not an outcome");
        }
        for row in &outcomes {
            for text in row.get(1).map(|c| codes(c)).unwrap_or_default() {
                assert!(text.parse::<EventKind>().is_ok(), "docs/audit-log.md, Outcomes, {row:?}: `{text}` is not a kind");
            }
        }
    }

    #[test]
    fn unknown_or_near_miss_text_is_refused_not_guessed() {
        for text in ["", "OK", "ok ", "refused", "invalid-", "invalid-nope", "card.pin_failed"] {
            assert_eq!(text.parse::<Outcome>(), Err(UnknownOutcome { got: text.to_owned() }));
        }
        for text in ["", "card.pin_failed ", "CARD.ISSUED", "card", "ok"] {
            assert_eq!(text.parse::<EventKind>(), Err(UnknownKind { got: text.to_owned() }));
        }
    }
}
