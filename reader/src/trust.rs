//! Trust changes: which other clinics' issuer keys this clinic accepts, and how they get there
//! (issue 13). The `medcard trust` commands and the desktop admin trust tab both call these
//! functions, so both write the same files and the same audit entries:
//!
//! * [`add_file`]: one certificate or key, shown with its clinic id and SHA-256 fingerprint, and
//!   stored only when the operator gives that fingerprint (compared in constant time);
//! * [`export_certificate`] / [`export_bundle`]: this clinic's CA certificate, or a **signed
//!   trust bundle** (a COSE_Sign1 by the issuer key over this clinic's id, CA certificate and,
//!   only when asked for, the clinics it trusts) — byte format in `docs/clinic-keys.md`
//!   ("Trust bundles");
//! * [`import_bundle`]: verifies the bundle's signature with the CA certificate inside it, shows
//!   the exporter's id and fingerprint, requires the operator's fingerprint, and trusts the
//!   exporter only; the exporter's partners only with `include_partners`, each listed;
//! * [`remove`].
//!
//! Every change (added, removed, imported, exported) and every refusal (`trust.refused`) is
//! audited; a refusal writes no trust file. Trust files are named after the clinic id
//! (`trust/<clinic-id>.pem`, `.cose` for a COSE_Key), `trust/` is 0700 and each file 0600
//! ([`crate::clinic_state::ClinicState::trust_files`] refuses anything more open when loading).

use std::fmt;

use ciborium::Value;
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{Event, EventKind, Outcome};
use crate::clinic_state::{ClinicError, ClinicState};
use crate::cose_util::SignError;
use crate::cose_util::{self, ObjectError};
use crate::export::ExportError;
use crate::keystore::Keystore;
use crate::x509;

/// The protected content type of a trust bundle's COSE_Sign1.
pub const BUNDLE_CONTENT_TYPE: &str = "application/medcard-trust-bundle+cbor";
/// The PEM label `medcard trust export --bundle` writes.
pub const BUNDLE_PEM_LABEL: &str = "MEDCARD TRUST BUNDLE";
/// The bundle payload's format number.
pub const BUNDLE_FORMAT: u64 = 1;
/// At most this many partner entries in a bundle.
pub const MAX_PARTNERS: usize = 256;

// Payload keys (docs/clinic-keys.md, "Trust bundles").
const P_FORMAT: i64 = 1;
const P_CLINIC: i64 = 2;
const P_CA: i64 = 3;
const P_CREATED: i64 = 4;
const P_PARTNERS: i64 = 5;
const E_CLINIC: i64 = 1;
const E_KIND: i64 = 2;
const E_DATA: i64 = 3;

/// A SHA-256 fingerprint: of a certificate's DER, or of a bare key's SubjectPublicKeyInfo DER
/// (uncompressed point). Shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// SHA-256 of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint(Sha256::digest(bytes).into())
    }

    /// Parses what an operator typed: 64 hex digits, upper or lower case, optionally separated by
    /// `:`, spaces or `-` (as `openssl x509 -fingerprint -sha256` prints it).
    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ' | '-' | '\t')).collect();
        let bad = || TrustError::BadFingerprint { given: text.chars().take(100).collect() };
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| bad())?;
        Ok(Fingerprint(out))
    }

    /// Whether `other` is the same fingerprint (constant time).
    #[must_use]
    pub fn matches(&self, other: &Fingerprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// What a trust entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An X.509 certificate (DER): a clinic CA.
    Certificate,
    /// A SubjectPublicKeyInfo (DER): a bare key.
    PublicKey,
    /// A COSE_Key (CBOR): a bare key.
    CoseKey,
}

impl EntryKind {
    /// The code in a bundle's partner entry.
    #[must_use]
    pub fn code(self) -> u64 {
        match self {
            EntryKind::Certificate => 1,
            EntryKind::PublicKey => 2,
            EntryKind::CoseKey => 3,
        }
    }
    fn from_code(c: u64) -> Option<Self> {
        match c {
            1 => Some(EntryKind::Certificate),
            2 => Some(EntryKind::PublicKey),
            3 => Some(EntryKind::CoseKey),
            _ => None,
        }
    }
    /// For messages.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::Certificate => "CA certificate",
            EntryKind::PublicKey => "public key",
            EntryKind::CoseKey => "COSE_Key",
        }
    }
}

/// A certificate or key that could be trusted: parsed, P-256, its clinic id known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The clinic it is trusted for (a certificate: its subject's `O=MedCard clinic <id>`; a
    /// bare key: the id the operator gave).
    pub clinic_id: String,
    /// What it is.
    pub kind: EntryKind,
    /// The certificate DER, SubjectPublicKeyInfo DER or COSE_Key bytes.
    pub data: Vec<u8>,
    /// See [`Fingerprint`].
    pub fingerprint: Fingerprint,
    /// The key's MedCard kid (hex).
    pub kid: String,
    key: VerifyingKey,
}

impl Entry {
    /// The trust file name: `<clinic-id>.pem`, or `<clinic-id>.cose` for a COSE_Key.
    #[must_use]
    pub fn file_name(&self) -> String {
        match self.kind {
            EntryKind::CoseKey => format!("{}.cose", self.clinic_id),
            _ => format!("{}.pem", self.clinic_id),
        }
    }
    /// The trust file's bytes (PEM for a certificate or SPKI, the COSE_Key as is).
    #[must_use]
    pub fn file_bytes(&self) -> Vec<u8> {
        match self.kind {
            EntryKind::Certificate => x509::to_pem("CERTIFICATE", &self.data).into_bytes(),
            EntryKind::PublicKey => x509::to_pem("PUBLIC KEY", &self.data).into_bytes(),
            EntryKind::CoseKey => self.data.clone(),
        }
    }
    /// The public key.
    #[must_use]
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A verified trust bundle (made only by [`open_bundle`]).
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The exporting clinic (its CA certificate, which signed the bundle).
    pub exporter: Entry,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// The clinics the exporter trusts, as it listed them.
    pub partners: Vec<Entry>,
}

/// One entry stored (or found already stored) by an add or import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// The trust file name.
    pub name: String,
    /// The clinic id.
    pub clinic_id: String,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Its kid (hex).
    pub kid: String,
    /// `Some(exporter)` for a partner entry taken from an exporter's bundle.
    pub partner_of: Option<String>,
    /// The same entry was already stored: nothing written.
    pub unchanged: bool,
}

/// What [`import_bundle`] did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The exporting clinic.
    pub clinic_id: String,
    /// Its CA certificate's fingerprint.
    pub fingerprint: Fingerprint,
    /// The entries now trusted (the exporter first).
    pub trusted: Vec<Trusted>,
    /// Partner entries in the bundle that were not imported (no `include_partners`).
    pub partners_not_imported: Vec<(String, Fingerprint)>,
    /// Partner entries skipped because they are this clinic itself.
    pub skipped_own: usize,
}

/// Why a trust change was refused. Nothing was written to `trust/`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The file is not a certificate or key we can trust.
    #[error("{0}")]
    Unusable(#[source] qr::trust::TrustError),
    /// A bare key (no certificate naming the clinic) needs the clinic id.
    #[error("{what} {label} names no clinic: say which clinic it belongs to with --clinic-id ID (the file is then stored as trust/ID.pem)")]
    NeedsClinicId { what: &'static str, label: String },
    /// The given clinic id is not the certificate's.
    #[error("the certificate is clinic {in_certificate}'s, not {given}'s: check the file (or leave out --clinic-id)")]
    ClinicIdMismatch { given: String, in_certificate: String },
    /// Not an acceptable clinic id.
    #[error("invalid clinic id {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    BadClinicId(String),
    /// No fingerprint given: shown, so the operator can compare it.
    #[error(
        "not trusted yet: this is clinic {clinic_id}'s {what} with SHA-256 fingerprint\n  {fingerprint}\n\
         Ask clinic {clinic_id} to read you its fingerprint over the phone (`medcard trust fingerprint` there). \
         Only if it is the same, run again with --fingerprint followed by the fingerprint they read to you."
    )]
    NeedsFingerprint { clinic_id: String, what: &'static str, fingerprint: Fingerprint },
    /// The given fingerprint is not the file's.
    #[error(
        "the fingerprint given does not match clinic {clinic_id}'s {what} (its fingerprint is {got}, you gave {given}): \
         the file is not the one clinic {clinic_id} sent, or was altered on the way. Nothing was trusted; ask for the file again"
    )]
    FingerprintMismatch { clinic_id: String, what: &'static str, given: Fingerprint, got: Fingerprint },
    /// The fingerprint text is not a SHA-256 fingerprint.
    #[error("fingerprint {given:?} is not a SHA-256 fingerprint: give 64 hex digits (colons allowed)")]
    BadFingerprint { given: String },
    /// Not a signed trust bundle at all.
    #[error("{what} is not a signed MedCard trust bundle ({why}); ask the other clinic for `medcard trust export --bundle` output")]
    NotABundle { what: String, why: String },
    /// A bundle whose structure or signature is wrong.
    #[error("trust bundle refused: {0}")]
    Bundle(#[source] ObjectError),
    /// A bundle that verifies but whose content is inconsistent.
    #[error("trust bundle refused: {0}")]
    BundleContent(String),
    /// This clinic's own certificate or key.
    #[error("this is this clinic's ({0}) own key: it is always trusted, nothing to add")]
    Own(String),
    /// Another entry is already stored under the name.
    #[error(
        "a different trust entry for clinic {clinic_id} is already stored as trust/{name}: if clinic {clinic_id} has a new key, \
         remove the old entry first (`medcard trust remove {name}`)"
    )]
    Conflict { clinic_id: String, name: String },
    /// The trust directory, a file, the database or the audit log.
    #[error(transparent)]
    Clinic(#[from] ClinicError),
    /// A bundle whose clinic id is not one we accept.
    #[error("trust bundle refused: {0}")]
    BundleClinicId(#[source] Box<TrustError>),
    /// A partner entry in a bundle that is not a usable trust entry.
    #[error("trust bundle refused: {what}: {source}")]
    BundleEntry {
        what: String,
        #[source]
        source: Box<TrustError>,
    },
    /// A trust file of ours that cannot go into a bundle.
    #[error("trust bundle refused: trust/{name} cannot be exported ({source}): remove it (`medcard trust remove {name}`)")]
    Unexportable {
        name: String,
        #[source]
        source: Box<TrustError>,
    },
    /// Signing the bundle failed.
    #[error("could not sign the trust bundle: {0}")]
    Sign(#[from] SignError<p256::ecdsa::Error>),
    /// The export could not be written (nothing audited as exported).
    #[error(transparent)]
    Deliver(#[from] ExportError),
}

impl TrustError {
    /// The `trust.refused` outcome for this error.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        match self {
            TrustError::Unusable(_) => Outcome::Unusable,
            TrustError::NeedsClinicId { .. } | TrustError::BadClinicId(_) | TrustError::ClinicIdMismatch { .. } => Outcome::ClinicId,
            TrustError::NeedsFingerprint { .. } => Outcome::NoFingerprint,
            TrustError::FingerprintMismatch { .. } => Outcome::FingerprintMismatch,
            TrustError::BadFingerprint { .. } => Outcome::BadFingerprint,
            TrustError::NotABundle { .. } => Outcome::NotABundle,
            TrustError::Bundle(_)
            | TrustError::BundleContent(_)
            | TrustError::BundleClinicId(_)
            | TrustError::BundleEntry { .. }
            | TrustError::Unexportable { .. } => Outcome::BadBundle,
            TrustError::Own(_) => Outcome::OwnClinic,
            TrustError::Conflict { .. } => Outcome::Conflict,
            TrustError::Clinic(_) | TrustError::Sign(_) | TrustError::Deliver(_) => Outcome::Failed,
        }
    }
}

fn check_clinic_id(id: &str) -> Result<(), TrustError> {
    let ok = (1..=64).contains(&id.len()) && !id.starts_with('.') && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(TrustError::BadClinicId(id.chars().take(80).collect())) }
}

/// Builds an entry from bytes of a known kind; `clinic_id` is required for a bare key and, for a
/// certificate, must be the subject's when given.
pub fn entry(kind: EntryKind, data: &[u8], clinic_id: Option<&str>, label: &str) -> Result<Entry, TrustError> {
    let parsed = match kind {
        EntryKind::Certificate => qr::trust::from_certificate_der(data, label),
        EntryKind::PublicKey => qr::trust::from_spki_der(data, label),
        EntryKind::CoseKey => qr::trust::from_cose_key(data, label),
    }
    .map_err(TrustError::Unusable)?;
    let first = parsed
        .first()
        .ok_or_else(|| TrustError::Unusable(qr::trust::TrustError::Unrecognised { label: label.to_owned(), why: "no key".into() }))?;
    let key = first.key;
    let (clinic_id, fingerprint) = match kind {
        EntryKind::Certificate => {
            // The clinic the certificate names (`O=MedCard clinic <id>`), as qr::trust read it.
            let id = match (first.clinic.as_deref(), clinic_id) {
                (Some(in_cert), Some(given)) if in_cert != given => {
                    return Err(TrustError::ClinicIdMismatch { given: given.to_owned(), in_certificate: in_cert.to_owned() });
                }
                (Some(in_cert), _) => in_cert.to_owned(),
                (None, Some(given)) => given.to_owned(),
                (None, None) => return Err(TrustError::NeedsClinicId { what: "the certificate", label: label.to_owned() }),
            };
            (id, Fingerprint::of(data))
        }
        _ => {
            let id = clinic_id.ok_or_else(|| TrustError::NeedsClinicId { what: "the public key", label: label.to_owned() })?;
            (id.to_owned(), Fingerprint::of(&x509::spki(&key)))
        }
    };
    check_clinic_id(&clinic_id)?;
    Ok(Entry { clinic_id, kind, data: data.to_vec(), fingerprint, kid: hex::encode(qr::kid_for(&key)), key })
}

/// Reads a trust file handed in by an operator: a PEM or DER certificate, a PEM or DER
/// SubjectPublicKeyInfo, or a COSE_Key (as `qr::trust::parse_trust_file` accepts them).
pub fn entry_from_file(bytes: &[u8], clinic_id: Option<&str>, label: &str) -> Result<Entry, TrustError> {
    let trimmed = bytes.get(bytes.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(bytes.len())..).unwrap_or_default();
    if trimmed.starts_with(b"-----BEGIN") {
        // parse_trust_file gives the right error for a PEM we do not take.
        qr::trust::parse_trust_file(trimmed, label).map_err(TrustError::Unusable)?;
        let (pem_label, der) = x509_cert::der::pem::decode_vec(trimmed)
            .map_err(|e| TrustError::Unusable(qr::trust::TrustError::Unrecognised { label: label.to_owned(), why: format!("PEM: {e}") }))?;
        let kind = if pem_label == "CERTIFICATE" { EntryKind::Certificate } else { EntryKind::PublicKey };
        return entry(kind, &der, clinic_id, label);
    }
    if qr::trust::from_certificate_der(bytes, label).is_ok() {
        return entry(EntryKind::Certificate, bytes, clinic_id, label);
    }
    if qr::trust::from_spki_der(bytes, label).is_ok() {
        return entry(EntryKind::PublicKey, bytes, clinic_id, label);
    }
    qr::trust::parse_trust_file(bytes, label).map_err(TrustError::Unusable)?;
    entry(EntryKind::CoseKey, bytes, clinic_id, label)
}

/// This clinic's CA certificate as an entry (its id and fingerprint, for `trust fingerprint`).
pub fn own_entry(ks: &Keystore) -> Result<Entry, TrustError> {
    entry(EntryKind::Certificate, ks.ca_certificate_der(), Some(ks.clinic_id()), "this clinic")
}

fn is_own(ks: &Keystore, e: &Entry) -> bool {
    e.clinic_id == ks.clinic_id() || *e.key() == ks.issuer_public()
}

/// Checks the operator's fingerprint against `e`'s (constant time).
fn require_fingerprint(e: &Entry, given: Option<&str>) -> Result<(), TrustError> {
    let Some(given) = given.map(str::trim).filter(|g| !g.is_empty()) else {
        return Err(TrustError::NeedsFingerprint { clinic_id: e.clinic_id.clone(), what: e.kind.describe(), fingerprint: e.fingerprint });
    };
    let given = Fingerprint::parse(given)?;
    if given.matches(&e.fingerprint) {
        Ok(())
    } else {
        Err(TrustError::FingerprintMismatch { clinic_id: e.clinic_id.clone(), what: e.kind.describe(), given, got: e.fingerprint })
    }
}

/// `Ok(true)`: the same bytes are stored already; `Ok(false)`: free; a different file: refused.
fn stored_state(state: &ClinicState, e: &Entry) -> Result<bool, TrustError> {
    let name = e.file_name();
    let Some(have) = state.trust_file(&name)? else {
        return Ok(false);
    };
    // A file stored before files were named by clinic id may hold the same key in another form.
    let same =
        have == e.file_bytes() || qr::trust::parse_trust_file(&have, &name).is_ok_and(|k| k.first().is_some_and(|k| k.key == *e.key()));
    if same { Ok(true) } else { Err(TrustError::Conflict { clinic_id: e.clinic_id.clone(), name }) }
}

/// Audits a refusal (`trust.refused`) and returns the error; if the audit itself fails, that
/// failure is returned (fail closed: nothing was changed either way).
fn refused(state: &ClinicState, now: i64, op: &str, subject: &str, source: &str, e: TrustError) -> TrustError {
    let detail = format!("{op} {source}");
    let ev = state.event(now, EventKind::TrustRefused, subject, e.outcome(), detail);
    match state.audit(&[ev]) {
        Ok(()) => e,
        Err(a) => TrustError::Clinic(a),
    }
}

/// Stores `writes` (all checked free beforehand), then appends `events` in one transaction; if
/// the audit fails, the files just written are removed again.
fn write_then_audit(state: &ClinicState, writes: &[(String, Vec<u8>)], events: &[Event]) -> Result<(), TrustError> {
    let mut done: Vec<&str> = Vec::new();
    for (name, bytes) in writes {
        if let Err(e) = state.add_trust_file(name, bytes) {
            for n in done {
                let _ = state.remove_trust_file(n);
            }
            return Err(e.into());
        }
        done.push(name);
    }
    if let Err(e) = state.audit(events) {
        for n in done {
            let _ = state.remove_trust_file(n);
        }
        return Err(e.into());
    }
    Ok(())
}

/// `medcard trust add FILE`: trusts one certificate or key after the operator confirmed its
/// fingerprint. `source` names the file in audit entries. Audited (`trust.added`, or
/// `trust.refused` with nothing stored).
pub fn add_file(
    ks: &Keystore,
    state: &ClinicState,
    bytes: &[u8],
    clinic_id: Option<&str>,
    fingerprint: Option<&str>,
    source: &str,
    now: i64,
) -> Result<Trusted, TrustError> {
    let subject = clinic_id.unwrap_or("unknown").to_owned();
    let e = match entry_from_file(bytes, clinic_id, source) {
        Ok(e) => e,
        Err(err) => return Err(refused(state, now, "add", &subject, source, err)),
    };
    let step = (|| {
        if is_own(ks, &e) {
            return Err(TrustError::Own(ks.clinic_id().to_owned()));
        }
        require_fingerprint(&e, fingerprint)?;
        stored_state(state, &e)
    })();
    let unchanged = match step {
        Ok(u) => u,
        Err(err) => return Err(refused(state, now, "add", &e.clinic_id, source, err)),
    };
    let name = e.file_name();
    let detail = format!(
        "{} trust/{name} fingerprint {} from {source}{}",
        e.kind.describe(),
        e.fingerprint,
        if unchanged { " (already trusted)" } else { "" }
    );
    let ev = state.event(now, EventKind::TrustAdded, &e.clinic_id, if unchanged { Outcome::Unchanged } else { Outcome::Ok }, detail);
    let writes = if unchanged { Vec::new() } else { vec![(name.clone(), e.file_bytes())] };
    write_then_audit(state, &writes, &[ev])?;
    Ok(Trusted { name, clinic_id: e.clinic_id, fingerprint: e.fingerprint, kid: e.kid, partner_of: None, unchanged })
}

/// `medcard trust remove NAME`: stops trusting a stored entry. Audited (`trust.removed`); if the
/// audit cannot be written the file is put back.
pub fn remove(state: &ClinicState, name: &str, now: i64) -> Result<(), TrustError> {
    let clinic = name.rsplit_once('.').map_or(name, |(stem, _)| stem).to_owned();
    let before = state.trust_file(name).ok().flatten();
    if let Err(e) = state.remove_trust_file(name) {
        return Err(refused(state, now, "remove", &clinic, name, e.into()));
    }
    let ev = state.event(now, EventKind::TrustRemoved, &clinic, Outcome::Ok, format!("trust/{name}"));
    if let Err(e) = state.audit(&[ev]) {
        if let Some(b) = before {
            let _ = state.add_trust_file(name, &b);
        }
        return Err(e.into());
    }
    Ok(())
}

/// `medcard trust export`: hands this clinic's CA certificate (PEM) to `deliver` (write a file,
/// print), then audits `trust.exported`; a delivery that fails is [`TrustError::Deliver`] and
/// not audited. Returns the fingerprint to read to the other clinic.
pub fn export_certificate(
    ks: &Keystore,
    state: &ClinicState,
    now: i64,
    deliver: impl FnOnce(&[u8]) -> Result<(), ExportError>,
) -> Result<Fingerprint, TrustError> {
    let own = own_entry(ks)?;
    state.ensure_open()?;
    deliver(x509::to_pem("CERTIFICATE", ks.ca_certificate_der()).as_bytes()).map_err(TrustError::Deliver)?;
    let ev =
        state.event(now, EventKind::TrustExported, ks.clinic_id(), Outcome::Ok, format!("CA certificate, fingerprint {}", own.fingerprint));
    state.audit(&[ev])?;
    Ok(own.fingerprint)
}

/// `medcard trust export --bundle [--all]`: hands a signed trust bundle (PEM `MEDCARD TRUST
/// BUNDLE`) of this clinic's id and CA certificate and, with `include_partners`, every entry in
/// `trust/` to `deliver`, then audits `trust.exported` naming the partners. Returns the
/// fingerprint and the partners' clinic ids.
pub fn export_bundle(
    ks: &Keystore,
    state: &ClinicState,
    include_partners: bool,
    now: i64,
    deliver: impl FnOnce(&[u8]) -> Result<(), ExportError>,
) -> Result<(Fingerprint, Vec<String>), TrustError> {
    let pem = bundle_pem(ks, state, include_partners, now)?;
    let own = own_entry(ks)?;
    state.ensure_open()?;
    deliver(pem.0.as_bytes()).map_err(TrustError::Deliver)?;
    let ids = pem.1;
    let detail = format!(
        "signed bundle, fingerprint {}, partners: {}",
        own.fingerprint,
        if ids.is_empty() { "none".to_owned() } else { ids.join(" ") }
    );
    state.audit(&[state.event(now, EventKind::TrustExported, ks.clinic_id(), Outcome::Ok, detail)])?;
    Ok((own.fingerprint, ids))
}

/// The signed bundle's PEM and the partners' clinic ids (not audited: see [`export_bundle`]).
fn bundle_pem(ks: &Keystore, state: &ClinicState, include_partners: bool, now: i64) -> Result<(String, Vec<String>), TrustError> {
    let mut partners = Vec::new();
    if include_partners {
        for (name, bytes) in state.trust_files()? {
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            // A certificate names its clinic; a bare key is the clinic its file is named after.
            let e = match entry_from_file(&bytes, None, &name).or_else(|_| entry_from_file(&bytes, Some(stem), &name)) {
                Ok(e) => e,
                Err(source) => return Err(TrustError::Unexportable { name, source: Box::new(source) }),
            };
            partners.push(e);
        }
    }
    if partners.len() > MAX_PARTNERS {
        return Err(TrustError::BundleContent(format!("{} trust entries, more than the {MAX_PARTNERS} a bundle holds", partners.len())));
    }
    let created = u64::try_from(now).unwrap_or(0);
    let list: Vec<Value> = partners
        .iter()
        .map(|e| {
            Value::Map(vec![
                (Value::from(E_CLINIC), Value::Text(e.clinic_id.clone())),
                (Value::from(E_KIND), Value::from(e.kind.code())),
                (Value::from(E_DATA), Value::Bytes(e.data.clone())),
            ])
        })
        .collect();
    let payload = cose_util::encode_map(vec![
        (P_FORMAT, Value::from(BUNDLE_FORMAT)),
        (P_CLINIC, Value::Text(ks.clinic_id().to_owned())),
        (P_CA, Value::Bytes(ks.ca_certificate_der().to_vec())),
        (P_CREATED, Value::from(created)),
        (P_PARTNERS, Value::Array(list)),
    ]);
    let issuer = ks.issuer_key().map_err(ClinicError::from)?;
    let signed = cose_util::sign(&payload, &ks.issuer_public(), BUNDLE_CONTENT_TYPE, |d| {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        issuer.sign_prehash(d)
    })?;
    let ids: Vec<String> = partners.iter().map(|e| e.clinic_id.clone()).collect();
    Ok((x509::to_pem(BUNDLE_PEM_LABEL, &signed), ids))
}

/// The COSE_Sign1 bytes of a bundle file: PEM `MEDCARD TRUST BUNDLE`, or the bare bytes.
pub fn unarmour(bytes: &[u8]) -> Result<Vec<u8>, TrustError> {
    let trimmed = bytes.get(bytes.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(bytes.len())..).unwrap_or_default();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let not = |why: String| TrustError::NotABundle { what: "the file".into(), why };
    if trimmed.starts_with(b"-----BEGIN CERTIFICATE") || trimmed.starts_with(b"-----BEGIN PUBLIC KEY") {
        let n = trimmed.windows(11).filter(|w| *w == b"-----BEGIN ").count();
        return Err(not(if n > 1 {
            format!("{n} PEM blocks without a signature: the unsigned format of earlier versions")
        } else {
            "a single certificate or key: add it with `medcard trust add`".into()
        }));
    }
    let (label, der) = x509_cert::der::pem::decode_vec(trimmed).map_err(|e| not(format!("PEM: {e}")))?;
    if label != BUNDLE_PEM_LABEL {
        return Err(not(format!("PEM label {label:?}, expected {BUNDLE_PEM_LABEL:?}")));
    }
    Ok(der)
}

struct Map {
    entries: Vec<(Value, Value)>,
}

impl Map {
    fn take(&mut self, key: i64, what: &str) -> Result<Value, TrustError> {
        let pos = self
            .entries
            .iter()
            .position(|(k, _)| *k == Value::from(key))
            .ok_or_else(|| TrustError::BundleContent(format!("{what}: no key {key}")))?;
        Ok(self.entries.remove(pos).1)
    }
    fn finish(self, what: &str) -> Result<(), TrustError> {
        if self.entries.is_empty() {
            Ok(())
        } else {
            Err(TrustError::BundleContent(format!("{what}: {} unknown key(s)", self.entries.len())))
        }
    }
}

fn text(v: Value, what: &str) -> Result<String, TrustError> {
    match v {
        Value::Text(t) => Ok(t),
        other => Err(TrustError::BundleContent(format!("{what}: expected a text string, got {}", qr::claims::type_name(&other)))),
    }
}

fn bytes(v: Value, what: &str) -> Result<Vec<u8>, TrustError> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => Err(TrustError::BundleContent(format!("{what}: expected a byte string, got {}", qr::claims::type_name(&other)))),
    }
}

fn uint(v: &Value, what: &str) -> Result<u64, TrustError> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| TrustError::BundleContent(format!("{what}: expected an unsigned integer"))),
        other => Err(TrustError::BundleContent(format!("{what}: expected an unsigned integer, got {}", qr::claims::type_name(other)))),
    }
}

/// Parses and verifies a trust bundle: strict COSE_Sign1 (ES256, protected kid and content type
/// [`BUNDLE_CONTENT_TYPE`]), strict payload, the CA certificate a P-256 certificate of the named
/// clinic, the kid its key's, and the signature verifying with it over the bytes as received.
/// It does not say whether to trust the exporter: that is the fingerprint's job.
pub fn open_bundle(file: &[u8]) -> Result<Bundle, TrustError> {
    let raw = unarmour(file)?;
    if raw.first().is_some_and(|b| *b != 0xD2 && *b != 0x84) {
        return Err(TrustError::NotABundle { what: "the file".into(), why: "not a COSE_Sign1".into() });
    }
    let parsed = cose_util::parse(&raw, "trust bundle", BUNDLE_CONTENT_TYPE).map_err(TrustError::Bundle)?;
    let entries = qr::claims::decode_claims_map(parsed.payload())
        .map_err(|source| TrustError::Bundle(ObjectError::Claims { what: "trust bundle", source }))?;
    let mut m = Map { entries };
    let format = uint(&m.take(P_FORMAT, "payload")?, "format")?;
    if format != BUNDLE_FORMAT {
        return Err(TrustError::BundleContent(format!("format {format}, this version reads {BUNDLE_FORMAT}")));
    }
    let clinic_id = text(m.take(P_CLINIC, "payload")?, "clinic id")?;
    let ca = bytes(m.take(P_CA, "payload")?, "CA certificate")?;
    let created = uint(&m.take(P_CREATED, "payload")?, "created")?;
    let created = i64::try_from(created).map_err(|_| TrustError::BundleContent("created: out of range".into()))?;
    let list = match m.take(P_PARTNERS, "payload")? {
        Value::Array(a) => a,
        other => return Err(TrustError::BundleContent(format!("partners: expected an array, got {}", qr::claims::type_name(&other)))),
    };
    m.finish("payload")?;
    check_clinic_id(&clinic_id).map_err(|e| TrustError::BundleClinicId(Box::new(e)))?;
    let exporter = entry(EntryKind::Certificate, &ca, None, "the bundle's CA certificate").map_err(|e| match e {
        TrustError::NeedsClinicId { .. } => TrustError::BundleContent("the CA certificate names no MedCard clinic".into()),
        other => other,
    })?;
    if exporter.clinic_id != clinic_id {
        return Err(TrustError::BundleContent(format!(
            "the bundle says it is from clinic {clinic_id}, but its CA certificate is clinic {}'s",
            exporter.clinic_id
        )));
    }
    if parsed.kid != qr::kid_for(exporter.key()).as_slice() {
        return Err(TrustError::BundleContent("the signature's kid is not the CA certificate's key".into()));
    }
    if !parsed.verifies_with(exporter.key()) {
        return Err(TrustError::Bundle(ObjectError::BadSignature {
            what: "trust bundle",
            key: format!("the CA certificate of clinic {clinic_id} it carries"),
        }));
    }
    if list.len() > MAX_PARTNERS {
        return Err(TrustError::BundleContent(format!("{} partner entries, at most {MAX_PARTNERS}", list.len())));
    }
    let mut partners: Vec<Entry> = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let what = format!("partner entry {}", i + 1);
        let Value::Map(entries) = v else {
            return Err(TrustError::BundleContent(format!("{what}: expected a map")));
        };
        let mut pm = Map { entries };
        let pid = text(pm.take(E_CLINIC, &what)?, &what)?;
        let code = uint(&pm.take(E_KIND, &what)?, &what)?;
        let data = bytes(pm.take(E_DATA, &what)?, &what)?;
        pm.finish(&what)?;
        let kind = EntryKind::from_code(code).ok_or_else(|| TrustError::BundleContent(format!("{what}: unknown kind {code}")))?;
        let e = entry(kind, &data, Some(&pid), &format!("{what} ({pid})"))
            .map_err(|e| TrustError::BundleEntry { what: what.clone(), source: Box::new(e) })?;
        if e.clinic_id == clinic_id || partners.iter().any(|p| p.clinic_id == e.clinic_id) {
            return Err(TrustError::BundleContent(format!("clinic {} is listed twice", e.clinic_id)));
        }
        partners.push(e);
    }
    Ok(Bundle { exporter, created, partners })
}

/// `medcard trust import FILE`: verifies a signed bundle, requires the operator's fingerprint of
/// the exporter's CA certificate, and trusts the exporter; its partners only with
/// `include_partners`. All checks come before any file is written; audited (`trust.imported` per
/// entry, or one `trust.refused`).
pub fn import_bundle(
    ks: &Keystore,
    state: &ClinicState,
    file: &[u8],
    fingerprint: Option<&str>,
    include_partners: bool,
    source: &str,
    now: i64,
) -> Result<Imported, TrustError> {
    let bundle = match open_bundle(file) {
        Ok(b) => b,
        Err(e) => return Err(refused(state, now, "import", "unknown", source, e)),
    };
    let exporter = bundle.exporter.clinic_id.clone();
    let plan = (|| {
        if is_own(ks, &bundle.exporter) {
            return Err(TrustError::Own(ks.clinic_id().to_owned()));
        }
        require_fingerprint(&bundle.exporter, fingerprint)?;
        let mut plan = vec![(bundle.exporter.clone(), None, stored_state(state, &bundle.exporter)?)];
        if include_partners {
            for p in &bundle.partners {
                if !is_own(ks, p) {
                    plan.push((p.clone(), Some(exporter.clone()), stored_state(state, p)?));
                }
            }
        }
        Ok(plan)
    })();
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return Err(refused(state, now, "import", &exporter, source, e)),
    };
    let mut writes = Vec::new();
    let mut events = Vec::new();
    let mut trusted = Vec::new();
    for (e, partner_of, unchanged) in plan {
        let name = e.file_name();
        if !unchanged {
            writes.push((name.clone(), e.file_bytes()));
        }
        let via = partner_of.as_ref().map(|x| format!(", partner of {x}")).unwrap_or_default();
        let detail = format!("{} trust/{name} fingerprint {} from {source}{via}", e.kind.describe(), e.fingerprint);
        events.push(state.event(
            now,
            EventKind::TrustImported,
            &e.clinic_id,
            if unchanged { Outcome::Unchanged } else { Outcome::Ok },
            detail,
        ));
        trusted.push(Trusted { name, clinic_id: e.clinic_id, fingerprint: e.fingerprint, kid: e.kid, partner_of, unchanged });
    }
    write_then_audit(state, &writes, &events)?;
    let skipped_own = bundle.partners.iter().filter(|p| is_own(ks, p)).count();
    let partners_not_imported = if include_partners {
        Vec::new()
    } else {
        bundle.partners.iter().filter(|p| !is_own(ks, p)).map(|p| (p.clinic_id.clone(), p.fingerprint)).collect()
    };
    Ok(Imported { clinic_id: exporter, fingerprint: bundle.exporter.fingerprint, trusted, partners_not_imported, skipped_own })
}

/// Whether `file` looks like a trust bundle (PEM label, or a tagged COSE_Sign1), for callers
/// that take either a bundle or a single certificate or key (the desktop's one Import button).
#[must_use]
pub fn looks_like_bundle(file: &[u8]) -> bool {
    let t = file.get(file.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(file.len())..).unwrap_or_default();
    t.starts_with(format!("-----BEGIN {BUNDLE_PEM_LABEL}").as_bytes()) || t.starts_with(&[0xD2, 0x84])
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn clinic(dir: &std::path::Path, id: &str) -> Result<(Keystore, ClinicState), Box<dyn std::error::Error>> {
        let ks = Keystore::init(&dir.join(id), id, 1_790_000_000)?;
        let st = ClinicState::open(&ks)?;
        Ok((ks, st))
    }

    #[test]
    fn fingerprint_parses_plain_and_openssl_forms_and_compares() -> R {
        let f = Fingerprint::of(b"x");
        let plain = f.to_string();
        let colons =
            plain.to_uppercase().as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":");
        assert!(Fingerprint::parse(&plain)?.matches(&f));
        assert!(Fingerprint::parse(&colons)?.matches(&f));
        assert!(!Fingerprint::of(b"y").matches(&f));
        for bad in ["", "12", &plain[1..], &format!("{plain}00"), &plain.replace('a', "g")] {
            assert!(matches!(Fingerprint::parse(bad), Err(TrustError::BadFingerprint { .. })), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn bundle_round_trips_and_every_prefix_and_bit_flip_is_refused_without_panic() -> R {
        let dir = tempfile::tempdir()?;
        let (a, sa) = clinic(dir.path(), "clinic-a")?;
        let (b, _) = clinic(dir.path(), "clinic-b")?;
        sa.add_trust_file("clinic-b.pem", x509::to_pem("CERTIFICATE", b.ca_certificate_der()).as_bytes())?;
        let (pem, ids) = bundle_pem(&a, &sa, true, 1_790_000_100)?;
        assert_eq!(ids, ["clinic-b"]);
        let bundle = open_bundle(pem.as_bytes())?;
        assert_eq!(bundle.exporter.clinic_id, "clinic-a");
        assert_eq!(bundle.exporter.fingerprint, Fingerprint::of(a.ca_certificate_der()));
        assert_eq!(bundle.partners.len(), 1);
        assert_eq!(bundle.partners.first().map(|p| p.clinic_id.as_str()), Some("clinic-b"));
        let raw = unarmour(pem.as_bytes())?;
        assert!(open_bundle(&raw).is_ok(), "the bare COSE_Sign1 is read too");
        for n in 0..raw.len() {
            assert!(open_bundle(raw.get(..n).unwrap_or_default()).is_err(), "prefix of {n} bytes accepted");
        }
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = raw.clone();
                if let Some(b) = bad.get_mut(i) {
                    *b ^= bit;
                }
                assert!(open_bundle(&bad).is_err(), "byte {i} ^ {bit:#x} accepted");
            }
        }
        Ok(())
    }

    #[test]
    fn bundle_carrying_clinic_a_certificate_but_signed_by_another_key_is_refused() -> R {
        let dir = tempfile::tempdir()?;
        let (a, _) = clinic(dir.path(), "clinic-a")?;
        let (m, _) = clinic(dir.path(), "mallory")?;
        // Mallory copies A's id and certificate and lists herself as A's partner.
        let payload = cose_util::encode_map(vec![
            (P_FORMAT, Value::from(BUNDLE_FORMAT)),
            (P_CLINIC, Value::Text("clinic-a".into())),
            (P_CA, Value::Bytes(a.ca_certificate_der().to_vec())),
            (P_CREATED, Value::from(1u64)),
            (
                P_PARTNERS,
                Value::Array(vec![Value::Map(vec![
                    (Value::from(E_CLINIC), Value::Text("mallory".into())),
                    (Value::from(E_KIND), Value::from(1u64)),
                    (Value::from(E_DATA), Value::Bytes(m.ca_certificate_der().to_vec())),
                ])]),
            ),
        ]);
        let key = m.issuer_key()?;
        let signed = cose_util::sign(&payload, &m.issuer_public(), BUNDLE_CONTENT_TYPE, |d| {
            use p256::ecdsa::signature::hazmat::PrehashSigner;
            key.sign_prehash(d)
        })?;
        let err = open_bundle(&signed).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("kid is not the CA certificate's key"), "{err}");
        Ok(())
    }

    #[test]
    fn refused_import_is_audited_and_writes_nothing() -> R {
        let dir = tempfile::tempdir()?;
        let (a, sa) = clinic(dir.path(), "clinic-a")?;
        let (z, sz) = clinic(dir.path(), "clinic-z")?;
        let (pem, _) = bundle_pem(&a, &sa, false, 1_790_000_100)?;
        let e = import_bundle(&z, &sz, pem.as_bytes(), None, false, "a.pem", 1_790_000_200);
        assert!(matches!(e, Err(TrustError::NeedsFingerprint { .. })), "{e:?}");
        assert!(sz.trust_files()?.is_empty());
        let fp = Fingerprint::of(a.ca_certificate_der()).to_string();
        let ok = import_bundle(&z, &sz, pem.as_bytes(), Some(&fp), false, "a.pem", 1_790_000_300)?;
        assert_eq!(ok.trusted.len(), 1);
        assert_eq!(sz.trust_files()?.len(), 1);
        // Its own bundle back is refused.
        let mut own = String::new();
        export_bundle(&z, &sz, false, 1_790_000_400, |b| {
            own = String::from_utf8_lossy(b).into_owned();
            Ok(())
        })?;
        let fpz = Fingerprint::of(z.ca_certificate_der()).to_string();
        assert!(matches!(import_bundle(&z, &sz, own.as_bytes(), Some(&fpz), false, "z.pem", 1), Err(TrustError::Own(_))));
        Ok(())
    }
}
