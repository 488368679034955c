//! The layer order each crate documents at the top of its `lib.rs` is true: a module uses
//! (`crate::x` paths in its non-test code) only modules of strictly lower layers, so the module
//! graph has no cycle. The format read here:
//!
//! ```text
//! //! Layers, bottom up (...):
//! //! 1. [`a`], [`b`]
//! //! 2. [`c`]
//! ```
//!
//! Every module the crate root declares must be listed exactly once. Names the root re-exports
//! from its own modules (`pub use error::Error;`) count as uses of that module. Test code is left
//! out: `tests.rs` / `*_tests.rs` files and everything from a `#[cfg(test)]` line on (tests sit at
//! the end of a file in this workspace).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The documented layer of each module, from the crate root's doc comment.
fn documented_layers(root: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut lines = root.lines().skip_while(|l| !l.contains("Layers, bottom up"));
    if lines.next().is_none() {
        return Err("no \"Layers, bottom up\" list in the crate root's doc comment".into());
    }
    let mut out = BTreeMap::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("//! ") else { break };
        let Some((num, names)) = rest.split_once(". ") else { break };
        let Ok(layer) = num.trim().parse::<usize>() else { break };
        for name in names.split("[`").skip(1).filter_map(|s| s.split_once("`]").map(|(n, _)| n)) {
            if out.insert(name.to_owned(), layer).is_some() {
                return Err(format!("module {name} is listed twice"));
            }
        }
    }
    Ok(out)
}

/// The modules the crate root declares (`mod x;`, `pub mod x;`, with or without a `cfg`).
fn declared_modules(root: &str) -> BTreeSet<String> {
    root.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

/// Names the root re-exports from its own modules: `pub use m::{A, B};` / `pub use m::A;`.
fn root_reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in root.lines().map(str::trim) {
        let Some(rest) = l.strip_prefix("pub use ") else { continue };
        let Some((m, names)) = rest.split_once("::") else { continue };
        if !modules.contains(m) {
            continue;
        }
        for n in names.trim_end_matches(';').trim_matches(|c| c == '{' || c == '}').split(',') {
            let n = n.trim();
            if !n.is_empty() {
                out.insert(n.to_owned(), m.to_owned());
            }
        }
    }
    out
}

/// The code of a source file without comments and without its test part.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or_default();
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The first path segment of every `crate::` path in `code`, including each item of a
/// `crate::{a, b::c}` group.
fn crate_references(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The source files of top-level module `m` under `src` (`m.rs` and everything in `m/`).
fn module_files(src: &Path, m: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src.join(format!("{m}.rs"));
    if single.is_file() {
        files.push(single);
    }
    let mut dirs = vec![src.join(m)];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        name != "tests.rs" && !name.ends_with("_tests.rs")
    });
    files.sort();
    files
}

/// Every use of a module at the same or a higher layer, as "a (layer 3) uses b (layer 5) in
/// file"; and modules missing from the documented order.
fn violations(src: &Path) -> Result<Vec<String>, String> {
    let root = std::fs::read_to_string(src.join("lib.rs")).map_err(|e| format!("{}: {e}", src.display()))?;
    let layers = documented_layers(&root)?;
    let modules = declared_modules(&root);
    let mut out: Vec<String> = modules
        .iter()
        .filter(|m| !layers.contains_key(*m))
        .map(|m| format!("module {m} is declared but not in the documented layers"))
        .collect();
    out.extend(layers.keys().filter(|m| !modules.contains(*m)).map(|m| format!("{m} is in the layers but not a module")));
    let reexports = root_reexports(&root, &modules);
    for (m, &layer) in &layers {
        for file in module_files(src, m) {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            for name in crate_references(&non_test_code(&text)) {
                let target = reexports.get(&name).unwrap_or(&name);
                if target == m {
                    continue;
                }
                if let Some(&t) = layers.get(target)
                    && t >= layer
                {
                    out.push(format!("{m} (layer {layer}) uses {target} (layer {t}) in {}", file.display()));
                }
            }
        }
    }
    Ok(out)
}

fn crate_src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn assert_layered(rel: &str) {
    let found = violations(&crate_src(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(found.is_empty(), "{rel}: the documented layer order is not true:\n  {}", found.join("\n  "));
}

#[test]
fn reader_modules_use_only_lower_layers() {
    assert_layered("reader/src");
}

#[test]
fn piv_client_modules_use_only_lower_layers() {
    assert_layered("reader/piv/src");
}

#[test]
fn desktop_modules_use_only_lower_layers() {
    assert_layered("desktop/src");
}

#[test]
fn the_piv_client_names_nothing_of_the_clinic() {
    let manifest = std::fs::read_to_string(crate_src("reader/piv/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or_default();
    let deps = deps.split("\n[").next().unwrap_or_default();
    for clinic_crate in ["reader", "qr", "rusqlite", "coset"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(&format!("{clinic_crate} ")) || l.trim_start().starts_with(&format!("{clinic_crate}."))),
            "medcard-piv depends on {clinic_crate}"
        );
    }
}

#[test]
fn a_use_of_a_higher_layer_is_reported_with_the_file() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    std::fs::write(
        src.join("lib.rs"),
        "//! Layers, bottom up (checked):\n//! 1. [`low`]\n//! 2. [`high`]\n\npub mod high;\npub mod low;\npub use high::Thing;\n",
    )
    .unwrap();
    std::fs::write(src.join("high.rs"), "use crate::low;\npub struct Thing;\n").unwrap();
    // A comment and test code may name anything; a path in code may not.
    std::fs::write(
        src.join("low.rs"),
        "// crate::high is only named here\nuse crate::{Thing, other::x};\n#[cfg(test)]\nmod tests { use crate::high; }\n",
    )
    .unwrap();
    let found = violations(src).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("low (layer 1) uses high (layer 2) in "), "{found:?}");
}

#[test]
fn a_module_missing_from_the_layers_is_reported() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("lib.rs"), "//! Layers, bottom up:\n//! 1. [`a`]\n\npub mod a;\nmod b;\n").unwrap();
    std::fs::write(d.path().join("a.rs"), "").unwrap();
    std::fs::write(d.path().join("b.rs"), "").unwrap();
    let found = violations(d.path()).unwrap();
    assert_eq!(found, vec!["module b is declared but not in the documented layers".to_owned()]);
}
