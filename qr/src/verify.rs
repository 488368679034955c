//! The strict, layered verification pipeline.
//!
//! prefix → base45 → inflate (capped) → COSE_Sign1 structure → algorithm (ES256 only) →
//! kid lookup → signature → claims → time. Each layer fails with its own [`VerifyError`]
//! variant, whose message names the layer. The result types ([`Verified`], [`ForeignVerified`])
//! can only be made here, after the signature verified.

use ciborium::Value;
use coset::CoseSign1;
use p256::ecdsa::VerifyingKey;
use serde_json::json;

use crate::claims::{Claims, ClaimsError, TimeClaims, TimeError};
use crate::cose::{self, AlgorithmError, CoseError, Tagging};
use crate::text::{self, Base45Error, Compression, InflateError, PrefixError};
use crate::time::{Clock, format_rfc3339};
use crate::trust::TrustList;

/// What the pipeline expects of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Text prefix (`MC1:`, or `HC1:` for dgc).
    pub prefix: String,
    /// Whether zlib is optional (MedCard) or required (dgc).
    pub compression: Compression,
    /// Cap on the inflated size in bytes.
    pub max_inflated: usize,
    /// Whether `alg` must be in the protected header (MedCard) or may be unprotected (dgc allows it).
    pub alg_must_be_protected: bool,
    /// Whether `iss` must equal the clinic id of the trust entry whose key verified the code
    /// (MedCard: a partner clinic's key cannot speak for another clinic).
    pub bind_issuer: bool,
    /// Longest `exp - iat` accepted, in seconds (MedCard: 24 h, the longest a kiosk issues).
    pub max_lifetime: Option<i64>,
}

/// Longest validity of a MedCard code (`exp - iat`): 24 hours.
pub const MEDCARD_MAX_LIFETIME: i64 = 24 * 3600;

impl Profile {
    /// MedCard pointers: `MC1:`, optional zlib, protected alg.
    #[must_use]
    pub fn medcard() -> Self {
        Profile {
            prefix: text::MEDCARD_PREFIX.into(),
            compression: Compression::Optional,
            max_inflated: text::DEFAULT_MAX_INFLATED,
            alg_must_be_protected: true,
            bind_issuer: true,
            max_lifetime: Some(MEDCARD_MAX_LIFETIME),
        }
    }
    /// EU DCC (`HC1:`): zlib required; alg may be unprotected (dgc-testdata CO20 expects that to verify).
    #[must_use]
    pub fn dgc() -> Self {
        Profile {
            prefix: text::HC1_PREFIX.into(),
            compression: Compression::Required,
            max_inflated: text::DEFAULT_MAX_INFLATED,
            alg_must_be_protected: false,
            bind_issuer: false,
            max_lifetime: None,
        }
    }
    /// This profile with another prefix.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }
}

/// The layers, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Text prefix.
    Prefix,
    /// base45.
    Base45,
    /// zlib.
    Inflate,
    /// COSE_Sign1 structure.
    Cose,
    /// Algorithm.
    Algorithm,
    /// kid lookup.
    Kid,
    /// Signature.
    Signature,
    /// Claims decoding.
    Claims,
    /// Validation clock.
    Time,
}

impl Layer {
    /// Every layer in order.
    pub const ALL: [Layer; 9] = [
        Layer::Prefix,
        Layer::Base45,
        Layer::Inflate,
        Layer::Cose,
        Layer::Algorithm,
        Layer::Kid,
        Layer::Signature,
        Layer::Claims,
        Layer::Time,
    ];
    /// Short name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Layer::Prefix => "prefix",
            Layer::Base45 => "base45",
            Layer::Inflate => "zlib",
            Layer::Cose => "cose_sign1",
            Layer::Algorithm => "algorithm",
            Layer::Kid => "kid",
            Layer::Signature => "signature",
            Layer::Claims => "claims",
            Layer::Time => "time",
        }
    }
}

/// Why a code was refused. Each variant is one layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Wrong or missing prefix.
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// Bad base45.
    #[error(transparent)]
    Base45(#[from] Base45Error),
    /// Bad or oversized zlib.
    #[error(transparent)]
    Inflate(#[from] InflateError),
    /// Not a well-formed COSE_Sign1.
    #[error(transparent)]
    Cose(#[from] CoseError),
    /// Not ES256.
    #[error(transparent)]
    Algorithm(#[from] AlgorithmError),
    /// No kid header.
    #[error("kid: the code has no kid header parameter")]
    NoKid,
    /// No trusted key has this kid.
    #[error("kid: no trusted key has kid {kid}")]
    UnknownKid { kid: String },
    /// The signature verifies with none of the keys with this kid.
    #[error("signature does not verify with the key of issuer {issuers} (kid {kid})")]
    Signature { kid: String, issuers: String },
    /// The signed claims are malformed.
    #[error("claims: {0}")]
    Claims(#[from] ClaimsError),
    /// The code names an issuer other than the clinic of the trust entry whose key verified it.
    #[error(
        "claims: the code says it was issued by {claimed:?}, but it is signed by the key of {signer:?}: a clinic's key speaks only for that clinic; do not use this code"
    )]
    IssuerMismatch { claimed: String, signer: String },
    /// `exp - iat` is longer than the profile allows.
    #[error("time: the code is valid for {} s (iat {iat}, exp {exp}), longer than the {max} s a MedCard code may be: refused", exp.saturating_sub(*iat))]
    Lifetime { iat: i64, exp: i64, max: i64 },
    /// Not valid at the validation clock.
    #[error("time: {0}")]
    Time(#[from] TimeError),
}

impl VerifyError {
    /// The layer that refused the code.
    #[must_use]
    pub fn layer(&self) -> Layer {
        match self {
            VerifyError::Prefix(_) => Layer::Prefix,
            VerifyError::Base45(_) => Layer::Base45,
            VerifyError::Inflate(_) => Layer::Inflate,
            VerifyError::Cose(_) => Layer::Cose,
            VerifyError::Algorithm(_) => Layer::Algorithm,
            VerifyError::NoKid | VerifyError::UnknownKid { .. } => Layer::Kid,
            VerifyError::Signature { .. } => Layer::Signature,
            VerifyError::Claims(_) | VerifyError::IssuerMismatch { .. } => Layer::Claims,
            VerifyError::Time(_) | VerifyError::Lifetime { .. } => Layer::Time,
        }
    }
}

/// The key that verified a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBy {
    /// The kid it was found under.
    pub kid: Vec<u8>,
    /// Its issuer label.
    pub issuer: String,
    /// The clinic id its trust entry is bound to.
    pub clinic: Option<String>,
    /// The key.
    pub key: VerifyingKey,
}

/// Proof that a COSE_Sign1's signature verified (made only by [`Verifier::check_cose`]).
#[derive(Debug, Clone)]
pub struct SignatureValid {
    msg: CoseSign1,
    tagging: Tagging,
    by: VerifiedBy,
}

impl SignatureValid {
    /// The verified message.
    #[must_use]
    pub fn message(&self) -> &CoseSign1 {
        &self.msg
    }
    /// The signed payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.msg.payload.as_deref().unwrap_or_default()
    }
    /// How it was tagged.
    #[must_use]
    pub fn tagging(&self) -> Tagging {
        self.tagging
    }
    /// The key that verified it.
    #[must_use]
    pub fn by(&self) -> &VerifiedBy {
        &self.by
    }
}

/// A verified MedCard pointer: signature, claims and time all checked.
#[derive(Debug, Clone)]
pub struct Verified {
    claims: Claims,
    by: VerifiedBy,
    compressed: bool,
}

impl Verified {
    /// The claims.
    #[must_use]
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
    /// The key that verified them.
    #[must_use]
    pub fn by(&self) -> &VerifiedBy {
        &self.by
    }
    /// Whether the code was zlib-compressed.
    #[must_use]
    pub fn compressed(&self) -> bool {
        self.compressed
    }
}

/// A verified foreign CWT (e.g. a dgc certificate): signature and time checked, claims raw.
#[derive(Debug, Clone)]
pub struct ForeignVerified {
    claims: Vec<(Value, Value)>,
    times: TimeClaims,
    by: VerifiedBy,
}

impl ForeignVerified {
    /// The raw claims map.
    #[must_use]
    pub fn claims(&self) -> &[(Value, Value)] {
        &self.claims
    }
    /// Its time claims.
    #[must_use]
    pub fn times(&self) -> TimeClaims {
        self.times
    }
    /// The key that verified it.
    #[must_use]
    pub fn by(&self) -> &VerifiedBy {
        &self.by
    }
}

/// What one layer produced, for [`Verifier::inspect`].
type Trace = Vec<(Layer, serde_json::Value)>;

/// The verifier: a profile and a trust list.
#[derive(Debug, Clone)]
pub struct Verifier<'a> {
    /// The profile.
    pub profile: Profile,
    /// Trusted keys.
    pub trust: &'a TrustList,
}

impl<'a> Verifier<'a> {
    /// A verifier for `profile` trusting `trust`.
    #[must_use]
    pub fn new(profile: Profile, trust: &'a TrustList) -> Self {
        Verifier { profile, trust }
    }

    /// Text → COSE bytes (prefix, base45, inflate).
    pub fn unwrap_text(&self, text: &str) -> Result<Vec<u8>, VerifyError> {
        self.unwrap_text_traced(text, &mut Vec::new()).map(|(cose, _)| cose)
    }

    fn unwrap_text_traced(&self, text: &str, trace: &mut Trace) -> Result<(Vec<u8>, bool), VerifyError> {
        let body = text::strip_prefix(text, &self.profile.prefix)?;
        trace.push((Layer::Prefix, json!({ "prefix": self.profile.prefix })));
        let bytes = text::base45_decode(body)?;
        trace.push((Layer::Base45, json!({ "bytes": bytes.len(), "hex": hex::encode(&bytes) })));
        let (cose, compressed) = text::decompress(&bytes, self.profile.compression, self.profile.max_inflated)?;
        trace.push((Layer::Inflate, json!({ "compressed": compressed, "bytes": cose.len(), "hex": hex::encode(&cose) })));
        Ok((cose, compressed))
    }

    /// COSE bytes → structure, algorithm, kid, signature.
    pub fn check_cose(&self, cose_bytes: &[u8]) -> Result<SignatureValid, VerifyError> {
        self.check_cose_traced(cose_bytes, &mut Vec::new())
    }

    fn check_cose_traced(&self, cose_bytes: &[u8], trace: &mut Trace) -> Result<SignatureValid, VerifyError> {
        let (msg, tagging) = cose::parse(cose_bytes)?;
        trace.push((
            Layer::Cose,
            json!({
                "tagging": format!("{tagging:?}"),
                "protected_hex": hex::encode(msg.protected.original_data.as_deref().unwrap_or_default()),
                "payload_hex": hex::encode(msg.payload.as_deref().unwrap_or_default()),
                "signature_hex": hex::encode(&msg.signature),
            }),
        ));
        cose::check_algorithm(&msg, self.profile.alg_must_be_protected)?;
        trace.push((Layer::Algorithm, json!({ "alg": "ES256" })));
        let kid = cose::kid_of(&msg).ok_or(VerifyError::NoKid)?.to_vec();
        let kid_hex = hex::encode(&kid);
        let candidates: Vec<_> = self.trust.lookup(&kid).collect();
        if candidates.is_empty() {
            return Err(VerifyError::UnknownKid { kid: kid_hex });
        }
        trace.push((Layer::Kid, json!({ "kid": kid_hex, "candidates": candidates.len() })));
        let Some(good) = candidates.iter().find(|k| cose::signature_verifies(&msg, b"", &k.key)) else {
            let mut issuers: Vec<&str> = candidates.iter().map(|k| k.issuer.as_str()).collect();
            issuers.dedup();
            return Err(VerifyError::Signature { kid: kid_hex, issuers: issuers.join(", ") });
        };
        let by = VerifiedBy { kid: kid.clone(), issuer: good.issuer.clone(), clinic: good.clinic.clone(), key: good.key };
        trace.push((Layer::Signature, json!({ "issuer": by.issuer, "kid": kid_hex })));
        Ok(SignatureValid { msg, tagging, by })
    }

    fn verify_traced(&self, text: &str, clock: Clock, trace: &mut Trace) -> Result<Verified, VerifyError> {
        let (cose, compressed) = self.unwrap_text_traced(text, trace)?;
        let valid = self.check_cose_traced(&cose, trace)?;
        let claims = Claims::from_cbor(valid.payload())?;
        if self.profile.bind_issuer && valid.by.clinic.as_deref() != Some(claims.iss.as_str()) {
            let signer = valid.by.clinic.clone().unwrap_or_else(|| valid.by.issuer.clone());
            return Err(VerifyError::IssuerMismatch { claimed: claims.iss, signer });
        }
        trace.push((Layer::Claims, claims_json(&claims)));
        if let Some(max) = self.profile.max_lifetime
            && claims.exp.saturating_sub(claims.iat) > max
        {
            return Err(VerifyError::Lifetime { iat: claims.iat, exp: claims.exp, max });
        }
        claims.times().check(clock)?;
        trace.push((Layer::Time, json!({ "now": format_rfc3339(clock.now), "skew_s": clock.skew })));
        Ok(Verified { claims, by: valid.by, compressed })
    }

    /// Verifies a MedCard pointer at `clock`.
    pub fn verify(&self, text: &str, clock: Clock) -> Result<Verified, VerifyError> {
        self.verify_traced(text, clock, &mut Vec::new())
    }

    fn verify_foreign_traced(&self, text: &str, clock: Clock, trace: &mut Trace) -> Result<ForeignVerified, VerifyError> {
        let (cose, _) = self.unwrap_text_traced(text, trace)?;
        let valid = self.check_cose_traced(&cose, trace)?;
        self.foreign_claims_traced(&valid, clock, trace)
    }

    fn foreign_claims_traced(&self, valid: &SignatureValid, clock: Clock, trace: &mut Trace) -> Result<ForeignVerified, VerifyError> {
        let claims = crate::claims::decode_claims_map(valid.payload())?;
        let times = TimeClaims::from_map(&claims)?;
        trace.push((Layer::Claims, json!({ "entries": claims.len(), "iat": times.iat, "exp": times.exp, "nbf": times.nbf })));
        times.check(clock)?;
        trace.push((Layer::Time, json!({ "now": format_rfc3339(clock.now), "skew_s": clock.skew })));
        Ok(ForeignVerified { claims, times, by: valid.by.clone() })
    }

    /// Verifies a foreign CWT (payload not our claims): stops after signature, a generic claims map
    /// (one map, no duplicate keys) and the time check.
    pub fn verify_foreign(&self, text: &str, clock: Clock) -> Result<ForeignVerified, VerifyError> {
        self.verify_foreign_traced(text, clock, &mut Vec::new())
    }

    /// Checks the claims map and time of an already verified COSE message (foreign payloads).
    pub fn check_foreign_claims(&self, valid: &SignatureValid, clock: Clock) -> Result<ForeignVerified, VerifyError> {
        self.foreign_claims_traced(valid, clock, &mut Vec::new())
    }

    /// A JSON report of every layer: `ok` with details, the error, or `not reached`.
    #[must_use]
    pub fn inspect(&self, text: &str, clock: Clock, foreign: bool) -> serde_json::Value {
        let mut trace = Trace::new();
        let outcome = if foreign {
            self.verify_foreign_traced(text, clock, &mut trace).map(|f| json!({ "issuer": f.by.issuer, "kid": hex::encode(&f.by.kid) }))
        } else {
            self.verify_traced(text, clock, &mut trace)
                .map(|v| json!({ "issuer": v.by.issuer, "kid": hex::encode(&v.by.kid), "claims": claims_json(&v.claims) }))
        };
        if !foreign {
            redact_payload_dumps(&mut trace);
        }
        let failed = outcome.as_ref().err().map(VerifyError::layer);
        let layers: Vec<serde_json::Value> = Layer::ALL
            .iter()
            .map(|layer| {
                if let Some((_, detail)) = trace.iter().find(|(l, _)| l == layer) {
                    json!({ "layer": layer.name(), "status": "ok", "detail": detail })
                } else if Some(*layer) == failed {
                    let msg = outcome.as_ref().err().map(ToString::to_string).unwrap_or_default();
                    json!({ "layer": layer.name(), "status": "error", "error": msg })
                } else {
                    json!({ "layer": layer.name(), "status": "not reached" })
                }
            })
            .collect();
        json!({
            "profile": { "prefix": self.profile.prefix, "foreign": foreign },
            "validation_time": format_rfc3339(clock.now),
            "verified": outcome.is_ok(),
            "result": match &outcome { Ok(v) => v.clone(), Err(e) => json!({ "error": e.to_string(), "layer": e.layer().name() }) },
            "layers": layers,
        })
    }
}

/// What stands in a report where a byte dump of a MedCard code's payload would.
pub const REDACTED_DUMP: &str = "redacted: these bytes hold the record content key";

/// Removes the layers' byte dumps that contain the signed payload (base45 bytes, inflated COSE,
/// COSE payload): a MedCard payload holds the records' content key, which a report never shows.
fn redact_payload_dumps(trace: &mut Trace) {
    for (_, detail) in trace.iter_mut() {
        if let Some(obj) = detail.as_object_mut() {
            for key in ["hex", "payload_hex"] {
                if let Some(v) = obj.get_mut(key) {
                    *v = REDACTED_DUMP.into();
                }
            }
        }
    }
}

/// The claims as JSON (hashes in hex; the content key is never printed, only whether it is there).
#[must_use]
pub fn claims_json(c: &Claims) -> serde_json::Value {
    json!({
        "iss": c.iss,
        "iat": format_rfc3339(c.iat),
        "exp": format_rfc3339(c.exp),
        "nbf": c.nbf.map(format_rfc3339),
        "cti": hex::encode(&c.cti),
        "patient_id": c.pointer.patient_id,
        "locator": c.pointer.locator,
        "record_sha256": hex::encode(c.pointer.record_sha256),
        "content_key": if c.pointer.content_key.is_some() { "present (redacted)" } else { "absent" },
        "categories": c.pointer.categories,
        "consent_sha256": hex::encode(c.pointer.consent_sha256),
    })
}
