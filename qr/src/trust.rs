//! The trust list: P-256 public keys by kid, and parsing trust files handed in as bytes.
//!
//! A trust file is one of: an X.509 certificate (PEM `CERTIFICATE` or DER), a SubjectPublicKeyInfo
//! (PEM `PUBLIC KEY` or DER), or a COSE_Key (CBOR map, kty EC2, crv P-256). Only P-256 keys are
//! accepted (anything else is refused when loading, so "key is P-256" holds for every entry).
//!
//! Kids under which a file's key is registered:
//! * always our own kid ([`crate::cose::kid_for`]: SHA-256 of the uncompressed SEC1 point, 8 bytes);
//! * a certificate also under SHA-256 of its whole DER, first 8 bytes (the dgc convention);
//! * a COSE_Key also under its `kid` (label 2), when it has one.
//!
//! Each entry is bound to at most one clinic id ([`TrustedKey::clinic`]), which a MedCard code's
//! `iss` and a card credential's issuer must equal (`docs/qr-format.md` §5):
//! * a MedCard clinic CA certificate: the `<id>` of its subject's `O=MedCard clinic <id>`;
//! * a bare key (SPKI, COSE_Key, [`TrustList::add_key`]): its label (the trust file's name)
//!   without a `.pem`, `.der`, `.crt`, `.cer`, `.pub`, `.key`, `.cose` or `.cbor` extension;
//! * any other certificate (an EU DCC signer, say): no clinic, so it vouches for no MedCard code.

use ciborium::Value;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

use crate::cose::kid_for;

/// A trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The kid it is looked up by.
    pub kid: Vec<u8>,
    /// Who it belongs to (certificate subject, file name, ...), for messages.
    pub issuer: String,
    /// The clinic id it speaks for (see the module docs); `None`: none.
    pub clinic: Option<String>,
    /// The P-256 key.
    pub key: VerifyingKey,
}

/// The clinic id a label (a trust file's name) binds a bare key to: the label without a key-file
/// extension.
#[must_use]
pub fn clinic_of_label(label: &str) -> String {
    const EXTENSIONS: [&str; 8] = [".pem", ".der", ".crt", ".cer", ".pub", ".key", ".cose", ".cbor"];
    let lower = label.to_ascii_lowercase();
    match EXTENSIONS.iter().find(|e| lower.ends_with(*e) && lower.len() > e.len()) {
        Some(e) => label.get(..label.len() - e.len()).unwrap_or(label).to_owned(),
        None => label.to_owned(),
    }
}

/// The clinic id of a MedCard clinic CA subject (`...,O=MedCard clinic <id>,...`), if it is one.
#[must_use]
pub fn clinic_of_subject(subject: &str) -> Option<String> {
    subject.split(',').find_map(|rdn| rdn.trim().strip_prefix("O=MedCard clinic ")).map(str::to_owned)
}

/// Why a trust file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Not a certificate, SPKI or COSE_Key.
    #[error("trust file {label}: not an X.509 certificate, SubjectPublicKeyInfo or COSE_Key ({why})")]
    Unrecognised { label: String, why: String },
    /// PEM with a label we do not take.
    #[error("trust file {label}: PEM label {pem_label:?}, expected CERTIFICATE or PUBLIC KEY")]
    PemLabel { label: String, pem_label: String },
    /// A key that is not P-256.
    #[error("trust file {label}: key is not an EC P-256 public key ({why})")]
    NotP256 { label: String, why: String },
}

/// Keys by kid. Several keys may share a kid; verification tries each. Indexed by kid, so
/// building and looking up stay linear in the number of entries.
#[derive(Debug, Clone, Default)]
pub struct TrustList {
    keys: Vec<TrustedKey>,
    by_kid: std::collections::HashMap<Vec<u8>, Vec<usize>>,
}

impl TrustList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        TrustList::default()
    }
    /// Adds `key` under `kid`, bound to the clinic its label `issuer` names ([`clinic_of_label`]).
    pub fn add(&mut self, kid: &[u8], issuer: &str, key: VerifyingKey) {
        self.insert(TrustedKey { kid: kid.to_vec(), issuer: issuer.to_owned(), clinic: Some(clinic_of_label(issuer)), key });
    }
    /// Adds `key` under `kid`, bound to no clinic (it verifies foreign codes, never a MedCard `iss`).
    pub fn add_unbound(&mut self, kid: &[u8], issuer: &str, key: VerifyingKey) {
        self.insert(TrustedKey { kid: kid.to_vec(), issuer: issuer.to_owned(), clinic: None, key });
    }
    /// Adds `key` under our kid ([`kid_for`]), bound to the clinic its label names.
    pub fn add_key(&mut self, issuer: &str, key: VerifyingKey) {
        self.add(&kid_for(&key), issuer, key);
    }
    /// Adds an entry as it is (an entry already present is not added twice).
    pub fn insert(&mut self, entry: TrustedKey) {
        let same = self.by_kid.get(&entry.kid).is_some_and(|ix| ix.iter().any(|&i| self.keys.get(i) == Some(&entry)));
        if !same {
            self.by_kid.entry(entry.kid.clone()).or_default().push(self.keys.len());
            self.keys.push(entry);
        }
    }
    /// Every key registered under `kid`.
    pub fn lookup<'a>(&'a self, kid: &'a [u8]) -> impl Iterator<Item = &'a TrustedKey> + 'a {
        self.by_kid.get(kid).into_iter().flatten().filter_map(|&i| self.keys.get(i))
    }
    /// All entries.
    #[must_use]
    pub fn entries(&self) -> &[TrustedKey] {
        &self.keys
    }
    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Parses a trust file (see the module docs) and adds its entries; returns how many.
    pub fn add_file(&mut self, bytes: &[u8], label: &str) -> Result<usize, TrustError> {
        let entries = parse_trust_file(bytes, label)?;
        let n = entries.len();
        for e in entries {
            self.insert(e);
        }
        Ok(n)
    }
}

/// Parses a trust file into its entries (one key, possibly under several kids).
pub fn parse_trust_file(bytes: &[u8], label: &str) -> Result<Vec<TrustedKey>, TrustError> {
    let trimmed = trim_ascii_start(bytes);
    if trimmed.starts_with(b"-----BEGIN") {
        let (pem_label, der) = x509_cert::der::pem::decode_vec(trimmed)
            .map_err(|e| TrustError::Unrecognised { label: label.into(), why: format!("PEM: {e}") })?;
        return match pem_label {
            "CERTIFICATE" => from_certificate_der(&der, label),
            "PUBLIC KEY" => from_spki_der(&der, label),
            other => Err(TrustError::PemLabel { label: label.into(), pem_label: other.into() }),
        };
    }
    if let Ok(entries) = from_certificate_der(bytes, label) {
        return Ok(entries);
    }
    if x509_cert::spki::SubjectPublicKeyInfoRef::from_der(bytes).is_ok() {
        return from_spki_der(bytes, label);
    }
    from_cose_key(bytes, label)
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

/// From an X.509 certificate (DER).
pub fn from_certificate_der(der: &[u8], label: &str) -> Result<Vec<TrustedKey>, TrustError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| TrustError::Unrecognised { label: label.into(), why: format!("certificate: {e}") })?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| TrustError::Unrecognised { label: label.into(), why: e.to_string() })?;
    let key = VerifyingKey::from_public_key_der(&spki).map_err(|e| TrustError::NotP256 { label: label.into(), why: e.to_string() })?;
    let subject = cert.tbs_certificate().subject().to_string();
    let clinic = clinic_of_subject(&subject);
    let issuer = if subject.is_empty() { label.to_owned() } else { subject };
    let cert_kid = Sha256::digest(der);
    Ok(vec![
        TrustedKey { kid: kid_for(&key).to_vec(), issuer: issuer.clone(), clinic: clinic.clone(), key },
        TrustedKey { kid: cert_kid.get(..8).unwrap_or_default().to_vec(), issuer, clinic, key },
    ])
}

/// From a SubjectPublicKeyInfo (DER).
pub fn from_spki_der(der: &[u8], label: &str) -> Result<Vec<TrustedKey>, TrustError> {
    let key = VerifyingKey::from_public_key_der(der).map_err(|e| TrustError::NotP256 { label: label.into(), why: e.to_string() })?;
    Ok(vec![TrustedKey { kid: kid_for(&key).to_vec(), issuer: label.to_owned(), clinic: Some(clinic_of_label(label)), key }])
}

/// From a COSE_Key (RFC 9052 §7): kty 2 (EC2), crv 1 (P-256), x, y; optional kid.
pub fn from_cose_key(bytes: &[u8], label: &str) -> Result<Vec<TrustedKey>, TrustError> {
    let unrec = |why: String| TrustError::Unrecognised { label: label.into(), why };
    let entries = crate::claims::decode_claims_map(bytes).map_err(|e| unrec(format!("COSE_Key: {e}")))?;
    let get = |k: i64| entries.iter().find(|(key, _)| *key == Value::from(k)).map(|(_, v)| v);
    if get(1) != Some(&Value::from(2)) {
        return Err(TrustError::NotP256 { label: label.into(), why: "COSE_Key kty is not EC2 (2)".into() });
    }
    if get(-1) != Some(&Value::from(1)) {
        return Err(TrustError::NotP256 { label: label.into(), why: "COSE_Key crv is not P-256 (1)".into() });
    }
    let (Some(Value::Bytes(x)), Some(Value::Bytes(y))) = (get(-2), get(-3)) else {
        return Err(TrustError::NotP256 { label: label.into(), why: "COSE_Key needs byte strings x (-2) and y (-3)".into() });
    };
    if x.len() != 32 || y.len() != 32 {
        return Err(TrustError::NotP256 { label: label.into(), why: "COSE_Key x and y must be 32 bytes".into() });
    }
    let mut point = vec![4u8];
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    let key = VerifyingKey::from_sec1_bytes(&point).map_err(|e| TrustError::NotP256 { label: label.into(), why: e.to_string() })?;
    let clinic = Some(clinic_of_label(label));
    let mut out = vec![TrustedKey { kid: kid_for(&key).to_vec(), issuer: label.to_owned(), clinic: clinic.clone(), key }];
    if let Some(Value::Bytes(kid)) = get(2) {
        out.push(TrustedKey { kid: kid.clone(), issuer: label.to_owned(), clinic, key });
    }
    Ok(out)
}

/// A COSE_Key (CBOR) for a P-256 public key with our kid.
pub fn cose_key_bytes(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_sec1_point(false);
    let b = point.as_bytes();
    let m = Value::Map(vec![
        (Value::from(1), Value::from(2)),
        (Value::from(2), Value::Bytes(kid_for(key).to_vec())),
        (Value::from(3), Value::from(-7)),
        (Value::from(-1), Value::from(1)),
        (Value::from(-2), Value::Bytes(b.get(1..33).unwrap_or_default().to_vec())),
        (Value::from(-3), Value::Bytes(b.get(33..65).unwrap_or_default().to_vec())),
    ]);
    crate::claims::cbor_to_vec(&m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn key() -> Result<VerifyingKey, Box<dyn std::error::Error>> {
        Ok(*p256::ecdsa::SigningKey::from_slice(&[5; 32])?.verifying_key())
    }

    #[test]
    fn spki_pem_der_and_cose_key_give_the_same_key_under_our_kid() -> R {
        let k = key()?;
        let pem = k.to_public_key_pem(p256::pkcs8::LineEnding::LF)?;
        let der = k.to_public_key_der()?.as_bytes().to_vec();
        for (bytes, what) in [(pem.into_bytes(), "pem"), (der, "der"), (cose_key_bytes(&k), "cose")] {
            let got = parse_trust_file(&bytes, what)?;
            assert!(got.iter().any(|e| e.key == k && e.kid == kid_for(&k)), "{what}");
        }
        Ok(())
    }

    #[test]
    fn bare_keys_are_bound_to_their_label_without_its_extension() -> R {
        let k = key()?;
        let got = parse_trust_file(&cose_key_bytes(&k), "clinic-b.cose")?;
        assert!(got.iter().all(|e| e.clinic.as_deref() == Some("clinic-b")), "{got:?}");
        assert_eq!(clinic_of_label("clinic-b.PEM"), "clinic-b");
        assert_eq!(clinic_of_label(".pem"), ".pem");
        assert_eq!(clinic_of_label("st-mary"), "st-mary");
        assert_eq!(clinic_of_subject("CN=a MedCard CA,O=MedCard clinic a"), Some("a".into()));
        assert_eq!(clinic_of_subject("CN=DSC,C=AT"), None);
        Ok(())
    }

    #[test]
    fn garbage_and_wrong_curves_are_refused() {
        assert!(matches!(parse_trust_file(b"hello", "x"), Err(TrustError::Unrecognised { .. })));
        let p384ish = Value::Map(vec![(Value::from(1), Value::from(2)), (Value::from(-1), Value::from(2))]);
        let bytes = crate::claims::cbor_to_vec(&p384ish).unwrap_or_default();
        assert!(matches!(parse_trust_file(&bytes, "x"), Err(TrustError::NotP256 { .. })));
    }
}
