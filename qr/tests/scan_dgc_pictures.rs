//! dgc-testdata picture vectors: for every JSON with `EXPECTEDRESULTS.EXPECTEDPICTUREDECODE`,
//! the base64 PNG in `2DCODE` scanned by our scanner must give exactly the `PREFIX` text when the
//! flag is true, and must not give it when the flag is false. Vectors whose flag is true but
//! that carry no `2DCODE` cannot be checked and are counted apart.

mod scan_support;

use std::path::{Path, PathBuf};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

#[test]
fn dgc_picture_vectors_scan_to_exactly_their_prefix_text() {
    let root = scan_support::corpora().join("dgc-testdata");
    assert!(root.is_dir(), "corpus not found at {} (set MEDCARD_CORPORA)", root.display());
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files.sort();
    let (mut must_read, mut read, mut must_fail, mut refused, mut no_picture) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let Some(flag) = json.pointer("/EXPECTEDRESULTS/EXPECTEDPICTUREDECODE").and_then(|v| v.as_bool()) else {
            continue;
        };
        let prefix = json.get("PREFIX").and_then(|v| v.as_str()).unwrap_or_default();
        let picture = json.get("2DCODE").and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        let name = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let Some(picture) = picture else {
            no_picture += 1;
            continue;
        };
        let texts = scan_support::base64_decode(picture).map(|png| qr::scan::scan_bytes(&png).unwrap_or_default()).unwrap_or_default();
        let got = texts.iter().any(|t| t == prefix);
        if flag {
            must_read += 1;
            if got && texts.len() == 1 {
                read += 1;
            } else {
                failures.push(format!("{name}: expected the PREFIX text, got {} texts", texts.len()));
            }
        } else {
            must_fail += 1;
            if got {
                failures.push(format!("{name}: flag false but the picture gave the PREFIX text"));
            } else {
                refused += 1;
            }
        }
    }
    println!(
        "dgc pictures: flag true {must_read} (read exactly {read}), flag false {must_fail} (not read {refused}), \
         flag true without 2DCODE {no_picture} (not checkable)"
    );
    assert!(must_read > 0, "no picture vectors found under {}", root.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
