//! Shared helpers of the scanner tests: where the corpora are, and running `zbarimg`.
#![allow(dead_code)] // each test binary uses a part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// `MEDCARD_CORPORA`, else `../../shared/corpora` from this crate (the project layout).
pub fn corpora() -> PathBuf {
    std::env::var_os("MEDCARD_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"))
}

/// Texts `zbarimg --raw -q` reads from `path` (QR only), or None if it found nothing.
/// Each symbol is printed followed by a newline; with one symbol the text is exact, with
/// several the split on newlines is ambiguous, so the raw output is returned as well.
#[allow(clippy::panic)] // a test helper: no zbarimg means the comparison cannot run
pub fn zbarimg(path: &Path) -> ZbarResult {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run zbarimg (install zbar-tools): {e}"));
    ZbarResult { raw: out.stdout, status: out.status.code() }
}

/// What zbarimg printed.
pub struct ZbarResult {
    /// stdout bytes.
    pub raw: Vec<u8>,
    /// exit status (0 = found, 4 = nothing found).
    pub status: Option<i32>,
}

impl ZbarResult {
    /// Whether `expected` is exactly one of the symbols printed: the output is `expected` + "\n",
    /// or contains it as a whole line group at a symbol boundary.
    pub fn has(&self, expected: &[u8]) -> bool {
        let mut want = expected.to_vec();
        want.push(b'\n');
        if self.raw == want {
            return true;
        }
        // several symbols: expected at the start or right after a newline, followed by newline
        self.raw.windows(want.len()).enumerate().any(|(i, w)| {
            w == want.as_slice() && (i == 0 || self.raw.get(i - 1) == Some(&b'\n'))
        })
    }

    /// The single text when exactly one symbol was printed (strip the final newline).
    pub fn single_text(&self) -> Option<String> {
        let s = String::from_utf8(self.raw.clone()).ok()?;
        s.strip_suffix('\n').map(str::to_string)
    }
}

/// Whether zbarimg is on the PATH.
pub fn have_zbarimg() -> bool {
    Command::new("zbarimg").arg("--version").output().is_ok()
}
