//! Every refusal comes from its own layer, with its own error.

mod codec_support;
use codec_support::*;

use coset::{CoseSign1, TaggedCborSerializable, iana};
use qr::claims::TimeError;
use qr::cose::{AlgorithmError, CoseError};
use qr::text::{Base45Error, InflateError};
use qr::verify::Layer;
use qr::{Clock, Profile, Signer, TrustList, Verifier, VerifyError};

fn text_of(cose: &[u8]) -> String {
    let (packed, _) = qr::text::compress_if_smaller(cose);
    format!("MC1:{}", qr::text::base45_encode(&packed))
}

fn verify(text: &str, trust: &TrustList) -> Result<qr::Verified, VerifyError> {
    Verifier::new(Profile::medcard(), trust).verify(text, Clock::new(NOW + 60, 30))
}

fn signed(claims: &qr::Claims) -> Result<(String, Vec<u8>, TrustList), Box<dyn std::error::Error>> {
    let s = signer(1);
    let enc = qr::encode(claims, &s)?;
    Ok((enc.text, enc.cose, trust_of(&s, "clinic-0042")))
}

#[test]
fn good_code_verifies_and_names_its_key() -> R {
    let (text, _, trust) = signed(&claims())?;
    let v = verify(&text, &trust)?;
    assert_eq!(v.claims(), &claims());
    assert_eq!(v.by().issuer, "clinic-0042");
    assert_eq!(v.by().kid, qr::kid_for(&signer(1).public_key()).to_vec());
    Ok(())
}

#[test]
fn wrong_prefix_is_refused_by_the_prefix_layer() -> R {
    let (text, _, trust) = signed(&claims())?;
    let e = verify(&text.replacen("MC1:", "HC1:", 1), &trust).err();
    assert!(matches!(&e, Some(VerifyError::Prefix(p)) if p.expected == "MC1:"), "{e:?}");
    Ok(())
}

#[test]
fn bad_base45_is_refused_by_the_base45_layer() -> R {
    let (text, _, trust) = signed(&claims())?;
    let e = verify(&format!("{text}a"), &trust).err();
    assert!(matches!(e, Some(VerifyError::Base45(Base45Error::BadCharacter { ch: 'a', .. }))), "{e:?}");
    Ok(())
}

#[test]
fn zip_bomb_is_refused_by_the_zlib_layer() -> R {
    let (bomb, compressed) = qr::text::compress_if_smaller(&vec![0u8; 8 * 1024 * 1024]);
    assert!(compressed);
    let e = verify(&format!("MC1:{}", qr::text::base45_encode(&bomb)), &TrustList::new()).err();
    assert!(matches!(e, Some(VerifyError::Inflate(InflateError::TooLarge { .. }))), "{e:?}");
    Ok(())
}

#[test]
fn every_truncation_of_the_cose_is_refused_by_the_cose_layer() -> R {
    let (_, cose, trust) = signed(&claims())?;
    for len in 0..cose.len() {
        let e = verify(&text_of(cose.get(..len).unwrap_or_default()), &trust).err();
        assert!(matches!(e, Some(VerifyError::Cose(_))), "prefix of {len} bytes: {e:?}");
    }
    Ok(())
}

fn resign(cose: &[u8], edit: impl FnOnce(&mut CoseSign1)) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut msg = CoseSign1::from_tagged_slice(cose).map_err(|e| e.to_string())?;
    edit(&mut msg);
    Ok(msg.to_tagged_vec().map_err(|e| e.to_string())?)
}

#[test]
fn alg_swap_is_refused_by_the_algorithm_layer() -> R {
    let (_, cose, trust) = signed(&claims())?;
    for alg in [iana::Algorithm::ES384, iana::Algorithm::EdDSA, iana::Algorithm::HMAC_256_256] {
        let swapped = resign(&cose, |m| {
            m.protected.header.alg = Some(coset::RegisteredLabelWithPrivate::Assigned(alg));
            m.protected.original_data = None;
        })?;
        let e = verify(&text_of(&swapped), &trust).err();
        assert!(matches!(e, Some(VerifyError::Algorithm(AlgorithmError::NotAllowed { .. }))), "{alg:?}: {e:?}");
    }
    let none = resign(&cose, |m| {
        m.protected.header.alg = None;
        m.protected.original_data = None;
    })?;
    assert!(matches!(verify(&text_of(&none), &trust), Err(VerifyError::Algorithm(AlgorithmError::Missing))));
    let unprotected = resign(&cose, |m| {
        m.unprotected.alg = m.protected.header.alg.take();
        m.protected.original_data = None;
    })?;
    assert!(matches!(verify(&text_of(&unprotected), &trust), Err(VerifyError::Algorithm(AlgorithmError::NotProtected))));
    Ok(())
}

#[test]
fn unknown_kid_is_refused_by_the_kid_layer() -> R {
    let (text, _, _) = signed(&claims())?;
    let other = trust_of(&signer(2), "other clinic");
    assert!(matches!(verify(&text, &other), Err(VerifyError::UnknownKid { .. })));
    Ok(())
}

#[test]
fn wrong_key_with_colliding_kid_is_refused_by_the_signature_layer_naming_the_issuer() -> R {
    let (text, _, _) = signed(&claims())?;
    let mut trust = TrustList::new();
    trust.add(&qr::kid_for(&signer(1).public_key()), "impostor clinic", signer(3).public_key());
    let e = verify(&text, &trust).err();
    assert!(matches!(&e, Some(VerifyError::Signature { issuers, .. }) if issuers == "impostor clinic"), "{e:?}");
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.starts_with("signature does not verify with the key of issuer impostor clinic"), "{msg}");
    // ...and with the right key also under that kid, the right one is found.
    trust.add_key("clinic-0042", signer(1).public_key());
    assert_eq!(verify(&text, &trust)?.by().issuer, "clinic-0042");
    Ok(())
}

#[test]
fn flipped_signature_bit_is_refused_by_the_signature_layer() -> R {
    let (_, cose, trust) = signed(&claims())?;
    for bit in [0usize, 7, 255, 511] {
        let bad = resign(&cose, |m| {
            if let Some(b) = m.signature.get_mut(bit / 8) {
                *b ^= 1 << (bit % 8);
            }
        })?;
        assert!(matches!(verify(&text_of(&bad), &trust), Err(VerifyError::Signature { .. })), "bit {bit}");
    }
    Ok(())
}

#[test]
fn flipped_payload_bit_is_refused_by_the_signature_layer() -> R {
    let (_, cose, trust) = signed(&claims())?;
    let len = CoseSign1::from_tagged_slice(&cose).map_err(|e| e.to_string())?.payload.map_or(0, |p| p.len());
    for i in [0, len / 2, len - 1] {
        let bad = resign(&cose, |m| {
            if let Some(b) = m.payload.as_mut().and_then(|p| p.get_mut(i)) {
                *b ^= 0x01;
            }
        })?;
        assert!(matches!(verify(&text_of(&bad), &trust), Err(VerifyError::Signature { .. })), "byte {i}");
    }
    Ok(())
}

#[test]
fn expired_code_is_refused_by_the_time_layer_with_both_times() -> R {
    let mut c = claims();
    c.iat = NOW - 3600;
    c.exp = NOW - 60;
    let (text, _, trust) = signed(&c)?;
    let e = verify(&text, &trust).err();
    assert!(matches!(e, Some(VerifyError::Time(TimeError::Expired { .. }))), "{e:?}");
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("code expired at 2026-11-23T09:59:00Z (now 2026-11-23T10:01:00Z"), "{msg}");
    Ok(())
}

#[test]
fn not_yet_valid_code_is_refused_by_the_time_layer() -> R {
    let mut c = claims();
    c.nbf = Some(NOW + 3600);
    c.exp = NOW + 7200;
    let (text, _, trust) = signed(&c)?;
    assert!(matches!(verify(&text, &trust), Err(VerifyError::Time(TimeError::NotYetValid { .. }))));
    Ok(())
}

#[test]
fn iat_in_the_future_is_refused_by_the_time_layer() -> R {
    let mut c = claims();
    c.iat = NOW + 600;
    c.exp = NOW + 3600;
    let (text, _, trust) = signed(&c)?;
    assert!(matches!(verify(&text, &trust), Err(VerifyError::Time(TimeError::IssuedInFuture { .. }))));
    Ok(())
}

#[test]
fn untagged_and_cwt_wrapped_messages_are_accepted_other_tags_are_not() -> R {
    let (_, cose, trust) = signed(&claims())?;
    let untagged = cose.get(1..).unwrap_or_default().to_vec();
    assert!(verify(&text_of(&untagged), &trust).is_ok());
    let mut cwt = vec![0xD8, 0x3D];
    cwt.extend_from_slice(&cose);
    assert!(verify(&text_of(&cwt), &trust).is_ok());
    let mut wrong = cose.clone();
    if let Some(b) = wrong.first_mut() {
        *b = 0xD1; // tag 17 (COSE_Mac0)
    }
    assert!(matches!(verify(&text_of(&wrong), &trust), Err(VerifyError::Cose(CoseError::WrongTag { .. }))));
    Ok(())
}

#[test]
fn unknown_critical_header_is_refused_by_the_cose_layer() -> R {
    let (_, cose, trust) = signed(&claims())?;
    let bad = resign(&cose, |m| {
        m.protected.header.crit.push(coset::RegisteredLabelWithPrivate::PrivateUse(-70_000));
        m.protected.original_data = None;
    })?;
    assert!(matches!(verify(&text_of(&bad), &trust), Err(VerifyError::Cose(CoseError::UnknownCritical(_)))));
    Ok(())
}

#[test]
fn error_layers_are_reported() {
    assert_eq!(VerifyError::NoKid.layer(), Layer::Kid);
}

#[test]
fn a_typical_pointer_fits_qr_version_15_at_level_q() -> R {
    let (text, _, _) = signed(&claims())?;
    let info = qr::render::qr_info(&text)?;
    println!("typical pointer: {} characters, QR version {} ({:?})", text.len(), info.version, info.mode);
    assert!(info.version <= 15, "version {}", info.version);
    assert_eq!(info.mode, qr::render::Mode::Alphanumeric);
    Ok(())
}

#[test]
fn card_style_signer_with_der_output_is_accepted() -> R {
    // A signer that only exposes DER over a digest (like a PIV card) — here a wrapper that
    // re-encodes through DER explicitly.
    struct Card(qr::SoftwareSigner);
    impl Signer for Card {
        fn public_key(&self) -> p256::ecdsa::VerifyingKey {
            self.0.public_key()
        }
        fn sign_digest_der(&self, d: &[u8; 32]) -> Result<Vec<u8>, qr::cose::SignerError> {
            self.0.sign_digest_der(d)
        }
    }
    struct Broken;
    impl Signer for Broken {
        fn public_key(&self) -> p256::ecdsa::VerifyingKey {
            signer(1).public_key()
        }
        fn sign_digest_der(&self, _: &[u8; 32]) -> Result<Vec<u8>, qr::cose::SignerError> {
            Ok(vec![0x30, 0x03, 0x02, 0x01, 0x01])
        }
    }
    let card = Card(signer(1));
    let enc = qr::encode(&claims(), &card)?;
    assert!(verify(&enc.text, &trust_of(&signer(1), "clinic-0042")).is_ok());
    assert!(matches!(qr::encode(&claims(), &Broken), Err(qr::codec::EncodeError::Cose(CoseError::BadDerSignature(_)))));
    Ok(())
}

// ---- issue 13: the issuer claim is bound to the key that verified it; lifetimes are capped ----

#[test]
fn code_signed_by_a_partner_key_claiming_another_clinic_as_issuer_is_refused() -> R {
    // Clinic B is trusted (for referrals); it signs a code claiming to come from clinic C.
    let partner = signer(7);
    let mut trust = trust_of(&signer(1), "clinic-0042");
    trust.add_key("clinic-b", qr::Signer::public_key(&partner));
    let mut forged = claims();
    forged.iss = "clinic-0042".into();
    let enc = qr::encode(&forged, &partner)?;
    let e = verify(&enc.text, &trust).err();
    assert!(
        matches!(&e, Some(VerifyError::IssuerMismatch { claimed, signer }) if claimed == "clinic-0042" && signer == "clinic-b"),
        "{e:?}"
    );
    assert_eq!(e.map(|e| e.layer()), Some(Layer::Claims));
    Ok(())
}

#[test]
fn code_from_a_trust_entry_bound_to_no_clinic_is_refused() -> R {
    // A key registered under a kid with no clinic binding (a dgc signer, say) cannot vouch for `iss`.
    let s = signer(1);
    let mut trust = TrustList::new();
    trust.add_unbound(&qr::kid_for(&qr::Signer::public_key(&s)), "some DSC", qr::Signer::public_key(&s));
    let enc = qr::encode(&claims(), &s)?;
    let e = verify(&enc.text, &trust).err();
    assert!(matches!(&e, Some(VerifyError::IssuerMismatch { .. })), "{e:?}");
    Ok(())
}

#[test]
fn code_valid_for_a_year_is_refused_as_too_long_lived() -> R {
    let mut c = claims();
    c.exp = c.iat + 365 * 24 * 3600;
    let (text, _, trust) = signed(&c)?;
    let e = verify(&text, &trust).err();
    assert!(matches!(e, Some(VerifyError::Lifetime { max: 86_400, .. })), "{e:?}");
    // 24 hours exactly is the longest a kiosk issues, and verifies.
    c.exp = c.iat + 24 * 3600;
    let (text, _, trust) = signed(&c)?;
    verify(&text, &trust)?;
    Ok(())
}

#[test]
fn claims_map_with_thousands_of_entries_is_refused_before_any_quadratic_work() {
    // 5,000 distinct keys: a duplicate check comparing each with all before it does 12.5M comparisons.
    let entries: Vec<(ciborium::Value, ciborium::Value)> =
        (0..5_000i64).map(|i| (ciborium::Value::from(i + 100), ciborium::Value::from(0))).collect();
    let bytes = qr::claims::cbor_to_vec(&ciborium::Value::Map(entries)).unwrap_or_default();
    let e = qr::claims::decode_claims_map(&bytes);
    assert!(matches!(e, Err(qr::claims::ClaimsError::TooManyEntries { got: 5_000, .. })), "{e:?}");
}
