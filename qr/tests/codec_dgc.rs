//! dgc-testdata: for every vector whose signer certificate holds a P-256 key, each
//! `EXPECTEDRESULTS` step flag (UNPREFIX, B45DECODE, COMPRESSION, VERIFY, EXPIRATIONCHECK,
//! DECODE) present must match what our pipeline's layer says about that step's input field.
//! Counts per flag are printed; any mismatch fails. PICTUREDECODE belongs to the scanner tests.
//!
//! Step inputs (dgc-testdata README "Test procedure"): UNPREFIX: PREFIX → equals BASE45;
//! B45DECODE: BASE45 → equals COMPRESSED; COMPRESSION: COMPRESSED → inflates to COSE;
//! VERIFY: COSE → structure, alg, kid lookup, signature with TESTCTX.CERTIFICATE;
//! EXPIRATIONCHECK: COSE → claims map → exp/nbf/iat against VALIDATIONCLOCK (no skew);
//! DECODE: COSE → strict claims map → hcert (-260) → 1 equals CBOR (as values, map order aside;
//! DE and FR vectors put the whole CWT claims map in CBOR, which is accepted too).
//! A field a step needs but the vector lacks is derived from PREFIX through the earlier layers.

mod codec_support;
use codec_support::*;

use std::collections::BTreeMap;

use ciborium::Value;
use qr::text::{self, Compression};
use qr::verify::{Profile, Verifier};
use qr::{Clock, TrustList};

const FLAGS: [&str; 6] = ["UNPREFIX", "B45DECODE", "COMPRESSION", "VERIFY", "EXPIRATIONCHECK", "DECODE"];

fn canonical(v: Value) -> Value {
    match v {
        Value::Map(m) => {
            let mut m: Vec<(Value, Value)> = m.into_iter().map(|(k, v)| (canonical(k), canonical(v))).collect();
            m.sort_by_key(|(k, _)| qr::claims::cbor_to_vec(k).unwrap_or_default());
            Value::Map(m)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        Value::Tag(t, b) => Value::Tag(t, Box::new(canonical(*b))),
        other => other,
    }
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    Ok(())
}

#[test]
fn every_p256_vector_flag_matches_the_pipeline() -> R {
    let root = corpora().join("dgc-testdata");
    let mut paths = Vec::new();
    files(&root, &mut paths)?;
    paths.sort();
    let mut counts: BTreeMap<&str, (u32, u32)> = FLAGS.iter().map(|f| (*f, (0, 0))).collect();
    let (mut in_scope, mut out_of_scope, mut full_pipeline) = (0, Vec::new(), 0);
    let mut mismatches = Vec::new();
    let dgc = Profile::dgc();
    for path in &paths {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        let Some(expected) = v.get("EXPECTEDRESULTS") else { continue };
        let name = path.strip_prefix(&root).unwrap_or(path).display().to_string();
        let ctx = v.get("TESTCTX").ok_or("no TESTCTX")?;
        let mut trust = TrustList::new();
        let cert_ok = s(ctx, "CERTIFICATE").and_then(b64).map(|der| trust.add_file(&der, &name).is_ok()).unwrap_or(false);
        if !cert_ok {
            out_of_scope.push(name);
            continue;
        }
        in_scope += 1;
        let clock = s(ctx, "VALIDATIONCLOCK").map(qr::time::parse_rfc3339).transpose()?.map(|t| Clock::new(t, 0));
        let verifier = Verifier::new(dgc.clone(), &trust);
        let prefix = s(&v, "PREFIX");
        // Fields, derived from PREFIX when absent.
        let base45 =
            s(&v, "BASE45").map(str::to_owned).or_else(|| prefix.and_then(|p| text::strip_prefix(p, "HC1:").ok()).map(str::to_owned));
        let compressed = match s(&v, "COMPRESSED") {
            Some(h) => hex::decode(h).ok(),
            None => base45.as_deref().and_then(|b| text::base45_decode(b).ok()),
        };
        let cose = match s(&v, "COSE") {
            Some(h) => hex::decode(h).ok(),
            None => compressed.as_deref().and_then(|c| text::decompress(c, Compression::Required, dgc.max_inflated).ok()).map(|(c, _)| c),
        };
        for flag in FLAGS {
            let Some(want) = expected.get(format!("EXPECTED{flag}")).and_then(|b| b.as_bool()) else { continue };
            let got = match flag {
                "UNPREFIX" => {
                    prefix.is_some_and(|p| text::strip_prefix(p, "HC1:").is_ok_and(|rest| s(&v, "BASE45").is_none_or(|b| b == rest)))
                }
                "B45DECODE" => base45.as_deref().is_some_and(|b| {
                    text::base45_decode(b).is_ok_and(|bytes| s(&v, "COMPRESSED").is_none_or(|h| hex::decode(h).is_ok_and(|c| c == bytes)))
                }),
                "COMPRESSION" => compressed.as_deref().is_some_and(|c| {
                    text::decompress(c, Compression::Required, dgc.max_inflated)
                        .is_ok_and(|(out, _)| s(&v, "COSE").is_none_or(|h| hex::decode(h).is_ok_and(|x| x == out)))
                }),
                "VERIFY" => cose.as_deref().is_some_and(|c| verifier.check_cose(c).is_ok()),
                "EXPIRATIONCHECK" => match (cose.as_deref(), clock) {
                    (Some(c), Some(clock)) => qr::cose::parse(c).is_ok_and(|(msg, _)| {
                        let payload = msg.payload.unwrap_or_default();
                        qr::claims::decode_claims_map(&payload)
                            .ok()
                            .and_then(|m| qr::claims::TimeClaims::from_map(&m).ok())
                            .is_some_and(|t| t.check(clock).is_ok())
                    }),
                    _ => false,
                },
                _ => cose.as_deref().is_some_and(|c| {
                    let Ok((msg, _)) = qr::cose::parse(c) else { return false };
                    let Ok(map) = qr::claims::decode_claims_map(&msg.payload.unwrap_or_default()) else { return false };
                    let whole = canonical(Value::Map(map.clone()));
                    let hcert = map.into_iter().find(|(k, _)| *k == Value::from(-260)).map(|(_, v)| v);
                    let Some(Value::Map(h)) = hcert else { return false };
                    let Some((_, dgc_value)) = h.into_iter().find(|(k, _)| *k == Value::from(1)) else { return false };
                    match s(&v, "CBOR").map(hex::decode) {
                        None => true,
                        Some(Ok(bytes)) => qr::claims::cbor_from_slice(&bytes).is_ok_and(|want| {
                            let want = canonical(want);
                            want == canonical(dgc_value.clone()) || want == whole
                        }),
                        Some(Err(_)) => false,
                    }
                }),
            };
            let c = counts.entry(flag).or_default();
            c.1 += 1;
            if got == want {
                c.0 += 1;
            } else {
                mismatches.push(format!("{name}: EXPECTED{flag} = {want}, pipeline says {got}"));
            }
        }
        // The whole pipeline on the QR text agrees when every step flag is true.
        let all_true = FLAGS.iter().all(|f| expected.get(format!("EXPECTED{f}")).is_none_or(|b| b.as_bool() == Some(true)));
        if let (Some(p), Some(clock), true, Some(_)) = (prefix, clock, all_true, expected.get("EXPECTEDEXPIRATIONCHECK")) {
            full_pipeline += 1;
            if let Err(e) = verifier.verify_foreign(p, clock) {
                mismatches.push(format!("{name}: all step flags true but the full pipeline says: {e}"));
            }
        }
    }
    println!("dgc-testdata: {in_scope} vectors with a P-256 signer; out of scope (not P-256): {out_of_scope:?}");
    for (flag, (ok, total)) in &counts {
        println!("  EXPECTED{flag}: {ok}/{total} matched");
    }
    println!("  full pipeline (verify_foreign on PREFIX) on {full_pipeline} all-true vectors");
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    assert!(in_scope >= 100, "expected the corpus at {}", root.display());
    Ok(())
}
