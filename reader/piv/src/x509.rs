//! Minimal X.509 v3 certificates for the clinic CA and the card slots (RFC 5280), ECDSA P-256
//! with SHA-256 only. A small DER writer rather than a general builder: the structure is fixed
//! and every byte is chosen here (see `docs/clinic-keys.md` "Certificates").
//!
//! - CA: self-signed, subject `CN=<clinic id> MedCard CA, O=MedCard clinic <clinic id>`,
//!   basicConstraints CA:TRUE (critical), keyUsage keyCertSign + cRLSign (critical), SKI.
//! - Card slot certificates: issuer = the CA's subject, subject `CN=<patient id> <slot>,
//!   serialNumber=<card serial>, O=...`, basicConstraints CA:FALSE, keyUsage per slot
//!   (digitalSignature; 9C also nonRepudiation), SKI, AKI.
//!
//! Key identifiers are the first 20 bytes of SHA-256 over the subjectPublicKey bits (RFC 7093 §2
//! method 1).

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_ECDSA_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SERIAL_NUMBER: &[u8] = &[0x55, 0x04, 0x05];
const OID_O: &[u8] = &[0x55, 0x04, 0x0A];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];
const OID_SKI: &[u8] = &[0x55, 0x1D, 0x0E];
const OID_AKI: &[u8] = &[0x55, 0x1D, 0x23];

/// keyUsage bits (RFC 5280 §4.2.1.3), first octet.
pub const KU_DIGITAL_SIGNATURE: u8 = 0x80;
/// nonRepudiation / contentCommitment.
pub const KU_NON_REPUDIATION: u8 = 0x40;
/// keyCertSign.
pub const KU_KEY_CERT_SIGN: u8 = 0x04;
/// cRLSign.
pub const KU_CRL_SIGN: u8 = 0x02;
/// keyAgreement.
pub const KU_KEY_AGREEMENT: u8 = 0x08;

/// A certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Signing failed.
    #[error("signing the certificate failed: {0}")]
    Sign(#[source] p256::ecdsa::Error),
    /// The random source failed.
    #[error("the random number source failed: {0}")]
    Random(#[from] crate::random::RandomError),
    /// A time outside what X.509 can express here.
    #[error("certificate time {0} is out of range")]
    Time(i64),
}

/// DER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(o: &[u8]) -> Vec<u8> {
    tlv(0x06, o)
}

/// An unsigned big-endian integer as DER INTEGER content (minimal, positive).
fn uint(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut v: Vec<u8> = bytes.get(skip..).unwrap_or_default().to_vec();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

fn name(rdns: &[(&[u8], &str)]) -> Vec<u8> {
    let mut content = Vec::new();
    for (o, value) in rdns {
        // serialNumber is PrintableString in X.520; the others UTF8String.
        let value_tag = if *o == OID_SERIAL_NUMBER { 0x13 } else { 0x0C };
        let atv = seq(&[&oid(o), &tlv(value_tag, value.as_bytes())]);
        content.extend(tlv(0x31, &atv));
    }
    tlv(0x30, &content)
}

/// `(year, month, day, hour, minute, second)` of a Unix time (proleptic Gregorian, UTC), for
/// 1970 to 9999 (the `der` crate's calendar); `None` outside.
fn civil(unix: i64) -> Option<(i64, u32, u32, u32, u32, u32)> {
    let secs = u64::try_from(unix).ok()?;
    let t = x509_cert::der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs)).ok()?;
    Some((i64::from(t.year()), t.month().into(), t.day().into(), t.hour().into(), t.minutes().into(), t.seconds().into()))
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
fn time(unix: i64) -> Result<Vec<u8>, CertError> {
    let (y, mo, d, h, mi, s) = civil(unix).ok_or(CertError::Time(unix))?;
    Ok(if y < 2050 {
        tlv(0x17, format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes())
    })
}

/// The DER SubjectPublicKeyInfo of a P-256 key (uncompressed point).
#[must_use]
pub fn spki(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_sec1_point(false);
    let mut bits = vec![0u8];
    bits.extend_from_slice(point.as_bytes());
    seq(&[&seq(&[&oid(OID_EC_PUBLIC_KEY), &oid(OID_PRIME256V1)]), &tlv(0x03, &bits)])
}

/// The key identifier: SHA-256 of the public key bits, first 20 bytes (RFC 7093 §2 method 1).
#[must_use]
pub fn key_id(key: &VerifyingKey) -> Vec<u8> {
    let digest = Sha256::digest(key.to_sec1_point(false).as_bytes());
    digest.get(..20).unwrap_or_default().to_vec()
}

fn extension(o: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical { seq(&[&oid(o), &tlv(0x01, &[0xFF]), &tlv(0x04, value)]) } else { seq(&[&oid(o), &tlv(0x04, value)]) }
}

fn key_usage(bits: u8) -> Vec<u8> {
    let unused = if bits == 0 { 0 } else { bits.trailing_zeros() as u8 };
    tlv(0x03, &[unused, bits])
}

/// What goes into a certificate besides the keys.
pub struct CertSpec<'a> {
    /// Subject attributes in order: (OID, value). Use [`subject_ca`] / [`subject_card`].
    pub subject: Vec<(&'a [u8], String)>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Whether this is a CA certificate.
    pub ca: bool,
    /// keyUsage bits (first octet).
    pub key_usage: u8,
}

/// The subject of a clinic CA.
#[must_use]
pub fn subject_ca(clinic_id: &str) -> Vec<(&'static [u8], String)> {
    vec![(OID_CN, format!("{clinic_id} MedCard CA")), (OID_O, format!("MedCard clinic {clinic_id}"))]
}

/// The subject of a card slot certificate.
#[must_use]
pub fn subject_card(clinic_id: &str, patient_id: &str, card_serial: u32, slot: &str) -> Vec<(&'static [u8], String)> {
    vec![
        (OID_CN, format!("{patient_id} {slot}")),
        (OID_SERIAL_NUMBER, card_serial.to_string()),
        (OID_O, format!("MedCard clinic {clinic_id}")),
    ]
}

fn random_serial() -> Result<[u8; 16], CertError> {
    let mut s = [0u8; 16];
    crate::random::fill(&mut s)?;
    // Positive and exactly 16 bytes (RFC 5280 §4.1.2.2: at most 20 octets).
    if let Some(b) = s.first_mut() {
        *b = (*b & 0x7F) | 0x01;
    }
    Ok(s)
}

/// Signs a certificate for `subject_key` with `issuer_key`, whose certificate subject is
/// `issuer_subject` (for a self-signed CA: the same key and `spec.subject`).
pub fn build(
    spec: &CertSpec<'_>,
    subject_key: &VerifyingKey,
    issuer_subject: &[(&[u8], String)],
    issuer_key: &SigningKey,
) -> Result<Vec<u8>, CertError> {
    let alg = seq(&[&oid(OID_ECDSA_SHA256)]);
    let subject_rdns: Vec<(&[u8], &str)> = spec.subject.iter().map(|(o, v)| (*o, v.as_str())).collect();
    let issuer_rdns: Vec<(&[u8], &str)> = issuer_subject.iter().map(|(o, v)| (*o, v.as_str())).collect();
    let validity = seq(&[&time(spec.not_before)?, &time(spec.not_after)?]);
    let basic = if spec.ca { seq(&[&tlv(0x01, &[0xFF])]) } else { seq(&[]) };
    let issuer_public = VerifyingKey::from(issuer_key);
    let mut exts = vec![
        extension(OID_BASIC_CONSTRAINTS, true, &basic),
        extension(OID_KEY_USAGE, true, &key_usage(spec.key_usage)),
        extension(OID_SKI, false, &tlv(0x04, &key_id(subject_key))),
    ];
    if !spec.ca || issuer_public != *subject_key {
        exts.push(extension(OID_AKI, false, &seq(&[&tlv(0x80, &key_id(&issuer_public))])));
    }
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let tbs = seq(&[
        &tlv(0xA0, &uint(&[2])),
        &uint(&random_serial()?),
        &alg,
        &name(&issuer_rdns),
        &validity,
        &name(&subject_rdns),
        &spki(subject_key),
        &tlv(0xA3, &seq(&ext_refs)),
    ]);
    let digest = Sha256::digest(&tbs);
    let sig: Signature = issuer_key.sign_prehash(&digest).map_err(CertError::Sign)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(sig.to_der().as_bytes());
    Ok(seq(&[&tbs, &alg, &tlv(0x03, &bits)]))
}

/// PEM armour (`-----BEGIN CERTIFICATE-----`).
#[must_use]
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64_engine::encode;
    let b64 = encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A tiny standard base64 encoder (RFC 4648 §4), for PEM output only.
mod base64_engine {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [chunk.first().copied().unwrap_or(0), chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let idx = |shift: u32| ALPHABET.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'=') as char;
            out.push(idx(18));
            out.push(idx(12));
            out.push(if chunk.len() > 1 { idx(6) } else { '=' });
            out.push(if chunk.len() > 2 { idx(0) } else { '=' });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::der::Decode;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn key(b: u8) -> Result<SigningKey, Box<dyn std::error::Error>> {
        Ok(SigningKey::from_slice(&[b; 32])?)
    }

    #[test]
    fn civil_time_matches_known_dates() {
        assert_eq!(civil(0), Some((1970, 1, 1, 0, 0, 0)));
        assert_eq!(civil(951_782_400), Some((2000, 2, 29, 0, 0, 0)));
        assert_eq!(civil(2_524_608_000), Some((2050, 1, 1, 0, 0, 0)));
        assert_eq!(civil(1_795_000_000), Some((2026, 11, 18, 11, 6, 40)));
    }

    #[test]
    fn time_switches_to_generalized_time_in_2050() -> R {
        assert_eq!(time(2_524_607_999)?.first(), Some(&0x17));
        assert_eq!(time(2_524_608_000)?.first(), Some(&0x18));
        Ok(())
    }

    #[test]
    fn ca_and_card_certificates_parse_and_carry_the_right_keys() -> R {
        let ca = key(7)?;
        let card = key(9)?;
        let now = 1_795_000_000;
        let ca_subject = subject_ca("clinic-a");
        let spec = CertSpec {
            subject: ca_subject.clone(),
            not_before: now,
            not_after: now + 86_400,
            ca: true,
            key_usage: KU_KEY_CERT_SIGN | KU_CRL_SIGN,
        };
        let ca_der = build(&spec, &VerifyingKey::from(&ca), &ca_subject, &ca)?;
        let parsed = x509_cert::Certificate::from_der(&ca_der)?;
        assert_eq!(parsed.tbs_certificate().subject().to_string(), parsed.tbs_certificate().issuer().to_string());
        let spec = CertSpec {
            subject: subject_card("clinic-a", "P-1", 42, "9A"),
            not_before: now,
            not_after: now + 86_400,
            ca: false,
            key_usage: KU_DIGITAL_SIGNATURE,
        };
        let leaf = build(&spec, &VerifyingKey::from(&card), &ca_subject, &ca)?;
        let parsed_leaf = x509_cert::Certificate::from_der(&leaf)?;
        assert_eq!(parsed_leaf.tbs_certificate().issuer(), parsed.tbs_certificate().subject());
        let keys = qr::trust::from_certificate_der(&leaf, "leaf")?;
        assert_eq!(keys.first().map(|k| k.key), Some(VerifyingKey::from(&card)));
        Ok(())
    }

    #[test]
    fn pem_wraps_base64_at_64_columns() {
        let pem = to_pem("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.get(1).map(|l| l.len()), Some(64));
        assert_eq!(base64_engine::encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_engine::encode(b"foobar"), "Zm9vYmFy");
    }
}
