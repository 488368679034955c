//! The verification panel, derived from what the library returned. Pure: no UI, no I/O.
//!
//! The library ([`reader::bedside::Bedside::scan_text`] over [`reader::scan_flow::scan`]) runs
//! its checks in this order: the code's format (prefix, base45, zlib, COSE, algorithm), the
//! issuer (kid in the trust list), the signature, the claims and the clock, the one-time id, then
//! for each record its digest and the consent categories. A refusal names the layer that failed;
//! the checks the library had passed before it are shown as passed, the failed one as failed,
//! and everything after it as "not checked". When the library's order cannot be known from the
//! error (a database failure), the uncertain checks are shown as "not checked", never "passed".

use reader::records::fetch::FetchError;
use reader::scan_flow::ScanError;

/// One line of the verification panel, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The code's kid is in this device's trust list.
    Issuer,
    /// The code is a well-formed MedCard code and its signature verifies.
    Signature,
    /// The code is within its validity period (and its claims are readable).
    Expiry,
    /// The code's one-time id was not used on this device before.
    OneTime,
    /// Each record is intact and is the one the code names (store digest, code digest, AEAD).
    Digest,
    /// Each record is in a category the code (issued under the patient's consent) covers.
    Consent,
}

impl Check {
    /// Every check, in the panel's order.
    pub const ALL: [Check; 6] = [Check::Issuer, Check::Signature, Check::Expiry, Check::OneTime, Check::Digest, Check::Consent];

    /// The line's label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Check::Issuer => "Issuer trusted",
            Check::Signature => "Signature valid",
            Check::Expiry => "Not expired",
            Check::OneTime => "Not used before (one-time)",
            Check::Digest => "Record digest matches",
            Check::Consent => "Consent covers the records",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The library checked it and it held.
    Passed,
    /// The library refused the code here.
    Failed,
    /// Not reached (after the first failure) or not known.
    NotChecked,
}

impl Mark {
    /// The word shown next to the mark (the colour is never the only signal).
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Mark::Passed => "passed",
            Mark::Failed => "FAILED",
            Mark::NotChecked => "not checked",
        }
    }
}

/// One line of the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// Which check.
    pub check: Check,
    /// Its result.
    pub mark: Mark,
    /// A few words on a failed line ("not a MedCard code", ...).
    pub note: Option<&'static str>,
}

/// The panel of a verified scan: every check passed.
#[must_use]
pub fn all_passed() -> Vec<CheckLine> {
    lines(&Check::ALL, None, None)
}

/// The panel of a refused scan.
#[must_use]
pub fn from_error(e: &ScanError) -> Vec<CheckLine> {
    use Check::*;
    use qr::VerifyError as V;
    const NONE: &[Check] = &[];
    const ISSUER: &[Check] = &[Issuer];
    const SIGNED: &[Check] = &[Issuer, Signature];
    const CURRENT: &[Check] = &[Issuer, Signature, Expiry];
    const FRESH: &[Check] = &[Issuer, Signature, Expiry, OneTime];
    let (passed, failed, note): (&[Check], Option<Check>, Option<&'static str>) = match e {
        ScanError::Qr(V::Prefix(_)) => (NONE, Some(Signature), Some("not a MedCard code")),
        ScanError::Qr(V::Base45(_) | V::Inflate(_) | V::Cose(_)) => (NONE, Some(Signature), Some("the code is damaged or not well-formed")),
        ScanError::Qr(V::Algorithm(_)) => (NONE, Some(Signature), Some("signed with an algorithm MedCard does not accept")),
        ScanError::Qr(V::NoKid) => (NONE, Some(Issuer), Some("the code names no issuer key")),
        ScanError::Qr(V::UnknownKid { .. }) => (NONE, Some(Issuer), Some("not in this device's trust list")),
        ScanError::Qr(V::Signature { .. }) => (ISSUER, Some(Signature), Some("altered or forged")),
        ScanError::Qr(V::Claims(_)) => (SIGNED, Some(Expiry), Some("the signed content is malformed: its validity cannot be read")),
        ScanError::Qr(V::Time(_)) => (SIGNED, Some(Expiry), Some("expired or not yet valid")),
        ScanError::Qr(_) => (NONE, Some(Signature), None),
        ScanError::TooLong { .. } => (NONE, Some(Signature), Some("too long to be a MedCard code")),
        ScanError::AlreadyUsed { device: None, .. } => (CURRENT, Some(OneTime), Some("this code was scanned here before")),
        ScanError::AlreadyUsed { device: Some(_), .. } => (CURRENT, Some(OneTime), Some("this code was scanned before (see where)")),
        ScanError::ClinicDb(_) => (CURRENT, Some(OneTime), Some("the clinic database could not say whether it was used")),
        ScanError::Fetch(FetchError::NotCovered { .. }) => (FRESH, Some(Consent), Some("a record is outside the shared categories")),
        ScanError::Fetch(FetchError::UnknownCategory(_)) => (FRESH, Some(Consent), Some("the code names an unknown category")),
        // Only writing the cache fails this way, after every record checked out.
        ScanError::Fetch(FetchError::Db(_)) => (&Check::ALL, None, None),
        ScanError::Fetch(FetchError::Store(_)) => (FRESH, Some(Digest), Some("the stored record is missing or altered")),
        ScanError::Fetch(_) => (FRESH, Some(Digest), Some("the record is not the one the code names")),
        ScanError::Index(_) | ScanError::IndexMismatch { .. } => (FRESH, Some(Digest), Some("the record list does not match the code")),
        // The one-time lookup or the cache write: which one is not known.
        ScanError::Db(_) => (CURRENT, None, None),
        _ => (NONE, None, None),
    };
    lines(passed, failed, note)
}

fn lines(passed: &[Check], failed: Option<Check>, note: Option<&'static str>) -> Vec<CheckLine> {
    Check::ALL
        .iter()
        .map(|&check| {
            if failed == Some(check) {
                CheckLine { check, mark: Mark::Failed, note }
            } else if passed.contains(&check) {
                CheckLine { check, mark: Mark::Passed, note: None }
            } else {
                CheckLine { check, mark: Mark::NotChecked, note: None }
            }
        })
        .collect()
}

/// The result banner's word.
#[must_use]
pub fn banner(verdict: reader::scan_flow::Verdict) -> &'static str {
    match verdict {
        reader::scan_flow::Verdict::Verified => "VERIFIED",
        reader::scan_flow::Verdict::IssuerUnknown => "ISSUER UNKNOWN",
        reader::scan_flow::Verdict::Invalid => "INVALID",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reader::scan_flow::Verdict;

    fn marks(v: &[CheckLine]) -> Vec<Mark> {
        v.iter().map(|l| l.mark).collect()
    }

    fn failed(v: &[CheckLine]) -> Option<Check> {
        v.iter().find(|l| l.mark == Mark::Failed).map(|l| l.check)
    }

    /// A real refusal from the library: text `t` verified against an empty trust list or
    /// `trust`, at `now`.
    fn refusal(text: &str, trust: &qr::TrustList, now: i64) -> ScanError {
        let v = qr::Verifier::new(qr::Profile::medcard(), trust);
        match v.verify(text, qr::Clock::new(now, 60)) {
            Err(e) => ScanError::Qr(e),
            Ok(_) => unreachable!("the code verified"),
        }
    }

    fn signed_code(exp: i64) -> (String, qr::TrustList) {
        use qr::Signer;
        let signer = qr::SoftwareSigner::generate().unwrap_or_else(|e| unreachable!("{e}"));
        let mut trust = qr::TrustList::new();
        trust.add_key("clinic-a", signer.public_key());
        let claims = qr::Claims {
            iss: "clinic-a".into(),
            iat: exp - 600,
            exp,
            nbf: None,
            cti: qr::claims::random_cti().unwrap_or_else(|e| unreachable!("{e}")),
            pointer: qr::Pointer {
                patient_id: "P-1".into(),
                locator: format!("sha256:{}", "ab".repeat(32)),
                record_sha256: [0xab; 32],
                content_key: Some(qr::ContentKey::new([7; 32])),
                categories: vec!["allergies".into()],
                consent_sha256: [0; 32],
            },
        };
        (qr::encode(&claims, &signer).unwrap_or_else(|e| unreachable!("{e}")).text, trust)
    }

    #[test]
    fn a_verified_scan_passes_every_check_in_the_panels_order() {
        let v = all_passed();
        assert_eq!(v.iter().map(|l| l.check).collect::<Vec<_>>(), Check::ALL.to_vec());
        assert!(v.iter().all(|l| l.mark == Mark::Passed && l.note.is_none()));
    }

    #[test]
    fn a_plain_url_fails_the_format_check_as_not_a_medcard_code_and_checks_nothing_else() {
        let e = refusal("https://example.org/", &qr::TrustList::new(), 1_800_000_000);
        let v = from_error(&e);
        assert_eq!(failed(&v), Some(Check::Signature));
        assert_eq!(v.iter().find(|l| l.mark == Mark::Failed).and_then(|l| l.note), Some("not a MedCard code"));
        assert_eq!(v.iter().filter(|l| l.mark == Mark::NotChecked).count(), 5);
        assert_eq!(e.verdict(), Verdict::Invalid);
    }

    #[test]
    fn a_code_from_an_unknown_issuer_fails_the_issuer_line_first() {
        let (text, _) = signed_code(1_800_000_600);
        let e = refusal(&text, &qr::TrustList::new(), 1_800_000_000);
        let v = from_error(&e);
        assert_eq!(marks(&v), vec![Mark::Failed, Mark::NotChecked, Mark::NotChecked, Mark::NotChecked, Mark::NotChecked, Mark::NotChecked]);
        assert_eq!(banner(e.verdict()), "ISSUER UNKNOWN");
    }

    #[test]
    fn a_tampered_code_passes_the_issuer_and_fails_the_signature_or_format() {
        let (text, trust) = signed_code(1_800_000_600);
        // Alter one character of the base45 body, as a forger editing a printed code would.
        let mut bytes = text.into_bytes();
        let i = bytes.len() / 2;
        let c = bytes.get(i).copied().unwrap_or(b'0');
        if let Some(b) = bytes.get_mut(i) {
            *b = if c == b'0' { b'1' } else { b'0' };
        }
        let text = String::from_utf8(bytes).unwrap_or_else(|e| unreachable!("{e}"));
        let e = refusal(&text, &trust, 1_800_000_000);
        let v = from_error(&e);
        assert_eq!(failed(&v), Some(Check::Signature), "{e}");
        assert!(v.iter().skip(2).all(|l| l.mark == Mark::NotChecked));
        assert_eq!(banner(e.verdict()), "INVALID");
    }

    #[test]
    fn an_expired_code_passes_issuer_and_signature_and_fails_expiry() {
        let (text, trust) = signed_code(1_800_000_000);
        let e = refusal(&text, &trust, 1_800_000_000 + 3600);
        let v = from_error(&e);
        assert_eq!(marks(&v), vec![Mark::Passed, Mark::Passed, Mark::Failed, Mark::NotChecked, Mark::NotChecked, Mark::NotChecked]);
    }

    #[test]
    fn a_second_scan_fails_only_the_one_time_check() {
        let e = ScanError::AlreadyUsed { qr_id: "ab".into(), used_at: "2027-01-15T08:00:00Z".into(), device: None };
        assert_eq!(
            marks(&from_error(&e)),
            vec![Mark::Passed, Mark::Passed, Mark::Passed, Mark::Failed, Mark::NotChecked, Mark::NotChecked]
        );
    }

    #[test]
    fn a_record_outside_the_shared_categories_fails_the_consent_line() {
        let e = ScanError::Fetch(FetchError::NotCovered {
            locator: "sha256:00".into(),
            category: reader::category::Category::Notes,
            covered: "allergies".into(),
        });
        let v = from_error(&e);
        assert_eq!(failed(&v), Some(Check::Consent));
        assert_eq!(v.get(3).map(|l| l.mark), Some(Mark::Passed));
        assert_eq!(v.get(4).map(|l| l.mark), Some(Mark::NotChecked), "the refused record's digest was not reached");
    }

    #[test]
    fn a_missing_or_altered_stored_record_fails_the_digest_line() {
        let e = ScanError::Fetch(FetchError::DigestClaim { locator: "sha256:00".into(), claimed: "11".into() });
        assert_eq!(failed(&from_error(&e)), Some(Check::Digest));
        let e = ScanError::IndexMismatch {
            locator: "x".into(),
            record_id: "a".into(),
            category: reader::category::Category::Labs,
            index_record_id: "b".into(),
            index_category: reader::category::Category::Labs,
        };
        assert_eq!(failed(&from_error(&e)), Some(Check::Digest));
        let e = ScanError::Fetch(FetchError::NoKey { locator: "sha256:00".into() });
        assert_eq!(failed(&from_error(&e)), Some(Check::Digest));
    }

    #[test]
    fn a_too_long_text_fails_the_format_check() {
        let e = ScanError::TooLong { got: 9000, limit: reader::scan_flow::MAX_QR_TEXT };
        assert_eq!(failed(&from_error(&e)), Some(Check::Signature));
    }

    #[test]
    fn a_device_database_failure_fails_no_check_and_claims_none_it_cannot_know() {
        let e = ScanError::Db(reader::db::DbError::BadRow { path: "/x".into(), table: "qr_used", row: "1".into(), what: "bad".into() });
        let v = from_error(&e);
        assert_eq!(failed(&v), None);
        assert_eq!(marks(&v), vec![Mark::Passed, Mark::Passed, Mark::Passed, Mark::NotChecked, Mark::NotChecked, Mark::NotChecked]);
    }

    #[test]
    fn every_mark_has_a_word_not_only_a_colour() {
        for m in [Mark::Passed, Mark::Failed, Mark::NotChecked] {
            assert!(!m.word().is_empty());
        }
        assert_ne!(Mark::Passed.word(), Mark::Failed.word());
    }
}
