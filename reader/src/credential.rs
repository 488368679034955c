//! The card credential (object `5FFFC0`): a COSE_Sign1 by the clinic issuer key over a CBOR map
//! binding the patient id and card serial to the card's 9A, 9C and 9E public keys. Byte layout:
//! `docs/card-credential.md`.
//!
//! ```cddl
//! credential-claims = {
//!   1 => tstr,            ; iss: clinic id
//!   2 => tstr,            ; sub: patient id
//!   4 => uint,            ; exp (Unix seconds)
//!   5 => uint,            ; nbf
//!   6 => uint,            ; iat
//!   -65600 => 1,          ; credential format version
//!   -65601 => uint,       ; card serial (Yubico GET SERIAL)
//!   -65602 => bstr .size 65, ; 9A public key, uncompressed SEC1 point
//!   -65603 => bstr .size 65, ; 9C public key
//!   -65604 => bstr .size 65, ; 9E public key
//! }
//! ```
//! Protected header: `{1: -7, 3: "application/medcard-credential+cbor", 4: kid(issuer)}`.

use p256::ecdsa::VerifyingKey;
use qr::TrustList;

use crate::card_claims::{self, CardClaims, ClaimsProblem, SignerProblem};
use crate::cose_util::{self, Fields, ObjectError};

/// The protected content type of a card credential.
pub const CONTENT_TYPE: &str = "application/medcard-credential+cbor";
/// The credential format this code writes and reads.
pub const FORMAT_VERSION: u64 = crate::card_claims::FORMAT_VERSION;

/// The claims of a card credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCredential {
    /// The issuing clinic's id.
    pub issuer: String,
    /// The patient id.
    pub patient_id: String,
    /// Not valid after (Unix seconds).
    pub expires_at: i64,
    /// Not valid before.
    pub not_before: i64,
    /// Issued at.
    pub issued_at: i64,
    /// The card serial.
    pub card_serial: u32,
    /// 9A (PIV authentication) public key.
    pub key_9a: VerifyingKey,
    /// 9C (digital signature, signs consent) public key.
    pub key_9c: VerifyingKey,
    /// 9E (card authentication) public key.
    pub key_9e: VerifyingKey,
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The card holds no credential.
    #[error("the card has no card credential: it was never issued, or issuance was interrupted; issue it again")]
    Missing,
    /// Structure, algorithm, content type or payload.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A staff card where a patient card is expected.
    #[error("this is a staff card, not a patient card: the patient must use their own card")]
    StaffCard,
    /// The issuer kid is not in the trust list.
    #[error("card credential signed by an unknown issuer (kid {kid}): add that clinic with `medcard trust add`")]
    UnknownIssuer { kid: String },
    /// A key under that kid exists, but the signature does not verify.
    #[error("card credential signature does not verify with the trusted issuer key {kid}: the credential was altered")]
    BadSignature { kid: String },
    /// The claimed issuer differs from the trusted key's clinic.
    #[error("card credential names issuer {claimed:?}, but it is signed by {signer:?}")]
    IssuerMismatch { claimed: String, signer: String },
    /// Unsupported format version.
    #[error("card credential format {got}, expected {FORMAT_VERSION}")]
    Format { got: u64 },
    /// Serial not 32 bits.
    #[error("card credential serial {got} is not a 32-bit card serial")]
    Serial { got: u64 },
    /// Outside its validity.
    #[error("card credential is not valid at {now}: valid from {not_before} to {expires_at}")]
    OutsideValidity { now: i64, not_before: i64, expires_at: i64 },
    /// For another card.
    #[error("card credential is for card serial {credential}, but this card has serial {card}: not this card's credential")]
    SerialMismatch { credential: u32, card: u32 },
    /// The card could not prove it holds the credential's 9E key: a copied credential.
    #[error(
        "card {serial} is not genuine: it cannot sign with the card-authentication key its credential names (a copied credential?); do not accept it"
    )]
    NotGenuine { serial: u32 },
    /// The card's serial is revoked.
    #[error("card {serial} has been revoked by the clinic: do not accept it")]
    Revoked { serial: u32 },
    /// A genuine card of a trusted partner clinic, where only this clinic's own cards are taken
    /// (the kiosk and consent: records are this clinic's, chosen by patient id).
    #[error(
        "card {serial} was issued by clinic {issuer:?}; this clinic ({clinic:?}) checks in and takes consent only on cards it issued: the patient should use a card from this clinic (ask reception)"
    )]
    ForeignIssuer { serial: u32, issuer: String, clinic: String },
    /// The card answered the PIN check but could not sign with its PIN-gated 9A key: the PIN
    /// was not verified by this card (a shim, a relay, or a card that ignores the PIN).
    #[error(
        "card {serial} accepted the PIN but could not prove it with its PIN-protected key: do not accept this card or reader; report it to IT"
    )]
    PinNotProven { serial: u32 },
}

impl CardCredential {
    /// The claims a staff credential shares (`crate::card_claims`).
    #[must_use]
    pub fn card_claims(&self) -> CardClaims {
        CardClaims {
            issuer: self.issuer.clone(),
            holder: self.patient_id.clone(),
            expires_at: self.expires_at,
            not_before: self.not_before,
            issued_at: self.issued_at,
            card_serial: self.card_serial,
            key_9a: self.key_9a,
            key_9c: self.key_9c,
            key_9e: self.key_9e,
        }
    }

    /// The credential of the shared claims `c`.
    #[must_use]
    pub fn from_card_claims(c: CardClaims) -> Self {
        CardCredential {
            issuer: c.issuer,
            patient_id: c.holder,
            expires_at: c.expires_at,
            not_before: c.not_before,
            issued_at: c.issued_at,
            card_serial: c.card_serial,
            key_9a: c.key_9a,
            key_9c: c.key_9c,
            key_9e: c.key_9e,
        }
    }

    /// The CBOR claims (deterministic encoding, keys in RFC 8949 §4.2.1 order).
    #[must_use]
    pub fn to_cbor(&self) -> Vec<u8> {
        cose_util::encode_map(self.card_claims().entries())
    }

    /// Decodes the claims strictly: every key present once, no unknown key, right types.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, CredentialError> {
        let mut f = Fields::decode(bytes, "card credential")?;
        let c = CardClaims::take(&mut f).map_err(|p| match p {
            ClaimsProblem::Object(e) => CredentialError::Object(e),
            ClaimsProblem::Format(got) => CredentialError::Format { got },
            ClaimsProblem::Serial(got) => CredentialError::Serial { got },
        })?;
        f.finish()?;
        Ok(Self::from_card_claims(c))
    }

    /// Signs the credential with the issuer key.
    pub fn sign(&self, issuer: &p256::ecdsa::SigningKey) -> Result<Vec<u8>, cose_util::SignError<p256::ecdsa::Error>> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let public = VerifyingKey::from(issuer);
        cose_util::sign(&self.to_cbor(), &public, CONTENT_TYPE, |d| issuer.sign_prehash(d))
    }
}

/// A credential whose signature verified against the trust list (made only by [`verify`]).
#[derive(Debug, Clone)]
pub struct VerifiedCredential {
    credential: CardCredential,
    signer: String,
    kid: Vec<u8>,
    signer_key: VerifyingKey,
}

impl VerifiedCredential {
    /// The claims.
    #[must_use]
    pub fn credential(&self) -> &CardCredential {
        &self.credential
    }
    /// The trust-list entry that signed it (issuer name).
    #[must_use]
    pub fn signer(&self) -> &str {
        &self.signer
    }
    /// The issuer kid.
    #[must_use]
    pub fn kid(&self) -> &[u8] {
        &self.kid
    }
    /// The issuer key that verified it.
    #[must_use]
    pub fn signer_key(&self) -> &VerifyingKey {
        &self.signer_key
    }
}

/// Verifies a credential: structure, ES256, content type, issuer kid in `trust`, signature over
/// the bytes as received, strict claims, validity at `now`. The claimed `iss` must equal the
/// clinic id the trust entry is bound to ([`qr::trust::TrustedKey::clinic`]); an entry bound to
/// no clinic vouches for no credential.
pub fn verify(bytes: &[u8], trust: &TrustList, now: i64) -> Result<VerifiedCredential, CredentialError> {
    let parsed = match cose_util::parse(bytes, "card credential", CONTENT_TYPE) {
        Ok(p) => p,
        Err(ObjectError::ContentType { got, .. }) if got.contains(crate::staff::credential::CONTENT_TYPE) => {
            return Err(CredentialError::StaffCard);
        }
        Err(e) => return Err(e.into()),
    };
    let signer = card_claims::trusted_signer(&parsed, trust).map_err(|p| match p {
        SignerProblem::UnknownIssuer(kid) => CredentialError::UnknownIssuer { kid },
        SignerProblem::BadSignature(kid) => CredentialError::BadSignature { kid },
    })?;
    let credential = CardCredential::from_cbor(parsed.payload())?;
    if signer.clinic.as_deref() != Some(credential.issuer.as_str()) {
        let name = signer.clinic.clone().unwrap_or_else(|| signer.issuer.clone());
        return Err(CredentialError::IssuerMismatch { claimed: credential.issuer, signer: name });
    }
    if now < credential.not_before || now > credential.expires_at {
        return Err(CredentialError::OutsideValidity { now, not_before: credential.not_before, expires_at: credential.expires_at });
    }
    Ok(VerifiedCredential { credential, signer: signer.issuer.clone(), kid: parsed.kid.clone(), signer_key: signer.key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_slice(&[b; 32]).unwrap_or_else(|_| unreachable!())
    }

    fn sample() -> CardCredential {
        CardCredential {
            issuer: "clinic-a".into(),
            patient_id: "P-1".into(),
            expires_at: 2_000_000_000,
            not_before: 1_700_000_000,
            issued_at: 1_700_000_000,
            card_serial: 42,
            key_9a: VerifyingKey::from(&key(1)),
            key_9c: VerifyingKey::from(&key(2)),
            key_9e: VerifyingKey::from(&key(3)),
        }
    }

    fn trust_with(issuer: &SigningKey, name: &str) -> TrustList {
        let mut t = TrustList::new();
        t.add_key(name, VerifyingKey::from(issuer));
        t
    }

    #[test]
    fn signed_credential_verifies_and_round_trips() -> R {
        let issuer = key(9);
        let bytes = sample().sign(&issuer)?;
        let v = verify(&bytes, &trust_with(&issuer, "clinic-a"), 1_800_000_000)?;
        assert_eq!(v.credential(), &sample());
        Ok(())
    }

    #[test]
    fn credential_from_an_untrusted_issuer_is_refused() -> R {
        let bytes = sample().sign(&key(9))?;
        let err = verify(&bytes, &trust_with(&key(8), "other"), 1_800_000_000);
        assert!(matches!(err, Err(CredentialError::UnknownIssuer { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn any_flipped_bit_is_refused() -> R {
        let issuer = key(9);
        let bytes = sample().sign(&issuer)?;
        let trust = trust_with(&issuer, "clinic-a");
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            if let Some(byte) = b.get_mut(i / 8) {
                *byte ^= 1 << (i % 8);
            }
            assert!(verify(&b, &trust, 1_800_000_000).is_err(), "bit {i} flipped still verifies");
        }
        Ok(())
    }

    #[test]
    fn every_prefix_is_refused_without_panic() -> R {
        let issuer = key(9);
        let bytes = sample().sign(&issuer)?;
        let trust = trust_with(&issuer, "clinic-a");
        for n in 0..bytes.len() {
            assert!(verify(bytes.get(..n).unwrap_or_default(), &trust, 1_800_000_000).is_err());
        }
        Ok(())
    }

    #[test]
    fn expired_credential_is_refused() -> R {
        let issuer = key(9);
        let bytes = sample().sign(&issuer)?;
        let err = verify(&bytes, &trust_with(&issuer, "clinic-a"), 2_000_000_001);
        assert!(matches!(err, Err(CredentialError::OutsideValidity { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn claims_with_an_unknown_key_are_refused() {
        let mut cbor = sample().to_cbor();
        // Map header a(10) → b(11) and one extra pair 0x18 0x63 (key 99) → 0x00.
        if let Some(h) = cbor.first_mut() {
            *h += 1;
        }
        cbor.extend_from_slice(&[0x18, 0x63, 0x00]);
        assert!(matches!(CardCredential::from_cbor(&cbor), Err(CredentialError::Object(ObjectError::Payload { .. }))));
    }

    #[test]
    fn credential_claiming_another_clinic_through_a_bare_partner_key_is_refused() -> R {
        // Clinic B's bare key, trusted under the name "clinic-b.pem", signs a credential that says
        // clinic A issued it: the bare-key entry speaks for clinic B only.
        let partner = key(8);
        let bytes = sample().sign(&partner)?;
        let err = verify(&bytes, &trust_with(&partner, "clinic-b.pem"), 1_800_000_000);
        assert!(
            matches!(&err, Err(CredentialError::IssuerMismatch { claimed, signer }) if claimed == "clinic-a" && signer == "clinic-b"),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn credential_signed_by_an_entry_bound_to_no_clinic_is_refused() -> R {
        let issuer = key(9);
        let bytes = sample().sign(&issuer)?;
        let mut t = TrustList::new();
        t.add_unbound(&qr::kid_for(&VerifyingKey::from(&issuer)), "CN=some DSC", VerifyingKey::from(&issuer));
        let err = verify(&bytes, &t, 1_800_000_000);
        assert!(matches!(err, Err(CredentialError::IssuerMismatch { .. })), "{err:?}");
        Ok(())
    }
}

#[cfg(test)]
mod layout_tests {
    //! The byte layout `docs/card-credential.md` documents.
    use super::*;
    use p256::ecdsa::SigningKey;

    #[test]
    fn credential_bytes_match_the_documented_layout() -> Result<(), Box<dyn std::error::Error>> {
        let k = |b: u8| SigningKey::from_slice(&[b; 32]);
        let issuer = k(9)?;
        let c = CardCredential {
            issuer: "clinic-a".into(),
            patient_id: "P-1001".into(),
            expires_at: 1_952_680_000,
            not_before: 1_794_999_700,
            issued_at: 1_795_000_000,
            card_serial: 5_500_001,
            key_9a: VerifyingKey::from(&k(1)?),
            key_9c: VerifyingKey::from(&k(2)?),
            key_9e: VerifyingKey::from(&k(3)?),
        };
        let claims = c.to_cbor();
        eprintln!("claims {} bytes: {}", claims.len(), hex::encode(&claims));
        assert_eq!(claims.first(), Some(&0xAA));
        for key in ["3a0001003f01", "3a000100401a", "3a000100415841", "3a000100425841", "3a000100435841"] {
            assert!(hex::encode(&claims).contains(key), "{key}");
        }
        let signed = c.sign(&issuer)?;
        eprintln!("credential {} bytes: {}", signed.len(), hex::encode(&signed));
        let kid = hex::encode(qr::kid_for(&VerifyingKey::from(&issuer)));
        let protected = format!("a30126037823{}0448{kid}", hex::encode(CONTENT_TYPE));
        assert!(hex::encode(&signed).starts_with(&format!("d28458{:02x}{protected}a0", protected.len() / 2)), "{}", hex::encode(&signed));
        // The worked example in docs/card-credential.md (RFC 6979 signatures are deterministic).
        assert!(hex::encode(&signed).ends_with("58406589a39c84b9acad2ae6ab676914e8da62d57db0eb09c54282fb99b7089cab2ce53042c09584fddd7debb5f29db1f51747c5e5202db9801f6757181c90033735"));
        assert_eq!(signed.len(), 394);
        Ok(())
    }
}
