//! `medcard audit alerts` on a real clinic database: refused QR codes in a row raise an alert
//! naming exactly the audit entries behind it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

fn medcard(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medcard")).args(args).arg("--data").arg(data).env_remove("MEDCARD_NOW").output().unwrap()
}

#[test]
fn five_refused_codes_in_a_row_raise_one_alert_naming_their_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ward");
    assert!(medcard(&data, &["init", "--clinic-id", "ward-1"]).status.success());
    let out = medcard(&data, &["audit", "alerts", "--json"]);
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), serde_json::json!([]));

    for text in ["MC1:NOT-A-CODE", "HC1:6BFOXN", "MC1:00", "garbage", "MC1:ZZZZ"] {
        let o = medcard(&data, &["scan", "--text", text]);
        assert!(!o.status.success(), "{text} must be refused");
    }
    let out = medcard(&data, &["audit", "alerts", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alerts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = alerts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    assert_eq!(list[0]["rule"], "refused-in-a-row");
    // The entries it names are exactly the five qr.refused rows of the log.
    let show: serde_json::Value = serde_json::from_slice(&medcard(&data, &["audit", "show", "--json"]).stdout).unwrap();
    let refused: Vec<u64> =
        show.as_array().unwrap().iter().filter(|e| e["kind"] == "qr.refused").map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(refused.len(), 5);
    let named: Vec<u64> = list[0]["entries"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert_eq!(named, refused);

    let text = medcard(&data, &["audit", "alerts"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("ALERT refused-in-a-row") && text.contains("5 refused QR codes in a row"), "{text}");
}
