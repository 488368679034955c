//! The staff credential (card object `5FFFC0`, where a patient card keeps its card credential):
//! a COSE_Sign1 by the clinic issuer key over a CBOR map binding a staff id, name and role to the
//! card serial and the card's 9A, 9C and 9E public keys. Byte layout: `docs/staff.md`.
//!
//! ```cddl
//! staff-claims = {
//!   1 => tstr,               ; iss: clinic id
//!   2 => tstr,               ; sub: staff id
//!   4 => uint,               ; exp (Unix seconds)
//!   5 => uint,               ; nbf
//!   6 => uint,               ; iat
//!   -65600 => 1,             ; format version
//!   -65601 => uint,          ; card serial
//!   -65602 => bstr .size 65, ; 9A public key (PIN-gated: signs the access entries)
//!   -65603 => bstr .size 65, ; 9C public key
//!   -65604 => bstr .size 65, ; 9E public key (card authentication)
//!   -65610 => tstr,          ; the staff member's name
//!   -65611 => tstr,          ; role: "reception" / "clinician" / "admin"
//! }
//! ```
//! Protected header: `{1: -7, 3: "application/medcard-staff-credential+cbor", 4: kid(issuer)}`.
//! The role is kept as text: a role this version does not know decodes, and grants nothing
//! ([`StaffCredential::role`]).

use p256::ecdsa::VerifyingKey;
use qr::TrustList;

use super::role::{Role, UnknownRole};
use ciborium::Value;

use crate::card_claims::{self, CardClaims, ClaimsProblem, SignerProblem};
use crate::cose_util::{self, Fields, ObjectError};

/// The protected content type of a staff credential.
pub const CONTENT_TYPE: &str = "application/medcard-staff-credential+cbor";
/// The content type of a patient's card credential (refused here by name).
const PATIENT_CONTENT_TYPE: &str = "application/medcard-credential+cbor";
/// The format this code writes and reads.
pub const FORMAT_VERSION: u64 = crate::card_claims::FORMAT_VERSION;

const NAME: i64 = -65_610;
const ROLE: i64 = -65_611;

/// The claims of a staff credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffCredential {
    /// The issuing clinic's id.
    pub issuer: String,
    /// The staff id.
    pub staff_id: String,
    /// The staff member's name, as shown in the audit log and the patient's access report.
    pub name: String,
    /// The role as written (see [`StaffCredential::role`]).
    pub role: String,
    /// Not valid after (Unix seconds).
    pub expires_at: i64,
    /// Not valid before.
    pub not_before: i64,
    /// Issued at.
    pub issued_at: i64,
    /// The card serial.
    pub card_serial: u32,
    /// 9A public key: proves the PIN and signs access entries.
    pub key_9a: VerifyingKey,
    /// 9C public key.
    pub key_9c: VerifyingKey,
    /// 9E public key: proves the card genuine.
    pub key_9e: VerifyingKey,
}

/// Why a staff credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StaffCredentialError {
    /// The card holds no credential at all.
    #[error("the card holds no credential: it is a blank card or its issuance was interrupted; it is not a staff card")]
    Missing,
    /// A patient's card where a staff card is needed.
    #[error("this is a patient card, not a staff card: sign in with your own staff card")]
    PatientCard,
    /// Structure, algorithm, content type or payload.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The issuer kid is not in the trust list.
    #[error("staff credential signed by an unknown issuer (kid {kid}): this is not a staff card of this clinic")]
    UnknownIssuer { kid: String },
    /// The signature does not verify.
    #[error("staff credential signature does not verify with the clinic key {kid}: the credential was altered or forged")]
    BadSignature { kid: String },
    /// The claimed issuer differs from the signing key's clinic, or is not this clinic.
    #[error("staff card of clinic {issuer:?}: only staff cards issued by this clinic ({clinic:?}) are accepted here")]
    ForeignClinic { issuer: String, clinic: String },
    /// Unsupported format.
    #[error("staff credential format {got}, expected {FORMAT_VERSION}")]
    Format { got: u64 },
    /// Serial not 32 bits.
    #[error("staff credential serial {got} is not a 32-bit card serial")]
    Serial { got: u64 },
    /// Outside its validity.
    #[error("staff card is not valid at {now}: valid from {not_before} to {expires_at}; ask the clinic's administrator for a new card")]
    OutsideValidity { now: i64, not_before: i64, expires_at: i64 },
}

impl StaffCredential {
    /// The claims a patient's card credential shares (`crate::card_claims`).
    #[must_use]
    pub fn card_claims(&self) -> CardClaims {
        CardClaims {
            issuer: self.issuer.clone(),
            holder: self.staff_id.clone(),
            expires_at: self.expires_at,
            not_before: self.not_before,
            issued_at: self.issued_at,
            card_serial: self.card_serial,
            key_9a: self.key_9a,
            key_9c: self.key_9c,
            key_9e: self.key_9e,
        }
    }

    /// The credential of the shared claims `c`, with a name and a role.
    #[must_use]
    pub fn from_card_claims(c: CardClaims, name: String, role: String) -> Self {
        StaffCredential {
            issuer: c.issuer,
            staff_id: c.holder,
            name,
            role,
            expires_at: c.expires_at,
            not_before: c.not_before,
            issued_at: c.issued_at,
            card_serial: c.card_serial,
            key_9a: c.key_9a,
            key_9c: c.key_9c,
            key_9e: c.key_9e,
        }
    }

    /// The CBOR claims (deterministic encoding, keys in RFC 8949 §4.2.1 order: the shared
    /// claims, then name and role).
    #[must_use]
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut entries = self.card_claims().entries();
        entries.push((NAME, Value::Text(self.name.clone())));
        entries.push((ROLE, Value::Text(self.role.clone())));
        cose_util::encode_map(entries)
    }

    /// Decodes the claims strictly: every key present once, no unknown key, right types.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, StaffCredentialError> {
        let mut f = Fields::decode(bytes, "staff credential")?;
        let c = CardClaims::take(&mut f).map_err(|p| match p {
            ClaimsProblem::Object(e) => StaffCredentialError::Object(e),
            ClaimsProblem::Format(got) => StaffCredentialError::Format { got },
            ClaimsProblem::Serial(got) => StaffCredentialError::Serial { got },
        })?;
        let (name, role) = (f.text(NAME)?, f.text(ROLE)?);
        f.finish()?;
        Ok(Self::from_card_claims(c, name, role))
    }

    /// The role, if this version knows it; an unknown role grants nothing.
    pub fn role(&self) -> Result<Role, UnknownRole> {
        self.role.parse()
    }

    /// Signs the credential with the issuer key.
    pub fn sign(&self, issuer: &p256::ecdsa::SigningKey) -> Result<Vec<u8>, cose_util::SignError<p256::ecdsa::Error>> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let public = VerifyingKey::from(issuer);
        cose_util::sign(&self.to_cbor(), &public, CONTENT_TYPE, |d| issuer.sign_prehash(d))
    }
}

/// A staff credential whose signature verified (made only by [`verify`] and [`verify_with`]).
#[derive(Debug, Clone)]
pub struct VerifiedStaff {
    credential: StaffCredential,
    bytes: Vec<u8>,
}

impl VerifiedStaff {
    /// The claims.
    #[must_use]
    pub fn credential(&self) -> &StaffCredential {
        &self.credential
    }
    /// The COSE_Sign1 bytes as read from the card.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Parses, naming a patient's credential as such.
fn parse(bytes: &[u8]) -> Result<cose_util::Parsed, StaffCredentialError> {
    match cose_util::parse(bytes, "staff credential", CONTENT_TYPE) {
        Ok(p) => Ok(p),
        Err(ObjectError::ContentType { got, .. }) if got.contains(PATIENT_CONTENT_TYPE) => Err(StaffCredentialError::PatientCard),
        Err(e) => Err(e.into()),
    }
}

/// Verifies a staff credential issued by clinic `clinic` (this clinic: staff cards of partner
/// clinics are refused even when their key is trusted): structure, ES256, content type, issuer
/// kid in `trust`, signature, strict claims, `iss` = `clinic` = the trust entry's clinic,
/// validity at `now`.
pub fn verify(bytes: &[u8], trust: &TrustList, clinic: &str, now: i64) -> Result<VerifiedStaff, StaffCredentialError> {
    let parsed = parse(bytes)?;
    let signer = card_claims::trusted_signer(&parsed, trust).map_err(|p| match p {
        SignerProblem::UnknownIssuer(kid) => StaffCredentialError::UnknownIssuer { kid },
        SignerProblem::BadSignature(kid) => StaffCredentialError::BadSignature { kid },
    })?;
    let credential = StaffCredential::from_cbor(parsed.payload())?;
    if signer.clinic.as_deref() != Some(credential.issuer.as_str()) || credential.issuer != clinic {
        return Err(StaffCredentialError::ForeignClinic { issuer: credential.issuer, clinic: clinic.to_owned() });
    }
    if !credential.card_claims().valid_at(now) {
        let c = &credential;
        return Err(StaffCredentialError::OutsideValidity { now, not_before: c.not_before, expires_at: c.expires_at });
    }
    Ok(VerifiedStaff { credential, bytes: bytes.to_vec() })
}

/// Verifies a staff credential against one issuer key (the audit log's verifier, which knows the
/// clinic issuer key only). Validity is not checked: the log keeps the credentials of staff long
/// gone, and their old entries must still verify.
pub fn verify_with(bytes: &[u8], issuer: &VerifyingKey) -> Result<VerifiedStaff, StaffCredentialError> {
    let parsed = parse(bytes)?;
    if !parsed.verifies_with(issuer) {
        return Err(StaffCredentialError::BadSignature { kid: hex::encode(&parsed.kid) });
    }
    let credential = StaffCredential::from_cbor(parsed.payload())?;
    Ok(VerifiedStaff { credential, bytes: bytes.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_slice(&[b; 32]).unwrap_or_else(|_| unreachable!())
    }

    /// The worked example of docs/staff.md.
    pub(crate) fn example() -> StaffCredential {
        StaffCredential {
            issuer: "clinic-a".into(),
            staff_id: "S-0042".into(),
            name: "Dr N. Lee".into(),
            role: "clinician".into(),
            expires_at: 1_952_680_000,
            not_before: 1_794_999_700,
            issued_at: 1_795_000_000,
            card_serial: 5_500_042,
            key_9a: VerifyingKey::from(&key(1)),
            key_9c: VerifyingKey::from(&key(2)),
            key_9e: VerifyingKey::from(&key(3)),
        }
    }

    fn trust(issuer: &SigningKey, clinic: &str) -> TrustList {
        let mut t = TrustList::new();
        t.add_key(clinic, VerifyingKey::from(issuer));
        t
    }

    #[test]
    fn staff_credential_bytes_match_the_worked_example_in_the_docs() -> R {
        // docs/staff.md, "Worked example": the claims and the signed credential, as hex between
        // markers (RFC 6979 signatures are deterministic).
        let doc = include_str!("../../../docs/staff.md");
        let block = |name: &str| -> String {
            let start = format!("<!-- {name} -->");
            let after = doc.split_once(start.as_str()).map_or("", |x| x.1);
            let body = after.split_once("<!-- end -->").map_or("", |x| x.0);
            body.chars().filter(char::is_ascii_hexdigit).collect()
        };
        let claims = hex::encode(example().to_cbor());
        let signed = hex::encode(example().sign(&key(9))?);
        eprintln!("claims {claims}\nsigned {signed}");
        assert_eq!(block("staff-claims"), claims);
        assert_eq!(block("staff-credential"), signed);
        Ok(())
    }

    #[test]
    fn staff_credential_of_this_clinic_verifies_and_names_its_role() -> R {
        let issuer = key(9);
        let v = verify(&example().sign(&issuer)?, &trust(&issuer, "clinic-a"), "clinic-a", 1_800_000_000)?;
        assert_eq!(v.credential(), &example());
        assert_eq!(v.credential().role(), Ok(Role::Clinician));
        Ok(())
    }

    #[test]
    fn staff_card_of_a_trusted_partner_clinic_is_refused() -> R {
        let partner = key(8);
        let mut c = example();
        c.issuer = "clinic-b".into();
        let err = verify(&c.sign(&partner)?, &trust(&partner, "clinic-b"), "clinic-a", 1_800_000_000);
        assert!(matches!(err, Err(StaffCredentialError::ForeignClinic { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn patient_credential_is_named_as_a_patient_card() -> R {
        let issuer = key(9);
        let patient = crate::credential::CardCredential {
            issuer: "clinic-a".into(),
            patient_id: "P-1".into(),
            expires_at: 1_952_680_000,
            not_before: 1_794_999_700,
            issued_at: 1_795_000_000,
            card_serial: 1,
            key_9a: VerifyingKey::from(&key(1)),
            key_9c: VerifyingKey::from(&key(2)),
            key_9e: VerifyingKey::from(&key(3)),
        };
        let err = verify(&patient.sign(&issuer)?, &trust(&issuer, "clinic-a"), "clinic-a", 1_800_000_000);
        assert!(matches!(err, Err(StaffCredentialError::PatientCard)), "{err:?}");
        Ok(())
    }

    #[test]
    fn forged_expired_and_truncated_credentials_are_refused_without_panic() -> R {
        let issuer = key(9);
        let t = trust(&issuer, "clinic-a");
        let forged = example().sign(&key(7))?;
        assert!(matches!(verify(&forged, &t, "clinic-a", 1_800_000_000), Err(StaffCredentialError::UnknownIssuer { .. })));
        let bytes = example().sign(&issuer)?;
        assert!(matches!(verify(&bytes, &t, "clinic-a", 1_952_680_001), Err(StaffCredentialError::OutsideValidity { .. })));
        for n in 0..bytes.len() {
            assert!(verify(bytes.get(..n).unwrap_or_default(), &t, "clinic-a", 1_800_000_000).is_err());
        }
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            if let Some(x) = b.get_mut(i / 8) {
                *x ^= 1 << (i % 8);
            }
            assert!(verify(&b, &t, "clinic-a", 1_800_000_000).is_err(), "bit {i}");
        }
        Ok(())
    }

    #[test]
    fn unknown_role_decodes_but_grants_no_role() -> R {
        let mut c = example();
        c.role = "superuser".into();
        let issuer = key(9);
        let v = verify(&c.sign(&issuer)?, &trust(&issuer, "clinic-a"), "clinic-a", 1_800_000_000)?;
        assert!(v.credential().role().is_err());
        Ok(())
    }
}
