//! `medcard qr`: decode, inspect (JSON per layer), keygen and sign, run as a process.
// serde_json::Value indexing returns Null for a missing key; it does not panic.
#![allow(clippy::indexing_slicing)]

use std::process::Command;

type R = Result<(), Box<dyn std::error::Error>>;

/// `medcard qr` (the arguments that follow go to the `qr` command group).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medcard"));
    c.arg("qr");
    c
}

/// The shared corpora (`../shared/corpora` beside the repository, or `$MEDCARD_CORPORA`).
fn corpora() -> std::path::PathBuf {
    std::env::var_os("MEDCARD_CORPORA")
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"), std::path::PathBuf::from)
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("medcard-qr-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::create_dir_all(&d);
    d
}

#[test]
fn keygen_sign_decode_and_inspect_work_together() -> R {
    let d = tmpdir("flow");
    let key = d.join("issuer.key");
    let out = bin().arg("keygen").arg(&key).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = d.join("code.png");
    let out = bin()
        .args(["sign", "--key"])
        .arg(&key)
        .args(["--iss", "clinic-1", "--patient", "P-9", "--locator", "https://r.example/x"])
        .args(["--record-sha256", &"ab".repeat(32), "--consent-sha256", &"cd".repeat(32)])
        .args(["--category", "lab", "--at", "2026-11-23T10:00:00Z", "--minutes", "30", "--png"])
        .arg(&png)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?.trim().to_owned();
    assert!(text.starts_with("MC1:"));

    let out = bin().arg("decode").arg(&png).output()?;
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout)?.trim(), text);
    let out = bin().arg("decode").arg(&png).arg(&png).output()?;
    assert_eq!(String::from_utf8(out.stdout)?.lines().next().unwrap_or_default(), format!("{}: {text}", png.display()));

    let pubkey = d.join("issuer.key.pub.pem");
    let bound = format!("clinic-1={}", pubkey.display());
    let out = bin().arg("inspect").arg("--trust").arg(&bound).args(["--at", "2026-11-23T10:05:00Z"]).arg(&png).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["verified"], true);
    assert_eq!(report["result"]["claims"]["patient_id"], "P-9");
    let layers = report["layers"].as_array().ok_or("layers")?;
    assert_eq!(layers.len(), 9);
    assert!(layers.iter().all(|l| l["status"] == "ok"), "{layers:?}");

    // Expired: the time layer reports the error, exit status 3.
    let out = bin().arg("inspect").arg("--trust").arg(&bound).args(["--at", "2026-11-23T11:00:00Z", &text]).output()?;
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["result"]["layer"], "time");
    assert!(report["result"]["error"].as_str().unwrap_or_default().contains("code expired at 2026-11-23T10:30:00Z"));

    // No trust: the kid layer fails, later layers are not reached.
    let out = bin().args(["inspect", "--at", "2026-11-23T10:05:00Z", &text]).output()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["layers"][5]["status"], "error");
    assert_eq!(report["layers"][6]["status"], "not reached");
    Ok(())
}

#[test]
fn inspect_never_prints_the_content_key_nor_the_code_that_carries_it() -> R {
    let d = tmpdir("redact");
    let key = d.join("issuer.key");
    assert!(bin().arg("keygen").arg(&key).output()?.status.success());
    let content_key = "5c".repeat(32);
    let out = bin()
        .args(["sign", "--key"])
        .arg(&key)
        .args(["--iss", "clinic-1", "--patient", "P-9", "--locator", "https://r.example/x"])
        .args(["--record-sha256", &"ab".repeat(32), "--consent-sha256", &"cd".repeat(32), "--content-key", &content_key])
        .args(["--category", "lab", "--at", "2026-11-23T10:00:00Z", "--minutes", "30"])
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?.trim().to_owned();
    let bound = format!("clinic-1={}", d.join("issuer.key.pub.pem").display());
    let out = bin().args(["inspect", "--trust", &bound, "--at", "2026-11-23T10:05:00Z", &text]).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let report = String::from_utf8(out.stdout)?;
    assert!(!report.contains(&content_key), "the content key is printed: {report}");
    assert!(!report.contains(&text), "the code (a bearer secret) is printed: {report}");
    assert!(report.contains("present (redacted)"), "{report}");
    Ok(())
}

#[test]
fn code_whose_issuer_is_not_the_clinic_of_its_key_is_refused_by_inspect() -> R {
    let d = tmpdir("iss-bound");
    let key = d.join("partner.key");
    assert!(bin().arg("keygen").arg(&key).output()?.status.success());
    let out = bin()
        .args(["sign", "--key"])
        .arg(&key)
        .args(["--iss", "clinic-a", "--patient", "P-9", "--locator", "https://r.example/x"])
        .args(["--record-sha256", &"ab".repeat(32), "--consent-sha256", &"cd".repeat(32)])
        .args(["--category", "lab", "--at", "2026-11-23T10:00:00Z", "--minutes", "30"])
        .output()?;
    let text = String::from_utf8(out.stdout)?.trim().to_owned();
    let bound = format!("clinic-b={}", d.join("partner.key.pub.pem").display());
    let out = bin().args(["inspect", "--trust", &bound, "--at", "2026-11-23T10:05:00Z", &text]).output()?;
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["result"]["layer"], "claims");
    assert!(report["result"]["error"].as_str().unwrap_or_default().contains("signed by the key of \"clinic-b\""), "{report}");
    Ok(())
}

#[test]
fn inspect_reads_dgc_codes_with_hc1_prefix_and_a_certificate() -> R {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(corpora().join("dgc-testdata/DE/2DCode/raw/1.json"))?)?;
    let d = tmpdir("dgc");
    let cert = d.join("cert.pem");
    let b64 = v["TESTCTX"]["CERTIFICATE"].as_str().ok_or("cert")?;
    std::fs::write(
        &cert,
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\n")
        ),
    )?;
    let at = v["TESTCTX"]["VALIDATIONCLOCK"].as_str().ok_or("clock")?;
    let out = bin()
        .args(["inspect", "--prefix", "HC1:", "--skew", "0", "--at", at, "--trust"])
        .arg(&cert)
        .arg(v["PREFIX"].as_str().ok_or("prefix")?)
        .output()?;
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["verified"], true);
    Ok(())
}

#[test]
fn help_describes_every_subcommand() -> R {
    let out = Command::new(env!("CARGO_BIN_EXE_medcard")).arg("--help").output()?;
    assert!(String::from_utf8(out.stdout)?.contains("qr"));
    let out = bin().arg("--help").output()?;
    let help = String::from_utf8(out.stdout)?;
    for sub in ["decode", "inspect", "keygen", "sign"] {
        assert!(help.contains(sub), "{help}");
    }
    let out = bin().args(["inspect", "--help"]).output()?;
    assert!(String::from_utf8(out.stdout)?.contains("COSE_Key"));
    Ok(())
}
